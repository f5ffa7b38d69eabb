#pragma once
// Reverse-mode symbolic differentiation on the graph, at compile time.
// adjoint(loss) = 1; walking nodes in reverse topological order, each node's adjoint is pushed to its operands
// through the op's vjp rule; contributions from paths that meet are summed. Only nodes on a path from a requested
// leaf to the loss are visited. The new nodes reference forward nodes directly, so forward values are reused,
// and the builder shares identical nodes and simplifies. Gradients of gradients work the same way, since the
// result is again a graph.
#include <kiln/core/ct_vector.hpp>
#include <kiln/ir/builder.hpp>

namespace kiln {

// Writes the node of ∂loss/∂wrt[i] into out[i] (always of wrt[i]'s shape).
constexpr void differentiate(builder& b, int loss, const int* wrt, int n_wrt, int* out) {
  if (!(b.shape(loss) == dims{1, 1})) throw "kiln: grad needs a scalar loss";
  const int n = b.size();
  ct_vector<char> on_path(n, 0);  // depends on some wrt leaf
  for (int i = 0; i < n_wrt; ++i) on_path[wrt[i]] = true;
  for (int i = 0; i <= loss; ++i)
    for (int k = 0; k < 3; ++k) {
      int a = b.node_at(i).in[k];
      if (a >= 0 && on_path[a]) on_path[i] = true;
    }
  ct_vector<int> adjoint(n, -1);
  adjoint[loss] = b.scalar(1.0);
  for (int i = loss; i >= 0; --i) {
    if (adjoint[i] < 0 || !on_path[i]) continue;
    const node cur = b.node_at(i);
    const int arity = ops::arity_of(cur.kind);
    if (arity == 0) continue;
    int d[3] = {-1, -1, -1};
    ops::visit_op(cur.kind, [&](auto o) {
      using O = decltype(o);
      if constexpr (O::arity > 0) O::vjp(b, i, adjoint[i], d);
    });
    for (int k = 0; k < arity; ++k) {
      const int a = cur.in[k];
      if (d[k] < 0 || !on_path[a]) continue;
      // Only elementwise ops broadcast: their contribution stands for a value of the node's shape. Other ops'
      // rules already give the operand's shape (or a broadcast-held part of it).
      const bool broadcasting = ops::class_of(cur.kind) == op_class::elementwise;
      const int contrib = b.unbroadcast(d[k], b.shape(a), broadcasting ? cur.shape : b.shape(d[k]));
      adjoint[a] = adjoint[a] < 0 ? contrib : b.add(adjoint[a], contrib);
    }
  }
  for (int i = 0; i < n_wrt; ++i) {
    const dims s = b.shape(wrt[i]);
    out[i] = adjoint[wrt[i]] < 0 ? b.constant(0.0, s) : b.broadcast_to(adjoint[wrt[i]], s);
  }
}

}  // namespace kiln

#include <kiln/expr/expression.hpp>

namespace kiln {

// grad(L, w): the expression ∂L/∂w (shape of w) for a scalar expression L and a leaf w. It is itself an
// expression, so it composes: grad(grad(f, x), x) is the second derivative for scalar and elementwise graphs.
template <expression L, expression W>
struct grad_expr {
  static constexpr dims shape = W::shape;
  static constexpr value_kind kind = value_kind::any;
  L loss;
  W wrt;
  constexpr int emit(builder& b) const {
    const int l = loss.emit(b);
    const int w = wrt.emit(b);
    int out = -1;
    differentiate(b, l, &w, 1, &out);
    return out;
  }
};
template <expression L, expression W>
constexpr auto grad(L loss, W wrt) {
  static_assert(L::shape == dims{1, 1}, "kiln: grad needs a scalar ([1, 1]) expression to differentiate");
  return grad_expr<L, W>{loss, wrt};
}

}  // namespace kiln
