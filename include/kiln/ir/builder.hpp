#pragma once
// Appends nodes to a graph at compile time. Every op node goes through `make`, which applies the op's own rules
// (ops/*.hpp):
//   - infers and checks the shape (numpy broadcasting; batch only matches batch or 1; Op::shape_of),
//   - folds constants and simplifies (x·1, x+0, x·0, −(−x), …: Op::simplify),
//   - keeps a where-mask outermost through products (mul/div/neg of where(c, g, 0) → where(c, g·y, 0)), so a NaN
//     or inf computed in an unselected branch can never reach a gradient,
//   - shares identical nodes (hash-consing), so forward values needed by the backward pass exist once.
#include <kiln/core/ct_vector.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

#include <array>
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


// Makes a node of op Op on operands in (−1 past its arity) with constant k, by the op's rules: its shape
// (elementwise ops broadcast their operands, others have Op::shape_of), folding of constant operands for the
// arithmetic ops (cost 1: their forward in exact double at compile time, ops::fold_math), then Op::simplify,
// and only then a new node.
template <class Op, class B>
constexpr int make_node(B& b, const int* in, double k) {
  if constexpr (Op::cls == op_class::leaf || Op::cls == op_class::immediate || Op::kind == op::broadcast_to ||
                requires { Op::window_code; }) {
    throw "kiln: leaves, immediates, broadcasts and window ops are made by their own builder functions";
  } else {
    dims shapes[3]{};
    for (int i = 0; i < Op::arity; ++i) shapes[i] = b.shape(in[i]);
    dims s = shapes[0];
    if constexpr (Op::cls == op_class::elementwise) {
      for (int i = 1; i < Op::arity; ++i) s = dims{broadcast_dim(s.rows, shapes[i].rows), broadcast_dim(s.cols, shapes[i].cols)};
    } else if constexpr (requires { Op::shape_of(shapes, k); }) {
      s = Op::shape_of(shapes, k);
    } else {
      s = Op::shape_of(shapes);
    }
    if constexpr (Op::cls == op_class::elementwise && ops::cost_of_op<Op>() == 1) {
      bool constants = true;
      double v[3]{};
      for (int i = 0; i < Op::arity; ++i) {
        constants = constants && b.is_const(in[i]);
        if (constants) v[i] = b.node_at(in[i]).k;
      }
      if (constants) return b.constant(ops::forward_of<Op, ops::fold_math>(v, k), s);
    }
    if constexpr (requires { Op::simplify(b, in, k, s); })
      if (const int r = Op::simplify(b, in, k, s); r >= 0) return r;
    node n;
    n.kind = Op::kind;
    for (int i = 0; i < Op::arity; ++i) n.in[i] = in[i];
    n.k = k;
    n.shape = s;
    return b.append(n);
  }
}
template <class B, class... Op>
constexpr auto node_maker_table(boost::mp11::mp_list<Op...>) {
  return std::array<int (*)(B&, const int*, double), sizeof...(Op)>{&make_node<Op, B>...};
}
template <class B>
inline constexpr auto node_makers = node_maker_table<B>(ops::all{});

}  // namespace detail

struct builder {
  graph_data g{};
  // Whether this is a training graph (a step's, or the gradients'): dropout then draws its masks. A forward graph
  // (predictions, evaluation) is built with false, so the same model gives both.
  bool training = false;
  // Open-addressing table of node ids by node_hash (−1: empty), at most half full: appending a node finds an
  // identical one in O(1), so building a graph of n nodes costs O(n), not O(n²).
  // New values of state leaves that a layer keeps besides the optimizer's (batch norm's running statistics), as
  // (node, leaf) outputs: a training step assigns them after its loss; other graphs drop them.
  ct_vector<output> state_updates{};
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
  // A uniform draw in [0, 1) per element of shape s, from stream `stream` of the step's random key.
  constexpr int random_uniform(dims s, std::uint32_t stream) {
    node n; n.kind = op::random_uniform; n.shape = s; n.k = static_cast<double>(stream); return append(n);
  }
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

  // ---- op nodes: every op node is made by its op's own rules (detail::make_node): its shape rule, constant
  // folding, its simplifications, then an append that finds an identical node if there is one.
  constexpr int make(op k, const int* in, double kk = 0) {
    return detail::node_makers<builder>[static_cast<std::size_t>(k)](*this, in, kk);
  }
  static constexpr op_class class_of(op k) { return ops::class_of(k); }

  constexpr int unary(op k, int x, double kk = 0) { const int in[3] = {x, -1, -1}; return make(k, in, kk); }
  constexpr int neg(int x) { return unary(op::neg, x); }
  constexpr int exp(int x) { return unary(op::exp, x); }
  constexpr int log(int x) { return unary(op::log, x); }
  constexpr int sigmoid(int x) { return unary(op::sigmoid, x); }
  constexpr int pow(int x, double p) { return unary(op::pow_c, x, p); }
  constexpr int stop_gradient(int x) { return unary(op::stop_gradient, x); }

  constexpr int binary(op k, int x, int y) { const int in[3] = {x, y, -1}; return make(k, in); }
  constexpr int add(int x, int y) { return binary(op::add, x, y); }
  constexpr int sub(int x, int y) { return binary(op::sub, x, y); }
  constexpr int mul(int x, int y) { return binary(op::mul, x, y); }
  constexpr int div(int x, int y) { return binary(op::div, x, y); }
  constexpr int gt(int x, int y) { return binary(op::gt, x, y); }
  constexpr int ge(int x, int y) { return binary(op::ge, x, y); }
  constexpr int eq(int x, int y) { return binary(op::eq, x, y); }

  constexpr int where(int c, int x, int y) { const int in[3] = {c, x, y}; return make(op::where, in); }

  // Rows of `table` by the indices in idx, side by side; and the adjoint: g added into `rows` rows by idx.
  constexpr int gather(int table, int idx) { const int in[3] = {table, idx, -1}; return make(op::gather, in); }
  constexpr int scatter_add(int g, int idx, int rows) { const int in[3] = {g, idx, -1}; return make(op::scatter_add, in, rows); }
  // Σ over the ranks of a data-parallel run of h[weight_slot]·x (weight 1 when weight_slot < 0). param_leaf: the
  // parameter whose gradient x is (node.leaf; a sharded optimizer gives that parameter's update to one rank), or −1.
  constexpr int all_reduce(int x, int weight_slot = -1, int param_leaf = -1) {
    node n;
    n.kind = op::all_reduce;
    n.in[0] = x;
    n.shape = shape(x);
    n.k = weight_slot;
    n.leaf = param_leaf;
    return append(n);
  }

  // ---- window ops (ops/window.hpp): a node of window op Op on a (and b, or −1) with geometry w, registered in
  // the graph's window table (node.leaf), after the op's own rewrites (Op::simplify(in, w): −1 for none).
  template <class Op>
  constexpr int window_node(int a, int b, const window& w) {
    const dims in_shapes[2] = {shape(a), b >= 0 ? shape(b) : dims{}};
    const dims s = Op::shape_of(in_shapes, w);
    const int in[2] = {a, b};
    if constexpr (requires { Op::simplify(in, w); })
      if (const int r = Op::simplify(in, w); r >= 0) return r;
    node n;
    n.kind = Op::kind;
    n.in[0] = a;
    n.in[1] = b;
    n.shape = s;
    n.leaf = window_id(w);
    return append(n);
  }
  constexpr int window_id(const window& w) {
    for (int i = 0; i < g.num_windows(); ++i)
      if (g.windows[i] == w) return i;
    g.windows.push_back(w);
    return g.num_windows() - 1;
  }
  constexpr window window_of(int node_id) const { return g.windows[node_at(node_id).leaf]; }

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
  constexpr int reduce(op k, int x) { return unary(k, x); }
  constexpr int sum_rows(int x) { return reduce(op::sum_rows, x); }
  constexpr int sum_cols(int x) { return reduce(op::sum_cols, x); }
  constexpr int max_cols(int x) { return reduce(op::max_cols, x); }
  constexpr int sum_all(int x) { return sum_cols(sum_rows(x)); }
  constexpr int transpose(int x) { return unary(op::transpose, x); }
  constexpr int matmul(int x, int y) { return binary(op::matmul, x, y); }

  // ---- outputs
  constexpr void add_output(int node_id, int assign_to = -1) {
    g.outputs.push_back(output{node_id, assign_to});
  }
  // The state leaf whose node is leaf_node takes the value of node_id after a training step.
  constexpr void update_state(int node_id, int leaf_node) {
    state_updates.push_back(output{node_id, node_at(leaf_node).leaf});
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
  out.windows = in.windows;
  out.num_hypers = in.num_hypers;
  for (const output& o : in.outputs) out.outputs.push_back(output{remap[static_cast<int>(o.node)], o.assign_to});
  return out;
}

}  // namespace kiln
