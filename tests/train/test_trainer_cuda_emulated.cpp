// The trainer with its steps on kiln::cuda::train_step (fit_on), run by the host emulator of a CUDA device
// (kiln/cuda/emulator.hpp; no GPU needed): the same training as on the CPU up to float rounding, with the
// parameters mirrored back to the host for evaluation and checkpoints.
#include "small_classifier.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cuda/emulator.hpp>
#include <kiln/cuda/step.hpp>
#include <kiln/cpu/trainer.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <vector>

namespace {
using loss_model = kiln_test::small_loss_model;
using logits_model = kiln_test::small_logits_model;
using trainer_type = kiln_test::small_trainer;
static_assert(kiln::training_step<kiln::cuda::train_step<loss_model, kiln::adam>>);

kiln::train::table make_data(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (int i = 0; i < n; ++i) {
    float v[4];
    for (float& e : v) {
      e = u(rng);
      x.push_back(e);
    }
    y.push_back(v[0] + v[1] > 0 ? 0 : v[2] > 0 ? 1 : 2);
  }
  kiln::train::table t;
  t.add_features("x", x, 4).add_labels("y", y);
  return t;
}
}  // namespace

TEST_CASE("trainer: fit_on a CUDA train_step (host emulator) trains as the CPU does") {
  const auto train = make_data(40, 1), validation = make_data(20, 2);
  kiln::train::options opt;
  opt.epochs = 2;
  opt.batch_size = 16;  // 16 + 16 + 8: a partial last batch on the device too
  opt.seed = 3;
  opt.progress = kiln::train::progress_style::quiet;
  trainer_type cpu(kiln::adam{.lr = 0.01}, opt), mirrored(kiln::adam{.lr = 0.01}, opt);
  cpu.fit(train, validation);

  kiln::cuda::step_options device;
  device.on = std::make_shared<kiln::cuda::emulated_device>();
  kiln::cuda::train_step<loss_model, kiln::adam> gpu(kiln::adam{.lr = 0.01}, /*seed=*/77, device);
  mirrored.fit_on(gpu, train, validation);

  CHECK(gpu.step_count() == 6);
  CHECK(mirrored.step().step_count() == 6);
  for (const char* name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc2.bias.exp_avg_sq"}) {
    INFO(name);
    const auto on_device = gpu.param(name);
    const auto mirror = mirrored.step().param(name);
    const auto reference = cpu.step().param(name);
    REQUIRE(on_device.size() == reference.size());
    for (std::size_t i = 0; i < reference.size(); ++i) {
      CHECK(mirror[i] == on_device[i]);
      CHECK(on_device[i] == Approx(reference[i]).epsilon(1e-4).margin(1e-6));
    }
  }
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(mirrored.history()[e].train_loss == Approx(cpu.history()[e].train_loss).epsilon(1e-5));
    CHECK(mirrored.history()[e].val_loss == Approx(cpu.history()[e].val_loss).epsilon(1e-4));
  }
}
