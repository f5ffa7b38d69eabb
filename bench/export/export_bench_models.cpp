// Writes the headers kiln-bench's inference cases time as "exported", and the ONNX files its ONNX Runtime rows run:
// the classifier's and the Fashion-MNIST CNN's forward (bench/kiln_bench/bench_models.hpp,
// examples/fashion_mnist_cnn_model.hpp) with the parameters a train_step initializes with seed 1 (the same ones
// kiln-bench's kiln::cpu::function rows use), through kiln::cpu::export_cpp and export_onnx. Run by the build: export_bench_models DIR.
#include "../kiln_bench/bench_models.hpp"

#include "../../examples/fashion_mnist_cnn_model.hpp"

#include <kiln/cpu/export_cpp.hpp>
#include <kiln/cpu/export_onnx.hpp>
#include <kiln/cpu/train_step.hpp>

#include <cstdio>
#include <string>

template <class Loss, class Logits>
void export_model(const std::string& dir, const std::string& name) {
  const kiln::cpu::train_step<Loss, kiln::adam> step(kiln::adam{}, /*seed=*/1);
  const auto f = kiln::cpu::function<Logits>::copy_of(step);
  kiln::cpu::export_cpp(f, dir + "/" + name + ".hpp", name);
  kiln::cpu::export_onnx(f, dir + "/" + name + ".onnx");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: export_bench_models DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  export_model<kiln_bench::models::classifier_loss, kiln_bench::models::classifier_logits>(dir, "exported_classifier");
  export_model<fashion_cnn::loss, fashion_cnn::logits>(dir, "exported_cnn");
  return 0;
}
