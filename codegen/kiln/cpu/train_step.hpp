#pragma once
// kiln::cpu::train_step<Model, Optimizer>: one compiled training step (forward, loss, backward, optimizer update)
// with its parameters and optimizer state. Model is a default-constructible callable returning the loss
// expression (a captureless lambda's type works):
//
//   auto loss = [] { return kiln::mse(kiln::nn::sequential(kiln::dense<1>{})(kiln::input<3>("x")),
//                                     kiln::target<1>("t")); };
//   kiln::cpu::train_step<decltype(loss), kiln::adam> step({.lr = 1e-3});
//   float l = step.run(batch, {{"x", xs}, {"t", ts}});
#include <kiln/core/aligned_vector.hpp>
#include <kiln/core/hash.hpp>
#include <kiln/cpu/function.hpp>
#include <kiln/cpu/gradient_buckets.hpp>
#include <kiln/cpu/optimizer_shards.hpp>
#include <kiln/cpu/program.hpp>
#include <kiln/plan/print.hpp>
#include <kiln/train/feed.hpp>
#include <kiln/train/init.hpp>
#include <kiln/train/named.hpp>
#include <kiln/train/step_graph.hpp>

#include <initializer_list>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace kiln::cpu {

// How a data-parallel step talks to its ranks (train_step::set_communicator).
struct data_parallel_options {
  // Neighbouring gradients are summed over ranks together, in buckets of at most this many values.
  long bucket_floats = gradient_buckets::default_bucket_floats;
  // ZeRO stage 1 (kiln/cpu/optimizer_shards.hpp): each rank holds and updates the optimizer state of its share
  // of the parameters only, and broadcasts those parameters after the step.
  bool shard_optimizer_state = false;
};

template <class Model, class Optimizer, fusion Mode = fusion::fused>
class train_step {
 public:
  using optimizer_type = Optimizer;
  using graph_holder = kiln::step_graph<Model, Optimizer>;
  using plan_holder = frozen_plan<graph_holder, Mode>;
  static constexpr const graph& G = graph_holder::value;

  // seed: the parameters' initial values and the random draws of dropout (keyed by seed and step number).
  explicit train_step(Optimizer opt = {}, std::uint64_t seed = 0) : opt_(opt), seed_(seed) {
    std::mt19937_64 rng(seed);
    for (int l = 0; l < G.num_leaves; ++l) {
      const leaf_info& info = G.leaves[l];
      if (info.kind != leaf_kind::param && info.kind != leaf_kind::state) continue;
      storage_[l].resize(static_cast<std::size_t>(info.shape.rows) * static_cast<std::size_t>(info.shape.cols));
      initialize(info, storage_[l], rng);
      prog_.bind_leaf(l, storage_[l].data());
    }
  }

  // One training step on a batch: returns the loss before the update.
  float run(long batch_size, std::initializer_list<feed> feeds) {
    prepare_step(batch_size, feeds);
    prog_.run(batch_size, hypers_, random_key());
    after_step();
    return prog_.output(0)[0];
  }
  // The same training step, adding each kernel's wall time in nanoseconds to ns_per_kernel[k]
  // (compiled_plan().num_kernels entries; kernel k is kernel_name(compiled_plan(), k)): where a step's time goes.
  float run_profiled(long batch_size, std::initializer_list<feed> feeds, std::span<double> ns_per_kernel) {
    check_profile_entries(ns_per_kernel.size(), compiled_plan().num_kernels);
    prepare_step(batch_size, feeds);
    prog_.run_profiled(batch_size, hypers_, ns_per_kernel.data(), random_key());
    after_step();
    return prog_.output(0)[0];
  }

  // The same step with its feeds named at compile time (kiln/train/named.hpp): step.run(32, "x"_in = x, "y"_in = y).
  // A misspelled, repeated or missing feed, a wrong element type or a static size that is not whole samples is a
  // compile error naming the feed.
  template <class... Named>
    requires(sizeof...(Named) > 0 && (is_named_feed<Named> && ...))
  float run(long batch_size, const Named&... feeds) {
    check_named_feeds<graph_holder, Named...>();
    prepare_step(batch_size, named_feed_list<graph_holder, Named...>{{feeds...}});
    prog_.run(batch_size, hypers_, random_key());
    after_step();
    return prog_.output(0)[0];
  }

  // A parameter or optimizer state named at compile time, with its static shape: param<"fc1.weight">() is a
  // static_matrix_view<float, 128, 784> (a compile error naming it when the model has no such parameter).
  template <fixed_string Name>
  auto param() {
    constexpr int l = named_parameter_leaf<graph_holder, Name>();
    require_held(l);
    return static_matrix_view<float, G.leaves[l].shape.rows, G.leaves[l].shape.cols>{storage_[l].data()};
  }
  template <fixed_string Name>
  auto param() const {
    constexpr int l = named_parameter_leaf<graph_holder, Name>();
    require_held(l);
    return static_matrix_view<const float, G.leaves[l].shape.rows, G.leaves[l].shape.cols>{storage_[l].data()};
  }

  // Parameters and optimizer state by name (PyTorch names: fc1.weight, fc1.weight.exp_avg, …), row-major.
  // (With a sharded optimizer, a state leaf of which this rank holds only its rows is refused, naming the ranks
  // that hold it: gather(name) fetches it whole, held_part(name) is this rank's part.)
  std::span<float> param(std::string_view name) { return storage_[held_leaf_index(name)]; }
  std::span<const float> param(std::string_view name) const { return storage_[held_leaf_index(name)]; }
  // A parameter's or optimizer state's values from the rank that holds them, on every rank: with a sharded
  // optimizer a collective (every rank must call it, in the same order), else a copy of param(name).
  std::vector<float> gather(std::string_view name) {
    const int l = leaf_index(name);
    if (!shards_ || G.leaves[l].kind == leaf_kind::param || !shards_->sharded(l)) return {storage_[l].begin(), storage_[l].end()};
    const long C = G.leaves[l].shape.cols;
    std::vector<float> v(static_cast<std::size_t>(G.leaves[l].shape.rows * C));
    for (const row_share& sh : shards_->shares[static_cast<std::size_t>(l)]) {  // each owner's rows, from it
      const std::span<float> rows(v.data() + sh.begin * C, static_cast<std::size_t>(sh.rows() * C));
      if (sh.rank == comm_->rank()) std::copy(storage_[l].begin(), storage_[l].end(), rows.begin());
      comm_->broadcast(rows, sh.rank);
    }
    return v;
  }
  // The part of `name` this rank holds, and where it starts in the whole (row-major, in values): all of it, or
  // with a sharded optimizer state this rank's rows.
  std::span<float> held_part(std::string_view name) { return storage_[leaf_index(name)]; }
  std::span<const float> held_part(std::string_view name) const { return storage_[leaf_index(name)]; }
  std::size_t held_offset(std::string_view name) const {
    const int l = leaf_index(name);
    if (!shards_ || !shards_->sharded(l) || G.leaves[l].kind == leaf_kind::param) return 0;
    return static_cast<std::size_t>(shards_->mine(l).begin * G.leaves[l].shape.cols);
  }
  void set_param(std::string_view name, std::span<const float> values) {
    std::span<float> p = param(name);
    if (values.size() != p.size())
      throw shape_error("kiln: '" + std::string(name) + "' holds " + std::to_string(p.size()) + " values, given " +
                        std::to_string(values.size()));
    std::copy(values.begin(), values.end(), p.begin());
  }
  int leaf_index(std::string_view name) const {
    for (int l = 0; l < G.num_leaves; ++l)
      if (G.leaves[l].name.view() == name && (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state)) return l;
    throw error("kiln: no parameter or optimizer state named '" + std::string(name) + "'");
  }
  // Whether this rank holds all of `name` (false only for a sharded optimizer state, of which it holds its rows).
  bool holds(std::string_view name) const { return !shards_ || shards_->held[static_cast<std::size_t>(leaf_index(name))]; }
  int held_leaf_index(std::string_view name) const {
    const int l = leaf_index(name);
    require_held(l);
    return l;
  }
  static const graph& step_graph() { return G; }
  static const kiln::plan& compiled_plan() { return plan_holder::value; }
  static std::string plan_text() { return to_string(plan_holder::value); }
  Optimizer& optimizer() { return opt_; }
  // The compiled program (e.g. node_value() after a run, for debugging an unfused step).
  const program<plan_holder>& compiled_program() const { return prog_; }
  // Denormals are flushed to zero during a step unless this is set to false (see kiln/cpu/fp_mode.hpp).
  void set_flush_denormals(bool flush) { prog_.set_flush_denormals(flush); }
  // Runs on `pool` (which must outlive the step) instead of the process-wide default_pool().
  void set_thread_pool(thread_pool& pool) { prog_.set_thread_pool(pool); }
  // Mixed precision with PyTorch autocast's CPU semantics: precision::bf16 rounds the operands of every matrix
  // product (forward and backward) to BF16 and sums in FP32; activations, reductions, softmax, losses and the
  // optimizer run in FP32, and the parameters and optimizer state stay FP32 (the master copy). The products run
  // on this CPU's fastest BF16 path (AMX, else AVX512-BF16, else FP32 where it has neither), or on `path`
  // (error if this CPU lacks it). Convolutions count as matrix products (im2col, then gemm_bf16).
  void set_precision(precision p) { set_precision(p, best_bf16_path()); }
  void set_precision(precision p, bf16_path path) {
    if (p == precision::bf16 && !available(path))
      throw error(std::string("kiln: set_precision: this CPU cannot run ") + describe(path));
    precision_ = p;
    prog_.set_products(p == precision::bf16 ? path : bf16_path::fp32);
  }
  // How this step multiplies, in words (for logs and benchmark headers).
  std::string precision_text() const {
    return precision_ == precision::fp32 ? "fp32 products" : describe(prog_.products());
  }
  long step_count() const { return t_; }
  void set_step_count(long t) { t_ = t; }

  // Data-parallel training (Optimizer = kiln::data_parallel<…>): from now on each step's gradients are summed
  // over comm's ranks in buckets of at most bucket_floats values, overlapping the backward pass, weighted by each
  // rank's share of the batch (optimizer().share, 1/ranks until set otherwise). Every rank must call this with the same model and optimizer (checked: the ranks compare a
  // hash of their compiled plans and parameter names and shapes, and a mismatch throws on every rank, naming the
  // ranks); rank 0's parameters, optimizer state and seed are then broadcast to all. comm must outlive the step.
  // Dropout then draws as if this rank's rows were rows rank, rank + ranks, … of the whole batch (the trainer's
  // split, DistributedSampler's): set_sample_rows says otherwise.
  //
  // With options.shard_optimizer_state (ZeRO stage 1), rank r then keeps only the optimizer state of the
  // parameters it owns (shards(): which, and how much it saves), runs only their update kernels, and
  // broadcasts them after each step; gradients that only their owner reads are summed to it alone.
  void set_communicator(dist::communicator& comm, data_parallel_options options)
    requires requires { Optimizer::is_data_parallel; }
  {
    if (comm_) throw error("kiln: set_communicator was called on this step already");
    check_same_model(comm);
    for (int l = 0; l < G.num_leaves; ++l)
      if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state)
        comm.broadcast(std::span<float>(storage_[l].data(), storage_[l].size()), 0);
    seed_ = comm.all_gather(seed_).front();  // every rank draws with rank 0's key
    set_sample_rows(static_cast<std::uint64_t>(comm.rank()), static_cast<std::uint64_t>(comm.size()));
    opt_.share = 1.0 / comm.size();
    std::vector<std::vector<row_share>> reduce_to;
    if (options.shard_optimizer_state) {
      shards_ = std::make_unique<optimizer_shards>(shard_optimizer(compiled_plan(), comm.size(), comm.rank()));
      unbound_allowed_.assign(static_cast<std::size_t>(G.num_leaves), 0);
      for (int l = 0; l < G.num_leaves; ++l)
        if (!shards_->held[static_cast<std::size_t>(l)]) keep_my_rows(l);
      prog_.set_kernel_mask(shards_->runs.data(), shards_->rows.data(), unbound_allowed_.data());
      reduce_to.resize(static_cast<std::size_t>(G.size));
      for (int i = 0; i < G.size; ++i)
        if (shards_->reduce[static_cast<std::size_t>(i)]) reduce_to[static_cast<std::size_t>(i)] = shards_->shares[static_cast<std::size_t>(G.nodes[i].leaf)];
    }
    buckets_ = std::make_unique<gradient_buckets>(compiled_plan(), prog_.buffers(), comm, options.bucket_floats, std::move(reduce_to));
    prog_.set_collectives(buckets_.get());
    comm_ = &comm;
  }
  void set_communicator(dist::communicator& comm, long bucket_floats = gradient_buckets::default_bucket_floats)
    requires requires { Optimizer::is_data_parallel; }
  {
    set_communicator(comm, data_parallel_options{.bucket_floats = bucket_floats});
  }
  // The sharding of the optimizer state (set_communicator with shard_optimizer_state), or nullptr.
  const optimizer_shards* shards() const { return shards_.get(); }
  // The data-parallel schedule attached by set_communicator (nullptr before): its bucket count and where the
  // steps' time went (kiln-bench's all-reduce rows).
  const gradient_buckets* collectives() const { return buckets_.get(); }
  // The key of the last step's random draws (dropout): {seed, step count, sample rows}. The next step draws with
  // step + 1.
  random::key random_key() const { return {seed_, static_cast<std::uint64_t>(t_), row_first_, row_stride_}; }
  std::uint64_t seed() const { return seed_; }
  // Where this step's batch lies in a whole batch that several steps share (data-parallel ranks): its row r is
  // row first + r·stride there, and dropout draws that row's mask, so the ranks together drop what one process
  // training on the whole batch would. The default, (0, 1), is the whole batch; set_communicator sets
  // (rank, ranks), the trainer's split; a rank given a contiguous block of B/N rows sets (rank·B/N, 1).
  void set_sample_rows(std::uint64_t first, std::uint64_t stride) {
    if (stride < 1) throw error("kiln: set_sample_rows: the stride must be at least 1, got 0");
    row_first_ = first;
    row_stride_ = stride;
  }

 private:
  // Binds the batch and advances the optimizer's step count and hyperparameters (bias corrections).
  template <class Feeds>
  void prepare_step(long batch_size, const Feeds& feeds) {
    detail::bind_feeds(prog_, G, batch_size, feeds, label_buffers_.data());
    ++t_;
    double h[Optimizer::num_hypers];
    opt_.hypers(t_, h);
    for (int i = 0; i < Optimizer::num_hypers; ++i) hypers_[i] = static_cast<float>(h[i]);
  }

  // After a data-parallel step: the model's own state that is not a parameter (batch norm's running statistics,
  // computed from each rank's share of the batch) is made rank 0's on every rank, as DistributedDataParallel's
  // broadcast_buffers does, so that the ranks stay identical.
  // With a sharded optimizer, every parameter then takes its owner's new value (the all-gather).
  void after_step() {
    if (!comm_) return;
    if (shards_)
      for (int l = 0; l < G.num_leaves; ++l)
        if (G.leaves[l].kind == leaf_kind::param)
          for (const row_share& sh : shards_->shares[static_cast<std::size_t>(l)]) {
            const long C = G.leaves[l].shape.cols;
            comm_->broadcast(std::span<float>(storage_[l].data() + sh.begin * C, static_cast<std::size_t>(sh.rows() * C)), sh.rank);
          }
    for (int l = 0; l < G.num_leaves; ++l)
      if (G.leaves[l].kind == leaf_kind::state && G.leaves[l].owner < 0)
        comm_->broadcast(std::span<float>(storage_[l].data(), storage_[l].size()), 0);
  }

  // A sharded state leaf keeps only this rank's rows [b, e), and the plan addresses them where they would be in the
  // whole: the leaf's pointer is set b rows before the first kept value (integer arithmetic: the pointer itself
  // points outside the allocation, and only rows b … e − 1 are ever read or written through it, by this rank's
  // row kernels). A rank with no rows keeps nothing and leaves the leaf unbound: no kernel it runs touches it.
  void keep_my_rows(int l) {
    const row_share mine = shards_->mine(l);
    const long C = G.leaves[l].shape.cols;
    aligned_floats kept(storage_[l].begin() + mine.begin * C, storage_[l].begin() + mine.end * C);
    storage_[l] = std::move(kept);  // (releases the rest)
    if (mine.rows() == 0) {
      prog_.bind_leaf(l, nullptr);
      unbound_allowed_[static_cast<std::size_t>(l)] = 1;
      return;
    }
    const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(storage_[l].data());
    prog_.bind_leaf(l, reinterpret_cast<float*>(first - static_cast<std::uintptr_t>(mine.begin * C) * sizeof(float)));
  }
  void require_held(int l) const {
    if (!shards_ || shards_->held[static_cast<std::size_t>(l)]) return;
    std::string owners;
    for (const row_share& sh : shards_->shares[static_cast<std::size_t>(l)])
      owners += (owners.empty() ? "" : ", ") + std::string("rows [") + std::to_string(sh.begin) + ", " + std::to_string(sh.end) +
                ") on rank " + std::to_string(sh.rank);
    throw error("kiln: '" + std::string(G.leaves[l].name.view()) + "' is sharded over the ranks (" + owners +
                "); gather(name) fetches it, held_part(name) is this rank's part");
  }

  // Every rank's hash of what it compiled (the plan's text, every leaf's name and shape); all must be rank 0's.
  static void check_same_model(dist::communicator& comm) {
    std::string text = plan_text();
    for (int l = 0; l < G.num_leaves; ++l)
      text += std::string(G.leaves[l].name.view()) + ":" + std::to_string(G.leaves[l].shape.rows) + "x" +
              std::to_string(G.leaves[l].shape.cols) + ";";
    const std::vector<std::uint64_t> all = comm.all_gather(fnv1a64(text));
    std::string differ;
    for (std::size_t r = 1; r < all.size(); ++r)
      if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
    if (!differ.empty())
      throw error("kiln: data-parallel ranks compiled different models: rank(s) " + differ +
                  " differ from rank 0 in their plan or parameters (every rank must build the same Model and Optimizer)");
  }

  Optimizer opt_;
  std::unique_ptr<gradient_buckets> buckets_;
  std::unique_ptr<optimizer_shards> shards_;
  std::vector<char> unbound_allowed_;  // by leaf: state of which other ranks hold every row
  dist::communicator* comm_ = nullptr;
  std::uint64_t seed_ = 0;
  std::uint64_t row_first_ = 0, row_stride_ = 1;  // set_sample_rows
  precision precision_ = precision::fp32;
  long t_ = 0;
  float hypers_[Optimizer::num_hypers] = {};
  std::vector<aligned_floats> storage_ = std::vector<aligned_floats>(G.num_leaves);  // by leaf, 64-byte aligned
  std::vector<std::vector<float>> label_buffers_ = std::vector<std::vector<float>>(G.num_leaves);
  program<plan_holder> prog_;
};

}  // namespace kiln::cpu

namespace kiln::cpu {

// The loss and its gradient with respect to every parameter, compiled (no update): for inspection, the
// course's worked examples and gradient checks. Parameters are owned and set by name.
template <class Model, fusion Mode = fusion::fused>
class gradient {
 public:
  using graph_holder = gradient_graph<Model>;
  using plan_holder = frozen_plan<graph_holder, Mode>;
  static constexpr const graph& G = graph_holder::value;

  // seed: the parameters' initial values, and the random key of dropout's draws ({seed, 0}; see set_random_key).
  explicit gradient(std::uint64_t seed = 0) : rng_key_{seed, 0} {
    std::mt19937_64 rng(seed);
    for (int l = 0; l < G.num_leaves; ++l) {
      const leaf_info& info = G.leaves[l];
      if (info.kind != leaf_kind::param) continue;
      storage_[l].resize(static_cast<std::size_t>(info.shape.rows) * static_cast<std::size_t>(info.shape.cols));
      initialize(info, storage_[l], rng);
      prog_.bind_leaf(l, storage_[l].data());
    }
  }
  // Evaluates; returns the loss. Gradients are then available through grad(name).
  float run(long batch_size, std::initializer_list<feed> feeds = {}) {
    detail::bind_feeds(prog_, G, batch_size, feeds, label_buffers_.data());
    prog_.run(batch_size, hypers_, rng_key_);
    return prog_.output(0)[0];
  }
  void set_random_key(const random::key& k) { rng_key_ = k; }
  std::span<float> param(std::string_view name) { return storage_[index(name)]; }
  // ∂loss/∂name from the last run, row-major in the parameter's shape.
  std::span<const float> grad(std::string_view name) const {
    const int l = index(name);
    int k = 0;
    for (int i = 0; i < l; ++i) k += G.leaves[i].kind == leaf_kind::param;
    const node& p = G.nodes[G.outputs[1 + k].node];
    return {prog_.output(1 + k), static_cast<std::size_t>(p.shape.rows) * static_cast<std::size_t>(p.shape.cols)};
  }
  static std::string plan_text() { return to_string(plan_holder::value); }

 private:
  int index(std::string_view name) const {
    for (int l = 0; l < G.num_leaves; ++l)
      if (G.leaves[l].kind == leaf_kind::param && G.leaves[l].name.view() == name) return l;
    throw error("kiln: no parameter named '" + std::string(name) + "'");
  }
  random::key rng_key_;
  float hypers_[1] = {};
  std::vector<aligned_floats> storage_ = std::vector<aligned_floats>(G.num_leaves);  // by leaf, 64-byte aligned
  std::vector<std::vector<float>> label_buffers_ = std::vector<std::vector<float>>(G.num_leaves);
  program<plan_holder> prog_;
};

}  // namespace kiln::cpu
