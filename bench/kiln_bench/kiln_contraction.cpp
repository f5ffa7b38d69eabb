// The sgemm sub-benchmark: one contraction of the classifier's first layer, C[256, 128] = X[256, 784] · Wᵀ with
// W [128, 784] row-major (PyTorch's layout, so B is a transposed view), by kiln::cpu::gemm (one thread, N and K
// fixed at compile time) and by OpenBLAS's cblas_sgemm on 1 and on 2 threads (both kept: the 1-thread row is
// the like-for-like comparison). The two results are compared.
#include "kiln_cases.hpp"
#include "timing.hpp"

#include <kiln/cpu/gemm.hpp>

#ifdef KILN_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace kiln_bench {

std::vector<timed_step> contraction_steps(const bench_case& c, std::vector<result>& skipped) {
  constexpr long N = 128, K = 784;
  if (c.layers.size() != 2 || c.layers[0] != K || c.layers[1] != N) {
    skipped.push_back(skipped_result(c, "cpu", "gemm", "the contraction is compiled for K = 784, N = 128"));
    return {};
  }
  struct state {
    long M;
    std::vector<float> x, w, c_kiln, c_blas, workspace;
  };
  auto s = std::make_shared<state>();
  s->M = c.batch;
  s->x = make_inputs(c);
  s->w.resize(static_cast<std::size_t>(N * K));
  for (long i = 0; i < N * K; ++i) s->w[static_cast<std::size_t>(i)] = std::sin(0.37f * static_cast<float>(i)) * 0.05f;
  s->c_kiln.resize(static_cast<std::size_t>(s->M * N));
  s->c_blas.resize(s->c_kiln.size());
  s->workspace.resize(kiln::cpu::gemm_workspace_floats(s->M, N, K));

  auto row = [&](const char* backend, const char* mode, int threads) {
    timed_step t;
    t.r = result_for(c, backend, mode, threads);
    return t;
  };
  std::vector<timed_step> out;
  timed_step kiln_gemm = row("cpu", "gemm", 1);
  kiln_gemm.r.note = "kiln::cpu::gemm<N=128, K=784>, single-threaded";
  kiln_gemm.step = [s] {
    kiln::cpu::gemm<N, K>(s->M, N, K, {s->x.data(), K, 1}, {s->w.data(), 1, K}, s->c_kiln.data(), N, false,
                          s->workspace.data());
    return static_cast<double>(s->c_kiln[0]);
  };
  out.push_back(kiln_gemm);
#ifdef KILN_BENCH_HAVE_OPENBLAS
  auto sgemm = [s] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(s->M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, s->x.data(), static_cast<int>(K), s->w.data(), static_cast<int>(K), 0.0f,
                s->c_blas.data(), static_cast<int>(N));
    return static_cast<double>(s->c_blas[0]);
  };
  // both once, to compare the results
  out.front().step();
  sgemm();
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < s->c_kiln.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(s->c_kiln[i] - s->c_blas[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(s->c_blas[i])));
  }
  char note[96];
  std::snprintf(note, sizeof note, "max |kiln - openblas| = %.2g (max |C| = %.3g)", max_diff, max_abs);
  for (int threads : {1, 2}) {
    timed_step t = row("openblas", "sgemm", threads);
    t.activate = [threads] { openblas_set_num_threads(threads); };
    t.step = sgemm;
    t.r.note = note;
    out.push_back(t);
  }
#else
  skipped.push_back(skipped_result(c, "openblas", "sgemm",
                                   "OpenBLAS was not found when kiln-bench was configured (apt-get install libopenblas-dev)"));
#endif
  return out;
}

}  // namespace kiln_bench
