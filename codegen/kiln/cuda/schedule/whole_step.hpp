#pragma once
// The whole-step schedule of a fused plan: the plan's kernels regrouped into at most four launches by what
// they depend on, with nothing in the layers above special-casing it (render/whole_step.hpp writes them out).
//
//   role of a plan kernel        row              its domain has batch rows and each output row depends only on
//                                                 the same input row (elementwise, sum_cols/max_cols, A·B with
//                                                 A [batch, K] and B a complete matrix)
//                                batch_reduction  sums over the batch (sum_rows of a batch-rowed value, Aᵀ·B with
//                                                 K = batch: weight gradients)
//                                global           no batch dimension (bias updates, the loss scalar, …)
//   stage                        0 pre      global kernels that need nothing computed from the batch
//                                1 rows     row kernels, and the per-block partial sums of batch reductions
//                                2 reduce   batch reductions finished (partials summed over blocks) + epilogues
//                                3 tail     global kernels after that
//
// fused_rows: each block walks tiles of T batch rows; per tile it runs every stage-1 kernel in plan order with
// __syncthreads between them. Batch-rowed intermediates live in shared memory for the tile (first-fit over their
// lifetimes within the tile; whatever does not fit goes to global memory). Batch reductions add the tile's
// contribution to the block's own slice of partial sums (no atomics: deterministic for a given grid).
// fused_reduce: one thread per reduced value sums the blocks' partials in block order, then runs the
// contraction's epilogue (the optimizer update of a weight matrix) on it. fused_pre / fused_tail: one block runs
// the global kernels in plan order with __syncthreads between them.
//
// The reordering is checked: for every pair of plan kernels that touch a common buffer (one writes it), the
// earlier one's stage must not come after the later one's, and two stage-2 kernels may not share a buffer.
// A batch-free elementwise kernel whose roots need different stages (the plan may put 1/batch, needed by the
// backward rows, next to the summed loss) is split by root into a stage-0 and a stage-3 part when the two
// parts touch disjoint buffers. A plan that does not fit (e.g. a row kernel reading a batch reduction, as
// batch normalization would) gets one launch per plan kernel instead; whole_step_plan::why says why.
// An MLP training step (forward, loss, backward, optimizer) takes three launches: rows, reduce, tail.
#include <kiln/cuda/schedule/layout.hpp>
#include <kiln/plan/kernel_view.hpp>

#include <algorithm>

namespace kiln::cuda {

enum class step_role : std::uint8_t { row, batch_reduction, global };

// Buffers a plan kernel (or part of one) reads and writes.
struct kernel_buffers {
  std::set<int> reads, writes;
  bool conflicts_with(const kernel_buffers& o) const {
    for (int b : writes)
      if (o.reads.count(b) || o.writes.count(b)) return true;
    for (int b : reads)
      if (o.writes.count(b)) return true;
    return false;
  }
};

inline kernel_buffers buffers_of(const plan& p, const kernel& kr, const kernel_view& body) {
  kernel_buffers kb;
  auto read = [&](int id) {
    if (ops::class_of(p.at(id).kind) != op_class::immediate || p.materialized[id]) kb.reads.insert(buffer_of(p, id));
  };
  for (int id : body.nodes) {
    const node& n = p.at(id);
    for (int a = 0; a < ops::arity_of(n.kind); ++a)
      if (!body.has(n.in[a])) read(n.in[a]);
  }
  if (kr.kind != kernel_kind::elementwise) {
    const node& anchor = p.at(kr.anchor);
    for (int a = 0; a < ops::arity_of(anchor.kind); ++a)
      if (!body.has(anchor.in[a])) read(anchor.in[a]);
    kb.writes.insert(buffer_of(p, kr.anchor));
  }
  for (int id : body.roots) kb.writes.insert(buffer_of(p, id));
  return kb;
}

// The role of plan kernel k; false and a reason in `why` when the whole-step lowering cannot take it.
inline bool role_of(const plan& p, int k, step_role& role, std::string& why) {
  const kernel& kr = p.kernels[k];
  const std::string label = std::string("k") + std::to_string(k) + " " + kernel_name(p, k);
  switch (kr.kind) {
    case kernel_kind::elementwise:
      role = kr.domain.rows == batch ? step_role::row : step_role::global;
      return true;
    case kernel_kind::reduction:
      if (kr.domain.rows != batch) role = step_role::global;
      else role = p.at(kr.anchor).kind == op::sum_rows ? step_role::batch_reduction : step_role::row;
      return true;
    case kernel_kind::indexing:
      why = label + " is a gather or scatter-add (an embedding), which the whole-step lowering does not take yet";
      return false;
    case kernel_kind::contraction: {
      const node& mm = p.at(kr.anchor);
      const matrix_operand A = operand_of(p, mm.in[0]), B = operand_of(p, mm.in[1]);
      const bool m_batch = mm.shape.rows == batch, k_batch = A.shape.cols == batch;
      if (mm.shape.cols == batch || (m_batch && k_batch)) {
        why = label + " has the batch in more than one dimension";
        return false;
      }
      if (m_batch) {
        if (A.transposed) {
          why = label + " reads its batch-rowed operand transposed";
          return false;
        }
        role = step_role::row;
      } else if (k_batch) {
        if (!A.transposed || B.transposed || p.at(A.source).shape.rows != batch || p.at(B.source).shape.rows != batch) {
          why = label + " contracts the batch but not as Xᵀ·Y of two batch-rowed values";
          return false;
        }
        role = step_role::batch_reduction;
      } else {
        role = step_role::global;
      }
      return true;
    }
  }
  return false;
}

// What the whole-step kernels run: a plan kernel, or the part of a batch-free elementwise kernel that some of
// its roots need (when its roots need different stages, e.g. 1/batch next to the loss).
struct step_item {
  int kernel = -1;
  kernel_view body;
  step_role role = step_role::global;
  int stage = 0;
  kernel_buffers buffers;
  int partial_offset = 0;      // batch reductions: where its partials start in a block's slice
  int gemm_rm = 0, gemm_rn = 0;  // rows-kernel contractions: block_gemm register tile
};

// A batch-rowed value the rows kernel keeps in shared memory for the current tile.
struct tile_slot {
  int node = -1;
  int first = 0, last = 0;  // phases (indices into whole_step_plan::phases) that write / last read it
  int floats = 0;           // T · cols, rounded up to 4
  int offset = -1;          // in floats from the start of the tiles area; -1: global memory
};

struct whole_step_plan {
  bool ok = false;
  std::string why;                 // when !ok: the first kernel or dependency that does not fit
  std::vector<step_item> items;    // in plan order
  std::vector<int> phases;         // items of stages 1 and 2, in order: what the rows kernel runs per tile
  int tile_rows = 0;
  std::vector<tile_slot> slots;    // candidates for shared memory and where they went
  int scratch_floats = 0;          // block_gemm staging area at the start of shared memory
  int tiles_floats = 0;            // shared memory for the slots that fit
  int partial_floats = 0;          // one block's slice of partial sums

  const tile_slot* slot_of(int node_id) const {
    for (const tile_slot& s : slots)
      if (s.node == node_id && s.offset >= 0) return &s;
    return nullptr;
  }
  bool has_stage(int s) const {
    for (const step_item& i : items)
      if (i.stage == s) return true;
    return false;
  }
};

inline int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }
inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// The latest stage among the earlier items that share a buffer with `b` (one writing it), and which item.
inline int required_stage(const std::vector<step_item>& items, const kernel_buffers& b, int& which) {
  int required = 0;
  which = -1;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (items[i].buffers.conflicts_with(b) && items[i].stage >= required) {
      required = items[i].stage;
      which = static_cast<int>(i);
    }
  return required;
}

// Items and stages, with the dependency checks described above.
inline bool assign_stages(const plan& p, whole_step_plan& w) {
  for (int k = 0; k < p.num_kernels; ++k) {
    const kernel& kr = p.kernels[k];
    step_item item;
    item.kernel = k;
    if (!role_of(p, k, item.role, w.why)) return false;
    item.body = view_of(p, kr);
    item.buffers = buffers_of(p, kr, item.body);
    int which = -1;
    const int required = required_stage(w.items, item.buffers, which);
    const std::string label = std::string("k") + std::to_string(k) + " " + kernel_name(p, k);
    const std::string after = which < 0 ? "" : std::string("k") + std::to_string(w.items[which].kernel) + " " + kernel_name(p, w.items[which].kernel);
    if (item.role != step_role::global) {
      if (required > 1) {
        w.why = label + (item.role == step_role::row ? " works on batch rows" : " sums over the batch") +
                " but depends on " + after + ", which needs the whole batch first";
        return false;
      }
      item.stage = item.role == step_role::row ? 1 : 2;
      w.items.push_back(item);
      continue;
    }
    item.stage = required == 0 ? 0 : 3;
    if (item.stage == 3 && kr.kind == kernel_kind::elementwise && item.body.roots.size() > 1) {
      // roots that need nothing from the batch run before the rows kernel, unless the two parts touch each
      // other's buffers (a root's body reading a leaf another root overwrites must see the old value)
      std::vector<int> early, late;
      for (int root : item.body.roots) {
        const kernel_view b = view_for_roots(p, kr, {root});
        int unused = -1;
        (required_stage(w.items, buffers_of(p, kr, b), unused) == 0 ? early : late).push_back(root);
      }
      if (!early.empty()) {
        step_item first = item, second = item;
        first.body = view_for_roots(p, kr, early);
        first.buffers = buffers_of(p, kr, first.body);
        first.stage = 0;
        second.body = view_for_roots(p, kr, late);
        second.buffers = buffers_of(p, kr, second.body);
        if (!first.buffers.conflicts_with(second.buffers)) {
          w.items.push_back(first);
          w.items.push_back(second);
          continue;
        }
      }
    }
    w.items.push_back(item);
  }
  for (std::size_t i = 0; i < w.items.size(); ++i)
    if (w.items[i].stage == 2)
      for (std::size_t j = i + 1; j < w.items.size(); ++j)
        if (w.items[j].stage == 2 && w.items[i].buffers.conflicts_with(w.items[j].buffers)) {
          w.why = std::string("k") + std::to_string(w.items[i].kernel) + " and k" + std::to_string(w.items[j].kernel) +
                  " finish batch reductions that share a buffer";
          return false;
        }
  return true;
}

// block_gemm register tiles of the rows kernel's contractions for tile size T.
inline void choose_gemm_tiles(const plan& p, whole_step_plan& w, int threads) {
  const int ty = threads / gemm_tx;
  w.scratch_floats = 0;
  for (int f : w.phases) {
    step_item& it = w.items[static_cast<std::size_t>(f)];
    const kernel& kr = p.kernels[it.kernel];
    if (kr.kind != kernel_kind::contraction) continue;
    const node& mm = p.at(kr.anchor);
    if (it.role == step_role::row) {
      it.gemm_rm = clamp_int(ceil_div(w.tile_rows, ty), 1, 8);
      it.gemm_rn = clamp_int(ceil_div(mm.shape.cols, gemm_tx), 1, 8);
    } else {
      it.gemm_rm = clamp_int(ceil_div(mm.shape.rows, ty), 1, 4);
      it.gemm_rn = clamp_int(ceil_div(mm.shape.cols, gemm_tx), 1, 8);
    }
    w.scratch_floats = std::max(w.scratch_floats, gemm_scratch_floats(threads, it.gemm_rm, it.gemm_rn));
  }
  w.scratch_floats = (w.scratch_floats + 3) / 4 * 4;
}

// First-fit placement of the tile slots in `budget` floats: a slot may share space with slots whose phase
// intervals do not overlap (every phase ends with __syncthreads). Returns whether every slot fit.
inline bool place_slots(std::vector<tile_slot>& slots, int budget, int& used) {
  used = 0;
  bool all = true;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    tile_slot& s = slots[i];
    int offset = 0;
    for (bool moved = true; moved;) {
      moved = false;
      for (std::size_t j = 0; j < i; ++j) {
        const tile_slot& o = slots[j];
        if (o.offset < 0 || o.last < s.first || s.last < o.first) continue;  // not placed, or not alive together
        if (offset < o.offset + o.floats && o.offset < offset + s.floats) {
          offset = o.offset + o.floats;
          moved = true;
        }
      }
    }
    if (offset + s.floats <= budget) {
      s.offset = offset;
      used = std::max(used, offset + s.floats);
    } else {
      s.offset = -1;
      all = false;
    }
  }
  return all;
}

// The stage-1 batch-rowed intermediates: written by a rows-kernel phase, read only there, not a graph output.
inline std::vector<tile_slot> slot_candidates(const plan& p, const whole_step_plan& w, int tile_rows) {
  std::vector<tile_slot> out;
  for (std::size_t f = 0; f < w.phases.size(); ++f) {
    const step_item& it = w.items[static_cast<std::size_t>(w.phases[f])];
    if (it.role != step_role::row) continue;
    std::vector<int> written = it.body.roots;
    const kernel& kr = p.kernels[it.kernel];
    if (kr.kind != kernel_kind::elementwise) written.push_back(kr.anchor);
    for (int id : written) {
      const node& n = p.at(id);
      if (n.shape.rows != batch || p.is_output[id] || p.assign[id] >= 0) continue;
      const int b = buffer_of(p, id);
      tile_slot s;
      s.node = id;
      s.first = s.last = static_cast<int>(f);
      bool outside = false;
      for (std::size_t j = 0; j < w.items.size(); ++j) {
        if (static_cast<int>(j) == w.phases[f] || !w.items[j].buffers.reads.count(b)) continue;
        const auto at = std::find(w.phases.begin(), w.phases.end(), static_cast<int>(j));
        if (at == w.phases.end()) outside = true;
        else s.last = std::max(s.last, static_cast<int>(at - w.phases.begin()));
      }
      if (outside) continue;
      s.floats = (tile_rows * n.shape.cols + 3) / 4 * 4;
      out.push_back(s);
    }
  }
  return out;
}

// Analyses a fused plan for the whole-step lowering. shared_floats: dynamic shared memory per block.
inline whole_step_plan plan_whole_step(const plan& p, int threads, int shared_floats, int tile_rows_option) {
  whole_step_plan w;
  if (!assign_stages(p, w)) return w;
  int offset = 0;
  for (std::size_t i = 0; i < w.items.size(); ++i) {
    step_item& it = w.items[i];
    if (it.stage != 1 && it.stage != 2) continue;
    w.phases.push_back(static_cast<int>(i));
    if (it.role == step_role::batch_reduction) {
      it.partial_offset = offset;
      const dims s = p.at(p.kernels[it.kernel].anchor).shape;
      offset += s.rows * s.cols;
    }
  }
  w.partial_floats = (offset + 31) / 32 * 32;
  const std::vector<int> sizes = tile_rows_option > 0 ? std::vector<int>{tile_rows_option} : std::vector<int>{128, 64, 32};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    w.tile_rows = sizes[i];
    choose_gemm_tiles(p, w, threads);
    w.slots = slot_candidates(p, w, w.tile_rows);
    const int budget = shared_floats - w.scratch_floats;
    if (budget < 0) {
      if (i + 1 < sizes.size()) continue;
      w.why = std::string("the GEMM staging area alone exceeds the shared memory budget of ") + std::to_string(shared_floats * 4) + " bytes";
      return w;
    }
    if (place_slots(w.slots, budget, w.tiles_floats) || i + 1 == sizes.size()) break;
  }
  w.ok = true;
  return w;
}

}  // namespace kiln::cuda
