#pragma once
// kiln's CUDA layer: NVRTC and the driver loaded at run time (no CUDA header or library needed to build),
// a memory + disk kernel cache, and small RAII wrappers. Entry points:
//   runtime::open()                        a ready device, or backend_unavailable naming what is missing
//   nvrtc_library::load()->compile(src, gpu_target::parse("sm_90"))   compile without a GPU
//   kernel_cache::get_or_compile(...)      the same through the cache, with cold/hit timing
#include <kiln/cuda/runtime/api_types.hpp>
#include <kiln/cuda/runtime/cache_entry.hpp>
#include <kiln/cuda/runtime/context.hpp>
#include <kiln/cuda/runtime/driver.hpp>
#include <kiln/cuda/runtime/dynamic_library.hpp>
#include <kiln/cuda/runtime/kernel_cache.hpp>
#include <kiln/cuda/runtime/memory.hpp>
#include <kiln/cuda/runtime/module.hpp>
#include <kiln/cuda/runtime/nvrtc.hpp>
#include <kiln/cuda/runtime/runtime.hpp>
#include <kiln/cuda/runtime/target.hpp>
