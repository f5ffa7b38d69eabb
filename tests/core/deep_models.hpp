#pragma once
// Deep models for the tests of models past the old fixed capacities: MLPs of Layers hidden tanh layers of Width
// features, then 3 logits, cross-entropy on labels y of 3 classes, input x of 6 features; CNNs of Convs
// convolutions.
#include <kiln/kiln.hpp>

#include <cstddef>
#include <tuple>
#include <utility>

namespace kiln_test {

// sequential(dense<Width>, tanh, … (one pair per I), dense<3>)
template <int Width, std::size_t... I>
constexpr auto tanh_stack(std::index_sequence<I...>) {
  const auto layers = std::tuple_cat(((void)I, std::tuple{kiln::dense<Width>{}, kiln::tanh})..., std::tuple{kiln::dense<3>{}});
  return std::apply([](auto... l) { return kiln::nn::sequential(l...); }, layers);
}
template <int Layers, int Width>
struct deep_mlp {
  constexpr auto operator()() const {
    return kiln::cross_entropy(tanh_stack<Width>(std::make_index_sequence<Layers>{})(kiln::input<6>("x")),
                               kiln::labels<3>("y"));
  }
};

// sequential(conv2d<4, 4, 3, 1, 1>, relu, … (one pair per I), global_avg_pool, dense<3>) on 4×6×6 maps
template <std::size_t... I>
constexpr auto conv_stack(std::index_sequence<I...>) {
  const auto layers = std::tuple_cat(std::tuple{kiln::conv2d<2, 4, 3, 1, 1>{}, kiln::relu},
                                     ((void)I, std::tuple{kiln::conv2d<4, 4, 3, 1, 1>{}, kiln::relu})...,
                                     std::tuple{kiln::global_avg_pool, kiln::dense<3>{}});
  return std::apply([](auto... l) { return kiln::nn::sequential(l...); }, layers);
}
// Convs convolutions (the first 2 → 4 channels, the others 4 → 4, 3×3, padding 1) with ReLU between, global
// average pooling, 3 logits, cross-entropy; input x: 2 channels of 6×6.
template <int Convs>
struct deep_cnn {
  constexpr auto operator()() const {
    return kiln::cross_entropy(conv_stack(std::make_index_sequence<Convs - 1>{})(kiln::image<2, 6, 6>("x")), kiln::labels<3>("y"));
  }
};

}  // namespace kiln_test
