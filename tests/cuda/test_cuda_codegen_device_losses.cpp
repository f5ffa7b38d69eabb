// Every loss and optimizer on a real GPU against the double reference evaluator, fused and unfused,
// fused == unfused, at batch sizes 1, 7, 128, 1000, 65537; and the combined models (one of them lowers to the
// four-launch whole step). Without a usable GPU each test says "skipped: <reason>".
// compute-sanitizer: run this executable under `compute-sanitizer --tool memcheck` and `--tool racecheck`.
#include "test_cuda_codegen_common.hpp"

using namespace kiln;
using namespace kiln_cuda_test;

TEST_CASE("device: SGD, momentum, Nesterov, AdamW, Adam with L2 on MSE", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<mse_model<relu_fn>>(dev, sgd{.lr = 0.05}, 21);
  check_everywhere<mse_model<relu_fn>>(dev, sgd{.lr = 0.05, .weight_decay = 0.1}, 22);
  check_everywhere<mse_model<tanh_fn>>(dev, momentum{.lr = 0.05, .momentum = 0.9}, 23);
  check_everywhere<mse_model<tanh_fn>>(dev, nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}, 24);
  check_everywhere<mse_model<gelu_fn>>(dev, adamw{.lr = 1e-2, .weight_decay = 0.1}, 25);
  check_everywhere<mse_model<gelu_fn>>(dev, adam{.lr = 1e-2, .weight_decay = 0.1}, 26);
}

TEST_CASE("device: MAE, BCE, BCE with logits, KL divergence, categorical cross-entropy, NLL, PReLU", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<mae_model>(dev, sgd{.lr = 0.05}, 27);
  check_everywhere<bce_model>(dev, adam{.lr = 1e-2}, 28);
  check_everywhere<bce_logits_model>(dev, momentum{.lr = 0.05}, 29);
  check_everywhere<kl_model>(dev, adam{.lr = 1e-2}, 30);
  check_everywhere<cce_model>(dev, adam{.lr = 1e-2}, 31);
  check_everywhere<nll_model>(dev, adam{.lr = 1e-2}, 32);
  check_everywhere<prelu_model>(dev, adam{.lr = 1e-2}, 33);
}

TEST_CASE("device: combined models", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<acts_a_model>(dev, adam{.lr = 1e-2}, 41);
  check_everywhere<acts_b_model>(dev, adamw{.lr = 1e-2, .weight_decay = 0.1}, 42);
  check_everywhere<acts_c_model>(dev, nesterov{.lr = 0.05, .momentum = 0.9}, 43);
  check_everywhere<losses_model>(dev, momentum{.lr = 0.05, .momentum = 0.9}, 44);
}
