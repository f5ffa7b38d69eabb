#pragma once
// kiln::dist::mpi_communicator: the ranks of an MPI job (MPI_COMM_WORLD) as a kiln communicator.
//
// Sums that a step starts (start_all_reduce_sum) run on a communication thread, one after another in the order
// they were started, while the step's threads go on computing; blocking operations are queued behind them, so
// every rank issues MPI's collectives in one order. The thread is the only caller of MPI between construction
// and destruction (MPI_THREAD_SERIALIZED suffices; MPI_THREAD_MULTIPLE is asked for so that abort() may call
// MPI_Abort while the thread is blocked in a collective). Where the library provides less, every operation
// runs on the caller's thread and nothing overlaps.
//
// Faults: a collective that does not complete within `timeout` (a rank has died or hangs) aborts the job with a
// message naming this rank and what it waited for; an MPI error aborts it with MPI's error string. abort()
// prints "kiln: rank R: why" and calls MPI_Abort, which ends every rank (mpirun names the rank that aborted).
#include <kiln/dist/communicator.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace kiln::dist {

struct mpi_options {
  std::chrono::seconds timeout{300};  // a collective that takes longer means a rank has died or hangs
};

class mpi_communicator final : public communicator {
 public:
  explicit mpi_communicator(int* argc = nullptr, char*** argv = nullptr, mpi_options o = {}) : options_(o) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided_);
      owns_mpi_ = true;
    } else {
      MPI_Query_thread(&provided_);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm local = MPI_COMM_NULL;  // the ranks that share this machine's cores
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    if (provided_ >= MPI_THREAD_SERIALIZED) thread_ = std::thread([this] { serve(); });
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  ~mpi_communicator() override {
    if (thread_.joinable()) {
      wait_all();
      {
        std::lock_guard lock(m_);
        stopping_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // How many ranks run on this machine, and so how many threads each should compute with: the machine's
  // hardware threads shared between them (at least 1). Ranks that each start a pool of every core, next to
  // their communication threads, oversubscribe the cores, and a rank descheduled in a sum stalls them all.
  int local_size() const { return local_size_; }
  int threads_per_rank() const {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, cores / std::max(1, local_size_));
  }
  bool overlaps() const { return thread_.joinable(); }
  // Seconds the communication thread spent in sums that a step started (their total cost, hidden or not).
  double communication_seconds() const {
    std::lock_guard lock(m_);
    return busy_seconds_;
  }

  void all_reduce_sum(std::span<float> data) override {
    run_now([=, this] { return sum(data.data(), static_cast<long>(data.size()), MPI_FLOAT); }, "a sum of floats");
  }
  void all_reduce_sum(std::span<double> data) override {
    run_now([=, this] { return sum(data.data(), static_cast<long>(data.size()), MPI_DOUBLE); }, "a sum of doubles");
  }
  void broadcast(std::span<float> data, int root) override {
    run_now([=, this] {
      for (long done = 0, n = static_cast<long>(data.size()); done < n;) {
        const int part = static_cast<int>(std::min<long>(n - done, INT_MAX / 2));
        if (const int rc = MPI_Bcast(data.data() + done, part, MPI_FLOAT, root, comm_); rc != MPI_SUCCESS) return rc;
        done += part;
      }
      return MPI_SUCCESS;
    }, "a broadcast of parameters");
  }
  std::vector<std::uint64_t> all_gather(std::uint64_t value) override {
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    run_now([&, this] { return MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_); }, "a gather");
    return all;
  }
  void start_all_reduce_sum(std::span<float> data) override { start_sum(data, -1, "a sum of floats"); }
  void start_reduce_sum(std::span<float> data, int root) override { start_sum(data, root, "a sum to one rank"); }
  void wait_all() override {
    if (!thread_.joinable()) return;
    std::unique_lock lock(m_);
    wait_for(lock, submitted_, "the step's gradient sums");
  }
  [[noreturn]] void abort(const std::string& why) override {
    const std::string text = why.rfind("kiln: ", 0) == 0 ? why.substr(6) : why;  // (kiln's errors say "kiln: ")
    std::fprintf(stderr, "kiln: rank %d: %s\n", rank_, text.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();  // (MPI_Abort does not return)
  }

 private:
  // data ← Σ over ranks on every rank (root < 0) or on rank root alone, in parts of at most INT_MAX / 2 values
  // (MPI's counts are int).
  int sum(void* data, long n, MPI_Datatype type, int root = -1) {
    const long bytes = type == MPI_DOUBLE ? 8 : 4;
    for (long done = 0; done < n;) {
      const int part = static_cast<int>(std::min<long>(n - done, INT_MAX / 2));
      char* at = static_cast<char*>(data) + done * bytes;
      const int rc = root < 0        ? MPI_Allreduce(MPI_IN_PLACE, at, part, type, MPI_SUM, comm_)
                     : root == rank_ ? MPI_Reduce(MPI_IN_PLACE, at, part, type, MPI_SUM, root, comm_)
                                     : MPI_Reduce(at, nullptr, part, type, MPI_SUM, root, comm_);
      if (rc != MPI_SUCCESS) return rc;
      done += part;
    }
    return MPI_SUCCESS;
  }

  // A sum (to every rank when root < 0) queued on the communication thread and timed there; run at once where
  // there is no such thread.
  void start_sum(std::span<float> data, int root, const char* what) {
    auto timed = [=, this] {
      const auto t0 = std::chrono::steady_clock::now();
      const int rc = sum(data.data(), static_cast<long>(data.size()), MPI_FLOAT, root);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard lock(m_);
      busy_seconds_ += s;
      return rc;
    };
    if (!thread_.joinable()) return check(timed(), what);
    submit(timed);
  }

  // Queues f (returning an MPI error code) behind what was started; returns its ticket.
  long submit(std::function<int()> f) {
    long ticket = 0;
    {
      std::lock_guard lock(m_);
      queue_.push_back(std::move(f));
      ticket = ++submitted_;
    }
    cv_.notify_all();
    return ticket;
  }
  // Runs f behind everything started and waits for it.
  void run_now(std::function<int()> f, const char* what) {
    if (!thread_.joinable()) {
      check(f(), what);
      return;
    }
    const long ticket = submit(std::move(f));
    std::unique_lock lock(m_);
    wait_for(lock, ticket, what);
  }
  void wait_for(std::unique_lock<std::mutex>& lock, long ticket, const char* what) {
    const bool done = cv_.wait_for(lock, options_.timeout, [&] { return completed_ >= ticket || error_ != MPI_SUCCESS; });
    if (error_ != MPI_SUCCESS) {
      const int rc = error_;
      lock.unlock();
      check(rc, what);
    }
    if (!done) {
      lock.unlock();
      abort(std::string(what) + " did not complete within " + std::to_string(options_.timeout.count()) +
            " s: another rank has stopped or hangs");
    }
  }
  void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    abort(std::string("MPI failed in ") + what + ": " + std::string(text, static_cast<std::size_t>(len)));
  }
  void serve() {
    std::unique_lock lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::function<int()> f = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      const int rc = f();
      lock.lock();
      ++completed_;
      if (rc != MPI_SUCCESS) error_ = rc;
      cv_.notify_all();
    }
  }

  mpi_options options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_size_ = 1, provided_ = MPI_THREAD_SINGLE;
  bool owns_mpi_ = false;
  std::thread thread_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<int()>> queue_;
  long submitted_ = 0, completed_ = 0;
  int error_ = MPI_SUCCESS;
  bool stopping_ = false;
  double busy_seconds_ = 0;
};

}  // namespace kiln::dist
