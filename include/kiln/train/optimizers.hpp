#pragma once
// Optimizers. Each one's update is written in primitives, so it becomes part of the compiled step and is fused
// like everything else. Hyperparameters are run-time scalars (slots of the step's hyper array, refreshed by
// `hypers(step_count, out)` before every step); the optimizer's kind is static because it shapes the graph.
// State is named after PyTorch's optimizer state: <param>.momentum_buffer, <param>.exp_avg, <param>.exp_avg_sq.
#include <kiln/ir/builder.hpp>

#include <cmath>
#include <string_view>

namespace kiln {

namespace detail {
constexpr int state_leaf(builder& b, int param_leaf, std::string_view suffix) {
  leaf_info s = b.g.leaves[param_leaf];
  char buf[2 * short_name::capacity + 16] = {};  // room for any stem and suffix: short_name reports a name too long
  int n = 0;
  for (char c : s.name.view()) buf[n++] = c;
  for (char c : suffix) buf[n++] = c;
  s.name = short_name(std::string_view(buf, static_cast<std::size_t>(n)));
  s.kind = leaf_kind::state;
  s.init = init_kind::zeros;
  s.owner = param_leaf;
  return b.leaf(s);
}
}  // namespace detail

// Plain SGD: p ← p − lr·(g + wd·p)
struct sgd {
  double lr = 0.01;
  double weight_decay = 0;
  static constexpr int num_hypers = 2;
  static constexpr const char* name = "sgd";
  void hypers(long /*t*/, double* h) const { h[0] = lr; h[1] = weight_decay; }
  static constexpr void emit_update(builder& b, int p, int g, int leaf) {
    (void)leaf;
    int grad = b.add(g, b.mul(b.hyper(1), p));
    b.add_output(b.sub(p, b.mul(b.hyper(0), grad)), b.node_at(p).leaf);
  }
};

// SGD with momentum (PyTorch, dampening 0): buf ← μ·buf + g; p ← p − lr·buf, or with Nesterov p ← p − lr·(g + μ·buf)
template <bool Nesterov>
struct sgd_momentum {
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 0;
  static constexpr int num_hypers = 3;
  static constexpr const char* name = Nesterov ? "nesterov" : "momentum";
  void hypers(long, double* h) const { h[0] = lr; h[1] = momentum; h[2] = weight_decay; }
  static constexpr void emit_update(builder& b, int p, int g, int leaf) {
    int buf = detail::state_leaf(b, leaf, ".momentum_buffer");
    int grad = b.add(g, b.mul(b.hyper(2), p));
    int buf_new = b.add(b.mul(b.hyper(1), buf), grad);
    int step = Nesterov ? b.add(grad, b.mul(b.hyper(1), buf_new)) : buf_new;
    b.add_output(buf_new, b.node_at(buf).leaf);
    b.add_output(b.sub(p, b.mul(b.hyper(0), step)), b.node_at(p).leaf);
  }
};
using momentum = sgd_momentum<false>;
using nesterov = sgd_momentum<true>;

// Adam / AdamW: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; m̂ = m/(1−β1ᵗ); v̂ = v/(1−β2ᵗ);
// p ← p − lr·m̂/(√v̂ + ε). Adam adds wd·p to g (L2); AdamW first decays p ← p·(1 − lr·wd) (decoupled).
template <bool Decoupled>
struct adam_t {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = Decoupled ? 0.01 : 0.0;
  static constexpr int num_hypers = 9;
  static constexpr const char* name = Decoupled ? "adamw" : "adam";
  void hypers(long t, double* h) const {
    h[0] = lr; h[1] = beta1; h[2] = 1 - beta1; h[3] = beta2; h[4] = 1 - beta2;
    h[5] = 1 / (1 - std::pow(beta1, static_cast<double>(t)));  // bias corrections for step t (1-based)
    h[6] = 1 / (1 - std::pow(beta2, static_cast<double>(t)));
    h[7] = eps;
    h[8] = weight_decay;
  }
  static constexpr void emit_update(builder& b, int p, int g, int leaf) {
    int m = detail::state_leaf(b, leaf, ".exp_avg");
    int v = detail::state_leaf(b, leaf, ".exp_avg_sq");
    int grad = Decoupled ? g : b.add(g, b.mul(b.hyper(8), p));
    int decayed = Decoupled ? b.mul(p, b.sub(b.scalar(1.0), b.mul(b.hyper(0), b.hyper(8)))) : p;
    int m_new = b.add(b.mul(b.hyper(1), m), b.mul(b.hyper(2), grad));
    int v_new = b.add(b.mul(b.hyper(3), v), b.mul(b.hyper(4), b.mul(grad, grad)));
    int m_hat = b.mul(m_new, b.hyper(5));
    int v_hat = b.mul(v_new, b.hyper(6));
    int p_new = b.sub(decayed, b.div(b.mul(b.hyper(0), m_hat), b.add(b.unary(op::sqrt, v_hat), b.hyper(7))));
    b.add_output(m_new, b.node_at(m).leaf);
    b.add_output(v_new, b.node_at(v).leaf);
    b.add_output(p_new, b.node_at(p).leaf);
  }
};
using adam = adam_t<false>;
using adamw = adam_t<true>;

}  // namespace kiln
