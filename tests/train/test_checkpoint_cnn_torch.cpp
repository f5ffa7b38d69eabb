// The Fashion-MNIST CNN's checkpoint (examples/fashion_mnist_cnn_model.hpp, trained by fashion_mnist_cnn.cpp)
// loads by name into the equivalent torch.nn model (conv1, bn1, conv2, bn2, fc1, fc2; tests/train/cnn_interop.py)
// with load_state_dict(strict=True), batch-norm running statistics and num_batches_tracked included, and in
// eval() predicts what kiln's forward graph predicts. A second case does the same for a small CNN built with
// nn::torch_sequential, whose checkpoint names tensors by position (0.weight, 1.running_mean, 4.weight, …) and loads
// into the equivalent torch.nn.Sequential. Run when /usr/bin/python3 can import torch (Debian: python3-torch);
// KILN_TORCH_PYTHON overrides the interpreter.
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

// Every layer of torch_sequential counts as one torch module, so the names are torch.nn.Sequential's: 0 conv
// (weight, bias), 1 batch norm, 4 conv (weight: no bias), 8 and 11 linear. Maps: 1×16×16 → conv 3×3 pad 1 →
// 4×16×16 → max-pool 2 → 4×8×8 → conv 3×3 stride 2 pad 1, 2 groups → 6×4×4 → avg-pool 2 → 6×2×2 → flatten 24 → 10
// → 3 (2×2 maps before flatten, so a wrong flatten order would show).
namespace torch_cnn {
inline constexpr auto net = kiln::nn::torch_sequential(
    kiln::conv2d<1, 4, 3, 1, 1>{}, kiln::batch_norm<4>{}, kiln::relu, kiln::max_pool2d<2>{},
    kiln::conv2d<4, 6, 3, 2, 1, 1, 2, false>{}, kiln::relu, kiln::avg_pool2d<2>{}, kiln::flatten, kiln::dense<10>{},
    kiln::relu, kiln::dropout{.p = 0.2}, kiln::dense<3>{});
struct loss {
  constexpr auto operator()() const {
    return kiln::cross_entropy(net(kiln::image<1, 16, 16>("x")), kiln::labels<3>("y"));
  }
};
struct logits {
  constexpr auto operator()() const { return net(kiln::image<1, 16, 16>("x")); }
};
}  // namespace torch_cnn

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

// n images of `size` pixels in [0, 1) and labels 0..k-1
struct batch_data {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
batch_data make_batch(long n, std::uint64_t seed, long size = pixels, long k = classes) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  batch_data b;
  for (long i = 0; i < n * size; ++i) b.x.push_back(u(rng));
  for (long i = 0; i < n; ++i) b.y.push_back(static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(k)));
  return b;
}

// kiln's logits ([n, k], row-major) against torch's, read from the file the Python side wrote.
// Both sides compute in float32, but sum in different orders (kiln: im2col + its GEMM per sample, torch: its
// convolution and BLAS kernels) over up to 3136 terms per output, so logits agree to a few float32 ulps of the
// largest magnitudes involved, not bit for bit: 1e-4 of the largest |logit| leaves room for that rounding and
// is orders of magnitude below any real difference (a wrong name, layout or missing running statistic moves
// logits by O(max |logit|)).
void check_logits(const std::vector<float>& logits, const std::string& predicted, long k) {
  const std::vector<float> torch_logits =
      kiln::io::values_f32(kiln::io::read_safetensors(predicted).at("logits"));
  REQUIRE(torch_logits.size() == logits.size());
  const auto finite = [](float v) { return std::isfinite(v); };
  REQUIRE(std::all_of(logits.begin(), logits.end(), finite));
  REQUIRE(std::all_of(torch_logits.begin(), torch_logits.end(), finite));
  float scale = 0;
  for (float v : logits) scale = std::max(scale, std::abs(v));
  REQUIRE(scale > 0);
  const float tolerance = 1e-4f * scale;
  std::size_t worst = 0;  // the logit farthest from torch's (run with -s to see the figures)
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (std::abs(logits[i] - torch_logits[i]) > std::abs(logits[worst] - torch_logits[worst])) worst = i;
  const auto kk = static_cast<std::size_t>(k);
  INFO("logit " << worst << " (sample " << worst / kk << ", class " << worst % kk << "): kiln " << logits[worst]
                << ", torch " << torch_logits[worst] << "; max |logit| " << scale);
  const float max_difference = std::abs(logits[worst] - torch_logits[worst]);
  CHECK(max_difference <= tolerance);
}

bool have_torch() {
  if (kiln_test::run(python() + " -c 'import torch' > /dev/null 2>&1")) return true;
  WARN("skipped: " << python() << " cannot import torch (apt-get install python3-torch, or set KILN_TORCH_PYTHON)");
  return false;
}
}  // namespace

TEST_CASE("torch: the Fashion-MNIST CNN's checkpoint loads into the equivalent torch.nn model by name") {
  if (!have_torch()) return;
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
  check_logits(logits, predicted, classes);
}

TEST_CASE("torch: a torch_sequential CNN's checkpoint loads into the equivalent torch.nn.Sequential by position") {
  if (!have_torch()) return;
  using seq_step = kiln::cpu::train_step<torch_cnn::loss, kiln::adam>;
  constexpr long size = 16 * 16, k = 3;
  const std::string dir = kiln_test::temp_dir();
  seq_step step(kiln::adam{.lr = 1e-2}, 7);
  const batch_data train = make_batch(train_batch, 41, size, k);
  for (int i = 0; i < steps; ++i) step.run(train_batch, {{"x", train.x}, {"y", train.y}});
  // torch.nn.Sequential's names, by position (leaf_index throws on a name the step does not hold)
  CHECK(step.param("0.weight").size() == 4 * 1 * 3 * 3);
  CHECK(step.param("0.bias").size() == 4);
  CHECK(step.param("1.running_var").size() == 4);
  CHECK(step.param("1.num_batches_tracked")[0] == steps);
  CHECK(step.param("4.weight").size() == 6 * 2 * 3 * 3);
  CHECK_THROWS(step.param("4.bias"));
  CHECK(step.param("8.weight").size() == 10 * 24);
  CHECK(step.param("11.bias").size() == 3);
  CHECK_THROWS(step.param("conv1.weight"));
  const std::string ckpt = dir + "/seq.safetensors";
  kiln::train::save_checkpoint(step, ckpt);

  const batch_data held_out = make_batch(eval_batch, 42, size, k);
  const std::string inputs = dir + "/seq_inputs.safetensors";
  kiln::io::write_safetensors(inputs, {{"x", kiln::io::make_f32({eval_batch, size}, held_out.x)}});
  kiln::cpu::function<torch_cnn::logits> f(step);
  std::vector<float> logits(eval_batch * k);
  f.run(eval_batch, {{"x", held_out.x}}, logits);

  const std::string predicted = dir + "/seq_predicted.safetensors";
  REQUIRE(kiln_test::run(python() + " " + script() + " " + ckpt + " " + inputs + " " + std::to_string(steps) + " " +
                         predicted + " sequential"));
  check_logits(logits, predicted, k);
}

TEST_CASE("torch: a model trained in PyTorch runs in kiln::cpu::function, loaded from its state_dict by name") {
  if (!have_torch()) return;
  const std::string dir = kiln_test::temp_dir();
  const batch_data train = make_batch(train_batch, 51);
  const std::string train_file = dir + "/torch_train.safetensors";
  kiln::io::write_safetensors(train_file, {{"x", kiln::io::make_f32({train_batch, pixels}, train.x)},
                                           {"y", kiln::io::make_i32({train_batch}, train.y)}});
  const batch_data held_out = make_batch(eval_batch, 52);
  const std::string inputs = dir + "/torch_inputs.safetensors";
  kiln::io::write_safetensors(inputs, {{"x", kiln::io::make_f32({eval_batch, pixels}, held_out.x)}});
  const std::string state = dir + "/torch_state.safetensors", predicted = dir + "/torch_predicted.safetensors";
  REQUIRE(kiln_test::run(python() + " " + script() + " --train-in-torch " + train_file + " " + inputs + " " +
                         std::to_string(steps) + " " + state + " " + predicted));
  // the state_dict as torch wrote it: num_batches_tracked int64 (skipped), every other tensor checked by name
  const auto f = kiln::cpu::function<fashion_cnn::logits>::load(state);
  auto ws = f.make_workspace();
  std::vector<float> logits(eval_batch * classes);
  f.run(ws, eval_batch, {{"x", held_out.x}}, logits);
  check_logits(logits, predicted, classes);
}
