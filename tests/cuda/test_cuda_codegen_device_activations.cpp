// Every activation on a real GPU against the double reference evaluator, fused and unfused, fused == unfused,
// at batch sizes that are and are not multiples of the tile sizes (1, 7, 128, 1000, 65537).
// Without a usable GPU each test says "skipped: <reason>".
// compute-sanitizer: run this executable under `compute-sanitizer --tool memcheck` and `--tool racecheck`.
#include "test_cuda_codegen_common.hpp"

using namespace kiln;
using namespace kiln_cuda_test;

TEST_CASE("device: relu, sigmoid, tanh, leaky_relu, elu with cross-entropy and Adam", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<ce_model<relu_fn>>(dev, adam{.lr = 1e-2}, 1);
  check_everywhere<ce_model<sigmoid_fn>>(dev, adam{.lr = 1e-2}, 2);
  check_everywhere<ce_model<tanh_fn>>(dev, adam{.lr = 1e-2}, 3);
  check_everywhere<ce_model<leaky_relu_fn>>(dev, adam{.lr = 1e-2}, 4);
  check_everywhere<ce_model<elu_fn>>(dev, adam{.lr = 1e-2}, 5);
}

TEST_CASE("device: gelu, gelu_tanh, swish, softplus, identity with cross-entropy and Adam", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<ce_model<gelu_fn>>(dev, adam{.lr = 1e-2}, 6);
  check_everywhere<ce_model<gelu_tanh_fn>>(dev, adam{.lr = 1e-2}, 7);
  check_everywhere<ce_model<swish_fn>>(dev, adam{.lr = 1e-2}, 8);
  check_everywhere<ce_model<softplus_fn>>(dev, adam{.lr = 1e-2}, 9);
  check_everywhere<ce_model<identity_fn>>(dev, adam{.lr = 1e-2}, 10);
}
