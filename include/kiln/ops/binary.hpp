#pragma once
// Elementwise binary and ternary primitives (numpy broadcasting). a, b = operands, y = self.
// simplify(b, in, k, s): the op's rewrites at construction (in = operand nodes, s = the broadcast shape); −1 to
// append the node as it is. Constant operands of the arithmetic ops are folded by their forward beforehand
// (builder.hpp), and a rewrite to one operand applies only where that operand already has the result's shape.
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

#define KILN_BINARY_TRAITS(op_kind, op_name)                                 \
  static constexpr op kind = op::op_kind;                                    \
  static constexpr op_class cls = op_class::elementwise;                     \
  static constexpr int arity = 2;                                            \
  static constexpr const char* name = op_name;

// ∂(a+b) = (g, g)
struct add_op {
  KILN_BINARY_TRAITS(add, "add")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return a + b; }
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; d[1] = g; }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {  // x+0, 0+x
    if (b.is_const(in[1], 0) && b.shape(in[0]) == s) return in[0];
    if (b.is_const(in[0], 0) && b.shape(in[1]) == s) return in[1];
    return -1;
  }
};
// ∂(a−b) = (g, −g)
struct sub_op {
  KILN_BINARY_TRAITS(sub, "sub")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return a - b; }
  template <class B> static constexpr void vjp(B& b, int, int g, int* d) { d[0] = g; d[1] = b.neg(g); }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {  // x−0, 0−x, x−x
    if (b.is_const(in[1], 0) && b.shape(in[0]) == s) return in[0];
    if (b.is_const(in[0], 0) && b.shape(in[1]) == s) return b.neg(in[1]);
    if (in[0] == in[1]) return b.constant(0, s);
    return -1;
  }
};
// ∂(a·b) = (g·b, g·a)
struct mul_op {
  KILN_BINARY_TRAITS(mul, "mul")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return a * b; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.operand(self, 1));
    d[1] = b.mul(g, b.operand(self, 0));
  }
  // x·0, x·1, x·(−1), and where(c, g, 0)·y → where(c, g·y, 0) (the mask stays outermost, see builder.hpp)
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const int x = in[0], y = in[1];
    if (b.is_const(x, 0) || b.is_const(y, 0)) return b.constant(0, s);
    if (b.is_const(y, 1) && b.shape(x) == s) return x;
    if (b.is_const(x, 1) && b.shape(y) == s) return y;
    if (b.is_const(y, -1) && b.shape(x) == s) return b.neg(x);
    if (b.is_const(x, -1) && b.shape(y) == s) return b.neg(y);
    if (int w = b.hoist_mask(x, [&](int inner) { return b.mul(inner, y); }); w >= 0) return w;
    if (int w = b.hoist_mask(y, [&](int inner) { return b.mul(x, inner); }); w >= 0) return w;
    return -1;
  }
};
// ∂(a/b) = (g/b, −g·y/b)
struct div_op {
  KILN_BINARY_TRAITS(div, "div")
  static constexpr int cost = 8;
  template <class M, class V> static constexpr V forward(V a, V b, double) { return a / b; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int den = b.operand(self, 1);
    d[0] = b.div(g, den);
    d[1] = b.neg(b.div(b.mul(g, self), den));
  }
  // constants folded unless the divisor is 0; x/1; 0/x; where(c, g, 0)/y → where(c, g/y, 0)
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const int x = in[0], y = in[1];
    if (b.is_const(x) && b.is_const(y) && b.node_at(y).k != 0) return b.constant(b.node_at(x).k / b.node_at(y).k, s);
    if (b.is_const(y, 1) && b.shape(x) == s) return x;
    if (b.is_const(x, 0) && b.shape(y) == s && !b.is_const(y)) return b.constant(0, s);
    if (int w = b.hoist_mask(x, [&](int inner) { return b.div(inner, y); }); w >= 0) return w;
    return -1;
  }
};
// Comparisons give 1 or 0 and pass no gradient.
struct gt_op {
  KILN_BINARY_TRAITS(gt, "gt")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return M::gt(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
struct ge_op {
  KILN_BINARY_TRAITS(ge, "ge")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return M::ge(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
struct eq_op {
  KILN_BINARY_TRAITS(eq, "eq")
  template <class M, class V> static constexpr V forward(V a, V b, double) { return M::eq(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
// y = c ? a : b (c is 0/1). ∂ = (none, where(c, g, 0), where(c, 0, g)): the unselected branch gets an exact 0,
// and the builder keeps the mask outermost through later products so NaN/inf there never leaks.
struct where_op {
  static constexpr op kind = op::where; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 3; static constexpr const char* name = "where";
  template <class M, class V> static constexpr V forward(V c, V a, V b, double) { return M::select(c, a, b); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int c = b.operand(self, 0);
    d[0] = -1;
    d[1] = b.where(c, g, b.scalar(0.0));
    d[2] = b.where(c, b.scalar(0.0), g);
  }
  // a constant mask picks a branch; where(c, x, x) = x; where(c, 0, 0) = 0
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const int c = in[0], x = in[1], y = in[2];
    if (b.is_const(c)) return b.node_at(c).k != 0 ? b.broadcast_to(x, s) : b.broadcast_to(y, s);
    if (x == y) return b.broadcast_to(x, s);
    if (b.is_const(x, 0) && b.is_const(y, 0)) return b.constant(0, s);
    return -1;
  }
};

#undef KILN_BINARY_TRAITS
}  // namespace kiln::ops
