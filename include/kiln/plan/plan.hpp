#pragma once
// Lowering: a graph becomes an ordered list of kernels, computed at compile time.
//   contraction  C = A·B (operands read through transposes as strides), then an epilogue: elementwise roots
//                that read C's rows, evaluated on each row block while it is in cache
//   reduction    sum/max over rows or columns, with an elementwise prologue computing its input on the fly
//   elementwise  one loop over a shape that evaluates a body of nodes once per element and stores its roots
// A node is *materialized* (gets a buffer) when it is a leaf buffer, a contraction or reduction result, a graph
// output, an operand of a contraction, or an elementwise value used more than once that is dearer to recompute
// than max_recompute_cost.
// Everything else is recomputed inside the kernels that need it. The unfused plan materializes every node and
// gives each primitive its own kernel (transposes stay folded into contractions: they are views).
// Like the graph, a plan is built with growing arrays (plan_data) and kept in static arrays of exactly its size
// (frozen_plan<GraphHolder, Mode>::value, a `plan` viewing them).
#include <kiln/core/ct_vector.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/ops/registry.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

namespace kiln {

// indexing: a gather or scatter-add (op_class::indexing), a kernel of its own that reads its materialized operands
enum class kernel_kind : std::uint8_t { elementwise, reduction, contraction, indexing };
enum class fusion : std::uint8_t { fused, unfused };

struct kernel {
  kernel_kind kind = kernel_kind::elementwise;
  int anchor = -1;          // the reduction or contraction node; for elementwise kernels its first root
  dims domain{};            // iteration shape of the body
  int body_begin = 0, body_end = 0;    // nodes evaluated per element, in topological order
  int store_begin = 0, store_end = 0;  // the roots it stores (a subset of the body)
};

// A finished plan, read-only (a view of arrays that live elsewhere). Per-node arrays have g.size entries.
struct plan {
  graph g{};
  fusion mode = fusion::fused;
  const bool* materialized = nullptr;
  const int* assign = nullptr;     // leaf index a node's value is written to in place, or -1
  const int* is_output = nullptr;  // 1 + output index, or 0
  const kernel* kernels = nullptr;
  int num_kernels = 0;
  const int* body = nullptr;
  int num_body = 0;
  const int* stores = nullptr;
  int num_stores = 0;
  const int* kernel_of = nullptr;  // kernel index that computes a materialized node, or -1 (leaf buffers)

  constexpr const node& at(int i) const { return g.nodes[i]; }
  constexpr op_class cls(int i) const { return ops::class_of(g.nodes[i].kind); }
};

// A plan while `lower` builds it.
struct plan_data {
  graph g{};
  fusion mode = fusion::fused;
  ct_vector<char> materialized;  // (not vector<bool>: clang 14 cannot evaluate it in a constant expression)
  ct_vector<int> assign, is_output;
  ct_vector<kernel> kernels;
  ct_vector<int> body, stores;
  ct_vector<int> kernel_of;

  constexpr explicit plan_data(const graph& graph_, fusion mode_)
      : g(graph_), mode(mode_), materialized(g.size, 0), assign(g.size, -1), is_output(g.size, 0),
        kernel_of(g.size, -1) {}
  constexpr int num_kernels() const { return static_cast<int>(kernels.size()); }
  constexpr int num_body() const { return static_cast<int>(body.size()); }
  constexpr int num_stores() const { return static_cast<int>(stores.size()); }
};

// An elementwise value used by several kernels is stored once (a write, then a read per use) when recomputing it
// where it is used would cost more than this many arithmetic ops per element (a transcendental costs 8). Below
// that, recomputing is cheaper: the kernels that read such a value are memory-bound passes, which have flops to
// spare but not bandwidth. (Batch norm's ReLU mask gt((x − μ)·s + b, 0), cost 4, is recomputed by its three
// backward readers, which load x anyway, instead of taking a pass of its own over every map.)
inline constexpr int max_recompute_cost = 7;

namespace detail {

// A set of node ids that remembers its members in insertion order and empties in O(1) (a member's stamp equals the
// current generation), so the passes below cost O(what they visit), not O(nodes), per kernel or per root.
struct node_set {
  ct_vector<int> stamp;
  ct_vector<int> members;
  int generation = 1;
  constexpr explicit node_set(int n) : stamp(n, 0) {}
  constexpr void clear() { ++generation; members.clear(); }
  constexpr bool has(int i) const { return stamp[i] == generation; }
  constexpr bool add(int i) {
    if (has(i)) return false;
    stamp[i] = generation;
    members.push_back(i);
    return true;
  }
};

// What it costs to evaluate node i again where it is used instead of loading it: its op plus its unmaterialized
// elementwise operands and its immediates (materialized nodes and leaves are loads; of the immediates only a
// random draw costs anything). cost[a] holds that for each earlier elementwise node a (operands come first, and
// their materialization is decided by then).
constexpr int recompute_cost(const plan_data& p, const ct_vector<int>& cost, int i) {
  const node& n = p.g.nodes[i];
  int c = ops::cost_of(n.kind);
  if (c == 0) return 0;  // a pass-through (detach, broadcast) is free where it is used, whatever its operand costs
  for (int k = 0; k < 3; ++k) {
    const int a = n.in[k];
    if (a < 0 || p.materialized[a]) continue;
    const op_class ca = ops::class_of(p.g.nodes[a].kind);
    if (ca == op_class::elementwise) c += cost[a];
    else if (ca == op_class::immediate) c += ops::cost_of(p.g.nodes[a].kind);
  }
  return c;
}

// Collects the body of a kernel rooted at `roots`: walk operands, stopping at materialized nodes that are not
// roots of this kernel (they are loaded) — immediates and unmaterialized elementwise nodes are evaluated inline.
constexpr void collect_body(const plan_data& p, const node_set& is_root, int node_id, node_set& in_body) {
  if (in_body.has(node_id)) return;
  const node& n = p.g.nodes[node_id];
  const op_class c = ops::class_of(n.kind);
  if (c == op_class::immediate) { in_body.add(node_id); return; }
  if (c != op_class::elementwise) return;  // loaded from its buffer
  if (p.materialized[node_id] && !is_root.has(node_id)) return;  // loaded
  in_body.add(node_id);
  for (int k = 0; k < 3; ++k)
    if (n.in[k] >= 0) collect_body(p, is_root, n.in[k], in_body);
}

// The materialized nodes a root's body loads (its inputs as a kernel).
constexpr void collect_loads(const plan_data& p, int node_id, node_set& seen, node_set& loads) {
  if (!seen.add(node_id)) return;
  const node& n = p.g.nodes[node_id];
  for (int k = 0; k < 3; ++k) {
    int a = n.in[k];
    if (a < 0) continue;
    const op_class c = ops::class_of(p.g.nodes[a].kind);
    if (c == op_class::immediate) continue;
    if (p.materialized[a] || c != op_class::elementwise) loads.add(a);
    else collect_loads(p, a, seen, loads);
  }
}

// Scratch sets shared by every add_kernel call of one lowering.
struct kernel_scratch {
  node_set is_root, in_body;
  constexpr explicit kernel_scratch(int n) : is_root(n), in_body(n) {}
};

constexpr void add_kernel(plan_data& p, kernel_scratch& s, kernel_kind kind, int anchor, dims domain,
                          const ct_vector<int>& roots, int prologue_of = -1) {
  s.is_root.clear();
  s.in_body.clear();
  for (const int r : roots) s.is_root.add(r);
  for (const int r : roots) collect_body(p, s.is_root, r, s.in_body);
  if (prologue_of >= 0) {
    // a reduction's input computed on the fly (unless it is materialized, then it is loaded)
    const int in = p.g.nodes[prologue_of].in[0];
    if (!p.materialized[in]) collect_body(p, s.is_root, in, s.in_body);
  }
  kernel k;
  k.kind = kind;
  k.anchor = anchor;
  k.domain = domain;
  k.body_begin = p.num_body();
  ct_vector<int> body = s.in_body.members;
  std::sort(body.begin(), body.end());  // node order is a topological order
  for (const int i : body) p.body.push_back(i);
  k.body_end = p.num_body();
  k.store_begin = p.num_stores();
  for (const int r : roots) {
    p.stores.push_back(r);
    p.kernel_of[r] = p.num_kernels();
  }
  k.store_end = p.num_stores();
  if (anchor >= 0 && kind != kernel_kind::elementwise) p.kernel_of[anchor] = p.num_kernels();
  p.kernels.push_back(k);
}

}  // namespace detail

constexpr plan_data lower(const graph& g, fusion mode) {
  plan_data p(g, mode);
  const int n = g.size;
  ct_vector<int> uses(n, 0);
  ct_vector<char> feeds_contraction(n, 0), feeds_other_than_contraction(n, 0);
  ct_vector<int> cost(n, 0);  // recompute_cost of each elementwise node
  for (int i = 0; i < n; ++i) {
    const node& nd = g.nodes[i];
    const op_class c = ops::class_of(nd.kind);
    for (int k = 0; k < 3; ++k) {
      const int a = nd.in[k];
      if (a < 0) continue;
      ++uses[a];
      if (c == op_class::contraction) feeds_contraction[a] = true;
      else if (c == op_class::layout) feeds_contraction[a] = true;  // transposes only feed contractions (checked below)
      else feeds_other_than_contraction[a] = true;
      if (c == op_class::indexing) feeds_contraction[a] = true;  // read from memory, at computed positions
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
      case op_class::contraction:
      case op_class::indexing: m = true; break;
      case op_class::elementwise: {
        // cost of recomputing (each op's `cost`: 1 per arithmetic op, 8 per transcendental), through unmaterialized operands
        cost[i] = detail::recompute_cost(p, cost, i);
        m = mode == fusion::unfused || p.is_output[i] || feeds_contraction[i] || (uses[i] > 1 && cost[i] > max_recompute_cost);
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
  ct_vector<int> epilogue_of(n, -1);
  ct_vector<ct_vector<int>> attached(n, ct_vector<int>{});  // a contraction's epilogue roots, in node order
  detail::kernel_scratch scratch(n);
  if (mode == fusion::fused) {
    // the nodes that read each leaf's (old) value, directly or through a transpose
    ct_vector<ct_vector<int>> readers(g.num_leaves, ct_vector<int>{});
    for (int x = 0; x < n; ++x)
      for (int k = 0; k < 3; ++k) {
        int a = g.nodes[x].in[k];
        if (a >= 0 && g.nodes[a].kind == op::transpose) a = g.nodes[a].in[0];  // a read through a view
        if (a >= 0 && ops::class_of(g.nodes[a].kind) == op_class::leaf && g.nodes[a].leaf >= 0 &&
            g.nodes[a].kind != op::hyper)
          readers[g.nodes[a].leaf].push_back(x);
      }
    detail::node_set seen(n), loads(n);
    for (int i = 0; i < n; ++i) {
      if (!p.materialized[i] || ops::class_of(g.nodes[i].kind) != op_class::elementwise) continue;
      seen.clear();
      loads.clear();
      detail::collect_loads(p, i, seen, loads);
      int contraction = -1;
      bool ok = true;
      for (const int a : loads.members) {
        // the latest contraction (or epilogue of one) of the root's shape that it reads; earlier ones are loads
        const int via = ops::class_of(g.nodes[a].kind) == op_class::contraction ? a : epilogue_of[a];
        if (via >= 0 && g.nodes[via].shape == g.nodes[i].shape && via > contraction) contraction = via;
      }
      if (contraction < 0) continue;
      for (const int a : loads.members)
        if (a != contraction && a > contraction && epilogue_of[a] != contraction &&
            ops::class_of(g.nodes[a].kind) != op_class::leaf)
          ok = false;
      if (ok && p.assign[i] >= 0) {
        // Written in place: only safe if nothing outside this root's own body reads the old value later.
        // The kernel evaluates every attached root's body before storing anything, so reads there see old values.
        detail::node_set& is_root = scratch.is_root;
        detail::node_set& body = scratch.in_body;
        is_root.clear();
        body.clear();
        is_root.add(i);
        for (const int r : attached[contraction]) is_root.add(r);
        for (const int r : is_root.members) detail::collect_body(p, is_root, r, body);
        for (int k = 0; k < 2; ++k) {  // the contraction must not read the leaf it would overwrite
          int a = g.nodes[contraction].in[k];
          if (g.nodes[a].kind == op::transpose) a = g.nodes[a].in[0];
          if (g.nodes[a].leaf == p.assign[i] && ops::class_of(g.nodes[a].kind) == op_class::leaf) ok = false;
        }
        for (const int x : readers[p.assign[i]])
          if (x > contraction && !body.has(x)) ok = false;
      }
      if (ok) {
        epilogue_of[i] = contraction;
        attached[contraction].push_back(i);
      }
    }
  }

  // ---- kernels, in node order (a kernel runs at the position of its anchor), except collectives: each one
  // runs right after the kernel that computes its operand, so that its communication starts as early as it can
  // and overlaps the kernels that follow (a data-parallel step's gradient sums overlap the rest of the backward
  // pass); what reads a collective's value waits for it (kernel_reads_collective).
  ct_vector<int> collectives;
  for (int i = 0; i < n; ++i)
    if (g.nodes[i].kind == op::all_reduce) collectives.push_back(i);
  auto emit_ready_collectives = [&] {
    for (bool emitted = true; emitted;) {
      emitted = false;
      for (const int c : collectives) {
        const int a = g.nodes[c].in[0];
        if (p.kernel_of[c] >= 0) continue;  // emitted
        if (ops::class_of(g.nodes[a].kind) != op_class::leaf && p.kernel_of[a] < 0) continue;  // not computed yet
        detail::add_kernel(p, scratch, kernel_kind::indexing, c, g.nodes[c].shape, {});
        emitted = true;
      }
    }
  };
  ct_vector<int> pending;
  dims pending_shape{};
  auto flush = [&] {
    if (pending.empty()) return;
    detail::add_kernel(p, scratch, kernel_kind::elementwise, pending[0], pending_shape, pending);
    pending.clear();
    emit_ready_collectives();
  };
  emit_ready_collectives();  // the sums of leaves
  for (int i = 0; i < n; ++i) {
    const node& nd = g.nodes[i];
    const op_class c = ops::class_of(nd.kind);
    if (!p.materialized[i] || c == op_class::leaf) continue;
    if (c == op_class::elementwise || c == op_class::immediate) {  // an immediate here is a contraction operand
      if (epilogue_of[i] >= 0) continue;  // emitted with its contraction
      if (!pending.empty() && !(pending_shape == nd.shape)) flush();
      pending_shape = nd.shape;
      pending.push_back(i);
      if (mode == fusion::unfused) flush();
      continue;
    }
    flush();
    if (nd.kind == op::all_reduce) {
      if (p.kernel_of[i] < 0) throw "kiln: a collective's operand was not computed before it (lower)";
      continue;  // emitted after its operand's kernel
    }
    if (c == op_class::contraction) {
      detail::add_kernel(p, scratch, kernel_kind::contraction, i, nd.shape, attached[i]);
    } else if (c == op_class::indexing) {
      detail::add_kernel(p, scratch, kernel_kind::indexing, i, nd.shape, {});
    } else {  // reduction
      detail::add_kernel(p, scratch, kernel_kind::reduction, i, g.nodes[nd.in[0]].shape, {}, i);
    }
    emit_ready_collectives();
  }
  flush();
  return p;
}

// Whether kernel k reads an operand a with pred(a): an input of its body's nodes, or of its anchor when that is not
// elementwise (a reduction's, contraction's or indexing op's operands are read by the kernel, not by its body).
template <class Pred>
constexpr bool kernel_reads_if(const plan& p, int k, Pred pred) {
  const kernel& kr = p.kernels[k];
  for (int b = kr.body_begin; b < kr.body_end; ++b)
    for (const int a : p.g.nodes[p.body[b]].in)
      if (a >= 0 && pred(a)) return true;
  if (kr.anchor >= 0 && kr.kind != kernel_kind::elementwise)
    for (const int a : p.g.nodes[kr.anchor].in)
      if (a >= 0 && pred(a)) return true;
  return false;
}

// Whether kernel k reads the value of a collective (directly, or through a transpose): it must wait until the
// sum over ranks is complete. These waits are the plan's barriers.
constexpr bool kernel_reads_collective(const plan& p, int k) {
  return kernel_reads_if(p, k, [&](int a) {
    if (p.g.nodes[a].kind == op::transpose) a = p.g.nodes[a].in[0];
    return p.g.nodes[a].kind == op::all_reduce;
  });
}
constexpr bool is_collective_kernel(const plan& p, int k) { return p.g.nodes[p.kernels[k].anchor].kind == op::all_reduce; }

// Number of kernels that run per step (what a backend launches).
constexpr int kernel_count(const plan& p) { return p.num_kernels; }

// A plan kept in static arrays of exactly its size: lowered once to count, once more to copy (as frozen_graph).
template <int Nodes, int Kernels, int Body, int Stores>
struct plan_storage {
  std::array<bool, Nodes> materialized{};
  std::array<int, Nodes> assign{}, is_output{}, kernel_of{};
  std::array<kernel, Kernels> kernels{};
  std::array<int, Body> body{};
  std::array<int, Stores> stores{};

  constexpr explicit plan_storage(const plan_data& p) {
    for (int i = 0; i < Nodes; ++i) {
      materialized[i] = p.materialized[i];
      assign[i] = p.assign[i];
      is_output[i] = p.is_output[i];
      kernel_of[i] = p.kernel_of[i];
    }
    for (int i = 0; i < Kernels; ++i) kernels[i] = p.kernels[i];
    for (int i = 0; i < Body; ++i) body[i] = p.body[i];
    for (int i = 0; i < Stores; ++i) stores[i] = p.stores[i];
  }
  constexpr plan view(const graph& g, fusion mode) const {
    return plan{g, mode, materialized.data(), assign.data(), is_output.data(), kernels.data(), Kernels,
                body.data(), Body, stores.data(), Stores, kernel_of.data()};
  }
};

// frozen_plan<GraphHolder, Mode>::value: the plan of GraphHolder::value (a static constexpr graph).
template <class GraphHolder, fusion Mode>
struct frozen_plan {
 private:
  static constexpr const graph& G = GraphHolder::value;
  struct extent { int kernels, body, stores; };
  static constexpr extent size = [] {
    const plan_data p = lower(G, Mode);
    return extent{p.num_kernels(), p.num_body(), p.num_stores()};
  }();
  static constexpr plan_storage<G.size, size.kernels, size.body, size.stores> storage{lower(G, Mode)};

 public:
  static constexpr plan value = storage.view(G, Mode);
};

}  // namespace kiln
