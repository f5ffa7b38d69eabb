#pragma once
// The CPU's math policy (ops/math.hpp): vmath's functions on SIMD vectors, and on float and double scalars.
#include <kiln/cpu/simd.hpp>
#include <kiln/cpu/vmath.hpp>
#include <kiln/ops/math.hpp>

namespace kiln::cpu {

struct simd_math {
  template <class V> static V let(V v) { return v; }
  template <class V> static V constant(double k) { return splat<V>(static_cast<float>(k)); }
  template <class V> static V exp(V x) { return cpu::exp(x); }
  template <class V> static V expm1(V x) { return cpu::expm1(x); }
  template <class V> static V log(V x) { return cpu::log(x); }
  template <class V> static V log1p(V x) { return cpu::log1p(x); }
  template <class V> static V sqrt(V x) { return cpu::sqrt(x); }
  template <class V> static V abs(V x) { return cpu::abs(x); }
  template <class V> static V tanh(V x) { return cpu::tanh(x); }
  template <class V> static V erf(V x) { return cpu::erf(x); }
  template <class V> static V pow(V x, double p) { return cpu::pow(x, static_cast<float>(p)); }
  template <class V> static V max(V a, V b) { return cpu::max(a, b); }
  template <class V> static V min(V a, V b) { return cpu::min(a, b); }
  template <class V> static V gt(V a, V b) { return cpu::gt(a, b); }
  template <class V> static V ge(V a, V b) { return cpu::ge(a, b); }
  template <class V> static V eq(V a, V b) { return cpu::eq(a, b); }
  template <class V> static V select(V c, V a, V b) { return cpu::select(c, a, b); }
};
static_assert(ops::check_math_policy<simd_math, vfloat>());
static_assert(ops::check_math_policy<simd_math, float>());

}  // namespace kiln::cpu
