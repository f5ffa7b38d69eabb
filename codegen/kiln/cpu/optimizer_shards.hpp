#pragma once
// ZeRO stage 1 for a data-parallel step (Rajbhandari et al., 2020; llm.c's sharded optimizer): the optimizer's
// state is divided between the ranks. Rank r updates only the parameters it owns and holds only their state;
// the sum of an owned gradient goes to its owner alone (a reduce: the reduce-scatter's share of that rank), and
// after the step every parameter is broadcast from its owner (the all-gather). The traffic per step is the
// all-reduce's (a ring all-reduce *is* a reduce-scatter followed by an all-gather); what it saves is the state
// of the parameters a rank does not own, (N−1)/N of it, and their update kernels.
//
// It is derived from the plan, not written per optimizer, so that it holds for every optimizer and wrapper:
//  - ownership: the parameters whose gradients are summed (each collective names its parameter, node.leaf), in
//    the order the backward pass computes them, are split into N contiguous runs of about equal size (whole
//    parameters; a rank may own none when there are fewer parameters than ranks); a state leaf goes with its
//    parameter, and everything else (batch norm's running statistics) stays on every rank;
//  - which kernels rank r runs: every collective (all ranks take part in each sum), every kernel that stores a
//    result the caller reads or an assignment to a leaf that r owns or that is not sharded, and, transitively,
//    every kernel whose result a running kernel reads;
//  - which sums can be reduces: a collective's sum goes to its owner alone unless a kernel that another rank
//    runs reads it (clipping by the global norm reads every gradient on every rank, so its sums stay
//    all-reduces, and sharding then saves the state but not traffic);
//  - which state leaves r holds: those a kernel that r runs reads or writes.
// Every rank computes the same result for every rank, so their collectives match.
#include <kiln/core/error.hpp>
#include <kiln/plan/kernel_view.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace kiln::cpu {

struct optimizer_shards {
  int ranks = 1, rank = 0;
  std::vector<int> owner_of_leaf;  // by leaf: the rank that updates it, or −1 (every rank: not sharded)
  std::vector<int> reduce_root;    // by node: a collective's sum goes to this rank alone, or −1 (to every rank)
  std::vector<char> runs;          // by kernel: this rank runs it
  std::vector<char> held;          // by leaf: this rank stores it (every parameter and input; state where used)
  long state_floats = 0;           // optimizer state of the whole model
  long state_floats_held = 0;      // the part this rank holds

  bool sharded(int leaf) const { return owner_of_leaf[static_cast<std::size_t>(leaf)] >= 0; }
};

namespace shard_detail {

inline long size_of(const leaf_info& l) { return static_cast<long>(l.shape.rows) * l.shape.cols; }

// Each summed parameter's owner: contiguous runs in gradient order, split at the middle of each parameter.
inline std::vector<int> owners(const plan& p, int ranks) {
  const graph& g = p.g;
  std::vector<int> owner(static_cast<std::size_t>(g.num_leaves), -1);
  std::vector<int> params;  // in the order their gradients are summed
  long total = 0;
  for (int i = 0; i < g.size; ++i)
    if (g.nodes[i].kind == op::all_reduce && g.nodes[i].leaf >= 0) {
      params.push_back(g.nodes[i].leaf);
      total += size_of(g.leaves[g.nodes[i].leaf]);
    }
  long before = 0;
  for (const int l : params) {
    const long n = size_of(g.leaves[l]);
    const long middle2 = 2 * before + n;  // twice the position of the parameter's middle
    owner[static_cast<std::size_t>(l)] = static_cast<int>(std::min<long>(ranks - 1, middle2 * ranks / (2 * total)));
    before += n;
  }
  for (int l = 0; l < g.num_leaves; ++l)
    if (g.leaves[l].kind == leaf_kind::state && g.leaves[l].owner >= 0)
      owner[static_cast<std::size_t>(l)] = owner[static_cast<std::size_t>(g.leaves[l].owner)];
  return owner;
}

struct rank_use {
  std::vector<char> runs;          // by kernel
  std::vector<char> touched;       // by leaf: read or written by a running kernel
  std::vector<char> reads_collective;  // by node
};

// What rank r runs, given every leaf's owner.
inline rank_use use_of(const plan& p, const std::vector<int>& owner, int r) {
  const graph& g = p.g;
  rank_use u{std::vector<char>(static_cast<std::size_t>(p.num_kernels), 0), std::vector<char>(static_cast<std::size_t>(g.num_leaves), 0),
             std::vector<char>(static_cast<std::size_t>(g.size), 0)};
  for (int k = 0; k < p.num_kernels; ++k)
    if (g.nodes[p.kernels[k].anchor].kind == op::all_reduce) u.runs[static_cast<std::size_t>(k)] = 1;
  for (int o = 0; o < g.num_outputs; ++o) {
    const int leaf = g.outputs[o].assign_to;
    const int k = p.kernel_of[g.outputs[o].node];
    if (k >= 0 && (leaf < 0 || owner[static_cast<std::size_t>(leaf)] < 0 || owner[static_cast<std::size_t>(leaf)] == r))
      u.runs[static_cast<std::size_t>(k)] = 1;
  }
  // Kernels are in dependency order, so one pass from the last marks every producer of what a running kernel reads.
  std::vector<char> inside(static_cast<std::size_t>(g.size), 0);
  std::vector<int> stack;
  for (int k = p.num_kernels - 1; k >= 0; --k) {
    if (!u.runs[static_cast<std::size_t>(k)]) continue;
    const kernel& kr = p.kernels[k];
    std::vector<int> members;
    for (int b = kr.body_begin; b < kr.body_end; ++b) members.push_back(p.body[b]);
    members.push_back(kr.anchor);
    for (int s = kr.store_begin; s < kr.store_end; ++s) members.push_back(p.stores[s]);
    for (const int m : members) inside[static_cast<std::size_t>(m)] = 1;
    for (const int m : members) {
      if (p.assign[m] >= 0) u.touched[static_cast<std::size_t>(p.assign[m])] = 1;
      for (const int a : g.nodes[m].in)
        if (a >= 0 && !inside[static_cast<std::size_t>(a)]) stack.push_back(a);
    }
    while (!stack.empty()) {  // a load: a leaf, another kernel's result, or a view (a transpose) of one
      const int a = stack.back();
      stack.pop_back();
      const node& nd = g.nodes[a];
      if (nd.kind == op::all_reduce) u.reads_collective[static_cast<std::size_t>(a)] = 1;
      if (ops::class_of(nd.kind) == op_class::leaf) {
        u.touched[static_cast<std::size_t>(nd.leaf)] = 1;
      } else if (p.kernel_of[a] >= 0) {
        u.runs[static_cast<std::size_t>(p.kernel_of[a])] = 1;
        if (p.assign[a] >= 0) u.touched[static_cast<std::size_t>(p.assign[a])] = 1;
      } else {
        for (const int x : nd.in)
          if (x >= 0) stack.push_back(x);
      }
    }
    for (const int m : members) inside[static_cast<std::size_t>(m)] = 0;
  }
  return u;
}

}  // namespace shard_detail

// The shards of plan p's optimizer state for `rank` of `ranks`.
inline optimizer_shards shard_optimizer(const plan& p, int ranks, int rank) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw error("kiln: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + " ranks");
  const graph& g = p.g;
  optimizer_shards s;
  s.ranks = ranks;
  s.rank = rank;
  s.owner_of_leaf = shard_detail::owners(p, ranks);
  std::vector<shard_detail::rank_use> use;
  for (int r = 0; r < ranks; ++r) use.push_back(shard_detail::use_of(p, s.owner_of_leaf, r));
  s.reduce_root.assign(static_cast<std::size_t>(g.size), -1);
  for (int i = 0; i < g.size; ++i) {
    if (g.nodes[i].kind != op::all_reduce || g.nodes[i].leaf < 0) continue;
    const int owner = s.owner_of_leaf[static_cast<std::size_t>(g.nodes[i].leaf)];
    bool others_read = false;
    for (int r = 0; r < ranks; ++r) others_read = others_read || (r != owner && use[static_cast<std::size_t>(r)].reads_collective[static_cast<std::size_t>(i)]);
    if (!others_read) s.reduce_root[static_cast<std::size_t>(i)] = owner;
  }
  const shard_detail::rank_use& mine = use[static_cast<std::size_t>(rank)];
  s.runs = mine.runs;
  s.held.assign(static_cast<std::size_t>(g.num_leaves), 1);
  for (int l = 0; l < g.num_leaves; ++l) {
    if (g.leaves[l].kind != leaf_kind::state || g.leaves[l].owner < 0) continue;
    const long n = shard_detail::size_of(g.leaves[l]);
    s.state_floats += n;
    s.held[static_cast<std::size_t>(l)] = mine.touched[static_cast<std::size_t>(l)] || !s.sharded(l);
    if (s.held[static_cast<std::size_t>(l)]) s.state_floats_held += n;
  }
  return s;
}

}  // namespace kiln::cpu
