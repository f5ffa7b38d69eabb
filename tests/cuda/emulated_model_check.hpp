#pragma once
// A model's step on the CUDA emulator against the reference, fused and unfused (test_cuda_codegen_emulated.cpp,
// test_cuda_codegen_layers.cpp).
#include "test_cuda_codegen_common.hpp"

#include <kiln/cuda/emulator.hpp>

namespace kiln_cuda_test {

inline std::shared_ptr<kiln::cuda::emulated_device> emulator() {
  static auto dev = std::make_shared<kiln::cuda::emulated_device>();
  return dev;
}

// fused at batches 1, 7, 70 (16-row tiles; 1 SM, then 3), unfused at 7 and 70, and fused == unfused at 70.
template <class Model, class Opt>
void check_model(Opt opt, std::uint64_t seed) {
  auto dev = emulator();
  dev->set_multiprocessors(1);
  compare_with_reference<Model, Opt, kiln::fusion::fused>(dev, opt, 1, seed, 2, 16);
  compare_with_reference<Model, Opt, kiln::fusion::fused>(dev, opt, 7, seed, 2, 16);
  const auto fused = compare_with_reference<Model, Opt, kiln::fusion::fused>(dev, opt, 70, seed, 3, 16);
  dev->set_multiprocessors(3);
  check_same_params(fused, compare_with_reference<Model, Opt, kiln::fusion::fused>(dev, opt, 70, seed, 3, 16));
  compare_with_reference<Model, Opt, kiln::fusion::unfused>(dev, opt, 7, seed, 2);
  check_same_params(fused, compare_with_reference<Model, Opt, kiln::fusion::unfused>(dev, opt, 70, seed, 3));
}

}  // namespace kiln_cuda_test
