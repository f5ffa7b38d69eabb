#pragma once
// The graph of one training step: loss, the gradients of every parameter, and the optimizer's updates
// (assigned back to the parameters and the optimizer state). Built entirely at compile time; the *_graph
// holders keep the finished graph in static storage of exactly its size (ir/frozen.hpp).
#include <kiln/core/ct_vector.hpp>
#include <kiln/autodiff/grad.hpp>
#include <kiln/ir/frozen.hpp>
#include <kiln/train/gradient_barriers.hpp>
#include <kiln/train/optimizers.hpp>

namespace kiln {

namespace detail {
// The parameter leaves of a graph being built (leaf indices) and their nodes.
constexpr void parameters_of(builder& b, ct_vector<int>& leaves, ct_vector<int>& nodes) {
  for (int l = 0; l < b.g.num_leaves(); ++l)
    if (b.g.leaves[l].kind == leaf_kind::param) { leaves.push_back(l); nodes.push_back(b.leaf_node(l)); }
}
}  // namespace detail

// Model: a default-constructible callable (e.g. a captureless lambda) returning the loss expression.
template <class Model, class Optimizer>
constexpr graph_data make_step_graph() {
  builder b;
  b.training = true;
  const int loss = Model{}().emit(b);
  ct_vector<int> leaves, params;
  detail::parameters_of(b, leaves, params);
  ct_vector<int> grads(params.size(), -1);
  differentiate(b, loss, params.data(), params.size(), grads.data());
  b.add_output(loss);
  for (const output& u : b.state_updates) b.add_output(u.node, u.assign_to);  // batch norm's running statistics
  detail::emit_updates<Optimizer>(b, params, grads, leaves);
  return compact(b.g);
}

// The graph of an expression alone (forward evaluation, e.g. predictions; in evaluation mode: no dropout): one
// plain output.
template <class Model>
constexpr graph_data make_forward_graph() {
  builder b;
  b.add_output(Model{}().emit(b));
  return compact(b.g);
}

// The loss and its gradients with respect to every parameter, as plain outputs: output 0 is the loss, output
// 1 + i the gradient of the i-th parameter (in leaf order). Used by gradient tests and `grad` inspection.
template <class Model>
constexpr graph_data make_gradient_graph() {
  builder b;
  b.training = true;
  const int loss = Model{}().emit(b);
  ct_vector<int> leaves, params;
  detail::parameters_of(b, leaves, params);
  ct_vector<int> grads(params.size(), -1);
  differentiate(b, loss, params.data(), params.size(), grads.data());
  b.add_output(loss);
  for (const int g : grads) b.add_output(g);
  return compact(b.g);
}

// The finished graphs, in static storage: step_graph<Model, Optimizer>::value is a `graph`.
template <class Model, class Optimizer>
struct step_graph_builder { constexpr graph_data operator()() const { return make_step_graph<Model, Optimizer>(); } };
template <class Model>
struct forward_graph_builder { constexpr graph_data operator()() const { return make_forward_graph<Model>(); } };
template <class Model>
struct gradient_graph_builder { constexpr graph_data operator()() const { return make_gradient_graph<Model>(); } };

template <class Model, class Optimizer>
using step_graph = frozen_graph<step_graph_builder<Model, Optimizer>>;
template <class Model>
using forward_graph = frozen_graph<forward_graph_builder<Model>>;
template <class Model>
using gradient_graph = frozen_graph<gradient_graph_builder<Model>>;

}  // namespace kiln
