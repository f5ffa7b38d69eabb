#pragma once
// The reference evaluator: the living definition of every op. Double precision, one primitive at a time, no
// fusion, written for clarity. Every backend is tested against it.
#include <kiln/core/error.hpp>
#include <kiln/core/philox.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace kiln::reference {

// The math policy in double (ops/math.hpp), with the conventions every backend must match.
struct double_math {
  static double let(double v) { return v; }
  template <class V> static V constant(double k) { return k; }
  static double exp(double x) { return std::exp(x); }
  static double expm1(double x) { return std::expm1(x); }
  static double log(double x) { return std::log(x); }
  static double log1p(double x) { return std::log1p(x); }
  static double sqrt(double x) { return std::sqrt(x); }
  static double abs(double x) { return std::fabs(x); }
  static double tanh(double x) { return std::tanh(x); }
  static double erf(double x) { return std::erf(x); }
  static double pow(double x, double p) { return std::pow(x, p); }
  static double max(double a, double b) { return std::isnan(a) ? a : (a > b ? a : b); }
  static double min(double a, double b) { return std::isnan(a) ? a : (a < b ? a : b); }
  static double gt(double a, double b) { return a > b ? 1 : 0; }
  static double ge(double a, double b) { return a >= b ? 1 : 0; }
  static double eq(double a, double b) { return a == b ? 1 : 0; }
  static double select(double c, double a, double b) { return c != 0 ? a : b; }
};
static_assert(ops::check_math_policy<double_math, double>());

struct tensor {
  long rows = 0, cols = 0;
  std::vector<double> v;
  double at(long r, long c) const { return v[static_cast<size_t>((rows == 1 ? 0 : r) * cols + (cols == 1 ? 0 : c))]; }
};

inline long resolve(int d, long batch_size) { return d == batch ? batch_size : d; }

// Calls f(i, v) for every position i of an index tensor in row-major order, v its index, checked against [0, rows).
template <class F>
void for_each_index(const tensor& idx, long rows, F&& f) {
  for (long i = 0; i < static_cast<long>(idx.v.size()); ++i) {
    const long v = static_cast<long>(idx.v[static_cast<size_t>(i)]);
    if (v < 0 || v >= rows) throw error("reference: index " + std::to_string(v) + " outside [0, " + std::to_string(rows) + ")");
    f(i, v);
  }
}

// Values of every node. `leaf_values[l]` holds leaf l row-major (labels as class indices); `hypers` the run-time
// scalars; `rng` the step's random key (dropout's draws).
inline std::vector<tensor> evaluate(const graph& g, long batch_size, const std::vector<std::vector<double>>& leaf_values,
                                    const std::vector<double>& hypers = {}, const random::key& rng = {}) {
  std::vector<tensor> val(static_cast<size_t>(g.size));
  for (int i = 0; i < g.size; ++i) {
    const node& n = g.nodes[i];
    tensor& t = val[static_cast<size_t>(i)];
    t.rows = resolve(n.shape.rows, batch_size);
    t.cols = resolve(n.shape.cols, batch_size);
    t.v.assign(static_cast<size_t>(t.rows * t.cols), 0.0);
    auto in = [&](int k) -> const tensor& { return val[static_cast<size_t>(n.in[k])]; };
    const op_class c = ops::class_of(n.kind);
    switch (n.kind) {
      case op::input: case op::param: case op::state: {
        const auto& src = leaf_values.at(static_cast<size_t>(n.leaf));
        if (src.size() != t.v.size())
          throw shape_error("reference: leaf '" + std::string(g.leaves[n.leaf].name.view()) + "' has " +
                            std::to_string(src.size()) + " values, expected " + std::to_string(t.v.size()));
        t.v = src;
        continue;
      }
      case op::constant: std::fill(t.v.begin(), t.v.end(), n.k); continue;
      case op::hyper: std::fill(t.v.begin(), t.v.end(), hypers.at(static_cast<size_t>(n.leaf))); continue;
      case op::batch_size: std::fill(t.v.begin(), t.v.end(), static_cast<double>(batch_size)); continue;
      case op::iota: for (long j = 0; j < t.cols; ++j) t.v[static_cast<size_t>(j)] = static_cast<double>(j); continue;
      case op::random_uniform:  // element (r, j) at random::element_index (the static rows: batch < 0 per sample)
        for (long r = 0; r < t.rows; ++r)
          for (long j = 0; j < t.cols; ++j)
            t.v[static_cast<size_t>(r * t.cols + j)] =
                random::uniform(rng, static_cast<std::uint32_t>(n.k), random::element_index(rng, n.shape.rows, t.cols, r, j));
        continue;
      default: break;
    }
    if (c == op_class::elementwise) {
      ops::visit_op(n.kind, [&](auto o) {
        using O = decltype(o);
        if constexpr (O::cls == op_class::elementwise) {
          for (long r = 0; r < t.rows; ++r)
            for (long j = 0; j < t.cols; ++j) {
              double& out = t.v[static_cast<size_t>(r * t.cols + j)];
              if constexpr (O::arity == 1) out = O::template forward<double_math>(in(0).at(r, j), n.k);
              else if constexpr (O::arity == 2) out = O::template forward<double_math>(in(0).at(r, j), in(1).at(r, j), n.k);
              else out = O::template forward<double_math>(in(0).at(r, j), in(1).at(r, j), in(2).at(r, j), n.k);
            }
        }
      });
      continue;
    }
    const tensor& a = in(0);
    if (ops::is_window_op(n.kind)) {  // conv, pooling, channel sums (ops/window_math.hpp), in double
      const double* b = n.in[1] >= 0 ? in(1).v.data() : nullptr;
      for (long e = 0; e < t.rows * t.cols; ++e)
        t.v[static_cast<size_t>(e)] = window_math::kiln_window_at<double>(ops::window_code_of(n.kind), g.windows[n.leaf], a.v.data(), b, a.rows, e);
      continue;
    }
    switch (n.kind) {
      case op::sum_rows:
        for (long r = 0; r < a.rows; ++r)
          for (long j = 0; j < a.cols; ++j) t.v[static_cast<size_t>(j)] += a.v[static_cast<size_t>(r * a.cols + j)];
        break;
      case op::sum_cols:
        for (long r = 0; r < a.rows; ++r)
          for (long j = 0; j < a.cols; ++j) t.v[static_cast<size_t>(r)] += a.v[static_cast<size_t>(r * a.cols + j)];
        break;
      case op::max_cols:
        for (long r = 0; r < a.rows; ++r) {
          double m = -std::numeric_limits<double>::infinity();
          for (long j = 0; j < a.cols; ++j) m = double_math::max(a.v[static_cast<size_t>(r * a.cols + j)], m);
          t.v[static_cast<size_t>(r)] = m;
        }
        break;
      case op::transpose:
        for (long r = 0; r < a.rows; ++r)
          for (long j = 0; j < a.cols; ++j) t.v[static_cast<size_t>(j * t.cols + r)] = a.v[static_cast<size_t>(r * a.cols + j)];
        break;
      case op::matmul: {
        const tensor& b = in(1);
        for (long r = 0; r < t.rows; ++r)
          for (long j = 0; j < t.cols; ++j) {
            double s = 0;
            for (long k = 0; k < a.cols; ++k) s += a.v[static_cast<size_t>(r * a.cols + k)] * b.v[static_cast<size_t>(k * b.cols + j)];
            t.v[static_cast<size_t>(r * t.cols + j)] = s;
          }
        break;
      }
      case op::gather: {  // y[r, c·D + j] = T[idx[r, c], j]: position i = r·C + c gets row idx[i]
        const long D = a.cols;
        for_each_index(in(1), a.rows, [&](long i, long v) {
          for (long j = 0; j < D; ++j) t.v[static_cast<size_t>(i * D + j)] = a.v[static_cast<size_t>(v * D + j)];
        });
        break;
      }
      case op::scatter_add: {  // y[v, j] = Σ over idx[r, c] = v of g[r, c·D + j], in (r, c) order
        const long D = t.cols;
        for_each_index(in(1), t.rows, [&](long i, long v) {
          for (long j = 0; j < D; ++j) t.v[static_cast<size_t>(v * D + j)] += a.v[static_cast<size_t>(i * D + j)];
        });
        break;
      }
      case op::all_reduce: {  // the reference is a single process: the sum over one rank, weighted
        const double w = n.k >= 0 ? hypers.at(static_cast<size_t>(n.k)) : 1.0;
        for (size_t i = 0; i < t.v.size(); ++i) t.v[i] = w * a.v[i];
        break;
      }
      default: throw error("reference: unhandled op " + std::string(ops::name_of(n.kind)));
    }
  }
  return val;
}

// One step of a step graph: evaluates, then writes assigned outputs back into leaf_values. Returns output 0.
inline double step(const graph& g, long batch_size, std::vector<std::vector<double>>& leaf_values,
                   const std::vector<double>& hypers, const random::key& rng = {}) {
  auto val = evaluate(g, batch_size, leaf_values, hypers, rng);
  for (int o = 0; o < g.num_outputs; ++o)
    if (g.outputs[o].assign_to >= 0) leaf_values[static_cast<size_t>(g.outputs[o].assign_to)] = val[static_cast<size_t>(g.outputs[o].node)].v;
  return val[static_cast<size_t>(g.outputs[0].node)].v[0];
}

}  // namespace kiln::reference
