#pragma once
// Elementwise unary primitives. x = operand, y = self (the forward value, reused by the derivative).
// simplify(b, in, k, s): the op's rewrites at construction, −1 to append the node as it is (see binary.hpp).
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

#define KILN_UNARY_TRAITS(op_kind, op_name)                                  \
  static constexpr op kind = op::op_kind;                                    \
  static constexpr op_class cls = op_class::elementwise;                     \
  static constexpr int arity = 1;                                            \
  static constexpr const char* name = op_name;

struct neg_op {
  static constexpr op kind = op::neg; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "neg";
  template <class M, class V> static constexpr V forward(V x, double) { return -x; }
  template <class B> static constexpr void vjp(B& b, int, int g, int* d) { d[0] = b.neg(g); }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims) {  // −(−x) = x; the mask outermost
    if (b.node_at(in[0]).kind == op::neg) return b.node_at(in[0]).in[0];
    return b.hoist_mask(in[0], [&](int inner) { return b.neg(inner); });
  }
};
// y = e^x, dy/dx = y
struct exp_op {
  KILN_UNARY_TRAITS(exp, "exp")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::exp(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = b.mul(g, self); }
};
// y = e^x − 1 without the cancellation of exp(x) − 1 near 0 (elu's negative side, as PyTorch computes it);
// dy/dx = e^x, taken of x rather than as y + 1, which is 0 in float once e^x < 2^−24 (PyTorch's elu backward
// does the same)
struct expm1_op {
  KILN_UNARY_TRAITS(expm1, "expm1")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::expm1(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = b.mul(g, b.exp(b.operand(self, 0))); }
};
// y = ln x, dy/dx = 1/x
struct log_op {
  KILN_UNARY_TRAITS(log, "log")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::log(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = b.div(g, b.operand(self, 0)); }
};
// y = ln(1+x), dy/dx = 1/(1+x)
struct log1p_op {
  KILN_UNARY_TRAITS(log1p, "log1p")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::log1p(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.div(g, b.add(b.operand(self, 0), b.scalar(1.0)));
  }
};
// y = √x, dy/dx = 1/(2y)
struct sqrt_op {
  KILN_UNARY_TRAITS(sqrt, "sqrt")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::sqrt(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = b.div(g, b.mul(self, b.scalar(2.0))); }
};
// y = |x|, dy/dx = sign(x) with sign(0) = 0 (PyTorch's convention at the kink)
struct abs_op {
  KILN_UNARY_TRAITS(abs, "abs")
  template <class M, class V> static constexpr V forward(V x, double) { return M::abs(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int x = b.operand(self, 0);
    d[0] = b.mul(g, b.sub(b.gt(x, b.scalar(0.0)), b.gt(b.scalar(0.0), x)));
  }
};
// y = tanh x, dy/dx = 1 − y²
struct tanh_op {
  KILN_UNARY_TRAITS(tanh, "tanh")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::tanh(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.sub(b.scalar(1.0), b.mul(self, self)));
  }
};
// y = 1/(1+e^−x), dy/dx = y(1−y). A primitive (not exp/recip) so that the derivative never forms inf/inf.
// Forward with e = e^−|x| ∈ (0, 1]: y = (x < 0 ? e : 1)/(1 + e), so nothing overflows for either sign and
// there is no 1 − y cancellation. The rounding of d = 1 + e is recovered exactly (Fast2Sum: err = e − (d − 1))
// and corrects the quotient q: (·)/(d + err) = q·(1 − err/d + …), within about 1.5 ulp in float.
struct sigmoid_op {
  KILN_UNARY_TRAITS(sigmoid, "sigmoid")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) {
    const V one = M::template constant<V>(1.0);
    const V e = M::let(M::exp(-M::abs(x)));
    const V d = M::let(one + e);
    const V err = e - (d - one);
    const V q = M::let(M::select(M::gt(M::template constant<V>(0.0), x), e, one) / d);
    return q - q * (err / d);
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.mul(self, b.sub(b.scalar(1.0), self)));
  }
};
// y = erf x, dy/dx = (2/√π) e^(−x²)
struct erf_op {
  KILN_UNARY_TRAITS(erf, "erf")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::erf(x); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int x = b.operand(self, 0);
    d[0] = b.mul(g, b.mul(b.scalar(1.1283791670955126), b.exp(b.neg(b.mul(x, x)))));
  }
};
// y = x if x > 20 else ln(1+e^x) (PyTorch's threshold; e^x is taken of min(x, 20) so that it never
// overflows in the branch not taken); dy/dx = 1 if x > 20 else σ(x)
struct softplus_op {
  KILN_UNARY_TRAITS(softplus, "softplus")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) {
    const V threshold = M::template constant<V>(20.0);
    return M::select(M::gt(x, threshold), x, M::log1p(M::exp(M::min(x, threshold))));
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int x = b.operand(self, 0);
    d[0] = b.mul(g, b.where(b.gt(x, b.scalar(20.0)), b.scalar(1.0), b.sigmoid(x)));
  }
};
// y = 1/x, dy/dx = −y²
struct recip_op {
  KILN_UNARY_TRAITS(recip, "recip")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V x, double) { return M::template constant<V>(1.0) / x; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = b.neg(b.mul(g, b.mul(self, self))); }
};
// y = x^k for a constant k, dy/dx = k x^(k−1)
struct pow_c_op {
  static constexpr op kind = op::pow_c; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "pow"; static constexpr int cost = 8;
  static constexpr bool uses_k = true;  // the exponent is part of the op
  template <class M, class V> static constexpr V forward(V x, double k) { return M::pow(x, k); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    double k = b.node_at(self).k;
    d[0] = b.mul(g, b.mul(b.scalar(k), b.pow(b.operand(self, 0), k - 1.0)));
  }
  template <class B> static constexpr int simplify(B& b, const int* in, double k, dims s) {  // x¹ = x, x⁰ = 1
    if (k == 1.0) return in[0];
    if (k == 0.0) return b.constant(1.0, s);
    return -1;
  }
};
// y = max(x, k); dy/dx = 1 where x > k strictly, else exactly 0 (relu′(0) = 0 as in PyTorch). A where, not a
// product with a mask, so that the clamped region passes 0 even when the upstream gradient is inf (bce's log(0)).
struct max_c_op {
  static constexpr op kind = op::max_c; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "max";
  static constexpr bool uses_k = true;  // the bound is part of the op
  template <class M, class V> static constexpr V forward(V x, double k) { return M::max(x, M::template constant<V>(k)); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.where(b.gt(b.operand(self, 0), b.scalar(b.node_at(self).k)), g, b.scalar(0.0));
  }
};
// y = min(x, k); dy/dx = 1 where x < k strictly
struct min_c_op {
  static constexpr op kind = op::min_c; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "min";
  static constexpr bool uses_k = true;
  template <class M, class V> static constexpr V forward(V x, double k) { return M::min(x, M::template constant<V>(k)); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.where(b.gt(b.scalar(b.node_at(self).k), b.operand(self, 0)), g, b.scalar(0.0));
  }
};
// y = x forward; no gradient flows back (used for the max-shift of log_softmax, which the result does not depend on)
struct stop_gradient_op {
  static constexpr op kind = op::stop_gradient; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "detach";
  static constexpr int cost = 0;
  template <class M, class V> static constexpr V forward(V x, double) { return x; }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = -1; }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims) {  // nothing to detach
    const op a = b.node_at(in[0]).kind;
    return a == op::constant || a == op::stop_gradient ? in[0] : -1;
  }
};
// y = x stretched to the node's shape; the adjoint sums back over the stretched dimensions
struct broadcast_to_op {
  static constexpr op kind = op::broadcast_to; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 1; static constexpr const char* name = "broadcast";
  static constexpr int cost = 0;
  template <class M, class V> static constexpr V forward(V x, double) { return x; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) { d[0] = g; (void)self; (void)b; }  // summed back by autodiff
};

#undef KILN_UNARY_TRAITS
}  // namespace kiln::ops
