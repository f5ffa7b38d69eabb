#pragma once
// kiln's own CPU training steps (fused and unfused) for the suite's MLP and CNN cases, and the sgemm sub-benchmark
// (kiln::cpu::gemm against OpenBLAS's cblas_sgemm at the same shape). Each model lives in its own
// translation unit to keep compile time and memory per file small.
#include "bench_case.hpp"
#include "timing.hpp"

#include <vector>

namespace kiln_bench {

int kiln_threads();  // threads of kiln's default pool

// Each returns the timed steps of its case; `skipped` receives rows that cannot run (e.g. no OpenBLAS).
std::vector<timed_step> kiln_classifier_steps(const bench_case& c, std::vector<result>& skipped);  // 784-128-64-10
std::vector<timed_step> kiln_wide_steps(const bench_case& c, std::vector<result>& skipped);        // 1024-1024-1024-10
std::vector<timed_step> kiln_xor_steps(const bench_case& c, std::vector<result>& skipped);         // 2-2-1
std::vector<timed_step> kiln_cnn_steps(const bench_case& c, std::vector<result>& skipped);          // Fashion-MNIST CNN
std::vector<timed_step> contraction_steps(const bench_case& c, std::vector<result>& skipped);      // gemm vs sgemm
std::vector<timed_step> kiln_infer_steps(const bench_case& c, std::vector<result>& skipped);       // infer_* cases

// Dispatch on the case's name; a case with no kiln program is reported as skipped.
std::vector<timed_step> kiln_steps(const bench_case& c, std::vector<result>& skipped);

}  // namespace kiln_bench
