// The CUDA backend on a real GPU: building a step (or, where CUDA cannot run, backend_unavailable with
// runtime::open()'s precise reason), tile sizes, data on the device, parameters by name, the kernel cache, and
// the benchmark's steps against the reference. Activations, losses and optimizers at batch sizes 1, 7, 128,
// 1000, 65537: test_cuda_codegen_device_activations.cpp / _losses.cpp. Without a GPU: "skipped: <reason>".
// compute-sanitizer: run this executable under `compute-sanitizer --tool memcheck` and `--tool racecheck`.
#include "cuda_test_support.hpp"
#include "test_cuda_codegen_common.hpp"

using namespace kiln;
using namespace kiln_cuda_test;


TEST_CASE("device: building a CUDA step works, or throws backend_unavailable naming the reason", "[cuda][device]") {
  try {
    cuda::train_step<mse_model<relu_fn>, sgd> step;
    WARN("CUDA step on " << step.on().describe() << ": " << step.launches_per_step() << " launches, module "
                         << step.compile_report().origin << " in " << step.compile_report().seconds << " s");
    CHECK(step.launches_per_step() == 3);
  } catch (const backend_unavailable& e) {
    const std::string what = e.what();
    WARN("skipped: CUDA unavailable here: " << what);
    CHECK_THAT(what, Catch::StartsWith("CUDA backend unavailable: "));
    CHECK(kiln_test_cuda::is_precise_unavailable_reason(what));
  }
}

TEST_CASE("device: tile sizes and shared-memory spills give the same step", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  const adam opt{.lr = 1e-2};
  const auto base = compare_with_reference<acts_a_model, adam, fusion::fused>(dev, opt, 1000, 51, 2);
  for (int tile : {16, 32, 64, 128}) {
    INFO("tile rows " << tile);
    check_same_params(base, compare_with_reference<acts_a_model, adam, fusion::fused>(dev, opt, 1000, 51, 2, tile));
  }
}

TEST_CASE("device: data on the device, parameters by name, the kernel cache", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  cuda::step_options so;
  so.on = dev;
  cuda::train_step<ce_model<relu_fn>, adam> a(adam{.lr = 1e-2}, 3, so), b(adam{.lr = 1e-2}, 3, so);
  CHECK(b.compile_report().origin != "compiled");  // the same source: from the kernel cache
  const batch_data d = random_batch(decltype(a)::step_graph(), 500, 9);
  // b gets its batch from device memory, uploaded once
  const cuda::cu_deviceptr xs = dev->allocate(d.xs.size() * 4), ys = dev->allocate(d.ys.size() * 4);
  std::vector<float> yf(d.ys.begin(), d.ys.end());
  dev->upload(xs, d.xs.data(), d.xs.size() * 4);
  dev->upload(ys, yf.data(), yf.size() * 4);
  for (int s = 0; s < 3; ++s) {
    const float la = a.run(500, {{"x", d.xs}, {"y", d.ys}});
    b.run_on_device(500, {{"x", xs}, {"y", ys}});
    CHECK(b.loss() == la);
  }
  CHECK(all_params(a) == all_params(b));
  dev->release(xs);
  dev->release(ys);
  // parameters written by name are what the next step uses
  std::vector<float> w = a.param("fc1.weight");
  for (float& v : w) v = 0.5f;
  a.set_param("fc1.weight", w);
  CHECK(a.param("fc1.weight") == w);
  CHECK_THROWS_AS(a.set_param("fc1.weight", std::vector<float>(3)), shape_error);
  CHECK_THROWS_WITH(a.param("fc9.weight"), Catch::Contains("no parameter or optimizer state named 'fc9.weight'"));
  CHECK_THROWS_WITH(a.run(4, {{"x", std::vector<float>(5)}, {"y", std::vector<std::int32_t>(4)}}),
                    Catch::Contains("'x' has 5 values") && Catch::Contains("[4, 6]"));
  CHECK_THROWS_WITH(a.run(1, {{"x", std::vector<float>(6)}, {"y", std::vector<std::int32_t>{3}}}),
                    Catch::Contains("outside [0, 3)"));
}

// The tensor-core steps, fused (MLP64 at two batch sizes, the classifier) and unfused, each within its precision's
// tolerance of the reference (tests/cuda/test_cuda_codegen_common.hpp).
TEST_CASE("device: TF32 and BF16 tensor-core products against the reference, within their tolerances", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  if (dev->arch() < 80) {
    WARN("skipped: " << dev->describe() << " has no TF32 or BF16 tensor cores (sm_80 or newer)");
    return;
  }
  const adam opt{};
  for (const auto precision : {cuda::matmul_precision::tf32, cuda::matmul_precision::bf16}) {
    INFO(cuda::precision_name(precision) << " products");
    const tolerance tol = precision == cuda::matmul_precision::tf32 ? tf32_tolerance(opt.lr, 2) : bf16_tolerance(opt.lr, 2);
    for (const long batch : {1000L, 65537L}) {
      cuda_step_under_test<mlp64_model, adam, fusion::fused> fused(dev, opt, 65, 0, precision);
      compare_with_reference(fused, batch, 65, 2, tol);
    }
    cuda_step_under_test<mlp64_model, adam, fusion::unfused> unfused(dev, opt, 67, 0, precision);
    compare_with_reference(unfused, 1000, 67, 2, tol);
    cuda_step_under_test<classifier_model, adam, fusion::fused> classifier(dev, opt, 66, 0, precision);
    compare_with_reference(classifier, 1000, 66, 2, tol);
  }
}

TEST_CASE("device: the benchmark's steps against the reference", "[cuda][device]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  // the double reference's naive products bound the batch: 1000 for all, 65537 for the narrow MLP
  check_same_params(compare_with_reference<mlp64_model, adam, fusion::fused>(dev, adam{}, 1000, 61, 2),
                    compare_with_reference<mlp64_model, adam, fusion::unfused>(dev, adam{}, 1000, 61, 2));
  check_same_params(compare_with_reference<mlp128_model, adam, fusion::fused>(dev, adam{}, 1000, 62, 2),
                    compare_with_reference<mlp128_model, adam, fusion::unfused>(dev, adam{}, 1000, 62, 2));
  check_same_params(compare_with_reference<classifier_model, adam, fusion::fused>(dev, adam{}, 1000, 63, 2),
                    compare_with_reference<classifier_model, adam, fusion::unfused>(dev, adam{}, 1000, 63, 2));
  check_same_params(compare_with_reference<mlp64_model, adam, fusion::fused>(dev, adam{}, 65537, 64, 1),
                    compare_with_reference<mlp64_model, adam, fusion::unfused>(dev, adam{}, 65537, 64, 1));
}
