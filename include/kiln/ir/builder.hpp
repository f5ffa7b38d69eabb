#pragma once
// Appends nodes to a graph at compile time. Every append goes through `make`, which
//   - infers and checks the shape (numpy broadcasting; batch only matches batch or 1),
//   - folds constants and simplifies (x·1, x+0, x·0, −(−x), …),
//   - keeps a where-mask outermost through products (mul/div/neg of where(c, g, 0) → where(c, g·y, 0)), so a NaN
//     or inf computed in an unselected branch can never reach a gradient,
//   - shares identical nodes (hash-consing), so forward values needed by the backward pass exist once.
#include <kiln/core/ct_vector.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

#include <bit>
#include <cstdint>

namespace kiln {

namespace detail {
constexpr int broadcast_dim(int a, int b) {
  if (a == b) return a;
  if (a == 1) return b;
  if (b == 1) return a;
  throw "kiln: elementwise shape mismatch";  // the expression layer reports these readably before we get here
}
// A hash of a node's identity (kind, operands, shape, constant, leaf): the key of the builder's sharing table.
// Word at a time (multiply and xor-shift, as splitmix64 mixes), since it runs for every append.
constexpr std::uint64_t mix_word(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 31);
}
// The first slot to probe for a hash in a table of mask + 1 (a power of two) slots.
constexpr int slot_of(std::uint64_t hash, int mask) { return static_cast<int>(hash & static_cast<std::uint64_t>(mask)); }
constexpr std::uint64_t node_hash(const node& n) {
  auto word = [](int a, int b) { return static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32 | static_cast<std::uint32_t>(b); };
  std::uint64_t h = mix_word(0, word(static_cast<int>(n.kind), n.leaf));
  h = mix_word(h, word(n.in[0], n.in[1]));
  h = mix_word(h, word(n.in[2], n.shape.rows));
  h = mix_word(h, word(n.shape.cols, 0));
  return mix_word(h, n.k == 0 ? 0 : std::bit_cast<std::uint64_t>(n.k));  // −0 and 0 are one constant (same_as uses ==)
}

}  // namespace detail

struct builder {
  graph_data g{};
  // Open-addressing table of node ids by node_hash (−1: empty), at most half full: appending a node finds an
  // identical one in O(1), so building a graph of n nodes costs O(n), not O(n²).
  ct_vector<int> shared_{};
  ct_vector<int> leaf_slots_{};  // the same for leaves, by name (short_name::hash)

  // If x is where(c, G, 0) (or where(c, 0, G)), returns where(c, f(G), 0) (resp. where(c, 0, f(G))), else −1.
  template <class F>
  constexpr int hoist_mask(int x, F f) {
    const node w = g.nodes[x];
    if (w.kind != op::where) return -1;
    const int c = w.in[0], t = w.in[1], e = w.in[2];
    if (is_const(e, 0)) { int inner = f(t); return where(c, inner, scalar(0.0)); }
    if (is_const(t, 0)) { int inner = f(e); return where(c, scalar(0.0), inner); }
    return -1;
  }

  // ---- access
  // (a reference is valid until the next append; passes that append copy the node first)
  constexpr const node& node_at(int i) const { return g.nodes[i]; }
  constexpr int size() const { return g.size(); }
  constexpr int operand(int i, int k) const { return node_at(i).in[k]; }
  constexpr bool is_const(int i) const { return node_at(i).kind == op::constant; }
  constexpr bool is_const(int i, double v) const { return is_const(i) && node_at(i).k == v; }
  constexpr dims shape(int i) const { return node_at(i).shape; }

  // ---- raw append with sharing
  constexpr int append(const node& n) {
    if (2 * (g.size() + 1) > shared_.size()) rehash(shared_.empty() ? 64 : 2 * shared_.size());
    const int mask = shared_.size() - 1;
    for (int s = detail::slot_of(detail::node_hash(n), mask);; s = (s + 1) & mask) {
      const int i = shared_[s];
      if (i < 0) {
        shared_[s] = g.size();
        g.nodes.push_back(n);
        return g.size() - 1;
      }
      if (g.nodes[i].same_as(n)) return i;
    }
  }
  constexpr void rehash(int slots) {
    shared_.assign(slots, -1);
    for (int i = 0; i < g.size(); ++i)
      for (int s = detail::slot_of(detail::node_hash(g.nodes[i]), slots - 1);; s = (s + 1) & (slots - 1))
        if (shared_[s] < 0) { shared_[s] = i; break; }
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
    if (2 * (g.num_leaves() + 1) > leaf_slots_.size()) rehash_leaves(leaf_slots_.empty() ? 64 : 2 * leaf_slots_.size());
    const int mask = leaf_slots_.size() - 1;
    int idx = -1;
    int s = detail::slot_of(info.name.hash, mask);
    for (;; s = (s + 1) & mask) {
      const int i = leaf_slots_[s];
      if (i < 0) break;
      if (g.leaves[i].name == info.name) { idx = i; break; }
    }
    if (idx >= 0) {
      if (!(g.leaves[idx].shape == info.shape) || g.leaves[idx].kind != info.kind)
        throw "kiln: two leaves share a name but differ in shape or kind";
    } else {
      idx = g.num_leaves();
      leaf_slots_[s] = idx;
      g.leaves.push_back(info);
    }
    node n;
    n.kind = info.kind == leaf_kind::param ? op::param : info.kind == leaf_kind::state ? op::state : op::input;
    n.leaf = idx;
    n.shape = info.shape;
    return append(n);
  }
  constexpr void rehash_leaves(int slots) {
    leaf_slots_.assign(slots, -1);
    for (int i = 0; i < g.num_leaves(); ++i)
      for (int s = detail::slot_of(g.leaves[i].name.hash, slots - 1);; s = (s + 1) & (slots - 1))
        if (leaf_slots_[s] < 0) { leaf_slots_[s] = i; break; }
  }
  constexpr int leaf_node(int leaf_index) {
    const leaf_info info = g.leaves[leaf_index];
    return leaf(info);
  }

  // ---- elementwise
  constexpr int unary(op k, int x, double kk = 0) {
    const node a = node_at(x);
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
    const node a = node_at(x);
    const node b = node_at(y);
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
    const node nc = node_at(c);
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
    if (is_const(x)) return constant(node_at(x).k, s);
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
    if (is_const(x) && k != op::max_cols && !a.batched()) return constant(node_at(x).k * (rows ? a.rows : a.cols), s);
    node n; n.kind = k; n.in[0] = x; n.shape = s;
    return append(n);
  }
  constexpr int sum_rows(int x) { return reduce(op::sum_rows, x); }
  constexpr int sum_cols(int x) { return reduce(op::sum_cols, x); }
  constexpr int max_cols(int x) { return reduce(op::max_cols, x); }
  constexpr int sum_all(int x) { return sum_cols(sum_rows(x)); }

  constexpr int transpose(int x) {
    const node a = node_at(x);  // a copy: appending may move nodes
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
    g.outputs.push_back(output{node_id, assign_to});
  }

};

// Keeps only the nodes that the outputs need (in order) and renumbers them.
constexpr graph_data compact(const graph_data& in) {
  const int n = in.size();
  ct_vector<char> live(n, 0);
  for (const output& o : in.outputs) live[static_cast<int>(o.node)] = 1;
  for (int i = n - 1; i >= 0; --i)
    if (live[i])
      for (int k = 0; k < 3; ++k)
        if (const int a = in.nodes[i].in[k]; a >= 0) live[a] = 1;
  graph_data out{};
  ct_vector<int> remap(n, -1);
  for (int i = 0; i < n; ++i) {
    if (!live[i]) continue;
    node nd = in.nodes[i];
    for (int k = 0; k < 3; ++k)
      if (nd.in[k] >= 0) nd.in[k] = remap[static_cast<int>(nd.in[k])];
    remap[i] = out.size();
    out.nodes.push_back(nd);
  }
  out.leaves = in.leaves;
  out.num_hypers = in.num_hypers;
  for (const output& o : in.outputs) out.outputs.push_back(output{remap[static_cast<int>(o.node)], o.assign_to});
  return out;
}

}  // namespace kiln
