#pragma once
// NVRTC loaded at run time: CUDA C++ source → CUBIN (or PTX) for an explicit target. Works without a GPU or
// driver, so kernels can be compiled (and cached) on any machine that has the NVRTC library.
#include <kiln/core/error.hpp>
#include <kiln/cuda/runtime/api_types.hpp>
#include <kiln/cuda/runtime/dynamic_library.hpp>
#include <kiln/cuda/runtime/target.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cuda {

// What to compile. `name` is the kernel's name expression: an extern "C" name, or a C++ name such as
// "kiln::gemm<64>" which NVRTC instantiates and lowers (mangles) for us.
struct kernel_source {
  std::string source;
  std::string name;
  std::vector<std::string> options;  // NVRTC options without the target, e.g. {"--use_fast_math"}
};

enum class binary_kind { cubin, ptx };

struct compiled_kernel {
  binary_kind kind = binary_kind::cubin;
  std::string target;        // gpu_target::name(), e.g. "sm_90" or "compute_90"
  std::string lowered_name;  // the symbol to look up in the loaded module
  std::string image;         // CUBIN bytes, or PTX text without its terminating NUL
  std::string log;           // NVRTC's program log (warnings), possibly empty
  double compile_seconds = 0;
};

// A failed compilation; what() holds NVRTC's error, the options, the log and the numbered source.
struct nvrtc_compile_error : error {
  nvrtc_compile_error(const std::string& message, std::string program_log)
      : error(message), log(std::move(program_log)) {}
  std::string log;
};

// "   7 | text" for every line, so NVRTC's "kernel.cu(7): error" can be matched to the source at a glance.
inline std::string number_lines(std::string_view source) {
  std::vector<std::string_view> lines;
  while (!source.empty()) {
    const std::size_t end = source.find('\n');
    lines.push_back(source.substr(0, end));
    source = end == std::string_view::npos ? std::string_view() : source.substr(end + 1);
  }
  const std::size_t width = std::to_string(lines.size()).size();
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string num = std::to_string(i + 1);
    out.append(width - num.size() + 2, ' ').append(num).append(" | ").append(lines[i]).push_back('\n');
  }
  return out;
}

class nvrtc_library {
 public:
  // Loads NVRTC from nvrtc_library_candidates() (honouring KILN_NVRTC_PATH). Successful loads are shared
  // per resolved candidate list; failures are not remembered, so a changed environment is seen next time.
  // Throws backend_unavailable("... no NVRTC library ...") listing every name tried.
  static std::shared_ptr<const nvrtc_library> load() { return load(nvrtc_library_candidates()); }

  static std::shared_ptr<const nvrtc_library> load(const std::vector<std::string>& candidates) {
    static std::mutex mutex;
    static std::map<std::vector<std::string>, std::shared_ptr<const nvrtc_library>> loaded;
    std::lock_guard lock(mutex);
    if (auto it = loaded.find(candidates); it != loaded.end()) return it->second;
    dynamic_library lib = dynamic_library::open_first(candidates);
    if (!lib.ok())
      throw backend_unavailable("CUDA backend unavailable: no NVRTC library (" + lib.failure() +
                                "); install the CUDA toolkit's NVRTC or set KILN_NVRTC_PATH to libnvrtc.so");
    auto nvrtc = std::shared_ptr<nvrtc_library>(new nvrtc_library(lib.symbols()));
    loaded.emplace(candidates, nvrtc);
    return nvrtc;
  }

  const std::string& path() const { return path_; }
  nvrtc_version version() const { return version_; }
  // Real architectures NVRTC can emit CUBIN for (e.g. 75, 80, …, 120), ascending.
  const std::vector<int>& supported_archs() const { return archs_; }
  bool supports(const gpu_target& t) const {
    for (int a : archs_)
      if (a == t.arch) return true;
    return false;
  }

  std::string error_name(nvrtc_result r) const {
    const char* s = fn_.GetErrorString ? fn_.GetErrorString(r) : nullptr;
    return (s ? std::string(s) : "NVRTC error") + " (" + std::to_string(r) + ")";
  }

  // Compiles for `target`: CUBIN for sm_XY, PTX for compute_XY. Throws nvrtc_compile_error on any failure,
  // and kiln::error when the options already name a target (the target is a separate, cache-keyed argument)
  // or this NVRTC does not support the target.
  compiled_kernel compile(const kernel_source& src, const gpu_target& target) const {
    for (const std::string& o : src.options)
      if (o.rfind("-arch", 0) == 0 || o.rfind("--gpu-architecture", 0) == 0 || o.rfind("--gpu-name", 0) == 0)
        throw error("NVRTC options for kernel '" + src.name + "' contain '" + o +
                    "'; pass the architecture as the gpu_target argument instead");
    if (!supports(target)) {
      std::string list;
      for (int a : archs_) list += (list.empty() ? "" : ", ") + std::to_string(a);
      throw error("NVRTC " + version_.text() + " cannot compile for " + target.name() + "; it supports " + list);
    }
    std::vector<std::string> options = src.options;
    options.push_back("--gpu-architecture=" + target.name());
    std::vector<const char*> option_ptrs;
    for (const std::string& o : options) option_ptrs.push_back(o.c_str());

    const auto start = std::chrono::steady_clock::now();
    program prog(*this);
    const std::string file_name = file_name_for(src.name);
    check(fn_.CreateProgram(&prog.handle, src.source.c_str(), file_name.c_str(), 0, nullptr, nullptr),
          "nvrtcCreateProgram", src, target, options, "");
    check(fn_.AddNameExpression(prog.handle, src.name.c_str()), "nvrtcAddNameExpression", src, target, options, "");
    const nvrtc_result compiled = fn_.CompileProgram(prog.handle, static_cast<int>(option_ptrs.size()),
                                                     option_ptrs.data());
    compiled_kernel out;
    out.log = program_log(prog.handle);
    check(compiled, "nvrtcCompileProgram", src, target, options, out.log);

    const char* lowered = nullptr;
    check(fn_.GetLoweredName(prog.handle, src.name.c_str(), &lowered), "nvrtcGetLoweredName", src, target, options,
          out.log);
    out.lowered_name = lowered ? lowered : src.name;
    out.target = target.name();
    out.kind = target.ptx ? binary_kind::ptx : binary_kind::cubin;
    std::size_t size = 0;
    if (target.ptx) {
      check(fn_.GetPTXSize(prog.handle, &size), "nvrtcGetPTXSize", src, target, options, out.log);
      out.image.resize(size);
      check(fn_.GetPTX(prog.handle, out.image.data()), "nvrtcGetPTX", src, target, options, out.log);
      while (!out.image.empty() && out.image.back() == '\0') out.image.pop_back();
    } else {
      check(fn_.GetCUBINSize(prog.handle, &size), "nvrtcGetCUBINSize", src, target, options, out.log);
      out.image.resize(size);
      check(fn_.GetCUBIN(prog.handle, out.image.data()), "nvrtcGetCUBIN", src, target, options, out.log);
    }
    out.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

 private:
  struct functions {
    nvrtc_result (*Version)(int*, int*) = nullptr;
    nvrtc_result (*GetNumSupportedArchs)(int*) = nullptr;
    nvrtc_result (*GetSupportedArchs)(int*) = nullptr;
    const char* (*GetErrorString)(nvrtc_result) = nullptr;
    nvrtc_result (*CreateProgram)(nvrtc_program*, const char*, const char*, int, const char* const*,
                                  const char* const*) = nullptr;
    nvrtc_result (*DestroyProgram)(nvrtc_program*) = nullptr;
    nvrtc_result (*CompileProgram)(nvrtc_program, int, const char* const*) = nullptr;
    nvrtc_result (*GetProgramLogSize)(nvrtc_program, std::size_t*) = nullptr;
    nvrtc_result (*GetProgramLog)(nvrtc_program, char*) = nullptr;
    nvrtc_result (*GetPTXSize)(nvrtc_program, std::size_t*) = nullptr;
    nvrtc_result (*GetPTX)(nvrtc_program, char*) = nullptr;
    nvrtc_result (*GetCUBINSize)(nvrtc_program, std::size_t*) = nullptr;
    nvrtc_result (*GetCUBIN)(nvrtc_program, char*) = nullptr;
    nvrtc_result (*AddNameExpression)(nvrtc_program, const char*) = nullptr;
    nvrtc_result (*GetLoweredName)(nvrtc_program, const char*, const char**) = nullptr;
  };

  // Destroys the NVRTC program on every exit path.
  struct program {
    explicit program(const nvrtc_library& l) : lib(l) {}
    ~program() {
      if (handle) lib.fn_.DestroyProgram(&handle);
    }
    program(const program&) = delete;
    program& operator=(const program&) = delete;
    const nvrtc_library& lib;
    nvrtc_program handle = nullptr;
  };

  explicit nvrtc_library(const symbol_lookup& lib) : path_(lib.library) {
    lib.bind(fn_.Version, "nvrtcVersion");
    lib.bind(fn_.GetErrorString, "nvrtcGetErrorString");
    lib.bind(fn_.CreateProgram, "nvrtcCreateProgram");
    lib.bind(fn_.DestroyProgram, "nvrtcDestroyProgram");
    lib.bind(fn_.CompileProgram, "nvrtcCompileProgram");
    lib.bind(fn_.GetProgramLogSize, "nvrtcGetProgramLogSize");
    lib.bind(fn_.GetProgramLog, "nvrtcGetProgramLog");
    lib.bind(fn_.GetPTXSize, "nvrtcGetPTXSize");
    lib.bind(fn_.GetPTX, "nvrtcGetPTX");
    lib.bind(fn_.GetCUBINSize, "nvrtcGetCUBINSize");
    lib.bind(fn_.GetCUBIN, "nvrtcGetCUBIN");
    lib.bind(fn_.AddNameExpression, "nvrtcAddNameExpression");
    lib.bind(fn_.GetLoweredName, "nvrtcGetLoweredName");
    lib.bind(fn_.GetNumSupportedArchs, "nvrtcGetNumSupportedArchs");
    lib.bind(fn_.GetSupportedArchs, "nvrtcGetSupportedArchs");
    if (fn_.Version(&version_.major, &version_.minor) != nvrtc_success)
      throw backend_unavailable("CUDA backend unavailable: nvrtcVersion failed in '" + path_ + "'");
    int n = 0;
    if (fn_.GetNumSupportedArchs(&n) != nvrtc_success || n <= 0)
      throw backend_unavailable("CUDA backend unavailable: '" + path_ + "' reports no supported architecture");
    archs_.resize(static_cast<std::size_t>(n));
    if (fn_.GetSupportedArchs(archs_.data()) != nvrtc_success)
      throw backend_unavailable("CUDA backend unavailable: nvrtcGetSupportedArchs failed in '" + path_ + "'");
  }

  // NVRTC names the program in its diagnostics ("<file>(line): error ..."): keep it a plain file name.
  static std::string file_name_for(const std::string& kernel_name) {
    std::string f;
    for (char c : kernel_name) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      f.push_back(plain ? c : '_');
    }
    return (f.empty() ? "kernel" : f) + ".cu";
  }

  std::string program_log(nvrtc_program p) const {
    std::size_t size = 0;
    if (fn_.GetProgramLogSize(p, &size) != nvrtc_success || size <= 1) return {};
    std::string log(size, '\0');
    if (fn_.GetProgramLog(p, log.data()) != nvrtc_success) return {};
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    return log;
  }

  void check(nvrtc_result r, const char* call, const kernel_source& src, const gpu_target& target,
             const std::vector<std::string>& options, const std::string& log) const {
    if (r == nvrtc_success) return;
    std::string msg = "NVRTC " + version_.text() + " could not compile kernel '" + src.name + "' for " +
                      target.name() + ": " + call + " returned " + error_name(r) + "\noptions:";
    for (const std::string& o : options) msg += " " + o;
    msg += "\nprogram log:\n" + (log.empty() ? std::string("(empty)") : log);
    msg += "\nsource (" + file_name_for(src.name) + "):\n" + number_lines(src.source);
    throw nvrtc_compile_error(msg, log);
  }

  std::string path_;
  functions fn_;
  nvrtc_version version_;
  std::vector<int> archs_;
};

// Compile-only entry point for machines without a GPU: e.g. compile_for_arch(src, "sm_90").
// Throws backend_unavailable when NVRTC cannot be loaded, nvrtc_compile_error when the source does not compile.
inline compiled_kernel compile_for_arch(const kernel_source& src, std::string_view arch) {
  return nvrtc_library::load()->compile(src, gpu_target::parse(arch));
}

}  // namespace kiln::cuda
