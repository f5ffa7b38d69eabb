// The worked numbers of the course notes (ARCHITECTURE.md), reproduced by the compiled CPU step and by the
// reference evaluator.
#include "gradcheck.hpp"

#include <kiln/cpu/train_step.hpp>

using namespace kiln;

namespace {
struct graph_model {
  constexpr auto operator()() const {
    auto a = param<>("a"), b = param<>("b"), c = param<>("c");
    return c * (a + 2.0 * b);
  }
};
struct two_layer {
  constexpr auto operator()() const {
    auto x = input<1>("x");
    auto t = target<1>("t");
    auto w1 = param<>("w1"), b1 = param<>("b1"), w2 = param<>("w2"), b2 = param<>("b2");
    return sum(pow(w2 * (w1 * x + b1) + b2 - t, 2.0));
  }
};
struct softmax_model { constexpr auto operator()() const { return softmax(param<4>("z")); } };
struct adam_model { constexpr auto operator()() const { return sum(param<2>("w") * input<2>("x")); } };
}  // namespace

TEST_CASE("computation graph L = c(a + 2b) at a=3, b=1, c=-2", "[notes]") {
  cpu::gradient<graph_model> g;
  g.param("a")[0] = 3;
  g.param("b")[0] = 1;
  g.param("c")[0] = -2;
  CHECK(g.run(1) == -10.0f);
  CHECK(g.grad("a")[0] == -2.0f);
  CHECK(g.grad("b")[0] == -4.0f);
  CHECK(g.grad("c")[0] == 5.0f);
}

TEST_CASE("two-layer worked example: gradients and one SGD step", "[notes]") {
  const float x[] = {2}, t[] = {5};
  auto set = [](auto& s) { s.param("w1")[0] = 1; s.param("b1")[0] = 0; s.param("w2")[0] = 2; s.param("b2")[0] = 0; };
  cpu::gradient<two_layer> g;
  set(g);
  CHECK(g.run(1, {{"x", x}, {"t", t}}) == 1.0f);
  CHECK(g.grad("w1")[0] == -8.0f);
  CHECK(g.grad("b1")[0] == -4.0f);
  CHECK(g.grad("w2")[0] == -4.0f);
  CHECK(g.grad("b2")[0] == -2.0f);
  cpu::train_step<two_layer, sgd> step(sgd{.lr = 0.1});
  set(step);
  CHECK(step.run(1, {{"x", x}, {"t", t}}) == 1.0f);
  CHECK(step.param("w1")[0] == Approx(1.8f).epsilon(1e-7));
  CHECK(step.param("w2")[0] == Approx(2.4f).epsilon(1e-7));
  CHECK(step.param("b1")[0] == Approx(0.4f).epsilon(1e-7));
  CHECK(step.param("b2")[0] == Approx(0.2f).epsilon(1e-7));
}

TEST_CASE("softmax of [3.2, 1.1, 0.8, 2.9] and its cross-entropy for class 0", "[notes]") {
  constexpr const graph& G = forward_graph<softmax_model>::value;
  const auto p = reference::evaluate(G, 1, {{3.2, 1.1, 0.8, 2.9}})[static_cast<std::size_t>(G.outputs[0].node)].v;
  CHECK(std::round(p[0] * 1e4) / 1e4 == Approx(0.5118).margin(1e-12));
  CHECK(std::round(p[1] * 1e4) / 1e4 == Approx(0.0627).margin(1e-12));
  CHECK(std::round(p[2] * 1e4) / 1e4 == Approx(0.0464).margin(1e-12));
  CHECK(std::round(p[3] * 1e4) / 1e4 == Approx(0.3791).margin(1e-12));
  // compiled float path: cross_entropy from logits, class 0 → −ln 0.5118… = 0.66987
  struct ce_loss { constexpr auto operator()() const { return cross_entropy(input<4>("z"), labels<4>("y")); } };
  cpu::function<ce_loss> ce_fn = [] {
    struct no_params { std::span<float> param(std::string_view) { return {}; } } none;
    return cpu::function<ce_loss>(none);
  }();
  const float z[] = {3.2f, 1.1f, 0.8f, 2.9f};
  const std::int32_t y[] = {0};
  float loss = 0;
  ce_fn.run(1, {{"z", z}, {"y", y}}, std::span<float>(&loss, 1));
  CHECK(std::round(loss * 1e5) / 1e5 == Approx(0.66987).margin(1e-9));
  // the notes round the probability to 0.52 first: −ln 0.52 = 0.65
  CHECK(std::round(-std::log(0.52) * 100) / 100 == Approx(0.65));
}

TEST_CASE("Adam's update follows the notes' formula exactly", "[notes]") {
  // θ −= α·m̂/(√v̂ + ε), m = β1 m + (1−β1) g, v = β2 v + (1−β2) g², m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ); g = x here
  cpu::train_step<adam_model, adam> step(adam{.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  step.param("w")[0] = 0.5f;
  step.param("w")[1] = -0.25f;
  const float xs[2][2] = {{1.0f, -2.0f}, {0.5f, 3.0f}};
  double w[2] = {0.5, -0.25}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 2; ++t) {
    step.run(1, {{"x", xs[t - 1]}});
    for (int i = 0; i < 2; ++i) {
      const double g = xs[t - 1][i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      w[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
      CHECK(step.param("w")[static_cast<std::size_t>(i)] == Approx(w[i]).epsilon(1e-6));
      CHECK(step.param("w.exp_avg")[static_cast<std::size_t>(i)] == Approx(m[i]).epsilon(1e-6));
      CHECK(step.param("w.exp_avg_sq")[static_cast<std::size_t>(i)] == Approx(v[i]).epsilon(1e-6));
    }
  }
}
