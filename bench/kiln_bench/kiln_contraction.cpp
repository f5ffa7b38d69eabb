// The sgemm sub-benchmark: one contraction of the classifier's first layer, C[256, 128] = X[256, 784] · Wᵀ with
// W [128, 784] row-major (PyTorch's layout, so B is a transposed view), by kiln::cpu::gemm (one thread, N and K
// fixed at compile time) and by OpenBLAS's cblas_sgemm on 1 and on 2 threads. The two results are compared.
#include "blas_threads.hpp"
#include "kiln_cases.hpp"
#include "timing.hpp"

#include <kiln/cpu/gemm.hpp>

#ifdef KILN_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace kiln_bench {

std::vector<result> run_contraction(const bench_case& c, const timing_options& t) {
  constexpr long N = 128, K = 784;
  if (c.layers.size() != 2 || c.layers[0] != K || c.layers[1] != N)
    return {skipped_result(c, "cpu", "gemm", "the contraction is compiled for K = 784, N = 128")};
  const long M = c.batch;
  const std::vector<float> x = make_inputs(c);
  std::vector<float> w(static_cast<std::size_t>(N * K));
  for (long i = 0; i < N * K; ++i) w[static_cast<std::size_t>(i)] = std::sin(0.37f * static_cast<float>(i)) * 0.05f;
  std::vector<float> c_kiln(static_cast<std::size_t>(M * N)), c_blas(c_kiln.size());
  std::vector<float> workspace(kiln::cpu::gemm_workspace_floats(M, N, K));

  std::vector<result> out;
  auto row = [&](const char* backend, const char* mode, int threads) {
    result r;
    r.case_name = c.name;
    r.backend = backend;
    r.mode = mode;
    r.batch = c.batch;
    r.threads = threads;
    return r;
  };
  {
    result r = row("cpu", "gemm", 1);
    measure([&] {
      kiln::cpu::gemm<N, K>(M, N, K, {x.data(), K, 1}, {w.data(), 1, K}, c_kiln.data(), N, false, workspace.data());
      return c_kiln[0];
    }, t, r);
    r.note = "kiln::cpu::gemm<N=128, K=784>, single-threaded";
    out.push_back(r);
  }
#ifdef KILN_BENCH_HAVE_OPENBLAS
  for (int threads : {1, 2}) {
    openblas_set_num_threads(threads);
    result r = row("openblas", "sgemm", threads);
    measure([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K),
                  1.0f, x.data(), static_cast<int>(K), w.data(), static_cast<int>(K), 0.0f, c_blas.data(),
                  static_cast<int>(N));
      return c_blas[0];
    }, t, r);
    double max_diff = 0, max_abs = 0;
    for (std::size_t i = 0; i < c_kiln.size(); ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(c_kiln[i] - c_blas[i])));
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(c_blas[i])));
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "max |kiln - openblas| = %.2g (max |C| = %.3g)", max_diff, max_abs);
    r.note = buf;
    out.push_back(r);
  }
  openblas_set_num_threads(1);  // park OpenBLAS's extra thread so it does not spin during later measurements
#else
  out.push_back(skipped_result(c, "openblas", "sgemm",
                               "OpenBLAS was not found when kiln-bench was configured (apt-get install libopenblas-dev)"));
#endif
  return out;
}

}  // namespace kiln_bench
