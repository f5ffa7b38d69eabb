#pragma once
// OpenBLAS picks its kernels from the CPU model when it loads. A release older than the CPU does not know the
// model and falls back to its oldest x86-64 kernels (Prescott: SSE3), which would make the OpenBLAS-backed
// peers (sgemm, dlib, Debian's PyTorch) look several times slower than they are. kiln-bench compares against
// each peer at its best, so when that fallback is detected it names the right kernel family in
// OPENBLAS_CORETYPE (read only while the library loads) and restarts itself; the Python peers inherit it.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace kiln_bench {

// OpenBLAS's kernel family in this process, or "" when no OpenBLAS is loaded.
inline std::string openblas_core() {
  using getter = const char* (*)();
  void* sym = dlsym(RTLD_DEFAULT, "openblas_get_corename");
  if (!sym) return "";
  const char* name = reinterpret_cast<getter>(sym)();
  return name ? name : "";
}

// The kernel family to force, or nullptr when OpenBLAS's own choice stands (recognised CPU, nothing better
// available, or OPENBLAS_CORETYPE already set by the user).
inline const char* openblas_core_to_force() {
  if (std::getenv("OPENBLAS_CORETYPE")) return nullptr;
  const std::string core = openblas_core();
  const bool fallback = core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "Unknown";
  if (!fallback) return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace kiln_bench
