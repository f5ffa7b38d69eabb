// Fashion-MNIST with the course notes' classifier: 784 → 128 ReLU → 64 ReLU → 10, softmax cross-entropy,
// Adam (lr 1e-3), batch 64, trained by kiln's compiled step. Options, data and outputs: fashion_mnist_demo.hpp.
#include "fashion_mnist_demo.hpp"

namespace {
constexpr auto net = kiln::nn::sequential(kiln::dense<128>{}, kiln::relu, kiln::dense<64>{}, kiln::relu, kiln::dense<10>{});
struct classifier_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::input<784>("x")), kiln::labels<10>("y")); }
};
struct classifier_logits {
  constexpr auto operator()() const { return net(kiln::input<784>("x")); }
};
}  // namespace

int main(int argc, char** argv) {
  return fashion_demo::run<classifier_loss, classifier_logits>(argc, argv, "fashion_mnist", "784-128-64-10 ReLU MLP");
}
