// Updates that need every gradient first (kiln/train/gradient_barriers.hpp): clipping by the global gradient norm
// and data-parallel gradient sums, in one process. Each is checked against the double reference evaluator
// (fused and unfused); the plan must hold its barrier (no update in a gradient's epilogue, every update after the
// sums it reads) and start each sum right after its gradient; the bucket schedule must sum every gradient once,
// in place, before the updates read it — checked with a communicator that stands for two identical ranks and
// completes its sums late, on a thread of its own. Several ranks over MPI: tests/dist/.
#include "../core/backend_compare.hpp"

#include <kiln/dist/communicator.hpp>
#include <kiln/train/gradient_barriers.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

namespace {

struct clip_model { constexpr auto operator()() const { return cross_entropy(mlp(kiln::tanh)(x), y); } };

TEST_CASE("clip_grad_norm and data_parallel: fused == unfused == reference", "[barrier]") {
  for (long batch : {1L, 7L, 64L}) {
    // max_norm 0.05 clips every step of these models, 1e3 none
    compare<clip_model>(clip_grad_norm<adam>{.inner = {.lr = 1e-2}, .max_norm = 0.05}, batch, 61, 4);
    compare<clip_model>(clip_grad_norm<adam>{.inner = {.lr = 1e-2}, .max_norm = 1e3}, batch, 62, 3);
    compare<mse_model<relu_fn>>(clip_grad_norm<momentum>{.inner = {.lr = 0.05, .momentum = 0.9}, .max_norm = 0.1}, batch, 63, 4);
    compare<residual_model>(data_parallel<adamw>{.inner = {.lr = 1e-2}}, batch, 64, 3);
    compare<mse_model<gelu_fn>>(data_parallel<clip_grad_norm<sgd>>{.inner = {.inner = {.lr = 0.1}, .max_norm = 0.2}}, batch, 65, 4);
  }
}

// Kernels whose stores assign a parameter (an optimizer update), by kernel kind.
int updates_in(const plan& p, kernel_kind kind) {
  int n = 0;
  for (int k = 0; k < p.num_kernels; ++k)
    for (int s = p.kernels[k].store_begin; s < p.kernels[k].store_end; ++s)
      n += p.kernels[k].kind == kind && p.assign[p.stores[s]] >= 0 && p.g.leaves[p.assign[p.stores[s]]].kind == leaf_kind::param;
  return n;
}

TEST_CASE("the barrier: updates leave the gradients' epilogues only where a barrier stands between", "[barrier]") {
  using plain = cpu::train_step<residual_model, adam>;
  using clipped = cpu::train_step<residual_model, clip_grad_norm<adam>>;
  using parallel = cpu::train_step<residual_model, data_parallel<adam>>;
  INFO(parallel::plan_text());
  // without a barrier Adam's weight updates run in the epilogues of the weight gradients' contractions
  CHECK(updates_in(plain::compiled_plan(), kernel_kind::contraction) == 4);
  CHECK(updates_in(clipped::compiled_plan(), kernel_kind::contraction) == 0);
  CHECK(updates_in(parallel::compiled_plan(), kernel_kind::contraction) == 0);
  CHECK(updates_in(parallel::compiled_plan(), kernel_kind::elementwise) == 8);

  const plan& p = parallel::compiled_plan();
  int collectives = 0, first_collective = -1, last_gradient = -1, first_reader = -1;
  for (int k = 0; k < p.num_kernels; ++k) {
    if (is_collective_kernel(p, k)) {
      ++collectives;
      if (first_collective < 0) first_collective = k;
      // right after the kernel that computes its gradient
      const int operand = p.g.nodes[p.kernels[k].anchor].in[0];
      CHECK(p.kernel_of[operand] >= 0);
      CHECK(p.kernel_of[operand] < k);
      last_gradient = std::max(last_gradient, p.kernel_of[operand]);
    }
    if (kernel_reads_collective(p, k) && first_reader < 0) first_reader = k;
  }
  CHECK(collectives == 8);  // 4 weights, 4 biases
  CHECK(first_collective < last_gradient);  // the first sum starts while gradients are still being computed
  CHECK(first_reader > last_gradient);      // the updates wait for all of them
  for (int k = 0; k < p.num_kernels; ++k)
    if (is_collective_kernel(p, k)) CHECK(k < first_reader);
}

// Two identical ranks, simulated: a sum over ranks doubles each value. Started sums complete on a thread of
// their own after a delay, so an update that read a sum before wait_all() would see an undoubled gradient.
class two_identical_ranks final : public dist::communicator {
 public:
  two_identical_ranks() : worker_([this] { serve(); }) {}
  ~two_identical_ranks() override {
    {
      std::lock_guard l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void all_reduce_sum(std::span<float> d) override { for (float& v : d) v *= 2; }
  void all_reduce_sum(std::span<double> d) override { for (double& v : d) v *= 2; }
  void broadcast(std::span<float>, int) override { ++broadcasts; }
  std::vector<std::uint64_t> all_gather(std::uint64_t v) override { return {v, v}; }
  void start_all_reduce_sum(std::span<float> d) override {
    std::lock_guard l(m_);
    queue_.push_back(d);
    ++started;
    cv_.notify_all();
  }
  void wait_all() override {
    std::unique_lock l(m_);
    cv_.wait(l, [&] { return queue_.empty() && !busy_; });
  }
  [[noreturn]] void abort(const std::string& why) override { throw error(why); }
  std::atomic<int> started{0}, broadcasts{0};
  double floats = 0;

 private:
  void serve() {
    std::unique_lock l(m_);
    for (;;) {
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      const std::span<float> d = queue_.front();
      busy_ = true;
      l.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      for (float& v : d) v *= 2;
      l.lock();
      floats += static_cast<double>(d.size());
      queue_.pop_front();
      busy_ = false;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::span<float>> queue_;
  bool busy_ = false, stop_ = false;
  std::thread worker_;
};

template <class Step>
void expect_same_parameters(Step& a, cpu::train_step<residual_model, adam>& b) {
  const graph& g = Step::G;
  for (int l = 0; l < g.num_leaves; ++l) {
    if (g.leaves[l].kind != leaf_kind::param && g.leaves[l].kind != leaf_kind::state) continue;
    const std::string name(g.leaves[l].name.view());
    const auto u = a.param(name), v = b.param(name);
    for (std::size_t j = 0; j < u.size(); ++j) {
      INFO(name << "[" << j << "]");
      REQUIRE(u[j] == Approx(v[j]).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("data_parallel: sums over ranks complete, in place, before the updates read them", "[barrier]") {
  const long batch = 24;
  std::vector<float> xs(static_cast<std::size_t>(batch * 6));
  std::vector<std::int32_t> ys(static_cast<std::size_t>(batch));
  std::mt19937_64 r(7);
  std::uniform_real_distribution<double> u(-2, 2);
  cpu::train_step<residual_model, adam> single({.lr = 1e-2}, 5);
  for (long bucket : {1L, 40L, 1L << 20}) {
    INFO("bucket floats " << bucket);
    cpu::train_step<residual_model, data_parallel<adam>> parallel({.inner = {.lr = 1e-2}}, 5);
    cpu::train_step<residual_model, adam> reference({.lr = 1e-2}, 5);
    two_identical_ranks comm;
    parallel.set_communicator(comm, bucket);
    CHECK(parallel.optimizer().share == 0.5);
    CHECK(comm.broadcasts == 8 + 16);  // every parameter and both Adam moments of each
    const int buckets = parallel.collectives()->num_buckets();
    if (bucket == 1) CHECK(buckets == 8);  // each gradient alone
    if (bucket == (1L << 20)) CHECK(buckets == 1);
    if (bucket == 40) CHECK((buckets > 1 && buckets < 8));
    for (int step = 1; step <= 4; ++step) {
      for (float& v : xs) v = static_cast<float>(u(r));
      for (std::int32_t& v : ys) v = static_cast<std::int32_t>(r() % 3);
      const float a = parallel.run(batch, {{"x", xs}, {"y", ys}});
      const float b = reference.run(batch, {{"x", xs}, {"y", ys}});
      CHECK(a == Approx(b).epsilon(1e-5));
      expect_same_parameters(parallel, reference);
    }
    CHECK(comm.started == 4 * buckets);
    // every gradient summed once a step: 4 weights 5·6 + 5·5 + 5·5 + 3·5, biases 5 + 5 + 5 + 3, and the padding
    // between adjacent buffers (16-float blocks) that a bucket spans
    CHECK(comm.floats >= 4 * (30 + 25 + 25 + 15 + 18));
    CHECK(parallel.collectives()->stats().steps == 4);
  }
}

// ZeRO-1's division of the work (kiln/cpu/optimizer_shards.hpp), derived from the plan for every rank of 1 … 5.
// Its result over MPI (the same parameters as one process, ZeRO-1 on and off): tests/dist/distributed_steps.cpp.
TEST_CASE("optimizer shards: each update row runs on one rank, the state is divided evenly, sums go to the owners", "[barrier]") {
  const plan& p = cpu::train_step<residual_model, data_parallel<adam>>::compiled_plan();
  const plan& clipped = frozen_plan<step_graph<residual_model, data_parallel<clip_grad_norm<adam>>>, fusion::fused>::value;
  const long total = 2 * (30 + 25 + 25 + 15 + 5 + 5 + 5 + 3);  // Adam's two moments of every parameter
  for (int ranks = 1; ranks <= 5; ++ranks) {
    INFO(ranks << " ranks");
    std::vector<long> rows_run(static_cast<std::size_t>(p.num_kernels), 0);  // over all ranks
    std::vector<int> ranks_run(static_cast<std::size_t>(p.num_kernels), 0);
    long held = 0;
    for (int r = 0; r < ranks; ++r) {
      const cpu::optimizer_shards s = cpu::shard_optimizer(p, ranks, r);
      CHECK(s.state_floats == total);
      // each rank holds its equal part, give or take a row (at most 6 values) of each of the 8 parameters' moments
      CHECK(std::abs(static_cast<double>(s.state_floats_held) - static_cast<double>(total) / ranks) <= 2 * 8 * 6);
      held += s.state_floats_held;
      for (int k = 0; k < p.num_kernels; ++k) {
        if (!s.runs[static_cast<std::size_t>(k)]) continue;
        ++ranks_run[static_cast<std::size_t>(k)];
        const long b = s.rows[2 * static_cast<std::size_t>(k)], e = s.rows[2 * static_cast<std::size_t>(k) + 1];
        rows_run[static_cast<std::size_t>(k)] += b < 0 ? p.kernels[k].domain.rows : e - b;
      }
      // owners follow the order in which the gradients are summed: each rank's rows are one contiguous run
      int last_owner = 0;
      for (int i = 0; i < p.g.size; ++i)
        if (p.g.nodes[i].kind == op::all_reduce) {
          REQUIRE(p.g.nodes[i].leaf >= 0);
          const std::vector<cpu::row_share>& shares = s.shares[static_cast<std::size_t>(p.g.nodes[i].leaf)];
          REQUIRE(!shares.empty());
          long next_row = 0;
          for (const cpu::row_share& sh : shares) {
            CHECK(sh.rank >= last_owner);
            CHECK(sh.rank < ranks);
            CHECK(sh.begin == next_row);
            CHECK(sh.rows() > 0);
            next_row = sh.end;
            last_owner = sh.rank;
          }
          CHECK(next_row == p.g.leaves[p.g.nodes[i].leaf].shape.rows);
          CHECK(s.reduce[static_cast<std::size_t>(i)]);  // only their owners read the sum's rows
        }
      const cpu::optimizer_shards c = cpu::shard_optimizer(clipped, ranks, r);
      for (int i = 0; i < clipped.g.size; ++i)  // the global norm reads every sum whole on every rank
        if (clipped.g.nodes[i].kind == op::all_reduce) CHECK(!c.reduce[static_cast<std::size_t>(i)]);
    }
    CHECK(held == total);  // divided, never duplicated
    for (int k = 0; k < p.num_kernels; ++k) {
      bool update = false;
      for (int s = p.kernels[k].store_begin; s < p.kernels[k].store_end; ++s)
        update = update || (p.assign[p.stores[s]] >= 0 && p.g.leaves[p.assign[p.stores[s]]].kind == leaf_kind::param);
      INFO("kernel " << k);
      if (update) CHECK(rows_run[static_cast<std::size_t>(k)] == p.kernels[k].domain.rows);  // every row once
      else CHECK(ranks_run[static_cast<std::size_t>(k)] == ranks);  // the forward and backward passes everywhere
    }
  }
  REQUIRE_THROWS_WITH(cpu::shard_optimizer(p, 2, 2), Catch::Matchers::Contains("rank 2 of 2 ranks"));
}

TEST_CASE("data_parallel: ranks that compiled different models are refused, naming them", "[barrier]") {
  struct other_rank_differs final : dist::communicator {
    int rank() const override { return 0; }
    int size() const override { return 3; }
    void all_reduce_sum(std::span<float>) override {}
    void all_reduce_sum(std::span<double>) override {}
    void broadcast(std::span<float>, int) override {}
    std::vector<std::uint64_t> all_gather(std::uint64_t v) override { return {v, v, v + 1}; }
    [[noreturn]] void abort(const std::string& why) override { throw error(why); }
  } comm;
  cpu::train_step<residual_model, data_parallel<adam>> step;
  REQUIRE_THROWS_WITH(step.set_communicator(comm), Catch::Matchers::Contains("rank(s) 2 differ from rank 0"));
  dist::single_process one;
  step.set_communicator(one);  // a group of one is data parallelism over one rank
  CHECK(step.optimizer().share == 1);
}

}  // namespace
