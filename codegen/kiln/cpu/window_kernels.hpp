#pragma once
// The CPU's window kernels (conv, pooling), one entry point for the executor and the rendered C++: the ops that
// work sample by sample run over a range of rows (the executor splits rows between threads); the weight
// gradient sums over all rows (cpu/conv.hpp); channel sums and repeats run element by element from
// ops/window_math.hpp.
#include <kiln/cpu/conv.hpp>
#include <kiln/cpu/pool.hpp>

#include <algorithm>

namespace kiln::cpu {

// Whether window op `code` computes each sample's row from that sample's rows alone.
constexpr bool window_per_sample(int code) {
  return code == window_math::kiln_conv2d || code == window_math::kiln_conv2d_dx || code == window_math::kiln_max_pool2d ||
         code == window_math::kiln_max_pool2d_dx || code == window_math::kiln_avg_pool2d || code == window_math::kiln_avg_pool2d_dx;
}

// Rows [n0, n1) of the result of per-sample window op Code with window W on operands a, b (b unused by unary ops);
// a convolution's products on `products` (cpu/gemm_bf16.hpp), in `scratch` of conv::scratch_floats(Code, W) floats.
template <int Code, window W>
inline void window_rows(const float* a, const float* b, float* out, long n0, long n1, float* scratch,
                        bf16_path products = bf16_path::fp32) {
  static_assert(window_per_sample(Code), "kiln cpu: this window op does not run per sample");
  if constexpr (Code == window_math::kiln_conv2d) conv::forward(W, a, b, out, n0, n1, scratch, products);
  else if constexpr (Code == window_math::kiln_conv2d_dx) conv::input_adjoint(W, a, b, out, n0, n1, scratch, products);
  else if constexpr (Code == window_math::kiln_max_pool2d) pool::max_forward<W>(a, out, n0, n1);
  else if constexpr (Code == window_math::kiln_max_pool2d_dx) pool::max_adjoint<W>(a, b, out, n0, n1);
  else if constexpr (Code == window_math::kiln_avg_pool2d) pool::average_forward<W>(a, out, n0, n1);
  else pool::average_adjoint<W>(a, out, n0, n1);
}

// Elements [e0, e1) of window op Code with window W from its element-wise definition (channel sums and repeats).
// Both are template arguments so that the index arithmetic folds to constants: passed at run time, a batch-norm
// CNN's channel repeats at batch 1 took 3 times as long.
// A channel repeat (y[e] = a[e / L], L = H·W) is runs of L copies of one value and is written as such: element by
// element, batch norm's repeats of its running statistics were most of a CNN's batch-1 forward (bench/RESULTS.md,
// "Inference after channel repeats as runs").
template <int Code, window W>
inline void window_elements(const float* a, const float* b, long rows, float* out, long e0, long e1) {
  if constexpr (Code == window_math::kiln_channel_repeat) {
    constexpr long L = static_cast<long>(W.h) * W.w;
    for (long e = e0; e < e1;) {
      const long q = e / L, end = std::min(e1, (q + 1) * L);
      std::fill(out + e, out + end, a[q]);
      e = end;
    }
  } else {
    for (long e = e0; e < e1; ++e) out[e] = window_math::kiln_window_at<float>(Code, W, a, b, rows, e);
  }
}

}  // namespace kiln::cpu
