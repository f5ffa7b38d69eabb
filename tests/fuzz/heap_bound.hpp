#pragma once
// A memory oracle for the fuzz targets: the sanitizer allocator's hooks track the live heap, and a reader call
// fails (traps) when its peak rises more than `bound` bytes above where it started. The bound is what the
// input can legitimately need (a constant times its size, or twice what a gzip stream really inflates to), so
// a reader that sizes memory by what a header claims is a finding even on inputs of a few kilobytes, long
// before -rss_limit_mb would notice.
#include <sanitizer/allocator_interface.h>

#include <cstddef>
#include <cstdio>

namespace kiln_fuzz {

inline std::size_t live_bytes = 0, peak_bytes = 0;

extern "C" inline void kiln_fuzz_malloc_hook(const volatile void*, std::size_t size) {
  live_bytes += size;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}
extern "C" inline void kiln_fuzz_free_hook(const volatile void* p) {
  live_bytes -= __sanitizer_get_allocated_size(const_cast<const void*>(p));
}

// Runs f() and traps when the heap's peak during it exceeds the start by more than `bound` bytes.
template <class F>
void within_heap_bound(std::size_t bound, const char* what, F&& f) {
  static const bool installed = __sanitizer_install_malloc_and_free_hooks(kiln_fuzz_malloc_hook,
                                                                          kiln_fuzz_free_hook) != 0;
  if (!installed) __builtin_trap();
  const std::size_t start = live_bytes;
  peak_bytes = live_bytes;
  f();
  if (peak_bytes - start > bound) {
    std::fprintf(stderr, "%s: heap peak rose by %zu bytes, more than the %zu this input can need\n", what,
                 peak_bytes - start, bound);
    __builtin_trap();
  }
}

}  // namespace kiln_fuzz
