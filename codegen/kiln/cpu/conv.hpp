#pragma once
// The CPU's convolutions as matrix products (im2col + GEMM), per sample and per group g of the window:
//   cols [K, L] = the sample's input patches, K = C/G·kh·kw rows (ci, a, b), L = OH·OW columns (i, j):
//                 cols[(ci·kh + a)·kw + b, i·OW + j] = x[g·C/G + ci, i·sh − ph + a·dh, j·sw − pw + b·dw] (0 outside)
//   conv2d      y_g [O/G, L]   = w_g [O/G, K] · cols
//   conv2d_dx   dcols [K, L]   = w_gᵀ · gy_g, then each patch element added back where it was read (col2im,
//               in a fixed order)
//   conv2d_dw   gw_g [O/G, K]  = Σ_n gy_{n,g} · cols_nᵀ: each thread sums its samples' products into its own
//               partial, and the partials are added in thread order (the same result for the same thread count)
// The products are the ones ops/window_math.hpp defines element by element (which the reference, the CUDA
// kernels and the rendered C++ evaluate), summed in another order: the tests hold them to float tolerance.
// Per-thread scratch grows to the largest window seen and is then reused: steady-state steps do not allocate.
#include <kiln/cpu/gemm.hpp>
#include <kiln/ops/window_math.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

namespace kiln::cpu::conv {

struct sizes {
  long cg, og, K, L, in_row, out_row;
};
inline sizes sizes_of(const window& w) {
  const long cg = w.c / w.groups, og = w.o / w.groups;
  return {cg, og, cg * w.kh * w.kw, static_cast<long>(w.oh()) * w.ow(), w.in_size(), w.out_size()};
}

// This thread's scratch of at least n floats.
inline float* scratch(std::size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// cols [K, L] of group g of one sample x [C, H, W].
inline void im2col(const window& w, const float* x, long g, float* cols) {
  const sizes s = sizes_of(w);
  const int OH = w.oh(), OW = w.ow();
  for (long ci = 0; ci < s.cg; ++ci) {
    const float* m = x + (g * s.cg + ci) * w.h * w.w;
    for (int a = 0; a < w.kh; ++a)
      for (int b = 0; b < w.kw; ++b) {
        float* row = cols + ((ci * w.kh + a) * w.kw + b) * s.L;
        for (int i = 0; i < OH; ++i) {
          const int y = i * w.sh - w.ph + a * w.dh;
          float* out = row + static_cast<long>(i) * OW;
          if (y < 0 || y >= w.h) { std::fill_n(out, OW, 0.0f); continue; }
          const float* in = m + static_cast<long>(y) * w.w;
          for (int j = 0; j < OW; ++j) {
            const int xx = j * w.sw - w.pw + b * w.dw;
            out[j] = xx >= 0 && xx < w.w ? in[xx] : 0.0f;
          }
        }
      }
  }
}

// gx (one sample, [C, H, W]) += the patches dcols [K, L] of group g, at the positions im2col read them from.
inline void col2im_add(const window& w, const float* dcols, long g, float* gx) {
  const sizes s = sizes_of(w);
  const int OH = w.oh(), OW = w.ow();
  for (long ci = 0; ci < s.cg; ++ci) {
    float* m = gx + (g * s.cg + ci) * w.h * w.w;
    for (int a = 0; a < w.kh; ++a)
      for (int b = 0; b < w.kw; ++b) {
        const float* row = dcols + ((ci * w.kh + a) * w.kw + b) * s.L;
        for (int i = 0; i < OH; ++i) {
          const int y = i * w.sh - w.ph + a * w.dh;
          if (y < 0 || y >= w.h) continue;
          float* out = m + static_cast<long>(y) * w.w;
          const float* in = row + static_cast<long>(i) * OW;
          for (int j = 0; j < OW; ++j) {
            const int xx = j * w.sw - w.pw + b * w.dw;
            if (xx >= 0 && xx < w.w) out[xx] += in[j];
          }
        }
      }
  }
}

// y rows [n0, n1) = conv2d(x, wt).
inline void forward(const window& w, const float* x, const float* wt, float* y, long n0, long n1) {
  const sizes s = sizes_of(w);
  float* cols = scratch(static_cast<std::size_t>(s.K * s.L) + gemm_workspace_floats(s.og, s.L, s.K));
  float* ws = cols + s.K * s.L;
  for (long n = n0; n < n1; ++n)
    for (long g = 0; g < w.groups; ++g) {
      im2col(w, x + n * s.in_row, g, cols);
      gemm(s.og, s.L, s.K, matrix_view{wt + g * s.og * s.K, s.K, 1}, matrix_view{cols, s.L, 1},
           y + n * s.out_row + g * s.og * s.L, s.L, false, ws);
    }
}

// gx rows [n0, n1) = conv2d_dx(gy, wt).
// The weight is transposed once per call ([K, O/G] per group, row-major), so the products read it in place
// instead of packing a transposed view for every sample.
inline void input_adjoint(const window& w, const float* gy, const float* wt, float* gx, long n0, long n1) {
  const sizes s = sizes_of(w);
  float* dcols = scratch(static_cast<std::size_t>(s.K * s.L + w.o * s.K) + gemm_workspace_floats(s.K, s.L, s.og));
  float* wt_t = dcols + s.K * s.L;
  float* ws = wt_t + w.o * s.K;
  for (long g = 0; g < w.groups; ++g)
    for (long o = 0; o < s.og; ++o)
      for (long k = 0; k < s.K; ++k) wt_t[(g * s.K + k) * s.og + o] = wt[(g * s.og + o) * s.K + k];
  for (long n = n0; n < n1; ++n) {
    float* out = gx + n * s.in_row;
    std::fill_n(out, s.in_row, 0.0f);
    for (long g = 0; g < w.groups; ++g) {
      gemm(s.K, s.L, s.og, matrix_view{wt_t + g * s.K * s.og, s.og, 1}, matrix_view{gy + n * s.out_row + g * s.og * s.L, s.L, 1},
           dcols, s.L, false, ws);
      col2im_add(w, dcols, g, out);
    }
  }
}

// partial [O, K] (+)= Σ over rows [n0, n1) of gy_n · cols_nᵀ, per group.
inline void weight_adjoint(const window& w, const float* x, const float* gy, float* partial, long n0, long n1) {
  const sizes s = sizes_of(w);
  float* cols = scratch(static_cast<std::size_t>(s.K * s.L) + gemm_workspace_floats(s.og, s.K, s.L));
  float* ws = cols + s.K * s.L;
  std::fill_n(partial, w.o * s.K, 0.0f);
  for (long n = n0; n < n1; ++n)
    for (long g = 0; g < w.groups; ++g) {
      im2col(w, x + n * s.in_row, g, cols);
      gemm(s.og, s.K, s.L, matrix_view{gy + n * s.out_row + g * s.og * s.L, s.L, 1}, matrix_view{cols, 1, s.L},
           partial + g * s.og * s.K, s.K, true, ws);
    }
}

}  // namespace kiln::cpu::conv
