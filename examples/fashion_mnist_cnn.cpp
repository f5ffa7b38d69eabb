// Fashion-MNIST with a convolutional network (the notes' "modern solutions": convolutions, batch normalization,
// dropout; the model: fashion_mnist_cnn_model.hpp), softmax cross-entropy, Adam (lr 1e-3), batch 64. Dropout and
// batch statistics are on in the training steps only: evaluation uses the running statistics and no dropout.
// Writes ./out_cnn by default. The checkpoint's names are PyTorch's (conv1.weight [32, 1, 3, 3], bn1.running_mean, …, fc2.bias). Options,
// data and outputs: fashion_mnist_demo.hpp.
#include "fashion_mnist_cnn_model.hpp"
#include "fashion_mnist_demo.hpp"

int main(int argc, char** argv) {
  return fashion_demo::run<fashion_cnn::loss, fashion_cnn::logits>(argc, argv, "fashion_mnist_cnn",
                                                                   "CNN (conv32-bn-relu-pool, conv64-bn-relu-pool, fc128, dropout 0.3)", "out_cnn");
}
