#pragma once
// measure(step, options, out): the timing protocol every in-process backend shares.
//  1. Steps 1 and 2 are run alone; their losses are kept (the peers' "same step" check).
//  2. Calibration: steps run in doubling groups until a group lasts ≥ 2 ms, giving the time per step, from
//     which `iters` = steps per repeat (about repeat_ms each, at least 1).
//  3. `repeats` timed repeats of `iters` steps; each gives a mean per step; the median, min and max of those
//     are reported. The machine is shared, so the median (not the mean) is the figure to compare.
#include "bench_case.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace kiln_bench {

template <class Step>
void measure(Step&& step, const timing_options& opt, result& out) {
  using clock = std::chrono::steady_clock;
  auto seconds_for = [&](long n) {
    const auto t0 = clock::now();
    for (long i = 0; i < n; ++i) step();
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  out.loss_first = static_cast<double>(step());
  out.loss_second = static_cast<double>(step());
  long n = 1;
  double s = seconds_for(n);
  while (s < 2e-3 && n < (1L << 24)) {
    n *= 2;
    s = seconds_for(n);
  }
  const double per_step = s / static_cast<double>(n);
  const long iters = std::max(1L, std::lround(opt.repeat_ms * 1e-3 / per_step));
  std::vector<double> us;
  for (int r = 0; r < std::max(1, opt.repeats); ++r) us.push_back(seconds_for(iters) * 1e6 / static_cast<double>(iters));
  std::sort(us.begin(), us.end());
  const std::size_t m = us.size();
  out.median_us = m % 2 ? us[m / 2] : 0.5 * (us[m / 2 - 1] + us[m / 2]);
  out.min_us = us.front();
  out.max_us = us.back();
  out.iters = iters;
  out.repeats = static_cast<int>(m);
}

}  // namespace kiln_bench
