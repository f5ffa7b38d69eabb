#pragma once
// A CNN's training step on the CPU backend, fused and unfused, against the reference evaluator (test_conv.cpp,
// test_batch_norm.cpp).
#include <kiln/cpu/train_step.hpp>
#include <kiln/reference/evaluate.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <random>

namespace kiln_test {

using namespace kiln;

// Trains Model for a few steps of opt fused, unfused and on the reference; compares losses, parameters and
// optimizer state after each step.
// ties = true rounds the inputs to integers, so windows hold equal values (the max-pool tie rule is exercised).
template <class Model, int Pixels, int Classes, class Opt = adam>
void compare_cnn(long batch, std::uint64_t seed, Opt opt = adam{.lr = 0.01}, bool ties = false) {
  INFO("batch " << batch << ", seed " << seed);
  auto fused = std::make_unique<cpu::train_step<Model, Opt, fusion::fused>>(opt, seed);
  auto unfused = std::make_unique<cpu::train_step<Model, Opt, fusion::unfused>>(opt, seed);
  const graph& G = decltype(fused)::element_type::G;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<std::size_t>(batch * Pixels));
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  for (auto& e : x) e = ties ? std::round(normal(rng)) : normal(rng);
  for (auto& e : y) e = static_cast<std::int32_t>(rng() % Classes);
  std::vector<std::vector<double>> leaves(static_cast<std::size_t>(G.num_leaves));
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    auto& v = leaves[static_cast<std::size_t>(l)];
    if (info.kind == leaf_kind::param || info.kind == leaf_kind::state) {
      const auto p = fused->param(info.name.view());
      v.assign(p.begin(), p.end());
    } else if (info.name.view() == "x") {
      v.assign(x.begin(), x.end());
    } else {
      v.assign(y.begin(), y.end());
    }
  }
  for (int step = 1; step <= 3; ++step) {
    INFO("step " << step);
    std::vector<double> h(16);
    opt.hypers(step, h.data());
    const double ref = reference::step(G, batch, leaves, h);
    const float lf = fused->run(batch, {{"x", x}, {"y", y}});
    const float lu = unfused->run(batch, {{"x", x}, {"y", y}});
    CHECK(lf == Approx(ref).epsilon(2e-5));
    CHECK(lu == Approx(ref).epsilon(2e-5));
    for (int l = 0; l < G.num_leaves; ++l) {
      const leaf_info& info = G.leaves[l];
      if (info.kind != leaf_kind::param && info.kind != leaf_kind::state) continue;
      const auto a = fused->param(info.name.view()), b = unfused->param(info.name.view());
      const auto& want = leaves[static_cast<std::size_t>(l)];
      for (std::size_t j = 0; j < want.size(); ++j) {
        INFO(std::string(info.name.view()) << "[" << j << "]");
        REQUIRE(a[j] == Approx(want[j]).epsilon(1e-4).margin(3e-5));
        REQUIRE(b[j] == Approx(want[j]).epsilon(1e-4).margin(3e-5));
      }
    }
  }
}

}  // namespace kiln_test
