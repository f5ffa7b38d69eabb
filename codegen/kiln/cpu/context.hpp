#pragma once
// What a running plan's kernels share: the context (buffers, run-time scalars, workspaces, the pool), the
// thresholds that decide how work is split between threads, and the split of a range into per-thread parts.
#include <kiln/core/philox.hpp>
#include <kiln/cpu/gemm_bf16.hpp>
#include <kiln/cpu/thread_pool.hpp>
#include <kiln/ir/graph.hpp>

#include <algorithm>

namespace kiln::cpu {

// Everything a running plan needs: one pointer per node (leaf buffers bound by the caller, scratch for
// materialized nodes, the leaf's buffer for values assigned in place), run-time scalars and workspaces.
// Where a plan's collectives (all_reduce) go: ready(k) when collective kernel k has copied its operand into its
// own buffer (the sum over ranks of that buffer may start), wait() before a kernel that reads a collective's
// value (every sum started so far is then complete). Without one (a single process) a collective is a copy.
class collective_sink {
 public:
  virtual void ready(int kernel) = 0;
  virtual void wait() = 0;

 protected:
  ~collective_sink() = default;
};

struct context {
  float** buf = nullptr;  // P.g.size entries, owned by the program
  collective_sink* collectives = nullptr;
  const char* run_kernel = nullptr;  // run_kernel[k] == 0: kernel k is another rank's (a sharded optimizer); nullptr: all run
  const long* kernel_rows = nullptr;  // an elementwise kernel k runs rows [kernel_rows[2k], kernel_rows[2k + 1]) only
                                      // (this rank's share of a parameter's update), or all when they are −1
  const float* hyper = nullptr;
  random::key rng{};  // the step's random key (dropout's draws)
  long batch = 0;
  thread_pool* pool = nullptr;
  float* reduce_ws = nullptr;      // threads × reduce_ws_stride: partial sums of row reductions
  long reduce_ws_stride = 0;
  float* ksplit_ws = nullptr;      // threads × ksplit_ws_stride: partial products of batch-contracting GEMMs and conv weight gradients
  long ksplit_ws_stride = 0;
  float* gemm_ws = nullptr;        // threads × gemm_ws_stride: GEMM packing buffers
  long gemm_ws_stride = 0;
  bf16_path products = bf16_path::fp32;  // how contractions multiply: FP32, or BF16 operands with FP32 sums
};

inline constexpr long resolve(int d, long batch_size) { return d == batch ? batch_size : d; }

// Work below this many elements runs on one thread (a thread hand-off costs more than it saves).
inline constexpr long parallel_threshold = 16384;
inline constexpr long gemm_row_block = 64;
// A row-split contraction packs B once for all its threads (each a share) from this many floats of B: below
// it, the extra fork-join costs more than the packing it saves.
inline constexpr long shared_packing_floats = 1L << 15;
// Contractions below this many multiply-adds run on one thread. Measured with kiln-bench on 2 cores: the
// classifier's 2-4 M multiply-add kernels (batch 32's first layer and its weight gradient, batch 256's second
// layer) took as long or longer split over two threads — their time goes to the parameters' Adam state
// moving between the cores' caches and to the hand-off, not to multiply-adds — and the batch-32 step went
// from 197 µs on one thread to 277-294 µs on two.
inline constexpr long parallel_contraction_threshold = 1L << 20;
// ... unless its B (the weight of a dense layer) has this many floats: a product of a few rows (a single
// sample) then streams B from memory, and threads that each stream their columns of it finish sooner. Measured
// with the Fashion-MNIST CNN's 3136 → 128 layer at batch 1 (1.6 MB of weights) on Zen 4: 22 µs on one thread,
// 13-14 µs split by columns between two.
inline constexpr long parallel_stream_floats = 1L << 18;

// Splits [0, total) into per-thread ranges (aligned to `align`) and runs f(begin, end, thread). No more tasks
// than aligned ranges: a batch of 1 through a per-sample kernel stays on the calling thread.
// f runs only as the pool's tasks (a single task on the calling thread below the threshold), so that its body
// is compiled once (see thread_pool::parallel_for).
template <class F>
void parallel_range(const context& c, long total, long work_per_item, long align, F&& f) {
  const int threads = c.pool->num_threads();
  const long ranges = (total + align - 1) / align;
  const long tasks = (total * work_per_item < parallel_threshold || threads == 1) ? 1 : std::min<long>(threads, ranges);
  const long chunk = ((total + tasks - 1) / tasks + align - 1) / align * align;
  const auto task = [&](int t, int thread) {
    const long b = std::min(total, t * chunk), e = std::min(total, b + chunk);
    if (b < e) f(b, e, thread);
  };
  if (tasks == 1) thread_pool::run_single(task);
  else c.pool->parallel_for(static_cast<int>(tasks), task);
}

}  // namespace kiln::cpu
