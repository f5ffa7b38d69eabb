#pragma once
// The notes' classifier as kiln-bench compiles it: 784 → 128 ReLU → 64 ReLU → 10; its loss (softmax
// cross-entropy, for the training cases) and its logits (for the inference cases and the exported header).
// The CNN is examples/fashion_mnist_cnn_model.hpp's.
#include <kiln/kiln.hpp>

namespace kiln_bench::models {
inline constexpr auto classifier_net =
    kiln::nn::sequential(kiln::dense<128>{}, kiln::relu, kiln::dense<64>{}, kiln::relu, kiln::dense<10>{});
struct classifier_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(classifier_net(kiln::input<784>("x")), kiln::labels<10>("y")); }
};
struct classifier_logits {
  constexpr auto operator()() const { return classifier_net(kiln::input<784>("x")); }
};
}  // namespace kiln_bench::models
