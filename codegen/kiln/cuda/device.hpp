#pragma once
// What a compiled step needs from a GPU: memory, copies, loading a module of kernels, launching them.
// cuda_device implements it on the CUDA driver (through runtime.hpp: NVRTC, the kernel cache, the primary
// context); emulator.hpp implements it on the host CPU, to test generated kernels where there is no GPU.
// Launches and copies are ordered (the legacy default stream); copies are synchronous for the host.
#include <kiln/cuda/render/program.hpp>
#include <kiln/cuda/runtime/runtime.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::cuda {

// A kernel of a module: its extern "C" name and how many float* buffers follow KILN_PARAMS.
struct kernel_entry {
  std::string name;
  int buffers = 0;
};

// How a module was obtained: compiled now (cold compile time), or a cache hit (load time), plus module load.
struct module_report {
  std::string origin;              // "compiled", "disk", "memory", "host compiler" (emulator)
  double seconds = 0;              // NVRTC compile (origin compiled) or cache-hit load
  double module_load_seconds = 0;  // cuModuleLoadData (the driver's JIT for PTX)
  std::string target;              // e.g. "sm_90"
};

class device_module {
 public:
  virtual ~device_module() = default;
  // args: pointers to the values of the kernel's parameters, in order (as cuLaunchKernel takes them).
  virtual void launch(std::size_t kernel, dims3 grid, dims3 block, unsigned shared_bytes, void** args) = 0;
  virtual const module_report& report() const = 0;
};

class device {
 public:
  virtual ~device() = default;
  virtual std::string describe() const = 0;
  virtual int multiprocessors() const = 0;
  virtual int max_shared_bytes() const = 0;  // dynamic shared memory one block may opt into
  virtual int arch() const { return 0; }      // compute capability as 10·major + minor (sm_90 → 90); 0: not a GPU
  virtual cu_deviceptr allocate(std::size_t bytes) = 0;
  virtual void release(cu_deviceptr p) = 0;
  virtual void upload(cu_deviceptr dst, const void* src, std::size_t bytes) = 0;
  virtual void download(void* dst, cu_deviceptr src, std::size_t bytes) = 0;
  virtual void zero(cu_deviceptr dst, std::size_t bytes) = 0;
  virtual std::unique_ptr<device_module> load(const std::string& source, const std::vector<kernel_entry>& kernels) = 0;
  virtual void synchronize() = 0;
};

// NVRTC options every kiln module is compiled with (IEEE float division and square root stay on: no fast math).
inline std::vector<std::string> module_options() { return {"--std=c++17"}; }

// The CUDA driver behind kiln::cuda::runtime.
class cuda_device final : public device {
 public:
  // Opens device `ordinal`; throws backend_unavailable with runtime::open's message when CUDA cannot run here.
  explicit cuda_device(runtime::options opt = {}) : rt_(runtime::open(opt)) {}

  std::string describe() const override { return rt_.describe(); }
  int multiprocessors() const override { return rt_.device().multiprocessors; }
  int max_shared_bytes() const override { return rt_.device().max_shared_bytes_per_block; }
  int arch() const override { return rt_.device().arch(); }
  runtime& cuda_runtime() { return rt_; }

  cu_deviceptr allocate(std::size_t bytes) override {
    device_buffer b = rt_.allocate(bytes == 0 ? 4 : bytes);
    const cu_deviceptr p = b.ptr();
    buffers_.emplace(p, std::move(b));
    return p;
  }
  void release(cu_deviceptr p) override { buffers_.erase(p); }
  void upload(cu_deviceptr dst, const void* src, std::size_t bytes) override {
    if (bytes) drv().check(drv().api().MemcpyHtoD(dst, src, bytes), std::string("cuMemcpyHtoD(") + std::to_string(bytes) + " bytes)");
  }
  void download(void* dst, cu_deviceptr src, std::size_t bytes) override {
    if (bytes) drv().check(drv().api().MemcpyDtoH(dst, src, bytes), std::string("cuMemcpyDtoH(") + std::to_string(bytes) + " bytes)");
  }
  void zero(cu_deviceptr dst, std::size_t bytes) override {
    if (bytes) drv().check(drv().api().MemsetD8(dst, 0, bytes), std::string("cuMemsetD8(") + std::to_string(bytes) + " bytes)");
  }
  void synchronize() override { rt_.synchronize(); }

  std::unique_ptr<device_module> load(const std::string& source, const std::vector<kernel_entry>& kernels) override {
    if (kernels.empty()) throw error("kiln cuda: a module needs at least one kernel");
    const kernel_source src{source, kernels.front().name, module_options()};
    try {
      return load_for(src, kernels, rt_.target());
    } catch (const driver_error& e) {
      // The driver rejects a CUBIN it cannot run: PTX for the same architecture, JIT-compiled by the driver.
      const bool rejected = e.result == cu_error::no_binary_for_gpu || e.result == cu_error::invalid_image ||
                            e.result == cu_error::unsupported_ptx_version;
      if (rt_.target().ptx || !rejected) throw;
      gpu_target ptx = rt_.target();
      ptx.ptx = true;
      return load_for(src, kernels, ptx);
    }
  }

 private:
  class module final : public device_module {
   public:
    module(std::shared_ptr<const module_handle> m, const std::vector<kernel_entry>& kernels, module_report r)
        : report_(std::move(r)) {
      for (const kernel_entry& k : kernels) functions_.emplace_back(m, k.name);
      opted_in_.assign(kernels.size(), 48 * 1024);
    }
    void launch(std::size_t kernel, dims3 grid, dims3 block, unsigned shared_bytes, void** args) override {
      const kernel_function& f = functions_.at(kernel);
      if (static_cast<int>(shared_bytes) > opted_in_[kernel]) {  // above 48 KiB a kernel must opt in
        f.set_max_dynamic_shared_bytes(static_cast<int>(shared_bytes));
        opted_in_[kernel] = static_cast<int>(shared_bytes);
      }
      f.launch_raw(grid, block, shared_bytes, args, nullptr);
    }
    const module_report& report() const override { return report_; }

   private:
    std::vector<kernel_function> functions_;
    std::vector<int> opted_in_;
    module_report report_;
  };

  std::unique_ptr<device_module> load_for(const kernel_source& src, const std::vector<kernel_entry>& kernels,
                                          const gpu_target& target) {
    const cache_result c = rt_.cache().get_or_compile(rt_.nvrtc(), src, target);
    const auto start = std::chrono::steady_clock::now();
    auto handle = module_handle::load(rt_.context(), *c.kernel);
    module_report r;
    r.origin = to_string(c.origin);
    r.seconds = c.seconds;
    r.module_load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.target = target.name();
    return std::make_unique<module>(std::move(handle), kernels, r);
  }

  const driver_library& drv() const { return rt_.context()->driver(); }

  runtime rt_;
  std::map<cu_deviceptr, device_buffer> buffers_;
};

}  // namespace kiln::cuda
