#pragma once
// The CPU's convolutions as matrix products (im2col + GEMM), per group g of the window and per block of nb
// samples side by side (so that one product covers nb·L columns: long enough for the GEMM's register tiles):
//   cols [K, nb·L] = the samples' input patches, K = C/G·kh·kw rows (ci, a, b), L = OH·OW columns (i, j) per sample:
//                 cols[(ci·kh + a)·kw + b, t·L + i·OW + j] = x_t[g·C/G + ci, i·sh − ph + a·dh, j·sw − pw + b·dw] (0 outside)
//   conv2d      y [O/G, nb·L]  = w_g [O/G, K] · cols, then copied to each sample's NCHW row (in place when nb = 1);
//               cols is written row by row straight into the product's packed layout (gemm_pack_b_row), from
//               zero-padded copies of the samples, so that it is never written once and then packed again
//   conv2d_dx   dcols [K, nb·L] = w_gᵀ · gy_g (the samples' adjoints side by side), then each patch element added
//               back where it was read (col2im, in a fixed order)
//   conv2d_dw   gw_g [O/G, K]  = Σ over blocks of gy_g · colsᵀ: each thread sums its samples' products into its own
//               partial, and the partials are added in thread order (the same result for the same thread count)
// The products are the ones ops/window_math.hpp defines element by element (which the reference, the CUDA
// kernels and the rendered C++ evaluate), summed in another order: the tests hold them to float tolerance.
// Nothing here allocates: each call works in the caller's scratch of scratch_floats(code, window) floats (the
// program's per-thread workspace), so that no step, the first one on a thread included, grows memory.
// `products` (bf16_path::fp32 by default) makes the products BF16 operands with FP32 sums (gemm_bf16.hpp), as
// a step in mixed precision asks.
#include <kiln/cpu/gemm.hpp>
#include <kiln/cpu/gemm_bf16.hpp>
#include <kiln/ops/window_math.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdlib>

namespace kiln::cpu::conv {

struct sizes {
  long cg, og, K, L, in_row, out_row, block;
};
// block: samples per product, so that a block's patches take about 1 MiB (up to 64 samples). A map of at least
// direct_columns outputs is wide enough for the GEMM's register tiles by itself: one sample per product, whose
// rows the products then read and write in place (no copy to or from side-by-side rows).
inline constexpr long direct_columns = 256;
constexpr sizes sizes_of(const window& w) {
  const long cg = w.c / w.groups, og = w.o / w.groups, K = cg * w.kh * w.kw, L = static_cast<long>(w.oh()) * w.ow();
  const long block = L >= direct_columns ? 1 : std::clamp((1L << 18) / (K * L), 1L, 64L);
  return {cg, og, K, L, w.in_size(), w.out_size(), block};
}

// The forward's zero-padded copies of a block's input maps (one group's channels per sample): rows × cols floats a
// map, H + 2·ph rows of W + 2·pw, and `floats` for the whole block, with a vector of slack after the last map
// (a patch row's copy reads whole vectors past its last column).
struct padded_maps {
  long rows, cols, map, floats;
};
inline padded_maps padded_maps_of(const window& w, const sizes& s) {
  const long rows = w.h + 2L * w.ph, cols = w.w + 2L * w.pw;
  return {rows, cols, rows * cols, s.block * s.cg * rows * cols + lanes};
}
// A patch row (the floats one kernel element of one map reads) and the end of the block's row of them: lanes of
// slack, written by the vector copies past a map's last output.
inline long patch_row_floats(const sizes& s) { return gemm_detail::round_up(s.block * s.L + lanes, 16); }
inline constexpr long row_lag = 2, row_buffers = row_lag + 1;

// Whether weight_adjoint keeps a vector of partial sums per (output channel, patch element), for a patch narrower
// than a vector (see narrow_detail below), and the floats of those vectors.
constexpr bool narrow_patch(const sizes& s) { return s.K < lanes; }
inline long narrow_accumulator_floats(const window& w, const sizes& s) { return narrow_patch(s) ? w.o * s.K * lanes + 16 : 0; }
// The patch rows weight_adjoint holds at a time in FP32: a few rows of a block's patches are built and then
// multiplied while they are in cache, rather than all K rows written out and read back (the product's register
// tiles take mr rows; 8, 16 and 32 rows measured alike); a narrow patch's K rows all at once.
inline constexpr long weight_patch_chunk = 16;
inline long weight_patch_rows(const sizes& s) { return narrow_patch(s) ? s.K : std::min(s.K, weight_patch_chunk); }

inline bool is_flat_shift(const window& w);
inline long flat_slack(const window& w);

// The scratch floats one call of forward (code kiln_conv2d), input_adjoint (kiln_conv2d_dx) or weight_adjoint
// (kiln_conv2d_dw) needs: a block's patches and group rows, the transposed weight (input_adjoint) and the
// GEMM's workspace (FP32's or BF16's, whichever is larger).
inline std::size_t scratch_floats(int code, const window& w) {
  const sizes s = sizes_of(w);
  const long N = s.block * s.L;
  const auto patches = static_cast<std::size_t>((s.K + s.og) * N);
  if (code == window_math::kiln_conv2d) {
    const std::size_t bf16 = patches + gemm_bf16_workspace_floats(s.og, N, s.K);
    const std::size_t fp32 = gemm_packed_b_floats(N, s.K) + static_cast<std::size_t>(s.og * N + row_buffers * patch_row_floats(s) +
                                                                                       padded_maps_of(w, s).floats) + 3 * 16;
    return std::max(bf16, fp32);
  }
  if (code == window_math::kiln_conv2d_dx)
    return patches + static_cast<std::size_t>(w.o * s.K + (is_flat_shift(w) ? 2 * flat_slack(w) : 0)) + gemm_bf16_workspace_floats(s.K, N, s.og);
  const std::size_t bf16 = patches + gemm_bf16_workspace_floats(s.og, s.K, N);
  const std::size_t fp32 = static_cast<std::size_t>(weight_patch_rows(s) * N + lanes + s.og * N + s.K * w.o + padded_maps_of(w, s).floats +
                                                    narrow_accumulator_floats(w, s)) +
                           gemm_packed_b_floats(s.og, N) + 5 * 16;
  return std::max(bf16, fp32);
}

// The output positions j (columns, or rows) whose input position j·s − p + b·d lies inside [0, n): [lo, hi),
// with that position at j·s + offset. Computed once per kernel column (row) b, so that the patch loops below run
// without a bounds test per element, and with stride 1 a patch row is one contiguous copy between zero borders.
struct window_run {
  int lo, hi, offset;
};
inline window_run window_run_of(int b, int s, int p, int d, int n, int out) {
  const int offset = b * d - p;
  // lo = ⌈−offset / s⌉ clamped at 0; hi = ⌊(n − 1 − offset) / s⌋ + 1 clamped to [lo, out]
  const int lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const int last = n - 1 - offset;
  const int hi = last < 0 ? 0 : std::min(out, last / s + 1);
  return {std::min(lo, out), std::max(std::min(lo, out), hi), offset};
}

// A stride-1 window whose output rows are as wide as its input rows (a "same" convolution: 3×3 with padding 1, …)
// shifts the whole map by one offset per kernel element: patch element (i, j) is map element i·W + j + shift. One
// flat copy (or add) per kernel element then replaces a short one per output row; the columns that wrapped around
// into a neighbouring row are the padding columns, which im2col zeroes after its copy and col2im_add zeroes in
// dcols before its add (they are the padding's adjoints, which nothing reads).
inline bool is_flat_shift(const window& w) { return w.sh == 1 && w.sw == 1 && w.ow() == w.w; }
// The flat path's span for one kernel element (rows, cols: its valid output rows and columns, both non-empty):
// patch elements [first, end) are map elements [first + shift, end + shift).
struct flat_span {
  long first, end, shift;
};
inline flat_span flat_span_of(const window& w, const window_run& rows, const window_run& cols) {
  const long OW = w.ow();
  return {rows.lo * OW + cols.lo, (rows.hi - 1) * OW + cols.hi, static_cast<long>(rows.offset) * w.w + cols.offset};
}
// Zeroes the columns outside [cols.lo, cols.hi) of the patch rows [rows.lo, rows.hi) of one kernel element: the
// ones a flat shift wrapped around into a neighbouring map row.
inline void zero_wrapped_columns(float* patch_row, const window& w, const window_run& rows, const window_run& cols) {
  const long OW = w.ow();
  for (long i = rows.lo; i < rows.hi; ++i) {
    std::fill_n(patch_row + i * OW, cols.lo, 0.0f);
    std::fill(patch_row + i * OW + cols.hi, patch_row + (i + 1) * OW, 0.0f);
  }
}

// cols (K rows, ld floats apart) ← the patches of group g of one sample x [C, H, W], L columns from cols.
inline void im2col(const window& w, const sizes& s, const float* x, long g, float* cols, long ld) {
  const int OH = w.oh(), OW = w.ow();
  const bool flat = is_flat_shift(w);
  for (long ci = 0; ci < s.cg; ++ci) {
    const float* m = x + (g * s.cg + ci) * w.h * w.w;
    for (int a = 0; a < w.kh; ++a) {
      const window_run rows = window_run_of(a, w.sh, w.ph, w.dh, w.h, OH);
      for (int b = 0; b < w.kw; ++b) {
        float* row = cols + ((ci * w.kh + a) * w.kw + b) * ld;
        const window_run r = window_run_of(b, w.sw, w.pw, w.dw, w.w, OW);
        std::fill_n(row, static_cast<long>(rows.lo) * OW, 0.0f);
        std::fill(row + static_cast<long>(rows.hi) * OW, row + s.L, 0.0f);
        if (rows.hi == rows.lo) continue;
        if (flat && r.hi > r.lo) {
          const flat_span f = flat_span_of(w, rows, r);
          std::copy(m + f.first + f.shift, m + f.end + f.shift, row + f.first);
          zero_wrapped_columns(row, w, rows, r);
          continue;
        }
        for (int i = rows.lo; i < rows.hi; ++i) {
          const float* in = m + static_cast<long>(i * w.sh + rows.offset) * w.w;
          float* out = row + static_cast<long>(i) * OW;
          std::fill_n(out, r.lo, 0.0f);
          if (w.sw == 1) {
            if (r.hi > r.lo) std::copy_n(in + (r.lo + r.offset), r.hi - r.lo, out + r.lo);
          } else
            for (int j = r.lo; j < r.hi; ++j) out[j] = in[j * w.sw + r.offset];
          std::fill(out + r.hi, out + OW, 0.0f);
        }
      }
    }
  }
}

// The padded copies (padded_maps_of) of group g of samples x_0 … x_{m−1} (in_row floats apart): interiors only,
// the borders being zero since the caller cleared the buffer.
inline void pad_samples(const window& w, const sizes& s, const padded_maps& p, const float* x, long m, long g, float* padded) {
  for (long t = 0; t < m; ++t)
    for (long ci = 0; ci < s.cg; ++ci) {
      const float* map = x + t * s.in_row + (g * s.cg + ci) * w.h * w.w;
      float* dst = padded + (t * s.cg + ci) * p.map + w.ph * p.cols + w.pw;
      for (int r = 0; r < w.h; ++r) {
        const float* in = map + static_cast<long>(r) * w.w;
        float* out = dst + r * p.cols;
        int j = 0;
        for (; j + lanes <= w.w; j += lanes) store(out + j, load(in + j));
        if (j < w.w) store_partial(out + j, load_partial(in + j, w.w - j), w.w - j);
      }
    }
}

// Row k = (ci·kh + a)·kw + b of the patches of m samples side by side, from their padded copies: row[t·L + i·OW + j]
// = padded_t[ci, i·sh + a·dh, j·sw + b·dw]. With stride 1 each output row is a run of whole-vector copies; the last
// one writes past the run's end, into the next run (written after it) or the row's slack.
inline void patch_row(const window& w, const sizes& s, const padded_maps& p, const float* padded, long m, long k, float* row) {
  const long ci = k / (w.kh * w.kw);
  const int a = static_cast<int>(k / w.kw % w.kh), b = static_cast<int>(k % w.kw);
  const long OH = w.oh(), OW = w.ow(), L = s.L, in_step = w.sh * p.cols, sw = w.sw, map_floats = s.cg * p.map;
  const float* map = padded + ci * p.map + static_cast<long>(a) * w.dh * p.cols + static_cast<long>(b) * w.dw;
  if (sw == 1 && OW <= lanes) {  // a map narrower than a vector (14×14 after a 2×2 pool): one copy per output row
    for (long t = 0; t < m; ++t, map += map_floats, row += L)
      for (long i = 0; i < OH; ++i) store(row + i * OW, load(map + i * in_step));
    return;
  }
  for (long t = 0; t < m; ++t, map += map_floats, row += L) {
    float* out = row;
    for (long i = 0; i < OH; ++i, out += OW) {
      const float* in = map + i * in_step;
      if (sw == 1)
        for (long j = 0; j < OW; j += lanes) store(out + j, load(in + j));
      else
        for (long j = 0; j < OW; ++j) out[j] = in[j * sw];
    }
  }
}

// gx (one sample, [C, H, W]) += the patches of group g in dcols (K rows, ld floats apart), where im2col read them.
// dcols is scratch: the flat path zeroes its padding columns first.
inline void col2im_add(const window& w, const sizes& s, float* dcols, long ld, long g, float* gx) {
  const int OH = w.oh(), OW = w.ow();
  const bool flat = is_flat_shift(w);
  for (long ci = 0; ci < s.cg; ++ci) {
    float* m = gx + (g * s.cg + ci) * w.h * w.w;
    for (int a = 0; a < w.kh; ++a) {
      const window_run rows = window_run_of(a, w.sh, w.ph, w.dh, w.h, OH);
      if (rows.hi == rows.lo) continue;
      for (int b = 0; b < w.kw; ++b) {
        float* row = dcols + ((ci * w.kh + a) * w.kw + b) * ld;
        const window_run r = window_run_of(b, w.sw, w.pw, w.dw, w.w, OW);
        if (r.hi == r.lo) continue;
        if (flat) {
          zero_wrapped_columns(row, w, rows, r);
          const flat_span f = flat_span_of(w, rows, r);
          float* __restrict out = m + f.first + f.shift;
          const float* __restrict in = row + f.first;
          for (long j = 0; j < f.end - f.first; ++j) out[j] += in[j];
          continue;
        }
        for (int i = rows.lo; i < rows.hi; ++i) {
          float* out = m + static_cast<long>(i * w.sh + rows.offset) * w.w;
          const float* __restrict in = row + static_cast<long>(i) * OW;
          if (w.sw == 1) {
            float* __restrict shifted = out + (r.lo + r.offset);
            for (int j = 0; j < r.hi - r.lo; ++j) shifted[j] += in[r.lo + j];
          } else
            for (int j = r.lo; j < r.hi; ++j) out[j * w.sw + r.offset] += in[j];
        }
      }
    }
  }
}

// col2im for a flat shift (is_flat_shift) in one pass: for each map element p = y·W + x of the channels of group g,
//   gx[ci, p] = Σ over taps (a, b), in col2im_add's order, of dcols[(ci·kh + a)·kw + b][p − shift_ab]
// where shift_ab = (a·dh − ph)·W + b·dw − pw, over the taps whose patch position lies in the output map: row
// y − (a·dh − ph) in [0, OH) and column x − (b·dw − pw) in [0, OW). The same sums in the same order as col2im_add
// (which adds tap by tap into a zeroed gx, the wrapped columns zeroed first: a skipped tap and an added +0 give the
// same bits), but each element is summed in a register and written once: col2im_add's kh·kw read-modify-writes of
// gx and its per-row zeroing took about a fifth of input_adjoint (perf, the CNN's second convolution). A tap's
// vector load spans up to flat_slack floats outside its row's sample; those lanes are masked off, and the caller
// leaves that much readable memory before and after dcols.
inline long flat_slack(const window& w) {
  const long rows = std::max<long>(w.ph, w.dh * (w.kh - 1) - w.ph) + std::abs(w.h - w.oh()) + 1;
  return rows * w.w + std::max(w.pw, w.dw * (w.kw - 1) - w.pw) + lanes;
}
inline void col2im_flat(const window& w, const sizes& s, const float* dcols, long ld, long g, float* gx) {
  const int W = w.w, HW = w.h * w.w;
  const vuint OH = vuint{} + static_cast<unsigned>(w.oh()), OW = vuint{} + static_cast<unsigned>(w.ow());
  // the map row y and column x of each lane, advanced by a vector of elements at a time
  vint y0{}, x0{};
  for (int l = 0; l < lanes; ++l) y0[l] = l / W, x0[l] = l % W;
  const int step_y = lanes / W, step_x = lanes % W;
  for (long ci = 0; ci < s.cg; ++ci) {
    const float* taps = dcols + ci * w.kh * w.kw * ld;
    float* m = gx + (g * s.cg + ci) * HW;
    vint y = y0, x = x0;
    for (int p = 0; p < HW; p += lanes) {
      vfloat acc = splat(0.0f);
      for (int a = 0; a < w.kh; ++a) {
        const int off_a = a * w.dh - w.ph;
        const vint row_in = (std::bit_cast<vuint>(y - off_a) < OH);
        for (int b = 0; b < w.kw; ++b) {
          const int off_b = b * w.dw - w.pw;
          const vint in = row_in & (std::bit_cast<vuint>(x - off_b) < OW);
          const float* tap = taps + (a * w.kw + b) * ld + p - (static_cast<long>(off_a) * W + off_b);
          acc += blend(in, load(tap), splat(0.0f));
        }
      }
      if (p + lanes <= HW) store(m + p, acc);
      else store_partial(m + p, acc, HW - p);
      x += step_x;
      y += step_y;
      const vint wrapped = x >= W;  // −1 where the column passed the row's end
      x -= wrapped & W;
      y -= wrapped;
    }
  }
}

// The rows of group g of samples [n, n + m) of an O·L map side by side: side [O/G, m·L] ↔ maps (NCHW rows).
inline void gather_group(const sizes& s, const float* maps, long n, long m, long g, float* side) {
  for (long o = 0; o < s.og; ++o)
    for (long t = 0; t < m; ++t) std::copy_n(maps + (n + t) * s.out_row + (g * s.og + o) * s.L, s.L, side + o * m * s.L + t * s.L);
}
inline void scatter_group(const sizes& s, const float* side, long n, long m, long g, float* maps, long o0 = 0, long o1 = -1) {
  for (long o = o0; o < (o1 < 0 ? s.og : o1); ++o)
    for (long t = 0; t < m; ++t) std::copy_n(side + o * m * s.L + t * s.L, s.L, maps + (n + t) * s.out_row + (g * s.og + o) * s.L);
}

// y rows [n0, n1) = conv2d(x, wt); scratch: scratch_floats(kiln_conv2d, w) floats. Only the output channels
// [o0, o1) of each group (all by default) are computed, so that threads can share one sample's channels; each
// such share builds the sample's patches itself.
inline void forward(const window& w, const float* x, const float* wt, float* y, long n0, long n1, float* scratch,
                    bf16_path products = bf16_path::fp32, long o0 = 0, long o1 = -1) {
  const sizes s = sizes_of(w);
  const long N = s.block * s.L;
  if (o1 < 0) o1 = s.og;
  if (o0 >= o1) return;
  if (products != bf16_path::fp32) {
    float* cols = scratch;
    float* side = cols + s.K * N;
    float* ws = side + s.og * N;
    for (long n = n0; n < n1; n += s.block) {
      const long m = std::min(s.block, n1 - n), ld = m * s.L;
      for (long g = 0; g < w.groups; ++g) {
        for (long t = 0; t < m; ++t) im2col(w, s, x + (n + t) * s.in_row, g, cols + t * s.L, ld);
        float* out = m == 1 ? y + n * s.out_row + g * s.og * s.L : side;  // one sample: its rows are the product's
        gemm_bf16(products, o1 - o0, ld, s.K, matrix_view{wt + (g * s.og + o0) * s.K, s.K, 1}, matrix_view{cols, ld, 1},
                  out + o0 * ld, ld, false, ws);
        if (m > 1) scatter_group(s, side, n, m, g, y, o0, o1);
      }
    }
    return;
  }
  const padded_maps p = padded_maps_of(w, s);
  float* packed = gemm_detail::align64(scratch);
  float* side = gemm_detail::align64(packed + gemm_packed_b_floats(N, s.K));
  float* row = gemm_detail::align64(side + s.og * N);
  const long row_floats = patch_row_floats(s);
  float* padded = row + row_buffers * row_floats;
  std::fill_n(padded, p.floats, 0.0f);
  for (long n = n0; n < n1; n += s.block) {
    const long m = std::min(s.block, n1 - n), ld = m * s.L;
    for (long g = 0; g < w.groups; ++g) {
      pad_samples(w, s, p, x + n * s.in_row, m, g, padded);
      // Row k is packed two rows after it was written: its vector copies overlap, and a load that spans two
      // stores still in flight waits for both to reach the cache.
      for (long k = 0; k < s.K + row_lag; ++k) {
        if (k < s.K) patch_row(w, s, p, padded, m, k, row + (k % row_buffers) * row_floats);
        if (k >= row_lag) gemm_pack_b_row(ld, s.K, k - row_lag, row + ((k - row_lag) % row_buffers) * row_floats, packed);
      }
      float* out = m == 1 ? y + n * s.out_row + g * s.og * s.L : side;  // one sample: its rows are the product's
      gemm_prepacked(o1 - o0, ld, s.K, matrix_view{wt + (g * s.og + o0) * s.K, s.K, 1}, packed, out + o0 * ld, ld, false);
      if (m > 1) scatter_group(s, side, n, m, g, y, o0, o1);
    }
  }
}

// gx rows [n0, n1) = conv2d_dx(gy, wt). The weight is transposed once per call ([K, O/G] per group, row-major),
// so the products read it in place instead of packing a transposed view for every block.
// scratch: scratch_floats(kiln_conv2d_dx, w) floats.
inline void input_adjoint(const window& w, const float* gy, const float* wt, float* gx, long n0, long n1, float* scratch,
                          bf16_path products = bf16_path::fp32) {
  const sizes s = sizes_of(w);
  const long N = s.block * s.L;
  const bool flat = is_flat_shift(w);
  const long slack = flat ? flat_slack(w) : 0;  // col2im_flat's reads around dcols
  float* dcols = scratch + slack;
  float* side = dcols + s.K * N + slack;
  float* wt_t = side + s.og * N;
  float* ws = wt_t + w.o * s.K;
  for (long g = 0; g < w.groups; ++g)
    for (long o = 0; o < s.og; ++o)
      for (long k = 0; k < s.K; ++k) wt_t[(g * s.K + k) * s.og + o] = wt[(g * s.og + o) * s.K + k];
  if (!flat) std::fill(gx + n0 * s.in_row, gx + n1 * s.in_row, 0.0f);  // col2im_flat writes every element
  for (long n = n0; n < n1; n += s.block) {
    const long m = std::min(s.block, n1 - n), ld = m * s.L;
    for (long g = 0; g < w.groups; ++g) {
      const matrix_view wg{wt_t + g * s.K * s.og, s.og, 1};
      if (products == bf16_path::fp32) {
        // gy's rows straight into the product's packed layout, one output channel at a time (a block's row of
        // them gathered in L1 first), rather than all side by side and then packed
        float* packed = gemm_detail::align64(ws);
        for (long o = 0; o < s.og; ++o) {
          const float* row = gy + n * s.out_row + (g * s.og + o) * s.L;
          if (m > 1) {
            for (long t = 0; t < m; ++t) std::copy_n(row + t * s.out_row, s.L, side + t * s.L);
            row = side;
          }
          gemm_pack_b_row(ld, s.og, o, row, packed);
        }
        gemm_prepacked(s.K, ld, s.og, wg, packed, dcols, ld, false);
      } else {
        const float* rows = m == 1 ? gy + n * s.out_row + g * s.og * s.L : side;
        if (m > 1) gather_group(s, gy, n, m, g, side);
        gemm_bf16(products, s.K, ld, s.og, wg, matrix_view{rows, ld, 1}, dcols, ld, false, ws);
      }
      for (long t = 0; t < m; ++t) {
        if (flat) col2im_flat(w, s, dcols + t * s.L, ld, g, gx + (n + t) * s.in_row);
        else col2im_add(w, s, dcols + t * s.L, ld, g, gx + (n + t) * s.in_row);
      }
    }
  }
}

// ---- the weight gradient of a patch narrower than a vector (K = C/G·kh·kw < lanes: a first layer's 3×3 taps of
// one channel). The transposed product of weight_adjoint would carry such a patch along the vector lanes, 9 of 16 in
// use, at one broadcast of gy per multiply-add. Instead every (o, k) keeps a vector of partial sums along the map,
//   acc[o, k] += gy_n[o, p : p + lanes) · patch_n[k, p : p + lanes)   for every sample n and column block p,
// summed across its lanes once per call: every lane busy, no broadcasts, and TO output channels share each patch
// load. Measured on a Xeon (family 6, model 167), the Fashion-MNIST CNN's first layer (1 → 32 channels, 3×3,
// 28×28), 32 samples on one thread: 210-232 µs as the transposed product, 147-150 µs this way, where the products
// wait on gy, read once (4×4 tiles of dot products, a horizontal sum per (o, k) and sample, were slower still).

namespace narrow_detail {
// The vectors acc[(o·KP + k)·lanes …] (TO channels) += rows[o·ld + p]·cols[k·ld + p] over columns p in [0, ld),
// lane by lane; reads past ld are masked.
template <int KP, int TO>
inline void tile(const float* rows, const float* cols, long ld, float* acc) {
  // Plain unrolled loops rather than lambdas: g++ 12 kept lambda-captured accumulators in registers but also
  // stored them to the stack on every column block.
  vfloat a[TO][KP];
#pragma GCC unroll 32
  for (int i = 0; i < TO * KP; ++i) a[i / KP][i % KP] = load(acc + i * lanes);
  const int tail = static_cast<int>(ld % lanes);
  for (long p = 0; p < ld; p += lanes) {
    const bool part = p + lanes > ld;
    vfloat g[TO];
#pragma GCC unroll 32
    for (int o = 0; o < TO; ++o) g[o] = part ? load_partial(rows + o * ld + p, tail) : load(rows + o * ld + p);
#pragma GCC unroll 32
    for (int k = 0; k < KP; ++k) {
      const vfloat c = part ? load_partial(cols + k * ld + p, tail) : load(cols + k * ld + p);
#pragma GCC unroll 32
      for (int o = 0; o < TO; ++o) a[o][k] = fma(g[o], c, a[o][k]);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < TO * KP; ++i) store(acc + i * lanes, a[i / KP][i % KP]);
}
// The og output channels of one group, TO at a time: as many as fit in the vector registers (32 with AVX-512, 16
// below) with their KP accumulators, their gy vector and a patch vector.
template <int KP>
inline void accumulate(const float* rows, const float* cols, long og, long ld, float* acc) {
  constexpr int registers = KILN_CPU_VECTOR_BITS == 512 ? 32 : 16;
  constexpr int TO = std::max(1, (registers - 1) / (KP + 1));
  long o = 0;
  for (; o + TO <= og; o += TO) tile<KP, TO>(rows + o * ld, cols, ld, acc + o * KP * lanes);
  for (; o < og; ++o) tile<KP, 1>(rows + o * ld, cols, ld, acc + o * KP * lanes);
}
template <int... P>
inline void accumulate_any(long K, const float* rows, const float* cols, long og, long ld, float* acc,
                           std::integer_sequence<int, P...>) {
  ((K == P + 1 ? accumulate<P + 1>(rows, cols, og, ld, acc) : void()), ...);
}
}  // namespace narrow_detail

// partial [O, K] = Σ over rows [n0, n1) of gy_n · cols_nᵀ, per group (add_to_partial: partial += that sum, for a
// caller that hands over its samples a few at a time); scratch: scratch_floats(kiln_conv2d_dw, w) floats.
// In FP32 the sum is computed transposed, partialᵀ [K, O/G] = Σ cols_n · gy_nᵀ, into scratch and then transposed
// once: the patches (cols, the larger operand) are read in place by the product's broadcasts, and only the
// output-channel rows gy_n are packed.
inline void weight_adjoint(const window& w, const float* x, const float* gy, float* partial, long n0, long n1, float* scratch,
                           bf16_path products = bf16_path::fp32, bool add_to_partial = false) {
  const sizes s = sizes_of(w);
  const long N = s.block * s.L;
  auto put = [&](long i, float v) { partial[i] = add_to_partial ? partial[i] + v : v; };
  if (products == bf16_path::fp32) {
    const padded_maps p = padded_maps_of(w, s);
    const long patch_rows = weight_patch_rows(s);
    float* cols = gemm_detail::align64(scratch);  // patch_rows rows, and lanes floats of slack for patch_row's last run
    float* packed = gemm_detail::align64(cols + patch_rows * N + lanes);  // the block's gy rows as the product's B
    float* side = gemm_detail::align64(packed + gemm_packed_b_floats(s.og, N));
    float* sum_t = gemm_detail::align64(side + s.og * N);  // group g's partialᵀ at g·K·O/G
    float* padded = sum_t + s.K * w.o;
    float* acc = gemm_detail::align64(padded + p.floats);  // narrow patches only: a vector per (o, k)
    const bool narrow = narrow_patch(s);
    std::fill_n(padded, p.floats, 0.0f);
    if (narrow) std::fill_n(acc, w.o * s.K * lanes, 0.0f);
    else std::fill_n(sum_t, s.K * w.o, 0.0f);
    for (long n = n0; n < n1; n += s.block) {
      const long m = std::min(s.block, n1 - n), ld = m * s.L;
      for (long g = 0; g < w.groups; ++g) {
        pad_samples(w, s, p, x + n * s.in_row, m, g, padded);
        const float* rows = m == 1 ? gy + n * s.out_row + g * s.og * s.L : side;
        if (m > 1) gather_group(s, gy, n, m, g, side);
        if (narrow) {
          for (long k = 0; k < s.K; ++k) patch_row(w, s, p, padded, m, k, cols + k * ld);
          narrow_detail::accumulate_any(s.K, rows, cols, s.og, ld, acc + g * s.og * s.K * lanes,
                                        std::make_integer_sequence<int, lanes - 1>{});
          continue;
        }
        // gy's rows packed once per block; then the patches patch_rows at a time, each multiplied while in L1.
        gemm_pack_b(s.og, ld, matrix_view{rows, 1, ld}, packed);
        for (long k0 = 0; k0 < s.K; k0 += patch_rows) {
          const long r = std::min(patch_rows, s.K - k0);
          for (long k = 0; k < r; ++k) patch_row(w, s, p, padded, m, k0 + k, cols + k * ld);
          gemm_prepacked(r, s.og, ld, matrix_view{cols, ld, 1}, packed, sum_t + (g * s.K + k0) * s.og, s.og, true);
        }
      }
    }
    if (narrow) {
      for (long i = 0; i < w.o * s.K; ++i) put(i, hsum(load(acc + i * lanes)));
      return;
    }
    for (long g = 0; g < w.groups; ++g)
      for (long o = 0; o < s.og; ++o)
        for (long k = 0; k < s.K; ++k) put((g * s.og + o) * s.K + k, sum_t[(g * s.K + k) * s.og + o]);
    return;
  }
  float* cols = scratch;
  float* side = cols + s.K * N;
  float* ws = side + s.og * N;
  if (!add_to_partial) std::fill_n(partial, w.o * s.K, 0.0f);
  for (long n = n0; n < n1; n += s.block) {
    const long m = std::min(s.block, n1 - n), ld = m * s.L;
    for (long g = 0; g < w.groups; ++g) {
      for (long t = 0; t < m; ++t) im2col(w, s, x + (n + t) * s.in_row, g, cols + t * s.L, ld);
      const float* rows = m == 1 ? gy + n * s.out_row + g * s.og * s.L : side;
      if (m > 1) gather_group(s, gy, n, m, g, side);
      gemm_bf16(products, s.og, s.K, ld, matrix_view{rows, ld, 1}, matrix_view{cols, 1, ld}, partial + g * s.og * s.K, s.K, true, ws);
    }
  }
}

}  // namespace kiln::cpu::conv
