// KL divergence toward soft targets (as in knowledge distillation).
//
// A fixed "teacher" gives every input a probability distribution over 3 classes, softened by a temperature
// (p = softmax(z / T), T = 2). A student network learns to reproduce those distributions by minimizing
// KL(p ‖ q) = Σ p·(ln p − ln q), with q = softmax of the student's logits. kl_div takes the student's
// *log*-probabilities (log_softmax) and the target probabilities, as in PyTorch; passing softmax output instead
// is a classic bug that kiln rejects at compile time. KL ≥ 0, and it is 0 exactly when q = p.
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/cpu/trainer.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {
constexpr auto student = kiln::nn::sequential(kiln::dense<16>{}, kiln::relu, kiln::dense<3>{});
constexpr auto x = kiln::input<4>("x");
struct distillation_loss {
  constexpr auto operator()() const { return kiln::kl_div(kiln::log_softmax(student(x)), kiln::probability_target<3>("p")); }
};
struct student_probabilities {
  constexpr auto operator()() const { return kiln::softmax(student(x)); }
};

// Inputs uniform in [-1, 1]^4 and the teacher's softened distributions for them.
kiln::train::table teacher_data(int n, std::uint64_t seed) {
  const float w[3][4] = {{1.5f, -2.0f, 0.5f, 1.0f}, {-1.0f, 1.0f, 2.0f, -0.5f}, {0.5f, 1.5f, -1.5f, 2.0f}};
  const float temperature = 2.0f;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xs, ps;
  for (int i = 0; i < n; ++i) {
    float xi[4], z[3], sum = 0;
    for (float& v : xi) {
      v = u(rng);
      xs.push_back(v);
    }
    for (int c = 0; c < 3; ++c) {
      z[c] = 0;
      for (int k = 0; k < 4; ++k) z[c] += w[c][k] * xi[k];
      z[c] = std::exp(z[c] / temperature);
      sum += z[c];
    }
    for (float v : z) ps.push_back(v / sum);
  }
  kiln::train::table t;
  t.add_features("x", xs, 4).add_features("p", ps, 3);
  return t;
}
}  // namespace

int main() {
  const kiln::train::table train = teacher_data(1000, 1), validation = teacher_data(300, 2);
  kiln::train::options opt;
  opt.epochs = 30;
  opt.batch_size = 32;
  opt.seed = 1;
  opt.progress = kiln::train::progress_style::quiet;
  kiln::train::trainer<distillation_loss, kiln::adam, student_probabilities> trainer(kiln::adam{.lr = 3e-3}, opt);
  trainer.fit(train, validation);

  std::printf("student 4-16-3 learns a teacher's soft targets (temperature 2) by minimizing KL(teacher || student)\n");
  std::printf("%5s %10s %10s %22s\n", "epoch", "train KL", "val KL", "same top class as teacher");
  for (const auto& r : trainer.history())
    if (r.epoch == 1 || r.epoch % 5 == 0) std::printf("%5d %10.5f %10.5f %22.3f\n", r.epoch, r.train_loss, r.val_loss, r.val_accuracy);

  kiln::cpu::function<student_probabilities> predict(trainer.step());
  const auto& vx = validation["x"].values;
  const auto& vp = validation["p"].values;
  float q[9];
  predict.run(3, {{"x", std::span<const float>(vx.data(), 12)}}, q);
  std::printf("\n%8s  %-24s %-24s\n", "sample", "teacher p", "student q");
  for (int i = 0; i < 3; ++i)
    std::printf("%8d  %.3f %.3f %.3f        %.3f %.3f %.3f\n", i, vp[3 * i], vp[3 * i + 1], vp[3 * i + 2], q[3 * i],
                q[3 * i + 1], q[3 * i + 2]);
  const double first = trainer.history().front().val_loss, last = trainer.history().back().val_loss;
  std::printf("\nvalidation KL fell from %.4f to %.4f nats (0 would be a perfect copy of the teacher)\n", first, last);
  return last >= 0 && last < first / 4 ? 0 : 1;
}
