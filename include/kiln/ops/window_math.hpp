#pragma once
// The sliding-window ops' arithmetic, written once: conv2d and its two adjoints, max and average pooling and
// their adjoints, and the per-channel sum and repeat. Feature maps are stored as PyTorch's NCHW flattened
// (torch.flatten(x, 1)): a sample's row holds channel c, row y, column x at (c·H + y)·W + x; a conv weight
// [O, C/groups, kh, kw] is the row-major [O, C/groups·kh·kw].
//
// window_at(op, g, a, b, rows, e) is element e (flat, row-major) of the op's result, from its operands' whole
// buffers a and b (rows: the operands' row count, the batch). Every element is a sum in a fixed loop order, so
// each backend computes the same sums, one element per call, in parallel over e with no atomics:
//   the reference evaluator instantiates it in double, the CPU executor and its rendered C++ in float, and the
//   CUDA prelude embeds this very text (KILN_WINDOW_SOURCE stringified, kiln/cuda/render/prelude.hpp) as
//   __device__ functions. Hence plain C-like C++ here: no std::, no #include, no preprocessor lines inside.
//
// The math, for output position (i, j) of an OH×OW map, kernel offset (a, b), stride s, padding p, dilation d:
// the input position read is (i·sh − ph + a·dh, j·sw − pw + b·dw); a position outside the map is a zero
// (conv, average) or absent (max).
// The same table holds the axis ops (permute, crop, pad, broadcast, sums and maxima over axes: ops/axes_math.hpp),
// whose geometry is the member `ax`; kiln_window_at dispatches to them by code.
//   conv2d      y[n, o, i, j]  = Σ_{ci < C/G, a, b} x[n, g·C/G + ci, ·, ·] · w[o, ci, a, b]   (g = o / (O/G))
//   conv2d_dx   gx[n, c, y, x] = Σ_{o in c's group, a, b : y + ph − a·dh = i·sh, 0 ≤ i < OH, …} gy[n, o, i, j] · w[o, ci, a, b]
//   conv2d_dw   gw[o, ci, a, b] = Σ_n Σ_{i, j} gy[n, o, i, j] · x[n, g·C/G + ci, ·, ·]
//   max_pool2d  y = the first maximum of the window in scan order (a NaN wins: PyTorch's rule), its adjoint
//               goes to that one position
//   avg_pool2d  y = Σ window / (kh·kw) (PyTorch's count_include_pad: padding counts as zeros)
//   channel_sum y[n, c] = Σ_l x[n, c·L + l], L = H·W;  channel_repeat y[n, c·L + l] = x[n, c]

#include <kiln/ops/axes_math.hpp>

#define KILN_WINDOW_SOURCE(FN)                                                                                  \
  KILN_AXES_SOURCE(FN)                                                                                       \
  /* The geometry of a window op: input map C×H×W, output channels O, kernel, stride, padding, dilation,   */  \
  /* groups. One aggregate, so a renderer writes it as a literal: kiln_window{C, H, W, O, kh, kw, …}.       */  \
  struct kiln_window {                                                                                       \
    int c = 1, h = 1, w = 1, o = 1, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1; \
    kiln_axes ax{}; /* the axis ops' geometry (ops/axes_math.hpp); default for the window ops */             \
    FN int oh() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }                                  \
    FN int ow() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }                                  \
    FN long long in_size() const { return (long long)c * h * w; }                                           \
    FN long long out_size() const { return (long long)o * oh() * ow(); }                                    \
  };                                                                                                         \
  enum kiln_window_op { kiln_conv2d, kiln_conv2d_dx, kiln_conv2d_dw, kiln_max_pool2d, kiln_max_pool2d_dx,    \
                        kiln_avg_pool2d, kiln_avg_pool2d_dx, kiln_channel_sum, kiln_channel_repeat };        \
                                                                                                             \
  /* y[n, o, i, j] of conv2d; x: sample n's input, e: the element within its output */                       \
  template <class T>                                                                                         \
  FN T kiln_conv2d_at(const kiln_window& g, const T* x, const T* wt, long long e) {                          \
    const int L = g.oh() * g.ow(), cg = g.c / g.groups, og = g.o / g.groups;                                 \
    const int o = (int)(e / L), p = (int)(e % L), i = p / g.ow(), j = p % g.ow();                            \
    const T* xg = x + (long long)(o / og) * cg * g.h * g.w;                                                  \
    T s = 0;                                                                                                 \
    for (int ci = 0; ci < cg; ++ci)                                                                          \
      for (int a = 0; a < g.kh; ++a) {                                                                       \
        const int y = i * g.sh - g.ph + a * g.dh;                                                            \
        if (y < 0 || y >= g.h) continue;                                                                     \
        for (int b = 0; b < g.kw; ++b) {                                                                     \
          const int xx = j * g.sw - g.pw + b * g.dw;                                                         \
          if (xx < 0 || xx >= g.w) continue;                                                                 \
          s += xg[((long long)ci * g.h + y) * g.w + xx] * wt[(((long long)o * cg + ci) * g.kh + a) * g.kw + b]; \
        }                                                                                                    \
      }                                                                                                      \
    return s;                                                                                                \
  }                                                                                                          \
  /* The output row i and kernel offset a that read input row y: y + p − a·d = i·s with 0 ≤ i < n. */        \
  FN bool kiln_window_hit(int y, int a, int s, int p, int d, int n, int& i) {                                \
    const int t = y + p - a * d;                                                                             \
    if (t < 0 || t % s != 0) return false;                                                                   \
    i = t / s;                                                                                               \
    return i < n;                                                                                            \
  }                                                                                                          \
  /* gx[n, c, y, x] of conv2d's input adjoint; gy: sample n's output adjoint */                              \
  template <class T>                                                                                         \
  FN T kiln_conv2d_dx_at(const kiln_window& g, const T* gy, const T* wt, long long e) {                      \
    const int cg = g.c / g.groups, og = g.o / g.groups, OH = g.oh(), OW = g.ow();                            \
    const int c = (int)(e / ((long long)g.h * g.w)), q = (int)(e % ((long long)g.h * g.w));                  \
    const int y = q / g.w, x = q % g.w, grp = c / cg, ci = c % cg;                                           \
    T s = 0;                                                                                                 \
    for (int o = grp * og; o < (grp + 1) * og; ++o)                                                          \
      for (int a = 0; a < g.kh; ++a) {                                                                       \
        int i = 0;                                                                                           \
        if (!kiln_window_hit(y, a, g.sh, g.ph, g.dh, OH, i)) continue;                                       \
        for (int b = 0; b < g.kw; ++b) {                                                                     \
          int j = 0;                                                                                         \
          if (!kiln_window_hit(x, b, g.sw, g.pw, g.dw, OW, j)) continue;                                     \
          s += gy[((long long)o * OH + i) * OW + j] * wt[(((long long)o * cg + ci) * g.kh + a) * g.kw + b];  \
        }                                                                                                    \
      }                                                                                                      \
    return s;                                                                                                \
  }                                                                                                          \
  /* gw[o, ci, a, b] of conv2d's weight adjoint, summed over the rows samples in order */                    \
  template <class T>                                                                                         \
  FN T kiln_conv2d_dw_at(const kiln_window& g, const T* x, const T* gy, long long rows, long long e) {       \
    const int cg = g.c / g.groups, og = g.o / g.groups, OH = g.oh(), OW = g.ow();                            \
    const int b = (int)(e % g.kw), a = (int)(e / g.kw % g.kh), ci = (int)(e / ((long long)g.kw * g.kh) % cg); \
    const int o = (int)(e / ((long long)g.kw * g.kh * cg)), c = (o / og) * cg + ci;                          \
    const long long in_row = g.in_size(), out_row = (long long)g.o * OH * OW;                                \
    T s = 0;                                                                                                 \
    for (long long n = 0; n < rows; ++n)                                                                     \
      for (int i = 0; i < OH; ++i) {                                                                         \
        const int y = i * g.sh - g.ph + a * g.dh;                                                            \
        if (y < 0 || y >= g.h) continue;                                                                     \
        const T* xr = x + n * in_row + ((long long)c * g.h + y) * g.w;                                       \
        const T* gr = gy + n * out_row + ((long long)o * OH + i) * OW;                                       \
        for (int j = 0; j < OW; ++j) {                                                                       \
          const int xx = j * g.sw - g.pw + b * g.dw;                                                         \
          if (xx < 0 || xx >= g.w) continue;                                                                 \
          s += gr[j] * xr[xx];                                                                               \
        }                                                                                                    \
      }                                                                                                      \
    return s;                                                                                                \
  }                                                                                                          \
  /* The position (within the channel's map) of the maximum of window (i, j) of map m: the first maximum in */ \
  /* scan order, a NaN taking over (PyTorch's rule); −1 for an empty window (impossible when p ≤ k/2). */     \
  /* Without padding every window lies inside the map (oh, ow are computed so), so the bounds are checked */  \
  /* only with padding: with a constant window the checks then vanish. */                                     \
  template <class T>                                                                                         \
  FN int kiln_window_argmax(const kiln_window& g, const T* m, int i, int j) {                                \
    int best = -1;                                                                                           \
    T v = 0;                                                                                                 \
    const bool padded = g.ph != 0 || g.pw != 0;                                                              \
    for (int a = 0; a < g.kh; ++a) {                                                                         \
      const int y = i * g.sh - g.ph + a * g.dh;                                                              \
      if (padded && (y < 0 || y >= g.h)) continue;                                                           \
      for (int b = 0; b < g.kw; ++b) {                                                                       \
        const int xx = j * g.sw - g.pw + b * g.dw;                                                           \
        if (padded && (xx < 0 || xx >= g.w)) continue;                                                       \
        const T u = m[y * g.w + xx];                                                                         \
        if (best < 0 || u > v || u != u) { best = y * g.w + xx; v = u; }                                     \
      }                                                                                                      \
    }                                                                                                        \
    return best;                                                                                             \
  }                                                                                                          \
  template <class T>                                                                                         \
  FN T kiln_max_pool2d_at(const kiln_window& g, const T* x, long long e) {                                   \
    const int L = g.oh() * g.ow(), c = (int)(e / L), p = (int)(e % L);                                       \
    const T* m = x + (long long)c * g.h * g.w;                                                               \
    const int at = kiln_window_argmax(g, m, p / g.ow(), p % g.ow());                                         \
    return at < 0 ? (T)0 : m[at];                                                                            \
  }                                                                                                          \
  /* gx[n, c, y, x]: the adjoints of the windows whose maximum is at (y, x), in window order */              \
  template <class T>                                                                                         \
  FN T kiln_max_pool2d_dx_at(const kiln_window& g, const T* x, const T* gy, long long e) {                   \
    const int OH = g.oh(), OW = g.ow();                                                                      \
    const int c = (int)(e / ((long long)g.h * g.w)), q = (int)(e % ((long long)g.h * g.w));                  \
    const int y = q / g.w, xx = q % g.w;                                                                     \
    const T* m = x + (long long)c * g.h * g.w;                                                               \
    T s = 0;                                                                                                 \
    for (int a = 0; a < g.kh; ++a) {                                                                         \
      int i = 0;                                                                                             \
      if (!kiln_window_hit(y, a, g.sh, g.ph, g.dh, OH, i)) continue;                                         \
      for (int b = 0; b < g.kw; ++b) {                                                                       \
        int j = 0;                                                                                           \
        if (!kiln_window_hit(xx, b, g.sw, g.pw, g.dw, OW, j)) continue;                                      \
        if (kiln_window_argmax(g, m, i, j) == q) s += gy[((long long)c * OH + i) * OW + j];                  \
      }                                                                                                      \
    }                                                                                                        \
    return s;                                                                                                \
  }                                                                                                          \
  template <class T>                                                                                         \
  FN T kiln_avg_pool2d_at(const kiln_window& g, const T* x, long long e) {                                   \
    const int L = g.oh() * g.ow(), c = (int)(e / L), p = (int)(e % L), i = p / g.ow(), j = p % g.ow();       \
    const T* m = x + (long long)c * g.h * g.w;                                                               \
    T s = 0;                                                                                                 \
    for (int a = 0; a < g.kh; ++a) {                                                                         \
      const int y = i * g.sh - g.ph + a;                                                                     \
      if (y < 0 || y >= g.h) continue;                                                                       \
      for (int b = 0; b < g.kw; ++b) {                                                                       \
        const int xx = j * g.sw - g.pw + b;                                                                  \
        if (xx >= 0 && xx < g.w) s += m[y * g.w + xx];                                                       \
      }                                                                                                      \
    }                                                                                                        \
    return s / (T)(g.kh * g.kw);                                                                             \
  }                                                                                                          \
  template <class T>                                                                                         \
  FN T kiln_avg_pool2d_dx_at(const kiln_window& g, const T* gy, long long e) {                               \
    const int OH = g.oh(), OW = g.ow();                                                                      \
    const int c = (int)(e / ((long long)g.h * g.w)), q = (int)(e % ((long long)g.h * g.w));                  \
    const int y = q / g.w, xx = q % g.w;                                                                     \
    T s = 0;                                                                                                 \
    for (int a = 0; a < g.kh; ++a) {                                                                         \
      int i = 0;                                                                                             \
      if (!kiln_window_hit(y, a, g.sh, g.ph, 1, OH, i)) continue;                                            \
      for (int b = 0; b < g.kw; ++b) {                                                                       \
        int j = 0;                                                                                           \
        if (kiln_window_hit(xx, b, g.sw, g.pw, 1, OW, j)) s += gy[((long long)c * OH + i) * OW + j];         \
      }                                                                                                      \
    }                                                                                                        \
    return s / (T)(g.kh * g.kw);                                                                             \
  }                                                                                                          \
                                                                                                             \
  /* Element e of the result of window op `op` on operand buffers a, b of `rows` rows. */                    \
  template <class T>                                                                                         \
  FN T kiln_window_at(int op, const kiln_window& g, const T* a, const T* b, long long rows, long long e) {   \
    if (op >= kiln_permute) return kiln_axes_at(op, g.ax, a, b, e);                                          \
    const long long L = (long long)g.h * g.w;                                                                \
    switch (op) {                                                                                            \
      case kiln_conv2d: return kiln_conv2d_at(g, a + e / g.out_size() * g.in_size(), b, e % g.out_size());   \
      case kiln_conv2d_dx: return kiln_conv2d_dx_at(g, a + e / g.in_size() * g.out_size(), b, e % g.in_size()); \
      case kiln_conv2d_dw: return kiln_conv2d_dw_at(g, a, b, rows, e);                                       \
      case kiln_max_pool2d: return kiln_max_pool2d_at(g, a + e / g.out_size() * g.in_size(), e % g.out_size()); \
      case kiln_max_pool2d_dx: {                                                                             \
        const long long n = e / g.in_size();                                                                 \
        return kiln_max_pool2d_dx_at(g, a + n * g.in_size(), b + n * g.out_size(), e % g.in_size());         \
      }                                                                                                      \
      case kiln_avg_pool2d: return kiln_avg_pool2d_at(g, a + e / g.out_size() * g.in_size(), e % g.out_size()); \
      case kiln_avg_pool2d_dx: return kiln_avg_pool2d_dx_at(g, a + e / g.in_size() * g.out_size(), e % g.in_size()); \
      case kiln_channel_sum: {                                                                               \
        T s = 0;                                                                                             \
        for (long long l = 0; l < L; ++l) s += a[e * L + l];                                                 \
        return s;                                                                                            \
      }                                                                                                      \
      default: return a[e / L]; /* kiln_channel_repeat */                                                    \
    }                                                                                                        \
  }

#define KILN_WINDOW_STRINGIFY(...) #__VA_ARGS__
#define KILN_WINDOW_TEXT(...) KILN_WINDOW_STRINGIFY(__VA_ARGS__)

namespace kiln::window_math {
KILN_WINDOW_SOURCE(constexpr inline)
}  // namespace kiln::window_math

namespace kiln::window_math {
constexpr bool operator==(const kiln_axes& a, const kiln_axes& b) {
  if (a.rank != b.rank) return false;
  for (int k = 0; k < 8; ++k)
    if (a.in[k] != b.in[k] || a.out[k] != b.out[k] || a.perm[k] != b.perm[k] || a.begin[k] != b.begin[k]) return false;
  return true;
}
constexpr bool operator==(const kiln_window& a, const kiln_window& b) {
  return a.c == b.c && a.h == b.h && a.w == b.w && a.o == b.o && a.kh == b.kh && a.kw == b.kw && a.sh == b.sh &&
         a.sw == b.sw && a.ph == b.ph && a.pw == b.pw && a.dh == b.dh && a.dw == b.dw && a.groups == b.groups &&
         a.ax == b.ax;
}
}  // namespace kiln::window_math

namespace kiln {
using window = window_math::kiln_window;
using axes_geometry = window_math::kiln_axes;
}  // namespace kiln
