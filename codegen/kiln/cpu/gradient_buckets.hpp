#pragma once
// The schedule of a data-parallel step's gradient sums on the CPU (the plan's collectives, ops/collective.hpp),
// as PyTorch's DistributedDataParallel buckets them: neighbouring gradients are summed over ranks together, in
// one call per bucket of at most bucket_floats values (a larger gradient is a bucket of its own), started as
// soon as the backward pass has produced the bucket's last gradient, while the kernels that follow run. The
// updates wait (the plan's barrier) until every started sum is complete.
//
// The collectives of a step are consecutive nodes (data_parallel emits them together), so their buffers are
// consecutive in the program's memory and a bucket is one contiguous span: one call, no packing. Every rank runs
// the same plan, so buckets start in the same order on every rank (the communicator's rule).
#include <kiln/core/error.hpp>
#include <kiln/cpu/execute.hpp>
#include <kiln/cpu/optimizer_shards.hpp>
#include <kiln/dist/communicator.hpp>

#include <chrono>
#include <vector>

namespace kiln::cpu {

// Where a data-parallel step's time goes, summed over steps (kiln-bench reports it per step).
struct collective_stats {
  long steps = 0;
  long buckets = 0;         // sums started
  double floats = 0;        // values summed over ranks
  double wait_seconds = 0;  // time the step stood at its barrier, waiting for sums not yet complete
};

class gradient_buckets final : public collective_sink {
 public:
  // Default: 64 Ki floats (256 KiB) a bucket. DDP's default is 25 MB for models of millions of parameters; a
  // bucket should be a fraction of the gradients, so that the first sums start while most of the backward pass
  // remains (the classifier's 109 K gradients make 3 buckets, the CNN's 422 K 4), and large enough that the
  // per-call latency of a sum (microseconds) stays small against its bytes.
  static constexpr long default_bucket_floats = 1L << 16;

  // reduce_to (by node, or empty): a collective with shares has each share's rows summed to that share's rank
  // alone (a sharded optimizer's reduce-scatter, kiln/cpu/optimizer_shards.hpp); a bucket holds either such
  // collectives or all-reduced ones.
  gradient_buckets(const plan& p, float* const* buffers, dist::communicator& comm, long bucket_floats,
                   std::vector<std::vector<row_share>> reduce_to = {})
      : p_(p), buf_(buffers), comm_(comm), bucket_of_kernel_(static_cast<std::size_t>(p.num_kernels), -1),
        reduce_to_(std::move(reduce_to)) {
    if (bucket_floats < 1) throw error("kiln: a gradient bucket must hold at least 1 value, given " + std::to_string(bucket_floats));
    std::vector<int> collectives;  // in node order
    for (int i = 0; i < p.g.size; ++i)
      if (p.g.nodes[i].kind == op::all_reduce) {
        if (p.g.nodes[i].shape.rows == batch) throw error("kiln: a data-parallel sum of a batch-sized value");
        collectives.push_back(i);
      }
    long filled = 0;
    for (const int c : collectives) {
      const long n = size_of(c);
      const bool scatter = reduced(c);
      if (buckets_.empty() || filled + n > bucket_floats || c != buckets_.back().members.back() + 1 || scatter != buckets_.back().scatter) {
        buckets_.push_back({});
        buckets_.back().scatter = scatter;
        filled = 0;
      }
      buckets_.back().members.push_back(c);
      filled += n;
      bucket_of_kernel_[static_cast<std::size_t>(p.kernel_of[c])] = static_cast<int>(buckets_.size()) - 1;
    }
  }

  void ready(int kernel) override {
    const int b = bucket_of_kernel_[static_cast<std::size_t>(kernel)];
    bucket& k = buckets_[static_cast<std::size_t>(b)];
    if (++k.ready < static_cast<int>(k.members.size())) return;
    k.ready = 0;
    start(k);
  }
  void wait() override {
    if (!pending_) return;
    const auto t0 = std::chrono::steady_clock::now();
    comm_.wait_all();
    stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    pending_ = false;
    ++stats_.steps;
  }

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  const collective_stats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  struct bucket {
    std::vector<int> members;  // consecutive collective nodes
    bool scatter = false;      // each member's rows are summed to their owners (else to every rank)
    int ready = 0;             // members copied out this step
  };
  long size_of(int node) const { return static_cast<long>(p_.g.nodes[node].shape.rows) * p_.g.nodes[node].shape.cols; }
  static long padded(long n) { return (n + 15) / 16 * 16; }  // program::prepare's layout

  bool reduced(int node) const { return !reduce_to_.empty() && !reduce_to_[static_cast<std::size_t>(node)].empty(); }

  // A scattered bucket: one reduce per run of rows that go to one rank, joined across neighbouring members.
  void start_scatter(const bucket& k) {
    float* run = nullptr;
    long run_floats = 0;
    int run_rank = -1;
    for (const int m : k.members) {
      const long C = p_.g.nodes[m].shape.cols;
      for (const row_share& sh : reduce_to_[static_cast<std::size_t>(m)]) {
        float* first = buf_[m] + sh.begin * C;
        if (run && sh.rank == run_rank && first == run + run_floats) {
          run_floats += sh.rows() * C;
          continue;
        }
        if (run) start_sum({run, static_cast<std::size_t>(run_floats)}, run_rank);
        run = first, run_floats = sh.rows() * C, run_rank = sh.rank;
      }
    }
    if (run) start_sum({run, static_cast<std::size_t>(run_floats)}, run_rank);
  }

  // One call for the bucket's span when its buffers are adjacent (the program lays them out so); else one each.
  void start(const bucket& k) {
    if (k.scatter) {
      start_scatter(k);
      pending_ = true;
      return;
    }
    float* first = buf_[k.members.front()];
    bool adjacent = true;
    for (std::size_t j = 1; j < k.members.size(); ++j)
      adjacent = adjacent && buf_[k.members[j]] == buf_[k.members[j - 1]] + padded(size_of(k.members[j - 1]));
    if (adjacent) {
      const long n = static_cast<long>(buf_[k.members.back()] - first) + size_of(k.members.back());
      start_sum({first, static_cast<std::size_t>(n)}, -1);
    } else {
      for (const int m : k.members) {
        start_sum({buf_[m], static_cast<std::size_t>(size_of(m))}, -1);
      }
    }
    pending_ = true;
  }
  // data summed over ranks to every rank (root < 0) or to rank root alone
  void start_sum(std::span<float> data, int root) {
    if (root < 0) comm_.start_all_reduce_sum(data);
    else comm_.start_reduce_sum(data, root);
    stats_.floats += static_cast<double>(data.size());
    ++stats_.buckets;
  }

  const plan& p_;
  float* const* buf_;
  dist::communicator& comm_;
  std::vector<bucket> buckets_;
  std::vector<int> bucket_of_kernel_;
  std::vector<std::vector<row_share>> reduce_to_;  // by node (empty: no collective is scattered)
  bool pending_ = false;
  collective_stats stats_;
};

}  // namespace kiln::cpu
