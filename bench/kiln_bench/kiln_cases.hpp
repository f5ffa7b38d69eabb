#pragma once
// kiln's own CPU training steps (fused and unfused) for the suite's MLP cases, and the sgemm sub-benchmark
// (kiln::cpu::gemm against OpenBLAS's cblas_sgemm at the same shape). Each model lives in its own
// translation unit to keep compile time and memory per file small.
#include "bench_case.hpp"

#include <vector>

namespace kiln_bench {

int kiln_threads();  // threads of kiln's default pool

std::vector<result> run_kiln_classifier(const bench_case& c, const timing_options& t);  // 784-128-64-10
std::vector<result> run_kiln_wide(const bench_case& c, const timing_options& t);        // 1024-1024-1024-10
std::vector<result> run_kiln_xor(const bench_case& c, const timing_options& t);         // 2-2-1
std::vector<result> run_contraction(const bench_case& c, const timing_options& t);     // kiln gemm vs sgemm

// Dispatch on the case's name; an unknown case is reported as skipped.
std::vector<result> run_kiln_case(const bench_case& c, const timing_options& t);

}  // namespace kiln_bench
