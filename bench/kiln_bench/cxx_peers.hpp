#pragma once
// The C++ peers: the same training step written by hand with Eigen 3.4 and with dlib's DNN (network as a
// template type). Each is compiled in only when its package was found at configure time; otherwise it reports
// the case as skipped with the reason. Each returns one row: its best thread setting (1 or 2), named in `note`.
#include "bench_case.hpp"

#include <vector>

namespace kiln_bench {

std::vector<result> run_eigen_peer(const bench_case& c, const timing_options& t);
std::vector<result> run_dlib_peer(const bench_case& c, const timing_options& t);

// Keeps the faster of two measurements of one peer at different thread counts, noting the other.
result best_of(result a, const result& b);

}  // namespace kiln_bench
