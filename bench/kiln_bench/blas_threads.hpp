#pragma once
// set_blas_threads(n): sets OpenBLAS's thread count when OpenBLAS is loaded in this process (directly, or
// behind Debian's libblas.so.3 alternative), found by name at run time so that a build without OpenBLAS
// still links. Returns false when no OpenBLAS is loaded.
#include <dlfcn.h>

namespace kiln_bench {

inline bool set_blas_threads(int n) {
  using setter = void (*)(int);
  void* sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (!sym) return false;
  reinterpret_cast<setter>(sym)(n);
  return true;
}

}  // namespace kiln_bench
