#pragma once
// "Asking for CUDA": runtime::open() either returns a ready device (driver initialised, NVRTC loaded, versions
// compatible, primary context current, compile target chosen) or throws backend_unavailable saying exactly
// what is missing. Kernels are compiled through the kernel cache and loaded once per runtime.
#include <kiln/cuda/runtime/context.hpp>
#include <kiln/cuda/runtime/driver.hpp>
#include <kiln/cuda/runtime/kernel_cache.hpp>
#include <kiln/cuda/runtime/memory.hpp>
#include <kiln/cuda/runtime/module.hpp>
#include <kiln/cuda/runtime/nvrtc.hpp>
#include <kiln/cuda/runtime/target.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace kiln::cuda {

struct loaded_kernel {
  kernel_function function;
  std::shared_ptr<const compiled_kernel> compiled;
  cache_origin origin = cache_origin::compiled;
  double cache_seconds = 0;        // compile time (origin compiled) or cache-hit load time (memory, disk)
  double module_load_seconds = 0;  // cuModuleLoadDataEx (includes the driver's JIT for PTX); 0 when reused
};

class runtime {
 public:
  struct options {
    int device_ordinal = 0;
    std::string cache_directory = kernel_cache::default_directory();
  };

  static runtime open() { return open(options{}); }
  static runtime open(const options& opt) {
    std::shared_ptr<const driver_library> drv;
    std::shared_ptr<const nvrtc_library> nvrtc;
    std::string missing;
    try {
      drv = driver_library::load();
    } catch (const backend_unavailable& e) {
      missing = e.what();
    }
    try {
      nvrtc = nvrtc_library::load();
    } catch (const backend_unavailable& e) {
      // Both missing: one message naming both, without repeating the common prefix.
      std::string what = e.what();
      const std::string prefix = "CUDA backend unavailable: ";
      if (!missing.empty() && what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
      missing += (missing.empty() ? "" : "; and ") + what;
    }
    if (!missing.empty()) throw backend_unavailable(missing);
    return open_with(std::move(drv), std::move(nvrtc), opt);
  }

  // The checks that follow loading, for any driver and NVRTC (tests pass a fake driver here):
  // cuInit, device count, driver version against NVRTC's, the device's architecture, the primary context.
  static runtime open_with(std::shared_ptr<const driver_library> drv, std::shared_ptr<const nvrtc_library> nvrtc,
                           const options& opt) {
    const auto& api = drv->api();
    if (const cu_result r = api.Init(0); r != cu_error::success) {
      std::string msg = "CUDA backend unavailable: ";
      if (r == cu_error::no_device) msg += "no device: ";
      msg += "cuInit failed with " + drv->describe(r) + " (driver library '" + drv->path() + "')";
      if (r == cu_error::stub_library) msg += "; this is the toolkit's stub driver, not a real one";
      throw backend_unavailable(msg);
    }
    int count = 0;
    drv->check(api.DeviceGetCount(&count), "cuDeviceGetCount");
    if (count == 0) throw backend_unavailable("CUDA backend unavailable: no device (cuDeviceGetCount = 0)");
    if (opt.device_ordinal < 0 || opt.device_ordinal >= count)
      throw backend_unavailable("CUDA backend unavailable: no device " + std::to_string(opt.device_ordinal) +
                                " (this machine has " + std::to_string(count) + ")");
    int driver_version = 0;
    drv->check(api.DriverGetVersion(&driver_version), "cuDriverGetVersion");
    const driver_compatibility compat = check_driver_version(driver_version, nvrtc->version());
    device_info info = query_device(*drv, opt.device_ordinal);
    gpu_target target = choose_target(info.arch(), nvrtc->supported_archs(), compat, nvrtc->version().text());
    context_ptr ctx = primary_context::retain(drv, opt.device_ordinal);
    return runtime(std::move(drv), std::move(nvrtc), std::move(ctx), std::move(info), driver_version, target,
                   opt.cache_directory);
  }

  const device_info& device() const { return info_; }
  const gpu_target& target() const { return target_; }
  int driver_version() const { return driver_version_; }
  const nvrtc_library& nvrtc() const { return *nvrtc_; }
  const context_ptr& context() const { return ctx_; }
  kernel_cache& cache() { return *cache_; }

  // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), driver CUDA 13.0, NVRTC 13.0 → sm_90"
  std::string describe() const {
    return info_.name + " (sm_" + std::to_string(info_.arch()) + ", " + std::to_string(info_.multiprocessors) +
           " SMs), driver CUDA " + driver_version_text(driver_version_) + ", NVRTC " + nvrtc_->version().text() +
           " -> " + target_.name();
  }

  // Compiles (through the cache) and loads `src` for this device. If the driver rejects a CUBIN as not
  // runnable here, falls back to PTX for the same architecture, JIT-compiled by the driver; if that also
  // fails the error names both attempts.
  loaded_kernel load(const kernel_source& src) {
    try {
      return load_for(src, target_);
    } catch (const driver_error& e) {
      if (target_.ptx || !cubin_rejected(e.result)) throw;
      gpu_target ptx = target_;
      ptx.ptx = true;
      try {
        return load_for(src, ptx);
      } catch (const driver_error& e2) {
        throw driver_error(std::string(e.what()) + "; PTX fallback: " + e2.what(), e2.result);
      }
    }
  }

  device_buffer allocate(std::size_t bytes) const { return device_buffer(ctx_, bytes); }
  stream make_stream() const { return stream(ctx_); }
  void synchronize() const { ctx_->synchronize(); }

 private:
  runtime(std::shared_ptr<const driver_library> drv, std::shared_ptr<const nvrtc_library> nvrtc, context_ptr ctx,
          device_info info, int driver_version, gpu_target target, const std::string& cache_dir)
      : drv_(std::move(drv)),
        nvrtc_(std::move(nvrtc)),
        ctx_(std::move(ctx)),
        info_(std::move(info)),
        driver_version_(driver_version),
        target_(std::move(target)),
        cache_(std::make_unique<kernel_cache>(cache_dir)) {}

  static bool cubin_rejected(cu_result r) {
    return r == cu_error::no_binary_for_gpu || r == cu_error::invalid_image ||
           r == cu_error::unsupported_ptx_version;
  }

  loaded_kernel load_for(const kernel_source& src, const gpu_target& target) {
    cache_result c = cache_->get_or_compile(*nvrtc_, src, target);
    double module_seconds = 0;
    auto it = modules_.find(c.key);
    if (it == modules_.end()) {
      const auto start = std::chrono::steady_clock::now();
      auto mod = module_handle::load(ctx_, *c.kernel);
      module_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      it = modules_.emplace(c.key, std::move(mod)).first;
    }
    return loaded_kernel{kernel_function(it->second, c.kernel->lowered_name), c.kernel, c.origin, c.seconds,
                         module_seconds};
  }

  std::shared_ptr<const driver_library> drv_;
  std::shared_ptr<const nvrtc_library> nvrtc_;
  context_ptr ctx_;
  device_info info_;
  int driver_version_ = 0;
  gpu_target target_;
  std::unique_ptr<kernel_cache> cache_;  // unique_ptr: the cache holds a mutex, the runtime stays movable
  std::map<std::uint64_t, std::shared_ptr<const module_handle>> modules_;
};

}  // namespace kiln::cuda
