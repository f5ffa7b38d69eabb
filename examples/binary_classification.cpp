// Binary classification with binary cross-entropy: two interleaving half moons in the plane.
//
// The network 2 → 16 tanh → 1 ends in a sigmoid, so its output p is the probability of class 1, and
// BCE = −[t·ln p + (1−t)·ln(1−p)] is the negative log-likelihood of the labels. A prediction is "class 1" when
// p > 0.5. The same loss computed from the logits with bce_with_logits (the numerically stable form) agrees.
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/cpu/trainer.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {
constexpr auto logits = kiln::nn::sequential(kiln::dense<16>{}, kiln::tanh, kiln::dense<1>{});
constexpr auto x = kiln::input<2>("x");
constexpr auto t = kiln::target<1>("t");
struct bce_loss {
  constexpr auto operator()() const { return kiln::bce(kiln::sigmoid(logits(x)), t); }
};
struct probability {
  constexpr auto operator()() const { return kiln::sigmoid(logits(x)); }
};
struct bce_from_logits {
  constexpr auto operator()() const { return kiln::bce_with_logits(logits(x), t); }
};

// n points: class 0 on the upper half circle, class 1 on the lower one shifted right and down (noise sd 0.15).
kiln::train::table moons(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> angle(0.0f, 3.14159265f);
  std::normal_distribution<float> noise(0.0f, 0.15f);
  std::vector<float> xs, ts;
  for (int i = 0; i < n; ++i) {
    const float a = angle(rng);
    const bool one = i % 2 == 1;
    xs.push_back(one ? 1 - std::cos(a) + noise(rng) : std::cos(a) + noise(rng));
    xs.push_back(one ? 0.5f - std::sin(a) + noise(rng) : std::sin(a) + noise(rng));
    ts.push_back(one ? 1.0f : 0.0f);
  }
  kiln::train::table table;
  table.add_features("x", xs, 2).add_features("t", ts, 1);
  return table;
}
}  // namespace

int main() {
  const kiln::train::table train = moons(400, 1), validation = moons(200, 2);
  kiln::train::options opt;
  opt.epochs = 40;
  opt.batch_size = 32;
  opt.seed = 3;
  opt.progress = kiln::train::progress_style::quiet;  // the history is printed below, every 5th epoch
  kiln::train::trainer<bce_loss, kiln::adam, probability> trainer(kiln::adam{.lr = 0.01}, opt);
  trainer.fit(train, validation);

  std::printf("two moons, 400 training and 200 validation points; 2-16-1 tanh MLP, sigmoid output, BCE, Adam\n");
  std::printf("%5s %12s %10s %14s\n", "epoch", "train BCE", "val BCE", "val accuracy");
  for (const auto& r : trainer.history())
    if (r.epoch == 1 || r.epoch % 5 == 0) std::printf("%5d %12.4f %10.4f %14.3f\n", r.epoch, r.train_loss, r.val_loss, r.val_accuracy);

  // A few validation points: the predicted probability of class 1 and the label.
  kiln::cpu::function<probability> predict(trainer.step());
  const auto& vx = validation["x"].values;
  const auto& vt = validation["t"].values;
  float p[6];
  predict.run(6, {{"x", std::span<const float>(vx.data(), 12)}}, p);
  std::printf("\n%16s %10s %6s\n", "point", "p(class 1)", "label");
  for (int i = 0; i < 6; ++i) std::printf("(%6.2f, %6.2f) %10.3f %6.0f\n", vx[2 * i], vx[2 * i + 1], p[i], vt[i]);

  // The same loss from the logits (stable form): equal up to rounding.
  kiln::cpu::function<bce_from_logits> stable(trainer.step());
  kiln::cpu::function<bce_loss> plain(trainer.step());
  const long n = static_cast<long>(validation.rows());
  float with_logits = 0, with_probabilities = 0;
  stable.run(n, {{"x", vx}, {"t", vt}}, std::span<float>(&with_logits, 1));
  plain.run(n, {{"x", vx}, {"t", vt}}, std::span<float>(&with_probabilities, 1));
  std::printf("\nvalidation BCE from probabilities %.6f, from logits (bce_with_logits) %.6f\n", with_probabilities, with_logits);
  const double accuracy = trainer.history().back().val_accuracy;
  std::printf("final validation accuracy: %.3f\n", accuracy);
  return accuracy > 0.9 && std::abs(with_logits - with_probabilities) < 1e-4 ? 0 : 1;
}
