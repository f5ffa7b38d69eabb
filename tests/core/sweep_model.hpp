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

namespace kiln_test {

template <int W>
struct sweep_model {
  constexpr auto operator()() const {
    using namespace kiln;
    auto z = nn::sequential(dense<W>{}, kiln::tanh, dense<W>{}, prelu_l)(input<W>("x"));
    return cross_entropy(z, labels<W>("y")) + mse(z, target<W>("target"));
  }
};

}  // namespace kiln_test
