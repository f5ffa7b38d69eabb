// keep_fastest_setting, and the skipped rows that stand in for a C++ peer whose package was not found at
// configure time.
#include "cxx_peers.hpp"

#include <cstdio>

namespace kiln_bench {

std::vector<result> keep_fastest_setting(const std::vector<result>& rows, const std::string& backend) {
  std::vector<result> out;
  std::vector<bool> used(rows.size(), false);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (used[i]) continue;
    if (rows[i].backend != backend || !rows[i].measured()) {
      out.push_back(rows[i]);
      continue;
    }
    std::size_t best = i;
    for (std::size_t j = i + 1; j < rows.size(); ++j)
      if (rows[j].backend == backend && rows[j].case_name == rows[i].case_name && rows[j].mode == rows[i].mode &&
          rows[j].measured() && rows[j].median_us < rows[best].median_us)
        best = j;
    std::string others;
    for (std::size_t j = i; j < rows.size(); ++j) {
      if (rows[j].backend != backend || rows[j].case_name != rows[i].case_name || rows[j].mode != rows[i].mode ||
          !rows[j].measured())
        continue;
      used[j] = true;
      if (j == best) continue;
      char buf[64];
      std::snprintf(buf, sizeof buf, " %d thread%s %.1f us", rows[j].threads, rows[j].threads == 1 ? "" : "s",
                    rows[j].median_us);
      others += buf;
    }
    result r = rows[best];
    if (!others.empty()) r.note += (r.note.empty() ? "" : ", ") + std::string("fastest of the thread settings (other:") + others + ")";
    out.push_back(r);
  }
  return out;
}

#ifndef KILN_BENCH_HAVE_EIGEN
std::vector<timed_step> eigen_steps(const bench_case& c, std::vector<result>& skipped) {
  if (!c.is_contraction)
    skipped.push_back(skipped_result(c, "eigen", "eigen", "Eigen 3.4 was not found when kiln-bench was configured (apt-get install libeigen3-dev)"));
  return {};
}
#endif

#ifndef KILN_BENCH_HAVE_DLIB
std::vector<timed_step> dlib_steps(const bench_case& c, std::vector<result>& skipped) {
  if (!c.is_contraction)
    skipped.push_back(skipped_result(c, "dlib", "dlib", "dlib was not found when kiln-bench was configured (apt-get install libdlib-dev)"));
  return {};
}
#endif

}  // namespace kiln_bench
