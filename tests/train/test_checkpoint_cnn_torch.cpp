// The Fashion-MNIST CNN's checkpoint (examples/fashion_mnist_cnn_model.hpp, trained by fashion_mnist_cnn.cpp)
// loads by name into the equivalent torch.nn model (conv1, bn1, conv2, bn2, fc1, fc2; tests/train/cnn_interop.py)
// with load_state_dict(strict=True), batch-norm running statistics and num_batches_tracked included, and in
// eval() predicts what kiln's forward graph predicts. Run when /usr/bin/python3 can import torch (Debian:
// python3-torch); KILN_TORCH_PYTHON overrides the interpreter.
#include "train_test_util.hpp"

#include "../../examples/fashion_mnist_cnn_model.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {
using step_type = kiln::cpu::train_step<fashion_cnn::loss, kiln::adam>;
constexpr long pixels = 28 * 28, classes = 10;
constexpr long train_batch = 16, eval_batch = 8;
constexpr int steps = 3;

std::string python() {
  const char* p = std::getenv("KILN_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}
std::string script() { return std::string(KILN_SOURCE_DIR) + "/tests/train/cnn_interop.py"; }

// n images with pixels in [0, 1) and labels 0..9
struct batch_data {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
batch_data make_batch(long n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  batch_data b;
  for (long i = 0; i < n * pixels; ++i) b.x.push_back(u(rng));
  for (long i = 0; i < n; ++i) b.y.push_back(static_cast<std::int32_t>(rng() % classes));
  return b;
}
}  // namespace

TEST_CASE("torch: the Fashion-MNIST CNN's checkpoint loads into the equivalent torch.nn model by name") {
  if (!kiln_test::run(python() + " -c 'import torch' > /dev/null 2>&1")) {
    WARN("skipped: " << python() << " cannot import torch (apt-get install python3-torch, or set KILN_TORCH_PYTHON)");
    return;
  }
  const std::string dir = kiln_test::temp_dir();
  step_type step(kiln::adam{.lr = 1e-3}, 5);
  const batch_data train = make_batch(train_batch, 31);
  for (int i = 0; i < steps; ++i) step.run(train_batch, {{"x", train.x}, {"y", train.y}});
  // the running statistics moved (the Python side checks them against torch's initial values too)
  CHECK(step.param("bn1.num_batches_tracked")[0] == steps);
  CHECK(step.param("bn2.num_batches_tracked")[0] == steps);
  const std::string ckpt = dir + "/cnn.safetensors";
  kiln::train::save_checkpoint(step, ckpt);

  // a held-out batch: kiln's evaluation-mode logits (running statistics, no dropout)
  const batch_data held_out = make_batch(eval_batch, 32);
  const std::string inputs = dir + "/cnn_inputs.safetensors";
  kiln::io::write_safetensors(inputs, {{"x", kiln::io::make_f32({eval_batch, pixels}, held_out.x)}});
  kiln::cpu::function<fashion_cnn::logits> f(step);
  std::vector<float> logits(eval_batch * classes);
  f.run(eval_batch, {{"x", held_out.x}}, logits);

  const std::string predicted = dir + "/cnn_predicted.safetensors";
  REQUIRE(kiln_test::run(python() + " " + script() + " " + ckpt + " " + inputs + " " + std::to_string(steps) + " " +
                         predicted));
  const std::vector<float> torch_logits =
      kiln::io::values_f32(kiln::io::read_safetensors(predicted).at("logits"));
  REQUIRE(torch_logits.size() == logits.size());
  const auto finite = [](float v) { return std::isfinite(v); };
  REQUIRE(std::all_of(logits.begin(), logits.end(), finite));
  REQUIRE(std::all_of(torch_logits.begin(), torch_logits.end(), finite));
  // Both sides compute in float32, but sum in different orders (kiln: im2col + its GEMM per sample, torch: its
  // convolution and BLAS kernels) over up to 3136 terms per output, so logits agree to a few float32 ulps of the
  // largest magnitudes involved, not bit for bit: 1e-4 of the largest |logit| leaves room for that rounding and
  // is orders of magnitude below any real difference (a wrong name, layout or missing running statistic moves
  // logits by O(max |logit|)).
  float scale = 0;
  for (float v : logits) scale = std::max(scale, std::abs(v));
  REQUIRE(scale > 0);
  const float tolerance = 1e-4f * scale;
  std::size_t worst = 0;  // the logit farthest from torch's (run with -s to see the figures)
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (std::abs(logits[i] - torch_logits[i]) > std::abs(logits[worst] - torch_logits[worst])) worst = i;
  INFO("logit " << worst << " (sample " << worst / classes << ", class " << worst % classes << "): kiln "
                << logits[worst] << ", torch " << torch_logits[worst] << "; max |logit| " << scale);
  const float max_difference = std::abs(logits[worst] - torch_logits[worst]);
  CHECK(max_difference <= tolerance);
}
