// Fashion-MNIST with a convolutional network (the notes' "modern solutions": convolutions, batch normalization,
// dropout): two blocks of 3×3 conv → batch_norm → ReLU → 2×2 max-pool (28×28×1 → 14×14×32 → 7×7×64), then
// flatten → 128 ReLU → dropout 0.3 → 10, softmax cross-entropy, Adam (lr 1e-3), batch 64. The convolutions have no
// bias (the batch norm after each removes any per-channel constant). Dropout and batch statistics are on in the
// training steps only: evaluation uses the running statistics and no dropout. The checkpoint's names are
// PyTorch's (conv1.weight [32, 1, 3, 3], bn1.running_mean, …, fc2.bias). Options, data and outputs:
// fashion_mnist_demo.hpp.
#include "fashion_mnist_demo.hpp"

namespace {
constexpr auto net = kiln::nn::sequential(
    kiln::conv2d<1, 32, 3, 1, 1, 1, 1, false>{}, kiln::batch_norm<32>{}, kiln::relu, kiln::max_pool2d<2>{},
    kiln::conv2d<32, 64, 3, 1, 1, 1, 1, false>{}, kiln::batch_norm<64>{}, kiln::relu, kiln::max_pool2d<2>{},
    kiln::flatten, kiln::dense<128>{}, kiln::relu, kiln::dropout{.p = 0.3}, kiln::dense<10>{});
struct cnn_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::image<1, 28, 28>("x")), kiln::labels<10>("y")); }
};
struct cnn_logits {
  constexpr auto operator()() const { return net(kiln::image<1, 28, 28>("x")); }
};
}  // namespace

int main(int argc, char** argv) {
  return fashion_demo::run<cnn_loss, cnn_logits>(argc, argv, "fashion_mnist_cnn",
                                                 "CNN (conv32-bn-relu-pool, conv64-bn-relu-pool, fc128, dropout 0.3)");
}
