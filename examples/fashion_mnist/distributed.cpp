// fashion_mnist --distributed (fashion_mnist_demo_distributed.hpp): compiled apart from the program's main file, so
// that neither translation unit holds both the single-process and the data-parallel steps.
#include "../fashion_mnist_model.hpp"
#include "../fashion_mnist_demo_distributed.hpp"

int fashion_demo::run_distributed(int argc, char** argv, const arguments& args, const std::string& model) {
  return run_distributed_of<fashion_mlp::loss, fashion_mlp::logits>(argc, argv, args, model);
}
