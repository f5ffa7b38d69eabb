#pragma once
// The model that the width sweeps (tests/cpu/backend_sweep.hpp, tests/cuda/test_cuda_emulated_sweep.cpp) train at
// every width W. It puts every kind of kernel on rows of W features:
//   contractions   x·W1ᵀ (K = W), h·W2ᵀ (N = W) and their gradients (the weight gradients contract the batch)
//   epilogues      bias + tanh after the first, bias + PReLU after the second; the update after each weight
//                  gradient
//   reductions     max over a row and Σ over a row (log_softmax in cross_entropy), Σ over the batch (bias
//                  gradients), Σ over everything (mse's mean, the PReLU slope's gradient)
//   elementwise    the chains between them, at [batch, W], [batch, 1] and [1, W]
#include <kiln/kiln.hpp>
#include <kiln/train/optimizers.hpp>

namespace kiln_test {

template <int W>
struct sweep_model {
  constexpr auto operator()() const {
    using namespace kiln;
    auto z = nn::sequential(dense<W>{}, kiln::tanh, dense<W>{}, prelu_l)(input<W>("x"));
    return cross_entropy(z, labels<W>("y")) + mse(z, target<W>("target"));
  }
};

// The sweeps' optimizer: Adam with ε = 1e-4. A weight gradient can be a difference of nearly equal terms (~1e-7
// against terms of ~1), and Adam's first step divides it by |g| + ε, which multiplies its float rounding by up
// to lr/ε: 1e6 with the default ε = 1e-8, enough to move a parameter by 7 % of lr between float and double
// (seen at widths 29, 45 and 129 on the CPU and 97 on the CUDA emulator). At 1e-4 the factor is
// 100 and the comparison stays at float precision; the update's kernels are the same for any ε.
inline constexpr kiln::adam sweep_optimizer{.lr = 1e-2, .eps = 1e-4};

}  // namespace kiln_test
