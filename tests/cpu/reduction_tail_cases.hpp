#pragma once
// Regression cases for the row reductions' partial last vector, at the first affected width of the vector width
// the including file compiles for (lanes + 1: one full vector and one lane of a second). The CPU row reduction
// once filled the lanes past a row's end with the running sum and added them, counting every full vector of a
// sum_cols row twice: mse over 17 outputs of 1 against targets of 0 came out 32/17 instead of 1 with AVX-512,
// and cross-entropy over 10 equal logits ln 16 instead of ln 10 with 4 lanes. Each case has a closed-form
// answer, so no tolerance can hide a double count; each runs fused and unfused.
#include <kiln/cpu/train_step.hpp>
#include <kiln/kiln.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace kiln_tail {

using namespace kiln;

inline constexpr int first_tail_width = cpu::lanes + 1;

template <int W>
struct mse_of_constant_output {
  constexpr auto operator()() const { return mse(nn::sequential(dense<W>{})(input<1>("x")), target<W>("t")); }
};
template <int W>
struct cross_entropy_of_equal_logits {
  constexpr auto operator()() const { return cross_entropy(nn::sequential(dense<W>{})(input<1>("x")), labels<W>("y")); }
};
// A loss that is the plain sum of a dense layer's output: its gradient is the constant 1, which reaches the weight
// gradient's contraction as an operand.
template <int W>
struct sum_of_dense_output {
  constexpr auto operator()() const { return sum(nn::sequential(dense<W>{})(input<3>("x"))); }
};

inline const char* mode_name(fusion m) { return m == fusion::fused ? "fused" : "unfused"; }

// Every weight 0 and every bias `bias`: each output is `bias` whatever the input.
template <class Step>
void make_outputs_constant(Step& step, float bias) {
  for (float& w : step.param("fc1.weight")) w = 0.0f;
  for (float& b : step.param("fc1.bias")) b = bias;
}

template <int W, fusion Mode>
void check_mse_of_constant_output(long batch) {
  INFO("width " << W << ", batch " << batch << ", " << cpu::lanes << " lanes, " << mode_name(Mode));
  cpu::train_step<mse_of_constant_output<W>, sgd, Mode> step(sgd{.lr = 0.0});
  make_outputs_constant(step, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(batch), 0.5f), t(static_cast<std::size_t>(batch * W), 0.0f);
  CHECK(step.run(batch, {{"x", x}, {"t", t}}) == 1.0f);  // the mean of batch·W ones, exact in float
}

// W equal logits: loss ln W; one SGD step of lr 1 moves bias j by −(1/W − n_j/batch), n_j the labels of class j.
template <int W, fusion Mode>
void check_cross_entropy_of_equal_logits(long batch) {
  INFO("width " << W << ", batch " << batch << ", " << cpu::lanes << " lanes, " << mode_name(Mode));
  cpu::train_step<cross_entropy_of_equal_logits<W>, sgd, Mode> step(sgd{.lr = 1.0});
  make_outputs_constant(step, 0.0f);
  std::vector<float> x(static_cast<std::size_t>(batch), 0.5f);
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  std::vector<double> count(W, 0.0);
  for (long i = 0; i < batch; ++i) {
    y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % W);
    count[static_cast<std::size_t>((i * 7) % W)] += 1;
  }
  CHECK(step.run(batch, {{"x", x}, {"y", y}}) == Approx(std::log(static_cast<double>(W))).epsilon(1e-6));
  const auto b = step.param("fc1.bias");
  for (int j = 0; j < W; ++j) {
    INFO("bias " << j);
    CHECK(b[static_cast<std::size_t>(j)] == Approx(-(1.0 / W - count[static_cast<std::size_t>(j)] / batch)).margin(1e-6));
  }
}

// ∂Σy/∂b_j = batch and ∂Σy/∂W_jk = Σ_i x_ik: one SGD step of lr 1 subtracts exactly these.
template <int W, fusion Mode>
void check_sum_of_dense_output(long batch) {
  INFO("width " << W << ", batch " << batch << ", " << cpu::lanes << " lanes, " << mode_name(Mode));
  cpu::train_step<sum_of_dense_output<W>, sgd, Mode> step(sgd{.lr = 1.0}, /*seed=*/3);
  const std::vector<float> w0(step.param("fc1.weight").begin(), step.param("fc1.weight").end());
  const std::vector<float> b0(step.param("fc1.bias").begin(), step.param("fc1.bias").end());
  std::vector<float> x(static_cast<std::size_t>(batch * 3));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  double expected = 0;
  for (long i = 0; i < batch; ++i)
    for (int j = 0; j < W; ++j) {
      double yij = b0[static_cast<std::size_t>(j)];
      for (int k = 0; k < 3; ++k) yij += double(w0[static_cast<std::size_t>(j * 3 + k)]) * x[static_cast<std::size_t>(i * 3 + k)];
      expected += yij;
    }
  CHECK(step.run(batch, {{"x", x}}) == Approx(expected).epsilon(1e-5).margin(1e-5));
  const auto w = step.param("fc1.weight");
  const auto b = step.param("fc1.bias");
  for (int j = 0; j < W; ++j) {
    CHECK(b[static_cast<std::size_t>(j)] == Approx(b0[static_cast<std::size_t>(j)] - batch).epsilon(1e-6));
    for (int k = 0; k < 3; ++k) {
      double column_sum = 0;
      for (long i = 0; i < batch; ++i) column_sum += x[static_cast<std::size_t>(i * 3 + k)];
      CHECK(w[static_cast<std::size_t>(j * 3 + k)] == Approx(w0[static_cast<std::size_t>(j * 3 + k)] - column_sum).margin(1e-5));
    }
  }
}

template <fusion Mode>
void check_all(long batch) {
  check_mse_of_constant_output<first_tail_width, Mode>(batch);
  check_cross_entropy_of_equal_logits<first_tail_width, Mode>(batch);
  check_cross_entropy_of_equal_logits<10, Mode>(batch);  // the notes' classifier's 10 classes
  check_sum_of_dense_output<first_tail_width, Mode>(batch);
}

}  // namespace kiln_tail

TEST_CASE("row reductions count a partial last vector once (lanes + 1 features)", "[backend][regression]") {
  for (long batch : {1L, 3L, 64L, 65L}) {
    kiln_tail::check_all<kiln::fusion::fused>(batch);
    kiln_tail::check_all<kiln::fusion::unfused>(batch);
  }
}
