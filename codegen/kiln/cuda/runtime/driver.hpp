#pragma once
// The CUDA driver API loaded at run time, and error checking that names the call and the error.
#include <kiln/core/error.hpp>
#include <kiln/cuda/runtime/api_types.hpp>
#include <kiln/cuda/runtime/dynamic_library.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cuda {

// A driver call that failed; what() names the call, the error's name, number and description.
struct driver_error : error {
  driver_error(const std::string& message, cu_result code) : error(message), result(code) {}
  cu_result result;
};

// Names for the errors kiln can meet before the driver can name them itself (the stub driver's
// cuGetErrorName fails like every other stub entry point).
inline const char* known_cu_error_name(cu_result r) {
  switch (r) {
    case cu_error::success: return "CUDA_SUCCESS";
    case cu_error::invalid_value: return "CUDA_ERROR_INVALID_VALUE";
    case cu_error::out_of_memory: return "CUDA_ERROR_OUT_OF_MEMORY";
    case cu_error::not_initialized: return "CUDA_ERROR_NOT_INITIALIZED";
    case cu_error::deinitialized: return "CUDA_ERROR_DEINITIALIZED";
    case cu_error::stub_library: return "CUDA_ERROR_STUB_LIBRARY";
    case cu_error::device_unavailable: return "CUDA_ERROR_DEVICE_UNAVAILABLE";
    case cu_error::no_device: return "CUDA_ERROR_NO_DEVICE";
    case cu_error::invalid_device: return "CUDA_ERROR_INVALID_DEVICE";
    case cu_error::invalid_image: return "CUDA_ERROR_INVALID_IMAGE";
    case cu_error::invalid_context: return "CUDA_ERROR_INVALID_CONTEXT";
    case cu_error::no_binary_for_gpu: return "CUDA_ERROR_NO_BINARY_FOR_GPU";
    case cu_error::invalid_ptx: return "CUDA_ERROR_INVALID_PTX";
    case cu_error::jit_compiler_not_found: return "CUDA_ERROR_JIT_COMPILER_NOT_FOUND";
    case cu_error::unsupported_ptx_version: return "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
    case cu_error::not_found: return "CUDA_ERROR_NOT_FOUND";
    case cu_error::illegal_address: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case cu_error::launch_out_of_resources: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case cu_error::launch_failed: return "CUDA_ERROR_LAUNCH_FAILED";
    case cu_error::system_driver_mismatch: return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
    case cu_error::compat_not_supported_on_device: return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE";
    case cu_error::unknown: return "CUDA_ERROR_UNKNOWN";
    default: return nullptr;
  }
}

class driver_library {
 public:
  // Entry points, bound under their ABI symbol names (the _v2 variants cuda.h maps the plain names to).
  struct functions {
    cu_result (*Init)(unsigned) = nullptr;
    cu_result (*DriverGetVersion)(int*) = nullptr;
    cu_result (*GetErrorName)(cu_result, const char**) = nullptr;
    cu_result (*GetErrorString)(cu_result, const char**) = nullptr;
    cu_result (*DeviceGetCount)(int*) = nullptr;
    cu_result (*DeviceGet)(cu_device*, int) = nullptr;
    cu_result (*DeviceGetName)(char*, int, cu_device) = nullptr;
    cu_result (*DeviceGetAttribute)(int*, int, cu_device) = nullptr;
    cu_result (*DevicePrimaryCtxRetain)(cu_context*, cu_device) = nullptr;
    cu_result (*DevicePrimaryCtxRelease)(cu_device) = nullptr;
    cu_result (*CtxSetCurrent)(cu_context) = nullptr;
    cu_result (*CtxSynchronize)() = nullptr;
    cu_result (*ModuleLoadDataEx)(cu_module*, const void*, unsigned, int*, void**) = nullptr;
    cu_result (*ModuleUnload)(cu_module) = nullptr;
    cu_result (*ModuleGetFunction)(cu_function*, cu_module, const char*) = nullptr;
    cu_result (*FuncSetAttribute)(cu_function, int, int) = nullptr;
    cu_result (*LaunchKernel)(cu_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              cu_stream, void**, void**) = nullptr;
    cu_result (*MemAlloc)(cu_deviceptr*, std::size_t) = nullptr;
    cu_result (*MemFree)(cu_deviceptr) = nullptr;
    cu_result (*MemcpyHtoD)(cu_deviceptr, const void*, std::size_t) = nullptr;
    cu_result (*MemcpyDtoH)(void*, cu_deviceptr, std::size_t) = nullptr;
    cu_result (*MemsetD8)(cu_deviceptr, unsigned char, std::size_t) = nullptr;
    cu_result (*StreamCreate)(cu_stream*, unsigned) = nullptr;
    cu_result (*StreamDestroy)(cu_stream) = nullptr;
    cu_result (*StreamSynchronize)(cu_stream) = nullptr;
  };

  // Loads the driver from driver_library_candidates() (honouring KILN_CUDA_DRIVER_PATH); successful loads are
  // shared per candidate list. Throws backend_unavailable("... no driver library ...") naming every file tried.
  // Loading does not call cuInit: see runtime::open for the checks that follow.
  static std::shared_ptr<const driver_library> load() { return load(driver_library_candidates()); }

  static std::shared_ptr<const driver_library> load(const std::vector<std::string>& candidates) {
    static std::mutex mutex;
    static std::map<std::vector<std::string>, std::shared_ptr<const driver_library>> loaded;
    std::lock_guard lock(mutex);
    if (auto it = loaded.find(candidates); it != loaded.end()) return it->second;
    dynamic_library lib = dynamic_library::open_first(candidates);
    if (!lib.ok())
      throw backend_unavailable("CUDA backend unavailable: no driver library (" + lib.failure() +
                                "); install the NVIDIA driver or set KILN_CUDA_DRIVER_PATH to libcuda.so.1");
    auto driver = from_symbols(lib.symbols());
    loaded.emplace(candidates, driver);
    return driver;
  }

  // Binds the entry points from any lookup: a dlopen'ed libcuda (load), or a fake driver in tests.
  static std::shared_ptr<const driver_library> from_symbols(const symbol_lookup& symbols) {
    return std::shared_ptr<driver_library>(new driver_library(symbols));
  }

  const std::string& path() const { return path_; }
  const functions& api() const { return fn_; }

  // "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"
  std::string describe(cu_result r) const {
    const char* name = nullptr;
    const char* text = nullptr;
    if (fn_.GetErrorName(r, &name) != cu_error::success || !name) name = known_cu_error_name(r);
    if (fn_.GetErrorString(r, &text) != cu_error::success) text = nullptr;
    std::string s = (name ? name : "unrecognized CUresult") + std::string(" (") + std::to_string(r) + ")";
    if (text) s += std::string(": ") + text;
    return s;
  }

  // Throws driver_error "<call> failed: <describe(r)>" unless r is CUDA_SUCCESS. `call` names the call and,
  // where useful, its arguments, e.g. "cuMemAlloc(4096 bytes)".
  void check(cu_result r, std::string_view call) const {
    if (r != cu_error::success) throw driver_error(std::string(call) + " failed: " + describe(r), r);
  }

 private:
  explicit driver_library(const symbol_lookup& lib) : path_(lib.library) {
    lib.bind(fn_.Init, "cuInit");
    lib.bind(fn_.DriverGetVersion, "cuDriverGetVersion");
    lib.bind(fn_.GetErrorName, "cuGetErrorName");
    lib.bind(fn_.GetErrorString, "cuGetErrorString");
    lib.bind(fn_.DeviceGetCount, "cuDeviceGetCount");
    lib.bind(fn_.DeviceGet, "cuDeviceGet");
    lib.bind(fn_.DeviceGetName, "cuDeviceGetName");
    lib.bind(fn_.DeviceGetAttribute, "cuDeviceGetAttribute");
    lib.bind(fn_.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    lib.bind(fn_.DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    lib.bind(fn_.CtxSetCurrent, "cuCtxSetCurrent");
    lib.bind(fn_.CtxSynchronize, "cuCtxSynchronize");
    lib.bind(fn_.ModuleLoadDataEx, "cuModuleLoadDataEx");
    lib.bind(fn_.ModuleUnload, "cuModuleUnload");
    lib.bind(fn_.ModuleGetFunction, "cuModuleGetFunction");
    lib.bind(fn_.FuncSetAttribute, "cuFuncSetAttribute");
    lib.bind(fn_.LaunchKernel, "cuLaunchKernel");
    lib.bind(fn_.MemAlloc, "cuMemAlloc_v2");
    lib.bind(fn_.MemFree, "cuMemFree_v2");
    lib.bind(fn_.MemcpyHtoD, "cuMemcpyHtoD_v2");
    lib.bind(fn_.MemcpyDtoH, "cuMemcpyDtoH_v2");
    lib.bind(fn_.MemsetD8, "cuMemsetD8_v2");
    lib.bind(fn_.StreamCreate, "cuStreamCreate");
    lib.bind(fn_.StreamDestroy, "cuStreamDestroy_v2");
    lib.bind(fn_.StreamSynchronize, "cuStreamSynchronize");
  }

  std::string path_;
  functions fn_;
};

}  // namespace kiln::cuda
