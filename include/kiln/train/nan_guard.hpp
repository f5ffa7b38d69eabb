#pragma once
// Where a non-finite value comes from. An unfused step materializes every node, so after running it on the
// batch that went wrong every intermediate value can be read back; nodes are stored in topological order, so
// the first node holding a non-finite value is one that produced it from finite inputs. Its op
// (kiln::ops::name_of), shape, flat index and, for elementwise ops, its operands' values there name the cause:
//
//   n14 = log(n13) [batch,1] (here [16,1]) is -inf at flat index 5 (row 5, column 0), in the forward pass;
//   its inputs are finite: log(n13 = 0)
#include <kiln/core/error.hpp>
#include <kiln/core/philox.hpp>
#include <kiln/plan/print.hpp>
#include <kiln/train/checkpoint.hpp>
#include <kiln/train/feed.hpp>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

namespace kiln::train {

struct nonfinite_origin {
  bool found = false;
  std::string description;  // one or two sentences, as above
  int node = -1;            // node id in the step graph (as the plan printer numbers them), -1 for a leaf
  std::string op;           // the op's name, or the leaf's kind ("input", "param")
  long rows = 0, cols = 0;  // the value's shape at this batch size
  long flat_index = -1;     // row-major index of the first non-finite element
  float value = 0;
};

namespace nan_guard_detail {

inline std::string value_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return buf;
}

inline long first_nonfinite(const float* p, long n) {
  for (long i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

}  // namespace nan_guard_detail

// Runs one step of `step` (an unfused train_step, already holding the parameters, optimizer state and step
// count from just before the step that went wrong) on the batch, and finds the first non-finite value.
// Non-finite data or parameters are reported as such before anything runs.
template <class Step>
nonfinite_origin trace_nonfinite(Step& step, long batch, std::initializer_list<feed> feeds) {
  using nan_guard_detail::first_nonfinite;
  using nan_guard_detail::value_text;
  const graph& g = Step::step_graph();
  const plan& p = Step::compiled_plan();
  auto resolved = [&](int d) { return d == kiln::batch ? batch : static_cast<long>(d); };
  nonfinite_origin o;

  // the data and the parameters as they were before the step
  std::vector<std::vector<float>> before(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    const std::string name(info.name.view());
    std::span<const float> v;
    if (is_stored(info)) {
      v = step.param(name);
    } else {
      for (const feed& f : feeds)
        if (f.name == info.name.view()) {
          if (info.kind == leaf_kind::labels) {
            auto& b = before[static_cast<std::size_t>(l)];
            for (auto y : f.labels) b.push_back(static_cast<float>(y));
          } else {
            v = f.values;
          }
        }
    }
    if (!v.empty()) before[static_cast<std::size_t>(l)].assign(v.begin(), v.end());
    const auto& b = before[static_cast<std::size_t>(l)];
    const long bad = first_nonfinite(b.data(), static_cast<long>(b.size()));
    if (bad >= 0) {
      o.found = true;
      o.op = info.kind == leaf_kind::param ? "param" : info.kind == leaf_kind::state ? "state" : "input";
      o.rows = resolved(info.shape.rows);
      o.cols = info.shape.cols;
      o.flat_index = bad;
      o.value = b[static_cast<std::size_t>(bad)];
      o.description = (is_stored(info) ? "the step's " + o.op + " '" : "the data for input '") + name +
                      "' already holds " + value_text(o.value) + " at flat index " + std::to_string(bad) +
                      " (row " + std::to_string(bad / o.cols) + ", column " + std::to_string(bad % o.cols) +
                      ") before the step runs";
      return o;
    }
  }

  step.run(batch, feeds);
  const auto& prog = step.compiled_program();
  double hyper[32] = {};
  step.optimizer().hypers(step.step_count(), hyper);

  // The value of node a at (row, col) of a node it feeds (broadcasting a dimension of 1), as text.
  auto operand_text = [&](auto&& self, int a, long row, long col) -> std::string {
    const node& n = g.nodes[a];
    const long r = n.shape.rows == 1 ? 0 : row, c = n.shape.cols == 1 ? 0 : col;
    switch (ops::class_of(n.kind)) {
      case op_class::leaf: {
        const auto& b = before[static_cast<std::size_t>(n.leaf)];
        return value_text(b[static_cast<std::size_t>(r * n.shape.cols + c)]);
      }
      case op_class::immediate:
        if (n.kind == op::constant) return value_text(n.k);
        if (n.kind == op::hyper) return value_text(hyper[n.leaf]);
        if (n.kind == op::batch_size) return std::to_string(batch);
        if (n.kind == op::random_uniform) {  // the draw the step used (its key: seed and step number)
          if constexpr (requires { step.random_key(); }) {
            const random::key k = step.random_key();
            return value_text(random::uniform(k, static_cast<std::uint32_t>(n.k), random::element_index(k, n.shape.rows, n.shape.cols, r, c)));
          }
          else return "?";
        }
        return std::to_string(c);  // iota
      case op_class::layout: return self(self, n.in[0], col, row);
      default: {
        const float* v = prog.node_value(a);
        return v ? value_text(v[r * resolved(n.shape.cols) + c]) : "?";
      }
    }
  };

  const std::vector<bool> forward = forward_nodes(g);
  for (int i = 0; i < g.size; ++i) {
    const node& n = g.nodes[i];
    const op_class cls = ops::class_of(n.kind);
    if (cls == op_class::leaf || cls == op_class::immediate || cls == op_class::layout) continue;
    const float* v = prog.node_value(i);
    if (!v) continue;
    const long rows = resolved(n.shape.rows), cols = resolved(n.shape.cols);
    const long bad = first_nonfinite(v, rows * cols);
    if (bad < 0) continue;
    o.found = true;
    o.node = i;
    o.op = ops::name_of(n.kind);
    o.rows = rows;
    o.cols = cols;
    o.flat_index = bad;
    o.value = v[bad];
    const long row = bad / cols, col = bad % cols;
    std::string inputs;
    if (cls == op_class::elementwise) {
      inputs = o.op + "(";
      for (int k = 0; k < 3 && n.in[k] >= 0; ++k)
        inputs += (k ? ", " : "") + node_label(g, n.in[k]) + " = " + operand_text(operand_text, n.in[k], row, col);
      inputs += ")";
    } else {
      inputs = "every value of";
      for (int k = 0; k < 3 && n.in[k] >= 0; ++k) inputs += (k ? ", " : " ") + node_label(g, n.in[k]);
      inputs += " is finite";
    }
    o.description = node_text(p, i) + " (here [" + std::to_string(rows) + "," + std::to_string(cols) + "]) is " +
                    value_text(o.value) + " at flat index " + std::to_string(bad) + " (row " + std::to_string(row) +
                    ", column " + std::to_string(col) + "), in the " +
                    (forward[static_cast<std::size_t>(i)] ? "forward pass" : "backward pass / optimizer update") +
                    "; its inputs are finite: " + inputs;
    return o;
  }
  o.description = "the unfused re-run of the step produced no non-finite value (loss " +
                  value_text(prog.output(0)[0]) + "), so the fused and unfused plans disagree here";
  return o;
}

}  // namespace kiln::train
