#pragma once
// The whole-step launches as CUDA source: the rows kernel (tiles of batch rows, intermediates in shared memory),
// the reduce kernel and the single-block pre/tail kernels, from the schedule of schedule/whole_step.hpp.
#include <kiln/cuda/render/kernels.hpp>
#include <kiln/cuda/schedule/whole_step.hpp>

#include <algorithm>

namespace kiln::cuda {

namespace detail {

// Accessors of the rows kernel: batch-rowed values at tile row r (0 ≤ r < rows), from shared memory when they
// have a slot, else from global memory at row0 + r.
struct rows_access {
  const plan& p;
  const whole_step_plan& w;
  std::set<int>& used;

  std::string tile_name(int id) const { return std::string("S") + std::to_string(id); }
  std::string load(int id, const std::string& r, const std::string& c) const {
    const node& n = p.at(id);
    const std::string row = n.shape.rows == batch ? "row0 + " + r : r;  // the tensor's row of tile row r
    if (ops::class_of(n.kind) == op_class::immediate && !p.materialized[id]) return immediate_text(n, row, c);
    if (n.shape.rows == batch && w.slot_of(id)) return tile_name(id) + "[" + index_text(n.shape, r, c) + "]";
    const int b = buffer_of(p, id);
    used.insert(b);
    return buffer_name(b) + "[" + index_text(n.shape, row, c) + "]";
  }
  access_fn loader() const {
    return [this](int id, const std::string& r, const std::string& c) { return load(id, r, c); };
  }
  store_fn storer() const { return loader(); }  // the same lvalue text
};

inline std::string item_comment(const plan& p, const step_item& it, const std::string& indent) {
  std::string c = kernel_comment(p, it.kernel, indent);
  const kernel& kr = p.kernels[it.kernel];
  if (static_cast<int>(it.body.roots.size()) != kr.store_end - kr.store_begin) {
    c += indent + "//   (this part: the roots";
    for (int r : it.body.roots) c += std::string(" n") + std::to_string(r);
    c += ")\n";
  }
  return c;
}

inline std::string phase_rows(const plan& p, const step_item& it, const rows_access& ra, int threads) {
  const kernel& kr = p.kernels[it.kernel];
  const kernel_view& body = it.body;
  const access_fn load = ra.loader();
  const store_fn store = ra.storer();
  const std::string T = std::to_string(threads);
  std::string b = item_comment(p, it, "    ");
  if (it.role == step_role::batch_reduction) {
    const std::string part = std::string("part[") + std::to_string(it.partial_offset) + " + ";
    if (kr.kind == kernel_kind::reduction) {  // sum_rows: this tile's column sums
      const node& R = p.at(kr.anchor);
      const std::string C = std::to_string(kr.domain.cols);
      b += "    for (int c = threadIdx.x; c < " + C + "; c += " + T + ") {\n";
      b += "      float acc = 0.0f;\n";
      b += "      for (int r = 0; r < rows; ++r) {\n";
      b += body_text(p, body, load, "r", "c", "        ", "row0");
      b += "        acc += " + operand_text(body, R.in[0], load, "r", "c") + ";\n";
      b += "      }\n";
      b += "      " + part + "c] += acc;\n";
      b += "    }\n";
    } else {  // Xᵀ·Y over this tile's rows: the tile rows are the contracted dimension
      const node& mm = p.at(kr.anchor);
      const matrix_operand A = operand_of(p, mm.in[0]), B = operand_of(p, mm.in[1]);
      b += "    {\n";
      b += "      auto a = [&](int m, int k) -> float { return " + operand_element(A, load, "m", "k") + "; };\n";
      b += "      auto b = [&](int k, int n) -> float { return " + operand_element(B, load, "k", "n") + "; };\n";
      b += "      " + gemm_call(threads, it.gemm_rm, it.gemm_rn, A, B) + "(smem, " + std::to_string(mm.shape.rows) +
           std::string(", ") + std::to_string(mm.shape.cols) + ", rows, a, b, [&](int m, int n, float value) {\n";
      b += "        " + part + "m * " + std::to_string(mm.shape.cols) + " + n] += value;\n";
      b += "      });\n";
      b += "    }\n";
    }
    return b + "    __syncthreads();\n";
  }
  switch (kr.kind) {
    case kernel_kind::elementwise: {
      const std::string C = std::to_string(kr.domain.cols);
      b += "    for (int e = threadIdx.x; e < rows * " + C + "; e += " + T + ") {\n";
      b += "      const int r = e / " + C + ", c = e - r * " + C + ";\n";
      b += "      (void)r; (void)c;\n";
      b += body_text(p, body, load, "r", "c", "      ", "row0");
      b += stores_text(body, store, "r", "c", "      ");
      b += "    }\n";
      break;
    }
    case kernel_kind::reduction: {  // sum_cols / max_cols: one warp per row
      const node& R = p.at(kr.anchor);
      const bool is_max = R.kind == op::max_cols;
      b += std::string("    for (int r = threadIdx.x >> 5; r < rows; r += ") + std::to_string(threads / 32) + ") {\n";
      b += std::string("      float acc = ") + (is_max ? "-INFINITY" : "0.0f") + ";\n";
      b += std::string("      for (int c = (int)(threadIdx.x & 31); c < ") + std::to_string(kr.domain.cols) + "; c += 32) {\n";
      b += body_text(p, body, load, "r", "c", "        ", "row0");
      const std::string x = operand_text(body, R.in[0], load, "r", "c");
      b += std::string("        acc = ") + (is_max ? "km::max(" + x + ", acc)" : "acc + " + x) + ";\n";
      b += "      }\n";
      b += std::string("      acc = kiln_rt::") + (is_max ? "warp_max" : "warp_sum") + "(acc);\n";
      b += "      if ((threadIdx.x & 31) == 0) " + store(kr.anchor, "r", "0") + " = acc;\n";
      b += "    }\n";
      break;
    }
    case kernel_kind::contraction: {  // this tile's rows of A·B, then the epilogue on each element
      const node& mm = p.at(kr.anchor);
      const matrix_operand A = operand_of(p, mm.in[0]), B = operand_of(p, mm.in[1]);
      b += "    {\n";
      b += "      auto a = [&](int m, int k) -> float { return " + operand_element(A, load, "m", "k") + "; };\n";
      b += "      auto b = [&](int k, int n) -> float { return " + operand_element(B, load, "k", "n") + "; };\n";
      b += "      " + gemm_call(threads, it.gemm_rm, it.gemm_rn, A, B) + "(smem, rows, " +
           std::to_string(mm.shape.cols) + ", " + std::to_string(A.shape.cols) + ", a, b, [&](int r, int c, float value) {\n";
      b += "        " + store(kr.anchor, "r", "c") + " = value;\n";
      b += body_text(p, body, load, "r", "c", "        ", "row0");
      b += stores_text(body, store, "r", "c", "        ");
      b += "      });\n";
      b += "    }\n";
      break;
    }
    case kernel_kind::indexing:  // refused by the whole-step pass (schedule/whole_step.hpp, role_of)
      throw error("kiln cuda: an indexing kernel in a whole-step phase");
  }
  return b + "    __syncthreads();\n";
}

// A global (batch-free) plan kernel run by one block.
inline std::string phase_single_block(const plan& p, const step_item& it, std::set<int>& used, int threads) {
  const kernel& kr = p.kernels[it.kernel];
  const kernel_view& body = it.body;
  const access_fn load = global_access(p, used);
  const store_fn store = global_store(p, used);
  const std::string T = std::to_string(threads);
  std::string b = item_comment(p, it, "  ");
  switch (kr.kind) {
    case kernel_kind::elementwise: {
      const std::string C = std::to_string(kr.domain.cols);
      b += std::string("  for (int e = threadIdx.x; e < ") + std::to_string(kr.domain.rows) + " * " + C + "; e += " + T + ") {\n";
      b += "    const int r = e / " + C + ", c = e - r * " + C + ";\n";
      b += "    (void)r; (void)c;\n";
      b += body_text(p, body, load, "r", "c", "    ");
      b += stores_text(body, store, "r", "c", "    ");
      b += "  }\n";
      break;
    }
    case kernel_kind::reduction: {
      const node& R = p.at(kr.anchor);
      const std::string x = operand_text(body, R.in[0], load, "r", "c");
      const std::string rows = std::to_string(kr.domain.rows), cols = std::to_string(kr.domain.cols);
      if (R.kind == op::sum_rows) {
        b += "  for (int c = threadIdx.x; c < " + cols + "; c += " + T + ") {\n";
        b += "    float acc = 0.0f;\n";
        b += "    for (int r = 0; r < " + rows + "; ++r) {\n";
      } else {
        b += "  for (int r = threadIdx.x; r < " + rows + "; r += " + T + ") {\n";
        b += std::string("    float acc = ") + (R.kind == op::max_cols ? "-INFINITY" : "0.0f") + ";\n";
        b += "    for (int c = 0; c < " + cols + "; ++c) {\n";
      }
      b += body_text(p, body, load, "r", "c", "      ");
      b += std::string("      acc = ") + (R.kind == op::max_cols ? "km::max(" + x + ", acc)" : "acc + " + x) + ";\n";
      b += "    }\n";
      b += "    " + store(kr.anchor, R.kind == op::sum_rows ? "0" : "r", R.kind == op::sum_rows ? "c" : "0") + " = acc;\n";
      b += "  }\n";
      break;
    }
    case kernel_kind::contraction: {
      const node& mm = p.at(kr.anchor);
      const matrix_operand A = operand_of(p, mm.in[0]), B = operand_of(p, mm.in[1]);
      b += "  {\n";
      b += "    auto a = [&](int m, int k) -> float { return " + operand_element(A, load, "m", "k") + "; };\n";
      b += "    auto b = [&](int k, int n) -> float { return " + operand_element(B, load, "k", "n") + "; };\n";
      b += "    " + gemm_call(threads, 4, 4, A, B) + "(smem, " + std::to_string(mm.shape.rows) + ", " +
           std::to_string(mm.shape.cols) + ", " + std::to_string(A.shape.cols) + ", a, b, [&](int r, int c, float value) {\n";
      b += "      " + store(kr.anchor, "r", "c") + " = value;\n";
      b += body_text(p, body, load, "r", "c", "      ");
      b += stores_text(body, store, "r", "c", "      ");
      b += "    });\n";
      b += "  }\n";
      break;
    }
    case kernel_kind::indexing:  // refused by the whole-step pass (schedule/whole_step.hpp, role_of)
      throw error("kiln cuda: an indexing kernel in a whole-step phase");
  }
  return b + "  __syncthreads();\n";
}

}  // namespace detail

// "k0 k1 k3": the plan kernels of a stage (stage 1 also lists the batch reductions it accumulates).
inline std::string stage_kernels(const whole_step_plan& w, int stage) {
  std::string s;
  int last = -1;
  for (const step_item& it : w.items)
    if ((it.stage == stage || (stage == 1 && it.stage == 2)) && it.kernel != last) {
      s += std::string(s.empty() ? "k" : " k") + std::to_string(it.kernel);
      last = it.kernel;
    }
  return s;
}

inline launch_spec render_fused_rows(const plan& p, const whole_step_plan& w, const std::string& name, int threads) {
  std::set<int> used;
  const detail::rows_access ra{p, w, used};
  const std::string T = std::to_string(w.tile_rows);
  std::string comment = "// fused whole step, stage 1 (" + stage_kernels(w, 1) + "): tiles of " + T +
                        " batch rows per block; per tile every row-local plan kernel in order, and each batch\n"
                        "// reduction's contribution added to this block's slice of partial sums (finished by the reduce kernel).\n"
                        "// on chip:";
  std::string global_list;
  for (const tile_slot& s : w.slots)
    (s.offset >= 0 ? comment : global_list) += std::string(" n") + std::to_string(s.node);
  comment += global_list.empty() ? "\n" : "\n// in global memory:" + global_list + "\n";
  std::string b;
  b += "  KILN_DYNAMIC_SHARED(smem);\n";
  for (const tile_slot& s : w.slots)
    if (s.offset >= 0)
      b += "  float* const " + ra.tile_name(s.node) + " = smem + " + std::to_string(w.scratch_floats + s.offset) +
           std::string(";  // n") + std::to_string(s.node) + " " + dims_text(p.at(s.node).shape) + ", phases " +
           std::to_string(s.first) + "-" + std::to_string(s.last) + "\n";
  b += std::string("  float* const part = ws + (long long)blockIdx.x * ") + std::to_string(w.partial_floats) + ";\n";
  b += std::string("  for (int i = threadIdx.x; i < ") + std::to_string(w.partial_floats) + "; i += " + std::to_string(threads) +
       ") part[i] = 0.0f;\n";
  b += "  __syncthreads();\n";
  b += "  const long long tiles = (batch + " + T + " - 1) / " + T + ";\n";
  b += "  for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {\n";
  b += "    const long long row0 = tile * " + T + ";\n";
  b += "    const int rows = batch - row0 < " + T + " ? (int)(batch - row0) : " + T + ";\n";
  for (int f : w.phases) b += detail::phase_rows(p, w.items[static_cast<std::size_t>(f)], ra, threads);
  b += "  }\n";
  launch_spec s;
  s.name = name;
  s.kind = launch_kind::rows;
  s.fuses = stage_kernels(w, 1);
  s.tile_rows = w.tile_rows;
  s.partial_floats = w.partial_floats;
  s.shared_floats = w.scratch_floats + w.tiles_floats;
  s.text = kernel_text(name, threads, comment, used, b, s.buffers);
  return s;
}

inline launch_spec render_fused_reduce(const plan& p, const whole_step_plan& w, const std::string& name, int threads) {
  std::set<int> used;
  const access_fn load = global_access(p, used);
  const store_fn store = global_store(p, used);
  std::string b;
  long long total = 0;
  std::string branches;
  for (const step_item& it : w.items) {
    if (it.stage != 2) continue;
    const kernel& kr = p.kernels[it.kernel];
    const kernel_view& body = it.body;
    const dims s = p.at(kr.anchor).shape;
    const long long begin = total;
    total += static_cast<long long>(s.rows) * s.cols;
    const std::string N = std::to_string(s.cols);
    branches += std::string(branches.empty() ? "    if" : "    } else if") + " (e < " + std::to_string(total) + "LL) {\n";
    branches += detail::item_comment(p, it, "      ");
    branches += std::string("      const int i = (int)(e - ") + std::to_string(begin) + "LL);\n";
    branches += "      const int r = i / " + N + ", c = i - r * " + N + ";\n";
    branches += "      (void)r; (void)c;\n";
    branches += "      float value = 0.0f;\n";
    branches += std::string("      for (int blk = 0; blk < ws_blocks; ++blk) value += ws[(long long)blk * ") +
                std::to_string(w.partial_floats) + " + " + std::to_string(it.partial_offset) + " + i];\n";
    branches += "      " + store(kr.anchor, "r", "c") + " = value;\n";
    if (kr.kind == kernel_kind::contraction) {
      branches += body_text(p, body, load, "r", "c", "      ");
      branches += stores_text(body, store, "r", "c", "      ");
    }
  }
  b += std::string("  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < ") + std::to_string(total) +
       "LL; e += (long long)gridDim.x * blockDim.x) {\n";
  b += branches + "    }\n  }\n";
  const std::string comment = "// fused whole step, stage 2 (" + stage_kernels(w, 2) +
                              "): each batch reduction's partial sums added over the blocks of the rows kernel (in block\n"
                              "// order), then its epilogue (the optimizer update of a weight matrix) on the final value.\n";
  launch_spec s;
  s.name = name;
  s.kind = launch_kind::reduce;
  s.fuses = stage_kernels(w, 2);
  s.domain = dims{1, static_cast<int>(total)};
  s.partial_floats = w.partial_floats;
  s.text = kernel_text(name, threads, comment, used, b, s.buffers);
  return s;
}

inline launch_spec render_single_block(const plan& p, const whole_step_plan& w, int stage, const std::string& name,
                                       int threads) {
  std::set<int> used;
  std::string b = "  KILN_DYNAMIC_SHARED(smem);\n  (void)smem;\n";
  int scratch = 1;
  for (const step_item& it : w.items) {
    if (it.stage != stage) continue;
    b += detail::phase_single_block(p, it, used, threads);
    if (p.kernels[it.kernel].kind == kernel_kind::contraction) scratch = std::max(scratch, gemm_scratch_floats(threads, 4, 4));
  }
  const std::string comment = std::string("// fused whole step, stage ") + (stage == 0 ? "0" : "3") + " (" +
                              stage_kernels(w, stage) + "): the batch-free plan kernels " +
                              (stage == 0 ? "the rows kernel needs" : "after the batch reductions") +
                              ", in plan order, by one block.\n";
  launch_spec s;
  s.name = name;
  s.kind = launch_kind::single_block;
  s.fuses = stage_kernels(w, stage);
  s.shared_floats = scratch;
  s.text = kernel_text(name, threads, comment, used, b, s.buffers);
  return s;
}

}  // namespace kiln::cuda
