#pragma once
// Elementwise binary and ternary primitives (numpy broadcasting). a, b = operands, y = self.
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
  template <class M, class V> static V forward(V a, V b, double) { return a + b; }
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; d[1] = g; }
};
// ∂(a−b) = (g, −g)
struct sub_op {
  KILN_BINARY_TRAITS(sub, "sub")
  template <class M, class V> static V forward(V a, V b, double) { return a - b; }
  template <class B> static constexpr void vjp(B& b, int, int g, int* d) { d[0] = g; d[1] = b.neg(g); }
};
// ∂(a·b) = (g·b, g·a)
struct mul_op {
  KILN_BINARY_TRAITS(mul, "mul")
  template <class M, class V> static V forward(V a, V b, double) { return a * b; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.operand(self, 1));
    d[1] = b.mul(g, b.operand(self, 0));
  }
};
// ∂(a/b) = (g/b, −g·y/b)
struct div_op {
  KILN_BINARY_TRAITS(div, "div")
  static constexpr int cost = 8;
  template <class M, class V> static V forward(V a, V b, double) { return a / b; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int den = b.operand(self, 1);
    d[0] = b.div(g, den);
    d[1] = b.neg(b.div(b.mul(g, self), den));
  }
};
// Comparisons give 1 or 0 and pass no gradient.
struct gt_op {
  KILN_BINARY_TRAITS(gt, "gt")
  template <class M, class V> static V forward(V a, V b, double) { return M::gt(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
struct ge_op {
  KILN_BINARY_TRAITS(ge, "ge")
  template <class M, class V> static V forward(V a, V b, double) { return M::ge(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
struct eq_op {
  KILN_BINARY_TRAITS(eq, "eq")
  template <class M, class V> static V forward(V a, V b, double) { return M::eq(a, b); }
  template <class B> static constexpr void vjp(B&, int, int, int* d) { d[0] = d[1] = -1; }
};
// y = c ? a : b (c is 0/1). ∂ = (none, where(c, g, 0), where(c, 0, g)): the unselected branch gets an exact 0,
// and the builder keeps the mask outermost through later products so NaN/inf there never leaks.
struct where_op {
  static constexpr op kind = op::where; static constexpr op_class cls = op_class::elementwise;
  static constexpr int arity = 3; static constexpr const char* name = "where";
  template <class M, class V> static V forward(V c, V a, V b, double) { return M::select(c, a, b); }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int c = b.operand(self, 0);
    d[0] = -1;
    d[1] = b.where(c, g, b.scalar(0.0));
    d[2] = b.where(c, b.scalar(0.0), g);
  }
};

#undef KILN_BINARY_TRAITS
}  // namespace kiln::ops
