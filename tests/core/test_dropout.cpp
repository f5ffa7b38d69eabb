// Dropout and the counter-based generator under it (core/philox.hpp): Philox against Random123's known answers,
// the draws' distribution, dropout's semantics in a training graph (kept with probability 1 − p, scaled by
// 1/(1 − p)) and in a forward graph (the identity), its gradients against finite differences at a fixed key, and
// the CPU backend fused and unfused against the reference drawing the same masks. The CUDA kernels draw the same
// masks on the emulator: tests/cuda/test_cuda_codegen_layers.cpp; PyTorch's semantics: tests/torch.
#include "backend_compare.hpp"
#include "gradcheck.hpp"

#include <kiln/core/philox.hpp>

#include <cmath>

namespace {

constexpr int wide = 4096;
// ∂/∂w Σ dropout(w) = mask / (1 − p): the gradient of a wide parameter shows the mask of a training graph.
template <int P100>
struct dropout_of_param {
  constexpr auto operator()() const { return sum(kiln::dropout{.p = P100 / 100.0}(param<wide>("w"))); }
};
template <int P100>
struct dropout_output {
  constexpr auto operator()() const { return kiln::dropout{.p = P100 / 100.0}(input<8>("x")); }
};
// Two dropouts of different tensors, each with its own stream.
struct two_dropouts {
  constexpr auto operator()() const {
    return sum(kiln::dropout{.p = 0.5}(param<wide>("a"))) + sum(kiln::dropout{.p = 0.5}(param<wide>("b")));
  }
};
// A classifier with dropout after each hidden layer, as a training model.
struct dropout_classifier {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<9>{}, relu, kiln::dropout{.p = 0.3}, dense<7>{}, kiln::tanh,
                                        kiln::dropout{.p = 0.6}, dense<3>{})(x), y);
  }
};
struct dropout_classifier_logits {
  constexpr auto operator()() const {
    return nn::sequential(dense<9>{}, relu, kiln::dropout{.p = 0.3}, dense<7>{}, kiln::tanh, kiln::dropout{.p = 0.6}, dense<3>{})(x);
  }
};
struct plain_classifier_logits {
  constexpr auto operator()() const { return nn::sequential(dense<9>{}, relu, dense<7>{}, kiln::tanh, dense<3>{})(x); }
};

template <class M>
std::vector<double> gradient_of_param(const random::key& k, int output = 1) {
  constexpr const graph& G = gradient_graph<M>::value;
  std::vector<std::vector<double>> v(static_cast<std::size_t>(G.num_leaves), std::vector<double>(wide, 1.0));
  return reference::evaluate(G, 1, v, {}, k)[static_cast<std::size_t>(G.outputs[output].node)].v;
}

}  // namespace

TEST_CASE("Philox4x32-10 reproduces Random123's known-answer vectors", "[dropout][random]") {
  using words = std::array<std::uint32_t, 4>;
  CHECK(random::philox4x32_10({0, 0, 0, 0}, 0, 0) == words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(random::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff) ==
        words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(random::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0) ==
        words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
  static_assert(random::philox4x32_10({0, 0, 0, 0}, 0, 0)[0] == 0x6627e8d5);  // constexpr, as the IR needs
}

TEST_CASE("uniform draws lie in [0, 1) on a 2^-24 grid, are uniform, and a run equals single draws", "[dropout][random]") {
  const random::key k{12345, 7};
  constexpr int n = 1 << 16, bins = 16;
  std::vector<float> run(n);
  random::uniform_run(k, 3, 5, n, run.data());  // starts inside a Philox block
  int count[bins] = {};
  for (int i = 0; i < n; ++i) {
    const float u = run[static_cast<std::size_t>(i)];
    REQUIRE(u == random::uniform(k, 3, 5 + static_cast<std::uint64_t>(i)));
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    REQUIRE(std::ldexp(u, 24) == std::floor(std::ldexp(u, 24)));
    ++count[static_cast<int>(u * bins)];
  }
  // χ² with 15 degrees of freedom: 37.7 is its 0.999 quantile
  double chi2 = 0;
  for (int b = 0; b < bins; ++b) chi2 += std::pow(count[b] - n / bins, 2) / (n / bins);
  CHECK(chi2 < 37.7);
  // another stream, another step, another seed: other draws
  CHECK(random::uniform(k, 3, 9) != random::uniform(k, 4, 9));
  CHECK(random::uniform(k, 3, 9) != random::uniform({12345, 8}, 3, 9));
  CHECK(random::uniform(k, 3, 9) != random::uniform({12346, 7}, 3, 9));
}

TEST_CASE("dropout in a training graph keeps an element with probability 1 − p and scales it by 1/(1 − p)", "[dropout]") {
  const auto g30 = gradient_of_param<dropout_of_param<30>>({99, 1});
  int kept = 0;
  for (double d : g30) {
    REQUIRE((d == 0.0 || d == 1 / (1 - 0.3)));
    kept += d != 0;
  }
  // binomial(4096, 0.7): mean 2867.2, σ 29.3; a fixed key, so this is one fixed draw within 4σ
  CHECK(std::abs(kept - 0.7 * wide) < 4 * std::sqrt(wide * 0.3 * 0.7));
  // the next step draws another mask: the two overlap as independent masks do (0.49 · 4096 ± 4σ)
  const auto next = gradient_of_param<dropout_of_param<30>>({99, 2});
  int both = 0;
  for (std::size_t i = 0; i < next.size(); ++i) both += next[i] != 0 && g30[i] != 0;
  CHECK(next != g30);
  CHECK(std::abs(both - 0.49 * wide) < 4 * std::sqrt(wide * 0.49 * 0.51));
  // the same key draws the same mask
  CHECK(gradient_of_param<dropout_of_param<30>>({99, 1}) == g30);
  // two dropouts in one graph: independent masks
  const auto a = gradient_of_param<two_dropouts>({5, 1}, 1), b = gradient_of_param<two_dropouts>({5, 1}, 2);
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += (a[i] != 0) == (b[i] != 0);
  CHECK(std::abs(same - 0.5 * wide) < 4 * std::sqrt(wide * 0.25));
  // p = 0 keeps everything, p = 1 drops everything
  for (double d : gradient_of_param<dropout_of_param<0>>({1, 1})) REQUIRE(d == 1.0);
  for (double d : gradient_of_param<dropout_of_param<100>>({1, 1})) REQUIRE(d == 0.0);
}

TEST_CASE("dropout in a forward graph (evaluation) is the identity and draws nothing", "[dropout]") {
  constexpr const graph& G = forward_graph<dropout_output<50>>::value;
  for (int i = 0; i < G.size; ++i) CHECK(G.nodes[i].kind != op::random_uniform);
  std::vector<double> xs(24);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = 0.25 * static_cast<double>(i) - 2;
  CHECK(reference::evaluate(G, 3, {xs})[static_cast<std::size_t>(G.outputs[0].node)].v == xs);
  // a trained model's predictions (cpu::function) are those of the same network without its dropout layers
  cpu::train_step<dropout_classifier, adam> step(adam{.lr = 0.01}, 4);
  std::vector<float> xb(6 * 5);
  for (std::size_t i = 0; i < xb.size(); ++i) xb[i] = std::sin(static_cast<float>(i));
  const std::vector<std::int32_t> yb = {0, 1, 2, 1, 0};
  step.run(5, {{"x", xb}, {"y", yb}});
  cpu::function<dropout_classifier_logits> with(step);
  cpu::function<plain_classifier_logits> without(step);
  std::vector<float> a(15), b(15);
  with.run(5, {{"x", xb}}, a);
  without.run(5, {{"x", xb}}, b);
  CHECK(a == b);
}

TEST_CASE("dropout: gradients equal finite differences at a fixed key", "[dropout][gradients]") {
  constexpr const graph& G = gradient_graph<dropout_classifier>::value;
  for (std::uint64_t seed : {31u, 32u})
    for (long batch : {1L, 6L}) {
      INFO("seed " << seed << ", batch " << batch);
      kiln_test::check_against_finite_differences(G, batch, kiln_test::random_leaves(G, batch, seed), 1e-6);
    }
}

TEST_CASE("dropout: fused == unfused == reference on the CPU, drawing the same masks", "[dropout][backend]") {
  for (long batch : {1L, 5L, 64L, 65L}) compare<dropout_classifier>(adam{.lr = 1e-2}, batch, 41, 4);
  // the gradient façade draws with {seed, 0} unless given a key; the same key, the same gradients
  cpu::gradient<dropout_classifier> g(3);
  std::vector<float> xb(6 * 4, 0.5f);
  const std::vector<std::int32_t> yb = {0, 1, 2, 1};
  g.run(4, {{"x", xb}, {"y", yb}});
  const std::vector<float> first(g.grad("fc1.weight").begin(), g.grad("fc1.weight").end());
  g.run(4, {{"x", xb}, {"y", yb}});
  CHECK(std::vector<float>(g.grad("fc1.weight").begin(), g.grad("fc1.weight").end()) == first);
  g.set_random_key({3, 1});
  g.run(4, {{"x", xb}, {"y", yb}});
  CHECK(std::vector<float>(g.grad("fc1.weight").begin(), g.grad("fc1.weight").end()) != first);
}
