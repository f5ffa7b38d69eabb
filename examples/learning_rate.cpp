// The learning-rate lesson: plain gradient descent, w ← w − η·∇L(w), on the 2-D loss surface
// L(w1, w2) = ½·w1² + 5·w2², from the same start with three learning rates.
//
// Along w2 the surface is 10 times steeper than along w1 (curvatures 1 and 10). One step multiplies w1 by
// (1 − η) and w2 by (1 − 10η), so gradient descent converges only if |1 − 10η| < 1, i.e. η < 0.2:
//   η = 0.01  too small: stable but slow; after 20 steps w1 has shrunk only by 0.99^20 ≈ 0.82
//   η = 0.09  good: w2 damped at once (factor 0.1), w1 by 0.91 per step
//   η = 0.21  too large: w2 flips sign and grows by 1.1 each step, the loss rises: divergence
// Writes the surface's contour lines with the three paths to DIR/learning_rate.svg (--out DIR, default ./out).
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/plot/contour.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {
struct surface {
  constexpr auto operator()() const {
    auto w1 = kiln::param<>("w1"), w2 = kiln::param<>("w2");
    return 0.5 * w1 * w1 + 5.0 * w2 * w2;
  }
};

struct run {
  double lr;
  const char* verdict;
  const char* color;
  std::vector<double> w1, w2, loss;
};

// Gradient descent with kiln's compiled SGD step; records the path (the start and every step).
run descend(double lr, const char* verdict, const char* color, int steps) {
  kiln::cpu::train_step<surface, kiln::sgd> step(kiln::sgd{.lr = lr});
  step.param("w1")[0] = -4.0f;
  step.param("w2")[0] = 1.5f;
  run r{lr, verdict, color, {}, {}, {}};
  for (int i = 0; i <= steps; ++i) {
    r.w1.push_back(step.param("w1")[0]);
    r.w2.push_back(step.param("w2")[0]);
    const float loss = step.run(1, {});  // the loss at the current point, then the update
    r.loss.push_back(loss);
  }
  return r;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc >= 3 && std::string(argv[1]) == "--out" ? argv[2] : "out";
  const int steps = 20;
  const std::vector<run> runs = {descend(0.01, "too small", "#1f77b4", steps), descend(0.09, "good", "#2ca02c", steps),
                                 descend(0.21, "too large", "#d62728", steps)};

  std::printf("gradient descent on L(w1, w2) = 0.5 w1^2 + 5 w2^2 from (-4, 1.5), L = %.3f\n\n", runs[0].loss[0]);
  std::printf("%-22s %10s %10s %10s %10s\n", "learning rate", "step 1", "step 5", "step 10", "step 20");
  for (const run& r : runs)
    std::printf("%5.2f (%-9s) L = %10.4f %10.4f %10.4f %10.4g\n", r.lr, r.verdict, r.loss[1], r.loss[5], r.loss[10], r.loss[20]);
  std::printf("\n");
  for (const run& r : runs) {
    const double factor = std::abs(1 - 10 * r.lr);
    std::printf("eta = %.2f: w2 is multiplied by 1 - 10 eta = %+.2f per step -> %s\n", r.lr, 1 - 10 * r.lr,
                factor < 1 ? (r.loss[steps] < r.loss[0] / 20 ? "converges" : "converges, but slowly along w1")
                           : "|factor| > 1: diverges");
  }

  // The surface on a grid (evaluated by kiln too), its contour lines, and the three paths.
  kiln::cpu::gradient<surface> eval;
  kiln::plot::grid g;
  for (int i = 0; i <= 100; ++i) g.xs.push_back(-5 + 0.1 * i);
  for (int j = 0; j <= 60; ++j) g.ys.push_back(-3 + 0.1 * j);
  for (double y : g.ys)
    for (double x : g.xs) {
      eval.param("w1")[0] = static_cast<float>(x);
      eval.param("w2")[0] = static_cast<float>(y);
      g.values.push_back(eval.run(1));
    }
  namespace plot = kiln::plot;
  plot::svg doc(688, 446);  // a plot area of 600 × 360 pixels: the same scale on both axes
  const plot::frame f = plot::draw_axes(doc, {0, 0, 688, 446},
      {"Gradient descent on L = ½·w1² + 5·w2² (20 steps from ●)", "w1", "w2", {-5, 5}, {-3, 3}, false});
  for (double level : {0.125, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0})
    plot::draw_contour(doc, f, g, level, {"#b8b8b8", 1, ""});
  std::vector<plot::series> paths;
  for (const run& r : runs) {
    char name[64];
    std::snprintf(name, sizeof name, "η = %.2f (%s)", r.lr, r.verdict);
    // a diverging path is drawn until it leaves the picture
    std::size_t shown = 1;
    while (shown < r.w1.size() && std::abs(r.w1[shown - 1]) <= 5 && std::abs(r.w2[shown - 1]) <= 3) ++shown;
    paths.push_back({name, {r.w1.begin(), r.w1.begin() + static_cast<long>(shown)},
                     {r.w2.begin(), r.w2.begin() + static_cast<long>(shown)}, r.color, "", true, 1.8});
  }
  for (const auto& s : paths) plot::draw_series(doc, f, s);
  doc.circle(f.at(-4, 1.5), 5, "black");
  doc.text({f.at(0, 0).x, f.at(0, 0).y + 5}, "×", 16, plot::svg::anchor::middle);
  doc.text({f.at(0.15, -0.35).x, f.at(0.15, -0.35).y}, "minimum", 11);
  plot::draw_legend(doc, f, paths, plot::corner::top_right);
  doc.text({f.area.x + f.area.width - 8, f.area.y + f.area.height - 8}, "grey: contour lines L = 1/8, 1/2, 1, 2, 4, … 32",
           11, plot::svg::anchor::end, 0, false, "#666");
  kiln::io::make_dirs(out);
  doc.save(out + "/learning_rate.svg");
  std::printf("\nwrote %s/learning_rate.svg (contours of L with the three paths)\n", out.c_str());

  const bool lesson_holds = runs[0].loss[steps] > 1 && runs[1].loss[steps] < runs[1].loss[0] / 20 && runs[2].loss[steps] > runs[2].loss[0];
  return lesson_holds ? 0 : 1;
}
