#pragma once
// Run-time loading of the CUDA driver and NVRTC with dlopen/dlsym, so that a program built with kiln starts
// on machines with neither: only asking for the CUDA backend touches these libraries.
#include <kiln/core/error.hpp>

#include <cstdlib>
#include <dlfcn.h>
#include <functional>
#include <link.h>
#include <string>
#include <vector>

namespace kiln::cuda {

// Value of an environment variable, or "" when unset.
inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Entry points looked up by name and bound to typed function pointers. Usually dlsym on a dynamic_library;
// any lookup works (tests bind a fake driver this way). `library` is what error messages call it.
struct symbol_lookup {
  std::string library;
  std::function<void*(const char*)> find;

  // Throws backend_unavailable naming the library and the missing symbol.
  template <class Fn>
  void bind(Fn*& fn, const char* name) const {
    void* sym = find(name);
    if (!sym)
      throw backend_unavailable("CUDA backend unavailable: '" + library + "' does not export " + name +
                                " (library too old or not the expected one)");
    fn = reinterpret_cast<Fn*>(sym);
  }
};

// A shared library opened with dlopen. It is never dlclose'd: the CUDA driver and NVRTC own threads and
// process-wide state, and unloading them while static destructors still run is a known source of crashes.
class dynamic_library {
 public:
  // Opens the first loadable candidate. On failure returns a library whose ok() is false and whose
  // failure() lists every candidate with dlerror's reason (the reason names the file).
  static dynamic_library open_first(const std::vector<std::string>& candidates) {
    dynamic_library lib;
    for (const std::string& path : candidates) {
      if (void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
        lib.handle_ = h;
        lib.path_ = path;
        // The file the loader actually chose (a bare name like libcuda.so.1 says nothing about which).
        struct link_map* map = nullptr;
        if (::dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0])
          lib.path_ = map->l_name;
        return lib;
      }
      const char* why = ::dlerror();
      if (!lib.failure_.empty()) lib.failure_ += "; ";
      lib.failure_ += why ? std::string(why) : "'" + path + "': dlopen failed";
    }
    if (candidates.empty()) lib.failure_ = "no candidate file names";
    return lib;
  }

  bool ok() const { return handle_ != nullptr; }
  // The opened file as the dynamic loader resolved it (absolute when the loader searched for it).
  const std::string& path() const { return path_; }
  const std::string& failure() const { return failure_; }

  // dlsym lookups in this library (valid for the whole process: the library is never unloaded).
  symbol_lookup symbols() const {
    void* h = handle_;
    return {path_, [h](const char* name) { return ::dlsym(h, name); }};
  }

 private:
  void* handle_ = nullptr;
  std::string path_;
  std::string failure_;
};

// Candidate names for the driver: KILN_CUDA_DRIVER_PATH alone when set (to point at a specific libcuda,
// e.g. the toolkit's stub in tests), else the driver's SONAME and the unversioned development name.
inline std::vector<std::string> driver_library_candidates() {
  std::string forced = env_or_empty("KILN_CUDA_DRIVER_PATH");
  if (!forced.empty()) return {forced};
  return {"libcuda.so.1", "libcuda.so"};
}

// Candidate names for NVRTC: KILN_NVRTC_PATH alone when set; else the names the dynamic loader can find
// (newest major first), then the toolkit directories from $CUDA_PATH, $CUDA_HOME and /usr/local/cuda.
inline std::vector<std::string> nvrtc_library_candidates() {
  std::string forced = env_or_empty("KILN_NVRTC_PATH");
  if (!forced.empty()) return {forced};
  std::vector<std::string> names = {"libnvrtc.so",      "libnvrtc.so.13", "libnvrtc.so.12",
                                    "libnvrtc.so.11.2", "libnvrtc.so.11"};
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    std::string root = env_or_empty(var);
    if (!root.empty()) names.push_back(root + "/lib64/libnvrtc.so");
  }
  names.push_back("/usr/local/cuda/lib64/libnvrtc.so");
  return names;
}

}  // namespace kiln::cuda
