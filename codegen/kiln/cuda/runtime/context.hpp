#pragma once
// A device's primary context (the one the CUDA runtime also uses), retained for as long as any kiln object
// that lives in it (module, buffer, stream) holds a shared_ptr to it.
#include <kiln/cuda/runtime/driver.hpp>

#include <memory>
#include <string>

namespace kiln::cuda {

struct device_info {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int multiprocessors = 0;
  int max_threads_per_block = 0;
  int max_shared_bytes_per_block = 0;  // opt-in maximum of dynamic + static shared memory
  int arch() const { return cc_major * 10 + cc_minor; }
};

// Queries the attributes kiln uses; every failure names the attribute's call.
inline device_info query_device(const driver_library& drv, int ordinal) {
  const auto& api = drv.api();
  device_info info;
  info.ordinal = ordinal;
  cu_device dev = 0;
  drv.check(api.DeviceGet(&dev, ordinal), "cuDeviceGet(" + std::to_string(ordinal) + ")");
  char name[256] = {};
  drv.check(api.DeviceGetName(name, static_cast<int>(sizeof name - 1), dev), "cuDeviceGetName");
  info.name = name;
  auto attribute = [&](int attr, const char* what) {
    int v = 0;
    drv.check(api.DeviceGetAttribute(&v, attr, dev), std::string("cuDeviceGetAttribute(") + what + ")");
    return v;
  };
  info.cc_major = attribute(cu_device_attribute::compute_capability_major, "COMPUTE_CAPABILITY_MAJOR");
  info.cc_minor = attribute(cu_device_attribute::compute_capability_minor, "COMPUTE_CAPABILITY_MINOR");
  info.multiprocessors = attribute(cu_device_attribute::multiprocessor_count, "MULTIPROCESSOR_COUNT");
  info.max_threads_per_block = attribute(cu_device_attribute::max_threads_per_block, "MAX_THREADS_PER_BLOCK");
  info.max_shared_bytes_per_block =
      attribute(cu_device_attribute::max_shared_memory_per_block_optin, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN");
  return info;
}

class primary_context {
 public:
  // Retains the primary context of device `ordinal` and makes it current on the calling thread.
  static std::shared_ptr<const primary_context> retain(std::shared_ptr<const driver_library> drv, int ordinal) {
    auto ctx = std::shared_ptr<primary_context>(new primary_context(std::move(drv)));
    const auto& api = ctx->drv_->api();
    ctx->drv_->check(api.DeviceGet(&ctx->device_, ordinal), "cuDeviceGet(" + std::to_string(ordinal) + ")");
    ctx->drv_->check(api.DevicePrimaryCtxRetain(&ctx->handle_, ctx->device_), "cuDevicePrimaryCtxRetain");
    ctx->make_current();
    return ctx;
  }

  ~primary_context() {
    // Errors cannot be reported from a destructor; release failing at process teardown is harmless.
    if (handle_) drv_->api().DevicePrimaryCtxRelease(device_);
  }
  primary_context(const primary_context&) = delete;
  primary_context& operator=(const primary_context&) = delete;

  // The current context is per thread: call this on any other thread before using kiln objects there.
  void make_current() const { drv_->check(drv_->api().CtxSetCurrent(handle_), "cuCtxSetCurrent"); }
  // Waits for all work in the context (all streams).
  void synchronize() const { drv_->check(drv_->api().CtxSynchronize(), "cuCtxSynchronize"); }

  const driver_library& driver() const { return *drv_; }
  cu_context handle() const { return handle_; }

 private:
  explicit primary_context(std::shared_ptr<const driver_library> drv) : drv_(std::move(drv)) {}
  std::shared_ptr<const driver_library> drv_;
  cu_device device_ = 0;
  cu_context handle_ = nullptr;
};

using context_ptr = std::shared_ptr<const primary_context>;

}  // namespace kiln::cuda
