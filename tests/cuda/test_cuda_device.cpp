// Device tests: launch the representative kernels on a real GPU and compare with host references.
// Where CUDA cannot run (no driver, the toolkit's stub driver, no device, old driver) each test checks that
// runtime::open() says precisely why, WARNs "skipped: <why>" and returns.
#include "cuda_test_support.hpp"

#include <cmath>
#include <optional>
#include <random>
#include <span>

using namespace kiln::cuda;

namespace {

std::optional<runtime> open_or_skip(const std::string& cache_dir) {
  try {
    runtime::options opt;
    opt.cache_directory = cache_dir;
    return runtime::open(opt);
  } catch (const kiln::backend_unavailable& e) {
    CHECK(kiln_test_cuda::is_precise_unavailable_reason(e.what()));
    WARN("skipped: no usable CUDA device: " << e.what());
    return std::nullopt;
  }
}

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

template <class T>
device_buffer upload(runtime& rt, const std::vector<T>& host) {
  device_buffer b = rt.allocate(host.size() * sizeof(T));
  b.upload(std::span<const T>(host));
  return b;
}

template <class T>
std::vector<T> download(const device_buffer& b) {
  std::vector<T> host(b.bytes() / sizeof(T));
  b.download(std::span<T>(host));
  return host;
}

}  // namespace

TEST_CASE("device: axpby matches the host, and the second load reuses the module") {
  kiln_test_cuda::temp_dir dir;
  auto rt = open_or_skip(dir.path());
  if (!rt) return;
  INFO(rt->describe());
  const int n = 100003;  // not a multiple of the block size: the bounds check matters
  const float a = 1.5f, b = -0.25f;
  const auto x = random_floats(n, 1), y0 = random_floats(n, 2);
  device_buffer dx = upload(*rt, x), dy = upload(*rt, y0);

  const loaded_kernel k = rt->load(kiln_test_cuda::axpby_kernel());
  CHECK(k.origin == cache_origin::compiled);
  const unsigned block = 256, grid = (n + block - 1) / block;
  k.function.launch({grid}, {block}, 0, nullptr, dy.ptr(), dx.ptr(), a, b, n);
  rt->synchronize();
  const auto y = download<float>(dy);
  for (int i = 0; i < n; ++i) REQUIRE(y[i] == Approx(a * x[i] + b * y0[i]).epsilon(1e-6));

  const loaded_kernel again = rt->load(kiln_test_cuda::axpby_kernel());
  CHECK(again.origin == cache_origin::memory);
  CHECK(again.module_load_seconds == 0);
}

TEST_CASE("device: tiled matmul matches a double-precision host product") {
  kiln_test_cuda::temp_dir dir;
  auto rt = open_or_skip(dir.path());
  if (!rt) return;
  const int M = 70, N = 45, K = 83;  // none a multiple of the 16×16 tile
  const auto A = random_floats(M * K, 3), B = random_floats(K * N, 4);
  device_buffer dA = upload(*rt, A), dB = upload(*rt, B), dC = rt->allocate(M * N * sizeof(float));
  const loaded_kernel k = rt->load(kiln_test_cuda::matmul_tiled_kernel());
  k.function.launch({(N + 15) / 16, (M + 15) / 16}, {16, 16}, 0, nullptr, dA.ptr(), dB.ptr(), dC.ptr(), M, N, K);
  rt->synchronize();
  const auto C = download<float>(dC);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double ref = 0, scale = 0;
      for (int p = 0; p < K; ++p) {
        ref += double(A[i * K + p]) * B[p * N + j];
        scale += std::abs(double(A[i * K + p]) * B[p * N + j]);
      }
      REQUIRE(std::abs(C[i * N + j] - ref) <= 1e-5 * scale + 1e-6);
    }
}

TEST_CASE("device: float4 + __shfl_xor_sync row sums match the host") {
  kiln_test_cuda::temp_dir dir;
  auto rt = open_or_skip(dir.path());
  if (!rt) return;
  const int rows = 37, cols = 4 * 300;
  const auto x = random_floats(rows * cols, 5);
  device_buffer dx = upload(*rt, x), dout = rt->allocate(rows * sizeof(float));
  const loaded_kernel k = rt->load(kiln_test_cuda::row_sum_kernel());
  const unsigned warps_per_block = 4;
  k.function.launch({(rows + warps_per_block - 1) / warps_per_block}, {32 * warps_per_block}, 0, nullptr, dx.ptr(),
                    dout.ptr(), rows, cols / 4);
  rt->synchronize();
  const auto out = download<float>(dout);
  for (int r = 0; r < rows; ++r) {
    double ref = 0, scale = 0;
    for (int c = 0; c < cols; ++c) {
      ref += x[r * cols + c];
      scale += std::abs(x[r * cols + c]);
    }
    REQUIRE(std::abs(out[r] - ref) <= 1e-5 * scale);
  }
}

TEST_CASE("device: a fresh runtime loads the kernel from the disk cache") {
  kiln_test_cuda::temp_dir dir;
  {
    auto rt = open_or_skip(dir.path());
    if (!rt) return;
    CHECK(rt->load(kiln_test_cuda::axpby_kernel()).origin == cache_origin::compiled);
  }
  auto rt = open_or_skip(dir.path());
  REQUIRE(rt);
  const loaded_kernel k = rt->load(kiln_test_cuda::axpby_kernel());
  CHECK(k.origin == cache_origin::disk);
  CHECK(k.module_load_seconds > 0);
}

TEST_CASE("device: driver errors name the call and the error; host sizes are checked") {
  kiln_test_cuda::temp_dir dir;
  auto rt = open_or_skip(dir.path());
  if (!rt) return;
  const loaded_kernel k = rt->load(kiln_test_cuda::axpby_kernel());
  device_buffer d = rt->allocate(16 * sizeof(float));
  int n = 16;
  float a = 1, b = 1;
  // 4096 threads per block exceeds every GPU's limit of 1024.
  CHECK_THROWS_WITH(k.function.launch({1}, {4096}, 0, nullptr, d.ptr(), d.ptr(), a, b, n),
                    Catch::Contains("cuLaunchKernel(axpby") && Catch::Contains("CUDA_ERROR_INVALID_VALUE"));
  std::vector<float> wrong(15);
  CHECK_THROWS_AS(d.upload(std::span<const float>(wrong)), kiln::shape_error);
  CHECK_THROWS_WITH(d.download(std::span<float>(wrong)), Catch::Contains("64 bytes") && Catch::Contains("60"));
}
