// best_of, and the skipped rows that stand in for a C++ peer whose package was not found at configure time.
#include "cxx_peers.hpp"

#include <cstdio>

namespace kiln_bench {

result best_of(result a, const result& b) {
  const result& slow = a.median_us <= b.median_us ? b : a;
  char buf[96];
  std::snprintf(buf, sizeof buf, "fastest of the thread settings (other: %d thread%s %.1f us)", slow.threads,
                slow.threads == 1 ? "" : "s", slow.median_us);
  result best = a.median_us <= b.median_us ? a : b;
  best.note = buf;
  return best;
}

#ifndef KILN_BENCH_HAVE_EIGEN
std::vector<result> run_eigen_peer(const bench_case& c, const timing_options&) {
  if (c.is_contraction) return {};
  return {skipped_result(c, "eigen", "eigen", "Eigen 3.4 was not found when kiln-bench was configured (apt-get install libeigen3-dev)")};
}
#endif

#ifndef KILN_BENCH_HAVE_DLIB
std::vector<result> run_dlib_peer(const bench_case& c, const timing_options&) {
  if (c.is_contraction) return {};
  return {skipped_result(c, "dlib", "dlib", "dlib was not found when kiln-bench was configured (apt-get install libdlib-dev)")};
}
#endif

}  // namespace kiln_bench
