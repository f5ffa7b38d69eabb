#pragma once
// Normalization over features. normalize_features(x, ε) = (x − μ) / √(σ² + ε) per sample, μ and σ² the mean and
// the biased variance of the sample's features; layer_norm is PyTorch's nn.LayerNorm over the last dimension:
// normalize_features(x, ε)·weight + bias, weight initialized to 1 and bias to 0, both [features] (for
// elementwise_affine=False, use normalize_features itself).
// Both are compositions of primitives (two row means, a power), so their gradients, their fusion and every
// backend come from the primitives'.
#include <kiln/nn/layers.hpp>

namespace kiln {

template <expression X>
constexpr auto normalize_features(X x, double eps = 1e-5) {
  const auto centered = x - mean_features(x);
  return centered * pow(mean_features(centered * centered) + eps, -0.5);
}

struct layer_norm {
  static constexpr std::string_view stem = "norm";  // named norm1, norm2, … by nn::sequential
  double eps = 1e-5;
  short_name name{};

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    constexpr int features = X::shape.cols;
    auto weight = make_leaf<1, features, value_kind::any, leaf_kind::param>("w", 1).init_constant(1.0);
    auto bias = make_leaf<1, features, value_kind::any, leaf_kind::param>("b", 1);
    weight.info.name = detail::joined(prefix.view(), ".weight");
    bias.info.name = detail::joined(prefix.view(), ".bias");
    return normalize_features(x, eps) * weight + bias;
  }
};

}  // namespace kiln
