// NVRTC compile-only (no GPU needed): representative kernels for sm_80 and sm_90, PTX output, and the
// compile-error report. Each test WARNs "skipped: ..." and returns when NVRTC cannot be loaded.
#include "cuda_test_support.hpp"

#include <cstdint>
#include <cstring>

using namespace kiln::cuda;
using kiln_test_cuda::nvrtc_or_skip;

namespace {

std::uint32_t le32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// A CUBIN is an ELF64 file for machine EM_CUDA (190). NVIDIA's ELF ABI stores the SM number in e_flags
// (offset 48): bits 8..15 in ABI version ≥ 8 (CUDA 12.8 and later), bits 0..7 before.
void check_cubin_for(const compiled_kernel& k, int arch) {
  REQUIRE(k.kind == binary_kind::cubin);
  REQUIRE(k.image.size() > 64);
  CHECK(k.image.compare(0, 4, "\x7f" "ELF") == 0);
  CHECK(static_cast<unsigned char>(k.image[4]) == 2);  // ELFCLASS64
  CHECK((le32(k.image, 16) >> 16) == 190);             // e_machine == EM_CUDA
  const std::uint32_t flags = le32(k.image, 48);
  const int abi_version = static_cast<unsigned char>(k.image[8]);
  const int sm = abi_version >= 8 ? static_cast<int>((flags >> 8) & 0xff) : static_cast<int>(flags & 0xff);
  CHECK(sm == arch);
  CHECK(k.target == "sm_" + std::to_string(arch));
  // The kernel's symbol is in the ELF string table under the name the driver will look up.
  CHECK(k.image.find(k.lowered_name) != std::string::npos);
}

}  // namespace

TEST_CASE("NVRTC compiles the representative kernels to CUBIN for sm_80 and sm_90") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  INFO("NVRTC " << nvrtc->version().text() << " from " << nvrtc->path());
  for (const kernel_source& src :
       {kiln_test_cuda::axpby_kernel(), kiln_test_cuda::matmul_tiled_kernel(), kiln_test_cuda::row_sum_kernel()}) {
    INFO("kernel " << src.name);
    const compiled_kernel sm80 = nvrtc->compile(src, gpu_target::parse("sm_80"));
    const compiled_kernel sm90 = nvrtc->compile(src, gpu_target::parse("sm_90"));
    check_cubin_for(sm80, 80);
    check_cubin_for(sm90, 90);
    CHECK(sm80.image != sm90.image);
    CHECK(sm80.compile_seconds > 0);
  }
}

TEST_CASE("C++ template kernels are found through their lowered (mangled) name") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  const compiled_kernel k = nvrtc->compile(kiln_test_cuda::matmul_tiled_kernel(), gpu_target::parse("sm_90"));
  // Itanium mangling of kiln_test::matmul_tiled<16>(const float*, const float*, float*, int, int, int).
  CHECK(k.lowered_name == "_ZN9kiln_test12matmul_tiledILi16EEEvPKfS2_Pfiii");
  CHECK(nvrtc->compile(kiln_test_cuda::axpby_kernel(), gpu_target::parse("sm_90")).lowered_name == "axpby");
}

TEST_CASE("compute_XY targets give PTX with the kernel's real instructions") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  const compiled_kernel sum = nvrtc->compile(kiln_test_cuda::row_sum_kernel(), gpu_target::parse("compute_90"));
  REQUIRE(sum.kind == binary_kind::ptx);
  CHECK(sum.target == "compute_90");
  CHECK(sum.image.find(".target sm_90") != std::string::npos);
  CHECK(sum.image.find(".entry row_sum_f4") != std::string::npos);
  CHECK(sum.image.find("shfl.sync.bfly") != std::string::npos);  // __shfl_xor_sync
  CHECK(sum.image.find("ld.global.v4.f32") != std::string::npos);  // one 16-byte float4 load
  CHECK(sum.image.find('\0') == std::string::npos);                 // stored without NVRTC's NUL

  const compiled_kernel mm = nvrtc->compile(kiln_test_cuda::matmul_tiled_kernel(), gpu_target::parse("compute_80"));
  CHECK(mm.image.find(".shared") != std::string::npos);
  CHECK(mm.image.find("bar.sync") != std::string::npos);  // __syncthreads
}

TEST_CASE("compile_for_arch is the one-call compile-only entry point") {
  if (!nvrtc_or_skip()) return;
  const compiled_kernel k = compile_for_arch(kiln_test_cuda::axpby_kernel(), "sm_90");
  check_cubin_for(k, 90);
  CHECK_THROWS_WITH(compile_for_arch(kiln_test_cuda::axpby_kernel(), "sm90"), Catch::Contains("expected sm_<NN>"));
}

TEST_CASE("options decide the code: -D macros reach the kernel") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  kernel_source src{R"(extern "C" __global__ void scale(float* y) { y[threadIdx.x] *= SCALE; })", "scale",
                    {"-DSCALE=3.5f"}};
  const compiled_kernel a = nvrtc->compile(src, gpu_target::parse("compute_90"));
  src.options = {"-DSCALE=0.25f"};
  const compiled_kernel b = nvrtc->compile(src, gpu_target::parse("compute_90"));
  // PTX writes float immediates as 0f<IEEE hex>: 3.5f = 0x40600000, 0.25f = 0x3E800000.
  CHECK(a.image.find("0f40600000") != std::string::npos);
  CHECK(b.image.find("0f3E800000") != std::string::npos);
}

TEST_CASE("a broken kernel reports NVRTC's error, the log, the options and the numbered source") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  const kernel_source broken{"extern \"C\" __global__ void broken(float* y) {\n"
                             "  int i = threadIdx.x;\n"
                             "  y[i] = undeclared_thing * 2.0f;\n"
                             "}\n",
                             "broken",
                             {"--use_fast_math"}};
  try {
    nvrtc->compile(broken, gpu_target::parse("sm_90"));
    FAIL("a kernel using an undeclared identifier compiled");
  } catch (const nvrtc_compile_error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK_THAT(what, Catch::Contains("NVRTC_ERROR_COMPILATION"));
    CHECK_THAT(what, Catch::Contains("kernel 'broken' for sm_90"));
    CHECK_THAT(what, Catch::Contains("options: --use_fast_math --gpu-architecture=sm_90"));
    CHECK_THAT(e.log, Catch::Contains("broken.cu(3)") && Catch::Contains("undeclared_thing"));
    CHECK_THAT(what, Catch::Contains(e.log));
    CHECK_THAT(what, Catch::Contains("  3 |   y[i] = undeclared_thing * 2.0f;\n"));
    CHECK_THAT(what, Catch::Contains("  1 | extern \"C\" __global__ void broken(float* y) {\n"));
  }
}

TEST_CASE("a kernel name that is not in the source is a compile error naming it") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  kernel_source src = kiln_test_cuda::axpby_kernel();
  src.name = "no_such_kernel";
  CHECK_THROWS_AS(nvrtc->compile(src, gpu_target::parse("sm_90")), nvrtc_compile_error);
  CHECK_THROWS_WITH(nvrtc->compile(src, gpu_target::parse("sm_90")), Catch::Contains("no_such_kernel"));
}

TEST_CASE("targets NVRTC does not support and architecture options are refused up front") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  const auto& archs = nvrtc->supported_archs();
  REQUIRE_FALSE(archs.empty());
  CHECK(std::is_sorted(archs.begin(), archs.end()));
  CHECK_THROWS_WITH(nvrtc->compile(kiln_test_cuda::axpby_kernel(), gpu_target::parse("sm_20")),
                    Catch::Contains("cannot compile for sm_20") && Catch::Contains(std::to_string(archs.back())));
  kernel_source src = kiln_test_cuda::axpby_kernel();
  src.options = {"-arch=sm_80"};
  CHECK_THROWS_WITH(nvrtc->compile(src, gpu_target::parse("sm_90")),
                    Catch::Contains("'-arch=sm_80'") && Catch::Contains("gpu_target"));
}
