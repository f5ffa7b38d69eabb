// GEMM throughput on one core: GFLOP/s and fraction of the measured single-core FP32 FMA peak, for the
// shapes the brief targets and for every GEMM of the 784-128-64-10 classifier's training step at batch 256
// (forward A*W^T, input gradients dY*W, weight gradients dY^T*X), plus a 64-row block with B packed once.
// Each figure is the median (and the best) over ~0.25 s of individually timed calls (a few calls per sample
// when one call is under 20 µs): on a shared machine a sample the scheduler cut into is an outlier the
// median ignores. The peak is the best of 3 measurements (other load only ever lowers a measurement).
//
// Then the same shapes as BF16 products with FP32 sums (gemm_bf16) on each BF16 path this CPU has, with
// their speed-up over the FP32 gemm.
//
// usage: bench_gemm [seconds per shape]
#include <kiln/cpu/gemm.hpp>
#include <kiln/cpu/gemm_bf16.hpp>
#include <kiln/cpu/peak.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::cpu::matrix_view;

struct timing {
  double median_s, best_s;
};

template <class F>
timing time_it(F&& f, double budget_s) {
  using clock = std::chrono::steady_clock;
  const auto since = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };
  f();  // warm caches and page in the workspace
  int calls = 0;
  for (const auto t0 = clock::now(); since(t0) < 20e-6;) {
    f();
    ++calls;
  }
  std::vector<double> seconds;
  for (const auto start = clock::now(); since(start) < budget_s || seconds.size() < 31;) {
    const auto t0 = clock::now();
    for (int c = 0; c < calls; ++c) f();
    seconds.push_back(since(t0) / calls);
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[seconds.size() / 2], seconds.front()};
}

struct problem {
  const char* what;
  long M, N, K;
  bool a_transposed, b_transposed;
  bool prepacked = false;  // B packed once outside the timed loop (gemm_prepacked)
};

// Times one problem with random operands: the FP32 gemm (bf16_path::fp32) or gemm_bf16 on a BF16 path.
timing time_problem(const problem& p, std::mt19937& rng, double budget_s, kiln::cpu::bf16_path path) {
  namespace cpu = kiln::cpu;
  const bool fp32 = path == cpu::bf16_path::fp32;
  std::vector<float> A(static_cast<std::size_t>(p.M * p.K)), B(static_cast<std::size_t>(p.K * p.N)),
      C(static_cast<std::size_t>(p.M * p.N)),
      work(fp32 ? cpu::gemm_workspace_floats(p.M, p.N, p.K) : cpu::gemm_bf16_workspace_floats(p.M, p.N, p.K));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : A) x = dist(rng);
  for (float& x : B) x = dist(rng);
  const matrix_view a = p.a_transposed ? matrix_view{A.data(), 1, p.M} : matrix_view{A.data(), p.K, 1};
  const matrix_view b = p.b_transposed ? matrix_view{B.data(), 1, p.K} : matrix_view{B.data(), p.N, 1};
  if (!p.prepacked) {
    if (fp32) return time_it([&] { cpu::gemm(p.M, p.N, p.K, a, b, C.data(), p.N, false, work.data()); }, budget_s);
    return time_it([&] { cpu::gemm_bf16(path, p.M, p.N, p.K, a, b, C.data(), p.N, false, work.data()); }, budget_s);
  }
  // B packed once, outside the timed calls (64-byte aligned, as the BF16 packing requires)
  std::vector<float> packed((fp32 ? cpu::gemm_packed_b_floats(p.N, p.K) : cpu::gemm_bf16_packed_b_floats(p.N, p.K)) + 16);
  float* pb = cpu::gemm_detail::align64(packed.data());
  if (fp32) {
    cpu::gemm_pack_b(p.N, p.K, b, pb);
    return time_it([&] { cpu::gemm_prepacked(p.M, p.N, p.K, a, pb, C.data(), p.N, false); }, budget_s);
  }
  cpu::gemm_bf16_pack_b(p.N, p.K, b, pb);
  float* a_work = cpu::gemm_detail::align64(work.data());
  return time_it([&] { cpu::gemm_bf16_prepacked(path, p.M, p.N, p.K, a, pb, C.data(), p.N, false, a_work); }, budget_s);
}

}  // namespace

int main(int argc, char** argv) {
  const double budget_s = argc > 1 ? std::max(0.01, std::atof(argv[1])) : 0.25;
  double peak1 = 0.0, peak_all = 0.0;
  for (int i = 0; i < 3; ++i) {
    peak1 = std::max(peak1, kiln::cpu::measure_fma_peak_gflops(1));
    peak_all = std::max(peak_all, kiln::cpu::measure_fma_peak_gflops(0));
  }
  std::printf("vector lanes %d; measured FP32 FMA peak: %.1f GFLOP/s on 1 thread, %.1f on all threads\n",
              kiln::cpu::lanes, peak1, peak_all);
  std::printf("single-threaded gemm, median (best) of timed calls over %.2f s per shape:\n", budget_s);
  std::printf("  %-34s %5s %5s %5s  %9s %9s  %s\n", "", "M", "N", "K", "GFLOP/s", "(best)", "of peak");

  const std::vector<problem> problems = {
      {"target A*B", 256, 128, 784, false, false},
      {"target A*B", 128, 784, 256, false, false},
      {"target A*B^T", 256, 128, 784, false, true},
      {"target A*B^T", 128, 784, 256, false, true},
      {"target A^T*B", 256, 128, 784, true, false},
      {"target A^T*B^T", 128, 784, 256, true, true},
      {"mlp forward  x*W1^T", 256, 128, 784, false, true},
      {"mlp forward  h1*W2^T", 256, 64, 128, false, true},
      {"mlp forward  h2*W3^T", 256, 10, 64, false, true},
      {"mlp backward dY3*W3", 256, 64, 10, false, false},
      {"mlp backward dY2*W2", 256, 128, 64, false, false},
      {"mlp weights  dY1^T*x", 128, 784, 256, true, false},
      {"mlp weights  dY2^T*h1", 64, 128, 256, true, false},
      {"mlp weights  dY3^T*h2", 10, 64, 256, true, false},
      {"wide weights dY^T*h", 1024, 1024, 256, true, false},
      {"wide forward h*W^T", 256, 1024, 1024, false, true},
      {"64-row block x*W1^T", 64, 128, 784, false, true},
      {"64-row block x*W1^T, B prepacked", 64, 128, 784, false, true, true},
  };
  std::mt19937 rng(1);
  std::vector<double> fp32_median_s;
  using kiln::cpu::bf16_path;
  for (const problem& p : problems) {
    const timing t = time_problem(p, rng, budget_s, bf16_path::fp32);
    const double flop = 2.0 * static_cast<double>(p.M * p.N * p.K);
    const double median = flop / t.median_s * 1e-9, best = flop / t.best_s * 1e-9;
    std::printf("  %-34s %5ld %5ld %5ld  %9.1f %9.1f  %5.1f%% (%.1f%%)\n", p.what, p.M, p.N, p.K, median, best,
                100.0 * median / peak1, 100.0 * best / peak1);
    fp32_median_s.push_back(t.median_s);
  }

  for (bf16_path path : {bf16_path::avx512_bf16, bf16_path::amx}) {
    if (!kiln::cpu::available(path)) {
      std::printf("\n%s: not on this CPU\n", kiln::cpu::describe(path));
      continue;
    }
    std::printf("\n%s, median (best) GFLOP/s and speed-up of the median over FP32 gemm:\n", kiln::cpu::describe(path));
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const problem& p = problems[i];
      const timing t = time_problem(p, rng, budget_s, path);
      const double flop = 2.0 * static_cast<double>(p.M * p.N * p.K);
      std::printf("  %-34s %5ld %5ld %5ld  %9.1f %9.1f  %5.2fx\n", p.what, p.M, p.N, p.K, flop / t.median_s * 1e-9,
                  flop / t.best_s * 1e-9, fp32_median_s[i] / t.median_s);
    }
  }
  return 0;
}
