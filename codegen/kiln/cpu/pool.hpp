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
#include <cstdint>
#include <cstring>
#include <utility>

namespace kiln::cpu::pool {

// 2×2 windows at stride 2 without padding or dilation (the usual CNN pooling): each input element lies in at most
// one window, so the loops read the two rows of a window pair as plain arrays, and the rule "first maximum in scan
// order, a later NaN taking over" (kiln_window_argmax) becomes a chain of vector selects.
constexpr bool is_pair_window(const window& w) {
  return w.kh == 2 && w.kw == 2 && w.sh == 2 && w.sw == 2 && w.ph == 0 && w.pw == 0 && w.dh == 1 && w.dw == 1;
}
template <window W>
inline constexpr bool pair_window = is_pair_window(W);
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
// A row of windows' adjoints ga … gd (top left, top right, bottom left, bottom right; windows j0 … j0 + n − 1)
// stored to the two input rows o0 and o1 they cover, each corner at its place.
inline void store_window_adjoints(float* o0, float* o1, int j0, int n, vfloat ga, vfloat gb, vfloat gc, vfloat gd) {
  store_run(o0 + 2 * j0, n, interleave<0>(ga, gb, lane_sequence{}), interleave<1>(ga, gb, lane_sequence{}));
  store_run(o1 + 2 * j0, n, interleave<0>(gc, gd, lane_sequence{}), interleave<1>(gc, gd, lane_sequence{}));
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

// kiln_window_argmax's scan of a window's four elements in order: the lanes where the top right (tb), the bottom
// left (tc) and the bottom right (td) element takes over, and the maximum m. The last to take over is the maximum's
// place.
struct window_scan {
  vint tb, tc, td;
  vfloat m;
  explicit window_scan(const window_corners& w) {
    tb = takes_over(w.a, w.b);
    const vfloat ab = blend(tb, w.b, w.a);
    tc = takes_over(ab, w.c);
    const vfloat abc = blend(tc, w.c, ab);
    td = takes_over(abc, w.d);
    m = blend(td, w.d, abc);
  }
  // which corner holds the maximum: 0 top left, 1 top right, 2 bottom left, 3 bottom right
  vint corner() const {
    const vint one = vint{} + 1;
    return (td & (one + 2)) | (~td & tc & (one + 1)) | (~td & ~tc & tb & one);
  }
};

inline void max_row(const float* r0, const float* r1, float* out, int OW) {
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const window_scan s(window_corners(r0, r1, j0, n));
    if (n == lanes) store(out + j0, s.m);
    else store_partial(out + j0, s.m, n);
  }
}

// each window's adjoint gy[j] to the element that is its maximum, zeros to the other three
inline void max_adjoint_row(const float* r0, const float* r1, const float* gy, float* o0, float* o1, int OW) {
  const vfloat zero = splat(0.0f);
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const window_scan s(window_corners(r0, r1, j0, n));
    const vfloat g = n == lanes ? load(gy + j0) : load_partial(gy + j0, n);
    const vfloat ga = blend(~s.tb & ~s.tc & ~s.td, g, zero), gb = blend(s.tb & ~s.tc & ~s.td, g, zero);
    const vfloat gc = blend(s.tc & ~s.td, g, zero), gd = blend(s.td, g, zero);
    store_window_adjoints(o0, o1, j0, n, ga, gb, gc, gd);
  }
}

// Which corner of each window is its maximum (window_scan::corner), one byte per window: what max_row computes on
// its way, kept so that the adjoint need not read the map again (executor corners, cpu/execute.hpp).
using vbyte = std::uint8_t __attribute__((vector_size(lanes)));
inline void store_corners(std::uint8_t* at, vint corner, int n) {
  const vbyte b = __builtin_convertvector(corner, vbyte);
  if (n == lanes) std::memcpy(at, &b, lanes);
  else std::memcpy(at, &b, static_cast<std::size_t>(n));
}
inline vint load_corners(const std::uint8_t* at, int n) {
  vbyte b{};
  if (n == lanes) std::memcpy(&b, at, lanes);
  else std::memcpy(&b, at, static_cast<std::size_t>(n));
  return __builtin_convertvector(b, vint);
}

// max_row, also storing each window's corner
inline void max_row_argmax(const float* r0, const float* r1, float* out, std::uint8_t* at, int OW) {
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const window_scan s(window_corners(r0, r1, j0, n));
    if (n == lanes) store(out + j0, s.m);
    else store_partial(out + j0, s.m, n);
    store_corners(at + j0, s.corner(), n);
  }
}

// max_adjoint_row from the corners max_row_argmax stored
inline void max_adjoint_row_argmax(const std::uint8_t* at, const float* gy, float* o0, float* o1, int OW) {
  const vfloat zero = splat(0.0f);
  const vint k0{};
  for (int j0 = 0; j0 < OW; j0 += lanes) {
    const int n = std::min(lanes, OW - j0);
    const vint corner = load_corners(at + j0, n);
    const vfloat g = n == lanes ? load(gy + j0) : load_partial(gy + j0, n);
    const vfloat ga = blend(corner == k0, g, zero), gb = blend(corner == k0 + 1, g, zero);
    const vfloat gc = blend(corner == k0 + 2, g, zero), gd = blend(corner == k0 + 3, g, zero);
    store_window_adjoints(o0, o1, j0, n, ga, gb, gc, gd);
  }
}
}  // namespace pair_detail

// Bytes of window corners per sample that max_forward_argmax stores.
template <window W>
inline constexpr long argmax_bytes_per_sample = static_cast<long>(W.c) * W.oh() * W.ow();

// max_forward for pair windows, also storing each window's corner (argmax_bytes_per_sample bytes per sample) for
// max_adjoint_argmax, for `samples` samples: x, y and at start at the first.
template <window W>
  requires pair_window<W>
inline void max_forward_argmax(const float* x, float* y, std::uint8_t* at, long samples) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  for (long n = 0; n < samples; ++n)
    for (int c = 0; c < W.c; ++c) {
      const float* m = x + (n * W.c + c) * plane;
      const long o = (n * W.c + c) * OH * OW;
      for (int i = 0; i < OH; ++i)
        pair_detail::max_row_argmax(m + 2 * i * W.w, m + (2 * i + 1) * W.w, y + o + i * OW, at + o + i * OW, OW);
    }
}

// max_adjoint from the corners max_forward_argmax stored, for `samples` samples: at, gy and gx start at the first.
template <window W>
  requires pair_window<W>
inline void max_adjoint_argmax(const std::uint8_t* at, const float* gy, float* gx, long samples) {
  const int OH = W.oh(), OW = W.ow();
  const long plane = static_cast<long>(W.h) * W.w;
  // a pair window writes every element it covers; only an odd last row or column needs the zeros
  if (W.h % 2 != 0 || W.w % 2 != 0) std::fill(gx, gx + samples * W.c * plane, 0.0f);
  for (long n = 0; n < samples; ++n)
    for (int c = 0; c < W.c; ++c) {
      const long o = (n * W.c + c) * OH * OW;
      float* out = gx + (n * W.c + c) * plane;
      for (int i = 0; i < OH; ++i)
        pair_detail::max_adjoint_row_argmax(at + o + i * OW, gy + o + i * OW, out + 2 * i * W.w, out + (2 * i + 1) * W.w, OW);
    }
}

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
