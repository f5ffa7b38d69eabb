#pragma once
// A group of ranks that train one model data-parallel, as a step needs it: sums over ranks (blocking, or
// started now and completed by wait_all, so that communication overlaps computation), a broadcast of the
// parameters from rank 0, a gather of one value per rank (to check that all ranks compiled the same model),
// and an abort that takes every rank down with a message naming the rank that failed.
//
// Collectives are issued in the same order on every rank (MPI's rule); the ranks' steps guarantee it, because
// every rank runs the same plan. single_process is the group of one: every operation is the identity.
// An MPI implementation lives in <kiln/dist/mpi.hpp> (built only where MPI is found).
#include <kiln/core/error.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::dist {

class communicator {
 public:
  virtual ~communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // data ← Σ over ranks of data, in place; returns when complete.
  virtual void all_reduce_sum(std::span<float> data) = 0;
  virtual void all_reduce_sum(std::span<double> data) = 0;
  // data ← rank root's data.
  virtual void broadcast(std::span<float> data, int root) = 0;
  // Every rank's value, by rank.
  virtual std::vector<std::uint64_t> all_gather(std::uint64_t value) = 0;
  // Starts data ← Σ over ranks of data; data must stay untouched until wait_all() returns. Sums started by
  // one thread complete in the order they were started.
  virtual void start_all_reduce_sum(std::span<float> data) { all_reduce_sum(data); }
  // Starts data ← Σ over ranks of data on rank root only (other ranks' data is then unspecified: a sharded
  // optimizer's reduce); completed, like the sums, by wait_all(). By default an all-reduce, which includes it.
  virtual void start_reduce_sum(std::span<float> data, int root) {
    (void)root;
    start_all_reduce_sum(data);
  }
  // Completes every sum started so far.
  virtual void wait_all() {}
  // Stops every rank: prints "kiln: rank R: why" and ends the run with an error (never returns).
  [[noreturn]] virtual void abort(const std::string& why) = 0;

  bool is_root() const { return rank() == 0; }
};

class single_process final : public communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(std::span<float>) override {}
  void all_reduce_sum(std::span<double>) override {}
  void broadcast(std::span<float>, int) override {}
  std::vector<std::uint64_t> all_gather(std::uint64_t value) override { return {value}; }
  [[noreturn]] void abort(const std::string& why) override { throw error("kiln: rank 0: " + why); }
};

}  // namespace kiln::dist
