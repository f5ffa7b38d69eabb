// kiln::cpu::thread_pool: every task runs exactly once on a valid thread, for task counts below, at and above
// the thread count and past one job word (65535 tasks); nested calls run inline; exceptions reach the caller;
// many back-to-back calls work; and parallel_for allocates nothing (global operator new is counted here).
#include "../sanitizer_build.hpp"

#include <kiln/cpu/thread_pool.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

// ---- allocation counting for this executable: every global operator new goes through here. AddressSanitizer
// brings its own operator new, which a replacement cannot cleanly coexist with; the zero-allocation check
// then runs only in ordinary builds.
#define KILN_TEST_COUNTS_ALLOCATIONS (!KILN_TEST_SANITIZED)

#if KILN_TEST_COUNTS_ALLOCATIONS
namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
void* counted_alloc(std::size_t n, std::size_t align = 0) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = align ? std::aligned_alloc(align, (n + align - 1) / align * align) : std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

namespace kiln::cpu {
namespace {

// Runs n tasks and checks each ran once with a thread index in range; returns the sum of task indices.
long run_and_check(thread_pool& pool, int n) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(n));
  std::atomic<long> sum{0};
  std::atomic<int> bad_thread{0};
  pool.parallel_for(n, [&](int task, int thread) {
    runs[static_cast<std::size_t>(task)].fetch_add(1);
    sum.fetch_add(task);
    if (thread < 0 || thread >= pool.num_threads()) bad_thread.fetch_add(1);
  });
  int wrong = 0;
  for (auto& r : runs) wrong += r.load() != 1;
  CHECK(wrong == 0);
  CHECK(bad_thread.load() == 0);
  return sum.load();
}

TEST_CASE("every task runs exactly once, for task counts below, at and above the thread count") {
  for (int threads : {1, 2, 3, 5}) {
    thread_pool pool(threads);
    REQUIRE(pool.num_threads() == threads);
    for (int n : {0, 1, 2, 3, 4, 5, 7, 16, 100, 1000}) {
      INFO("threads = " << threads << ", tasks = " << n);
      CHECK(run_and_check(pool, n) == static_cast<long>(n) * (n - 1) / 2);
    }
  }
}

TEST_CASE("more tasks than one job word holds") {
  thread_pool pool(3);
  const int n = 150000;
  CHECK(run_and_check(pool, n) == static_cast<long>(n) * (n - 1) / 2);
}

TEST_CASE("one task runs on the calling thread") {
  thread_pool pool(4);
  std::thread::id ran_on;
  int thread_index = -1;
  pool.parallel_for(1, [&](int, int thread) {
    ran_on = std::this_thread::get_id();
    thread_index = thread;
  });
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(thread_index == 0);
}

TEST_CASE("the work is actually shared between threads") {
  thread_pool pool(2);
  std::atomic<int> seen_worker{0};
  for (int attempt = 0; attempt < 200 && seen_worker.load() == 0; ++attempt)
    pool.parallel_for(8, [&](int, int thread) {
      if (thread != 0) seen_worker.store(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  CHECK(seen_worker.load() == 1);
}

TEST_CASE("many successive calls") {
  thread_pool pool(2);
  std::atomic<long> total{0};
  for (int call = 0; call < 20000; ++call)
    pool.parallel_for(1 + call % 5, [&](int task, int) { total.fetch_add(task + 1); });
  long expect = 0;
  for (int call = 0; call < 20000; ++call) {
    const int n = 1 + call % 5;
    expect += static_cast<long>(n) * (n + 1) / 2;
  }
  CHECK(total.load() == expect);
}

TEST_CASE("a parallel_for inside a task runs inline on that thread") {
  thread_pool pool(3);
  std::atomic<int> inner_runs{0}, wrong_thread{0};
  pool.parallel_for(6, [&](int, int outer_thread) {
    pool.parallel_for(4, [&](int, int inner_thread) {
      inner_runs.fetch_add(1);
      if (inner_thread != outer_thread) wrong_thread.fetch_add(1);
    });
  });
  CHECK(inner_runs.load() == 24);
  CHECK(wrong_thread.load() == 0);
}

TEST_CASE("an exception in a task reaches the caller after all tasks finished") {
  thread_pool pool(3);
  std::atomic<int> finished{0};
  CHECK_THROWS_WITH(pool.parallel_for(12,
                                      [&](int task, int) {
                                        if (task == 5) throw std::runtime_error("task 5 failed");
                                        std::this_thread::sleep_for(std::chrono::microseconds(100));
                                        finished.fetch_add(1);
                                      }),
                    "task 5 failed");
  CHECK(finished.load() == 11);
  CHECK(run_and_check(pool, 10) == 45);  // still usable
}

TEST_CASE("two outside threads may share one pool") {
  thread_pool pool(2);
  std::atomic<long> a{0}, b{0};
  std::thread other([&] {
    for (int i = 0; i < 2000; ++i) pool.parallel_for(3, [&](int t, int) { a.fetch_add(t); });
  });
  for (int i = 0; i < 2000; ++i) pool.parallel_for(4, [&](int t, int) { b.fetch_add(t); });
  other.join();
  CHECK(a.load() == 2000L * 3);
  CHECK(b.load() == 2000L * 6);
}

#if KILN_TEST_COUNTS_ALLOCATIONS
TEST_CASE("parallel_for allocates nothing") {
  thread_pool pool(3);
  std::vector<long> partial(64, 0);
  auto body = [&](int task, int) { partial[static_cast<std::size_t>(task)] += task; };
  pool.parallel_for(8, body);  // warm up
  allocations.store(0);
  counting.store(true);
  for (int call = 0; call < 1000; ++call) pool.parallel_for(1 + call % 64, body);
  counting.store(false);
  CHECK(allocations.load() == 0);
  // the counter does count: a vector allocates
  counting.store(true);
  std::vector<int> v(10);
  counting.store(false);
  CHECK(allocations.load() == 1);
}
#endif

TEST_CASE("thread count: constructor bounds, KILN_NUM_THREADS, default pool") {
  CHECK_THROWS_AS(thread_pool(0), error);
  const char* old = std::getenv("KILN_NUM_THREADS");
  const std::string saved = old ? old : "";
  setenv("KILN_NUM_THREADS", "3", 1);
  CHECK(thread_pool_detail::configured_threads() == 3);
  for (const char* bad : {"0", "-2", "two", "4x", ""}) {
    setenv("KILN_NUM_THREADS", bad, 1);
    INFO("KILN_NUM_THREADS='" << bad << "'");
    CHECK_THROWS_WITH(thread_pool_detail::configured_threads(), Catch::Contains("KILN_NUM_THREADS"));
  }
  unsetenv("KILN_NUM_THREADS");
  CHECK(thread_pool_detail::configured_threads() == static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (old) setenv("KILN_NUM_THREADS", saved.c_str(), 1);
  CHECK(default_pool().num_threads() >= 1);
  CHECK(&default_pool() == &default_pool());
}

}  // namespace
}  // namespace kiln::cpu
