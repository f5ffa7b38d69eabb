#pragma once
// kiln::cpu::function<Model>: the inference API. Model is a callable returning an expression (the logits of a
// classifier, say); the function is its forward pass in evaluation mode (dropout is the identity, batch norm uses
// its running statistics), compiled like a training step.
//
//   kiln::cpu::function<logits> f(step);                         // views a step's parameters (live)
//   auto g = kiln::cpu::function<logits>::load("model.safetensors"); // owns them, from a file
//   g.run(batch, {{"x", xs}}, out);                                // out: [batch, classes], row-major
//
// Parameters come from a step (viewed, so a trainer's evaluation sees the latest weights; or copied with
// copy_of) or from a safetensors file: a kiln checkpoint or a PyTorch state_dict with the same names, checked
// tensor by tensor (train/checkpoint.hpp, load_forward_parameters).
//
// Batches whose samples are independent (no value mixes the batch rows, as in every evaluation-mode forward) and
// whose buffers outgrow the caches are run in chunks of samples, each chunk a whole forward on one thread of the
// workspace's pool: the maps between layers then stay in the core's cache instead of making a round trip through
// memory per layer, and the threads meet once per call instead of once per kernel (see chunk_floats).
//
// Concurrency: run(batch, feeds, out) uses the function's own workspace and default thread pool, one caller at a
// time. Concurrent callers each make a workspace (make_workspace) and call run(workspace, …), which only reads
// the parameters; a workspace runs its kernels on its caller's thread (or on a pool given to make_workspace).
// A workspace's memory grows to the largest batch it has seen, so calls after the first at that size allocate
// nothing. A workspace must not outlive its function.
#include <kiln/core/aligned_vector.hpp>
#include <kiln/cpu/program.hpp>
#include <kiln/cpu/thread_pool.hpp>
#include <kiln/plan/print.hpp>
#include <kiln/train/checkpoint.hpp>
#include <kiln/train/feed.hpp>
#include <kiln/train/named.hpp>
#include <kiln/train/step_graph.hpp>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace kiln::cpu {

namespace detail {

// Named feeds (named_feed_list), each checked and bound to the leaf the compiler found for it.
template <class Holder, class... Named, class LabelBuffer, class Bind>
void bind_named(const graph& g, long batch_size, const named_feed_list<Holder, Named...>& list, const LabelBuffer& label_buffer, const Bind& bind) {
  std::apply([&](const Named&... f) { (bind_checked_feed(g, fed_leaf<Holder, Named>, batch_size, f.to_feed(), label_buffer, bind), ...); }, list.feeds);
}

// Binds feeds to input leaves (checked by bind_checked_feed); labels go to per-leaf float buffers that grow to
// the largest batch seen, so a step allocates nothing once that batch has run. Feeds: a range of kiln::feed,
// found by name, or a named_feed_list, whose leaves the compiler found.
template <class Program, class Feeds = std::initializer_list<feed>>
void bind_feeds(Program& prog, const graph& g, long batch_size, const Feeds& feeds,
                std::vector<float>* label_buffers) {
  const auto label_buffer = [&](int leaf, std::size_t count) {
    auto& buf = label_buffers[leaf];
    if (buf.size() < count) buf.resize(count);
    return buf.data();
  };
  const auto bind = [&](int leaf, const float* data, std::size_t) { prog.bind_leaf(leaf, const_cast<float*>(data)); };  // only read
  if constexpr (is_named_feed_list<Feeds>)
    bind_named(g, batch_size, feeds, label_buffer, bind);
  else
    bind_checked_feeds(g, batch_size, feeds, label_buffer, bind);
}
}  // namespace detail

template <class Model, fusion Mode = fusion::fused>
class function {
 public:
  using graph_holder = forward_graph<Model>;
  using plan_holder = frozen_plan<graph_holder, Mode>;
  static constexpr const graph& G = graph_holder::value;
  static constexpr dims out_shape = G.nodes[G.outputs[0].node].shape;

  // The memory one caller runs the function in: scratch buffers, bound feeds, its thread pool.
  class workspace {
   public:
    workspace(workspace&&) noexcept = default;
    workspace& operator=(workspace&&) noexcept = default;
    // The program it runs (its buffers after a run, for inspection).
    const program<plan_holder>& compiled_program() const { return *prog_; }

   private:
    friend class function;
    workspace(const function& f, thread_pool* pool)
        : own_pool_(pool ? nullptr : std::make_unique<thread_pool>(1)), pool_(pool ? pool : own_pool_.get()),
          prog_(std::make_unique<program<plan_holder>>()), label_buffers_(static_cast<std::size_t>(G.num_leaves)) {
      prog_->set_thread_pool(*pool_);
      f.bind_parameters(*prog_);
    }
    std::unique_ptr<thread_pool> own_pool_;  // a pool of one thread (the caller's) unless one was given
    thread_pool* pool_;
    std::unique_ptr<program<plan_holder>> prog_;
    std::vector<std::vector<float>> label_buffers_;
    // Chunked runs: one single-threaded workspace per thread of the pool (made by the first such run), the
    // number of the current run, and for a part the run and the chunk size its batch-independent buffers
    // were computed for.
    std::vector<std::unique_ptr<workspace>> parts_;
    unsigned long runs_ = 0, computed_run_ = 0;
    long computed_rows_ = 0;
  };

  // Views the step's parameters and state by name: later steps' updates show in the next run.
  template <class Step>
    requires requires(Step& s, std::string_view n) { { s.param(n) } -> std::convertible_to<std::span<float>>; }
  explicit function(Step& step) : data_(static_cast<std::size_t>(G.num_leaves), nullptr) {
    for (int l = 0; l < G.num_leaves; ++l)
      if (train::is_stored(G.leaves[l])) data_[static_cast<std::size_t>(l)] = step.param(G.leaves[l].name.view()).data();
    own_ = std::make_unique<workspace>(workspace(*this, &default_pool()));
    own_serial_ = std::make_unique<workspace>(workspace(*this, nullptr));
  }
  // Owns a copy of the step's parameters and state as they are now.
  template <class Step>
  static function copy_of(const Step& step) {
    function f;
    for (int l = 0; l < G.num_leaves; ++l)
      if (train::is_stored(G.leaves[l])) {
        const auto src = step.param(G.leaves[l].name.view());
        std::copy(src.begin(), src.end(), f.storage_[static_cast<std::size_t>(l)].begin());
      }
    return f;
  }
  // Owns the parameters and state read from a safetensors file (see load_forward_parameters for what is checked).
  static function load(const std::string& path, const train::load_options& options = {}) {
    function f;
    train::load_forward_parameters(G, io::read_safetensors_content(path), path,
                                   [&](int l) { return std::span<float>(f.storage_[static_cast<std::size_t>(l)]); }, options);
    return f;
  }

  function(function&&) noexcept = default;
  function& operator=(function&&) noexcept = default;

  // A parameter or state by name (PyTorch's names), row-major: the step's memory for a viewing function.
  std::span<float> param(std::string_view name) { return {data_[index(name)], size_of(index(name))}; }
  std::span<const float> param(std::string_view name) const { return {data_[index(name)], size_of(index(name))}; }

  // A workspace for one more concurrent caller; it runs on the caller's thread alone, or on `pool`.
  workspace make_workspace() const { return workspace(*this, nullptr); }
  workspace make_workspace(thread_pool& pool) const { return workspace(*this, &pool); }

  // Evaluates on `feeds` (one per input, [batch, width] row-major) and copies the result (row-major, [batch or
  // 1, cols]) into out. Only reads the parameters: callers with their own workspaces may run at the same time.
  void run(workspace& ws, long batch_size, std::initializer_list<feed> feeds, std::span<float> out) const {
    run_feeds(ws, batch_size, feeds, out);
  }
  // The same with feeds in any contiguous range (built at run time).
  void run(workspace& ws, long batch_size, std::span<const feed> feeds, std::span<float> out) const {
    run_feeds(ws, batch_size, feeds, out);
  }
  // The same on the function's own workspaces, one caller at a time: a larger batch on the default thread pool; a
  // single sample on the calling thread, unless threads share it (single_sample_on_pool). Measured with
  // kiln-bench's infer_* cases (2 threads): waking the pool for one sample, when no kernel could share it, cost
  // the CNN 240 → 357 µs and gained the classifier nothing, while at batch 16 the pool is faster for both (22.6
  // against 31.6 µs, 1.38 against 2.37 ms). Sharing its convolution and its 3136 → 128 layer, the CNN's single
  // sample took 92-96 µs on two threads against 123 µs on one (Zen 4).
  void run(long batch_size, std::initializer_list<feed> feeds, std::span<float> out) {
    run(batch_size == 1 && !single_sample_on_pool ? *own_serial_ : *own_, batch_size, feeds, out);
  }
  // Whether run(1, …) runs on the default pool: some kernel shares a sample between threads, a convolution's
  // channels (conv_shares_sample_channels) or a product's columns (a weight of parallel_stream_floats).
  static constexpr bool single_sample_on_pool = [] {
    const graph& g = plan_holder::value.g;
    for (int i = 0; i < g.size; ++i) {
      const node& nd = g.nodes[i];
      if (nd.kind == op::conv2d && conv_shares_sample_channels(g.windows[nd.leaf])) return true;
      if (nd.kind == op::matmul) {
        const dims b = g.nodes[nd.in[1]].shape;
        if (b.rows != batch && b.cols != batch && static_cast<long>(b.rows) * b.cols >= parallel_stream_floats) return true;
      }
    }
    return false;
  }();
  // The same run on a caller's workspace, adding each kernel's wall time in nanoseconds to ns_per_kernel[k]
  // (compiled_plan().num_kernels entries; kernel k is kernel_name(compiled_plan(), k)): where a forward's time goes.
  // It runs the batch whole, never in chunks.
  void run_profiled(workspace& ws, long batch_size, std::initializer_list<feed> feeds, std::span<float> out,
                    std::span<double> ns_per_kernel) const {
    check_profile_entries(ns_per_kernel.size(), compiled_plan().num_kernels);
    run_feeds(ws, batch_size, feeds, out, ns_per_kernel.data());
  }
  // With the feeds named at compile time (kiln/train/named.hpp), checked by the compiler:
  // f.run(ws, 1, out, "x"_in = image).
  template <class... Named>
    requires(sizeof...(Named) > 0 && (is_named_feed<Named> && ...))
  void run(workspace& ws, long batch_size, std::span<float> out, const Named&... feeds) const {
    check_named_feeds<graph_holder, Named...>();
    run_feeds(ws, batch_size, named_feed_list<graph_holder, Named...>{{feeds...}}, out);
  }

  // A parameter or state named at compile time, with its static shape (see train_step::param<Name>).
  template <fixed_string Name>
  auto param() {
    constexpr int l = named_parameter_leaf<graph_holder, Name>();
    return static_matrix_view<float, G.leaves[l].shape.rows, G.leaves[l].shape.cols>{data_[l]};
  }
  template <fixed_string Name>
  auto param() const {
    constexpr int l = named_parameter_leaf<graph_holder, Name>();
    return static_matrix_view<const float, G.leaves[l].shape.rows, G.leaves[l].shape.cols>{data_[l]};
  }

  // Whether run() cuts a batch of this size into chunks (see the top of this file), and how many samples a chunk
  // then has at most.
  static bool runs_in_chunks(long batch_size) {
    return rows_independent && batch_size > 1 && batch_size * floats_per_sample > chunk_floats;
  }
  static long chunk_rows() { return std::max(1L, chunk_floats / std::max(1L, floats_per_sample)); }

  static const graph& function_graph() { return G; }
  static const kiln::plan& compiled_plan() { return plan_holder::value; }
  static std::string plan_text() { return to_string(plan_holder::value); }

 private:
  static constexpr const plan& P = plan_holder::value;
  // Every sample's result depends on its own input rows alone: no value reduces or mixes the batch rows (a
  // node reading batch rows has batch rows itself, none has a batch of columns), reads the batch size, or draws
  // random numbers (whose draws depend on the row's place in the whole batch).
  static constexpr bool rows_independent = [] {
    for (int i = 0; i < P.g.size; ++i) {
      const node& nd = P.g.nodes[i];
      if (nd.kind == op::batch_size || nd.kind == op::random_uniform || nd.shape.cols == batch) return false;
      if (ops::class_of(nd.kind) == op_class::leaf) {
        const leaf_kind k = P.g.leaves[nd.leaf].kind;
        if ((k == leaf_kind::input || k == leaf_kind::labels) && nd.shape.rows != batch) return false;
        continue;
      }
      for (const int in : nd.in)
        if (in >= 0 && P.g.nodes[in].shape.rows == batch && nd.shape.rows != batch) return false;
    }
    return out_shape.rows == batch;
  }();
  // The floats of the buffers a sample has in the program (its scratch memory per row of the batch).
  static constexpr long floats_per_sample = [] {
    long n = 0;
    for (int i = 0; i < P.g.size; ++i)
      if (P.materialized[i] && ops::class_of(P.g.nodes[i].kind) != op_class::leaf && P.assign[i] < 0 &&
          P.g.nodes[i].shape.rows == batch)
        n += P.g.nodes[i].shape.cols;
    return n;
  }();
  // A chunk's buffers take at most this many floats (1.5 MiB), and a batch whose buffers take more is chunked.
  // Measured on Zen 4 (1 MiB of L2 per core) with the Fashion-MNIST CNN's forward at batch 16 (85 K floats per
  // sample), six alternating rounds: on two threads, chunks of 4 samples took 949-997 µs (medians of the rounds)
  // where the kernels split row by row took 930-1615 µs, every kernel's hand-off waiting for the slower core; on
  // one thread 1769-2031 µs against 1857-2399 µs. Chunks of 8 were as fast at best but less steady.
  static constexpr long chunk_floats = 3L << 17;
  // The kernels a chunk after a part's first in one run skips: those without batch rows compute values of
  // the parameters alone (rows_independent), which that first chunk left in the part's buffers.
  static constexpr std::array<char, static_cast<std::size_t>(P.num_kernels > 0 ? P.num_kernels : 1)> batch_kernels = [] {
    std::array<char, static_cast<std::size_t>(P.num_kernels > 0 ? P.num_kernels : 1)> k{};
    for (int i = 0; i < P.num_kernels; ++i) k[static_cast<std::size_t>(i)] = P.kernels[i].domain.rows == batch;
    return k;
  }();

  // The batch bound on ws (its feeds checked), run in chunks of at most chunk_rows() samples: the pool's
  // threads each take a contiguous share of the chunks and run them on their own single-threaded part.
  void run_chunks(workspace& ws, long batch_size, std::span<float> out) const {
    const int threads = ws.pool_->num_threads();
    while (ws.parts_.size() < static_cast<std::size_t>(threads))
      ws.parts_.push_back(std::make_unique<workspace>(workspace(*this, nullptr)));
    const long chunk = std::min(chunk_rows(), (batch_size + threads - 1) / threads);
    const long chunks = (batch_size + chunk - 1) / chunk;
    const int tasks = static_cast<int>(std::min<long>(threads, chunks));
    const unsigned long run_id = ++ws.runs_;
    ws.pool_->parallel_for(tasks, [&](int task, int) {
      workspace& part = *ws.parts_[static_cast<std::size_t>(task)];
      for (long c = chunks * task / tasks; c < chunks * (task + 1) / tasks; ++c) {
        const long n0 = c * chunk, rows = std::min(chunk, batch_size - n0);
        for (int l = 0; l < G.num_leaves; ++l)
          if (G.leaves[l].kind == leaf_kind::input || G.leaves[l].kind == leaf_kind::labels)
            part.prog_->bind_leaf(l, ws.prog_->leaf_data(l) + n0 * G.leaves[l].shape.cols);
        // a part's buffers move when its batch size changes (program::prepare): then everything runs again
        const bool again = part.computed_run_ == run_id && part.computed_rows_ == rows;
        part.prog_->set_kernel_mask(again ? batch_kernels.data() : nullptr, nullptr, nullptr);
        part.prog_->run(rows, hypers_);
        part.computed_run_ = run_id;
        part.computed_rows_ = rows;
        const float* r = part.prog_->output(0);
        std::copy(r, r + rows * out_shape.cols, out.begin() + n0 * out_shape.cols);
      }
    });
  }

  // ns_per_kernel: null, or where run_profiled adds each kernel's time
  template <class Feeds>
  void run_feeds(workspace& ws, long batch_size, const Feeds& feeds, std::span<float> out, double* ns_per_kernel = nullptr) const {
    const long n = resolve(out_shape.rows, batch_size) * out_shape.cols;
    if (static_cast<long>(out.size()) != n)
      throw shape_error("kiln: output buffer has " + std::to_string(out.size()) + " values, the result [" +
                        std::to_string(resolve(out_shape.rows, batch_size)) + ", " + std::to_string(out_shape.cols) +
                        "] has " + std::to_string(n));
    detail::bind_feeds(*ws.prog_, G, batch_size, feeds, ws.label_buffers_.data());
    if (!ns_per_kernel && runs_in_chunks(batch_size)) return run_chunks(ws, batch_size, out);
    if (ns_per_kernel) ws.prog_->run_profiled(batch_size, hypers_, ns_per_kernel);
    else ws.prog_->run(batch_size, hypers_);
    const float* r = ws.prog_->output(0);
    std::copy(r, r + n, out.begin());
  }
  // An owning function: zeroed storage for every parameter and state leaf.
  function() : data_(static_cast<std::size_t>(G.num_leaves), nullptr), storage_(static_cast<std::size_t>(G.num_leaves)) {
    for (int l = 0; l < G.num_leaves; ++l)
      if (train::is_stored(G.leaves[l])) {
        storage_[static_cast<std::size_t>(l)].assign(size_of(static_cast<std::size_t>(l)), 0.0f);
        data_[static_cast<std::size_t>(l)] = storage_[static_cast<std::size_t>(l)].data();
      }
    own_ = std::make_unique<workspace>(workspace(*this, &default_pool()));
    own_serial_ = std::make_unique<workspace>(workspace(*this, nullptr));
  }
  static std::size_t size_of(std::size_t l) {
    const dims s = G.leaves[l].shape;
    return static_cast<std::size_t>(s.rows) * static_cast<std::size_t>(s.cols);
  }
  static std::size_t index(std::string_view name) {
    for (int l = 0; l < G.num_leaves; ++l)
      if (train::is_stored(G.leaves[l]) && G.leaves[l].name.view() == name) return static_cast<std::size_t>(l);
    throw error("kiln: the model has no parameter named '" + std::string(name) + "' (parameters: " +
                train::checkpoint_detail::names_of(G, leaf_kind::param) + ")");
  }
  void bind_parameters(program<plan_holder>& prog) const {
    for (int l = 0; l < G.num_leaves; ++l)
      if (data_[static_cast<std::size_t>(l)]) prog.bind_leaf(l, data_[static_cast<std::size_t>(l)]);
  }

  float hypers_[1] = {};
  std::vector<float*> data_;                 // by leaf: the values of parameters and state (null for others)
  std::vector<aligned_floats> storage_;  // by leaf, when owned, 64-byte aligned (moving the function keeps data_ valid)
  std::unique_ptr<workspace> own_;           // run()'s workspace for batches, on the default pool
  std::unique_ptr<workspace> own_serial_;    // run()'s workspace for single samples, on the calling thread
};

}  // namespace kiln::cpu
