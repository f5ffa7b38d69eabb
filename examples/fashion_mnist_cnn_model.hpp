#pragma once
// The Fashion-MNIST CNN of fashion_mnist_cnn.cpp (also trained by tests/train/test_checkpoint_cnn_torch.cpp, whose
// checkpoint loads into the equivalent torch.nn model): two blocks of 3×3 conv → batch_norm → ReLU → 2×2
// max-pool (28×28×1 → 14×14×32 → 7×7×64), then flatten → 128 ReLU → dropout 0.3 → 10. The convolutions have no
// bias (the batch norm after each removes any per-channel constant). Names: conv1, bn1, conv2, bn2, fc1, fc2.
#include <kiln/kiln.hpp>

namespace fashion_cnn {

inline constexpr auto net = kiln::nn::sequential(
    kiln::conv2d<1, 32, 3, 1, 1, 1, 1, false>{}, kiln::batch_norm<32>{}, kiln::relu, kiln::max_pool2d<2>{},
    kiln::conv2d<32, 64, 3, 1, 1, 1, 1, false>{}, kiln::batch_norm<64>{}, kiln::relu, kiln::max_pool2d<2>{},
    kiln::flatten, kiln::dense<128>{}, kiln::relu, kiln::dropout{.p = 0.3}, kiln::dense<10>{});
struct loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::image<1, 28, 28>("x")), kiln::labels<10>("y")); }
};
struct logits {
  constexpr auto operator()() const { return net(kiln::image<1, 28, 28>("x")); }
};

}  // namespace fashion_cnn
