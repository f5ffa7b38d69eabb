#pragma once
// Shared by the backend tests: models and the fused/unfused/reference comparison.
// activations, losses and optimizers, several batch sizes, several steps (the seed is printed on failure).
#include "step_feeds.hpp"

#include <kiln/cpu/train_step.hpp>

#include <memory>
#include <tuple>

using namespace kiln;

namespace {

template <class Act>
constexpr auto mlp(Act act) { return nn::sequential(dense<7>{}, act, dense<5>{}, act, dense<3>{}); }
constexpr auto x = input<6>("x");
constexpr auto y = labels<3>("y");
constexpr auto t = target<3>("target");

// Every activation appears in one of these two deeper MLPs (so each backend kernel kind sees each of them).
struct activations_a {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<7>{}, relu, dense<6>{}, sigmoid, dense<5>{}, kiln::tanh, dense<6>{},
                                        leaky_relu, dense<5>{}, elu, dense<3>{})(x), y);
  }
};
struct activations_b {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<7>{}, gelu, dense<6>{}, gelu_tanh, dense<5>{}, swish, dense<6>{},
                                        softplus, dense<5>{}, identity, dense<5>{}, prelu_l, dense<3>{})(x), y);
  }
};
// A residual block (h + f(h), the README's example at this test's sizes): the skip connection's gradient adds
// to the block's where h is read twice.
struct residual_model {
  constexpr auto operator()() const {
    auto h = relu(dense<5>("stem")(x));
    auto r = h + dense<5>("block.fc2")(relu(dense<5>("block.fc1")(h)));
    return cross_entropy(dense<3>("head")(relu(r)), y);
  }
};
template <class Act> struct mse_model { constexpr auto operator()() const { return mse(mlp(Act{})(x), t); } };
struct mae_model { constexpr auto operator()() const { return mae(mlp(relu)(x), t); } };
struct bce_model { constexpr auto operator()() const { return bce(sigmoid(mlp(kiln::tanh)(x)), t); } };
struct bce_logits_model { constexpr auto operator()() const { return bce_with_logits(mlp(gelu)(x), t); } };
struct kl_model { constexpr auto operator()() const { return kl_div(log_softmax(mlp(elu)(x)), probability_target<3>("target")); } };
struct cce_model { constexpr auto operator()() const { return categorical_cross_entropy(softmax(mlp(swish)(x)), one_hot(y)); } };

// Runs `steps` training steps on the CPU, one step object per fusion mode in Modes, and on the reference;
// compares losses and every parameter and optimizer state after each step.
template <class Model, class Opt, fusion... Modes>
void compare_modes(Opt opt, long batch, std::uint64_t seed, int steps) {
  INFO("seed " << seed << ", batch " << batch << ", optimizer " << Opt::name << ", " << cpu::lanes << " lanes");
  // (steps are neither copied nor moved: they own their program's buffers)
  std::tuple<std::unique_ptr<cpu::train_step<Model, Opt, Modes>>...> cpu_steps{
      std::make_unique<cpu::train_step<Model, Opt, Modes>>(opt, seed)...};
  const graph& G = std::get<0>(cpu_steps)->G;
  auto leaves = kiln_test::random_leaves(G, batch, seed + 1000, -2, 2);
  // parameters: the step's own initialization (PyTorch's default) for every mode
  // (named references, not a structured binding: clang 14 cannot capture bindings in the lambda below)
  kiln_test::step_feeds feeds = kiln_test::start_from_step(*std::get<0>(cpu_steps), leaves, "target");
  std::vector<float>& xs = feeds.x;
  std::vector<float>& ts = feeds.target;
  std::vector<std::int32_t>& ys = feeds.labels;
  if (ys.empty()) ys.assign(static_cast<std::size_t>(batch), 0);
  // soft targets must be distributions for KL: normalize rows
  const long cols = ts.empty() ? 0 : static_cast<long>(ts.size()) / batch;
  for (long r = 0; r < batch; ++r) {
    float s = 0;
    for (long j = 0; j < cols; ++j) s += ts[static_cast<std::size_t>(r * cols + j)];
    for (long j = 0; j < cols; ++j) ts[static_cast<std::size_t>(r * cols + j)] /= s;
  }
  for (int l = 0; l < G.num_leaves; ++l)
    if (std::string(G.leaves[l].name.view()) == "target") leaves[static_cast<std::size_t>(l)].assign(ts.begin(), ts.end());
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    std::vector<double> hyp(16);
    opt.hypers(step, hyp.data());
    // the CPU steps draw dropout's masks with the key {seed, step}
    const double ref_loss = reference::step(G, batch, leaves, hyp, random::key{seed, static_cast<std::uint64_t>(step)});
    std::apply([&](auto&... cpu_step) {
      auto check = [&](auto& st_ptr) {
        auto& st = *st_ptr;
        INFO((st.compiled_plan().mode == fusion::fused ? "fused" : "unfused"));
        const float loss = st.run(batch, {{"x", xs}, {"y", ys}, {"target", ts}});
        CHECK(loss == Approx(ref_loss).epsilon(2e-5).margin(1e-6));
        for (int l = 0; l < G.num_leaves; ++l) {
          if (G.leaves[l].kind != leaf_kind::param && G.leaves[l].kind != leaf_kind::state) continue;
          const std::string name(G.leaves[l].name.view());
          const auto got = st.param(name);
          const auto& pr = leaves[static_cast<std::size_t>(l)];
          for (std::size_t j = 0; j < pr.size(); ++j) {
            INFO(name << "[" << j << "]");
            REQUIRE(got[j] == Approx(pr[j]).epsilon(1e-4).margin(2e-5));
          }
        }
      };
      (check(cpu_step), ...);
    }, cpu_steps);
  }
}

// Fused and unfused against the reference.
template <class Model, class Opt>
void compare(Opt opt, long batch, std::uint64_t seed, int steps = 3) {
  compare_modes<Model, Opt, fusion::fused, fusion::unfused>(opt, batch, seed, steps);
}

}  // namespace

namespace {
// A factored weight W = A·B: B's gradient reads Aᵀ, so A's in-place Adam update must wait until after it.
struct factored_model {
  constexpr auto operator()() const {
    auto a = param<6, 4>("a").init_uniform_fan_in(4);
    auto b = param<4, 3>("b").init_uniform_fan_in(3);
    return mse(matmul(x, matmul(a, b)), t);  // ∂b = aᵀ·∂W reads a through a transpose
  }
};
}  // namespace
