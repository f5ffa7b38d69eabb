// Generated CUDA kernels run on the host emulator (kiln/cuda/emulator.hpp) against the double reference
// evaluator: every activation, loss and optimizer, fused (the whole-step kernels) and unfused (one kernel per
// primitive), fused == unfused. Batches of 1, 7 and 70 with 16-row tiles: partial tiles, one block walking
// several tiles, several blocks' partial sums. This checks the kernels' logic where there is no GPU; the
// same comparisons run on a real GPU in test_cuda_codegen_device.cpp.
#include "test_cuda_codegen_common.hpp"

#include <kiln/cuda/emulator.hpp>

using namespace kiln;
using namespace kiln_cuda_test;

namespace {

std::shared_ptr<cuda::emulated_device> emulator() {
  static auto dev = std::make_shared<cuda::emulated_device>();
  return dev;
}

// fused at batches 1, 7, 70 (16-row tiles; 1 SM, then 3), unfused at 7 and 70, and fused == unfused at 70.
template <class Model, class Opt>
void check_model(Opt opt, std::uint64_t seed) {
  auto dev = emulator();
  dev->set_multiprocessors(1);
  compare_with_reference<Model, Opt, fusion::fused>(dev, opt, 1, seed, 2, 16);
  compare_with_reference<Model, Opt, fusion::fused>(dev, opt, 7, seed, 2, 16);
  const auto fused = compare_with_reference<Model, Opt, fusion::fused>(dev, opt, 70, seed, 3, 16);
  dev->set_multiprocessors(3);
  check_same_params(fused, compare_with_reference<Model, Opt, fusion::fused>(dev, opt, 70, seed, 3, 16));
  compare_with_reference<Model, Opt, fusion::unfused>(dev, opt, 7, seed, 2);
  check_same_params(fused, compare_with_reference<Model, Opt, fusion::unfused>(dev, opt, 70, seed, 3));
}

}  // namespace

TEST_CASE("emulated: relu, sigmoid, tanh, leaky_relu with cross-entropy and Adam", "[cuda][emulated]") {
  check_model<acts_a_model>(adam{.lr = 1e-2}, 1);
}

TEST_CASE("emulated: elu, gelu, gelu_tanh with MSE and AdamW", "[cuda][emulated]") {
  check_model<acts_b_model>(adamw{.lr = 1e-2, .weight_decay = 0.1}, 2);
}

TEST_CASE("emulated: swish, softplus, identity, prelu with MAE and Nesterov momentum", "[cuda][emulated]") {
  check_model<acts_c_model>(nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}, 3);
}

TEST_CASE("emulated: bce, bce_with_logits, kl_div, categorical cross-entropy, nll with momentum", "[cuda][emulated]") {
  check_model<losses_model>(momentum{.lr = 0.05, .momentum = 0.9}, 4);
}

TEST_CASE("emulated: SGD with weight decay and Adam with L2", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const sgd plain{.lr = 0.05, .weight_decay = 0.1};
  check_same_params(compare_with_reference<mse_model<relu_fn>, sgd, fusion::fused>(dev, plain, 33, 5),
                    compare_with_reference<mse_model<relu_fn>, sgd, fusion::unfused>(dev, plain, 33, 5));
  compare_with_reference<ce_model<gelu_fn>, adam, fusion::fused>(dev, adam{.lr = 1e-2, .weight_decay = 0.1}, 33, 6);
}

TEST_CASE("emulated: batch-free contractions before and after the batch", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const adam opt{.lr = 1e-2};
  const auto unfused = compare_with_reference<factored_model, adam, fusion::unfused>(dev, opt, 70, 10, 3);
  // the fused plan runs when lowering orders its in-place updates after the reads (see test_cuda_codegen_render)
  if (cuda::in_place_hazard(step_plan<factored_model, adam, fusion::fused>::p).empty())
    check_same_params(unfused, compare_with_reference<factored_model, adam, fusion::fused>(dev, opt, 70, 10, 3, 16));
  else
    CHECK_THROWS_WITH((compare_with_reference<factored_model, adam, fusion::fused>(dev, opt, 70, 10, 3, 16)),
                      Catch::Contains("the plan cannot run as lowered"));
}

TEST_CASE("emulated: long batches take the split paths and many tiles per block", "[cuda][emulated]") {
  // 2500 rows: unfused column sums split the rows over blocks and weight-gradient GEMMs split the batch (their
  // last block adds the partials and runs the update); the fused rows kernel has 20 tiles of 128 rows for 6 blocks.
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const momentum opt{.lr = 0.05, .momentum = 0.9};
  const auto unfused = compare_with_reference<mse_model<relu_fn>, momentum, fusion::unfused>(dev, opt, 2500, 7, 2);
  check_same_params(unfused, compare_with_reference<mse_model<relu_fn>, momentum, fusion::fused>(dev, opt, 2500, 7, 2));
}

TEST_CASE("emulated: the benchmark's steps (wide layers, 784 inputs, large register tiles)", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  check_same_params(compare_with_reference<mlp128_model, adam, fusion::fused>(dev, adam{}, 200, 8, 1),
                    compare_with_reference<mlp128_model, adam, fusion::unfused>(dev, adam{}, 200, 8, 1));
  compare_with_reference<classifier_model, adam, fusion::fused>(dev, adam{}, 150, 9, 1);
}

TEST_CASE("emulated: a kernel writing outside its buffer is reported", "[cuda][emulated]") {
  auto dev = emulator();
  const std::string source = std::string(cuda::prelude_source()) +
                             "extern \"C\" __global__ void fill(KILN_PARAMS, float* out) {\n"
                             "  if (threadIdx.x < (unsigned)ws_blocks) out[threadIdx.x] = 1.0f;\n"
                             "}\n";
  auto module = dev->load(source, {{"fill", 1}});
  cuda::cu_deviceptr out = dev->allocate(16 * sizeof(float));
  long long batch_size = 1;
  float hypers[cuda::max_hypers] = {};
  cuda::cu_deviceptr none = 0;
  int count = 16;
  void* args[] = {&batch_size, hypers, &none, &none, &count, &out};
  module->launch(0, {1, 1, 1}, {32, 1, 1}, 0, args);
  std::vector<float> host(16);
  dev->download(host.data(), out, 16 * sizeof(float));
  CHECK(host == std::vector<float>(16, 1.0f));
  count = 17;  // one float past the end
  CHECK_THROWS_WITH(module->launch(0, {1, 1, 1}, {32, 1, 1}, 0, args),
                    Catch::Contains("kernel 'fill' wrote outside the 64-byte buffer"));
  dev->release(out);
}
