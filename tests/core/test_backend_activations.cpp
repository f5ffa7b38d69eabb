// The CPU backend, fused and unfused, against the double reference evaluator over every activation
// (cross-entropy; Adam and Nesterov), several batch sizes and steps; the seed is printed on failure.
#include "backend_compare.hpp"

TEST_CASE("fused == unfused == reference across activations", "[backend]") {
  for (long batch : {1L, 7L, 64L, 300L}) {
    compare<activations_a>(adam{.lr = 1e-2}, batch, 1);
    compare<activations_b>(nesterov{.lr = 1e-2, .momentum = 0.9}, batch, 2);
  }
}

TEST_CASE("fused == unfused == reference on a residual block", "[backend]") {
  for (long batch : {1L, 7L, 64L}) compare<residual_model>(adam{.lr = 1e-2}, batch, 3);
}

namespace {
struct elu_sum { constexpr auto operator()() const { return kiln::sum(kiln::elu(kiln::param<4>("p"))); } };
}  // namespace

// elu's negative side is α·expm1(x), as PyTorch computes it: e^x − 1 in float would lose every digit near 0
// (at −1e-6 it is off by 5 %), and its slope e^x is taken of x, so it stays accurate far out (e^−30).
TEST_CASE("elu near 0 and far out keeps its relative accuracy in float", "[backend]") {
  for (double x : {-1e-6, -3e-4, -2e-8, -30.0}) {
    INFO("x = " << x);
    kiln::cpu::gradient<elu_sum> g;
    auto p = g.param("p");
    std::fill(p.begin(), p.end(), 0.0f);  // elu(0) = 0 exactly
    p[0] = static_cast<float>(x);
    const double xf = static_cast<double>(p[0]);
    const float loss = g.run(1);
    CHECK(static_cast<double>(loss) == Approx(std::expm1(xf)).epsilon(1e-6));
    CHECK(static_cast<double>(g.grad("p")[0]) == Approx(std::exp(xf)).epsilon(1e-6));
  }
}
