// The runtime's driver-side logic without a GPU: a fake driver (host memory, a CPU emulation of the axpby
// kernel) is bound through driver_library::from_symbols, so runtime::open_with, module loading with its PTX
// fallback, argument marshalling, RAII release and every "CUDA unavailable" message are exercised here.
// The real NVRTC compiles the kernels; the tests WARN "skipped: ..." when it cannot be loaded.
#include "cuda_test_support.hpp"

#include <cstring>
#include <map>
#include <set>

using namespace kiln::cuda;

namespace {

struct fake_module {
  std::string image;
  bool ptx = false;
};
struct fake_function {
  std::string name;
};

// What the fake driver reports and what it has seen. Reset by each test.
struct fake_gpu {
  cu_result init_result = cu_error::success;
  int driver_version = 13000;
  int device_count = 1;
  int cc_major = 9, cc_minor = 0;
  bool reject_cubin = false;  // like a driver that cannot run this CUBIN here
  bool reject_ptx = false;
  std::vector<std::string> loaded;  // "cubin" / "ptx", in load order
  int retained = 0, released = 0;
  std::set<cu_deviceptr> allocations;
  int live_modules = 0;
  int launches = 0;
};
fake_gpu gpu;

cu_result fake_init(unsigned) { return gpu.init_result; }
cu_result fake_driver_version(int* v) {
  *v = gpu.driver_version;
  return cu_error::success;
}
cu_result fake_error_name(cu_result r, const char** s) {
  *s = known_cu_error_name(r);
  return *s ? cu_error::success : cu_error::invalid_value;
}
cu_result fake_error_string(cu_result r, const char** s) {
  *s = r == cu_error::invalid_value ? "invalid argument" : "fake driver error";
  return cu_error::success;
}
cu_result fake_device_count(int* n) {
  *n = gpu.device_count;
  return cu_error::success;
}
cu_result fake_device_get(cu_device* d, int ordinal) {
  if (ordinal < 0 || ordinal >= gpu.device_count) return cu_error::invalid_device;
  *d = ordinal;
  return cu_error::success;
}
cu_result fake_device_name(char* name, int len, cu_device) {
  std::snprintf(name, static_cast<std::size_t>(len), "kiln fake GPU");
  return cu_error::success;
}
cu_result fake_attribute(int* v, int attr, cu_device) {
  switch (attr) {
    case cu_device_attribute::compute_capability_major: *v = gpu.cc_major; break;
    case cu_device_attribute::compute_capability_minor: *v = gpu.cc_minor; break;
    case cu_device_attribute::multiprocessor_count: *v = 7; break;
    case cu_device_attribute::max_threads_per_block: *v = 1024; break;
    case cu_device_attribute::max_shared_memory_per_block_optin: *v = 227 * 1024; break;
    default: return cu_error::invalid_value;
  }
  return cu_error::success;
}
opaque::context* const fake_context = reinterpret_cast<opaque::context*>(std::uintptr_t{0x1000});
cu_result fake_retain(cu_context* c, cu_device) {
  ++gpu.retained;
  *c = fake_context;
  return cu_error::success;
}
cu_result fake_release(cu_device) {
  ++gpu.released;
  return cu_error::success;
}
cu_result fake_set_current(cu_context c) { return c == fake_context ? cu_error::success : cu_error::invalid_context; }
cu_result fake_synchronize() { return cu_error::success; }
cu_result fake_module_load(cu_module* m, const void* image, unsigned n_options, int* options, void** values) {
  const char* bytes = static_cast<const char*>(image);
  const bool is_cubin = std::memcmp(bytes, "\x7f" "ELF", 4) == 0;
  gpu.loaded.push_back(is_cubin ? "cubin" : "ptx");
  if ((is_cubin && gpu.reject_cubin) || (!is_cubin && gpu.reject_ptx)) {
    for (unsigned i = 0; i < n_options; ++i)
      if (options[i] == cu_jit_option::error_log_buffer)
        std::snprintf(static_cast<char*>(values[i]), 64, "fake JIT: no luck with this image");
    return is_cubin ? cu_error::no_binary_for_gpu : cu_error::unsupported_ptx_version;
  }
  // A CUBIN image must be passed whole: its size comes from the ELF section table, not a NUL.
  *m = reinterpret_cast<cu_module>(new fake_module{is_cubin ? std::string(bytes, 64) : std::string(bytes), !is_cubin});
  ++gpu.live_modules;
  return cu_error::success;
}
cu_result fake_module_unload(cu_module m) {
  delete reinterpret_cast<fake_module*>(m);
  --gpu.live_modules;
  return cu_error::success;
}
cu_result fake_get_function(cu_function* f, cu_module, const char* name) {
  static fake_function axpby{"axpby"};  // the only kernel this fake can run
  if (std::string(name) != axpby.name) return cu_error::not_found;
  *f = reinterpret_cast<cu_function>(&axpby);
  return cu_error::success;
}
cu_result fake_func_attribute(cu_function, int, int) { return cu_error::success; }
// Runs axpby(float* y, const float* x, float a, float b, int n) on the host, thread by thread.
cu_result fake_launch(cu_function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                      unsigned, cu_stream, void** args, void** extra) {
  if (bx * by * bz > 1024 || extra) return cu_error::invalid_value;
  ++gpu.launches;
  float* y = reinterpret_cast<float*>(*static_cast<cu_deviceptr*>(args[0]));
  const float* x = reinterpret_cast<const float*>(*static_cast<cu_deviceptr*>(args[1]));
  const float a = *static_cast<float*>(args[2]), b = *static_cast<float*>(args[3]);
  const int n = *static_cast<int*>(args[4]);
  for (unsigned i = 0; i < gx * gy * gz * bx; ++i)
    if (static_cast<int>(i) < n) y[i] = a * x[i] + b * y[i];
  return cu_error::success;
}
cu_result fake_alloc(cu_deviceptr* p, std::size_t n) {
  *p = reinterpret_cast<cu_deviceptr>(new char[n]);
  gpu.allocations.insert(*p);
  return cu_error::success;
}
cu_result fake_free(cu_deviceptr p) {
  if (!gpu.allocations.erase(p)) return cu_error::invalid_value;
  delete[] reinterpret_cast<char*>(p);
  return cu_error::success;
}
cu_result fake_htod(cu_deviceptr d, const void* h, std::size_t n) {
  std::memcpy(reinterpret_cast<void*>(d), h, n);
  return cu_error::success;
}
cu_result fake_dtoh(void* h, cu_deviceptr d, std::size_t n) {
  std::memcpy(h, reinterpret_cast<const void*>(d), n);
  return cu_error::success;
}
cu_result fake_memset(cu_deviceptr d, unsigned char v, std::size_t n) {
  std::memset(reinterpret_cast<void*>(d), v, n);
  return cu_error::success;
}
cu_result fake_stream_create(cu_stream* s, unsigned) {
  *s = reinterpret_cast<cu_stream>(new int(0));
  return cu_error::success;
}
cu_result fake_stream_destroy(cu_stream s) {
  delete reinterpret_cast<int*>(s);
  return cu_error::success;
}
cu_result fake_stream_synchronize(cu_stream) { return cu_error::success; }

std::map<std::string, void*> fake_symbols() {
  auto fn = [](auto f) { return reinterpret_cast<void*>(f); };
  return {{"cuInit", fn(&fake_init)},
          {"cuDriverGetVersion", fn(&fake_driver_version)},
          {"cuGetErrorName", fn(&fake_error_name)},
          {"cuGetErrorString", fn(&fake_error_string)},
          {"cuDeviceGetCount", fn(&fake_device_count)},
          {"cuDeviceGet", fn(&fake_device_get)},
          {"cuDeviceGetName", fn(&fake_device_name)},
          {"cuDeviceGetAttribute", fn(&fake_attribute)},
          {"cuDevicePrimaryCtxRetain", fn(&fake_retain)},
          {"cuDevicePrimaryCtxRelease_v2", fn(&fake_release)},
          {"cuCtxSetCurrent", fn(&fake_set_current)},
          {"cuCtxSynchronize", fn(&fake_synchronize)},
          {"cuModuleLoadDataEx", fn(&fake_module_load)},
          {"cuModuleUnload", fn(&fake_module_unload)},
          {"cuModuleGetFunction", fn(&fake_get_function)},
          {"cuFuncSetAttribute", fn(&fake_func_attribute)},
          {"cuLaunchKernel", fn(&fake_launch)},
          {"cuMemAlloc_v2", fn(&fake_alloc)},
          {"cuMemFree_v2", fn(&fake_free)},
          {"cuMemcpyHtoD_v2", fn(&fake_htod)},
          {"cuMemcpyDtoH_v2", fn(&fake_dtoh)},
          {"cuMemsetD8_v2", fn(&fake_memset)},
          {"cuStreamCreate", fn(&fake_stream_create)},
          {"cuStreamDestroy_v2", fn(&fake_stream_destroy)},
          {"cuStreamSynchronize", fn(&fake_stream_synchronize)}};
}

std::shared_ptr<const driver_library> fake_driver(const std::string& leave_out = "") {
  auto table = std::make_shared<std::map<std::string, void*>>(fake_symbols());
  table->erase(leave_out);
  return driver_library::from_symbols({"fake libcuda", [table](const char* name) -> void* {
                                         auto it = table->find(name);
                                         return it == table->end() ? nullptr : it->second;
                                       }});
}

runtime::options memory_cache() {
  runtime::options opt;
  opt.cache_directory = "";
  return opt;
}

}  // namespace

TEST_CASE("fake driver: open, compile, load, launch and release everything") {
  auto nvrtc = kiln_test_cuda::nvrtc_or_skip();
  if (!nvrtc) return;
  gpu = fake_gpu{};
  {
    runtime rt = runtime::open_with(fake_driver(), nvrtc, memory_cache());
    CHECK_THAT(rt.describe(), Catch::Contains("kiln fake GPU (sm_90, 7 SMs)") && Catch::Contains("driver CUDA 13.0"));
    CHECK(rt.target() == gpu_target{90, false, ""});
    CHECK(gpu.retained == 1);

    const int n = 1000;
    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; ++i) {
      x[i] = 0.5f * static_cast<float>(i);
      y[i] = 1.0f - static_cast<float>(i);
    }
    device_buffer dx = rt.allocate(n * sizeof(float)), dy = rt.allocate(n * sizeof(float));
    dx.upload(std::span<const float>(x));
    dy.upload(std::span<const float>(y));
    const loaded_kernel k = rt.load(kiln_test_cuda::axpby_kernel());
    CHECK(gpu.loaded == std::vector<std::string>{"cubin"});
    k.function.launch({4}, {256}, 0, nullptr, dy.ptr(), dx.ptr(), 2.0f, -1.0f, n);
    rt.synchronize();
    std::vector<float> out(n);
    dy.download(std::span<float>(out));
    for (int i = 0; i < n; ++i) REQUIRE(out[i] == 2.0f * x[i] - y[i]);
    CHECK(gpu.launches == 1);

    CHECK(rt.load(kiln_test_cuda::axpby_kernel()).origin == cache_origin::memory);
    CHECK(gpu.loaded.size() == 1);  // the module is reused, not loaded twice
    CHECK(gpu.allocations.size() == 2);
  }
  CHECK(gpu.allocations.empty());
  CHECK(gpu.live_modules == 0);
  CHECK(gpu.released == gpu.retained);
}

TEST_CASE("fake driver: a rejected CUBIN falls back to PTX for the same architecture") {
  auto nvrtc = kiln_test_cuda::nvrtc_or_skip();
  if (!nvrtc) return;
  gpu = fake_gpu{};
  gpu.reject_cubin = true;
  runtime rt = runtime::open_with(fake_driver(), nvrtc, memory_cache());
  const loaded_kernel k = rt.load(kiln_test_cuda::axpby_kernel());
  CHECK(gpu.loaded == std::vector<std::string>{"cubin", "ptx"});
  CHECK(k.compiled->kind == binary_kind::ptx);
  CHECK(k.compiled->target == "compute_90");

  gpu.reject_ptx = true;
  kiln::cuda::kernel_source other = kiln_test_cuda::axpby_kernel();
  other.options = {"-DDIFFERENT_KEY"};
  CHECK_THROWS_WITH(rt.load(other), Catch::Contains("CUDA_ERROR_NO_BINARY_FOR_GPU") &&
                                        Catch::Contains("PTX fallback") &&
                                        Catch::Contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION") &&
                                        Catch::Contains("fake JIT: no luck"));
}

TEST_CASE("fake driver: every reason for CUDA being unavailable is named") {
  auto nvrtc = kiln_test_cuda::nvrtc_or_skip();
  if (!nvrtc) return;
  auto open_error = [&](auto configure) {
    gpu = fake_gpu{};
    configure(gpu);
    try {
      runtime::open_with(fake_driver(), nvrtc, memory_cache());
    } catch (const kiln::backend_unavailable& e) {
      CHECK(kiln_test_cuda::is_precise_unavailable_reason(e.what()));
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK_THAT(open_error([](fake_gpu& g) { g.init_result = cu_error::stub_library; }),
             Catch::Contains("cuInit failed with CUDA_ERROR_STUB_LIBRARY (34)") &&
                 Catch::Contains("this is the toolkit's stub driver, not a real one"));
  CHECK_THAT(open_error([](fake_gpu& g) { g.init_result = cu_error::no_device; }),
             Catch::Contains("no device") && Catch::Contains("CUDA_ERROR_NO_DEVICE"));
  CHECK_THAT(open_error([](fake_gpu& g) { g.device_count = 0; }), Catch::Contains("no device (cuDeviceGetCount = 0)"));
  const std::string old = open_error([](fake_gpu& g) { g.driver_version = 12040; });
  CHECK_THAT(old, Catch::Contains("driver older than the toolkit") && Catch::Contains("CUDA 12.4") &&
                      Catch::Contains("NVRTC is version " + nvrtc->version().text()));
  CHECK_THAT(open_error([](fake_gpu& g) { g.cc_major = 3, g.cc_minor = 5; }),
             Catch::Contains("sm_35, older than every architecture"));
  CHECK(gpu.retained == gpu.released);
}

TEST_CASE("fake driver: a device newer than NVRTC gets PTX for NVRTC's newest architecture") {
  auto nvrtc = kiln_test_cuda::nvrtc_or_skip();
  if (!nvrtc) return;
  gpu = fake_gpu{};
  gpu.cc_major = 99;
  runtime rt = runtime::open_with(fake_driver(), nvrtc, memory_cache());
  CHECK(rt.target() == gpu_target{nvrtc->supported_archs().back(), true, ""});
  rt.load(kiln_test_cuda::axpby_kernel());
  CHECK(gpu.loaded == std::vector<std::string>{"ptx"});
}

TEST_CASE("fake driver: failed calls name the call, its arguments and the error") {
  auto nvrtc = kiln_test_cuda::nvrtc_or_skip();
  if (!nvrtc) return;
  gpu = fake_gpu{};
  runtime rt = runtime::open_with(fake_driver(), nvrtc, memory_cache());
  const loaded_kernel k = rt.load(kiln_test_cuda::axpby_kernel());
  device_buffer d = rt.allocate(64);
  CHECK_THROWS_AS(k.function.launch({1}, {4096}, 0, nullptr, d.ptr(), d.ptr(), 1.f, 1.f, 16), driver_error);
  CHECK_THROWS_WITH(k.function.launch({1}, {4096}, 0, nullptr, d.ptr(), d.ptr(), 1.f, 1.f, 16),
                    Catch::Contains("cuLaunchKernel(axpby, grid (1,1,1), block (4096,1,1), 0 B shared) failed: "
                                    "CUDA_ERROR_INVALID_VALUE (1): invalid argument"));
  kernel_source wrong_name = kiln_test_cuda::row_sum_kernel();
  CHECK_THROWS_WITH(rt.load(wrong_name),
                    Catch::Contains("cuModuleGetFunction(row_sum_f4)") && Catch::Contains("CUDA_ERROR_NOT_FOUND"));
  std::vector<float> small(3);
  CHECK_THROWS_WITH(d.upload(std::span<const float>(small)),
                    Catch::Contains("holds 64 bytes") && Catch::Contains("holds 12"));
}

TEST_CASE("fake driver: a driver library lacking an entry point is refused by name") {
  CHECK_THROWS_AS(fake_driver("cuLaunchKernel"), kiln::backend_unavailable);
  CHECK_THROWS_WITH(fake_driver("cuMemAlloc_v2"), Catch::Contains("'fake libcuda' does not export cuMemAlloc_v2"));
}
