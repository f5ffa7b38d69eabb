#pragma once
// The CPU backend against the double reference at every SIMD remainder. A row of W features is ⌈W/lanes⌉
// vectors, the last one partial unless lanes divides W; every kernel kind treats that partial vector on its
// own (masked loads and stores, neutral lanes in a reduction), so each width 1 … 3·lanes + 1 is a case of its
// own, and 8·lanes + 1 reaches the column sums that no longer fit in registers. Batches sit around the
// vector width, the GEMM row block (64) and a multiple of it plus one.
//
// sweep_model<W> puts every kind of kernel on rows of W features:
//   contractions   x·W1ᵀ (K = W), h·W2ᵀ (N = W) and their gradients (the weight gradients contract the batch)
//   epilogues      bias + tanh after the first, bias + PReLU after the second; Adam's update after each
//                  weight gradient
//   reductions     max over a row and Σ over a row (log_softmax in cross_entropy), Σ over the batch (bias
//                  gradients), Σ over everything (mse's mean, the PReLU slope's gradient)
//   elementwise    the chains between them, at [batch, W], [batch, 1] and [1, W]
//
// KILN_SWEEP_PART / KILN_SWEEP_PARTS (defaults 0 / 1) pick the widths W with W % PARTS == PART, so the sweep
// can be split over several translation units to keep each one's compile time bounded.
#include "../core/step_feeds.hpp"

#include <kiln/cpu/train_step.hpp>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#if !defined(KILN_SWEEP_PART)
#define KILN_SWEEP_PART 0
#endif
#if !defined(KILN_SWEEP_PARTS)
#define KILN_SWEEP_PARTS 1
#endif

namespace kiln_sweep {

using namespace kiln;

template <int W>
struct sweep_model {
  constexpr auto operator()() const {
    auto z = nn::sequential(dense<W>{}, kiln::tanh, dense<W>{}, prelu_l)(input<W>("x"));
    return cross_entropy(z, labels<W>("y")) + mse(z, target<W>("t"));
  }
};

// Batches around the vector width, the GEMM row block and the thread split.
inline std::vector<long> sweep_batches() {
  return {1L, cpu::lanes - 1L, static_cast<long>(cpu::lanes), cpu::lanes + 1L, 63L, 64L, 65L, 257L};
}

// `steps` Adam steps of the fused and the unfused CPU step against the reference, from the same parameters and
// inputs; the loss before each step and every parameter and optimizer state after it must agree.
template <class Model>
void compare_with_reference(long batch, std::uint64_t seed, int steps = 2) {
  const adam opt{.lr = 1e-2};
  INFO("seed " << seed << ", batch " << batch << ", " << cpu::lanes << " lanes");
  cpu::train_step<Model, adam, fusion::fused> fused(opt, seed);
  cpu::train_step<Model, adam, fusion::unfused> unfused(opt, seed);
  const graph& G = decltype(fused)::G;
  auto leaves = kiln_test::random_leaves(G, batch, seed + 1000, -2, 2);
  auto [xs, ts, ys] = kiln_test::start_from_step(fused, leaves, "t");
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    std::vector<double> hyp(16);
    opt.hypers(step, hyp.data());
    const double ref_loss = reference::step(G, batch, leaves, hyp);
    const float lf = fused.run(batch, {{"x", xs}, {"y", ys}, {"t", ts}});
    const float lu = unfused.run(batch, {{"x", xs}, {"y", ys}, {"t", ts}});
    CHECK(lf == Approx(ref_loss).epsilon(2e-5).margin(1e-6));
    CHECK(lu == Approx(ref_loss).epsilon(2e-5).margin(1e-6));
    for (int l = 0; l < G.num_leaves; ++l) {
      if (G.leaves[l].kind != leaf_kind::param && G.leaves[l].kind != leaf_kind::state) continue;
      const std::string name(G.leaves[l].name.view());
      const auto pf = fused.param(name), pu = unfused.param(name);
      const auto& pr = leaves[static_cast<std::size_t>(l)];
      for (std::size_t j = 0; j < pr.size(); ++j) {
        INFO(name << "[" << j << "]");
        REQUIRE(pf[j] == Approx(pr[j]).epsilon(1e-4).margin(2e-5));
        REQUIRE(pu[j] == Approx(pr[j]).epsilon(1e-4).margin(2e-5));
      }
    }
  }
}

template <int W>
void sweep_width() {
  if constexpr (W % KILN_SWEEP_PARTS == KILN_SWEEP_PART) {
    INFO("width " << W);
    for (long batch : sweep_batches()) compare_with_reference<sweep_model<W>>(batch, 7919u * W + static_cast<std::uint64_t>(batch));
  }
}

template <int... W>
void sweep_widths(std::integer_sequence<int, W...>) {
  (sweep_width<W + 1>(), ...);
}

}  // namespace kiln_sweep
