#pragma once
// Reductions (the reduced dimension is kept as 1), transpose and the contraction.
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

// y[0, j] = Σ_i x[i, j]; adjoint: g broadcast back over rows
struct sum_rows_op {
  static constexpr op kind = op::sum_rows; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "sum_rows";
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; }
};
// y[i, 0] = Σ_j x[i, j]
struct sum_cols_op {
  static constexpr op kind = op::sum_cols; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "sum_cols";
  template <class B> static constexpr void vjp(B&, int, int g, int* d) { d[0] = g; }
};
// y[i, 0] = max_j x[i, j]; adjoint goes to every position equal to the max
struct max_cols_op {
  static constexpr op kind = op::max_cols; static constexpr op_class cls = op_class::reduction;
  static constexpr int arity = 1; static constexpr const char* name = "max_cols";
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.mul(g, b.eq(b.operand(self, 0), self));
  }
};
// y = xᵀ; adjoint gᵀ. Backends fold it into the strides of a contraction operand.
struct transpose_op {
  static constexpr op kind = op::transpose; static constexpr op_class cls = op_class::layout;
  static constexpr int arity = 1; static constexpr const char* name = "transpose";
  template <class B> static constexpr void vjp(B& b, int, int g, int* d) { d[0] = b.transpose(g); }
};
// C = A·B, A [m,k], B [k,n]; ∂A = G·Bᵀ, ∂B = Aᵀ·G (the dense layer's weight gradient contracts the batch)
struct matmul_op {
  static constexpr op kind = op::matmul; static constexpr op_class cls = op_class::contraction;
  static constexpr int arity = 2; static constexpr const char* name = "matmul";
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    int a = b.operand(self, 0), w = b.operand(self, 1);
    int gf = b.broadcast_to(g, b.node_at(self).shape);  // a contraction needs its operand at full shape
    d[0] = b.matmul(gf, b.transpose(w));
    d[1] = b.matmul(b.transpose(a), gf);
  }
};

}  // namespace kiln::ops
