#pragma once
// The few CUDA driver and NVRTC types kiln uses, declared here so that kiln needs no CUDA header at build time
// and no CUDA library at link time (both libraries are dlopen'ed, see dynamic_library.hpp).
// Handles are opaque pointers, results and enums are plain ints: this matches the C ABI of cuda.h / nvrtc.h
// (C enums are int-sized there). Names are kiln's own so they never clash with a real cuda.h in the same TU.
#include <cstdint>

namespace kiln::cuda {

namespace opaque {
struct context;
struct module;
struct function;
struct stream;
struct nvrtc_program;
}  // namespace opaque

using cu_result = int;                     // CUresult
using cu_device = int;                     // CUdevice
using cu_deviceptr = unsigned long long;   // CUdeviceptr (64-bit on every supported platform)
using cu_context = opaque::context*;       // CUcontext
using cu_module = opaque::module*;         // CUmodule
using cu_function = opaque::function*;     // CUfunction
using cu_stream = opaque::stream*;         // CUstream; nullptr is the legacy default stream
using nvrtc_result = int;                  // nvrtcResult
using nvrtc_program = opaque::nvrtc_program*;  // nvrtcProgram

// CUresult values kiln reacts to (cuda.h: enum cudaError_enum).
namespace cu_error {
inline constexpr cu_result success = 0;
inline constexpr cu_result invalid_value = 1;
inline constexpr cu_result out_of_memory = 2;
inline constexpr cu_result not_initialized = 3;
inline constexpr cu_result deinitialized = 4;
inline constexpr cu_result stub_library = 34;  // returned by the toolkit's lib64/stubs/libcuda.so
inline constexpr cu_result device_unavailable = 46;
inline constexpr cu_result no_device = 100;
inline constexpr cu_result invalid_device = 101;
inline constexpr cu_result invalid_image = 200;
inline constexpr cu_result invalid_context = 201;
inline constexpr cu_result no_binary_for_gpu = 209;
inline constexpr cu_result invalid_ptx = 218;
inline constexpr cu_result jit_compiler_not_found = 221;
inline constexpr cu_result unsupported_ptx_version = 222;
inline constexpr cu_result not_found = 500;
inline constexpr cu_result illegal_address = 700;
inline constexpr cu_result launch_out_of_resources = 701;
inline constexpr cu_result launch_failed = 719;
inline constexpr cu_result system_driver_mismatch = 803;
inline constexpr cu_result compat_not_supported_on_device = 804;
inline constexpr cu_result unknown = 999;
}  // namespace cu_error

// CUdevice_attribute values (cuda.h).
namespace cu_device_attribute {
inline constexpr int max_threads_per_block = 1;
inline constexpr int multiprocessor_count = 16;
inline constexpr int compute_capability_major = 75;
inline constexpr int compute_capability_minor = 76;
inline constexpr int max_shared_memory_per_block_optin = 97;
}  // namespace cu_device_attribute

// CUfunction_attribute values (cuda.h).
namespace cu_function_attribute {
inline constexpr int max_dynamic_shared_size_bytes = 8;
}

// CUjit_option values (cuda.h) used to capture the driver's PTX JIT log.
namespace cu_jit_option {
inline constexpr int info_log_buffer = 3;
inline constexpr int info_log_buffer_size_bytes = 4;
inline constexpr int error_log_buffer = 5;
inline constexpr int error_log_buffer_size_bytes = 6;
}  // namespace cu_jit_option

inline constexpr nvrtc_result nvrtc_success = 0;
inline constexpr nvrtc_result nvrtc_error_compilation = 6;

// Launch geometry (the driver's gridDim / blockDim triple).
struct dims3 {
  unsigned x = 1, y = 1, z = 1;
};

}  // namespace kiln::cuda
