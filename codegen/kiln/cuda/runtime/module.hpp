#pragma once
// A loaded module (CUBIN or PTX image) and launching its kernels.
#include <kiln/cuda/runtime/context.hpp>
#include <kiln/cuda/runtime/memory.hpp>
#include <kiln/cuda/runtime/nvrtc.hpp>

#include <memory>
#include <string>
#include <type_traits>

namespace kiln::cuda {

class module_handle {
 public:
  // Loads a CUBIN or PTX image into the context. For PTX the driver JIT-compiles; its error log is put into
  // the driver_error's message.
  static std::shared_ptr<const module_handle> load(context_ptr ctx, const compiled_kernel& kernel) {
    auto m = std::shared_ptr<module_handle>(new module_handle(std::move(ctx)));
    char error_log[8192] = {};
    int options[] = {cu_jit_option::error_log_buffer, cu_jit_option::error_log_buffer_size_bytes};
    void* values[] = {error_log, reinterpret_cast<void*>(static_cast<std::size_t>(sizeof error_log - 1))};
    const cu_result r = m->ctx_->driver().api().ModuleLoadDataEx(&m->handle_, kernel.image.c_str(), 2, options, values);
    if (r != cu_error::success) {
      std::string call = "cuModuleLoadDataEx(" + std::string(kernel.kind == binary_kind::ptx ? "PTX" : "CUBIN") +
                         " for " + kernel.target + ", kernel " + kernel.lowered_name + ")";
      if (error_log[0]) call += " [JIT log: " + std::string(error_log) + "]";
      m->ctx_->driver().check(r, call);
    }
    return m;
  }
  ~module_handle() {
    if (handle_) ctx_->driver().api().ModuleUnload(handle_);
  }
  module_handle(const module_handle&) = delete;
  module_handle& operator=(const module_handle&) = delete;

  cu_module handle() const { return handle_; }
  const context_ptr& context() const { return ctx_; }

 private:
  explicit module_handle(context_ptr ctx) : ctx_(std::move(ctx)) {}
  context_ptr ctx_;
  cu_module handle_ = nullptr;
};

// A kernel in a loaded module; keeps the module (and so the context) alive.
class kernel_function {
 public:
  kernel_function(std::shared_ptr<const module_handle> mod, const std::string& lowered_name) : mod_(std::move(mod)) {
    driver().check(driver().api().ModuleGetFunction(&fn_, mod_->handle(), lowered_name.c_str()),
                   "cuModuleGetFunction(" + lowered_name + ")");
    name_ = lowered_name;
  }

  // Kernels using more than 48 KiB of dynamic shared memory must opt in first.
  void set_max_dynamic_shared_bytes(int bytes) const {
    driver().check(driver().api().FuncSetAttribute(fn_, cu_function_attribute::max_dynamic_shared_size_bytes, bytes),
                   "cuFuncSetAttribute(" + name_ + ", MAX_DYNAMIC_SHARED_SIZE_BYTES=" + std::to_string(bytes) + ")");
  }

  // args[i] points at the i-th kernel parameter's value (the driver copies them at launch).
  void launch_raw(dims3 grid, dims3 block, unsigned shared_bytes, void** args, cu_stream on = nullptr) const {
    driver().check(driver().api().LaunchKernel(fn_, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes,
                                               on, args, nullptr),
                   "cuLaunchKernel(" + name_ + ", grid " + dims_text(grid) + ", block " + dims_text(block) + ", " +
                       std::to_string(shared_bytes) + " B shared)");
  }

  // Launches with the kernel's parameters given by value, in order (device pointers as cu_deviceptr).
  template <class... Args>
  void launch(dims3 grid, dims3 block, unsigned shared_bytes, cu_stream on, const Args&... args) const {
    static_assert((std::is_trivially_copyable_v<Args> && ...), "kernel arguments are copied bytewise");
    void* ptrs[sizeof...(Args) + 1] = {const_cast<void*>(static_cast<const void*>(&args))...};
    launch_raw(grid, block, shared_bytes, ptrs, on);
  }

  const std::string& name() const { return name_; }
  cu_function handle() const { return fn_; }

 private:
  const driver_library& driver() const { return mod_->context()->driver(); }
  static std::string dims_text(dims3 d) {
    return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
  }
  std::shared_ptr<const module_handle> mod_;
  cu_function fn_ = nullptr;
  std::string name_;
};

}  // namespace kiln::cuda
