// The CUDA emulator's barriers (kiln/cuda/emulator.hpp): the threads of a block are fibers switched at
// __syncthreads and at warp shuffles. A hand-written kernel shows that a barrier orders shared memory, that a
// missing one is seen (a read of shared memory no thread has written yet is the NaN it is filled with), and that
// __shfl_xor_sync exchanges lanes within each warp.
#include <kiln/cuda/emulator.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

namespace {

// Each thread writes its index to shared memory and reads its right neighbour's (with or without a barrier in
// between); a second kernel swaps values between lanes whose index differs in bit `mask`.
constexpr const char* source = R"(
struct kiln_hypers { float v[16]; unsigned rng[4]; };
__global__ void neighbour(const long long, const kiln_hypers, float* const, unsigned* const, const int sync, float* out) {
  KILN_DYNAMIC_SHARED(smem);
  const unsigned t = threadIdx.x, n = blockDim.x;
  smem[t] = (float)(blockIdx.x * n + t);
  if (sync) __syncthreads();
  out[blockIdx.x * n + t] = smem[(t + 1) % n];
}
__global__ void shuffle(const long long, const kiln_hypers, float* const, unsigned* const, const int mask, float* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, mask);
}
)";

struct launcher {
  kiln::cuda::emulated_device dev;
  std::unique_ptr<kiln::cuda::device_module> module = dev.load(source, {{"neighbour", 1}, {"shuffle", 1}});

  std::vector<float> run(std::size_t kernel, unsigned blocks, unsigned threads, int flag) {
    const std::size_t n = static_cast<std::size_t>(blocks) * threads;
    const kiln::cuda::cu_deviceptr out = dev.allocate(n * sizeof(float));
    long long batch = 0;
    kiln::cuda::cu_deviceptr none = 0;
    const float hypers[20] = {};
    void* args[] = {&batch, const_cast<float*>(hypers), &none, &none, &flag, const_cast<kiln::cuda::cu_deviceptr*>(&out)};
    module->launch(kernel, {blocks, 1, 1}, {threads, 1, 1}, threads * sizeof(float), args);
    std::vector<float> host(n);
    dev.download(host.data(), out, n * sizeof(float));
    dev.release(out);
    return host;
  }
};

}  // namespace

TEST_CASE("emulator: __syncthreads orders shared memory, and a missing one is seen", "[cuda][emulated]") {
  launcher l;
  for (const unsigned threads : {32u, 96u, 256u}) {
    INFO(threads << " threads per block");
    const std::vector<float> synced = l.run(0, 3, threads, 1);
    for (unsigned b = 0; b < 3; ++b)
      for (unsigned t = 0; t < threads; ++t) CHECK(synced[b * threads + t] == static_cast<float>(b * threads + (t + 1) % threads));
    const std::vector<float> racy = l.run(0, 3, threads, 0);
    long unwritten = 0;
    for (const float v : racy) unwritten += std::isnan(v);
    CHECK(unwritten > 0);
  }
}

TEST_CASE("emulator: __shfl_xor_sync exchanges values between the lanes of a warp", "[cuda][emulated]") {
  launcher l;
  for (const int mask : {1, 4, 16}) {
    const std::vector<float> out = l.run(1, 2, 64, mask);
    for (unsigned i = 0; i < out.size(); ++i) CHECK(out[i] == static_cast<float>((i % 64) ^ static_cast<unsigned>(mask)));
  }
}
