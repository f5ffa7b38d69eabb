#pragma once
// The CPU's pooling loops, per sample: the windows walked in order (no index arithmetic per element), and the
// adjoints scattered from each window to where its value came from, instead of gathered per input element (k²
// windows per element, each scanned again). The maximum's position is window_math's kiln_window_argmax (the
// first maximum in scan order, a NaN winning: PyTorch's rule), the one definition every backend uses; an input
// element under several windows (stride < kernel) adds their adjoints in window order, which the gathered form
// (ops/window_math.hpp) adds in another order: the tests hold the two to float tolerance. The window is a
// template argument, so the window loops (2×2, 3×3) unroll.
#include <kiln/cpu/simd.hpp>
#include <kiln/ops/window_math.hpp>

#include <algorithm>
#include <utility>

namespace kiln::cpu::pool {

// 2×2 windows at stride 2 without padding or dilation (the usual CNN pooling): each input element lies in at most
// one window, so the loops read the two rows of a window pair as plain arrays, and the rule "first maximum in scan
// order, a later NaN taking over" (kiln_window_argmax) becomes a chain of vector selects.
template <window W>
inline constexpr bool pair_window = W.kh == 2 && W.kw == 2 && W.sh == 2 && W.sw == 2 && W.ph == 0 && W.pw == 0 &&
                                    W.dh == 1 && W.dw == 1;
// The pair windows on SIMD vectors: an output row's windows read two input rows, each as runs of 2·lanes floats
// split into their even and odd columns (the windows' left and right elements). The compiler does not vectorize
// the scalar loops' stride-2 accesses over rows of 7 or 14 windows (the Fashion-MNIST CNN's): they ran at
// 1.5 GB/s, the max-pool adjoint at 1.4 GB/s.
namespace pair_detail {
using lane_sequence = std::make_integer_sequence<int, lanes>;
template <int... I>
inline vfloat evens(vfloat a, vfloat b, std::integer_sequence<int, I...>) { return __builtin_shufflevector(a, b, (2 * I)...); }
template <int... I>
inline vfloat odds(vfloat a, vfloat b, std::integer_sequence<int, I...>) { return __builtin_shufflevector(a, b, (2 * I + 1)...); }
// a[0] b[0] a[1] b[1] … from the lower half of a and b (Half = 0) or the upper half (Half = 1)
template <int Half, int... I>
inline vfloat interleave(vfloat a, vfloat b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (Half * lanes / 2 + I / 2 + (I % 2) * lanes)...);
}
// 2n floats (n <= lanes) from p as two vectors, zeros past the end
inline void load_run(const float* p, int n, vfloat& lo, vfloat& hi) {
  const int m = 2 * n;
  lo = m >= lanes ? load(p) : load_partial(p, m);
  hi = m >= 2 * lanes ? load(p + lanes) : m > lanes ? load_partial(p + lanes, m - lanes) : splat(0.0f);
}
inline void store_run(float* p, int n, vfloat lo, vfloat hi) {
  const int m = 2 * n;
  if (m >= lanes) store(p, lo);
  else store_partial(p, lo, m);
  if (m >= 2 * lanes) store(p + lanes, hi);
  else if (m > lanes) store_partial(p + lanes, hi, m - lanes);
}
// v, then u in scan order: the lanes where u takes over, being larger or NaN (kiln_window_argmax's comparison)
inline vint takes_over(vfloat v, vfloat u) { return (u > v) | (u != u); }

// The four elements of windows j0 … j0 + n − 1 of the output row whose input rows are r0 and r1.
struct window_corners {
  vfloat a, b, c, d;  // top left, top right, bottom left, bottom right
  window_corners(const float* r0, const float* r1, int j0, int n) {
    vfloat t0, t1, b0, b1;
    load_run(r0 + 2 * j0, n, t0, t1);
    load_run(r1 + 2 * j0, n, b0, b1);
    a = evens(t0, t1, lane_sequence{}), b = odds(t0, t1, lane_sequence{});
    c = evens(b0, b1, lane_sequence{}), d = odds(b0, b1, lane_sequence{});
  }
};

inline void max_row(const float* r0, const float* r1, float* out, int OW) {
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const window_corners w(r0, r1, j0, n);
    vfloat m = blend(takes_over(w.a, w.b), w.b, w.a);
    m = blend(takes_over(m, w.c), w.c, m);
    m = blend(takes_over(m, w.d), w.d, m);
    if (n == lanes) store(out + j0, m);
    else store_partial(out + j0, m, n);
  }
}

// each window's adjoint gy[j] to the element that is its maximum, zeros to the other three
inline void max_adjoint_row(const float* r0, const float* r1, const float* gy, float* o0, float* o1, int OW) {
  const vfloat zero = splat(0.0f);
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const window_corners w(r0, r1, j0, n);
    const vint tb = takes_over(w.a, w.b);
    const vfloat ab = blend(tb, w.b, w.a);
    const vint tc = takes_over(ab, w.c);
    const vint td = takes_over(blend(tc, w.c, ab), w.d);
    const vfloat g = n == lanes ? load(gy + j0) : load_partial(gy + j0, n);
    // the last element to take over is the maximum's place
    const vfloat ga = blend(~tb & ~tc & ~td, g, zero), gb = blend(tb & ~tc & ~td, g, zero);
    const vfloat gc = blend(tc & ~td, g, zero), gd = blend(td, g, zero);
    store_run(o0 + 2 * j0, n, interleave<0>(ga, gb, lane_sequence{}), interleave<1>(ga, gb, lane_sequence{}));
    store_run(o1 + 2 * j0, n, interleave<0>(gc, gd, lane_sequence{}), interleave<1>(gc, gd, lane_sequence{}));
  }
}
}  // namespace pair_detail

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
        for (int i = 0; i < OH; ++i) pair_detail::max_row(m + 2 * i * W.w, m + (2 * i + 1) * W.w, out + i * OW, OW);
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
        for (int i = 0; i < OH; ++i)
          pair_detail::max_adjoint_row(m + 2 * i * W.w, m + (2 * i + 1) * W.w, g + i * OW, out + 2 * i * W.w, out + (2 * i + 1) * W.w, OW);
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
