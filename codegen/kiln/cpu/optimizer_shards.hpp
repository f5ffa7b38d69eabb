#pragma once
// ZeRO stage 1 for a data-parallel step (Rajbhandari et al., 2020; llm.c's sharded optimizer): the optimizer's
// state is divided between the ranks. Rank r updates only the rows of the parameters it owns and holds only
// their state; the sum of a gradient's rows goes to their owner alone (a reduce: that rank's part of the
// reduce-scatter), and after the step every parameter's rows are broadcast from their owners (the all-gather).
// The traffic per step is the all-reduce's (a ring all-reduce *is* a reduce-scatter followed by an all-gather);
// what it saves is (N−1)/N of the state and of the update's work.
//
// It is derived from the plan, not written per optimizer, so that it holds for every optimizer and wrapper:
//  - ownership: the values of the parameters whose gradients are summed (each collective names its parameter,
//    node.leaf), in the order the backward pass computes them, are split into N contiguous ranges of equal size,
//    at row boundaries (a row goes to the rank holding its middle), so one parameter may be divided between
//    neighbouring ranks; a state leaf goes with its parameter; what is not summed (batch norm's running
//    statistics) stays on every rank;
//  - row kernels: an elementwise kernel over a parameter's shape that stores only that parameter's new value and
//    its state (an optimizer's update) runs on each rank over that rank's rows alone. A parameter with any other
//    kernel writing it or touching its state (an update fused with another's), or whose new value another kernel
//    reads, is owned whole, by the rank that holds its middle, instead;
//  - which kernels rank r runs: every collective (all ranks take part in each sum), every kernel that stores a
//    result the caller reads or a value of a leaf that r owns rows of or that is not sharded, and, transitively,
//    every kernel whose result a running kernel reads;
//  - which sums can be reduces: a collective's rows go to their owners alone unless a kernel reads the whole of
//    it on a rank that does not own it (clipping by the global norm reads every gradient on every rank, so its
//    sums stay all-reduces, and sharding then saves the state but not the traffic);
//  - which state r holds: the rows it owns of each sharded state leaf, and all of every other state leaf.
// Every rank computes the same result for every rank, so their collectives match.
#include <kiln/core/error.hpp>
#include <kiln/plan/plan.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace kiln::cpu {

// Rows [begin, end) of a parameter (and of its state), owned by `rank`.
struct row_share {
  int rank = 0;
  long begin = 0, end = 0;
  long rows() const { return end - begin; }
};

struct optimizer_shards {
  int ranks = 1, rank = 0;
  std::vector<std::vector<row_share>> shares;  // by leaf: who owns which rows, in rank order (empty: not sharded)
  std::vector<char> reduce;                    // by node: a collective whose rows go to their owners alone
  std::vector<char> runs;                      // by kernel: this rank runs it
  std::vector<long> rows;                      // by kernel, two each: the rows [begin, end) it runs, or −1, −1: all
  std::vector<char> held;                      // by leaf: this rank stores all of it (not a share of its rows)
  long state_floats = 0;                       // optimizer state of the whole model
  long state_floats_held = 0;                  // the part this rank holds

  bool sharded(int leaf) const { return !shares[static_cast<std::size_t>(leaf)].empty(); }
  // Rank r's rows of a sharded leaf ({r, 0, 0} when it owns none), and this rank's.
  row_share share_of(int leaf, int r) const {
    for (const row_share& s : shares[static_cast<std::size_t>(leaf)])
      if (s.rank == r) return s;
    return {r, 0, 0};
  }
  row_share mine(int leaf) const { return share_of(leaf, rank); }
};

namespace shard_detail {

inline long size_of(const leaf_info& l) { return static_cast<long>(l.shape.rows) * l.shape.cols; }
// The parameter a leaf belongs to (itself, or the parameter of optimizer state), or −1.
inline int group_of(const graph& g, int leaf) {
  if (leaf < 0) return -1;
  if (g.leaves[leaf].kind == leaf_kind::param) return leaf;
  return g.leaves[leaf].kind == leaf_kind::state ? g.leaves[leaf].owner : -1;
}

// Each kernel's nodes (body, anchor, stores) and what it loads: leaves, other kernels' results, views of them.
struct kernel_io {
  std::vector<int> members;
  std::vector<int> leaves_touched;   // read or assigned
  std::vector<int> kernels_read;
  std::vector<int> collectives_read;
};
inline std::vector<kernel_io> kernel_ios(const plan& p) {
  const graph& g = p.g;
  std::vector<kernel_io> io(static_cast<std::size_t>(p.num_kernels));
  std::vector<char> inside(static_cast<std::size_t>(g.size), 0);
  std::vector<int> stack;
  for (int k = 0; k < p.num_kernels; ++k) {
    const kernel& kr = p.kernels[k];
    kernel_io& o = io[static_cast<std::size_t>(k)];
    for (int b = kr.body_begin; b < kr.body_end; ++b) o.members.push_back(p.body[b]);
    o.members.push_back(kr.anchor);
    for (int s = kr.store_begin; s < kr.store_end; ++s) o.members.push_back(p.stores[s]);
    for (const int m : o.members) inside[static_cast<std::size_t>(m)] = 1;
    for (const int m : o.members) {
      if (p.assign[m] >= 0) o.leaves_touched.push_back(p.assign[m]);
      for (const int a : g.nodes[m].in)
        if (a >= 0 && !inside[static_cast<std::size_t>(a)]) stack.push_back(a);
    }
    while (!stack.empty()) {
      const int a = stack.back();
      stack.pop_back();
      const node& nd = g.nodes[a];
      if (nd.kind == op::all_reduce) o.collectives_read.push_back(a);
      if (ops::class_of(nd.kind) == op_class::leaf) {
        o.leaves_touched.push_back(nd.leaf);
      } else if (p.kernel_of[a] >= 0) {
        o.kernels_read.push_back(p.kernel_of[a]);
        if (p.assign[a] >= 0) o.leaves_touched.push_back(p.assign[a]);
      } else {
        for (const int x : nd.in)
          if (x >= 0) stack.push_back(x);
      }
    }
    for (const int m : o.members) inside[static_cast<std::size_t>(m)] = 0;
  }
  return io;
}

// The parameter whose rows kernel k can run a share of, or −1: an elementwise kernel over that parameter's shape
// whose every store is a new value of the parameter or of its state.
inline int row_kernel_group(const plan& p, int k) {
  const kernel& kr = p.kernels[k];
  if (kr.kind != kernel_kind::elementwise || kr.store_end == kr.store_begin) return -1;
  int group = -1;
  for (int s = kr.store_begin; s < kr.store_end; ++s) {
    const int gs = group_of(p.g, p.assign[p.stores[s]]);
    if (gs < 0 || (group >= 0 && gs != group)) return -1;
    group = gs;
  }
  return kr.domain == p.g.leaves[group].shape ? group : -1;
}

}  // namespace shard_detail

// The shards of plan p's optimizer state for `rank` of `ranks`.
inline optimizer_shards shard_optimizer(const plan& p, int ranks, int rank) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw error("kiln: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + " ranks");
  using shard_detail::group_of;
  const graph& g = p.g;
  const std::vector<shard_detail::kernel_io> io = shard_detail::kernel_ios(p);
  const auto L = static_cast<std::size_t>(g.num_leaves);

  // Parameters whose gradients are summed, in that order; those with a kernel other than a row kernel writing
  // them or touching their state are owned whole.
  std::vector<int> params;
  long total = 0;
  for (int i = 0; i < g.size; ++i)
    if (g.nodes[i].kind == op::all_reduce && g.nodes[i].leaf >= 0) {
      params.push_back(g.nodes[i].leaf);
      total += shard_detail::size_of(g.leaves[g.nodes[i].leaf]);
    }
  std::vector<int> row_group(static_cast<std::size_t>(p.num_kernels), -1);
  std::vector<char> whole(L, 0);
  for (int k = 0; k < p.num_kernels; ++k) {
    row_group[static_cast<std::size_t>(k)] = shard_detail::row_kernel_group(p, k);
    for (const int l : io[static_cast<std::size_t>(k)].leaves_touched) {
      const int grp = group_of(g, l);
      const bool writes_or_state = g.leaves[l].kind == leaf_kind::state ||
          std::find_if(io[static_cast<std::size_t>(k)].members.begin(), io[static_cast<std::size_t>(k)].members.end(),
                       [&](int m) { return p.assign[m] == l; }) != io[static_cast<std::size_t>(k)].members.end();
      if (grp >= 0 && writes_or_state && row_group[static_cast<std::size_t>(k)] != grp) whole[static_cast<std::size_t>(grp)] = 1;
    }
  }
  for (int k = 0; k < p.num_kernels; ++k)  // a new value that another kernel reads must exist whole on every reader
    for (const int kk : io[static_cast<std::size_t>(k)].kernels_read)
      if (const int grp = row_group[static_cast<std::size_t>(kk)]; grp >= 0) whole[static_cast<std::size_t>(grp)] = 1;

  optimizer_shards s;
  s.ranks = ranks;
  s.rank = rank;
  s.shares.assign(L, {});
  // rank owning flat position x (twice the position, so that a row's middle is an integer)
  auto owner_at = [&](long twice_x) { return static_cast<int>(std::min<long>(ranks - 1, twice_x * ranks / (2 * total))); };
  long before = 0;
  for (const int l : params) {
    const long R = g.leaves[l].shape.rows, C = g.leaves[l].shape.cols;
    std::vector<row_share>& sh = s.shares[static_cast<std::size_t>(l)];
    if (whole[static_cast<std::size_t>(l)]) {
      sh.push_back({owner_at(2 * before + R * C), 0, R});
    } else {
      for (long r = 0; r < R; ++r) {
        const int o = owner_at(2 * (before + r * C) + C);
        if (sh.empty() || sh.back().rank != o) sh.push_back({o, r, r});
        sh.back().end = r + 1;
      }
    }
    before += R * C;
  }
  for (int l = 0; l < g.num_leaves; ++l)
    if (g.leaves[l].kind == leaf_kind::state && g.leaves[l].owner >= 0)
      s.shares[static_cast<std::size_t>(l)] = s.shares[static_cast<std::size_t>(g.leaves[l].owner)];

  // What each rank runs: seeds, then every producer of what a running kernel reads (kernels are in dependency
  // order, so one pass from the last suffices). A row kernel runs on the ranks owning rows of its parameter.
  std::vector<char> full_read_elsewhere(static_cast<std::size_t>(g.size), 0);  // by collective
  for (int r = 0; r < ranks; ++r) {
    std::vector<char> runs(static_cast<std::size_t>(p.num_kernels), 0);
    for (int k = 0; k < p.num_kernels; ++k)
      if (g.nodes[p.kernels[k].anchor].kind == op::all_reduce) runs[static_cast<std::size_t>(k)] = 1;
    for (int o = 0; o < g.num_outputs; ++o) {
      const int leaf = g.outputs[o].assign_to;
      const int k = p.kernel_of[g.outputs[o].node];
      if (k >= 0 && (leaf < 0 || !s.sharded(leaf) || s.share_of(leaf, r).rows() > 0)) runs[static_cast<std::size_t>(k)] = 1;
    }
    for (int k = p.num_kernels - 1; k >= 0; --k) {
      if (!runs[static_cast<std::size_t>(k)]) continue;
      const shard_detail::kernel_io& o = io[static_cast<std::size_t>(k)];
      for (const int kk : o.kernels_read) runs[static_cast<std::size_t>(kk)] = 1;
      const int grp = row_group[static_cast<std::size_t>(k)];
      for (const int c : o.collectives_read) {
        const int cp = g.nodes[c].leaf;  // a row kernel reads its own rows; a whole owner reads what it owns
        const bool own = cp >= 0 && s.sharded(cp) &&
                         ((grp == cp && !whole[static_cast<std::size_t>(cp)]) || (whole[static_cast<std::size_t>(cp)] && s.share_of(cp, r).rows() > 0));
        if (!own) full_read_elsewhere[static_cast<std::size_t>(c)] = 1;
      }
    }
    if (r == rank) s.runs = runs;
  }

  s.reduce.assign(static_cast<std::size_t>(g.size), 0);
  for (int i = 0; i < g.size; ++i)
    if (g.nodes[i].kind == op::all_reduce && g.nodes[i].leaf >= 0 && s.sharded(g.nodes[i].leaf))
      s.reduce[static_cast<std::size_t>(i)] = !full_read_elsewhere[static_cast<std::size_t>(i)];

  s.rows.assign(2 * static_cast<std::size_t>(p.num_kernels), -1);
  for (int k = 0; k < p.num_kernels; ++k) {
    const int grp = row_group[static_cast<std::size_t>(k)];
    if (grp < 0 || whole[static_cast<std::size_t>(grp)] || !s.sharded(grp)) continue;
    const row_share m = s.mine(grp);
    s.rows[2 * static_cast<std::size_t>(k)] = m.begin;
    s.rows[2 * static_cast<std::size_t>(k) + 1] = m.end;
    if (m.rows() == 0) s.runs[static_cast<std::size_t>(k)] = 0;
  }

  s.held.assign(L, 1);
  for (int l = 0; l < g.num_leaves; ++l) {
    if (g.leaves[l].kind != leaf_kind::state || g.leaves[l].owner < 0) continue;
    const long n = shard_detail::size_of(g.leaves[l]);
    s.state_floats += n;
    const long mine = s.sharded(l) ? s.mine(l).rows() * g.leaves[l].shape.cols : n;
    s.held[static_cast<std::size_t>(l)] = mine == n;
    s.state_floats_held += mine;
  }
  return s;
}

}  // namespace kiln::cpu
