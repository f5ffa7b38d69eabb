#pragma once
// Indexing: a gather of table rows by integer index (an embedding lookup) and its adjoint, a scatter-add. Both
// read their operands from memory at computed positions, so each is a kernel of its own (op_class::indexing);
// what feeds them is materialized.
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

// y[r, c·D + j] = T[idx[r, c], j]: T [V, D] a table, idx [R, C] row indices (float, exact integers in [0, V)),
// y [R, C·D] the C looked-up rows of each sample side by side (PyTorch: embedding(idx).view(R, C·D)).
// Adjoint for T: the scatter-add of g by the same indices; idx has none.
struct gather_op {
  static constexpr op kind = op::gather; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "gather";
  static constexpr dims shape_of(const dims* in, double) { return {in[1].rows, in[1].cols * in[0].cols}; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    const int table = b.operand(self, 0), idx = b.operand(self, 1);
    d[0] = b.scatter_add(b.broadcast_to(g, b.shape(self)), idx, b.shape(table).rows);
  }
};

// y[v, j] = Σ over (r, c) with idx[r, c] = v of g[r, c·D + j], in the order r = 0, 1, … then c = 0, 1, …, so
// every backend adds in the same order (deterministic): g [R, C·D], idx [R, C], y [V, D] with V = k.
// Adjoint for g: the gather of the adjoint by the same indices.
struct scatter_add_op {
  static constexpr op kind = op::scatter_add; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "scatter_add";
  static constexpr bool uses_k = true;  // the table's row count V
  static constexpr dims shape_of(const dims* in, double rows) { return {static_cast<int>(rows), in[0].cols / in[1].cols}; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.gather(b.broadcast_to(g, b.shape(self)), b.operand(self, 1));
  }
};

}  // namespace kiln::ops
