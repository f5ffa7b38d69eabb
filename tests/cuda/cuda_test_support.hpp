#pragma once
// Shared by tests/cuda/test_*.cpp: representative kernels (as generated code will look), environment and
// temporary-directory guards, and the skip helpers (Catch2 v2 has no SKIP: WARN("skipped: ...") and return).
#include <kiln/cuda/cuda.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace kiln_test_cuda {

// y[i] = a·x[i] + b·y[i]: the shape of a fused elementwise chain.
inline kiln::cuda::kernel_source axpby_kernel() {
  return {R"(extern "C" __global__ void axpby(float* y, const float* x, float a, float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b * y[i];
}
)",
          "axpby",
          {}};
}

// C[M×N] = A[M×K]·B[K×N], row-major, TILE×TILE shared-memory tiles; bounds-checked so any M, N, K work.
// A C++ template kernel: NVRTC instantiates and mangles it from the name expression.
inline kiln::cuda::kernel_source matmul_tiled_kernel() {
  return {R"(namespace kiln_test {
template <int TILE>
__global__ void matmul_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE + 1];  // +1 column: no bank conflicts on the transposed read
  const int row = blockIdx.y * TILE + threadIdx.y;
  const int col = blockIdx.x * TILE + threadIdx.x;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    As[threadIdx.y][threadIdx.x] = (row < M && k0 + threadIdx.x < K) ? A[row * K + k0 + threadIdx.x] : 0.f;
    Bs[threadIdx.y][threadIdx.x] = (col < N && k0 + threadIdx.y < K) ? B[(k0 + threadIdx.y) * N + col] : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; ++k) acc = fmaf(As[threadIdx.y][k], Bs[k][threadIdx.x], acc);
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}
}  // namespace kiln_test
)",
          "kiln_test::matmul_tiled<16>",
          {"--std=c++17"}};
}

// out[r] = Σ_c x[r][c]: one warp per row, float4 loads, butterfly reduction with __shfl_xor_sync.
inline kiln::cuda::kernel_source row_sum_kernel() {
  return {R"(extern "C" __global__ void row_sum_f4(const float4* x, float* out, int rows, int cols4) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= rows) return;
  const float4* row = x + (size_t)warp * cols4;
  float s = 0.f;
  for (int c = lane; c < cols4; c += 32) {
    float4 v = row[c];
    s += (v.x + v.y) + (v.z + v.w);
  }
  for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
  if (lane == 0) out[warp] = s;
}
)",
          "row_sum_f4",
          {"--use_fast_math"}};
}

// Sets (or unsets, value == nullptr) an environment variable for the guard's lifetime.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A fresh directory under the system temp dir, removed with its contents at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kiln-cuda-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The reasons runtime::open may give for CUDA being unavailable; anything else is an imprecise message.
inline bool is_precise_unavailable_reason(const std::string& why) {
  for (const char* reason : {"no driver library", "no NVRTC library", "cuInit failed", "no device",
                             "driver older than the toolkit", "older than every architecture"})
    if (why.find(reason) != std::string::npos) return true;
  return false;
}

// NVRTC, or nullptr after a WARN("skipped: <why>") when it cannot be loaded here.
inline std::shared_ptr<const kiln::cuda::nvrtc_library> nvrtc_or_skip() {
  try {
    return kiln::cuda::nvrtc_library::load();
  } catch (const kiln::backend_unavailable& e) {
    WARN("skipped: NVRTC not available: " << e.what());
    return nullptr;
  }
}

}  // namespace kiln_test_cuda
