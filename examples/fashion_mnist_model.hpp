#pragma once
// The course notes' Fashion-MNIST classifier of fashion_mnist.cpp and inference.cpp (also trained by
// tests/train/test_bf16_fashion_mnist.cpp): 784 → 128 ReLU → 64 ReLU → 10, softmax cross-entropy. Names: fc1,
// fc2, fc3.
#include <kiln/kiln.hpp>

namespace fashion_mlp {

inline constexpr auto net = kiln::nn::sequential(kiln::dense<128>{}, kiln::relu, kiln::dense<64>{}, kiln::relu, kiln::dense<10>{});
struct loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::input<784>("x")), kiln::labels<10>("y")); }
};
struct logits {
  constexpr auto operator()() const { return net(kiln::input<784>("x")); }
};

}  // namespace fashion_mlp
