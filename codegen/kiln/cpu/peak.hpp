#pragma once
// measure_fma_peak_gflops(threads): this machine's FP32 FMA throughput, measured in about 0.2 s, for
// benchmarks to report "fraction of peak". Each thread runs independent accumulator chains of vfloat FMAs
// (enough chains to hide FMA latency on every unit), so the figure is what the vector units can do, not
// what the nominal clock promises. One FMA counts as 2 flops per lane. The best of many short windows is
// reported, so that other load on a shared machine does not make the peak look lower than it is.
#include <kiln/cpu/simd.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace kiln::cpu {

namespace peak_detail {
// 4-cycle latency × 2 FMA units needs 8 chains in flight; 16 leaves margin and fits 32 zmm (or spills a
// little on 16-register ISAs, where 12 would do; the loop then still saturates the units with 12 in flight).
inline constexpr int chains = KILN_CPU_VECTOR_BITS == 512 ? 16 : 12;
inline constexpr long iterations_per_round = 4096;

// Runs rounds of FMAs for `seconds` and returns the best rate (flops per second) over windows of ~1 ms:
// other processes on a shared machine only ever slow a window down, so the best window is the hardware's.
inline double fma_rate(double seconds, std::atomic<bool>* start) {
  if (start)
    while (!start->load(std::memory_order_acquire)) std::this_thread::yield();
  vfloat acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = splat(static_cast<float>(c) * 1e-3f);
  const vfloat mul = splat(0.999999f), add = splat(1e-7f);  // converges, never overflows or goes denormal
  using clock = std::chrono::steady_clock;
  constexpr double window = 0.001;
  const auto t_begin = clock::now();
  double best = 0.0;
  for (auto t0 = t_begin; std::chrono::duration<double>(t0 - t_begin).count() < seconds;) {
    long rounds = 0;
    double elapsed = 0.0;
    auto t1 = t0;
    do {
      for (long i = 0; i < iterations_per_round; ++i)
        [&]<int... C>(std::integer_sequence<int, C...>) {
          ((acc[C] = fma(acc[C], mul, add)), ...);
        }(std::make_integer_sequence<int, chains>{});
      ++rounds;
      t1 = clock::now();
      elapsed = std::chrono::duration<double>(t1 - t0).count();
    } while (elapsed < window);
    best = std::max(best, static_cast<double>(rounds) * iterations_per_round * chains * lanes * 2.0 / elapsed);
    t0 = t1;
  }
  vfloat sum{};
  for (int c = 0; c < chains; ++c) sum += acc[c];
  volatile float sink = hsum(sum);  // keep the chains alive
  (void)sink;
  return best;
}
}  // namespace peak_detail

// FP32 FMA GFLOP/s on `threads` threads running at once (threads <= 0: all hardware threads). ~0.2 s.
inline double measure_fma_peak_gflops(int threads) {
  constexpr double seconds = 0.2;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads == 1) return peak_detail::fma_rate(seconds, nullptr) * 1e-9;
  std::atomic<bool> start{false};
  std::vector<double> rates(static_cast<std::size_t>(threads), 0.0);
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t)
    workers.emplace_back([&, t] { rates[static_cast<std::size_t>(t)] = peak_detail::fma_rate(seconds, &start); });
  start.store(true, std::memory_order_release);
  rates[0] = peak_detail::fma_rate(seconds, nullptr);
  for (std::thread& w : workers) w.join();
  double total = 0.0;
  for (double r : rates) total += r;
  return total * 1e-9;
}

}  // namespace kiln::cpu
