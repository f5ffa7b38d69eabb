// layer_norm and normalize_features: forward against the closed form, gradients against finite differences in
// double (random points, a batch of 1, a constant row whose variance is 0, one feature), the CPU backend fused
// and unfused against the reference. The same layer against PyTorch: tests/torch/test_layers_torch.cpp.
#include "backend_compare.hpp"
#include "gradcheck.hpp"

#include <cmath>

namespace {

constexpr auto features5 = input<5>("x");
// The layer between two dense layers, so the gradient reaches the first layer's weights through the norm's input.
struct norm_between_dense {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<6>{}, layer_norm{}, kiln::tanh, dense<3>{})(features5), y);
  }
};
struct norm_then_mse {
  constexpr auto operator()() const { return mse(nn::sequential(dense<4>{}, layer_norm{.eps = 1e-3}, dense<3>{})(x), t); }
};
// One feature: the variance is 0 and the output is bias, whatever the input.
struct norm_one_feature {
  constexpr auto operator()() const { return mse(nn::sequential(dense<1>{}, layer_norm{}, dense<3>{})(x), t); }
};
struct normalized_only { constexpr auto operator()() const { return normalize_features(input<4>("x")); } };

}  // namespace

TEST_CASE("normalize_features equals (x − mean) / sqrt(biased variance + eps) per row", "[normalization]") {
  constexpr const graph& G = forward_graph<normalized_only>::value;
  const std::vector<double> rows = {1, 2, 3, 4, -3, -3, -3, -3, 0.5, 100, -7, 1e-3};
  const auto val = reference::evaluate(G, 3, {rows});
  const auto& out = val[static_cast<std::size_t>(G.outputs[0].node)].v;
  REQUIRE(out.size() == rows.size());
  for (int r = 0; r < 3; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 4; ++j) mean += rows[static_cast<std::size_t>(4 * r + j)] / 4;
    for (int j = 0; j < 4; ++j) var += std::pow(rows[static_cast<std::size_t>(4 * r + j)] - mean, 2) / 4;
    for (int j = 0; j < 4; ++j) {
      const std::size_t i = static_cast<std::size_t>(4 * r + j);
      CHECK(out[i] == Approx((rows[i] - mean) / std::sqrt(var + 1e-5)).epsilon(1e-14).margin(1e-300));
    }
  }
  // x = (1, 2, 3, 4): mean 5/2, variance 5/4
  CHECK(out[0] == Approx(-1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-15));
  CHECK(out[4] == 0.0);  // a constant row: 0 / sqrt(eps)
}

TEST_CASE("layer_norm owns weight (ones) and bias (zeros) named after its place in nn::sequential", "[normalization]") {
  constexpr const graph& G = step_graph<norm_between_dense, sgd>::value;
  std::vector<std::string> names;
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].kind == leaf_kind::param) names.emplace_back(G.leaves[l].name.view());
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "norm1.weight", "norm1.bias", "fc2.weight", "fc2.bias"});
  cpu::train_step<norm_between_dense, sgd> step(sgd{.lr = 0.1}, 7);
  for (float w : step.param("norm1.weight")) CHECK(w == 1.0f);
  for (float b : step.param("norm1.bias")) CHECK(b == 0.0f);
  CHECK(step.param("norm1.weight").size() == 6);
}

TEST_CASE("layer_norm: gradients equal finite differences", "[normalization][gradients]") {
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    INFO("seed " << seed);
    for (long batch : {1L, 4L}) {
      constexpr const graph& A = gradient_graph<norm_between_dense>::value;
      kiln_test::check_against_finite_differences(A, batch, kiln_test::random_leaves(A, batch, seed), 1e-6);
      constexpr const graph& B = gradient_graph<norm_then_mse>::value;
      kiln_test::check_against_finite_differences(B, batch, kiln_test::random_leaves(B, batch, seed), 1e-6);
      constexpr const graph& C = gradient_graph<norm_one_feature>::value;
      kiln_test::check_against_finite_differences(C, batch, kiln_test::random_leaves(C, batch, seed), 1e-6);
    }
  }
}

TEST_CASE("layer_norm: a row of equal features (variance 0) has finite gradients equal to finite differences", "[normalization][gradients]") {
  constexpr const graph& G = gradient_graph<norm_then_mse>::value;
  auto v = kiln_test::random_leaves(G, 2, 5);
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].name.view() == "fc1.weight") std::fill(v[static_cast<std::size_t>(l)].begin(), v[static_cast<std::size_t>(l)].end(), 0.0);
  // fc1's weights 0: every row of fc1's output is its bias; a bias of equal entries makes the row constant
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].name.view() == "fc1.bias") std::fill(v[static_cast<std::size_t>(l)].begin(), v[static_cast<std::size_t>(l)].end(), 0.3);
  kiln_test::check_against_finite_differences(G, 2, v, 1e-6);
}

TEST_CASE("layer_norm: fused == unfused == reference on the CPU", "[normalization][backend]") {
  for (long batch : {1L, 5L, 64L}) {
    compare<norm_between_dense>(adam{.lr = 1e-2}, batch, 11);
    compare<norm_then_mse>(sgd{.lr = 0.1, .weight_decay = 0.01}, batch, 12);
  }
}
