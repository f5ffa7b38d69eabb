#pragma once
// Seeded random MLPs for the PyTorch comparison (test_random_models_torch_*.cpp).
//
// A configuration is a pure function of a 64-bit seed (splitmix64, constexpr), so the same seed gives the same
// model both as a C++ type (widths, activations, loss and optimizer kind are static) and as the run-time values
// that go with it (batch, steps, hyperparameters, data). random_model<Seed> is the Model of a train_step.
#include <kiln/kiln.hpp>
#include <kiln/train/gradient_barriers.hpp>
#include <kiln/train/optimizers.hpp>

#include <cstdint>
#include <string>
#include <tuple>

// Whether kiln::sum(net(x)) is drawn as a loss: it compiles on the CPU backend since main's 35c6a7e (at 906c422
// and before, "a contraction operand must be a tensor"); 0 draws the configurations of the sweeps run there.
#ifndef KILN_TORCH_RANDOM_SUM
#define KILN_TORCH_RANDOM_SUM 1
#endif

namespace kiln_torch {

// splitmix64 (Steele, Lea, Flood 2014): a constexpr stream of 64-bit values from one state word.
struct splitmix64 {
  std::uint64_t state;
  constexpr std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  constexpr int between(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1)); }
  constexpr double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  constexpr double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  constexpr bool coin() { return (next() & 1) != 0; }
  // A value spread over decades: one of the table's entries times a factor in [0.5, 1.5).
  template <int N>
  constexpr double pick(const double (&table)[N]) { return table[between(0, N - 1)] * uniform(0.5, 1.5); }
};

enum class act_kind { relu, sigmoid, tanh, leaky_relu, elu, gelu, gelu_tanh, swish, softplus, identity, prelu, prelu_channels, count };
enum class loss_kind { mse, mae, bce, bce_with_logits, cross_entropy, nll, categorical_cross_entropy, kl_div, mean, sum, count };
enum class opt_kind { sgd, momentum, nesterov, adam, adamw, count };

inline constexpr const char* act_names[] = {"relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "gelu_tanh",
                                            "swish", "softplus", "identity", "prelu", "prelu_channels"};
inline constexpr const char* loss_names[] = {"mse", "mae", "bce", "bce_with_logits", "cross_entropy", "nll",
                                             "categorical_cross_entropy", "kl_div", "mean", "sum"};
inline constexpr const char* opt_names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};

struct config {
  std::uint64_t seed = 0;
  int in = 1, hidden = 0, out = 1;
  int width[3] = {};              // hidden widths
  act_kind act[3] = {};           // the activation after hidden layer i
  double leaky_slope = 0.01, elu_alpha = 1;
  loss_kind loss = loss_kind::mse;
  bool sum_reduction = false;     // reduction::sum where the loss takes one
  opt_kind opt = opt_kind::sgd;
  double lr = 0.01, momentum = 0, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int batch = 1, steps = 3;
  bool unfused = false;           // the plan: kiln::fusion::unfused (a third of the time) or fused
  double max_norm = 0;            // clipping by the global gradient norm before the update (0: none)
};

// The configuration of `seed`: widths 1–40, 0–3 hidden layers, batch 1–64, 3–5 steps, every activation, loss,
// reduction and optimizer kiln has, hyperparameters in the ranges people use.
constexpr config make_config(std::uint64_t seed) {
  splitmix64 r{seed};
  config c;
  c.seed = seed;
  c.in = r.between(1, 40);
  c.hidden = r.between(0, 3);
  for (int i = 0; i < c.hidden; ++i) {
    c.width[i] = r.between(1, 40);
    c.act[i] = static_cast<act_kind>(r.between(0, static_cast<int>(act_kind::count) - 1));
  }
  c.out = r.between(1, 40);
  c.leaky_slope = r.uniform(0.01, 0.3);
  c.elu_alpha = r.uniform(0.5, 1.5);
  c.loss = static_cast<loss_kind>(r.between(0, static_cast<int>(loss_kind::count) - (KILN_TORCH_RANDOM_SUM ? 1 : 2)));
  c.sum_reduction = r.coin();
  c.opt = static_cast<opt_kind>(r.between(0, static_cast<int>(opt_kind::count) - 1));
  c.batch = r.between(1, 64);
  c.steps = r.between(3, 5);
  const bool adam_like = c.opt == opt_kind::adam || c.opt == opt_kind::adamw;
  constexpr double sgd_lr[] = {1e-3, 1e-2, 5e-2, 1e-1};
  constexpr double adam_lr[] = {1e-4, 1e-3, 1e-2, 3e-2};
  c.lr = adam_like ? r.pick(adam_lr) : r.pick(sgd_lr);
  // A summed loss grows with the number of terms it sums; SGD's step would too, so scale its lr back to the
  // mean's (Adam's step does not depend on the gradient's scale).
  const bool per_sample = c.loss == loss_kind::cross_entropy || c.loss == loss_kind::nll ||
                          c.loss == loss_kind::categorical_cross_entropy;
  const bool reduces = c.loss != loss_kind::kl_div && c.loss != loss_kind::mean;
  if (!adam_like && ((c.sum_reduction && reduces) || c.loss == loss_kind::sum)) c.lr /= c.batch * (per_sample ? 1 : c.out);
  c.momentum = r.uniform(0.5, 0.99);
  constexpr double decay[] = {1e-4, 1e-3, 1e-2, 1e-1};
  c.weight_decay = r.coin() ? r.pick(decay) : 0.0;
  c.beta1 = r.uniform(0.8, 0.95);
  constexpr double one_minus_beta2[] = {1e-1, 1e-2, 1e-3, 1e-4};
  c.beta2 = 1 - r.pick(one_minus_beta2);
  constexpr double eps[] = {1e-8, 1e-7, 1e-6};
  c.eps = r.pick(eps);
  c.unfused = r.between(0, 2) == 0;
  // Clipping (a third of the time) is drawn from a stream of its own, so that the draws above, and with them
  // every configuration of a seed, stay what they were before clipping existed.
  splitmix64 clip{seed ^ 0xc11b0000c11bULL};
  constexpr double max_norms[] = {0.01, 0.1, 1.0, 10.0};  // from clipping every step to clipping none
  c.max_norm = clip.between(0, 2) == 0 ? clip.pick(max_norms) : 0.0;
  return c;
}

template <std::uint64_t Seed>
inline constexpr config cfg = make_config(Seed);

// PReLU with one learned slope per channel (PyTorch's nn.PReLU(num_parameters=N), init 0.25), named by the
// test: kiln::prelu_l is the one-slope form, which nn::sequential names prelu1, prelu2, …
template <int N>
struct channel_prelu {
  kiln::short_name name;
  template <kiln::expression X>
  constexpr auto operator()(X x) const { return kiln::prelu(x, kiln::param<N>(name.view()).init_constant(0.25)); }
};

template <std::uint64_t S, int I>
constexpr auto activation() {
  constexpr config c = cfg<S>;
  constexpr act_kind a = c.act[I];
  if constexpr (a == act_kind::relu) return kiln::relu;
  else if constexpr (a == act_kind::sigmoid) return kiln::sigmoid;
  else if constexpr (a == act_kind::tanh) return kiln::tanh;
  else if constexpr (a == act_kind::leaky_relu) return kiln::leaky_relu_fn{c.leaky_slope};
  else if constexpr (a == act_kind::elu) return kiln::elu_fn{c.elu_alpha};
  else if constexpr (a == act_kind::gelu) return kiln::gelu;
  else if constexpr (a == act_kind::gelu_tanh) return kiln::gelu_tanh;
  else if constexpr (a == act_kind::swish) return kiln::swish;
  else if constexpr (a == act_kind::softplus) return kiln::softplus;
  else if constexpr (a == act_kind::identity) return kiln::identity;
  else if constexpr (a == act_kind::prelu) return kiln::prelu_l;
  else return channel_prelu<c.width[I]>{kiln::detail::numbered("cprelu", I + 1, ".weight")};
}

// dense<w0>, act0, dense<w1>, act1, …, dense<out> as a tuple, for nn::sequential (which names them fc1, fc2, …).
template <std::uint64_t S, int I = 0>
constexpr auto layers() {
  constexpr config c = cfg<S>;
  if constexpr (I == c.hidden) return std::tuple<kiln::dense<c.out>>{};
  else return std::tuple_cat(std::tuple(kiln::dense<c.width[I]>{}, activation<S, I>()), layers<S, I + 1>());
}

template <std::uint64_t S, class Z>
constexpr auto make_loss(Z z) {
  constexpr config c = cfg<S>;
  constexpr auto R = c.sum_reduction ? kiln::reduction::sum : kiln::reduction::mean;
  constexpr int n = c.out;
  if constexpr (c.loss == loss_kind::mse) return kiln::mse<R>(z, kiln::target<n>("t"));
  else if constexpr (c.loss == loss_kind::mae) return kiln::mae<R>(z, kiln::target<n>("t"));
  else if constexpr (c.loss == loss_kind::bce) return kiln::bce<R>(kiln::sigmoid(z), kiln::target<n>("t"));
  else if constexpr (c.loss == loss_kind::bce_with_logits) return kiln::bce_with_logits<R>(z, kiln::target<n>("t"));
  else if constexpr (c.loss == loss_kind::cross_entropy) return kiln::cross_entropy<R>(z, kiln::labels<n>("y"));
  else if constexpr (c.loss == loss_kind::nll) return kiln::nll<R>(kiln::log_softmax(z), kiln::labels<n>("y"));
  else if constexpr (c.loss == loss_kind::categorical_cross_entropy)
    return kiln::categorical_cross_entropy<R>(kiln::softmax(z), kiln::one_hot(kiln::labels<n>("y")));
  else if constexpr (c.loss == loss_kind::kl_div) return kiln::kl_div(kiln::log_softmax(z), kiln::probability_target<n>("t"));
  else if constexpr (c.loss == loss_kind::mean) return kiln::mean(z);
  else return kiln::sum(z);
}

template <std::uint64_t Seed>
struct random_model {
  constexpr auto operator()() const {
    auto net = std::apply([](auto... l) { return kiln::nn::sequential(l...); }, layers<Seed>());
    return make_loss<Seed>(net(kiln::input<cfg<Seed>.in>("x")));
  }
};

template <std::uint64_t S>
auto make_unclipped_optimizer() {
  constexpr config c = cfg<S>;
  if constexpr (c.opt == opt_kind::sgd) return kiln::sgd{.lr = c.lr, .weight_decay = c.weight_decay};
  else if constexpr (c.opt == opt_kind::momentum) return kiln::momentum{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay};
  else if constexpr (c.opt == opt_kind::nesterov) return kiln::nesterov{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay};
  else if constexpr (c.opt == opt_kind::adam)
    return kiln::adam{.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2, .eps = c.eps, .weight_decay = c.weight_decay};
  else return kiln::adamw{.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2, .eps = c.eps, .weight_decay = c.weight_decay};
}
template <std::uint64_t S>
auto make_optimizer() {
  using inner = decltype(make_unclipped_optimizer<S>());
  if constexpr (cfg<S>.max_norm > 0) return kiln::clip_grad_norm<inner>{.inner = make_unclipped_optimizer<S>(), .max_norm = cfg<S>.max_norm};
  else return make_unclipped_optimizer<S>();
}

// The i-th seed of a run with base seed `base`: successive bases give unrelated configurations.
constexpr std::uint64_t seed_of(std::uint64_t base, std::size_t i) { return splitmix64{base * 0x100000001b3ULL + i}.next(); }

}  // namespace kiln_torch
