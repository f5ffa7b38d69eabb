#pragma once
// Reductions (the reduced dimension is kept as 1), transpose and the contraction. Each has its shape rule,
// shape_of(operand shapes), and its rewrites at construction, simplify(b, in, k, s) (−1: append as it is).
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

// y[0, j] = Σ_i x[i, j]; adjoint: g broadcast back over rows
struct sum_rows_op {
  static constexpr op kind = op::sum_rows; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "sum_rows";
  static constexpr dims shape_of(const dims* in) { return {1, in[0].cols}; }
  // Σ over one row is the row; a constant sums to a constant (unless the count is the run-time batch)
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const dims a = b.shape(in[0]);
    if (a.rows == 1) return in[0];
    if (b.is_const(in[0]) && !a.batched()) return b.constant(b.node_at(in[0]).k * a.rows, s);
    return -1;
  }
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; }
};
// y[i, 0] = Σ_j x[i, j]
struct sum_cols_op {
  static constexpr op kind = op::sum_cols; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "sum_cols";
  static constexpr dims shape_of(const dims* in) { return {in[0].rows, 1}; }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const dims a = b.shape(in[0]);
    if (a.cols == 1) return in[0];
    if (b.is_const(in[0]) && !a.batched()) return b.constant(b.node_at(in[0]).k * a.cols, s);
    return -1;
  }
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; }
};
// y[i, 0] = max_j x[i, j]; adjoint goes to every position equal to the max
struct max_cols_op {
  static constexpr op kind = op::max_cols; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "max_cols";
  static constexpr dims shape_of(const dims* in) { return {in[0].rows, 1}; }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims) {
    return b.shape(in[0]).cols == 1 ? in[0] : -1;
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.eq(b.operand(self, 0), self));
  }
};
// y = xᵀ; adjoint gᵀ. Backends fold it into the strides of a contraction operand.
struct transpose_op {
  static constexpr op kind = op::transpose; static constexpr op_class cls = op_class::layout;
  static constexpr int arity = 1; static constexpr const char* name = "transpose";
  static constexpr dims shape_of(const dims* in) { return {in[0].cols, in[0].rows}; }
  // Transposes move toward contractions and leaves, where they are free (strides):
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    const node a = b.node_at(in[0]);  // a copy: appending may move nodes
    if (a.kind == op::transpose) return a.in[0];
    // (A·B)ᵀ = Bᵀ·Aᵀ, unless that would put the batch in the columns of a contraction (then it stays a view)
    if (a.kind == op::matmul && b.shape(a.in[0]).rows != batch) {
      const int l = a.in[0], r = a.in[1];
      const int rt = b.transpose(r);
      return b.matmul(rt, b.transpose(l));
    }
    // a constant transposes into a constant, unless that would put the batch in its columns (no kernel runs
    // over [features, batch]): then it stays a view of the [batch, features] constant, as a contraction reads it
    if (a.kind == op::constant && a.shape.rows != batch) return b.constant(a.k, s);
    if (a.shape == dims{1, 1} && b.class_of(a.kind) != op_class::leaf) return in[0];  // a scalar is its own transpose
    // (f(a, b))ᵀ = f(aᵀ, bᵀ) for elementwise f. Not for values with a batch dimension: a [features, batch]
    // elementwise value has no kernel.
    if (a.shape.rows == batch || a.shape.cols == batch) return -1;
    if (a.kind == op::broadcast_to) return b.broadcast_to(b.transpose(a.in[0]), s);
    if (b.class_of(a.kind) == op_class::elementwise) {
      int t[3] = {-1, -1, -1};
      for (int i = 0; i < 3 && a.in[i] >= 0; ++i) t[i] = b.transpose(a.in[i]);
      return b.make(a.kind, t, a.k);
    }
    return -1;
  }
  template <class B> static constexpr void vjp(B& b, int, int g, int* d) { d[0] = b.transpose(g); }
};
// C = A·B, A [m,k], B [k,n]; ∂A = G·Bᵀ, ∂B = Aᵀ·G (the dense layer's weight gradient contracts the batch)
struct matmul_op {
  static constexpr op kind = op::matmul; static constexpr op_class cls = op_class::contraction;
  static constexpr int arity = 2; static constexpr const char* name = "matmul";
  static constexpr dims shape_of(const dims* in) {
    if (in[0].cols != in[1].rows) throw "kiln: matmul inner dimensions differ";  // reported readably before (contraction_check)
    return {in[0].rows, in[1].cols};
  }
  template <class B> static constexpr int simplify(B& b, const int* in, double, dims s) {
    return b.is_const(in[0], 0) || b.is_const(in[1], 0) ? b.constant(0, s) : -1;
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int a = b.operand(self, 0), w = b.operand(self, 1);
    int gf = b.broadcast_to(g, b.node_at(self).shape);  // a contraction needs its operand at full shape
    d[0] = b.matmul(gf, b.transpose(w));
    d[1] = b.matmul(b.transpose(a), gf);
  }
};

}  // namespace kiln::ops
