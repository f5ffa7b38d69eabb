#pragma once
// The models the export tests train briefly and export (export_cpp, export_onnx): an MLP (GELU, PReLU, tanh, softmax),
// a CNN (conv with and without bias, grouped and strided; batch norm; max and average pooling; ELU; dropout) and an
// embedding model (class-index input, Swish), with seeded random data.
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace kiln_test::export_models {
inline constexpr auto mlp = kiln::nn::sequential(kiln::dense<16>{}, kiln::gelu, kiln::dense<12>{}, kiln::prelu_l, kiln::dense<8>{},
                                                 kiln::tanh, kiln::dense<5>{});
struct mlp_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(mlp(kiln::input<7>("x")), kiln::labels<5>("y")); }
};
struct mlp_probabilities {
  constexpr auto operator()() const { return kiln::softmax(mlp(kiln::input<7>("x"))); }
};

inline constexpr auto cnn = kiln::nn::torch_sequential(
    kiln::conv2d<2, 4, 3, 1, 1>{}, kiln::batch_norm<4>{}, kiln::relu, kiln::max_pool2d<2>{}, kiln::conv2d<4, 6, 3, 2, 1, 1, 2, false>{},
    kiln::elu, kiln::avg_pool2d<2>{}, kiln::flatten, kiln::dense<10>{}, kiln::relu, kiln::dropout{.p = 0.3}, kiln::dense<3>{});
struct cnn_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(cnn(kiln::image<2, 12, 12>("x")), kiln::labels<3>("y")); }
};
struct cnn_logits {
  constexpr auto operator()() const { return cnn(kiln::image<2, 12, 12>("x")); }
};

inline constexpr auto lm = kiln::nn::sequential(kiln::embedding<9, 4>{}, kiln::dense<10>{}, kiln::swish, kiln::dense<9>{});
struct lm_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(lm(kiln::tokens<9, 3>("context")), kiln::labels<9>("y")); }
};
struct lm_logits {
  constexpr auto operator()() const { return lm(kiln::tokens<9, 3>("context")); }
};

// tensors of rank 4 through every axis op: broadcasting, permute, sum and max over axes, slice, concat, mean, reshape
struct axes_features {
  template <class X>
  constexpr auto operator()(X x) const {
    using namespace kiln;
    auto a = tensor_param<3, 1>("a", 2);
    auto w = tensor_param<4, 2, 3>("w", 3);
    auto b = tensor_param<2, 3, 4>("b", 4);
    auto h = kiln::tanh(x * a + permute<1, 2, 0>(w) + sum<0>(b) + max_keepdim<2>(b));  // [B, 2, 3, 4]
    auto t = permute<0, 3, 1, 2>(h);                                                  // [B, 4, 2, 3]
    auto c = concat<2>(slice<2, 0, 1>(t), max_keepdim<2>(t), sum_keepdim<2>(t) * 0.5);  // [B, 4, 3, 3]
    auto m3 = mean<3>(c);                                                             // [B, 4, 3]
    return dense<3>("fc")(reshape<-1, 12>(m3 - mean_keepdim<1, 2>(m3)));
  }
};
struct axes_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(axes_features{}(kiln::input<2, 3, 4>("x")), kiln::labels<3>("y")); }
};
struct axes_logits {
  constexpr auto operator()() const { return axes_features{}(kiln::input<2, 3, 4>("x")); }
};

inline std::vector<float> normal(long n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}
inline std::vector<std::int32_t> classes(long n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& y : v) y = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(k));
  return v;
}

// How far an exported model's output is from kiln's: the largest absolute difference, where it is, and the largest
// |expected| it is judged against. Within rounding: kiln's SIMD exp/erf/tanh and blocked GEMM against another
// runtime's math and summation order are a few float ulps of the largest output apart.
struct deviation {
  double worst = 0, scale = 0;
  std::size_t at = 0;
  bool within_rounding() const { return worst <= 2e-5 * scale; }
};
inline deviation deviation_of(const std::vector<float>& got, const std::vector<float>& expected) {
  deviation d;
  for (float v : expected) d.scale = std::max(d.scale, static_cast<double>(std::abs(v)));
  for (std::size_t i = 0; i < got.size() && i < expected.size(); ++i)
    if (std::abs(static_cast<double>(got[i]) - expected[i]) > d.worst) d.worst = std::abs(static_cast<double>(got[i]) - expected[i]), d.at = i;
  return d;
}

// f's output on one feed of batch × width values, through its own run().
template <class F, class T>
std::vector<float> run_function(F& f, const std::string& feed, const std::vector<T>& input, long batch, long width) {
  std::vector<float> out(static_cast<std::size_t>(batch * width));
  f.run(batch, {{feed, std::span<const T>(input)}}, out);
  return out;
}

}  // namespace kiln_test::export_models
