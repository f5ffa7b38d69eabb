// Batch normalization (nn/batch_norm.hpp): training-mode values and running statistics against their closed
// forms, evaluation mode from the running statistics, gradients against finite differences in double (maps and
// vectors, a batch of 1 over maps), and the CPU backend fused and unfused against the reference over several
// Adam steps, running statistics included. PyTorch's nn.BatchNorm: tests/torch/test_layers_torch.cpp.
#include "cnn_compare.hpp"
#include "gradcheck.hpp"

#include <kiln/train/checkpoint.hpp>

#include <cmath>

using namespace kiln;

namespace {

constexpr auto maps = image<2, 1, 3>("x");  // 2 channels of 1×3
struct weighted { constexpr auto operator()() const { return sum(batch_norm<2>{.eps = 0.01, .name = short_name("bn")}(maps) * input<6>("R")); } };
struct evaluated { constexpr auto operator()() const { return batch_norm<2>{.eps = 0.01, .name = short_name("bn")}(maps); } };

// conv → batch_norm → relu → max_pool → flatten → dense → batch_norm (1d) → dense
struct bn_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 3, 3, 1, 1>{}, batch_norm<3>{}, relu, max_pool2d<2>{}, flatten, dense<5>{},
                                        batch_norm<5>{.momentum = 0.3}, kiln::tanh, dense<3>{})(image<1, 4, 4>("x")),
                         labels<3>("y"));
  }
};

// bn_cnn without the convolution's bias: batch norm then reads a stored map and takes both statistics in one pass
// (batch_norm.hpp); with the bias, x is an elementwise node and the statistics take two
struct bn_cnn_bias_free {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 3, 3, 1, 1, 1, 1, false>{}, batch_norm<3>{}, relu, max_pool2d<2>{}, flatten,
                                        dense<5>{}, batch_norm<5>{.momentum = 0.3}, kiln::tanh, dense<3>{})(image<1, 4, 4>("x")),
                         labels<3>("y"));
  }
};

// 7 channels of 6×6: rows of 252 values, over 8 vectors at every SIMD width (and not a whole number of them), so
// that the CPU schedule evaluates batch norm's backward column sums in other kernels' passes (executor riders).
struct wide_bn_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 7, 3, 1, 1>{}, batch_norm<7>{}, relu, flatten, dense<3>{})(image<1, 6, 6>("x")),
                         labels<3>("y"));
  }
};

// 2 channels of 8×8 sitting far from 0 with little spread (values exact in float): the statistics' one pass
// (batch_norm.hpp) must not lose the variance to cancellation
constexpr auto offset_maps = image<2, 8, 8>("x");
struct offset_weighted {
  constexpr auto operator()() const { return sum(batch_norm<2>{.name = short_name("bn")}(offset_maps) * input<128>("R")); }
};

struct wide_bn_cnn_bias_free {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 7, 3, 1, 1, 1, 1, false>{}, batch_norm<7>{}, relu, flatten, dense<3>{})(image<1, 6, 6>("x")),
                         labels<3>("y"));
  }
};

int leaf_named(const graph& G, std::string_view name) {
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].name.view() == name) return l;
  FAIL("no leaf " << name);
  return -1;
}

// two samples of 2 channels × 3 positions
const std::vector<double> x_values = {1, 2, 6, -1, 0, 4,  3, 5, 7, 2, 2, 2};

}  // namespace

TEST_CASE("batch_norm: training normalizes each channel over the batch and the map, and updates the running statistics", "[batch_norm]") {
  constexpr const graph& G = step_graph<weighted, sgd>::value;
  std::vector<double> R(12);
  for (std::size_t i = 0; i < R.size(); ++i) R[i] = 0.5 + static_cast<double>(i);
  auto v = kiln_test::leaves_by_name(G, {{"x", x_values}, {"R", R}, {"bn.weight", {2, 3}}, {"bn.bias", {0.5, -1}},
                          {"bn.running_mean", {1, -1}}, {"bn.running_var", {2, 4}}, {"bn.num_batches_tracked", {7}}});
  std::vector<double> h(16);
  sgd{.lr = 0}.hypers(1, h.data());
  const double loss = reference::step(G, 2, v, h);
  double want_loss = 0;
  const double gamma[2] = {2, 3}, beta[2] = {0.5, -1}, rm[2] = {1, -1}, rv[2] = {2, 4};
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 3; ++l) mean += x_values[static_cast<std::size_t>(n * 6 + c * 3 + l)] / 6;
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 3; ++l) var += std::pow(x_values[static_cast<std::size_t>(n * 6 + c * 3 + l)] - mean, 2) / 6;
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 3; ++l) {
        const std::size_t i = static_cast<std::size_t>(n * 6 + c * 3 + l);
        want_loss += ((x_values[i] - mean) / std::sqrt(var + 0.01) * gamma[c] + beta[c]) * R[i];
      }
    INFO("channel " << c);
    CHECK(v[static_cast<std::size_t>(leaf_named(G, "bn.running_mean"))][static_cast<std::size_t>(c)] == Approx(0.9 * rm[c] + 0.1 * mean).epsilon(1e-12));
    CHECK(v[static_cast<std::size_t>(leaf_named(G, "bn.running_var"))][static_cast<std::size_t>(c)] == Approx(0.9 * rv[c] + 0.1 * var * 6 / 5).epsilon(1e-12));
  }
  CHECK(loss == Approx(want_loss).epsilon(1e-12));
  CHECK(v[static_cast<std::size_t>(leaf_named(G, "bn.num_batches_tracked"))] == std::vector<double>{8});
  CHECK(train::torch_shape(G.leaves[leaf_named(G, "bn.num_batches_tracked")]).empty());
}

TEST_CASE("batch_norm: evaluation normalizes with the running statistics", "[batch_norm]") {
  constexpr const graph& G = forward_graph<evaluated>::value;
  const auto v = kiln_test::leaves_by_name(G, {{"x", x_values}, {"bn.weight", {2, 3}}, {"bn.bias", {0.5, -1}}, {"bn.running_mean", {1, -1}},
                                {"bn.running_var", {2, 4}}});
  const auto out = reference::evaluate(G, 2, v)[static_cast<std::size_t>(G.outputs[0].node)].v;
  const double gamma[2] = {2, 3}, beta[2] = {0.5, -1}, rm[2] = {1, -1}, rv[2] = {2, 4};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int c = static_cast<int>(i % 6 / 3);
    CHECK(out[i] == Approx((x_values[i] - rm[c]) / std::sqrt(rv[c] + 0.01) * gamma[c] + beta[c]).epsilon(1e-12));
  }
}

TEST_CASE("batch_norm: gradients equal finite differences", "[batch_norm][gradients]") {
  for (std::uint64_t seed : {91u, 92u})
    for (long batch : {2L, 5L}) {
      INFO("seed " << seed << ", batch " << batch);
      constexpr const graph& A = gradient_graph<bn_cnn>::value;
      kiln_test::check_against_finite_differences(A, batch, kiln_test::random_leaves(A, batch, seed), 1e-6);
      constexpr const graph& F = gradient_graph<bn_cnn_bias_free>::value;
      kiln_test::check_against_finite_differences(F, batch, kiln_test::random_leaves(F, batch, seed), 1e-6);
    }
  // a batch of 1 over maps: the statistics run over the map's positions alone
  constexpr const graph& B = gradient_graph<weighted>::value;
  kiln_test::check_against_finite_differences(B, 1, kiln_test::random_leaves(B, 1, 93), 1e-6);
}

// SGD with momentum: a bias right before a batch norm has a gradient of exactly 0 in exact arithmetic (the norm
// subtracts every per-channel constant), so float and double disagree on its rounding noise, which Adam would
// scale up to a full step of ±lr.
TEST_CASE("batch_norm: fused == unfused == reference on the CPU, running statistics included", "[batch_norm][backend]") {
  for (long batch : {2L, 9L, 40L}) {
    kiln_test::compare_cnn<bn_cnn, 16, 3>(batch, 95, momentum{.lr = 0.05, .momentum = 0.9});
    kiln_test::compare_cnn<bn_cnn_bias_free, 16, 3>(batch, 96, momentum{.lr = 0.05, .momentum = 0.9});
  }
}

TEST_CASE("batch_norm: column sums evaluated in another kernel's pass (wide maps) == reference", "[batch_norm][backend]") {
  // Σ g and Σ g·(x − μ) in one pass, and the sum of the input adjoint taken while it is written: at least two
  // riders, so that the comparison below exercises them (batch 1 on one task, 7 and 64 split between threads)
  using plan_holder = cpu::train_step<wide_bn_cnn, momentum, fusion::fused>::plan_holder;
  STATIC_REQUIRE(cpu::executor<plan_holder>::rider_count() >= 2);
  // and the statistics' and the backward's sums added a channel at a time into their channel sums (executor totals)
  STATIC_REQUIRE(cpu::executor<plan_holder>::totals_count() >= 4);
  using bias_free = cpu::train_step<wide_bn_cnn_bias_free, momentum, fusion::fused>::plan_holder;
  STATIC_REQUIRE(cpu::executor<bias_free>::totals_count() >= 4);
  // and the kernels that read the per-channel mean, scale and shift as one value per channel (rows walked a
  // channel of 36 columns at a time: 36 is not a whole number of vectors at 256 and 512 bits), a rider's host
  // among them
  STATIC_REQUIRE(cpu::executor<plan_holder>::channel_walk_count() >= 3);
  STATIC_REQUIRE(cpu::executor<plan_holder>::channel_walk_count(true) >= 1);
  for (long batch : {1L, 7L, 64L}) {
    kiln_test::compare_cnn<wide_bn_cnn, 36, 3>(batch, 17, momentum{.lr = 0.005, .momentum = 0.9});
    kiln_test::compare_cnn<wide_bn_cnn_bias_free, 36, 3>(batch, 18, momentum{.lr = 0.005, .momentum = 0.9});
  }
}

// The forward's two statistics (Σ(x − K) and Σ(x − K)², batch_norm.hpp) as host and rider: over a stored map the
// fused CPU step reads x for them once, then writes y, then reads the backward's two sums (Σg, Σg·(x − K)) in one
// pass and writes x's adjoint: four passes. With the convolution's bias added (x elementwise), μ is summed before
// σ²: five.
namespace {
template <class Model>
constexpr int passes_over_map() {
  using run = cpu::executor<typename cpu::train_step<Model, momentum, fusion::fused>::plan_holder>;
  int passes = 0;
  for (int k = 0; k < run::P.num_kernels; ++k) {
    const kernel& K = run::P.kernels[k];
    const bool over_map = K.domain.rows == batch && K.domain.cols == 7 * 6 * 6;
    if (over_map && (K.kind == kernel_kind::reduction || K.kind == kernel_kind::elementwise) && run::pass_of(k) == k) ++passes;
  }
  return passes;
}
}  // namespace

TEST_CASE("batch_norm: a stored map's two statistics in one pass over it on the CPU", "[batch_norm][plan]") {
  STATIC_REQUIRE(passes_over_map<wide_bn_cnn_bias_free>() == 4);
  STATIC_REQUIRE(passes_over_map<wide_bn_cnn>() == 5);
}

// Channel 0 holds 1000 + k/64, channel 1 −4096 + k/128 (k in 0..60): Σx²/n − μ² in floats would leave nothing of
// σ² (≈ 0.07 and 0.02 against 10⁶ and 1.7·10⁷), and a reference K that lags the batch's mean (the running mean,
// 0 at the first step) as little. With K taken from the batch, the float step's σ² and loss match the exact ones.
namespace {
template <fusion Mode>
void check_offset_channels() {
  INFO((Mode == fusion::fused ? "fused" : "unfused"));
  constexpr long batch = 16, L = 64;
  std::vector<float> x(static_cast<std::size_t>(batch * 2 * L)), R(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int k = static_cast<int>(i * 37 % 61);
    x[i] = i % (2 * L) < L ? 1000.0f + static_cast<float>(k) / 64 : -4096.0f + static_cast<float>(k) / 128;
  }
  for (std::size_t i = 0; i < R.size(); ++i) R[i] = static_cast<float>(i % 7) - 2.5f;
  cpu::train_step<offset_weighted, sgd, Mode> step(sgd{.lr = 0});
  const double loss = step.run(batch, {{"x", x}, {"R", R}});
  double want_loss = 0;
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    auto at = [&](long n, long l) { return static_cast<double>(x[static_cast<std::size_t>(n * 2 * L + c * L + l)]); };
    for (long n = 0; n < batch; ++n)
      for (long l = 0; l < L; ++l) mean += at(n, l) / (batch * L);
    for (long n = 0; n < batch; ++n)
      for (long l = 0; l < L; ++l) var += std::pow(at(n, l) - mean, 2) / (batch * L);
    for (long n = 0; n < batch; ++n)
      for (long l = 0; l < L; ++l) want_loss += (at(n, l) - mean) / std::sqrt(var + 1e-5) * R[static_cast<std::size_t>(n * 2 * L + c * L + l)];
    INFO("channel " << c << ": mean " << mean << ", variance " << var);
    const double running_var = step.param("bn.running_var")[static_cast<std::size_t>(c)];
    CHECK((running_var - 0.9) / 0.1 == Approx(var * (batch * L) / (batch * L - 1)).epsilon(1e-4));
    CHECK(step.param("bn.running_mean")[static_cast<std::size_t>(c)] == Approx(0.1 * mean).epsilon(1e-6));
  }
  CHECK(loss == Approx(want_loss).epsilon(1e-4).margin(1e-3));
}
}  // namespace

TEST_CASE("batch_norm: a channel far from 0 with little spread keeps its variance in floats", "[batch_norm][backend]") {
  check_offset_channels<fusion::fused>();
  check_offset_channels<fusion::unfused>();
}

// What the fused plan stores (plan.hpp's max_recompute_cost): the ReLU mask after batch norm, gt((x − μ)·s + b, 0)
// (4 ops per element), is read by three backward kernels that load x anyway, so each recomputes it; the
// softmax's exp (8 and more) is stored for its two readers.
TEST_CASE("batch_norm: the fused plan recomputes the cheap ReLU mask and stores the exp", "[batch_norm][plan]") {
  auto stored = [](const plan& p, op kind) {
    int n = 0;
    for (int s = 0; s < p.num_stores; ++s) n += p.g.nodes[p.stores[s]].kind == kind;
    return n;
  };
  const plan& fused = cpu::train_step<wide_bn_cnn, momentum, fusion::fused>::compiled_plan();
  const plan& unfused = cpu::train_step<wide_bn_cnn, momentum, fusion::unfused>::compiled_plan();
  CHECK(stored(unfused, op::gt) >= 1);
  CHECK(stored(fused, op::gt) == 0);
  CHECK(stored(fused, op::exp) >= 1);
}

// x's adjoint through batch norm is g·s + (x − μ)·2·(∂L/∂σ²)/n − s·Σg/n (the mean's path and the variance's meet
// in per-channel values, see batch_norm.hpp): over the [batch, 7·6·6] map the fused plan has five sums (the two
// statistics, Σg and Σg·(x − μ), and the convolution's bias gradient, Σ of x's adjoint) and two elementwise
// passes, y and x's adjoint. The plain chain rule through x − μ had added a sum of the centered values' adjoint
// and a pass adding it back (6 and 3).
TEST_CASE("batch_norm: x's adjoint is one pass after one pass of channel sums", "[batch_norm][plan]") {
  const plan& fused = cpu::train_step<wide_bn_cnn, momentum, fusion::fused>::compiled_plan();
  int sums = 0, passes = 0;
  for (int k = 0; k < fused.num_kernels; ++k) {
    const kernel& K = fused.kernels[k];
    if (K.domain.rows != batch || K.domain.cols != 7 * 6 * 6) continue;
    sums += K.kind == kernel_kind::reduction;
    passes += K.kind == kernel_kind::elementwise;
  }
  CHECK(sums == 5);
  CHECK(passes == 2);
}

TEST_CASE("batch_norm: the step's running statistics feed the forward graph", "[batch_norm]") {
  cpu::train_step<bn_cnn, adam> step(adam{}, 3);
  std::vector<float> x(16 * 4);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  const std::vector<std::int32_t> y = {0, 1, 2, 1};
  step.run(4, {{"x", x}, {"y", y}});
  CHECK(step.param("bn1.num_batches_tracked")[0] == 1.0f);
  CHECK(step.param("bn1.running_var")[0] != 1.0f);
  struct logits {
    constexpr auto operator()() const {
      return nn::sequential(conv2d<1, 3, 3, 1, 1>{}, batch_norm<3>{}, relu, max_pool2d<2>{}, flatten, dense<5>{},
                            batch_norm<5>{.momentum = 0.3}, kiln::tanh, dense<3>{})(image<1, 4, 4>("x"));
    }
  };
  cpu::function<logits> f(step);
  std::vector<float> out(4 * 3);
  f.run(4, {{"x", x}}, out);
  // the same through the reference, from the step's parameters and running statistics
  constexpr const graph& G = forward_graph<logits>::value;
  std::vector<std::vector<double>> v(static_cast<std::size_t>(G.num_leaves));
  for (int l = 0; l < G.num_leaves; ++l) {
    const std::string_view name = G.leaves[l].name.view();
    if (name == "x") v[static_cast<std::size_t>(l)].assign(x.begin(), x.end());
    else { const auto p = step.param(name); v[static_cast<std::size_t>(l)].assign(p.begin(), p.end()); }
  }
  const auto want = reference::evaluate(G, 4, v)[static_cast<std::size_t>(G.outputs[0].node)].v;
  for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(want[i]).epsilon(1e-4).margin(1e-5));
}
