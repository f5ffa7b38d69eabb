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

// Counted only on the thread running the reader and only while it runs: libFuzzer's own threads allocate too,
// and memory allocated before the call may be freed during it (the count then goes below zero, hence signed).
inline thread_local bool measuring = false;
inline thread_local long long live_bytes = 0, peak_bytes = 0;

extern "C" inline void kiln_fuzz_malloc_hook(const volatile void*, std::size_t size) {
  if (!measuring) return;
  live_bytes += static_cast<long long>(size);
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}
extern "C" inline void kiln_fuzz_free_hook(const volatile void* p) {
  if (measuring && p) live_bytes -= static_cast<long long>(__sanitizer_get_allocated_size(const_cast<const void*>(p)));
}

// Runs f() and traps when the heap's peak during it exceeds the start by more than `bound` bytes.
template <class F>
void within_heap_bound(std::size_t bound, const char* what, F&& f) {
  static const bool installed = __sanitizer_install_malloc_and_free_hooks(kiln_fuzz_malloc_hook,
                                                                          kiln_fuzz_free_hook) != 0;
  if (!installed) __builtin_trap();
  live_bytes = peak_bytes = 0;
  measuring = true;
  f();
  measuring = false;
  if (peak_bytes > static_cast<long long>(bound)) {
    std::fprintf(stderr, "%s: heap peak rose by %lld bytes, more than the %zu this input can need\n", what,
                 peak_bytes, bound);
    __builtin_trap();
  }
}

}  // namespace kiln_fuzz
