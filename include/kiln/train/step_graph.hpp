#pragma once
// The graph of one training step: loss, the gradients of every parameter, and the optimizer's updates
// (assigned back to the parameters and the optimizer state). Built entirely at compile time.
#include <kiln/autodiff/grad.hpp>
#include <kiln/train/optimizers.hpp>

namespace kiln {

// Model: a default-constructible callable (e.g. a captureless lambda) returning the loss expression.
template <class Model, class Optimizer>
constexpr graph make_step_graph() {
  builder b;
  const int loss = Model{}().emit(b);
  int params[max_leaves], leaves[max_leaves], n = 0;
  for (int l = 0; l < b.g.num_leaves; ++l)
    if (b.g.leaves[l].kind == leaf_kind::param) { leaves[n] = l; params[n++] = b.leaf_node(l); }
  int grads[max_leaves];
  differentiate(b, loss, params, n, grads);
  b.add_output(loss);
  for (int i = 0; i < n; ++i) Optimizer::emit_update(b, params[i], grads[i], leaves[i]);
  return compact(b.g);
}

// The graph of an expression alone (forward evaluation, e.g. predictions): one plain output.
template <class Model>
constexpr graph make_forward_graph() {
  builder b;
  b.add_output(Model{}().emit(b));
  return compact(b.g);
}

// The loss and its gradients with respect to every parameter, as plain outputs: output 0 is the loss, output
// 1 + i the gradient of the i-th parameter (in leaf order). Used by gradient tests and `grad` inspection.
template <class Model>
constexpr graph make_gradient_graph() {
  builder b;
  const int loss = Model{}().emit(b);
  int params[max_leaves], n = 0;
  for (int l = 0; l < b.g.num_leaves; ++l)
    if (b.g.leaves[l].kind == leaf_kind::param) params[n++] = b.leaf_node(l);
  int grads[max_leaves];
  differentiate(b, loss, params, n, grads);
  b.add_output(loss);
  for (int i = 0; i < n; ++i) b.add_output(grads[i]);
  return compact(b.g);
}

}  // namespace kiln
