#pragma once
// Collectives: values that need every rank of a data-parallel run. all_reduce(x) is Σ over ranks of x (in a
// single process, x itself). It is a kernel of its own (op_class::indexing: it reads its materialized operand
// from memory) and a *barrier* of the plan: a kernel that reads its value runs only after the sum over ranks
// is complete, while the kernel that copies x out starts that sum as soon as x exists (lower() places it right
// after the kernel computing x), so the ranks' communication overlaps the rest of the backward pass.
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

// y = Σ over ranks of w·x, where w is this rank's weight: hyperparameter slot k of the step (a data-parallel
// step's share of the batch, so that uneven shares still give the batch mean), or 1 when k < 0. The weight is
// applied as the operand is copied out, so the sum depends on nothing but x and can start as soon as x exists.
// The sum is linear, so the adjoint of x is the same weighted all-reduce of the adjoint.
struct all_reduce_op {
  static constexpr op kind = op::all_reduce; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "all_reduce";
  static constexpr bool uses_k = true;  // the weight's hyperparameter slot
  static constexpr dims shape_of(const dims* in, double) { return in[0]; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.all_reduce(g, static_cast<int>(b.node_at(self).k));
  }
};

}  // namespace kiln::ops
