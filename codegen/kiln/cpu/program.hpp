#pragma once
// A compiled plan ready to run on the CPU: owns its scratch memory (sized for the largest batch seen, so
// repeated steps allocate nothing) and binds leaves to caller-owned buffers.
#include <kiln/core/error.hpp>
#include <kiln/cpu/execute.hpp>
#include <kiln/cpu/fp_mode.hpp>

#include <string>
#include <vector>

namespace kiln::cpu {

// run_profiled's argument check (train_step's and function's): one entry per kernel of the plan.
inline void check_profile_entries(std::size_t entries, int kernels) {
  if (static_cast<long>(entries) != kernels)
    throw shape_error("kiln: run_profiled needs one entry per kernel (" + std::to_string(kernels) + "), given " +
                      std::to_string(entries));
}

template <class Plan>
class program {
  using exec = executor<Plan>;
  static constexpr const plan& P = Plan::value;

 public:
  program() : buffers_(static_cast<std::size_t>(P.g.size), nullptr) {
    ctx_.pool = &default_pool();
    ctx_.buf = buffers_.data();
  }
  program(const program&) = delete;
  program& operator=(const program&) = delete;

  static const plan& compiled_plan() { return P; }

  void bind_leaf(int leaf, float* data) { leaf_ptr_[leaf] = data; }
  float* leaf_data(int leaf) const { return leaf_ptr_[leaf]; }
  // Output o's buffer after run() (a leaf buffer for assigned outputs).
  const float* output(int o) const { return ctx_.buf[P.g.outputs[o].node]; }
  // The value of a materialized node after run() (every node is materialized in an unfused plan), or nullptr.
  // Assigned nodes alias their leaf and hold the new value. Used to find where a non-finite value first appears.
  const float* node_value(int node_id) const { return P.materialized[node_id] ? ctx_.buf[node_id] : nullptr; }
  long batch_size() const { return ctx_.batch; }

  void run(long batch_size, const float* hypers, const random::key& rng = {}) {
    bind(batch_size, hypers, rng);
    const scoped_denormal_mode mode(flush_denormals_);
    const thread_pool::keep_awake awake(*ctx_.pool);  // no worker sleeps between this step's kernels
    exec::run(ctx_);
    if (ctx_.collectives) ctx_.collectives->wait();
  }
  // As run(), adding each kernel's wall time in nanoseconds to ns_per_kernel[k] (num_kernels entries).
  void run_profiled(long batch_size, const float* hypers, double* ns_per_kernel, const random::key& rng = {}) {
    bind(batch_size, hypers, rng);
    const scoped_denormal_mode mode(flush_denormals_);
    const thread_pool::keep_awake awake(*ctx_.pool);  // no worker sleeps between this step's kernels
    exec::run_profiled(ctx_, ns_per_kernel);
    if (ctx_.collectives) ctx_.collectives->wait();
  }
  // Sends the plan's collectives to `sink` (a data-parallel step's communicator schedule), or nullptr: each is
  // then a copy (a single process).
  void set_collectives(collective_sink* sink) { ctx_.collectives = sink; }
  // A sharded optimizer's part of the plan (kiln/cpu/optimizer_shards.hpp), in arrays the caller keeps: only the
  // kernels k with run_kernel[k] != 0 run (nullptr: all), an elementwise kernel k with kernel_rows[2k] >= 0 runs
  // rows [kernel_rows[2k], kernel_rows[2k + 1]) only (nullptr: all rows), and the leaves with
  // unbound_allowed[leaf] != 0 may stay unbound: no running kernel reads or writes them (state another rank holds).
  void set_kernel_mask(const char* run_kernel, const long* kernel_rows, const char* unbound_allowed) {
    ctx_.run_kernel = run_kernel;
    ctx_.kernel_rows = kernel_rows;
    unbound_allowed_ = unbound_allowed;
  }
  // Contractions multiply in FP32 (bf16_path::fp32, the default) or, on `path`, round their operands to BF16
  // and sum in FP32 (kiln/cpu/gemm_bf16.hpp; the path must be available()).
  void set_products(bf16_path path) { ctx_.products = path; }
  bf16_path products() const { return ctx_.products; }
  // Denormal floats are flushed to zero while the plan runs (the default; see fp_mode.hpp for why), or kept
  // (IEEE gradual underflow, at a large cost in speed wherever they occur).
  void set_flush_denormals(bool flush) { flush_denormals_ = flush; }
  // Runs on `pool` (which must outlive the program) instead of the process-wide default_pool(), e.g. to give
  // a model a share of an application's cores.
  void set_thread_pool(thread_pool& pool) {
    ctx_.pool = &pool;
    prepared_batch_ = 0;  // per-thread workspaces are laid out again for the new thread count
  }
  bool flush_denormals() const { return flush_denormals_; }

  // Lays out memory for this batch size and points every node at its buffer, without running: what a
  // rendered (source) version of the plan is called with. buffers()[i] is node i's buffer.
  void bind(long batch_size, const float* hypers, const random::key& rng = {}) {
    if (batch_size < 1) throw shape_error("batch size must be at least 1, got " + std::to_string(batch_size));
    prepare(batch_size);
    for (int b = 0; b < leaf_nodes.count; ++b) {
      const auto [node, leaf] = leaf_nodes.at[b];
      float* p = leaf_ptr_[leaf];
      if (!p && !(unbound_allowed_ && unbound_allowed_[leaf])) throw error("kiln: leaf '" + std::string(P.g.leaves[leaf].name.view()) + "' is not bound");
      ctx_.buf[node] = p;
    }
    ctx_.hyper = hypers;
    ctx_.rng = rng;
  }
  float* const* buffers() const { return ctx_.buf; }
  float* gemm_workspace() const { return ctx_.gemm_ws; }

 private:
  // Lays out scratch buffers for this batch size; grows memory only when the batch grows.
  // The nodes whose buffer is a leaf's (the leaf nodes themselves and values assigned in place to a leaf),
  // listed at compile time so that binding a step touches only them.
  struct node_leaf { int node, leaf; };
  struct node_leaf_list {
    node_leaf at[P.g.size > 0 ? P.g.size : 1]{};
    int count = 0;
  };
  static constexpr node_leaf_list leaf_nodes = [] {
    node_leaf_list l;
    for (int i = 0; i < P.g.size; ++i) {
      if (ops::class_of(P.g.nodes[i].kind) == op_class::leaf) l.at[l.count++] = {i, P.g.nodes[i].leaf};
      else if (P.assign[i] >= 0) l.at[l.count++] = {i, P.assign[i]};
    }
    return l;
  }();

  void prepare(long batch_size) {
    if (batch_size == prepared_batch_) return;
    const int threads = ctx_.pool->num_threads();
    std::size_t total = 0;
    std::vector<std::size_t>& offset = offsets_;
    for (int i = 0; i < P.g.size; ++i) {
      if (!P.materialized[i] || ops::class_of(P.g.nodes[i].kind) == op_class::leaf || P.assign[i] >= 0) continue;
      const dims s = P.g.nodes[i].shape;
      offset[i] = total;
      total += static_cast<std::size_t>((resolve(s.rows, batch_size) * resolve(s.cols, batch_size) + 15) / 16 * 16);
    }
    ctx_.reduce_ws_stride = exec::reduce_ws_floats();
    ctx_.ksplit_ws_stride = exec::ksplit_ws_floats();
    ctx_.gemm_ws_stride = exec::gemm_ws_floats(batch_size);
    const std::size_t ws = static_cast<std::size_t>(threads) *
        static_cast<std::size_t>(ctx_.reduce_ws_stride + ctx_.ksplit_ws_stride + ctx_.gemm_ws_stride);
    if (arena_.size() < total + ws + 16) arena_.resize(total + ws + 16);
    // 64-byte alignment of the arena start
    float* base = arena_.data();
    while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
    for (int i = 0; i < P.g.size; ++i)
      if (P.materialized[i] && ops::class_of(P.g.nodes[i].kind) != op_class::leaf && P.assign[i] < 0) ctx_.buf[i] = base + offset[i];
    float* w = base + total;
    ctx_.reduce_ws = w;
    w += threads * ctx_.reduce_ws_stride;
    ctx_.ksplit_ws = w;
    w += threads * ctx_.ksplit_ws_stride;
    ctx_.gemm_ws = w;
    ctx_.batch = batch_size;
    prepared_batch_ = batch_size;
  }

  std::vector<float*> buffers_;  // one per node: ctx_.buf
  std::vector<std::size_t> offsets_ = std::vector<std::size_t>(static_cast<std::size_t>(P.g.size), 0);  // prepare()'s
  context ctx_{};
  float* leaf_ptr_[P.g.num_leaves > 0 ? P.g.num_leaves : 1] = {};
  std::vector<float> arena_;
  long prepared_batch_ = 0;
  bool flush_denormals_ = true;
  const char* unbound_allowed_ = nullptr;
};

}  // namespace kiln::cpu
