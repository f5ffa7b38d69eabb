#pragma once
// The timing protocol every in-process backend shares, interleaved so that a shared machine's changing load
// falls on all the backends of a case alike:
//  1. For each backend: steps 1 and 2 run alone and their losses are kept (the "same step" check); then
//     calibration runs steps in doubling groups until a group lasts ≥ 2 ms, giving `iters`, the steps per
//     repeat (about repeat_ms each, at least 1).
//  2. `repeats` rounds; in each round every backend runs one timed repeat of its `iters` steps, one backend
//     after the other. A repeat gives a mean time per step; median, min and max over the repeats are kept.
//     Each repeat starts after a pause of `settle` (20 ms): the worker threads of the backend before it go on
//     spinning for milliseconds after its last parallel region (libgomp's default wait policy, Eigen's and
//     OpenBLAS's best setting), and on a machine of few cores they would take a core from whichever backend
//     comes next (bench/RESULTS.md, "A pause before each timed repeat").
#include "bench_case.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace kiln_bench {

// One backend's training step (or contraction), ready to be timed. The closures own what they use.
struct timed_step {
  result r;                                  // identity (case, backend, mode, batch, threads, note) in, times out
  std::function<void()> activate = [] {};    // puts process-wide settings in place (e.g. BLAS thread count)
  std::function<double()> step;              // one step; returns its loss
  std::vector<double> samples_us;            // per-step time of each repeat
  // kiln only (empty for peers): runs `steps` steps adding each kernel's time (ns) to the vector it returns
  // (one entry per kernel, named by kernel_names).
  std::function<std::vector<double>(long steps)> profile;
  std::vector<std::string> kernel_names;
};

namespace timing_detail {
inline double seconds_for(timed_step& s, long n) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (long i = 0; i < n; ++i) s.step();
  return std::chrono::duration<double>(clock::now() - t0).count();
}
}  // namespace timing_detail

inline void measure_interleaved(std::vector<timed_step>& steps, const timing_options& opt) {
  for (timed_step& s : steps) {
    s.activate();
    s.r.loss_first = s.step();
    s.r.loss_second = s.step();
    long n = 1;
    double sec = timing_detail::seconds_for(s, n);
    while (sec < 2e-3 && n < (1L << 24)) {
      n *= 2;
      sec = timing_detail::seconds_for(s, n);
    }
    s.r.iters = std::max(1L, std::lround(opt.repeat_ms * 1e-3 / (sec / static_cast<double>(n))));
  }
  constexpr auto settle = std::chrono::milliseconds(20);
  for (int round = 0; round < std::max(1, opt.repeats); ++round)
    for (timed_step& s : steps) {
      s.activate();
      std::this_thread::sleep_for(settle);
      s.samples_us.push_back(timing_detail::seconds_for(s, s.r.iters) * 1e6 / static_cast<double>(s.r.iters));
    }
  for (timed_step& s : steps) {
    std::vector<double> us = s.samples_us;
    std::sort(us.begin(), us.end());
    const std::size_t m = us.size();
    s.r.median_us = m % 2 ? us[m / 2] : 0.5 * (us[m / 2 - 1] + us[m / 2]);
    s.r.min_us = us.front();
    s.r.max_us = us.back();
    s.r.repeats = static_cast<int>(m);
  }
}

}  // namespace kiln_bench
