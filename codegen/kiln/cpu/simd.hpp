#pragma once
// One float SIMD vector type for the CPU backend, built on the GCC/clang vector extension, whose width follows
// the target: 16 lanes with AVX-512, 8 with AVX/AVX2, 4 otherwise (SSE2 or no SIMD ISA at all).
//
// Every operation is also overloaded for float and double, so a kernel written once as
//     template <class V> V f(V x) { return select(gt(x, splat<V>(0.f)), x, splat<V>(0.f)); }
// runs on vfloat (the main loop), float (tails) and double (reference checks).
//
// KILN_CPU_VECTOR_BITS (512, 256 or 128) may be defined before the first include to cap the width, and
// KILN_CPU_NO_FMA to pretend the FMA unit is missing; tests use both to exercise the narrow code paths on a
// wide machine. Either must be the same for a whole program (the vector type changes with them).
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#if !defined(KILN_CPU_VECTOR_BITS)
#if defined(__AVX512F__)
#define KILN_CPU_VECTOR_BITS 512
#elif defined(__AVX__)
#define KILN_CPU_VECTOR_BITS 256
#else
#define KILN_CPU_VECTOR_BITS 128
#endif
#endif

// Which intrinsic family backs each width (none: portable per-lane loops, e.g. on non-x86 targets).
#if KILN_CPU_VECTOR_BITS == 512 && defined(__AVX512F__)
#define KILN_CPU_X86_512 1
#elif KILN_CPU_VECTOR_BITS == 256 && defined(__AVX__)
#define KILN_CPU_X86_256 1
#elif KILN_CPU_VECTOR_BITS == 128 && defined(__SSE2__)
#define KILN_CPU_X86_128 1
#elif KILN_CPU_VECTOR_BITS != 512 && KILN_CPU_VECTOR_BITS != 256 && KILN_CPU_VECTOR_BITS != 128
#error "KILN_CPU_VECTOR_BITS must be 512, 256 or 128"
#endif

#if defined(__FMA__) && !defined(KILN_CPU_NO_FMA)
#define KILN_CPU_HAS_FMA 1
#endif

namespace kiln::cpu {

inline constexpr int lanes = KILN_CPU_VECTOR_BITS / 32;
inline constexpr bool has_hardware_fma =
#if defined(KILN_CPU_HAS_FMA)
    true;
#else
    false;
#endif

using vfloat = float __attribute__((vector_size(lanes * sizeof(float))));
// Lane masks from comparisons (all bits set or clear), and integer lanes for exponent arithmetic.
using vint = std::int32_t __attribute__((vector_size(lanes * sizeof(float))));
using vuint = std::uint32_t __attribute__((vector_size(lanes * sizeof(float))));

template <class V>
inline constexpr bool is_vector_v = std::is_same_v<V, vfloat>;

// ---- bit casts and masks (building blocks for vmath; also handy for kernels)
inline vint as_int(vfloat v) { return std::bit_cast<vint>(v); }
inline vuint as_uint(vfloat v) { return std::bit_cast<vuint>(v); }
inline vfloat as_float(vint v) { return std::bit_cast<vfloat>(v); }
inline vfloat as_float(vuint v) { return std::bit_cast<vfloat>(v); }

// mask (all-ones / all-zeros lanes) ? a : b
// (Bitwise rather than the vector conditional `mask ? a : b`: GCC 12's SLP vectorizer can crash on the
// latter once many of them are inlined into one function.)
inline vfloat blend(vint mask, vfloat a, vfloat b) { return as_float((as_int(a) & mask) | (as_int(b) & ~mask)); }

// ---- broadcast
template <class V = vfloat>
inline V splat(float x) {
  if constexpr (is_vector_v<V>)
    return x - vfloat{};  // x - (+0) is x for every x, -0 included (x + 0 would turn -0 into +0)
  else
    return static_cast<V>(x);
}
template <class V>
  requires std::is_same_v<V, double>
inline V splat(double x) {
  return x;
}

// ---- memory: unaligned full loads/stores, and partial ones touching only the first n lanes (0 <= n <= lanes)
template <class V = vfloat>
inline V load(const float* p) {
  if constexpr (is_vector_v<V>) {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    return static_cast<V>(*p);
  }
}
template <class V>
  requires std::is_same_v<V, double>
inline V load(const double* p) {
  return *p;
}
inline void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline void store(float* p, float v) { *p = v; }
inline void store(double* p, double v) { *p = v; }

namespace simd_detail {
// Lanes [0, n) set, the rest clear.
inline vint first_lanes_mask(int n) {
  vint index;
  for (int i = 0; i < lanes; ++i) index[i] = i;
  return index < n;
}
}  // namespace simd_detail

template <class V = vfloat>
inline V load_partial(const float* p, int n) {
  if constexpr (is_vector_v<V>) {
#if defined(KILN_CPU_X86_512)
    return (vfloat)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
#elif defined(KILN_CPU_X86_256)
    return (vfloat)_mm256_maskload_ps(p, (__m256i)simd_detail::first_lanes_mask(n));
#else
    vfloat v{};
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
#endif
  } else {
    return n > 0 ? static_cast<V>(*p) : V(0);
  }
}
template <class V>
  requires std::is_same_v<V, double>
inline V load_partial(const double* p, int n) {
  return n > 0 ? *p : 0.0;
}
inline void store_partial(float* p, vfloat v, int n) {
#if defined(KILN_CPU_X86_512)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), (__m512)v);
#elif defined(KILN_CPU_X86_256)
  _mm256_maskstore_ps(p, (__m256i)simd_detail::first_lanes_mask(n), (__m256)v);
#else
  for (int i = 0; i < n; ++i) p[i] = v[i];
#endif
}
inline void store_partial(float* p, float v, int n) {
  if (n > 0) *p = v;
}
inline void store_partial(double* p, double v, int n) {
  if (n > 0) *p = v;
}

// ---- fused multiply-add a*b + c (one rounding where the hardware has FMA)
inline vfloat fma(vfloat a, vfloat b, vfloat c) {
#if defined(KILN_CPU_HAS_FMA) && defined(KILN_CPU_X86_512)
  return (vfloat)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(KILN_CPU_HAS_FMA) && defined(KILN_CPU_X86_256)
  return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(KILN_CPU_HAS_FMA) && defined(KILN_CPU_X86_128)
  return (vfloat)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
#else
  return a * b + c;
#endif
}
inline float fma(float a, float b, float c) {
#if defined(KILN_CPU_HAS_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}
inline double fma(double a, double b, double c) {
#if defined(KILN_CPU_HAS_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// ---- lane-wise comparisons as 0.0 / 1.0 values (a comparison with NaN is false, as for scalars)
namespace simd_detail {
inline vfloat mask_to_01(vint m) { return as_float(m & as_int(splat(1.0f))); }
}  // namespace simd_detail
inline vfloat gt(vfloat a, vfloat b) { return simd_detail::mask_to_01(a > b); }
inline vfloat ge(vfloat a, vfloat b) { return simd_detail::mask_to_01(a >= b); }
inline vfloat lt(vfloat a, vfloat b) { return simd_detail::mask_to_01(a < b); }
inline vfloat le(vfloat a, vfloat b) { return simd_detail::mask_to_01(a <= b); }
inline vfloat eq(vfloat a, vfloat b) { return simd_detail::mask_to_01(a == b); }
inline float gt(float a, float b) { return a > b ? 1.0f : 0.0f; }
inline float ge(float a, float b) { return a >= b ? 1.0f : 0.0f; }
inline float lt(float a, float b) { return a < b ? 1.0f : 0.0f; }
inline float le(float a, float b) { return a <= b ? 1.0f : 0.0f; }
inline float eq(float a, float b) { return a == b ? 1.0f : 0.0f; }
inline double gt(double a, double b) { return a > b ? 1.0 : 0.0; }
inline double ge(double a, double b) { return a >= b ? 1.0 : 0.0; }
inline double lt(double a, double b) { return a < b ? 1.0 : 0.0; }
inline double le(double a, double b) { return a <= b ? 1.0 : 0.0; }
inline double eq(double a, double b) { return a == b ? 1.0 : 0.0; }

// cond01 != 0 ? a : b, lane-wise (cond01 holds the 0/1 values the comparisons above produce)
inline vfloat select(vfloat cond01, vfloat a, vfloat b) { return blend(cond01 != 0.0f, a, b); }
inline float select(float cond01, float a, float b) { return cond01 != 0.0f ? a : b; }
inline double select(double cond01, double a, double b) { return cond01 != 0.0 ? a : b; }

// ---- min / max with std::min / std::max semantics: min(a, b) = b < a ? b : a, max(a, b) = a < b ? b : a
// (so a NaN in the first operand propagates, and max(x, 0) keeps NaN as ReLU should).
// (The vector conditional compiles to one vminps/vmaxps; the intrinsics would drag in GCC 12's
// _mm512_undefined_ps, which trips -Wuninitialized.)
inline vfloat min(vfloat a, vfloat b) { return b < a ? b : a; }
inline vfloat max(vfloat a, vfloat b) { return a < b ? b : a; }
inline float min(float a, float b) { return b < a ? b : a; }
inline float max(float a, float b) { return a < b ? b : a; }
inline double min(double a, double b) { return b < a ? b : a; }
inline double max(double a, double b) { return a < b ? b : a; }

// ---- horizontal reductions: a halving tree (lanes/2 + lanes/4 + ... lane pairs), so the sum is the same
// pairwise order on every width. With NaN lanes hmax is NaN or the max of the others (unspecified).
namespace simd_detail {
// GCC drops vector_size on dependent alias templates, so the width-generic type goes through a class.
template <int N>
struct float_vector {
  typedef float type __attribute__((vector_size(N * sizeof(float))));
};
template <int N>
using fvec = typename float_vector<N>::type;

template <int N, int... I>
inline fvec<N / 2> low_half(fvec<N> v, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(v, v, I...);
}
template <int N, int... I>
inline fvec<N / 2> high_half(fvec<N> v, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(v, v, (I + N / 2)...);
}
template <int N>
inline float tree_sum(fvec<N> v) {
  if constexpr (N == 2) {
    return v[0] + v[1];
  } else {
    constexpr auto half = std::make_integer_sequence<int, N / 2>{};
    return tree_sum<N / 2>(low_half<N>(v, half) + high_half<N>(v, half));
  }
}
template <int N>
inline float tree_max(fvec<N> v) {
  if constexpr (N == 2) {
    return v[0] < v[1] ? v[1] : v[0];
  } else {
    constexpr auto half = std::make_integer_sequence<int, N / 2>{};
    const fvec<N / 2> a = low_half<N>(v, half), b = high_half<N>(v, half);
    return tree_max<N / 2>(a < b ? b : a);
  }
}
}  // namespace simd_detail

inline float hsum(vfloat v) { return simd_detail::tree_sum<lanes>(v); }
inline float hmax(vfloat v) { return simd_detail::tree_max<lanes>(v); }
inline float hsum(float v) { return v; }
inline double hsum(double v) { return v; }
inline float hmax(float v) { return v; }
inline double hmax(double v) { return v; }

}  // namespace kiln::cpu
