#pragma once
// The CPU's pooling loops, per sample: the windows walked in order (no index arithmetic per element), and the
// adjoints scattered from each window to where its value came from, instead of gathered per input element (k²
// windows per element, each scanned again). The maximum's position is window_math's kiln_window_argmax (the
// first maximum in scan order, a NaN winning: PyTorch's rule), the one definition every backend uses; an input
// element under several windows (stride < kernel) adds their adjoints in window order, which the gathered form
// (ops/window_math.hpp) adds in another order: the tests hold the two to float tolerance. The window is a
// template argument, so the window loops (2×2, 3×3) unroll.
#include <kiln/ops/window_math.hpp>

#include <algorithm>

namespace kiln::cpu::pool {

// 2×2 windows at stride 2 without padding or dilation (the usual CNN pooling): each input element lies in at most
// one window, so the loops read the two rows of a window pair as plain arrays, and the rule "first maximum in scan
// order, a later NaN taking over" (kiln_window_argmax) becomes a select chain the compiler vectorizes.
template <window W>
inline constexpr bool pair_window = W.kh == 2 && W.kw == 2 && W.sh == 2 && W.sw == 2 && W.ph == 0 && W.pw == 0 &&
                                    W.dh == 1 && W.dw == 1;
// v, then u in scan order: u takes over when larger or NaN (kiln_window_argmax's comparison)
inline float later_max(float v, float u) { return u > v || u != u ? u : v; }

// y rows [n0, n1) = max_pool2d(x)
template <window W>
inline void max_forward(const float* x, float* y, long n0, long n1) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  for (long n = n0; n < n1; ++n)
    for (int c = 0; c < W.c; ++c) {
      const float* m = x + (n * W.c + c) * plane;
      float* out = y + (n * W.c + c) * OH * OW;
      if constexpr (pair_window<W>) {
        for (int i = 0; i < OH; ++i) {
          const float* r0 = m + 2 * i * W.w;
          const float* r1 = r0 + W.w;
          float* o = out + i * OW;
          for (int j = 0; j < OW; ++j) o[j] = later_max(later_max(later_max(r0[2 * j], r0[2 * j + 1]), r1[2 * j]), r1[2 * j + 1]);
        }
        continue;
      }
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          const int at = window_math::kiln_window_argmax(W, m, i, j);
          out[i * OW + j] = at < 0 ? 0.0f : m[at];
        }
    }
}

// gx rows [n0, n1) = max_pool2d_dx(x, gy): each window's adjoint added at its maximum
template <window W>
inline void max_adjoint(const float* x, const float* gy, float* gx, long n0, long n1) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  // a pair window writes every element it covers; only an odd last row or column needs the zeros
  if (!pair_window<W> || W.h % 2 != 0 || W.w % 2 != 0) std::fill(gx + n0 * W.c * plane, gx + n1 * W.c * plane, 0.0f);
  for (long n = n0; n < n1; ++n)
    for (int c = 0; c < W.c; ++c) {
      const float* m = x + (n * W.c + c) * plane;
      const float* g = gy + (n * W.c + c) * OH * OW;
      float* out = gx + (n * W.c + c) * plane;
      if constexpr (pair_window<W>) {
        for (int i = 0; i < OH; ++i) {
          // restrict: gx is a buffer of its own, so the compiler need not check the five arrays for overlap
          const float* __restrict r0 = m + 2 * i * W.w;
          const float* __restrict r1 = r0 + W.w;
          const float* __restrict gr = g + i * OW;
          float* __restrict o0 = out + 2 * i * W.w;
          float* __restrict o1 = o0 + W.w;
          for (int j = 0; j < OW; ++j) {
            const float a = r0[2 * j], b = r0[2 * j + 1], cc = r1[2 * j], d = r1[2 * j + 1];
            // bitwise & and |, not && and ||: no branches, so the loop vectorizes
            const bool take_b = (b > a) | (b != b);
            const float ab = take_b ? b : a;
            const bool take_c = (cc > ab) | (cc != cc);
            const float abc = take_c ? cc : ab;
            const bool take_d = (d > abc) | (d != d);
            const float v = gr[j];
            // the last element to take over is the maximum's place (masks, not an index)
            o1[2 * j + 1] = take_d ? v : 0.0f;
            o1[2 * j] = (take_c & !take_d) ? v : 0.0f;
            o0[2 * j + 1] = (take_b & !take_c & !take_d) ? v : 0.0f;
            o0[2 * j] = (!take_b & !take_c & !take_d) ? v : 0.0f;
          }
        }
        continue;
      }
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          const int at = window_math::kiln_window_argmax(W, m, i, j);
          if (at >= 0) out[at] += g[i * OW + j];
        }
    }
}

// y rows [n0, n1) = avg_pool2d(x): window sums over kh·kw (padding counted as zeros)
template <window W>
inline void average_forward(const float* x, float* y, long n0, long n1) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  const float scale = 1.0f / static_cast<float>(W.kh * W.kw);
  for (long n = n0; n < n1; ++n)
    for (int c = 0; c < W.c; ++c) {
      const float* m = x + (n * W.c + c) * plane;
      float* out = y + (n * W.c + c) * OH * OW;
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          float s = 0;
          for (int a = 0; a < W.kh; ++a) {
            const int yy = i * W.sh - W.ph + a;
            if (yy < 0 || yy >= W.h) continue;
            for (int b = 0; b < W.kw; ++b) {
              const int xx = j * W.sw - W.pw + b;
              if (xx >= 0 && xx < W.w) s += m[yy * W.w + xx];
            }
          }
          out[i * OW + j] = s * scale;
        }
    }
}

// gx rows [n0, n1) = avg_pool2d_dx(gy): each window's adjoint spread over its kh·kw places
template <window W>
inline void average_adjoint(const float* gy, float* gx, long n0, long n1) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  const float scale = 1.0f / static_cast<float>(W.kh * W.kw);
  std::fill(gx + n0 * W.c * plane, gx + n1 * W.c * plane, 0.0f);
  for (long n = n0; n < n1; ++n)
    for (int c = 0; c < W.c; ++c) {
      const float* g = gy + (n * W.c + c) * OH * OW;
      float* out = gx + (n * W.c + c) * plane;
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          const float v = g[i * OW + j] * scale;
          for (int a = 0; a < W.kh; ++a) {
            const int yy = i * W.sh - W.ph + a;
            if (yy < 0 || yy >= W.h) continue;
            for (int b = 0; b < W.kw; ++b) {
              const int xx = j * W.sw - W.pw + b;
              if (xx >= 0 && xx < W.w) out[yy * W.w + xx] += v;
            }
          }
        }
    }
}

}  // namespace kiln::cpu::pool
