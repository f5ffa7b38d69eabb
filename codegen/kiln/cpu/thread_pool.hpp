#pragma once
// A persistent thread pool for the CPU backend. parallel_for(n, f) runs f(task, thread) for task in [0, n)
// on the pool's threads (the caller is thread 0 and takes tasks too) and returns when all are done.
//
// Per call it allocates nothing and hops no threads when n == 1: f is passed by address through a plain
// function-pointer trampoline, tasks are claimed from one atomic word, and workers spin for a few tens of
// microseconds after each job (so that a training step's many back-to-back kernels reach them awake) before
// they sleep on a condition variable. (std::atomic wait/notify was used first; libstdc++ 12's implementation
// lost wake-ups under load and hung the pool, so sleeping goes through a mutex, which is only touched when a
// thread actually sleeps or wakes one.)
//
// The job word packs (job id : 32 | task count : 16 | next task : 16). A worker claims a task by
// compare-exchange on the whole word, so a late worker can never claim a task of a job other than the one it
// read, and the job's function is read only after a successful claim, while the caller is still waiting for
// that task; the caller therefore never waits for stragglers, only for its tasks. An exception thrown by a
// task is rethrown by parallel_for in the caller after all tasks have finished. Tasks run in the caller's
// floating-point mode (denormal flushing, see fp_mode.hpp), whichever thread runs them.
#include <kiln/core/error.hpp>
#include <kiln/cpu/fp_mode.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kiln::cpu {

class thread_pool {
 public:
  // threads >= 1 counts the caller: threads - 1 workers are started.
  explicit thread_pool(int threads) : threads_(threads) {
    if (threads < 1 || threads > max_threads)
      throw error("kiln::cpu::thread_pool: thread count must be in [1, " + std::to_string(max_threads) + "], got " +
                  std::to_string(threads));
    workers_.reserve(static_cast<std::size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
  }
  ~thread_pool() {
    stop_.store(true, std::memory_order_seq_cst);
    state_.fetch_add(job_id_one, std::memory_order_seq_cst);  // a new id wakes everyone; task count 0
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    wake_cv_.notify_all();
    for (std::thread& w : workers_) w.join();
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int num_threads() const { return threads_; }

  // While one of these is open, idle workers keep spinning instead of going to sleep after the ~30 µs spin
  // window. A training step opens one for its duration: its parallel kernels are separated by single-threaded
  // ones that often outlast the window, and a sleeping worker takes tens of microseconds to wake (a futex
  // wake-up and a reschedule), during which the caller runs its share and then the worker's. Measured with
  // kiln-bench on 2 cores: the classifier's batch-256 step went from 0.70-0.81 ms to 0.59 ms. Outside steps
  // the workers still sleep, so an idle model burns no CPU.
  class keep_awake {
   public:
    explicit keep_awake(thread_pool& pool) : pool_(pool) { pool_.awake_scopes_.fetch_add(1, std::memory_order_relaxed); }
    ~keep_awake() { pool_.awake_scopes_.fetch_sub(1, std::memory_order_relaxed); }
    keep_awake(const keep_awake&) = delete;
    keep_awake& operator=(const keep_awake&) = delete;

   private:
    thread_pool& pool_;
  };

  // Calls f(task, thread) for every task in [0, n_tasks), thread in [0, num_threads()), and returns when all
  // calls have returned. Called from inside a task, the tasks run inline on the calling thread.
  // f is called only through invoke<F>, on the pool's threads and on the caller's alike, so that its body is
  // compiled once; everything else is the one non-template run_tasks (a plan's kernels each call parallel_for,
  // and inlining this scaffolding and a second copy of f into each of them doubled their machine code).
  template <class F>
  void parallel_for(int n_tasks, F&& f) {
    using fn_type = std::remove_reference_t<F>;
    run_tasks(n_tasks, &invoke<fn_type>, const_cast<void*>(static_cast<const void*>(&f)));
  }
  // f(0, 0) on the calling thread, through the same compiled copy of f as parallel_for's tasks: a single task
  // without run_tasks' checks (the per-kernel cost of a tiny step).
  template <class F>
  static void run_single(F&& f) {
    using fn_type = std::remove_reference_t<F>;
    invoke<fn_type>(const_cast<void*>(static_cast<const void*>(&f)), 0, 0);
  }

 private:
  static constexpr int max_threads = 4096;
  static constexpr int max_tasks_per_job = 0xFFFF;
  static constexpr std::uint64_t job_id_one = std::uint64_t{1} << 32;
  using trampoline = void (*)(void* fn, int task, int thread);

  [[gnu::noinline]] void run_tasks(int n_tasks, trampoline fn, void* f) {
    if (n_tasks <= 0) return;
    if (n_tasks == 1 || threads_ == 1 || current_thread() >= 0) {
      const int thread = std::max(0, current_thread());
      for (int t = 0; t < n_tasks; ++t) fn(f, t, thread);
      return;
    }
    std::lock_guard<std::mutex> one_job_at_a_time(call_mutex_);
    for (int first = 0; first < n_tasks; first += max_tasks_per_job) {
      const int count = std::min(max_tasks_per_job, n_tasks - first);
      run_job(count, first, fn, f);
    }
  }

  template <class F>
  [[gnu::noinline]] static void invoke(void* fn, int task, int thread) {
    (*static_cast<F*>(fn))(task, thread);
  }

  static std::uint64_t task_count(std::uint64_t s) { return (s >> 16) & 0xFFFF; }
  static std::uint64_t next_task(std::uint64_t s) { return s & 0xFFFF; }

  // Index of the calling thread in the pool running a task, -1 outside any task.
  static int& current_thread() {
    thread_local int index = -1;
    return index;
  }

  static void relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }

  // Spins until pred(), or until ~30 µs have passed with no keep_awake scope open; returns pred().
  template <class Pred>
  bool spin_until(Pred pred) const {
    using clock = std::chrono::steady_clock;
    constexpr auto window = std::chrono::microseconds(30);
    auto deadline = clock::now() + window;
    for (int i = 0;; ++i) {
      if (pred()) return true;
      relax();
      if ((i & 31) == 31) {
        const auto now = clock::now();
        if (now <= deadline) continue;
        if (awake_scopes_.load(std::memory_order_relaxed) == 0) return pred();
        deadline = now + window;
      }
    }
  }

  // Claims and runs tasks of the current job until none are left; returns the job word that said so.
  std::uint64_t work(int thread) {
    std::uint64_t s = state_.load(std::memory_order_acquire);
    while (next_task(s) < task_count(s)) {
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      const int task = static_cast<int>(next_task(s));
      current_thread() = thread;
      if (fp_control() != fp_control_) set_fp_control(fp_control_);
      try {
        call_(fn_, first_task_ + task, thread);
      } catch (...) {
        if (!failed_.exchange(true, std::memory_order_acq_rel)) error_ = std::current_exception();
      }
      current_thread() = -1;
      // Last access to this job's fields: once done_ reaches the count the caller may start another job.
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(task_count(s))) {
        // the caller checks done_ under done_mutex_ before sleeping, so taking it here means it cannot miss this
        { std::lock_guard<std::mutex> lock(done_mutex_); }
        done_cv_.notify_one();
      }
      s = state_.load(std::memory_order_acquire);
    }
    return s;
  }

  void run_job(int count, int first, trampoline call, void* fn) {
    call_ = call;
    fn_ = fn;
    first_task_ = first;
    fp_control_ = fp_control();
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    const std::uint64_t id = (state_.load(std::memory_order_relaxed) >> 32) + 1;
    state_.store((id << 32) | (static_cast<std::uint64_t>(count) << 16), std::memory_order_seq_cst);
    // seq_cst with the sleeper count: either this sees a sleeper and wakes it, or the sleeper (which counts
    // itself before its last check) sees the new word and does not sleep.
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(sleep_mutex_); }
      wake_cv_.notify_all();
    }
    work(0);
    const auto all_done = [&] { return done_.load(std::memory_order_acquire) == count; };
    if (!spin_until(all_done)) {
      std::unique_lock<std::mutex> lock(done_mutex_);
      done_cv_.wait(lock, all_done);
    }
    if (failed_.load(std::memory_order_acquire)) std::rethrow_exception(error_);
  }

  // Waits for the job word to change from the last one handled (a new job, or stop), then works on it.
  // `seen` starts at the pool's initial word: a job (or stop) published before this thread got going counts.
  void worker_loop(int thread) {
    std::uint64_t seen = 0;
    const auto changed = [&] {
      return state_.load(std::memory_order_seq_cst) != seen || stop_.load(std::memory_order_seq_cst);
    };
    for (;;) {
      if (!spin_until(changed)) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_cv_.wait(lock, changed);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = work(thread);
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;
  alignas(64) std::atomic<std::uint64_t> state_{0};
  alignas(64) std::atomic<int> done_{0};
  std::atomic<int> awake_scopes_{0};  // open keep_awake scopes
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mutex_;              // sleeping workers wait on wake_cv_ for a new job word
  std::condition_variable wake_cv_;
  std::mutex done_mutex_;               // a sleeping caller waits on done_cv_ for its job's last task
  std::condition_variable done_cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  // The job: written by the caller before state_ publishes it, read by workers after they claim a task.
  trampoline call_ = nullptr;
  void* fn_ = nullptr;
  int first_task_ = 0;
  std::uint64_t fp_control_ = 0;  // the caller's floating-point control word
  std::exception_ptr error_;
};

namespace thread_pool_detail {
// KILN_NUM_THREADS if set (a positive integer), else the hardware's thread count.
inline int configured_threads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1 || n > 4096)
      throw error(std::string("KILN_NUM_THREADS must be a whole number in [1, 4096], found '") + env + "'");
    return static_cast<int>(n);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
}  // namespace thread_pool_detail

// The process-wide pool, created on first use.
inline thread_pool& default_pool() {
  static thread_pool pool(thread_pool_detail::configured_threads());
  return pool;
}

}  // namespace kiln::cpu
