#pragma once
// A testing aid for machines without a GPU: runs kiln's generated CUDA source on the host CPU, so the kernels'
// logic (indexing, tiling, shared-memory lifetimes, barriers, cross-block reductions, in-place updates) is
// checked against the reference evaluator in CI. Not a performance path.
//
// The module is compiled by the host C++ compiler ($KILN_HOST_CXX, else c++) after a header that spells out
// the CUDA built-ins the generated code uses (threadIdx, __syncthreads, __shfl_xor_sync, atomics, dynamic
// shared memory), and dlopen'ed. Every CUDA thread of a block is a fiber on the launching thread, switched at
// barriers, in alternating orders (so a missing __syncthreads shows: see kiln_emu::scheduler); blocks run one
// after another. Device memory is host memory with guard zones on both sides:
// a launch that writes outside its buffers throws, a read there sees NaN. Shared memory is filled with NaN
// before every block, so a read of a value no thread wrote poisons the result.
#include <kiln/core/hash.hpp>
#include <kiln/cuda/device.hpp>
#include <kiln/io/atomic_file.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <limits>

namespace kiln::cuda {

inline const char* emulation_header() {
  return R"KILN(// ---- kiln host emulation of the CUDA built-ins used by generated kernels
#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>
#define KILN_HOST_EMULATION 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __align__(n) alignas(n)
struct kiln_emu_dim3 { unsigned x = 1, y = 1, z = 1; };
// The running CUDA thread's indices: set by the scheduler before it resumes a thread.
static kiln_emu_dim3 threadIdx, blockIdx;
static kiln_emu_dim3 blockDim, gridDim;
namespace kiln_emu {
// Every CUDA thread of a block is a fiber (its own stack and registers, ucontext) on the launching thread. A fiber
// runs until it reaches a barrier (__syncthreads, or its warp's for a shuffle) or returns; once every thread the
// barrier waits for has reached it, they all run on. Passes over the threads alternate between ascending and
// descending order, so that a read of shared memory that no barrier separates from its write sees the write
// in one order and the NaN that fills shared memory in the other: a missing barrier shows.
// (One OS thread per CUDA thread, as before, spent most of a test's time in the scheduler: 256 threads meeting
// at each barrier on a 2-core machine.)
struct fiber {
  ucontext_t context;
  int waiting = 0;  // 0: runnable, 1: at the block's barrier, 2: at its warp's barrier
  bool done = false;
};
struct scheduler {
  static constexpr std::size_t stack_bytes = 256 * 1024;
  ucontext_t launcher;
  std::vector<fiber> fibers;
  char* stacks = nullptr;
  unsigned capacity = 0;  // fibers the stacks have room for
  unsigned current = 0;
  unsigned block_arrived = 0;
  std::vector<unsigned> warp_arrived;
  void (*invoke)(void**) = nullptr;
  void** args = nullptr;
  std::vector<float> warp_exchange;
  std::vector<float> warp_fragments;  // kiln_emu_warp_share: up to 8 floats per lane
  std::vector<float> shared;

  void reserve(unsigned bx) {
    if (bx <= capacity) return;
    release();
    stacks = static_cast<char*>(::mmap(nullptr, stack_bytes * bx, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (stacks == MAP_FAILED) {
      std::fprintf(stderr, "kiln emulator: cannot map stacks for %u threads\n", bx);
      std::abort();
    }
    capacity = bx;
    fibers.assign(bx, fiber{});
    for (fiber& f : fibers) ::getcontext(&f.context);  // once: run_block only points them at their entry again
  }
  void release() {
    if (stacks) ::munmap(stacks, stack_bytes * capacity);
    stacks = nullptr;
    capacity = 0;
  }
  ~scheduler() { release(); }

  // The running fiber stops at a barrier (1: the block's, 2: its warp's) until the scheduler releases it.
  void wait(int kind) {
    fiber& f = fibers[current];
    f.waiting = kind;
    if (kind == 1) ++block_arrived;
    else ++warp_arrived[current / 32];
    ::swapcontext(&f.context, &launcher);
    asm volatile("" ::: "memory");  // threadIdx and the shared arrays changed while this fiber waited
  }
  static void entry() {
    scheduler& s = *the_scheduler();
    s.invoke(s.args);
    s.fibers[s.current].done = true;  // returning resumes the launcher (uc_link)
  }
  static scheduler* the_scheduler();

  // One block: its threads as fibers, until all have returned.
  void run_block(unsigned bx) {
    for (unsigned t = 0; t < bx; ++t) {
      fiber& f = fibers[t];
      f.waiting = 0;
      f.done = false;
      f.context.uc_stack.ss_sp = stacks + static_cast<std::size_t>(t) * stack_bytes;
      f.context.uc_stack.ss_size = stack_bytes;
      f.context.uc_link = &launcher;
      ::makecontext(&f.context, &scheduler::entry, 0);
    }
    block_arrived = 0;
    warp_arrived.assign((bx + 31) / 32, 0);
    unsigned finished = 0;
    for (unsigned pass = 0; finished < bx; ++pass) {
      bool ran = false;
      for (unsigned i = 0; i < bx; ++i) {
        const unsigned t = pass % 2 == 0 ? i : bx - 1 - i;
        fiber& f = fibers[t];
        if (f.done || f.waiting) continue;
        current = t;
        threadIdx = {t, 0, 0};
        ::swapcontext(&launcher, &f.context);
        ran = true;
        if (f.done) ++finished;
      }
      // release the barriers every thread they wait for has reached
      bool released = false;
      if (block_arrived == bx) {
        for (fiber& f : fibers) f.waiting = 0;
        block_arrived = 0;
        released = true;
      }
      for (unsigned w = 0; w < warp_arrived.size(); ++w)
        if (warp_arrived[w] == std::min(32u, bx - 32 * w)) {
          for (unsigned t = 32 * w; t < std::min(bx, 32 * w + 32); ++t)
            if (fibers[t].waiting == 2) fibers[t].waiting = 0;
          warp_arrived[w] = 0;
          released = true;
        }
      if (!ran && !released) {
        std::fprintf(stderr, "kiln emulator: block (%u, %u, %u) cannot go on: %u of %u threads wait at __syncthreads, "
                     "the others at a warp barrier or returned (a barrier not every thread reaches)\n",
                     blockIdx.x, blockIdx.y, blockIdx.z, block_arrived, bx);
        std::abort();
      }
    }
  }
};
inline scheduler* scheduler::the_scheduler() {
  static scheduler s;
  return &s;
}
}  // namespace kiln_emu
inline void __syncthreads() { kiln_emu::scheduler::the_scheduler()->wait(1); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  kiln_emu::scheduler& s = *kiln_emu::scheduler::the_scheduler();
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* x = s.warp_exchange.data() + warp * 32;
  x[lane] = v;
  s.wait(2);
  const float r = x[lane ^ static_cast<unsigned>(lane_mask)];
  s.wait(2);
  return r;
}
// A warp-wide exchange of `count` (≤ 8) floats per lane, for the emulated mma.sync: every lane of the warp
// calls it; the result holds lane l's values at [count·l, count·l + count). Call kiln_emu_warp_done() once the
// values are read (the area is reused by the next exchange).
inline const float* kiln_emu_warp_share(const float* mine, int count) {
  kiln_emu::scheduler& s = *kiln_emu::scheduler::the_scheduler();
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* area = s.warp_fragments.data() + warp * 32 * 8;
  for (int i = 0; i < count; ++i) area[lane * static_cast<unsigned>(count) + static_cast<unsigned>(i)] = mine[i];
  s.wait(2);
  return area;
}
inline void kiln_emu_warp_done() { kiln_emu::scheduler::the_scheduler()->wait(2); }
#define KILN_DYNAMIC_SHARED(name) float* name = kiln_emu::scheduler::the_scheduler()->shared.data()
#define KILN_LOAD_CG(p) (*(p))

// Runs invoke(args) as a grid of blocks of bx threads, blocks one after another.
extern "C" void kiln_emu_launch(void (*invoke)(void**), unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                unsigned shared_bytes, void** args) {
  kiln_emu::scheduler& s = *kiln_emu::scheduler::the_scheduler();
  s.reserve(bx);
  s.warp_exchange.assign(bx, 0.0f);
  s.warp_fragments.assign(static_cast<std::size_t>(bx) * 8, 0.0f);
  s.shared.assign(shared_bytes / 4 + 1, 0.0f);
  gridDim = {gx, gy, gz};
  blockDim = {bx, 1, 1};
  s.invoke = invoke;
  s.args = args;
  for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
      for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, z};
        std::fill(s.shared.begin(), s.shared.end(), std::numeric_limits<float>::quiet_NaN());
        s.run_block(bx);
      }
}
// Frees the fibers' stacks (before the module is unloaded).
extern "C" void kiln_emu_shutdown() { kiln_emu::scheduler::the_scheduler()->release(); }
// ---- end of the emulation header
)KILN";
}

struct emulator_options {
  int multiprocessors = 3;          // few, so that rows kernels walk several tiles per block
  int max_shared_bytes = 96 * 1024;
  int arch = 0;                     // the compute capability it reports (0: none), e.g. 75 to test sm_80 guards
  std::string compiler;             // empty: $KILN_HOST_CXX, else "c++"
  std::string flags = "-std=c++20 -O1 -fPIC -shared -pthread -w";
};

class emulated_device final : public device {
 public:
  using options = emulator_options;

  explicit emulated_device(options opt = {}) : opt_(std::move(opt)) {
    if (opt_.compiler.empty()) {
      const char* cxx = std::getenv("KILN_HOST_CXX");
      opt_.compiler = cxx && *cxx ? cxx : "c++";
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "kiln-cuda-emulator-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw io_error("emulated_device: cannot create a directory like '" + pattern + "'");
    dir_ = pattern;
  }
  ~emulated_device() override {
    allocations_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  emulated_device(const emulated_device&) = delete;
  emulated_device& operator=(const emulated_device&) = delete;

  std::string describe() const override {
    return std::string("host emulation of a CUDA device (") + std::to_string(opt_.multiprocessors) + " SMs, compiler '" +
           opt_.compiler + "')";
  }
  int multiprocessors() const override { return opt_.multiprocessors; }
  // Steps created afterwards size their grids for this many SMs (1: a rows kernel walks every tile in few blocks).
  void set_multiprocessors(int sms) { opt_.multiprocessors = sms; }
  int max_shared_bytes() const override { return opt_.max_shared_bytes; }
  int arch() const override { return opt_.arch; }

  cu_deviceptr allocate(std::size_t bytes) override {
    auto a = std::make_unique<allocation>(bytes);
    const cu_deviceptr p = a->address();
    allocations_.emplace(p, std::move(a));
    return p;
  }
  void release(cu_deviceptr p) override { allocations_.erase(p); }
  void upload(cu_deviceptr dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(host(dst, bytes, "upload"), src, bytes);
  }
  void download(void* dst, cu_deviceptr src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, host(src, bytes, "download"), bytes);
  }
  void zero(cu_deviceptr dst, std::size_t bytes) override {
    if (bytes) std::memset(host(dst, bytes, "zero"), 0, bytes);
  }
  void synchronize() override {}

  // Compiles the module (once per distinct source and kernel list: later loads reuse the library) and opens it.
  std::unique_ptr<device_module> load(const std::string& source, const std::vector<kernel_entry>& kernels) override {
    std::string key_text = source;
    for (const kernel_entry& k : kernels) key_text += "\n" + k.name + ":" + std::to_string(k.buffers);
    const std::string stem = dir_ + "/module" + std::to_string(fnv1a64(key_text));
    if (std::filesystem::exists(stem + ".so")) {
      auto m = std::make_unique<module>(stem + ".so", kernels, this);
      m->report_.origin = "memory";
      m->report_.target = "host";
      return m;
    }
    std::string text = std::string(emulation_header()) + source + "\n// ---- invokers: void** arguments to the kernel's parameters\n";
    for (const kernel_entry& k : kernels) {
      text += "extern \"C\" void kiln_emu_invoke_" + k.name + "(void** a) {\n  " + k.name +
              "(*static_cast<const long long*>(a[0]), *static_cast<const kiln_hypers*>(a[1]), "
              "reinterpret_cast<float*>(*static_cast<const unsigned long long*>(a[2])), "
              "reinterpret_cast<unsigned*>(*static_cast<const unsigned long long*>(a[3])), *static_cast<const int*>(a[4])";
      for (int b = 0; b < k.buffers; ++b)
        text += std::string(",\n    reinterpret_cast<float*>(*static_cast<const unsigned long long*>(a[") + std::to_string(5 + b) + "]))";
      text += ");\n}\n";
    }
    io::write_file_atomic(stem + ".cpp", text);
    const auto start = std::chrono::steady_clock::now();
    const std::string command = opt_.compiler + " " + opt_.flags + " -o " + stem + ".so " + stem + ".cpp > " + stem +
                                ".log 2>&1";
    if (std::system(command.c_str()) != 0) {
      std::string log;
      try {
        log = io::read_file(stem + ".log");
      } catch (const io_error&) {
      }
      throw error("emulated_device: the host compiler failed on the module (" + command + "):\n" + log);
    }
    auto m = std::make_unique<module>(stem + ".so", kernels, this);
    m->report_.origin = "host compiler";
    m->report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    m->report_.target = "host";
    return m;
  }

 private:
  // A buffer with guard zones of `guard` bytes before and after, filled with a NaN pattern.
  struct allocation {
    static constexpr std::size_t guard = 1024;
    explicit allocation(std::size_t n) : bytes(n), storage((n + 2 * guard) / 4 + 1) {
      std::fill(storage.begin(), storage.end(), poison());
    }
    static float poison() { return std::numeric_limits<float>::quiet_NaN(); }
    float* data() { return storage.data() + guard / 4; }
    cu_deviceptr address() { return reinterpret_cast<cu_deviceptr>(data()); }
    bool guards_intact() const {
      auto same = [](float a) {
        const float p = poison();
        return std::memcmp(&a, &p, sizeof a) == 0;
      };
      for (std::size_t i = 0; i < guard / 4; ++i)
        if (!same(storage[i])) return false;
      for (std::size_t i = guard / 4 + (bytes + 3) / 4; i < storage.size(); ++i)
        if (!same(storage[i])) return false;
      return true;
    }
    std::size_t bytes;
    std::vector<float> storage;
  };

  class module final : public device_module {
   public:
    module(const std::string& path, const std::vector<kernel_entry>& kernels, emulated_device* dev) : dev_(dev) {
      handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle_) throw error("emulated_device: dlopen('" + path + "') failed: " + ::dlerror());
      launch_ = reinterpret_cast<launch_fn>(::dlsym(handle_, "kiln_emu_launch"));
      for (const kernel_entry& k : kernels) {
        auto f = reinterpret_cast<invoke_fn>(::dlsym(handle_, ("kiln_emu_invoke_" + k.name).c_str()));
        if (!f || !launch_) throw error("emulated_device: kernel '" + k.name + "' not found in '" + path + "'");
        invokers_.push_back(f);
        names_.push_back(k.name);
      }
    }
    ~module() override {
      if (auto stop = reinterpret_cast<void (*)()>(::dlsym(handle_, "kiln_emu_shutdown"))) stop();
      ::dlclose(handle_);
    }
    module(const module&) = delete;
    module& operator=(const module&) = delete;

    void launch(std::size_t kernel, dims3 grid, dims3 block, unsigned shared_bytes, void** args) override {
      if (block.x % 32 != 0 || block.y != 1 || block.z != 1)
        throw error("emulated_device: blocks must be one-dimensional multiples of 32 threads");
      if (static_cast<int>(shared_bytes) > dev_->opt_.max_shared_bytes)
        throw error("emulated_device: kernel '" + names_.at(kernel) + "' asks for " + std::to_string(shared_bytes) +
                    std::string(" bytes of shared memory, the device has ") + std::to_string(dev_->opt_.max_shared_bytes));
      launch_(invokers_.at(kernel), grid.x, grid.y, grid.z, block.x, shared_bytes, args);
      for (const auto& [address, a] : dev_->allocations_)
        if (!a->guards_intact())
          throw error("emulated_device: kernel '" + names_[kernel] + "' wrote outside the " + std::to_string(a->bytes) +
                      std::string("-byte buffer at device address ") + std::to_string(address));
    }
    const module_report& report() const override { return report_; }
    module_report report_;

   private:
    using invoke_fn = void (*)(void**);
    using launch_fn = void (*)(invoke_fn, unsigned, unsigned, unsigned, unsigned, unsigned, void**);
    emulated_device* dev_;
    void* handle_ = nullptr;
    launch_fn launch_ = nullptr;
    std::vector<invoke_fn> invokers_;
    std::vector<std::string> names_;
  };

  void* host(cu_deviceptr p, std::size_t bytes, const char* what) {
    auto it = allocations_.upper_bound(p);
    if (it != allocations_.begin()) {
      --it;
      if (p >= it->first && p + bytes <= it->first + it->second->bytes) return reinterpret_cast<void*>(p);
    }
    throw error(std::string("emulated_device: ") + what + " of " + std::to_string(bytes) +
                " bytes outside every allocation");
  }

  options opt_;
  std::string dir_;
  std::map<cu_deviceptr, std::unique_ptr<allocation>> allocations_;
};

}  // namespace kiln::cuda
