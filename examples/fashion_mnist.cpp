// Fashion-MNIST with the course notes' classifier: 784 → 128 ReLU → 64 ReLU → 10, softmax cross-entropy,
// Adam (lr 1e-3), batch 64, trained by kiln's compiled step. Options, data and outputs: fashion_mnist_demo.hpp.
#include "fashion_mnist_demo.hpp"
#include "fashion_mnist_model.hpp"

int main(int argc, char** argv) {
  return fashion_demo::run<fashion_mlp::loss, fashion_mlp::logits>(argc, argv, "fashion_mnist", "784-128-64-10 ReLU MLP");
}
