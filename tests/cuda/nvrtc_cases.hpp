// Compile-only (no GPU needed): every kernel the test models generate in one fusion mode, rendered for an A100
// (sm_80) and an H100 (sm_90) in fused mode, for the H100 in unfused mode (architectures_for in
// test_cuda_codegen_common.hpp says why), and compiled to CUBIN with NVRTC. Skipped with the reason where NVRTC is absent.
// Every activation, loss and optimizer appears in at least one of these steps. Included by
// test_cuda_codegen_nvrtc_fused.cpp and _unfused.cpp (two files, so that each compiles in its own process),
// after they define KILN_NVRTC_MODE as fused or unfused.
#ifndef KILN_NVRTC_MODE
#error "define KILN_NVRTC_MODE (fused or unfused) before including nvrtc_cases.hpp"
#endif
#define KILN_NVRTC_STRINGIZE(x) #x
#define KILN_NVRTC_NAME(x) KILN_NVRTC_STRINGIZE(x)
#define KILN_NVRTC_MODE_NAME KILN_NVRTC_NAME(KILN_NVRTC_MODE)

#include "../sanitizer_build.hpp"
#include "test_cuda_codegen_common.hpp"

// Under AddressSanitizer, no leak check at exit for these two executables: once, in a loaded CI run, LSan's
// exit-time tracer crashed (signal 11 while stopping the process's threads) after every assertion had passed,
// with NVRTC's library loaded and 343 kernels compiled. They test that generated kernels compile; the host code
// they share with the step (runtime, cache, renderer) is leak-checked by the other CUDA tests.
#if KILN_TEST_SANITIZED
extern "C" int __lsan_is_turned_off() { return 1; }
#endif

using namespace kiln;
using namespace kiln_cuda_test;

namespace {
constexpr fusion mode = fusion::KILN_NVRTC_MODE;
// x - mean over the batch feeds a layer: the fused plan falls back to one kernel per plan kernel.
struct centered_model {
  constexpr auto operator()() const { return mse(nn::sequential(dense<3>{})(x - mean_batch(x)), t); }
};
}  // namespace

TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): relu, sigmoid, tanh, leaky_relu, cross-entropy, Adam", "[cuda][nvrtc]") {
  compile_step<acts_a_model, adam, mode>("acts_a_model/adam");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): elu, gelu, gelu_tanh, MSE, AdamW", "[cuda][nvrtc]") {
  compile_step<acts_b_model, adamw, mode>("acts_b_model/adamw");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): swish, softplus, identity, prelu, MAE, Nesterov", "[cuda][nvrtc]") {
  compile_step<acts_c_model, nesterov, mode>("acts_c_model/nesterov");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): bce, bce_with_logits, kl_div, categorical cross-entropy, nll, momentum", "[cuda][nvrtc]") {
  compile_step<losses_model, momentum, mode>("losses_model/momentum");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): SGD, a batch reduction feeding rows, batch-free contractions", "[cuda][nvrtc]") {
  compile_step<mse_model<relu_fn>, sgd, mode>("mse_model/sgd");
  compile_step<centered_model, sgd, mode>("centered_model/sgd");
  compile_step<factored_model, adam, mode>("factored_model/adam");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): the benchmark's MLP of width 64", "[cuda][nvrtc]") {
  compile_step<mlp64_model, adam, mode>("mlp64_model/adam");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): the benchmark's MLP of width 128", "[cuda][nvrtc]") {
  compile_step<mlp128_model, adam, mode>("mlp128_model/adam");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): the 784-128-64-10 classifier", "[cuda][nvrtc]") {
  compile_step<classifier_model, adam, mode>("classifier_model/adam");
}
TEST_CASE("NVRTC (" KILN_NVRTC_MODE_NAME "): TF32 and BF16 tensor-core products (the benchmark's MLP, the classifier)", "[cuda][nvrtc]") {
  // the classifier once (its tensor-core kernels differ from the MLP's in their sizes, not in the precision's code)
  compile_step<mlp64_model, adam, mode>("mlp64_model/adam", cuda::matmul_precision::tf32);
  compile_step<mlp64_model, adam, mode>("mlp64_model/adam", cuda::matmul_precision::bf16);
  compile_step<classifier_model, adam, mode>("classifier_model/adam", cuda::matmul_precision::bf16);
  // the PTX of a TF32 or BF16 module holds its tensor-core instruction (and BF16's its conversion), the FP32
  // module's neither
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  const std::string tf32_mma = "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32",
                    bf16_mma = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", bf16_cvt = "cvt.rn.bf16x2.f32";
  for (const auto precision : {cuda::matmul_precision::tf32, cuda::matmul_precision::bf16, cuda::matmul_precision::fp32}) {
    INFO(cuda::precision_name(precision));
    cuda::render_options o;
    o.precision = precision;
    const cuda::rendered_program r = cuda::render(step_plan<mlp64_model, adam, mode>::p, o);
    const cuda::compiled_kernel k = nvrtc->compile({r.module_source(), r.launches.front().name, cuda::module_options()},
                                                  cuda::gpu_target::parse("compute_80"));
    const auto has = [&](const std::string& text) { return k.image.find(text) != std::string::npos; };
    CHECK(has(tf32_mma) == (precision == cuda::matmul_precision::tf32));
    CHECK(has(bf16_mma) == (precision == cuda::matmul_precision::bf16));
    CHECK(has(bf16_cvt) == (precision == cuda::matmul_precision::bf16));
  }
}
