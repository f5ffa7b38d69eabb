#pragma once
// Contraction kernels: C = A·B (every matrix product of a plan), then the elementwise body fused behind it (the
// epilogue) on each block of C while that block is in cache.
//
// One driver, not a template, serves every contraction kernel of every plan: a kernel passes its operands and
// a pointer to its epilogue, the one part that differs between kernels. Instantiated per kernel, this code
// (the thread split, the packing and the FP32 and BF16 GEMM calls) was a third of the machine code of a test
// of a hundred models, and of the time g++ spent optimizing it. The epilogue is called once per block of up to
// gemm_row_block rows, so the indirect call costs nothing measurable.
#include <kiln/cpu/context.hpp>
#include <kiln/cpu/gemm.hpp>
#include <kiln/cpu/gemm_bf16.hpp>

#include <algorithm>

// One out-of-line copy of the driver: GCC would otherwise clone it per call site's constants (IPA-CP) and inline
// the GEMMs into each clone; clang knows no noipa and does not clone it.
#if defined(__clang__)
#define KILN_ONE_COPY [[gnu::noinline]]
#else
#define KILN_ONE_COPY [[gnu::noipa]]
#endif

namespace kiln::cpu {

// The epilogue on rows [r0, r1) × columns [j0, j1) of C.
using epilogue_fn = void (*)(const context&, long r0, long r1, long j0, long j1);

// One contraction kernel: C[M, N] = A[M, Kd]·B[Kd, N], C row-major with N columns.
struct contraction {
  matrix_view A, B;
  float* C;
  long M, N, Kd;
  bool contracts_batch;  // Kd is the batch (a weight gradient): the work may be split by slices of it
  int epilogue_ops;      // the epilogue's number of ops, its work per element of C
  epilogue_fn epilogue;
};

namespace contraction_detail {

// C[r0:r1, j0:j1] = A[r0:r1, :]·B[:, j0:j1] in row blocks, each block's epilogue run right after its GEMM
// while the block is in cache. B's columns are packed once here and reused by every row block, unless the
// caller passes all of B already packed (shared_packed_b, then j0 = 0 and j1 = N).
KILN_ONE_COPY inline void tile(const context& c, const contraction& k, long r0, long r1, long j0, long j1, int thread,
                 const float* shared_packed_b = nullptr) {
  const matrix_view A = k.A, B = k.B;
  const long N = k.N, Kd = k.Kd;
  float* ws = c.gemm_ws + thread * c.gemm_ws_stride;
  float* packed = gemm_detail::align64(ws);
  const long n = j1 - j0;
  const matrix_view b{B.p + j0 * B.col_stride, B.row_stride, B.col_stride};
  if (c.products != bf16_path::fp32) {  // BF16 products: B converted and packed once, A per row block
    if (!shared_packed_b) gemm_bf16_pack_b(n, Kd, b, packed);
    const float* packed_b = shared_packed_b ? shared_packed_b : packed;
    float* a_ws = gemm_detail::align64(packed + gemm_bf16_packed_b_floats(n, Kd));
    for (long r = r0; r < r1; r += gemm_row_block) {
      const long e = std::min(r1, r + gemm_row_block);
      const matrix_view a{A.p + r * A.row_stride, A.row_stride, A.col_stride};
      gemm_bf16_prepacked(c.products, e - r, n, Kd, a, packed_b, k.C + r * N + j0, N, false, a_ws);
      k.epilogue(c, r, e, j0, j1);
    }
    return;
  }
  // A row-major B is read in place by a task of at most two row blocks (see gemm_b_in_place): the
  // classifier's first weight gradient split over 2 threads is 64 rows a task.
  const bool b_in_place = B.col_stride == 1 && r1 - r0 <= 2 * gemm_row_block;
  const float* packed_b = shared_packed_b;  // B packed: by the caller, or here for the first block that packs
  for (long r = r0; r < r1; r += gemm_row_block) {
    const long e = std::min(r1, r + gemm_row_block);
    const matrix_view a{A.p + r * A.row_stride, A.row_stride, A.col_stride};
    float* out = k.C + r * N + j0;
    const bool packs = gemm_packs_b(e - r, n, Kd, a, b);
    // with a shared B every block uses it: gemm's own packing would overwrite it in thread 0's workspace
    if (shared_packed_b || (packs && !b_in_place)) {
      if (!packed_b) {
        gemm_pack_b(n, Kd, b, packed);
        packed_b = packed;
      }
      gemm_prepacked(e - r, n, Kd, a, packed_b, out, N, false, gemm_a_workspace(packed, n, Kd));
    } else if (packs) {
      gemm_b_in_place(e - r, n, Kd, a, b, out, N, false, gemm_a_workspace(packed, n, Kd));
    } else {
      gemm(e - r, n, Kd, a, b, out, N, false, ws);
    }
    k.epilogue(c, r, e, j0, j1);  // the epilogue on this block, while it is in cache
  }
}

// C = Σ over thread slices of the batch of A[:, slice]·B[slice, :], then the epilogue.
KILN_ONE_COPY inline void batch_split(const context& c, const contraction& k) {
  const long M = k.M, N = k.N, Kd = k.Kd;
  const int tasks = c.pool->num_threads();
  const long chunk = (Kd + tasks - 1) / tasks;
  c.pool->parallel_for(tasks, [&](int t, int thread) {
    const long k0 = std::min(Kd, t * chunk), k1 = std::min(Kd, k0 + chunk);
    float* part = c.ksplit_ws + t * c.ksplit_ws_stride;
    const matrix_view a{k.A.p + k0 * k.A.col_stride, k.A.row_stride, k.A.col_stride};
    const matrix_view b{k.B.p + k0 * k.B.row_stride, k.B.row_stride, k.B.col_stride};
    gemm_bf16(c.products, M, N, k1 - k0, a, b, part, N, false, c.gemm_ws + thread * c.gemm_ws_stride);
  });
  // the partials' sum and the epilogue in one pass over row ranges: each row is summed, then its
  // epilogue runs while it is in cache
  parallel_range(c, M, N * (tasks + k.epilogue_ops + 1), 1, [&](long b, long e, int) {
    for (long i = b * N; i < e * N; ++i) {
      float s = 0;
      for (int t = 0; t < tasks; ++t) s += c.ksplit_ws[t * c.ksplit_ws_stride + i];
      k.C[i] = s;
    }
    k.epilogue(c, b, e, 0, N);
  });
}

}  // namespace contraction_detail

// Threads split a contraction three ways, in order of preference:
//  - by columns (whole vectors), when there are at least two vectors per thread: each task packs only its
//    columns of B, nothing is computed twice and nothing needs reducing;
//  - by rows, in multiples of the register tile: each thread packs all of B, or reads a row-major B in
//    place when its share is at most two row blocks;
//  - by the contracted dimension when that is the batch (weight gradients of a narrow layer): per-thread
//    partial products over a slice of the batch, summed, then the epilogue.
KILN_ONE_COPY inline void run_contraction(const context& c, const contraction& k) {
  const long M = k.M, N = k.N, Kd = k.Kd;
  const int threads = c.pool->num_threads();
  const long flops = M * N * Kd;
  const long vectors = (N + lanes - 1) / lanes;
  constexpr long mr = gemm_detail::mr;
  // Column tasks each read all of A and pack their part of B; row tasks read their part of A and each
  // pack all of B: take the split that moves fewer floats, rows only while all of B packed fits in half a
  // core's L2 (1 MB). Measured with kiln-bench --profile on 2 threads: the classifier's 128×784 weight
  // gradient went from 335–369 to 265–348 µs split by rows, the wide net's 1024×1024 ones from 3.3 to
  // 2.5 ms; the wide net's forward products (4 MB of packed weights) were slower split by rows.
  if ((flops < parallel_contraction_threshold && Kd * N < parallel_stream_floats) || threads == 1) {
    contraction_detail::tile(c, k, 0, M, 0, N, 0);
    return;
  }
  const int col_tasks = static_cast<int>(std::clamp<long>(vectors / 2, threads, 4L * threads));
  const bool rows_cheaper = M >= 2 * mr * threads && Kd * N <= (1L << 18) &&
                            M * Kd + threads * Kd * N < col_tasks * M * Kd + Kd * N;
  if (vectors >= 2 * threads && !rows_cheaper) {
    // Up to four column tasks per thread, of at least two vectors each (a one-vector panel is bound by its
    // loads): on a shared machine a thread that is descheduled then holds back a quarter of its share,
    // not all of it, since the others claim the remaining tasks.
    const int tasks = col_tasks;
    c.pool->parallel_for(tasks, [&](int t, int thread) {
      const long j0 = vectors * t / tasks * lanes, j1 = std::min(N, vectors * (t + 1) / tasks * lanes);
      contraction_detail::tile(c, k, 0, M, j0, j1, thread);
    });
  } else if (M >= 2 * mr * threads || !k.contracts_batch) {
    const long tiles = (M + mr - 1) / mr;
    const int tasks = static_cast<int>(std::min<long>(threads, tiles));
    // Every row task would pack all of B (a transposed B, e.g. the forward product's Wᵀ, cannot be read in
    // place): when that pass is long, the tasks pack one shared copy first, each a share of its vectors, in
    // thread 0's workspace. The classifier's 784×128 Wᵀ takes about 9 µs to pack.
    // BF16 products always pack B (converting it), so then the tasks share it whatever its layout.
    const bool bf16 = c.products != bf16_path::fp32;
    const bool share_packing = Kd * N >= shared_packing_floats &&
                               (bf16 || (k.B.col_stride != 1 && gemm_packs_b(std::min(M, gemm_row_block), N, Kd, k.A, k.B)));
    const float* shared = nullptr;
    if (share_packing) {
      float* packed = gemm_detail::align64(c.gemm_ws);
      const long panels = gemm_bf16_panels(N);
      c.pool->parallel_for(tasks, [&](int t, int) {
        if (bf16) gemm_bf16_pack_b(N, Kd, k.B, packed, panels * t / tasks, panels * (t + 1) / tasks);
        else gemm_pack_b_part(N, Kd, k.B, packed, t, tasks);
      });
      shared = packed;
    }
    c.pool->parallel_for(tasks, [&](int t, int thread) {
      const long r0 = std::min(M, tiles * t / tasks * mr), r1 = std::min(M, tiles * (t + 1) / tasks * mr);
      if (r0 < r1) contraction_detail::tile(c, k, r0, r1, 0, N, thread, shared);
    });
  } else {
    contraction_detail::batch_split(c, k);
  }
}

}  // namespace kiln::cpu
