#pragma once
// Appends nodes to a graph at compile time. Every append goes through `make`, which
//   - infers and checks the shape (numpy broadcasting; batch only matches batch or 1),
//   - folds constants and simplifies (x·1, x+0, x·0, −(−x), …),
//   - keeps a where-mask outermost through products (mul/div/neg of where(c, g, 0) → where(c, g·y, 0)), so a NaN
//     or inf computed in an unselected branch can never reach a gradient,
//   - shares identical nodes (hash-consing), so forward values needed by the backward pass exist once.
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

namespace kiln {

namespace detail {
constexpr int broadcast_dim(int a, int b) {
  if (a == b) return a;
  if (a == 1) return b;
  if (b == 1) return a;
  throw "kiln: elementwise shape mismatch";  // the expression layer reports these readably before we get here
}
}  // namespace detail

struct builder {
  graph g{};

  // If x is where(c, G, 0) (or where(c, 0, G)), returns where(c, f(G), 0) (resp. where(c, 0, f(G))), else −1.
  template <class F>
  constexpr int hoist_mask(int x, F f) {
    const node& w = g.nodes[x];
    if (w.kind != op::where) return -1;
    const int c = w.in[0], t = w.in[1], e = w.in[2];
    if (is_const(e, 0)) { int inner = f(t); return where(c, inner, scalar(0.0)); }
    if (is_const(t, 0)) { int inner = f(e); return where(c, scalar(0.0), inner); }
    return -1;
  }


  // ---- access
  constexpr const node& node_at(int i) const { return g.nodes[i]; }
  constexpr int operand(int i, int k) const { return g.nodes[i].in[k]; }
  constexpr bool is_const(int i) const { return g.nodes[i].kind == op::constant; }
  constexpr bool is_const(int i, double v) const { return is_const(i) && g.nodes[i].k == v; }
  constexpr dims shape(int i) const { return g.nodes[i].shape; }

  // ---- raw append with sharing
  constexpr int append(const node& n) {
    for (int i = 0; i < g.size; ++i)
      if (g.nodes[i].same_as(n)) return i;
    if (g.size >= max_nodes) throw "kiln: graph exceeds max_nodes";
    g.nodes[g.size] = n;
    return g.size++;
  }

  // ---- leaves
  constexpr int constant(double v, dims s) { node n; n.kind = op::constant; n.k = v; n.shape = s; return append(n); }
  constexpr int scalar(double v) { return constant(v, {1, 1}); }
  constexpr int batch_size() { node n; n.kind = op::batch_size; return append(n); }
  constexpr int iota(int cols) { node n; n.kind = op::iota; n.shape = {1, cols}; return append(n); }
  constexpr int hyper(int slot) {
    node n; n.kind = op::hyper; n.leaf = slot;
    if (slot + 1 > g.num_hypers) g.num_hypers = slot + 1;
    return append(n);
  }
  // Registers (or finds, by name) a leaf and returns its node. Same name with another shape is an error.
  constexpr int leaf(const leaf_info& info) {
    int idx = -1;
    for (int i = 0; i < g.num_leaves; ++i)
      if (g.leaves[i].name == info.name) {
        if (!(g.leaves[i].shape == info.shape) || g.leaves[i].kind != info.kind)
          throw "kiln: two leaves share a name but differ in shape or kind";
        idx = i;
      }
    if (idx < 0) {
      if (g.num_leaves >= max_leaves) throw "kiln: too many leaves";
      idx = g.num_leaves++;
      g.leaves[idx] = info;
    }
    node n;
    n.kind = info.kind == leaf_kind::param ? op::param : info.kind == leaf_kind::state ? op::state : op::input;
    n.leaf = idx;
    n.shape = info.shape;
    return append(n);
  }
  constexpr int leaf_node(int leaf_index) {
    const leaf_info& info = g.leaves[leaf_index];
    return leaf(info);
  }

  // ---- elementwise
  constexpr int unary(op k, int x, double kk = 0) {
    const node& a = g.nodes[x];
    if (k == op::neg) {
      if (a.kind == op::constant) return constant(-a.k, a.shape);
      if (a.kind == op::neg) return a.in[0];
      if (int w = hoist_mask(x, [&](int inner) { return unary(op::neg, inner); }); w >= 0) return w;
    }
    if (k == op::stop_gradient && (a.kind == op::constant || a.kind == op::stop_gradient)) return x;
    if (k == op::pow_c && kk == 1.0) return x;
    if (k == op::pow_c && kk == 0.0) return constant(1.0, a.shape);
    node n; n.kind = k; n.in[0] = x; n.k = kk; n.shape = a.shape;
    return append(n);
  }
  constexpr int neg(int x) { return unary(op::neg, x); }
  constexpr int exp(int x) { return unary(op::exp, x); }
  constexpr int log(int x) { return unary(op::log, x); }
  constexpr int sigmoid(int x) { return unary(op::sigmoid, x); }
  constexpr int pow(int x, double p) { return unary(op::pow_c, x, p); }
  constexpr int stop_gradient(int x) { return unary(op::stop_gradient, x); }

  constexpr int binary(op k, int x, int y) {
    const node& a = g.nodes[x];
    const node& b = g.nodes[y];
    const dims s{detail::broadcast_dim(a.shape.rows, b.shape.rows), detail::broadcast_dim(a.shape.cols, b.shape.cols)};
    const bool ca = a.kind == op::constant, cb = b.kind == op::constant;
    if (ca && cb) {
      switch (k) {
        case op::add: return constant(a.k + b.k, s);
        case op::sub: return constant(a.k - b.k, s);
        case op::mul: return constant(a.k * b.k, s);
        case op::div: if (b.k != 0) return constant(a.k / b.k, s); break;
        case op::gt: return constant(a.k > b.k ? 1 : 0, s);
        case op::ge: return constant(a.k >= b.k ? 1 : 0, s);
        case op::eq: return constant(a.k == b.k ? 1 : 0, s);
        default: break;
      }
    }
    switch (k) {
      case op::add:
        if (cb && b.k == 0 && a.shape == s) return x;
        if (ca && a.k == 0 && b.shape == s) return y;
        break;
      case op::sub:
        if (cb && b.k == 0 && a.shape == s) return x;
        if (ca && a.k == 0 && b.shape == s) return neg(y);
        if (x == y) return constant(0, s);
        break;
      case op::mul:
        if ((ca && a.k == 0) || (cb && b.k == 0)) return constant(0, s);
        if (cb && b.k == 1 && a.shape == s) return x;
        if (ca && a.k == 1 && b.shape == s) return y;
        if (cb && b.k == -1 && a.shape == s) return neg(x);
        if (ca && a.k == -1 && b.shape == s) return neg(y);
        if (int w = hoist_mask(x, [&](int inner) { return binary(op::mul, inner, y); }); w >= 0) return w;
        if (int w = hoist_mask(y, [&](int inner) { return binary(op::mul, x, inner); }); w >= 0) return w;
        break;
      case op::div:
        if (cb && b.k == 1 && a.shape == s) return x;
        if (ca && a.k == 0 && b.shape == s && b.kind != op::constant) return constant(0, s);
        if (int w = hoist_mask(x, [&](int inner) { return binary(op::div, inner, y); }); w >= 0) return w;
        break;
      default: break;
    }
    node n; n.kind = k; n.in[0] = x; n.in[1] = y; n.shape = s;
    return append(n);
  }
  constexpr int add(int x, int y) { return binary(op::add, x, y); }
  constexpr int sub(int x, int y) { return binary(op::sub, x, y); }
  constexpr int mul(int x, int y) { return binary(op::mul, x, y); }
  constexpr int div(int x, int y) { return binary(op::div, x, y); }
  constexpr int gt(int x, int y) { return binary(op::gt, x, y); }
  constexpr int ge(int x, int y) { return binary(op::ge, x, y); }
  constexpr int eq(int x, int y) { return binary(op::eq, x, y); }

  constexpr int where(int c, int x, int y) {
    const node& nc = g.nodes[c];
    const dims s{detail::broadcast_dim(nc.shape.rows, detail::broadcast_dim(shape(x).rows, shape(y).rows)),
                 detail::broadcast_dim(nc.shape.cols, detail::broadcast_dim(shape(x).cols, shape(y).cols))};
    if (nc.kind == op::constant) return nc.k != 0 ? broadcast_to(x, s) : broadcast_to(y, s);
    if (x == y) return broadcast_to(x, s);
    if (is_const(x, 0) && is_const(y, 0)) return constant(0, s);
    node n; n.kind = op::where; n.in[0] = c; n.in[1] = x; n.in[2] = y; n.shape = s;
    return append(n);
  }

  // x stretched to shape s (no node when it already has that shape).
  constexpr int broadcast_to(int x, dims s) {
    const dims a = shape(x);
    if (a == s) return x;
    detail::broadcast_dim(a.rows, s.rows);
    detail::broadcast_dim(a.cols, s.cols);
    if (is_const(x)) return constant(g.nodes[x].k, s);
    node n; n.kind = op::broadcast_to; n.in[0] = x; n.shape = s;
    return append(n);
  }

  // The adjoint of a value of shape `target` from an adjoint g that may be broadcast larger: sum over the
  // dimensions that broadcasting stretched. A g smaller than target is fine (it broadcasts where it is used).
  constexpr int unbroadcast(int gi, dims target) { return unbroadcast(gi, target, shape(gi)); }

  // The same, for an adjoint gi that stands for a value of shape `from` (gi itself may be held broadcast,
  // smaller than `from`): a dimension that the forward op stretched from 1 to n sums n copies, so a
  // broadcast adjoint is multiplied by n (the batch size when n is the batch) instead of summed.
  constexpr int unbroadcast(int gi, dims target, dims from) {
    if (target.rows == 1 && from.rows != 1) {
      if (shape(gi).rows != 1) gi = sum_rows(gi);
      else gi = mul(gi, from.rows == batch ? batch_size() : scalar(from.rows));
    }
    if (target.cols == 1 && from.cols != 1) {
      if (shape(gi).cols != 1) gi = sum_cols(gi);
      else gi = mul(gi, from.cols == batch ? batch_size() : scalar(from.cols));
    }
    return gi;
  }

  // ---- reductions, layout, contraction
  constexpr int reduce(op k, int x) {
    const dims a = shape(x);
    const bool rows = k == op::sum_rows;
    const dims s = rows ? dims{1, a.cols} : dims{a.rows, 1};
    if (rows ? a.rows == 1 : a.cols == 1) return x;  // reducing a dimension of size 1 is the identity
    if (is_const(x) && k != op::max_cols && !a.batched()) return constant(g.nodes[x].k * (rows ? a.rows : a.cols), s);
    node n; n.kind = k; n.in[0] = x; n.shape = s;
    return append(n);
  }
  constexpr int sum_rows(int x) { return reduce(op::sum_rows, x); }
  constexpr int sum_cols(int x) { return reduce(op::sum_cols, x); }
  constexpr int max_cols(int x) { return reduce(op::max_cols, x); }
  constexpr int sum_all(int x) { return sum_cols(sum_rows(x)); }

  constexpr int transpose(int x) {
    const node a = g.nodes[x];  // a copy: appending may not move nodes, but keep this independent of that
    if (a.kind == op::transpose) return a.in[0];
    // (A·B)ᵀ = Bᵀ·Aᵀ: keeps transposes on contraction operands, where they are free (strides)
    // (unless that would put the batch in the columns of a contraction; then the transpose stays a view)
    if (a.kind == op::matmul && shape(a.in[0]).rows != batch) {
      const int l = a.in[0], r = a.in[1];
      return matmul(transpose(r), transpose(l));
    }
    // a constant transposes into a constant, unless that would put the batch in its columns (no kernel runs over
    // [features, batch]): then it stays a view of the [batch, features] constant, as a contraction reads it
    if (a.kind == op::constant && a.shape.rows != batch) return constant(a.k, {a.shape.cols, a.shape.rows});
    if (a.shape == dims{1, 1} && ops::class_of(a.kind) != op_class::leaf) return x;  // a scalar is its own transpose
    // (f(a, b))ᵀ = f(aᵀ, bᵀ) for elementwise f: transposes move toward contractions (free there) and leaves.
    // Not for values with a batch dimension: a [features, batch] elementwise value has no kernel.
    if (ops::class_of(a.kind) == op_class::elementwise && a.shape.rows != batch && a.shape.cols != batch &&
        a.kind != op::broadcast_to) {
      switch (ops::arity_of(a.kind)) {
        case 1: return unary(a.kind, transpose(a.in[0]), a.k);
        case 2: { const int l = transpose(a.in[0]); const int r = transpose(a.in[1]); return binary(a.kind, l, r); }
        default: { const int c = transpose(a.in[0]); const int t = transpose(a.in[1]); const int e = transpose(a.in[2]); return where(c, t, e); }
      }
    }
    if (a.kind == op::broadcast_to && a.shape.rows != batch && a.shape.cols != batch)
      return broadcast_to(transpose(a.in[0]), {a.shape.cols, a.shape.rows});
    node n; n.kind = op::transpose; n.in[0] = x; n.shape = {a.shape.cols, a.shape.rows};
    return append(n);
  }
  constexpr int matmul(int x, int y) {
    const dims a = shape(x), b = shape(y);
    if (a.cols != b.rows) throw "kiln: matmul inner dimensions differ";
    if (is_const(x, 0) || is_const(y, 0)) return constant(0, {a.rows, b.cols});
    node n; n.kind = op::matmul; n.in[0] = x; n.in[1] = y; n.shape = {a.rows, b.cols};
    return append(n);
  }

  // ---- outputs
  constexpr void add_output(int node_id, int assign_to = -1) {
    if (g.num_outputs >= max_outputs) throw "kiln: too many outputs";
    g.outputs[g.num_outputs++] = output{node_id, assign_to};
  }

};

// Keeps only the nodes that the outputs need (in order) and renumbers them.
constexpr graph compact(const graph& in) {
  bool live[max_nodes]{};
  for (int o = 0; o < in.num_outputs; ++o) live[in.outputs[o].node] = true;
  for (int i = in.size - 1; i >= 0; --i)
    if (live[i])
      for (int k = 0; k < 3; ++k)
        if (in.nodes[i].in[k] >= 0) live[in.nodes[i].in[k]] = true;
  graph out{};
  int remap[max_nodes]{};
  for (int i = 0; i < in.size; ++i) {
    if (!live[i]) continue;
    node n = in.nodes[i];
    for (int k = 0; k < 3; ++k)
      if (n.in[k] >= 0) n.in[k] = remap[n.in[k]];
    remap[i] = out.size;
    out.nodes[out.size++] = n;
  }
  for (int l = 0; l < in.num_leaves; ++l) out.leaves[l] = in.leaves[l];
  out.num_leaves = in.num_leaves;
  out.num_hypers = in.num_hypers;
  for (int o = 0; o < in.num_outputs; ++o) out.outputs[o] = output{remap[in.outputs[o].node], in.outputs[o].assign_to};
  out.num_outputs = in.num_outputs;
  return out;
}

}  // namespace kiln
