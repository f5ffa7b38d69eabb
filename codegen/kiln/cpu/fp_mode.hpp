#pragma once
// The floating-point mode kiln's CPU kernels run in: denormal (subnormal) floats flushed to zero, as
// TensorFlow's CPU runtime and CUDA's --ftz do.
//
// Why: a float below 2^-126 ≈ 1.18e-38 is handled by a microcode assist on x86, 50–150 times slower than a
// normal operation. Training produces them as a matter of course: Adam's second moment of a parameter whose
// gradient has become 0 (a dead ReLU unit) decays by β₂ every step into that range, and every later step then
// pays the assist on those elements. Measured with kiln-bench --profile (classifier, batch 32, one thread,
// after the warm-up steps): the step took 447 µs with denormals and 203 µs flushed, the Adam epilogue of the
// 784×128 layer 296 µs against 114 µs. Flushing changes a result only where a value is below 1.18e-38 in
// magnitude, far below any tolerance a float32 result is judged by.
//
// On x86 the mode is the MXCSR register's FTZ (results) and DAZ (inputs) bits, on AArch64 FPCR's FZ bit;
// elsewhere nothing changes. The mode is per thread: kiln's thread pool gives every task the mode of the
// thread that submitted it, so a step computes the same on any number of threads.
#include <cstdint>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kiln::cpu {

// The calling thread's floating-point control word (MXCSR, or FPCR on AArch64).
inline std::uint64_t fp_control() {
#if defined(__x86_64__) || defined(__i386__)
  return _mm_getcsr();
#elif defined(__aarch64__)
  std::uint64_t v;
  __asm__ volatile("mrs %0, fpcr" : "=r"(v));
  return v;
#else
  return 0;
#endif
}
inline void set_fp_control([[maybe_unused]] std::uint64_t v) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(static_cast<unsigned>(v));
#elif defined(__aarch64__)
  __asm__ volatile("msr fpcr, %0" : : "r"(v));
#endif
}

// The control word with denormals flushed (flush = true) or kept (IEEE gradual underflow).
inline std::uint64_t with_flushed_denormals(std::uint64_t v, bool flush) {
#if defined(__x86_64__) || defined(__i386__)
  constexpr std::uint64_t bits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
#elif defined(__aarch64__)
  constexpr std::uint64_t bits = std::uint64_t{1} << 24;  // FZ
#else
  constexpr std::uint64_t bits = 0;
#endif
  return flush ? (v | bits) : (v & ~bits);
}

// Sets the calling thread's denormal mode for its lifetime and restores the previous control word after.
class scoped_denormal_mode {
 public:
  // Reading the control word stalls until the operations before it retire (STMXCSR), so it is read once: the
  // destructor restores it only if the constructor changed it.
  explicit scoped_denormal_mode(bool flush) : saved_(fp_control()) {
    const std::uint64_t want = with_flushed_denormals(saved_, flush);
    changed_ = want != saved_;
    if (changed_) set_fp_control(want);
  }
  ~scoped_denormal_mode() {
    if (changed_) set_fp_control(saved_);
  }
  scoped_denormal_mode(const scoped_denormal_mode&) = delete;
  scoped_denormal_mode& operator=(const scoped_denormal_mode&) = delete;

 private:
  std::uint64_t saved_;
  bool changed_;
};

}  // namespace kiln::cpu
