// Regression with MSE versus MAE on data with outliers.
//
// The data follow y = 2x + 1 plus small noise, but one point in ten is corrupted (+30). A line is fitted to
// it twice, once minimizing the mean squared error and once the mean absolute error. Squaring makes a point
// 30 away weigh 900 times more than one 1 away, so MSE pulls its line toward the outliers (it fits the mean,
// here shifted by about 10% × 30 = 3); MAE grows only linearly with the error, fits the conditional median,
// and stays on the clean data.
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {
// The fitted line y = a·x + b, with a learned slope a and intercept b (scalar parameters).
constexpr auto line(kiln::expression auto x) { return kiln::param<>("slope") * x + kiln::param<>("intercept"); }
struct mse_fit {
  constexpr auto operator()() const { return kiln::mse(line(kiln::input<1>("x")), kiln::target<1>("t")); }
};
struct mae_fit {
  constexpr auto operator()() const { return kiln::mae(line(kiln::input<1>("x")), kiln::target<1>("t")); }
};

// Full-batch Adam on the whole data set; returns {slope, intercept}.
template <class Model>
std::pair<double, double> fit(const std::vector<float>& x, const std::vector<float>& t) {
  kiln::cpu::train_step<Model, kiln::adam> step(kiln::adam{.lr = 0.05}, /*seed=*/1);
  const long n = static_cast<long>(x.size());
  for (int it = 0; it < 4000; ++it) step.run(n, {{"x", x}, {"t", t}});
  return {step.param("slope")[0], step.param("intercept")[0]};
}
}  // namespace

int main() {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> ux(0.0f, 10.0f);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  std::vector<float> x, t;
  std::vector<bool> outlier;
  for (int i = 0; i < 200; ++i) {
    const float xi = ux(rng);
    const bool bad = i % 10 == 0;
    x.push_back(xi);
    t.push_back(2 * xi + 1 + noise(rng) + (bad ? 30.0f : 0.0f));
    outlier.push_back(bad);
  }
  std::printf("200 points on y = 2x + 1 (noise sd 0.5), 20 of them shifted up by 30\n\n");
  const auto [mse_a, mse_b] = fit<mse_fit>(x, t);
  const auto [mae_a, mae_b] = fit<mae_fit>(x, t);

  // How far each fitted line is from the clean points (mean absolute residual over the 180 inliers).
  auto clean_error = [&](double a, double b) {
    double s = 0;
    int n = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!outlier[i]) {
        s += std::abs(a * x[i] + b - t[i]);
        ++n;
      }
    return s / n;
  };
  const double mse_err = clean_error(mse_a, mse_b), mae_err = clean_error(mae_a, mae_b);
  std::printf("%-12s %8s %10s   %s\n", "loss", "slope", "intercept", "mean |error| on the 180 clean points");
  std::printf("%-12s %8.3f %10.3f\n", "(true line)", 2.0, 1.0);
  std::printf("%-12s %8.3f %10.3f   %.3f\n", "MSE", mse_a, mse_b, mse_err);
  std::printf("%-12s %8.3f %10.3f   %.3f\n", "MAE", mae_a, mae_b, mae_err);
  std::printf("\nMSE's line is pulled %.2f up toward the outliers; MAE's stays within %.2f of the true intercept:\n"
              "on the clean data MAE's fit is %.1fx closer. Use MAE (or Huber) when the targets have outliers.\n",
              mse_b - 1.0, std::abs(mae_b - 1.0), mse_err / mae_err);
  return mae_err < mse_err ? 0 : 1;
}
