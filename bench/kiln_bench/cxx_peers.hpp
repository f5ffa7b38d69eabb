#pragma once
// The C++ peers: the same training step written by hand with Eigen 3.4 and with dlib's DNN (network as a
// template type). Each is compiled in only when its package was found at configure time; otherwise it reports
// the case as skipped with the reason. Each gives one timed step per thread setting (1 and 2); after timing,
// keep_fastest_setting leaves one row per peer, naming the other setting in its note.
#include "bench_case.hpp"
#include "timing.hpp"

#include <string>
#include <vector>

namespace kiln_bench {

std::vector<timed_step> eigen_steps(const bench_case& c, std::vector<result>& skipped);
std::vector<timed_step> dlib_steps(const bench_case& c, std::vector<result>& skipped);

// Of the rows with this backend, keeps per (case, mode) the one with the lowest median; the others' thread
// counts and medians go into its note. Other rows pass through in order.
std::vector<result> keep_fastest_setting(const std::vector<result>& rows, const std::string& backend);

}  // namespace kiln_bench
