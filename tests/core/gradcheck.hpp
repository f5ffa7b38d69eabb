#pragma once
// Test helpers: evaluate a model's gradient graph with the double reference evaluator, and compare every
// parameter's symbolic gradient with central finite differences of the forward value.
#include <kiln/kiln.hpp>
#include <kiln/reference/evaluate.hpp>
#include <kiln/train/step_graph.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln_test {

using leaf_values = std::vector<std::vector<double>>;

inline std::size_t leaf_size(const kiln::leaf_info& l, long batch) {
  return static_cast<std::size_t>((l.shape.rows == kiln::batch ? batch : l.shape.rows) * l.shape.cols);
}

// Random values for every leaf: params/inputs uniform in [lo, hi], labels uniform classes, targets in (0,1).
// Leaf values of g by name (leaves not named stay empty).
inline leaf_values leaves_by_name(const kiln::graph& g, std::initializer_list<std::pair<std::string_view, std::vector<double>>> values) {
  leaf_values v(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l)
    for (const auto& [name, vals] : values)
      if (g.leaves[l].name.view() == name) v[static_cast<std::size_t>(l)] = vals;
  return v;
}

inline leaf_values random_leaves(const kiln::graph& g, long batch, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi), p(0.05, 0.95);
  leaf_values v(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) {
    const auto& info = g.leaves[l];
    auto& x = v[static_cast<std::size_t>(l)];
    x.resize(leaf_size(info, batch));
    const std::string name(info.name.view());
    for (double& e : x) {
      if (info.kind == kiln::leaf_kind::labels) e = static_cast<double>(rng() % static_cast<std::uint64_t>(info.num_classes));
      else if (name.rfind("target", 0) == 0) e = p(rng);
      else e = u(rng);
    }
  }
  return v;
}

inline double loss_of(const kiln::graph& g, long batch, const leaf_values& v) {
  return kiln::reference::evaluate(g, batch, v)[static_cast<std::size_t>(g.outputs[0].node)].v[0];
}

// Checks ∂loss/∂param (outputs 1..n of a gradient graph) against central differences for every element.
inline void check_against_finite_differences(const kiln::graph& g, long batch, const leaf_values& v, double rel_tol = 1e-6) {
  const auto val = kiln::reference::evaluate(g, batch, v);
  int k = 0;
  for (int l = 0; l < g.num_leaves; ++l) {
    if (g.leaves[l].kind != kiln::leaf_kind::param) continue;
    ++k;
    const auto& grad = val[static_cast<std::size_t>(g.outputs[k].node)].v;
    for (std::size_t j = 0; j < grad.size(); ++j) {
      const double x = v[static_cast<std::size_t>(l)][j];
      double h = 1e-6 * std::max(1.0, std::fabs(x));
      leaf_values plus = v, minus = v;
      auto eval = [&](double step, double& lp, double& lm) {
        plus[static_cast<std::size_t>(l)][j] = x + step;
        minus[static_cast<std::size_t>(l)][j] = x - step;
        lp = loss_of(g, batch, plus);
        lm = loss_of(g, batch, minus);
      };
      double lp = 0, lm = 0;
      eval(h, lp, lm);
      if ((!std::isfinite(lp) || !std::isfinite(lm)) && x != 0) {
        h = 1e-4 * std::fabs(x);  // near a domain edge (log, sqrt at 1e-30): a step relative to x stays inside
        eval(h, lp, lm);
      }
      const double fd = (lp - lm) / (2 * h);
      // rounding in the loss itself limits what a finite difference can resolve
      const double fd_noise = 64 * 2.2e-16 * std::max(std::fabs(lp), std::fabs(lm)) / h;
      INFO("param " << std::string(g.leaves[l].name.view()) << "[" << j << "] at " << x << ": symbolic " << grad[j]
                    << ", finite difference " << fd);
      REQUIRE(std::isfinite(grad[j]));
      REQUIRE(std::fabs(grad[j] - fd) <= rel_tol * std::max(1.0, std::fabs(fd)) + 1e-7 + fd_noise);
    }
  }
}

}  // namespace kiln_test
