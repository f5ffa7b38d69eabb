#pragma once
// Optimizer wrappers whose updates need every gradient first: clipping by the global gradient norm and
// data-parallel gradient sums. Each wraps another optimizer (`inner`, whose update it then emits on the
// transformed gradients) and adds its hyperparameters after the inner optimizer's slots.
//
// Neither is a special case of the plan. An update that reads a value depending on every gradient (the global
// norm; a sum over ranks) cannot run before all gradients exist, so lowering puts it after them, and the
// fusion pass leaves it out of the weight gradients' epilogues, where it would otherwise run (plan.hpp: an
// epilogue may only read what exists before its contraction). A collective (ops/collective.hpp) is the
// barrier a data-parallel step waits at; a step without either wrapper keeps its updates fused.
#include <kiln/core/ct_vector.hpp>
#include <kiln/ir/builder.hpp>

#include <algorithm>

namespace kiln {

namespace detail {
// Emits Optimizer's updates of every parameter from the gradients grads[i] (−1: the loss does not depend on it).
template <class Optimizer>
constexpr void emit_updates(builder& b, const ct_vector<int>& params, const ct_vector<int>& grads, const ct_vector<int>& leaves) {
  if constexpr (requires { Optimizer::emit_updates(b, params, grads, leaves); }) {
    Optimizer::emit_updates(b, params, grads, leaves);
  } else {
    for (int i = 0; i < params.size(); ++i) Optimizer::emit_update(b, params[i], grads[i], leaves[i]);
  }
}
}  // namespace detail

// torch.nn.utils.clip_grad_norm_(parameters, max_norm) before Inner's update:
//   ‖g‖ = √(Σ over every parameter's gradient of Σ g²),  g ← g · min(1, max_norm / (‖g‖ + 10⁻⁶)).
template <class Inner>
struct clip_grad_norm {
  Inner inner{};
  double max_norm = 1.0;
  static constexpr int num_hypers = Inner::num_hypers + 1;
  static constexpr const char* name = Inner::name;
  void hypers(long t, double* h) const {
    inner.hypers(t, h);
    h[Inner::num_hypers] = max_norm;
  }
  static constexpr void emit_updates(builder& b, const ct_vector<int>& params, const ct_vector<int>& grads,
                                     const ct_vector<int>& leaves) {
    int squares = -1;
    for (const int g : grads) {
      if (g < 0) continue;
      const int s = b.sum_all(b.mul(g, g));
      squares = squares < 0 ? s : b.add(squares, s);
    }
    if (squares < 0) return detail::emit_updates<Inner>(b, params, grads, leaves);
    const int norm = b.unary(op::sqrt, squares);
    const int coefficient = b.unary(op::min_c, b.div(b.hyper(Inner::num_hypers), b.add(norm, b.scalar(1e-6))), 1.0);
    ct_vector<int> clipped = grads;
    for (int& g : clipped)
      if (g >= 0) g = b.mul(g, coefficient);
    detail::emit_updates<Inner>(b, params, clipped, leaves);
  }
};

// Data-parallel training (PyTorch's DistributedDataParallel): each rank computes the gradient of its share of
// the batch (the mean over its n_r samples), and every rank updates with the mean over the whole batch of m
// samples, G = Σ over ranks of (n_r / m)·g_r, so the ranks' parameters stay identical. `share` is this rank's
// n_r / m: 1 / ranks when the batch splits evenly (set by the step when a communicator is attached,
// kiln::cpu::train_step::set_communicator; 1 in a single process), set per step by the trainer when a last
// partial batch does not. The sums are the plan's collectives, each weighting its gradient by `share` as it
// copies it out.
template <class Inner>
struct data_parallel {
  Inner inner{};
  double share = 1;
  static constexpr int num_hypers = Inner::num_hypers + 1;
  static constexpr const char* name = Inner::name;
  static constexpr bool is_data_parallel = true;
  void hypers(long t, double* h) const {
    inner.hypers(t, h);
    h[Inner::num_hypers] = share;
  }
  static constexpr void emit_updates(builder& b, const ct_vector<int>& params, const ct_vector<int>& grads,
                                     const ct_vector<int>& leaves) {
    // the sums in the order their gradients are computed (a node's id orders it), so that consecutive sums, which
    // the step buckets together, are complete early
    ct_vector<int> order;
    for (int i = 0; i < grads.size(); ++i)
      if (grads[i] >= 0) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](int x, int y) { return grads[x] < grads[y]; });
    ct_vector<int> summed = grads;
    for (const int i : order) summed[i] = b.all_reduce(grads[i], Inner::num_hypers, b.node_at(params[i]).leaf);
    detail::emit_updates<Inner>(b, params, summed, leaves);
  }
};

}  // namespace kiln
