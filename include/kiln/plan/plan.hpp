#pragma once
// Lowering: a graph becomes an ordered list of kernels, computed at compile time.
//   contraction  C = A·B (operands read through transposes as strides), then an epilogue: elementwise roots
//                that read C's rows, evaluated on each row block while it is in cache
//   reduction    sum/max over rows or columns, with an elementwise prologue computing its input on the fly
//   elementwise  one loop over a shape that evaluates a body of nodes once per element and stores its roots
// A node is *materialized* (gets a buffer) when it is a leaf buffer, a contraction or reduction result, a graph
// output, an operand of a contraction, or an elementwise value used more than once (and not trivially cheap).
// Everything else is recomputed inside the kernels that need it. The unfused plan materializes every node and
// gives each primitive its own kernel (transposes stay folded into contractions: they are views).
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

namespace kiln {

enum class kernel_kind : std::uint8_t { elementwise, reduction, contraction };
enum class fusion : std::uint8_t { fused, unfused };

inline constexpr int max_kernels = max_nodes;  // at most one kernel per node (the unfused plan)
inline constexpr int max_body = 4 * max_nodes;

struct kernel {
  kernel_kind kind = kernel_kind::elementwise;
  int anchor = -1;          // the reduction or contraction node; for elementwise kernels its first root
  dims domain{};            // iteration shape of the body
  int body_begin = 0, body_end = 0;    // nodes evaluated per element, in topological order
  int store_begin = 0, store_end = 0;  // the roots it stores (a subset of the body)
};

struct plan {
  graph g{};
  fusion mode = fusion::fused;
  bool materialized[max_nodes]{};
  int assign[max_nodes]{};  // leaf index a node's value is written to in place, or -1
  int is_output[max_nodes]{};  // 1 + output index, or 0
  kernel kernels[max_kernels]{};
  int num_kernels = 0;
  int body[max_body]{};
  int num_body = 0;
  int stores[max_nodes]{};
  int num_stores = 0;
  int kernel_of[max_nodes]{};  // kernel index that computes a materialized node, or -1 (leaf buffers)

  constexpr const node& at(int i) const { return g.nodes[i]; }
  constexpr op_class cls(int i) const { return ops::class_of(g.nodes[i].kind); }
};

namespace detail {

constexpr bool transcendental(op k) {
  return k == op::exp || k == op::log || k == op::log1p || k == op::sqrt || k == op::tanh || k == op::sigmoid ||
         k == op::erf || k == op::softplus || k == op::pow_c || k == op::div || k == op::recip;
}
// What it costs to evaluate a node again where it is used instead of loading it: its op plus its unmaterialized
// elementwise operands (materialized nodes, leaves and immediates are loads).
constexpr int recompute_cost(const plan& p, int i) {
  const node& n = p.g.nodes[i];
  if (n.kind == op::stop_gradient || n.kind == op::broadcast_to) return 0;
  int c = transcendental(n.kind) ? 8 : 1;
  for (int k = 0; k < 3; ++k) {
    const int a = n.in[k];
    if (a >= 0 && !p.materialized[a] && ops::class_of(p.g.nodes[a].kind) == op_class::elementwise) c += recompute_cost(p, a);
  }
  return c;
}

// Collects the body of a kernel rooted at `roots`: walk operands, stopping at materialized nodes that are not
// roots of this kernel (they are loaded) — immediates and unmaterialized elementwise nodes are evaluated inline.
constexpr void collect_body(const plan& p, const bool* is_root, int node_id, bool* in_body) {
  if (in_body[node_id]) return;
  const node& n = p.g.nodes[node_id];
  const op_class c = ops::class_of(n.kind);
  if (c == op_class::immediate) { in_body[node_id] = true; return; }
  if (c != op_class::elementwise) return;  // loaded from its buffer
  if (p.materialized[node_id] && !is_root[node_id]) return;  // loaded
  in_body[node_id] = true;
  for (int k = 0; k < 3; ++k)
    if (n.in[k] >= 0) collect_body(p, is_root, n.in[k], in_body);
}

// The materialized nodes a root's body loads (its inputs as a kernel).
constexpr void collect_loads(const plan& p, int node_id, bool* seen, bool* loads) {
  if (seen[node_id]) return;
  seen[node_id] = true;
  const node& n = p.g.nodes[node_id];
  for (int k = 0; k < 3; ++k) {
    int a = n.in[k];
    if (a < 0) continue;
    const op_class c = ops::class_of(p.g.nodes[a].kind);
    if (c == op_class::immediate) continue;
    if (p.materialized[a] || c != op_class::elementwise) loads[a] = true;
    else collect_loads(p, a, seen, loads);
  }
}

constexpr void add_kernel(plan& p, kernel_kind kind, int anchor, dims domain, const int* roots, int n_roots,
                          int prologue_of = -1) {
  if (p.num_kernels >= max_kernels) throw "kiln: plan exceeds max_kernels";
  bool is_root[max_nodes]{};
  bool in_body[max_nodes]{};
  for (int r = 0; r < n_roots; ++r) is_root[roots[r]] = true;
  for (int r = 0; r < n_roots; ++r) collect_body(p, is_root, roots[r], in_body);
  if (prologue_of >= 0) {
    // a reduction's input computed on the fly (unless it is materialized, then it is loaded)
    const int in = p.g.nodes[prologue_of].in[0];
    if (!p.materialized[in]) collect_body(p, is_root, in, in_body);
  }
  kernel k;
  k.kind = kind;
  k.anchor = anchor;
  k.domain = domain;
  k.body_begin = p.num_body;
  for (int i = 0; i < p.g.size; ++i)
    if (in_body[i]) {
      if (p.num_body >= max_body) throw "kiln: plan exceeds max_body";
      p.body[p.num_body++] = i;
    }
  k.body_end = p.num_body;
  k.store_begin = p.num_stores;
  for (int r = 0; r < n_roots; ++r) {
    p.stores[p.num_stores++] = roots[r];
    p.kernel_of[roots[r]] = p.num_kernels;
  }
  k.store_end = p.num_stores;
  if (anchor >= 0 && kind != kernel_kind::elementwise) p.kernel_of[anchor] = p.num_kernels;
  p.kernels[p.num_kernels++] = k;
}

}  // namespace detail

constexpr plan lower(const graph& g, fusion mode) {
  plan p{};
  p.g = g;
  p.mode = mode;
  const int n = g.size;
  int uses[max_nodes]{};
  bool feeds_contraction[max_nodes]{};
  bool feeds_other_than_contraction[max_nodes]{};
  for (int i = 0; i < n; ++i) {
    p.assign[i] = -1;
    p.kernel_of[i] = -1;
    const node& nd = g.nodes[i];
    const op_class c = ops::class_of(nd.kind);
    for (int k = 0; k < 3; ++k) {
      const int a = nd.in[k];
      if (a < 0) continue;
      ++uses[a];
      if (c == op_class::contraction) feeds_contraction[a] = true;
      else if (c == op_class::layout) feeds_contraction[a] = true;  // transposes only feed contractions (checked below)
      else feeds_other_than_contraction[a] = true;
    }
  }
  for (int o = 0; o < g.num_outputs; ++o) {
    const int id = g.outputs[o].node;
    p.is_output[id] = o + 1;
    if (g.outputs[o].assign_to >= 0) p.assign[id] = g.outputs[o].assign_to;
  }
  // ---- what gets a buffer
  for (int i = 0; i < n; ++i) {
    const node& nd = g.nodes[i];
    const op_class c = ops::class_of(nd.kind);
    if (c == op_class::layout && feeds_other_than_contraction[i])
      throw "kiln: a transpose is used outside a contraction; only contraction operands can be transposed";
    bool m = false;
    switch (c) {
      case op_class::leaf: m = true; break;
      // folded into the kernels that read it, except as a contraction operand, which is read from memory
      // (the gradient of a plain sum is the constant 1 at the summed value's full shape)
      case op_class::immediate: m = feeds_contraction[i]; break;
      case op_class::layout: m = false; break;  // a view of its operand
      case op_class::reduction:
      case op_class::contraction: m = true; break;
      case op_class::elementwise: {
        // cost of recomputing: 1 per arithmetic op, 8 per transcendental, through unmaterialized operands
        int cost = detail::recompute_cost(p, i);
        m = mode == fusion::unfused || p.is_output[i] || feeds_contraction[i] || (uses[i] > 1 && cost > 3);
        break;
      }
    }
    p.materialized[i] = m;
  }
  for (int i = 0; i < n; ++i)
    if (g.nodes[i].kind == op::transpose && !p.materialized[g.nodes[i].in[0]])
      p.materialized[g.nodes[i].in[0]] = true;  // a transposed operand is read through strides from a buffer

  // ---- epilogue attachment: an elementwise root joins the contraction whose result it reads, when that is
  // the only kernel-computed value it needs that is not already available before the contraction runs.
  int epilogue_of[max_nodes];
  for (int i = 0; i < n; ++i) epilogue_of[i] = -1;
  if (mode == fusion::fused) {
    for (int i = 0; i < n; ++i) {
      if (!p.materialized[i] || ops::class_of(g.nodes[i].kind) != op_class::elementwise) continue;
      bool seen[max_nodes]{}, loads[max_nodes]{};
      detail::collect_loads(p, i, seen, loads);
      int contraction = -1;
      bool ok = true;
      for (int a = 0; a < n && ok; ++a) {
        if (!loads[a]) continue;
        // the latest contraction (or epilogue of one) of the root's shape that it reads; earlier ones are loads
        const int via = ops::class_of(g.nodes[a].kind) == op_class::contraction ? a : epilogue_of[a];
        if (via >= 0 && g.nodes[via].shape == g.nodes[i].shape && via > contraction) contraction = via;
      }
      if (!ok || contraction < 0) continue;
      for (int a = 0; a < n && ok; ++a)
        if (loads[a] && a != contraction && a > contraction && epilogue_of[a] != contraction &&
            ops::class_of(g.nodes[a].kind) != op_class::leaf)
          ok = false;
      if (ok && p.assign[i] >= 0) {
        // Written in place: only safe if nothing outside this root's own body reads the old value later.
        // The kernel evaluates every attached root's body before storing anything, so reads there see old values.
        bool is_root[max_nodes]{}, body[max_nodes]{};
        is_root[i] = true;
        for (int r = 0; r < i; ++r) is_root[r] = epilogue_of[r] == contraction;
        for (int r = 0; r <= i; ++r)
          if (is_root[r]) detail::collect_body(p, is_root, r, body);
        for (int k = 0; k < 2; ++k) {  // the contraction must not read the leaf it would overwrite
          int a = g.nodes[contraction].in[k];
          if (g.nodes[a].kind == op::transpose) a = g.nodes[a].in[0];
          if (g.nodes[a].leaf == p.assign[i] && ops::class_of(g.nodes[a].kind) == op_class::leaf) ok = false;
        }
        for (int x = contraction + 1; x < n && ok; ++x)
          for (int k = 0; k < 3; ++k) {
            int a = g.nodes[x].in[k];
            if (a >= 0 && g.nodes[a].kind == op::transpose) a = g.nodes[a].in[0];  // a read through a view
            if (a >= 0 && g.nodes[a].leaf == p.assign[i] && ops::class_of(g.nodes[a].kind) == op_class::leaf && !body[x])
              ok = false;
          }
      }
      if (ok) epilogue_of[i] = contraction;
    }
  }

  // ---- kernels, in node order (a kernel runs at the position of its anchor)
  int pending[max_nodes], n_pending = 0;
  dims pending_shape{};
  auto flush = [&] {
    if (n_pending == 0) return;
    detail::add_kernel(p, kernel_kind::elementwise, pending[0], pending_shape, pending, n_pending);
    n_pending = 0;
  };
  for (int i = 0; i < n; ++i) {
    const node& nd = g.nodes[i];
    const op_class c = ops::class_of(nd.kind);
    if (!p.materialized[i] || c == op_class::leaf) continue;
    if (c == op_class::elementwise || c == op_class::immediate) {  // an immediate here is a contraction operand
      if (epilogue_of[i] >= 0) continue;  // emitted with its contraction
      if (n_pending > 0 && !(pending_shape == nd.shape)) flush();
      pending_shape = nd.shape;
      pending[n_pending++] = i;
      if (mode == fusion::unfused) flush();
      continue;
    }
    flush();
    if (c == op_class::contraction) {
      int roots[max_nodes], nr = 0;
      for (int r = i + 1; r < n; ++r)
        if (epilogue_of[r] == i) roots[nr++] = r;
      detail::add_kernel(p, kernel_kind::contraction, i, nd.shape, roots, nr);
    } else {  // reduction
      detail::add_kernel(p, kernel_kind::reduction, i, g.nodes[nd.in[0]].shape, nullptr, 0, i);
    }
  }
  flush();
  return p;
}

// Number of kernels that run per step (what a backend launches).
constexpr int kernel_count(const plan& p) { return p.num_kernels; }

}  // namespace kiln
