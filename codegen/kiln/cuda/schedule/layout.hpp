#pragma once
// Where a CUDA step keeps its values and how its contractions are tiled: facts that the whole-step schedule
// (schedule/whole_step.hpp) decides with and the renderers (render/) write out.
#include <kiln/ops/registry.hpp>
#include <kiln/plan/plan.hpp>

namespace kiln::cuda {

// A buffer is a leaf's storage (inputs, parameters, optimizer state; values assigned in place to a leaf use
// the leaf's buffer) or a materialized node's own storage. Ids: leaf l -> l; node i -> −1 − i.
inline constexpr int node_buffer(int node_id) { return -1 - node_id; }
inline constexpr int node_of_buffer(int buffer) { return -1 - buffer; }

inline int buffer_of(const plan& p, int node_id) {
  const node& n = p.at(node_id);
  if (n.kind == op::transpose) return buffer_of(p, n.in[0]);  // a view
  if (ops::class_of(n.kind) == op_class::leaf) return n.leaf;
  if (p.assign[node_id] >= 0) return p.assign[node_id];
  return node_buffer(node_id);
}
inline bool is_leaf_buffer(int buffer) { return buffer >= 0; }
// The operand of a contraction read as a matrix: `source` is the node holding the data (the transpose's input
// for a transposed operand); element (i, j) of the operand is source(i, j), or source(j, i) when transposed.
struct matrix_operand {
  int source = -1;
  bool transposed = false;
  dims shape{};  // the operand's shape as the contraction sees it
};
inline matrix_operand operand_of(const plan& p, int id) {
  const node& n = p.at(id);
  if (n.kind == op::transpose) return {n.in[0], true, n.shape};
  return {id, false, n.shape};
}

// Whether walking the operand's second index (k for A, n for B) moves through contiguous memory.
inline bool second_index_contiguous(const matrix_operand& o) { return !o.transposed; }

inline constexpr int gemm_kc = 16;  // k values staged per step of kiln_rt::block_gemm
inline constexpr int gemm_tx = 16;  // threads along n in a block_gemm block

// Shared-memory floats of kiln_rt::block_gemm<NT, 16, RM, RN, 16>.
inline int gemm_scratch_floats(int threads, int rm, int rn) {
  return gemm_kc * ((threads / gemm_tx) * rm + 1) + gemm_kc * (gemm_tx * rn + 1);
}

}  // namespace kiln::cuda
