// Asking for CUDA where it cannot run must throw backend_unavailable naming exactly what is missing.
// Kept apart from the device tests: once the stub driver is loaded into a process, dlopen("libcuda.so.1")
// there returns the stub (same SONAME), which would turn a real GPU's device tests into skips. For the same
// reason the test of this machine's real state comes first.
#include "cuda_test_support.hpp"

#include <filesystem>

using namespace kiln::cuda;
using kiln_test_cuda::scoped_env;

TEST_CASE("this machine: asking for CUDA either works or names one precise reason") {
  try {
    runtime rt = runtime::open();
    WARN("CUDA available: " << rt.describe());
    CHECK(rt.device().arch() >= 30);
    CHECK(rt.nvrtc().supports(gpu_target{rt.target().arch, false, ""}));
  } catch (const kiln::backend_unavailable& e) {
    const std::string what = e.what();
    WARN("skipped: CUDA unavailable here: " << what);
    CHECK_THAT(what, Catch::StartsWith("CUDA backend unavailable: "));
    CHECK(kiln_test_cuda::is_precise_unavailable_reason(what));
  }
}

TEST_CASE("KILN_NVRTC_PATH pointing at a missing library: backend_unavailable names it") {
  scoped_env nvrtc("KILN_NVRTC_PATH", "/nonexistent/kiln-test/libnvrtc.so.99");
  try {
    runtime::open();
    FAIL("runtime::open() succeeded without an NVRTC library");
  } catch (const kiln::backend_unavailable& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK_THAT(what, Catch::Contains("no NVRTC library"));
    CHECK_THAT(what, Catch::Contains("/nonexistent/kiln-test/libnvrtc.so.99"));
    CHECK_THAT(what, Catch::Contains("KILN_NVRTC_PATH"));
  }
  // With the driver missing too, one message names both, the common prefix said once.
  {
    scoped_env driver("KILN_CUDA_DRIVER_PATH", "/nonexistent/kiln-test/libcuda.so.1");
    try {
      runtime::open();
      FAIL("runtime::open() succeeded without driver and NVRTC");
    } catch (const kiln::backend_unavailable& e) {
      CHECK_THAT(std::string(e.what()),
                 Catch::StartsWith("CUDA backend unavailable: no driver library (/nonexistent/kiln-test/libcuda.so.1") &&
                     Catch::Contains("; and no NVRTC library (/nonexistent/kiln-test/libnvrtc.so.99"));
    }
  }
  // Compile-only use reports the same missing library.
  CHECK_THROWS_AS(compile_for_arch(kiln_test_cuda::axpby_kernel(), "sm_90"), kiln::backend_unavailable);
  CHECK_THROWS_WITH(nvrtc_library::load(), Catch::Contains("/nonexistent/kiln-test/libnvrtc.so.99"));
}

TEST_CASE("KILN_CUDA_DRIVER_PATH pointing at a missing library: no driver library") {
  scoped_env driver("KILN_CUDA_DRIVER_PATH", "/nonexistent/kiln-test/libcuda.so.1");
  CHECK_THROWS_AS(runtime::open(), kiln::backend_unavailable);
  CHECK_THROWS_WITH(runtime::open(),
                    Catch::Contains("no driver library") && Catch::Contains("/nonexistent/kiln-test/libcuda.so.1"));
}

TEST_CASE("the toolkit's stub libcuda is recognised as a stub, not a driver") {
  std::string stub;
  for (const std::string& root : {env_or_empty("CUDA_PATH"), env_or_empty("CUDA_HOME"), std::string("/usr/local/cuda")})
    if (!root.empty() && std::filesystem::exists(root + "/lib64/stubs/libcuda.so")) {
      stub = root + "/lib64/stubs/libcuda.so";
      break;
    }
  if (stub.empty()) {
    WARN("skipped: no CUDA toolkit stub driver (lib64/stubs/libcuda.so) on this machine");
    return;
  }
  if (!kiln_test_cuda::nvrtc_or_skip()) return;  // without NVRTC the message would be about NVRTC instead
  scoped_env driver("KILN_CUDA_DRIVER_PATH", stub.c_str());
  try {
    runtime::open();
    FAIL("runtime::open() succeeded with the stub driver " << stub);
  } catch (const kiln::backend_unavailable& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK_THAT(what, Catch::Contains("cuInit failed"));
    CHECK_THAT(what, Catch::Contains("CUDA_ERROR_STUB_LIBRARY (34)"));
    CHECK_THAT(what, Catch::Contains("this is the toolkit's stub driver, not a real one"));
    CHECK_THAT(what, Catch::Contains(stub));
  }
}
