#pragma once
// What this CPU and OS let kiln run, found at run time (the binary may be built for any x86-64 and run on
// another): the BF16 dot-product instructions of AVX512-BF16 (VDPBF16PS: Zen 4/5, Xeons since Cooper Lake)
// and the AMX tiles (TDPBF16PS: Xeons since Sapphire Rapids).
//  - An instruction set counts only when CPUID lists it and the OS saves its registers (XCR0): AVX-512 needs
//    the opmask and both halves of the zmm state (XCR0 bits 5–7), AMX the tile config and data (bits 17–18).
//  - Linux also gives a process the 8 KiB of AMX tile data only on request (arch_prctl ARCH_REQ_XCOMP_PERM,
//    Linux 5.16+); a tile instruction without it raises SIGILL. The request is made once, for the whole process.
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define KILN_CPU_X86 1
#else
#define KILN_CPU_X86 0
#endif

namespace kiln::cpu {

struct cpu_features {
  bool avx512_bf16 = false;  // AVX-512 F/BW/VL with BF16, usable
  bool amx_bf16 = false;     // AMX tiles with BF16, usable and granted to this process
};

namespace features_detail {
#if KILN_CPU_X86
inline std::uint64_t xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
inline bool bit(std::uint32_t word, int b) { return (word >> b) & 1u; }

inline bool request_amx_permission() {
#if defined(__linux__)
  constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
  return false;
#endif
}

inline cpu_features detect() {
  cpu_features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !bit(c, 27)) return f;  // no OSXSAVE: no XCR0 to read
  const std::uint64_t xcr = xcr0();
  const bool os_avx512 = (xcr & 0xe6) == 0xe6;           // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = ((xcr >> 17) & 3) == 3;            // XTILECFG, XTILEDATA
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx512 = bit(b, 16) && bit(b, 30) && bit(b, 31);  // F, BW, VL
  const bool amx = bit(d, 22) && bit(d, 24);                   // AMX-BF16, AMX-TILE
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  const bool bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && bit(a1, 5);  // AVX512_BF16
  f.avx512_bf16 = os_avx512 && avx512 && bf16;
  // the AMX kernels convert and pack with AVX512-BF16, so AMX is used only alongside it
  f.amx_bf16 = f.avx512_bf16 && os_amx && amx && request_amx_permission();
  return f;
}
#else
inline cpu_features detect() { return {}; }
#endif
}  // namespace features_detail

// This machine's features, detected once.
inline const cpu_features& this_cpu() {
  static const cpu_features f = features_detail::detect();
  return f;
}

}  // namespace kiln::cpu
