#pragma once
// A model that uses every axis op and numpy broadcast (expr/tensor.hpp), on batched tensors and on parameters:
// the CPU test (core/test_tensor.cpp) and the CUDA emulator and NVRTC test (cuda/test_cuda_codegen_layers.cpp).
#include <kiln/kiln.hpp>

namespace kiln_test {

using namespace kiln;

// Every axis op and numpy broadcast, on batched tensors and on parameters, into one cross-entropy loss.
struct axes_model {
  constexpr auto operator()() const {
    auto x = input<2, 3, 4>("x");                                              // [B, 2, 3, 4]
    auto a = tensor_param<3, 1>("a", 2);                                       // broadcast over 2 and 4
    auto w = tensor_param<4, 2, 3>("w", 3);                                    // permuted to [2, 3, 4]
    auto b = tensor_param<2, 3, 4>("b", 4);                                    // reduced over 0, max over 2
    auto h = kiln::tanh(x * a + permute<1, 2, 0>(w) + sum<0>(b) + max_keepdim<2>(b));   // [B, 2, 3, 4]
    auto t = permute<0, 3, 1, 2>(h);                                           // [B, 4, 2, 3]
    auto c = concat<2>(slice<2, 0, 1>(t), max_keepdim<2>(t), sum_keepdim<2>(t) * 0.5);   // [B, 4, 3, 3]
    auto m3 = mean<3>(c);                                                      // [B, 4, 3]
    auto m = m3 - mean_keepdim<1, 2>(m3);                                      // centred per sample
    return cross_entropy(dense<3>("fc")(reshape<-1, 12>(m)), labels<3>("y"));
  }
};

}  // namespace kiln_test
