// Generated CUDA kernels run on the host emulator (kiln/cuda/emulator.hpp) against the double reference
// evaluator: every activation, loss and optimizer, fused (the whole-step kernels) and unfused (one kernel per
// primitive), fused == unfused. Batches of 1, 7 and 70 with 16-row tiles: partial tiles, one block walking
// several tiles, several blocks' partial sums. This checks the kernels' logic where there is no GPU; the
// same comparisons run on a real GPU in test_cuda_codegen_device.cpp.
#include "emulated_model_check.hpp"

#include <cstring>
#include <random>

using namespace kiln;
using namespace kiln_cuda_test;

TEST_CASE("emulated: relu, sigmoid, tanh, leaky_relu with cross-entropy and Adam", "[cuda][emulated]") {
  check_model<acts_a_model>(adam{.lr = 1e-2}, 1);
}

TEST_CASE("emulated: elu, gelu, gelu_tanh with MSE and AdamW", "[cuda][emulated]") {
  check_model<acts_b_model>(adamw{.lr = 1e-2, .weight_decay = 0.1}, 2);
}

TEST_CASE("emulated: swish, softplus, identity, prelu with MAE and Nesterov momentum", "[cuda][emulated]") {
  check_model<acts_c_model>(nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}, 3);
}

TEST_CASE("emulated: bce, bce_with_logits, kl_div, categorical cross-entropy, nll with momentum", "[cuda][emulated]") {
  check_model<losses_model>(momentum{.lr = 0.05, .momentum = 0.9}, 4);
}

TEST_CASE("emulated: SGD with weight decay and Adam with L2", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const sgd plain{.lr = 0.05, .weight_decay = 0.1};
  check_same_params(compare_with_reference<mse_model<relu_fn>, sgd, fusion::fused>(dev, plain, 33, 5),
                    compare_with_reference<mse_model<relu_fn>, sgd, fusion::unfused>(dev, plain, 33, 5));
  compare_with_reference<ce_model<gelu_fn>, adam, fusion::fused>(dev, adam{.lr = 1e-2, .weight_decay = 0.1}, 33, 6);
}

TEST_CASE("emulated: batch-free contractions before and after the batch", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const adam opt{.lr = 1e-2};
  const auto unfused = compare_with_reference<factored_model, adam, fusion::unfused>(dev, opt, 70, 10, 3);
  // the fused plan runs when lowering orders its in-place updates after the reads (see test_cuda_codegen_render)
  if (cuda::in_place_hazard(step_plan<factored_model, adam, fusion::fused>::p).empty())
    check_same_params(unfused, compare_with_reference<factored_model, adam, fusion::fused>(dev, opt, 70, 10, 3, 16));
  else
    CHECK_THROWS_WITH((compare_with_reference<factored_model, adam, fusion::fused>(dev, opt, 70, 10, 3, 16)),
                      Catch::Contains("the plan cannot run as lowered"));
}

TEST_CASE("emulated: long batches take the split paths and many tiles per block", "[cuda][emulated]") {
  // 2500 rows: unfused column sums split the rows over blocks and weight-gradient GEMMs split the batch (their
  // last block adds the partials and runs the update); the fused rows kernel has 20 tiles of 128 rows for 6 blocks.
  auto dev = emulator();
  dev->set_multiprocessors(3);
  const momentum opt{.lr = 0.05, .momentum = 0.9};
  const auto unfused = compare_with_reference<mse_model<relu_fn>, momentum, fusion::unfused>(dev, opt, 2500, 7, 2);
  check_same_params(unfused, compare_with_reference<mse_model<relu_fn>, momentum, fusion::fused>(dev, opt, 2500, 7, 2));
}

TEST_CASE("emulated: the benchmark's steps (wide layers, 784 inputs, large register tiles)", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(3);
  check_same_params(compare_with_reference<mlp128_model, adam, fusion::fused>(dev, adam{}, 200, 8, 1),
                    compare_with_reference<mlp128_model, adam, fusion::unfused>(dev, adam{}, 200, 8, 1));
  compare_with_reference<classifier_model, adam, fusion::fused>(dev, adam{}, 150, 9, 1);
}

// TF32 and BF16 tensor-core products (render_options::precision): the whole-step kernels and the
// one-kernel-per-primitive ones, against the reference within tf32_tolerance / bf16_tolerance; and they really
// round: the same step in FP32 ends with different parameters. The emulator computes mma.sync's fragments lane
// by lane (prelude.hpp), so this checks the kernels' use of the fragment layouts; a GPU runs the same comparison
// in test_cuda_codegen_device.cpp.
TEST_CASE("emulated: TF32 and BF16 tensor-core products stay within their tolerance of the reference", "[cuda][emulated]") {
  auto dev = emulator();
  dev->set_multiprocessors(2);
  const adam opt{};
  const int steps = 2;
  const auto check = [&]<fusion Mode>() {
    auto run = [&](cuda::matmul_precision p, const tolerance& tol) {
      cuda_step_under_test<mlp64_model, adam, Mode> s(dev, opt, 21, 0, p);
      return compare_with_reference(s, 96, 21, steps, tol);
    };
    const auto fp32 = run(cuda::matmul_precision::fp32, tolerance{});
    for (const auto precision : {cuda::matmul_precision::tf32, cuda::matmul_precision::bf16}) {
      INFO((Mode == fusion::fused ? "fused, " : "unfused, ") << cuda::precision_name(precision) << " products");
      const auto rounded = run(precision, precision == cuda::matmul_precision::tf32 ? tf32_tolerance(opt.lr, steps)
                                                                                    : bf16_tolerance(opt.lr, steps));
      double largest_difference = 0;
      for (const auto& [name, values] : rounded)
        for (std::size_t j = 0; j < values.size(); ++j)
          largest_difference = std::max(largest_difference, static_cast<double>(std::abs(values[j] - fp32.at(name)[j])));
      CHECK(largest_difference > 1e-6);
    }
  };
  check.template operator()<fusion::fused>();
  check.template operator()<fusion::unfused>();
}

namespace {
float from_bits(std::uint32_t u) {
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}
std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
// x rounded to TF32 as cvt.rna does: 10 mantissa bits, to nearest, ties away from zero
double tf32(float x) { return from_bits((bits_of(x) + 0x1000u) & 0xffffe000u); }
// x rounded to BF16 as cvt.rn does: 7 mantissa bits, to nearest, ties to even (finite x)
double bf16(float x) {
  const std::uint32_t u = bits_of(x);
  return from_bits((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}
}  // namespace

TEST_CASE("emulated: the BF16 rounding is to nearest, ties to even, like cvt.rn", "[cuda][emulated]") {
  CHECK(bf16(1.0f) == 1.0);
  CHECK(bf16(1.0f + 1.0f / 256) == 1.0);                  // a tie, rounded to the even 1.0
  CHECK(bf16(1.0f + 3.0f / 256) == 1.0 + 4.0 / 256);      // a tie, rounded to the even 1 + 2/128
  CHECK(bf16(1.0f + 1.0f / 256 + 1.0f / 65536) == 1.0 + 1.0 / 128);  // past the tie: up
  CHECK(bf16(-3.0f) == -3.0);
}

namespace {
// kiln_rt::block_gemm with TF32 or BF16 products on its own, shapes that are not multiples of the 16×8 mma tile
// (k: 8 for TF32, 16 for BF16) nor of the block tile: every element must be the sum of the rounded products (up to
// FP32 accumulation), which only holds when each lane reads and writes the fragments mma.sync defines.
void check_block_gemm(cuda::matmul_precision precision) {
  INFO(cuda::precision_name(precision) << " products");
  const auto rounded_operand = precision == cuda::matmul_precision::tf32 ? tf32 : bf16;
  auto dev = emulator();
  constexpr int M = 37, N = 45, K = 29;
  const std::string source = cuda::prelude_source(precision) +
                             "extern \"C\" __global__ void gemm(KILN_PARAMS, float* a, float* b, float* c) {\n"
                             "  KILN_DYNAMIC_SHARED(smem);\n"
                             "  kiln_rt::block_gemm<128, 16, 2, 2, 16, true, false>(smem, 37, 45, 29,\n"
                             "      [&](int m, int k) { return a[m * 29 + k]; }, [&](int k, int n) { return b[k * 45 + n]; },\n"
                             "      [&](int m, int n, float v) { c[m * 45 + n] = v; });\n"
                             "}\n";
  auto module = dev->load(source, {{"gemm", 3}});
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(M * K), b(K * N), c(M * N, -1.0f);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  cuda::cu_deviceptr da = dev->allocate(a.size() * 4), db = dev->allocate(b.size() * 4), dc = dev->allocate(c.size() * 4);
  dev->upload(da, a.data(), a.size() * 4);
  dev->upload(db, b.data(), b.size() * 4);
  long long batch_size = 1;
  float hypers[cuda::max_hypers] = {};
  cuda::cu_deviceptr none = 0;
  int blocks = 1;
  void* args[] = {&batch_size, hypers, &none, &none, &blocks, &da, &db, &dc};
  const int scratch = 16 * ((128 / 16) * 2 + 1) + 16 * (16 * 2 + 1);  // kiln_rt::gemm_scratch<128, 16, 2, 2, 16>
  module->launch(0, {1, 1, 1}, {128, 1, 1}, scratch * 4, args);
  dev->download(c.data(), dc, c.size() * 4);
  double worst_rounded = 0, worst_fp32 = 0;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double rounded = 0, exact = 0, magnitude = 0;
      for (int k = 0; k < K; ++k) {
        rounded += rounded_operand(a[m * K + k]) * rounded_operand(b[k * N + n]);
        exact += static_cast<double>(a[m * K + k]) * b[k * N + n];
        magnitude += std::abs(static_cast<double>(a[m * K + k]) * b[k * N + n]);
      }
      worst_rounded = std::max(worst_rounded, std::abs(c[m * N + n] - rounded) / magnitude);
      worst_fp32 = std::max(worst_fp32, std::abs(c[m * N + n] - exact) / magnitude);
    }
  INFO("worst error relative to the sum of |products|: against rounded operands " << worst_rounded
                                                                                  << ", against exact " << worst_fp32);
  CHECK(worst_rounded < 1e-6);  // FP32 accumulation of exactly representable products
  CHECK(worst_fp32 > 1e-5);     // the operands really were rounded
  for (cuda::cu_deviceptr p : {da, db, dc}) dev->release(p);
}
}  // namespace

TEST_CASE("emulated: TF32 and BF16 block_gemm sum the rounded products, edge tiles included", "[cuda][emulated]") {
  check_block_gemm(cuda::matmul_precision::tf32);
  check_block_gemm(cuda::matmul_precision::bf16);
}

TEST_CASE("emulated: TF32 and BF16 products on a device older than sm_80 are refused, naming both", "[cuda][emulated]") {
  for (const auto& [precision, name] : {std::pair{cuda::matmul_precision::tf32, "TF32"}, std::pair{cuda::matmul_precision::bf16, "BF16"}}) {
    cuda::step_options so;
    cuda::emulator_options turing;
    turing.arch = 75;
    so.on = std::make_shared<cuda::emulated_device>(turing);
    so.render.precision = precision;
    CHECK_THROWS_AS((cuda::train_step<mlp64_model, adam>(adam{}, 1, so)), backend_unavailable);
    CHECK_THROWS_WITH((cuda::train_step<mlp64_model, adam>(adam{}, 1, so)),
                      Catch::Contains(name) && Catch::Contains("need sm_80 or newer") && Catch::Contains("is sm_75"));
  }
}

TEST_CASE("emulated: a kernel writing outside its buffer is reported", "[cuda][emulated]") {
  auto dev = emulator();
  const std::string source = std::string(cuda::prelude_source()) +
                             "extern \"C\" __global__ void fill(KILN_PARAMS, float* out) {\n"
                             "  if (threadIdx.x < (unsigned)ws_blocks) out[threadIdx.x] = 1.0f;\n"
                             "}\n";
  auto module = dev->load(source, {{"fill", 1}});
  cuda::cu_deviceptr out = dev->allocate(16 * sizeof(float));
  long long batch_size = 1;
  float hypers[cuda::max_hypers] = {};
  cuda::cu_deviceptr none = 0;
  int count = 16;
  void* args[] = {&batch_size, hypers, &none, &none, &count, &out};
  module->launch(0, {1, 1, 1}, {32, 1, 1}, 0, args);
  std::vector<float> host(16);
  dev->download(host.data(), out, 16 * sizeof(float));
  CHECK(host == std::vector<float>(16, 1.0f));
  count = 17;  // one float past the end
  CHECK_THROWS_WITH(module->launch(0, {1, 1, 1}, {32, 1, 1}, 0, args),
                    Catch::Contains("kernel 'fill' wrote outside the 64-byte buffer"));
  dev->release(out);
}
