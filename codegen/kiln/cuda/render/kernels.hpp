#pragma once
// One CUDA kernel per plan kernel (unfused mode, and fused plans the whole-step lowering cannot take):
//   elementwise   grid-stride loop over the domain's elements: body, then stores
//   row_reduce    sum_cols / max_cols: one warp per row, lanes over the columns, butterfly reduction
//   column_sum    sum_rows: blocks of 32 columns x NT/32 row groups; the rows split over gridDim.y blocks whose
//                 partial sums the last block to finish adds up (in a fixed order: deterministic)
//   contraction   tiled GEMM (kiln_rt::block_gemm) over BM x BN output tiles, the contracted dimension split over
//                 gridDim.z when it is long (weight gradients contract the batch); the epilogue roots are
//                 evaluated where each output element is final (in the last block of a split)
//   indexing      gather: a thread per output element; scatter-add: a thread per column j of the table, which
//                 adds its column over the indices in (row, position) order (deterministic, no atomics)
#include <kiln/cuda/render/body.hpp>

#include <cstdint>

namespace kiln::cuda {

enum class launch_kind : std::uint8_t { elementwise, row_reduce, column_sum, contraction, rows, reduce, single_block };

// A kernel of a rendered program and what the host needs to launch it.
struct launch_spec {
  std::string name;          // the extern "C" symbol
  std::string text;          // its source (compiled after the prelude)
  std::string fuses;         // the plan kernels it runs, e.g. "k0" or "k0 k1 k3"
  launch_kind kind = launch_kind::elementwise;
  std::vector<int> buffers;  // buffer ids of its float* parameters, in order (after KILN_PARAMS)
  dims domain{};             // elementwise / row_reduce / column_sum: iteration shape; contraction: [M, N]
  int inner = 0;             // contraction: the contracted dimension K (batch = -1)
  int tile_m = 0, tile_n = 0;  // contraction: output block tile
  int tile_rows = 0;         // rows: batch rows per block tile
  int partial_floats = 0;    // rows / reduce: floats of one block's slice of partial sums
  int shared_floats = 0;     // dynamic shared memory, in floats
};

// "kiln_rt::block_gemm<256, 16, 4, 4, 16, true, false>"
inline std::string gemm_call(int threads, int rm, int rn, const matrix_operand& a, const matrix_operand& b) {
  return std::string("kiln_rt::block_gemm<") + std::to_string(threads) + ", " + std::to_string(gemm_tx) + ", " + std::to_string(rm) +
         std::string(", ") + std::to_string(rn) + ", " + std::to_string(gemm_kc) + ", " +
         (second_index_contiguous(a) ? "true" : "false") + ", " + (second_index_contiguous(b) ? "false" : "true") + ">";
}

inline std::string rows_text(int rows) {
  return rows == batch ? std::string("batch") : std::to_string(rows) + "LL";
}

// The kernel's full text: signature with KILN_PARAMS and one float* per used buffer, then the body.
inline std::string kernel_text(const std::string& name, int threads, const std::string& comment,
                               const std::set<int>& used, const std::string& body, std::vector<int>& buffers) {
  buffers.assign(used.begin(), used.end());
  std::string sig = std::string("extern \"C\" __global__ void __launch_bounds__(") + std::to_string(threads) + ") " + name +
                    "(KILN_PARAMS";
  for (int b : buffers) sig += ", float* " + buffer_name(b);
  return comment + sig + ") {\n" + body + "}\n";
}

inline void check_threads(int threads) {
  if (threads < 64 || threads > 1024 || threads % 32 != 0 || (threads / gemm_tx) * gemm_tx != threads)
    throw error(std::string("kiln cuda: threads per block must be a multiple of 32 in [64, 1024], got ") + std::to_string(threads));
}

// The launch of plan kernel k: `kind` over `domain`, its source the kernel around body `b`, whose buffers are
// `used`. Callers add their kind's extra fields (shared memory, tiles).
inline launch_spec plan_launch(const plan& p, int k, const std::string& name, int threads, launch_kind kind,
                               dims domain, const std::set<int>& used, const std::string& b) {
  launch_spec s;
  s.name = name;
  s.kind = kind;
  s.domain = domain;
  s.text = kernel_text(name, threads, kernel_comment(p, k, ""), used, b, s.buffers);
  return s;
}

inline launch_spec render_elementwise(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  const kernel_view body = view_of(p, kr);
  std::set<int> used;
  const access_fn load = global_access(p, used);
  const std::string C = std::to_string(kr.domain.cols);
  std::string b;
  b += "  const long long total = " + rows_text(kr.domain.rows) + " * " + C + ";\n";
  b += "  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {\n";
  b += "    const long long r = e / " + C + ";\n";
  b += "    const int c = (int)(e - r * " + C + ");\n";
  b += "    (void)r; (void)c;\n";
  b += body_text(p, body, load, "r", "c", "    ");
  b += stores_text(body, global_store(p, used), "r", "c", "    ");
  b += "  }\n";
  return plan_launch(p, k, name, threads, launch_kind::elementwise, kr.domain, used, b);
}

// sum_cols / max_cols: out[r] = reduce over c of x(r, c)
inline launch_spec render_row_reduce(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  const kernel_view body = view_of(p, kr);
  const node& R = p.at(kr.anchor);
  const bool is_max = R.kind == op::max_cols;
  std::set<int> used;
  const access_fn load = global_access(p, used);
  const std::string C = std::to_string(kr.domain.cols);
  std::string b;
  b += "  const long long rows = " + rows_text(kr.domain.rows) + ";\n";
  b += "  const int lane = threadIdx.x & 31;\n";
  b += "  const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;\n";
  b += "  for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {\n";
  b += std::string("    float acc = ") + (is_max ? "-INFINITY" : "0.0f") + ";\n";
  b += "    for (int c = lane; c < " + C + "; c += 32) {\n";
  b += body_text(p, body, load, "r", "c", "      ");
  const std::string x = operand_text(body, R.in[0], load, "r", "c");
  b += std::string("      acc = ") + (is_max ? "km::max(" + x + ", acc)" : "acc + " + x) + ";\n";
  b += "    }\n";
  b += std::string("    acc = kiln_rt::") + (is_max ? "warp_max" : "warp_sum") + "(acc);\n";
  b += "    if (lane == 0) " + global_store(p, used)(kr.anchor, "r", "0") + " = acc;\n";
  b += "  }\n";
  return plan_launch(p, k, name, threads, launch_kind::row_reduce, kr.domain, used, b);
}

// sum_rows: out[c] = sum over r of x(r, c)
inline launch_spec render_column_sum(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  const kernel_view body = view_of(p, kr);
  const node& R = p.at(kr.anchor);
  std::set<int> used;
  const access_fn load = global_access(p, used);
  const store_fn store = global_store(p, used);
  const std::string C = std::to_string(kr.domain.cols), G = std::to_string(threads / 32);
  std::string b;
  b += "  KILN_DYNAMIC_SHARED(smem);\n";
  b += "  const long long rows = " + rows_text(kr.domain.rows) + ";\n";
  b += "  const int lane = threadIdx.x & 31, group = threadIdx.x >> 5;\n";
  b += "  const int c = blockIdx.x * 32 + lane;\n";
  b += "  const long long per = (rows + gridDim.y - 1) / gridDim.y;\n";
  b += "  const long long r_begin = (long long)blockIdx.y * per;\n";
  b += "  const long long r_end = r_begin + per < rows ? r_begin + per : rows;\n";
  b += "  float acc = 0.0f;\n";
  b += "  if (c < " + C + ")\n";
  b += "    for (long long r = r_begin + group; r < r_end; r += " + G + ") {\n";
  b += body_text(p, body, load, "r", "c", "      ");
  b += "      acc += " + operand_text(body, R.in[0], load, "r", "c") + ";\n";
  b += "    }\n";
  b += "  smem[threadIdx.x] = acc;\n";
  b += "  __syncthreads();\n";
  b += "  float total = 0.0f;\n";
  b += "  if (group == 0)\n";
  b += "    for (int g = 0; g < " + G + "; ++g) total += smem[g * 32 + lane];\n";
  b += "  if (gridDim.y == 1) {\n";
  b += "    if (group == 0 && c < " + C + ") " + store(kr.anchor, "0", "c") + " = total;\n";
  b += "    return;\n";
  b += "  }\n";
  b += "  if (group == 0 && c < " + C + ") ws[(long long)blockIdx.y * " + C + " + c] = total;\n";
  b += std::string("  if (kiln_rt::last_block(tickets + blockIdx.x, gridDim.y, smem + ") + std::to_string(threads) + ")) {\n";
  b += "    if (group == 0 && c < " + C + ") {\n";
  b += "      float s = 0.0f;\n";
  b += "      for (unsigned y = 0; y < gridDim.y; ++y) s += KILN_LOAD_CG(ws + (long long)y * " + C + " + c);\n";
  b += "      " + store(kr.anchor, "0", "c") + " = s;\n";
  b += "    }\n";
  b += "  }\n";
  launch_spec s = plan_launch(p, k, name, threads, launch_kind::column_sum, kr.domain, used, b);
  s.shared_floats = threads + 1;
  return s;
}

// C = A·B with the epilogue roots evaluated at each final element (r, c).
inline launch_spec render_contraction(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  const kernel_view body = view_of(p, kr);
  const node& MM = p.at(kr.anchor);
  const matrix_operand A = operand_of(p, MM.in[0]), B = operand_of(p, MM.in[1]);
  if (MM.shape.cols == batch) throw error("kiln cuda: a contraction whose columns are the batch is not supported");
  constexpr int rm = 4, rn = 4;
  const int bm = (threads / gemm_tx) * rm, bn = gemm_tx * rn;
  const int scratch = gemm_scratch_floats(threads, rm, rn);
  std::set<int> used;
  const access_fn load = global_access(p, used);
  const store_fn store = global_store(p, used);
  auto dim_value = [](int d) { return d == batch ? std::string("(int)batch") : std::to_string(d); };
  const std::string epilogue = body_text(p, body, load, "r", "c", "        ") + stores_text(body, store, "r", "c", "        ");
  const std::string epilogue_in_gemm = body_text(p, body, load, "r", "c", "      ") + stores_text(body, store, "r", "c", "      ");
  const std::string gemm = gemm_call(threads, rm, rn, A, B);
  const std::string BM = std::to_string(bm), BN = std::to_string(bn);
  std::string b;
  b += "  KILN_DYNAMIC_SHARED(smem);\n";
  b += "  const int M = " + dim_value(MM.shape.rows) + ", N = " + dim_value(MM.shape.cols) + ", K = " +
       dim_value(A.shape.cols) + ";\n";
  b += "  const int n0 = blockIdx.x * " + BN + ";\n";
  b += "  const int n_count = N - n0 < " + BN + " ? N - n0 : " + BN + ";\n";
  b += std::string("  const int k_per = ((K + (int)gridDim.z - 1) / (int)gridDim.z + ") + std::to_string(gemm_kc - 1) + ") / " +
       std::to_string(gemm_kc) + " * " + std::to_string(gemm_kc) + ";\n";
  b += "  const int k0 = blockIdx.z * k_per;\n";
  b += "  const int k_count = K - k0 < k_per ? (K - k0 > 0 ? K - k0 : 0) : k_per;\n";
  b += "  const long long mn = (long long)M * N;\n";
  b += "  const bool split = gridDim.z > 1;\n";
  b += "  // row tiles beyond gridDim.y's limit (65535) are walked by the same blocks\n";
  b += "  for (int mt = blockIdx.y; mt * " + BM + " < M; mt += gridDim.y) {\n";
  b += "    const int m0 = mt * " + BM + ";\n";
  b += "    const int m_count = M - m0 < " + BM + " ? M - m0 : " + BM + ";\n";
  b += "    auto a = [&](int m, int k) -> float { return " + operand_element(A, load, "m0 + m", "k0 + k") + "; };\n";
  b += "    auto b = [&](int k, int n) -> float { return " + operand_element(B, load, "k0 + k", "n0 + n") + "; };\n";
  b += "    " + gemm + "(smem, m_count, n_count, k_count, a, b, [&](int mi, int ni, float value) {\n";
  b += "      if (split) {\n";
  b += "        ws[blockIdx.z * mn + (long long)(m0 + mi) * N + (n0 + ni)] = value;\n";
  b += "        return;\n";
  b += "      }\n";
  b += "      const int r = m0 + mi, c = n0 + ni;\n";
  b += "      " + store(kr.anchor, "r", "c") + " = value;\n";
  b += epilogue_in_gemm;
  b += "    });\n";
  b += "    if (!split) continue;\n";
  b += "    // a split contraction has few tiles: one per (blockIdx.x, blockIdx.y), its ticket counts the z splits\n";
  b += std::string("    if (kiln_rt::last_block(tickets + mt * gridDim.x + blockIdx.x, gridDim.z, smem + ") +
       std::to_string(scratch) + ")) {\n";
  b += std::string("      for (int i = threadIdx.x; i < m_count * n_count; i += ") + std::to_string(threads) + ") {\n";
  b += "        const int r = m0 + i / n_count, c = n0 + i % n_count;\n";
  b += "        float value = 0.0f;\n";
  b += "        for (unsigned z = 0; z < gridDim.z; ++z) value += KILN_LOAD_CG(ws + z * mn + (long long)r * N + c);\n";
  b += "        " + store(kr.anchor, "r", "c") + " = value;\n";
  b += epilogue;
  b += "      }\n";
  b += "    }\n";
  b += "  }\n";
  launch_spec s = plan_launch(p, k, name, threads, launch_kind::contraction, MM.shape, used, b);
  s.inner = A.shape.cols;
  s.tile_m = bm;
  s.tile_n = bn;
  s.shared_floats = scratch + 1;
  return s;
}

// gather: y[r, c·D + j] = T[idx[r, c], j]; scatter_add: y[v, j] = Σ over idx[r, c] = v of g[r, c·D + j].
inline launch_spec render_indexing(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  const node& nd = p.at(kr.anchor);
  if (ops::is_window_op(nd.kind)) {  // a thread per output element (kiln_window_at in the prelude)
    std::set<int> used;
    const int a_buffer = buffer_of(p, nd.in[0]), out_buffer = buffer_of(p, kr.anchor);
    const bool binary = nd.in[1] >= 0;
    const int b_buffer = binary ? buffer_of(p, nd.in[1]) : 0;  // (buffer ids of nodes are negative)
    used.insert({a_buffer, out_buffer});
    if (binary) used.insert(b_buffer);
    std::string b;
    b += "  const kiln_window w = " + window_initializer(p.g.windows[nd.leaf]) + ";\n";
    b += "  const long long total = (long long)" + rows_text(nd.shape.rows) + " * " + std::to_string(nd.shape.cols) + ";\n";
    b += "  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x)\n";
    b += "    " + buffer_name(out_buffer) + "[e] = kiln_window_at<float>(" + std::to_string(ops::window_code_of(nd.kind)) + ", w, " +
         buffer_name(a_buffer) + ", " + (binary ? buffer_name(b_buffer) : std::string("(const float*)0")) + ", " +
         rows_text(p.at(nd.in[0]).shape.rows) + ", e);\n";
    return plan_launch(p, k, name, threads, launch_kind::elementwise, kr.domain, used, b);
  }
  if (nd.kind == op::all_reduce)
    throw error("kiln cuda: all_reduce (a data-parallel step's gradient sum over ranks) has no CUDA kernel yet; "
                "train data-parallel on the CPU backend");
  std::set<int> used;
  const int in_buffer = buffer_of(p, nd.in[0]), idx_buffer = buffer_of(p, nd.in[1]), out_buffer = buffer_of(p, kr.anchor);
  used.insert({in_buffer, idx_buffer, out_buffer});
  const std::string in = buffer_name(in_buffer), idx = buffer_name(idx_buffer), out = buffer_name(out_buffer);
  const dims ix = p.at(nd.in[1]).shape;
  const std::string positions = "(" + rows_text(ix.rows) + " * " + std::to_string(ix.cols) + ")";
  std::string b;
  if (nd.kind == op::gather) {
    const std::string D = std::to_string(p.at(nd.in[0]).shape.cols);
    b += "  const long long total = " + positions + " * " + D + ";\n";
    b += "  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {\n";
    b += "    const long long i = e / " + D + ";\n";
    b += "    " + out + "[e] = " + in + "[(long long)" + idx + "[i] * " + D + " + (e - i * " + D + ")];\n";
    b += "  }\n";
    return plan_launch(p, k, name, threads, launch_kind::elementwise, kr.domain, used, b);
  }
  const std::string D = std::to_string(nd.shape.cols), V = std::to_string(nd.shape.rows);
  b += "  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < " + D + "; j += gridDim.x * blockDim.x) {\n";
  b += "    for (int v = 0; v < " + V + "; ++v) " + out + "[(long long)v * " + D + " + j] = 0.0f;\n";
  b += "    for (long long i = 0; i < " + positions + "; ++i) " + out + "[(long long)" + idx + "[i] * " + D + " + j] += " + in +
       "[i * " + D + " + j];\n";
  b += "  }\n";
  return plan_launch(p, k, name, threads, launch_kind::elementwise, dims{1, nd.shape.cols}, used, b);
}

// The CUDA kernel of plan kernel k, named `name`.
inline launch_spec render_plan_kernel(const plan& p, int k, const std::string& name, int threads) {
  const kernel& kr = p.kernels[k];
  launch_spec s;
  switch (kr.kind) {
    case kernel_kind::elementwise: s = render_elementwise(p, k, name, threads); break;
    case kernel_kind::contraction: s = render_contraction(p, k, name, threads); break;
    case kernel_kind::indexing: s = render_indexing(p, k, name, threads); break;
    case kernel_kind::reduction:
      s = p.at(kr.anchor).kind == op::sum_rows ? render_column_sum(p, k, name, threads)
                                               : render_row_reduce(p, k, name, threads);
      break;
  }
  s.fuses = std::string("k") + std::to_string(k);
  return s;
}

}  // namespace kiln::cuda
