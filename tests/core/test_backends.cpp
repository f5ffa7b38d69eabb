// The CPU backend, fused and unfused, against the double reference evaluator: random seeded small MLPs over
// activations, losses and optimizers, several batch sizes, several steps (the seed is printed on failure).
#include "gradcheck.hpp"

#include <kiln/cpu/train_step.hpp>

using namespace kiln;

namespace {

template <class Act>
constexpr auto mlp(Act act) { return nn::sequential(dense<7>{}, act, dense<5>{}, act, dense<3>{}); }
constexpr auto x = input<6>("x");
constexpr auto y = labels<3>("y");
constexpr auto t = target<3>("target");

template <class Act> struct ce_model { constexpr auto operator()() const { return cross_entropy(mlp(Act{})(x), y); } };
template <class Act> struct mse_model { constexpr auto operator()() const { return mse(mlp(Act{})(x), t); } };
struct mae_model { constexpr auto operator()() const { return mae(mlp(relu)(x), t); } };
struct bce_model { constexpr auto operator()() const { return bce(sigmoid(mlp(kiln::tanh)(x)), t); } };
struct bce_logits_model { constexpr auto operator()() const { return bce_with_logits(mlp(gelu)(x), t); } };
struct kl_model { constexpr auto operator()() const { return kl_div(log_softmax(mlp(elu)(x)), probability_target<3>("target")); } };
struct cce_model { constexpr auto operator()() const { return categorical_cross_entropy(softmax(mlp(swish)(x)), one_hot(y)); } };
struct prelu_model {
  constexpr auto operator()() const { return cross_entropy(nn::sequential(dense<7>{}, prelu_l, dense<3>{})(x), y); }
};

// Runs `steps` training steps on the CPU (fused and unfused) and on the reference; compares losses and every
// parameter and optimizer state after each step.
template <class Model, class Opt>
void compare(Opt opt, long batch, std::uint64_t seed, int steps = 3) {
  INFO("seed " << seed << ", batch " << batch << ", optimizer " << Opt::name);
  cpu::train_step<Model, Opt, fusion::fused> fused(opt, seed);
  cpu::train_step<Model, Opt, fusion::unfused> unfused(opt, seed);
  const graph& G = decltype(fused)::G;
  auto leaves = kiln_test::random_leaves(G, batch, seed + 1000, -2, 2);
  // parameters: the step's own initialization (PyTorch's default) for both
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state) {
      auto p = fused.param(G.leaves[l].name.view());
      leaves[static_cast<std::size_t>(l)].assign(p.begin(), p.end());
    }
  std::vector<float> xs, ts;
  std::vector<std::int32_t> ys;
  for (int l = 0; l < G.num_leaves; ++l) {
    const std::string name(G.leaves[l].name.view());
    const auto& v = leaves[static_cast<std::size_t>(l)];
    if (name == "x") xs.assign(v.begin(), v.end());
    if (name == "target") ts.assign(v.begin(), v.end());
    if (name == "y") for (double e : v) ys.push_back(static_cast<std::int32_t>(e));
  }
  if (ts.empty()) ts.assign(static_cast<std::size_t>(batch * 3), 0.f);
  if (ys.empty()) ys.assign(static_cast<std::size_t>(batch), 0);
  // soft targets must be distributions for KL: normalize rows
  for (long r = 0; r < batch; ++r) {
    float s = 0;
    for (int j = 0; j < 3; ++j) s += ts[static_cast<std::size_t>(r * 3 + j)];
    for (int j = 0; j < 3; ++j) ts[static_cast<std::size_t>(r * 3 + j)] /= s;
  }
  for (int l = 0; l < G.num_leaves; ++l)
    if (std::string(G.leaves[l].name.view()) == "target") leaves[static_cast<std::size_t>(l)].assign(ts.begin(), ts.end());
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    std::vector<double> hyp(16);
    opt.hypers(step, hyp.data());
    const double ref_loss = reference::step(G, batch, leaves, hyp);
    const float lf = fused.run(batch, {{"x", xs}, {"y", ys}, {"target", ts}});
    const float lu = unfused.run(batch, {{"x", xs}, {"y", ys}, {"target", ts}});
    CHECK(lf == Approx(ref_loss).epsilon(2e-5).margin(1e-6));
    CHECK(lu == Approx(ref_loss).epsilon(2e-5).margin(1e-6));
    for (int l = 0; l < G.num_leaves; ++l) {
      if (G.leaves[l].kind != leaf_kind::param && G.leaves[l].kind != leaf_kind::state) continue;
      const std::string name(G.leaves[l].name.view());
      auto pf = fused.param(name);
      auto pu = unfused.param(name);
      const auto& pr = leaves[static_cast<std::size_t>(l)];
      for (std::size_t j = 0; j < pr.size(); ++j) {
        INFO(name << "[" << j << "]");
        REQUIRE(pf[j] == Approx(pr[j]).epsilon(1e-4).margin(2e-5));
        REQUIRE(pu[j] == Approx(pr[j]).epsilon(1e-4).margin(2e-5));
      }
    }
  }
}

}  // namespace

TEST_CASE("fused == unfused == reference across activations (cross-entropy, Adam)", "[backend]") {
  for (long batch : {1L, 7L, 64L, 300L}) {
    compare<ce_model<relu_fn>>(adam{.lr = 1e-2}, batch, 1);
    compare<ce_model<sigmoid_fn>>(adam{.lr = 1e-2}, batch, 2);
    compare<ce_model<tanh_fn>>(adam{.lr = 1e-2}, batch, 3);
    compare<ce_model<leaky_relu_fn>>(adam{.lr = 1e-2}, batch, 4);
    compare<ce_model<elu_fn>>(adam{.lr = 1e-2}, batch, 5);
    compare<ce_model<gelu_fn>>(adam{.lr = 1e-2}, batch, 6);
    compare<ce_model<gelu_tanh_fn>>(adam{.lr = 1e-2}, batch, 7);
    compare<ce_model<swish_fn>>(adam{.lr = 1e-2}, batch, 8);
    compare<ce_model<softplus_fn>>(adam{.lr = 1e-2}, batch, 9);
    compare<ce_model<identity_fn>>(adam{.lr = 1e-2}, batch, 10);
  }
}

TEST_CASE("fused == unfused == reference across losses and optimizers", "[backend]") {
  for (long batch : {1L, 5L, 100L}) {
    compare<mse_model<relu_fn>>(sgd{.lr = 0.05}, batch, 21);
    compare<mse_model<relu_fn>>(sgd{.lr = 0.05, .weight_decay = 0.1}, batch, 22);
    compare<mse_model<tanh_fn>>(momentum{.lr = 0.05, .momentum = 0.9}, batch, 23);
    compare<mse_model<tanh_fn>>(nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}, batch, 24);
    compare<mse_model<gelu_fn>>(adamw{.lr = 1e-2, .weight_decay = 0.1}, batch, 25);
    compare<mse_model<gelu_fn>>(adam{.lr = 1e-2, .weight_decay = 0.1}, batch, 26);
    compare<mae_model>(sgd{.lr = 0.05}, batch, 27);
    compare<bce_model>(adam{.lr = 1e-2}, batch, 28);
    compare<bce_logits_model>(momentum{.lr = 0.05}, batch, 29);
    compare<kl_model>(adam{.lr = 1e-2}, batch, 30);
    compare<cce_model>(adam{.lr = 1e-2}, batch, 31);
    compare<prelu_model>(adam{.lr = 1e-2}, batch, 32);
  }
}

TEST_CASE("a batch that does not match the input's shape throws naming both shapes", "[backend]") {
  cpu::train_step<mse_model<relu_fn>, sgd> step;
  std::vector<float> xs(6 * 4), ts(3 * 5);
  try {
    step.run(5, {{"x", xs}, {"target", ts}});
    FAIL("no exception");
  } catch (const shape_error& e) {
    const std::string m = e.what();
    CHECK(m.find("'x'") != std::string::npos);
    CHECK(m.find("24 values") != std::string::npos);
    CHECK(m.find("[5, 6]") != std::string::npos);
  }
  std::vector<std::int32_t> bad_labels = {0, 1, 3};
  cpu::train_step<ce_model<relu_fn>, sgd> ce;
  std::vector<float> x3(18);
  CHECK_THROWS_WITH(ce.run(3, {{"x", x3}, {"y", bad_labels}}), Catch::Contains("outside [0, 3)"));
}
