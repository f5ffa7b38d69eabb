#pragma once
// Elementwise math overloaded for float and double (the std:: functions) and for vfloat, where each function
// is a SIMD range reduction plus a polynomial (coefficients fitted for this file: Chebyshev fits of the
// reduced functions, rounded to float). Vector results are within about 2 ulp of the exact value and treat
// 0, -0, ±inf, NaN, denormals, overflow and underflow as std:: does (tests/cpu/test_vmath.cpp measures it).
//
// exp log log1p expm1 tanh erf sqrt abs pow(x, p)
// (sigmoid and softplus are composed from these in their op structs, include/kiln/ops/unary.hpp.)
#include <kiln/cpu/simd.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace kiln::cpu {

// ---------------------------------------------------------------- scalar overloads: std::, or the definition
inline float exp(float x) { return std::exp(x); }
inline float log(float x) { return std::log(x); }
inline float log1p(float x) { return std::log1p(x); }
inline float expm1(float x) { return std::expm1(x); }
inline float tanh(float x) { return std::tanh(x); }
inline float erf(float x) { return std::erf(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float abs(float x) { return std::fabs(x); }
inline float pow(float x, float p) { return std::pow(x, p); }
inline double exp(double x) { return std::exp(x); }
inline double log(double x) { return std::log(x); }
inline double log1p(double x) { return std::log1p(x); }
inline double expm1(double x) { return std::expm1(x); }
inline double tanh(double x) { return std::tanh(x); }
inline double erf(double x) { return std::erf(x); }
inline double sqrt(double x) { return std::sqrt(x); }
inline double abs(double x) { return std::fabs(x); }
inline double pow(double x, float p) { return std::pow(x, static_cast<double>(p)); }

// ---------------------------------------------------------------- vector building blocks
namespace vmath_detail {
inline constexpr float inf = std::numeric_limits<float>::infinity();
inline constexpr float nan = std::numeric_limits<float>::quiet_NaN();
inline constexpr float log2e = 1.44269504088896341f;
// ln2 = ln2_hi + ln2_lo with ln2_hi short (9 significant bits), so n·ln2_hi is exact for |n| < 2^15.
inline constexpr float ln2_hi = 0.693359375f;
inline constexpr float ln2_lo = -2.12194440e-4f;

// c[0]·x^(N-1) + c[1]·x^(N-2) + ... + c[N-1]
template <std::size_t N>
inline vfloat horner(vfloat x, const float (&c)[N]) {
  vfloat r = splat(c[0]);
  for (std::size_t i = 1; i < N; ++i) r = fma(r, x, splat(c[i]));
  return r;
}

// 2^n for integer lanes n in [-126, 127], built from the exponent bits.
inline vfloat pow2i(vint n) { return as_float((n + 127) << 23); }

// a·a = hi + lo exactly (lo by fma, or by Dekker's split into 12-bit halves where there is no FMA unit).
inline void square_exact(vfloat a, vfloat& hi, vfloat& lo) {
  hi = a * a;
  if constexpr (has_hardware_fma) {
    lo = fma(a, a, -hi);
  } else {
    const vfloat ah = as_float(as_int(a) & static_cast<std::int32_t>(0xFFFFF000u));
    const vfloat al = a - ah;
    lo = ((ah * ah - hi) + 2.0f * ah * al) + al * al;
  }
}

inline vfloat copysign(vfloat magnitude, vfloat sign) {
  return as_float((as_int(magnitude) & 0x7FFFFFFF) | (as_int(sign) & static_cast<std::int32_t>(0x80000000u)));
}

// x = n·ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (|x| < 2^21). Adding 1.5·2^23 pushes the fraction
// bits of x/ln2 out of the mantissa, which rounds to nearest; the integer is then read from the low bits.
inline vfloat reduce_ln2(vfloat x, vint& n) {
  const vfloat magic = splat(12582912.0f);
  const vfloat t = fma(x, splat(log2e), magic);
  n = as_int(t) - as_int(magic);
  const vfloat nf = t - magic;
  const vfloat r = fma(nf, splat(-ln2_hi), x);
  return fma(nf, splat(-ln2_lo), r);
}

// e^r - 1 = r + r²·Q(r) for |r| <= ln2/2 (Q fitted on that interval; relative error of e^r below 1e-8).
inline vfloat expm1_reduced(vfloat r) {
  constexpr float q[] = {1.392617589e-03f, 8.363173343e-03f, 4.166655615e-02f, 1.666657776e-01f, 5.0e-01f};
  return fma(r * r, horner(r, q), r);
}
}  // namespace vmath_detail

// ---------------------------------------------------------------- vector functions
inline vfloat abs(vfloat x) { return as_float(as_int(x) & 0x7FFFFFFF); }

inline vfloat sqrt(vfloat x) {
#if defined(KILN_CPU_X86_512)
  // VSQRTPS on 16 lanes occupies the divider for about 12 cycles, and Adam's update needs a root and a
  // quotient per element: the divider, not the FMA units, bounds that epilogue. So for positive normal x:
  // y ≈ 1/√x from VRSQRT14 (relative error < 2^-14), s0 = x·y, and one Newton step in residual form,
  // √x ≈ s0 + (y/2)·(x − s0²), which squares the error (< 2^-27) before the last rounding: within 1 ulp, in
  // four FMA-unit operations. Zero lanes return x (keeping -0); a vector with any other lane outside
  // [2^-126, 2^126) (negative, denormal, huge, inf, NaN) takes VSQRTPS.
  const __m512 v = (__m512)x;
  const __mmask16 normal = _mm512_cmp_ps_mask(v, _mm512_set1_ps(0x1p-126f), _CMP_GE_OQ) &
                           _mm512_cmp_ps_mask(v, _mm512_set1_ps(0x1p126f), _CMP_LT_OQ);
  const __mmask16 zero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_EQ_OQ);
  if (static_cast<__mmask16>(normal | zero) != static_cast<__mmask16>(0xFFFF))
    return (vfloat)_mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xFFFF), v);  // unmasked form warns on GCC 12
  const vfloat y = (vfloat)_mm512_maskz_rsqrt14_ps(normal, v);
  const vfloat s0 = x * y;
  const vfloat s = fma(y * 0.5f, fma(-s0, s0, x), s0);
  return (vfloat)_mm512_mask_blend_ps(zero, (__m512)s, v);
#elif defined(KILN_CPU_X86_256)
  return (vfloat)_mm256_sqrt_ps((__m256)x);
#elif defined(KILN_CPU_X86_128)
  return (vfloat)_mm_sqrt_ps((__m128)x);
#else
  for (int i = 0; i < lanes; ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}

// e^x = 2^n·e^r. x is clamped to [-104, 89] (e^x rounds to 0 below, overflows above), so n lies in
// [-150, 128]; 2^n is applied as two factors 2^(n/2) that are both normal, so denormal results round once
// and large ones overflow to inf. NaN passes through the clamp and the arithmetic.
inline vfloat exp(vfloat x) {
  using namespace vmath_detail;
  const vfloat xc = min(max(x, splat(-104.0f)), splat(89.0f));
  vint n;
  const vfloat em1r = expm1_reduced(reduce_ln2(xc, n));
  const vint n1 = n >> 1;
  const vfloat s1 = pow2i(n1);
  return fma(s1, em1r, s1) * pow2i(n - n1);  // 2^n1·(1 + em1r) rounds once; ·2^(n-n1) is exact unless tiny
}

// x = 2^e·m with m in [sqrt(1/2), sqrt(2)), found by offsetting the bits so that the mantissa carries into
// the exponent exactly when m >= sqrt(2). log x = e·ln2 + log1p(f), f = m - 1 (exact), with
// log1p(f) = f - f²/2 + f³·P(f). Denormal inputs are first scaled by 2^23.
inline vfloat log(vfloat x) {
  using namespace vmath_detail;
  constexpr float pc[] = {6.971611828e-02f,  -1.147973388e-01f, 1.168541983e-01f,
                          -1.242568716e-01f, 1.424905807e-01f,  -1.666780263e-01f,
                          2.000071555e-01f,  -2.499999702e-01f, 3.333333135e-01f};
  constexpr std::int32_t one_bits = 0x3F800000, sqrt_half_bits = 0x3F3504F3;
  const vint denormal = x < 0x1p-126f;
  const vfloat xs = blend(denormal, x * 0x1p23f, x);
  const vint bits = as_int(xs) + (one_bits - sqrt_half_bits);
  const vint e = (bits >> 23) - 127 - (denormal & 23);
  const vfloat f = as_float((bits & 0x007FFFFF) + sqrt_half_bits) - 1.0f;
  const vfloat ef = __builtin_convertvector(e, vfloat);
  const vfloat f2 = f * f;
  // Small terms first; e·ln2_hi is exact and added last.
  vfloat y = f2 * f * horner(f, pc);
  y = fma(ef, splat(ln2_lo), y);
  y = fma(splat(-0.5f), f2, y);
  y = y + f;
  y = fma(ef, splat(ln2_hi), y);
  y = blend(x == 0.0f, splat(-inf), y);
  y = blend(x == inf, x, y);
  return blend((x < 0.0f) | (x != x), splat(nan), y);
}

// u = 1 + x rounds; the rounding error c = (1 + x) - u is exact by Fast2Sum (larger operand first), and
// log1p(x) = log(u) + log(1 + c/u) ≈ log(u) + c/u.
inline vfloat log1p(vfloat x) {
  using namespace vmath_detail;
  const vfloat u = 1.0f + x;
  const vfloat c = blend(abs(x) <= 1.0f, x - (u - 1.0f), 1.0f - (u - x));
  vfloat y = log(u) + c / u;
  y = blend(u == 1.0f, x, y);          // |x| <= 2^-24: log1p(x) = x to within half an ulp; keeps -0
  y = blend(x == inf, x, y);           // c is NaN there
  return blend(u == 0.0f, splat(-inf), y);  // x = -1: c/u is 0/0
}

// x = n·ln2 + r with n = trunc(x / ln2), so r has the sign of x and |r| < ln2; then
// e^x - 1 = 2^n·(e^r - 1) + (2^n - 1) where both terms have the same sign (no cancellation), 2^n - 1 is exact
// where it matters, and the fma rounds once. x is clamped to [-30, 89] (e^x - 1 rounds to -1 below); 2^n is
// capped at 2^127 and the last factor 2 applied after, so large x overflows to inf.
inline vfloat expm1(vfloat x) {
  using namespace vmath_detail;
  constexpr float q[] = {2.503439100e-05f, 2.007428557e-04f, 1.388832927e-03f, 8.332772180e-03f,
                         4.166667163e-02f, 1.666667014e-01f, 5.0e-01f};  // e^r - 1 = r + r²·Q(r) on [-ln2, ln2]
  const vint is_nan = x != x;
  const vfloat xc = blend(is_nan, splat(0.0f), min(max(x, splat(-30.0f)), splat(89.0f)));
  const vint n = __builtin_convertvector(xc * log2e, vint);  // truncates toward zero
  const vfloat nf = __builtin_convertvector(n, vfloat);
  const vfloat r = fma(nf, splat(-ln2_lo), fma(nf, splat(-ln2_hi), xc));
  const vfloat em1r = fma(r * r, horner(r, q), r);
  const vint over = n > 127;
  const vfloat t = pow2i(n + over);  // over is -1 where n = 128
  const vfloat y = fma(t, em1r, t - 1.0f);
  const vfloat scaled = blend(over, y * 2.0f, y);
  return blend(is_nan | (abs(x) < 0x1p-25f), x, scaled);  // e^x - 1 rounds to x; keeps -0 and denormals
}

// tanh is odd: work on |x| and copy the sign (so tanh(-0) = -0). |x| < 0.625: tanh = |x| + |x|³·P(x²).
// Beyond: tanh|x| = (e^2|x| - 1) / (e^2|x| + 1) = m / (m + 2) with m = expm1(2|x|), no cancellation;
// |x| is clamped at 9.1 where tanh already rounds to 1.
inline vfloat tanh(vfloat x) {
  using namespace vmath_detail;
  constexpr float pc[] = {2.292744815e-03f, -8.343945257e-03f, 2.176891826e-02f,
                          -5.395925790e-02f, 1.333330423e-01f, -3.333333433e-01f};
  const vfloat ax = abs(x);
  const vfloat u = ax * ax;
  const vfloat small = fma(ax, u * horner(u, pc), ax);
  const vfloat m = expm1(2.0f * min(ax, splat(9.1f)));
  return copysign(blend(ax < 0.625f, small, m / (m + 2.0f)), x);
}

// erf is odd: work on |x| and copy the sign. |x| < 1: erf|x| = |x|·(c0 + x²·P(x²)), c0 = 2/sqrt(pi) split
// into float hi + lo so that its rounding does not cost half an ulp. Beyond: erf|x| = 1 - e^-x²·G(1/|x|), with G(t) ≈ erfc(1/t)·e^(1/t²) smooth on
// [1/3.93, 1]; |x| is clamped at 3.93, past which erf rounds to ±1. e^-x² uses x² = hi + lo (fma) so that
// the rounding of x² does not leak into the result.
inline vfloat erf(vfloat x) {
  using namespace vmath_detail;
  constexpr float ps[] = {8.379755309e-05f, -8.161986480e-04f, 5.204578862e-03f,
                          -2.686169930e-02f, 1.128375381e-01f,  -3.761263788e-01f};
  constexpr float c0_hi = 1.128379226e+00f, c0_lo = -5.863538342e-08f;
  constexpr float gs[] = {-1.981076039e-02f, 1.294393390e-01f, -3.704362512e-01f, 5.918759108e-01f,
                          -5.151169300e-01f, 5.403503403e-02f, 5.572090745e-01f,  3.881561861e-04f};
  const vfloat ax = abs(x);
  const vfloat u = ax * ax;
  const vfloat small = fma(ax, splat(c0_hi), ax * fma(u, horner(u, ps), splat(c0_lo)));
  const vfloat a = min(ax, splat(3.93f));
  vfloat hi, lo;
  square_exact(a, hi, lo);
  vfloat e = exp(-hi);
  e = fma(-e, lo, e);  // e^-(hi+lo) = e^-hi·(1 - lo + ...)
  const vfloat large = fma(-e, horner(1.0f / a, gs), splat(1.0f));
  return copysign(blend(ax < 1.0f, small, large), x);
}

namespace vmath_detail {
// |x|^p in double lanes, for the general exponent: float's log then exp would turn a 1-ulp error of log x
// into |p·log x| ulps, so the product p·log x is formed in double (error ~1e-15) and exp taken in double.
inline constexpr int dlanes = lanes / 2;
using vdouble = double __attribute__((vector_size(dlanes * sizeof(double))));
using vlong = std::int64_t __attribute__((vector_size(dlanes * sizeof(double))));
using vfloat_half = simd_detail::fvec<dlanes>;

// x > 0 finite (denormal floats are normal doubles).
inline vdouble pow_positive(vdouble x, double p) {
  constexpr std::int64_t one_bits = 0x3FF0000000000000, sqrt_half_bits = 0x3FE6A09E667F3BCD;
  constexpr double ln2 = 0.69314718055994530942, log2e_d = 1.4426950408889634074;
  // log x = e·ln2 + log m, m in [sqrt(1/2), sqrt(2)); log m = 2·atanh(s) = 2s·(1 + s²/3 + ... + s^14/15),
  // s = (m-1)/(m+1), |s| <= 0.172 (truncation below 2e-13 relative).
  const vlong bits = std::bit_cast<vlong>(x) + (one_bits - sqrt_half_bits);
  const vlong e = (bits >> 52) - 1023;
  const vdouble m = std::bit_cast<vdouble>((bits & 0x000FFFFFFFFFFFFF) + sqrt_half_bits);
  const vdouble s = (m - 1.0) / (m + 1.0);
  const vdouble s2 = s * s;
  vdouble q = vdouble{} + 1.0 / 15.0;
  for (int k = 13; k >= 1; k -= 2) q = q * s2 + 1.0 / k;
  const vdouble logx = __builtin_convertvector(e, vdouble) * ln2 + 2.0 * s * q;
  vdouble y = logx * p;
  y = y < -110.0 ? -110.0 : y;  // beyond [-110, 90] the float result is 0 or inf anyway
  y = y > 90.0 ? 90.0 : y;
  // e^y = 2^n·e^r, |r| <= ln2/2; Taylor to r^12/12! (truncation below 1e-14)
  const vdouble magic = vdouble{} + 6755399441055744.0;  // 1.5·2^52
  const vdouble t = y * log2e_d + magic;
  const vlong n = std::bit_cast<vlong>(t) - std::bit_cast<vlong>(magic);
  const vdouble r = y - (t - magic) * ln2;
  vdouble er = vdouble{} + 1.0 / 479001600.0;
  double factorial = 479001600.0;  // 12!
  for (int k = 12; k >= 1; --k) {
    factorial /= k;
    er = er * r + 1.0 / factorial;
  }
  return er * std::bit_cast<vdouble>((n + 1023) << 52);
}

template <int... I>
inline vfloat pow_general(vfloat ax, float p, std::integer_sequence<int, I...>) {
  const vfloat_half lo = __builtin_shufflevector(ax, ax, I...);
  const vfloat_half hi = __builtin_shufflevector(ax, ax, (I + dlanes)...);
  const vfloat_half rlo = __builtin_convertvector(pow_positive(__builtin_convertvector(lo, vdouble), p), vfloat_half);
  const vfloat_half rhi = __builtin_convertvector(pow_positive(__builtin_convertvector(hi, vdouble), p), vfloat_half);
  return __builtin_shufflevector(rlo, rhi, I..., (I + dlanes)...);
}
}  // namespace vmath_detail

// x^p for one exponent p shared by all lanes (std::pow's special cases included). Exponents 0, 1, 2, -1
// and 1/2 are exact or correctly rounded single operations; others go through double (see pow_positive).
inline vfloat pow(vfloat x, float p) {
  using namespace vmath_detail;
  if (p == 0.0f) return splat(1.0f);  // even for NaN x
  if (p == 1.0f) return x;
  if (p == 2.0f) return x * x;
  if (p == -1.0f) return 1.0f / x;
  if (p == 0.5f) return blend(x == -inf, splat(inf), sqrt(x) + 0.0f);  // pow(-0, .5) = +0, pow(-inf, .5) = inf
  if (!std::isfinite(p)) {  // ±inf or NaN exponent: no arithmetic to speak of, defer to std::pow lane by lane
    for (int i = 0; i < lanes; ++i) x[i] = std::pow(x[i], p);
    return x;
  }
  const vfloat ax = abs(x);
  vfloat y = pow_general(ax, p, std::make_integer_sequence<int, dlanes>{});
  y = blend(ax == 0.0f, splat(p > 0.0f ? 0.0f : inf), y);
  y = blend(ax == inf, splat(p > 0.0f ? inf : 0.0f), y);
  const bool p_integer = p == std::trunc(p);
  if (p_integer && std::fmod(p, 2.0f) != 0.0f)
    y = copysign(y, x);  // odd power keeps the sign (pow(-0, -3) = -inf)
  else if (!p_integer)
    y = blend((x < 0.0f) & (x > -inf), splat(nan), y);  // negative base, fractional power
  return blend(x != x, x, y);
}

}  // namespace kiln::cpu
