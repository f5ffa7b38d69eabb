#pragma once
// Single-threaded, register-blocked float GEMM:
//     C[i, j] = (accumulate ? C[i, j] : 0) + Σ_k A(i, k)·B(k, j),   0 <= i < M, 0 <= j < N, 0 <= k < K,
// with A and B given as strided views (so A·B, A·Bᵀ, Aᵀ·B and Aᵀ·Bᵀ are all one call) and C row-major.
//
// Structure (the classic Goto/BLIS decomposition, sized for small M):
//  - B is packed once per call into column panels of (up to) nr = nrv·lanes columns, each panel k-major and
//    contiguous (a transposed B is transposed in registers while packing); gemm_pack_b + gemm_prepacked let
//    a caller pack B once and run many row blocks against it.
//  - The micro-kernel keeps an mr × nrv-vector block of C in registers and walks k: per step, nrv vector
//    loads of the B panel, mr broadcasts of A (read in place, any strides: no A packing), mr·nrv FMAs.
//  - Only a very long K is cut into blocks (kc_max): streaming a whole B panel from L2 measured as fast as
//    L1-sized blocks here, and C is then written once. M is cut into blocks of mc_max rows (A stays in L2).
//  - N tails use a narrower kernel (fewer vectors) and masked stores; an M tail runs a kernel of 1, 2 or 4
//    rows (or clamps the rows it reads and skips their stores).
//  - Shapes where a register tile would be mostly empty skip packing: tiny problems run plain loops, a few
//    rows or columns against a transposed B run as dot products or, from 9 rows, as the transposed product
//    (rows along the lanes), a few rows against a row-major B read it in place.
// Nothing here allocates: the caller owns the workspace (gemm_workspace_floats) and may reuse it. C must not
// overlap A or B.
#include <kiln/core/error.hpp>
#include <kiln/cpu/simd.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace kiln::cpu {

// element (r, c) = p[r·row_stride + c·col_stride]
struct matrix_view {
  const float* p;
  long row_stride;
  long col_stride;
};

namespace gemm_detail {

// Register block: mr rows × nrv vectors of accumulators, plus nrv B vectors and a broadcast.
#if KILN_CPU_VECTOR_BITS == 512
inline constexpr int mr = 8, nrv = 3;  // 24 + 3 + 1 of 32 zmm
#elif KILN_CPU_VECTOR_BITS == 256
inline constexpr int mr = 4, nrv = 3;  // 12 + 3 + 1 of 16 ymm
#else
inline constexpr int mr = 4, nrv = 2;  // 8 + 2 + 1 of 16 xmm, leaving room for mul + add without FMA
#endif
inline constexpr int nr = nrv * lanes;
inline constexpr long kc_max = 1024;
inline constexpr long mc_max = 256;
// Up to this many multiply-adds a plain loop beats any setup (e.g. the 2×2 layers of a XOR network).
inline constexpr long tiny_flops = 128;
// A product A·Wᵀ (both contiguous along k) of up to this many rows reads W once in place, as dot products
// (gemm_dot) or transposed (gemm_transposed), rather than packing Wᵀ into panels first. Measured on a Xeon with
// AVX-512 (the classifier's 784→128 layer, 64-byte-aligned W): 16 rows 21.8 µs as dot products in 4×4 tiles
// against 27.0 µs packed, 4 rows 5.5 against 18.8 µs; at 32 rows packing wins (on Zen 4, as fast as transposed).
inline constexpr long dot_max_rows = 16;
// rows of a dot tile: 4×4 tiles hold 16 accumulators + 4 rows of W + 1 of A in AVX-512's 32 registers
inline constexpr int dot_tile_rows = KILN_CPU_VECTOR_BITS == 512 ? 4 : 2;
// From this many rows, such a product is computed transposed, Cᵀ = W·Aᵀ (gemm_transposed): the rows along the
// vector lanes, so no tile ends in horizontal sums. On Zen 4 (the classifier's 784→128 layer in a function, one
// thread) 16 rows took 32 µs transposed against 50 µs as dot products, 8 rows 31 against 29.
inline constexpr long transposed_min_rows = 9;

template <int N, class F>
inline void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(std::integral_constant<int, I>{}), ...); }
  (std::make_integer_sequence<int, N>{});
}

inline long ceil_div(long a, long b) { return (a + b - 1) / b; }
inline long round_up(long a, long b) { return ceil_div(a, b) * b; }

// Column panels of B: nrv vectors wide, the last rounded up to whole vectors, except that a lone last
// vector is avoided (3 + 1 vectors become 2 + 2: a one-vector kernel is bound by its loads). f(j0, width, nv,
// offset): columns [j0, j0 + width) in nv vectors; offset = floats per row of the panels before this one.
template <class F>
inline void for_each_panel(long N, F&& f) {
  for (long j0 = 0, offset = 0; j0 < N;) {
    const long vectors_left = ceil_div(N - j0, lanes);
    const int nv = (nrv == 3 && vectors_left == 4) ? 2 : static_cast<int>(std::min<long>(nrv, vectors_left));
    f(j0, std::min<long>(nv * lanes, N - j0), nv, offset);
    j0 += nv * lanes;
    offset += nv * lanes;
  }
}
// Calls f.template operator()<NV>() for the run-time vector count nv in [1, nrv].
template <class F>
inline void with_vectors(int nv, F&& f) {
  if (nv == nrv) f.template operator()<nrv>();
  else if (nv == 1) f.template operator()<1>();
  else if constexpr (nrv > 2) f.template operator()<2>();
}

// Packed B: the panels one after another, panel by panel k-major (row k of a panel of width w at k·w from the
// panel's start, offset·K), zero past column N.
inline long packed_b_floats(long N, long K) { return K * round_up(N, lanes); }

// ---- packing

// Transpose an L×L tile held as L row vectors, in log2(L) rounds: round h swaps the off-diagonal h×h
// blocks of every 2h×2h block (rows i and i+h exchange their element halves).
template <int H, int... E>
inline void transpose_round(vfloat (&v)[lanes], std::integer_sequence<int, E...>) {
  constexpr auto lo = [](int e) { return (e % (2 * H) < H) ? e : lanes + e - H; };
  constexpr auto hi = [](int e) { return (e % (2 * H) < H) ? e + H : lanes + e; };
#pragma GCC unroll 16
  for (int i = 0; i < lanes; ++i) {
    if (i & H) continue;
    const vfloat a = v[i], b = v[i + H];
    v[i] = __builtin_shufflevector(a, b, lo(E)...);
    v[i + H] = __builtin_shufflevector(a, b, hi(E)...);
  }
}
inline void transpose_tile(vfloat (&v)[lanes]) {
  constexpr auto e = std::make_integer_sequence<int, lanes>{};
  if constexpr (lanes >= 16) transpose_round<8>(v, e);
  if constexpr (lanes >= 8) transpose_round<4>(v, e);
  transpose_round<2>(v, e);
  transpose_round<1>(v, e);
}

// One row of a panel: out[v·lanes, (v + 1)·lanes) <- src[…] for the vectors v in [v0, v1), src holding `width`
// floats (the last vector read partially), zero past them.
inline void pack_panel_row(const float* src, long width, float* out, int v0, int v1) {
  for (int v = v0; v < v1; ++v) {
    const long left = width - v * lanes;
    store(out + v * lanes, left >= lanes ? load(src + v * lanes) : load_partial(src + v * lanes, static_cast<int>(left)));
  }
}

// dst (width w = nv·lanes, k-major) <- columns [j0, j0 + width) of B, rows [0, K); zero past `width`. Only the
// panel's vectors [v0, v1) are written (all by default), so that several threads can pack one panel's parts.
inline void pack_panel(long K, matrix_view B, long j0, long width, int nv, float* dst, int v0 = 0, int v1 = -1) {
  const long w = nv * lanes;
  if (v1 < 0) v1 = nv;
  if (B.col_stride == 1) {  // rows of B are contiguous: copy, the last vector partial
    for (long k = 0; k < K; ++k) pack_panel_row(B.p + k * B.row_stride + j0, width, dst + k * w, v0, v1);
  } else if (B.row_stride == 1) {  // columns of B are contiguous (B = Wᵀ): transpose lanes×lanes tiles
    for (int v = v0; v < v1; ++v) {
      const long cols = std::min<long>(lanes, width - v * lanes);
      for (long k0 = 0; k0 < K; k0 += lanes) {
        const int ks = static_cast<int>(std::min<long>(lanes, K - k0));
        vfloat t[lanes];
        for (int c = 0; c < lanes; ++c) {
          const float* src = B.p + (j0 + v * lanes + c) * B.col_stride + k0;
          t[c] = c >= cols ? vfloat{} : ks == lanes ? load(src) : load_partial(src, ks);
        }
        transpose_tile(t);
        for (int r = 0; r < ks; ++r) store(dst + (k0 + r) * w + v * lanes, t[r]);
      }
    }
  } else {
    for (long k = 0; k < K; ++k)
      for (long j = v0 * lanes; j < v1 * lanes; ++j)
        dst[k * w + j] = j < width ? B.p[k * B.row_stride + (j0 + j) * B.col_stride] : 0.0f;
  }
}

inline void pack_b(long N, long K, matrix_view B, float* packed) {
  for_each_panel(N, [&](long j0, long width, int nv, long offset) { pack_panel(K, B, j0, width, nv, packed + offset * K); });
}

// Share `part` of `parts` of pack_b's work: B's column vectors [V·part/parts, V·(part+1)/parts) of the
// V = ⌈N/lanes⌉, wherever their panels put them. The parts together write exactly what pack_b writes.
inline void pack_b_part(long N, long K, matrix_view B, float* packed, int part, int parts) {
  const long V = ceil_div(N, lanes), first = V * part / parts, last = V * (part + 1) / parts;
  long before = 0;  // vectors in the panels before this one
  for_each_panel(N, [&](long j0, long width, int nv, long offset) {
    const long b = std::max(first, before), e = std::min(last, before + nv);
    if (b < e) pack_panel(K, B, j0, width, nv, packed + offset * K, static_cast<int>(b - before), static_cast<int>(e - before));
    before += nv;
  });
}

// ---- micro-kernel
// C[0:rows, 0:NV·lanes] (+)= A[0:rows, 0:kc]·Bp[0:kc, 0:NV·lanes], Bp rows ldb apart. Rows past `rows` are
// computed from a repeated last row (never read out of bounds) and not stored; the last vector stores only
// `last_lanes` lanes. load_c: add to C instead of overwriting it. B_IN_PLACE: Bp is B itself (row-major), whose
// rows end after last_lanes in the last vector, so that vector is loaded masked.
template <int MR, int NV, bool B_IN_PLACE, bool A_PACKED = false>
inline void micro_kernel(long kc, const float* a, long a_rs, long a_cs, int rows, const float* bp, long ldb, float* c,
                         long ldc, bool load_c, int last_lanes) {
  // Plain constant-trip loops (fully unrolled by both compilers, the arrays kept in registers); clang does not
  // inline generic lambdas nested this deep.
  const float* ar[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) ar[r] = a + std::min(r, rows - 1) * a_rs;
  vfloat acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = vfloat{};
#pragma GCC unroll 4
  for (long k = 0; k < kc; ++k) {
    vfloat b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const float* p = bp + k * ldb + v * lanes;
      b[v] = (B_IN_PLACE && v + 1 == NV) ? load_partial(p, last_lanes) : load(p);
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      // a packed A tile (pack_a) is mr floats per k step: constant offsets, no row pointers to keep in registers
      const vfloat x = A_PACKED ? splat(a[k * mr + r]) : splat(ar[r][k * a_cs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = fma(x, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = cr + v * lanes;
      if (v + 1 < NV || last_lanes == lanes) {
        store(p, load_c ? acc[r][v] + load(p) : acc[r][v]);
      } else {
        store_partial(p, load_c ? acc[r][v] + load_partial(p, last_lanes) : acc[r][v], last_lanes);
      }
    }
  }
}

// Row tiles of mr over [m0, m1); a last partial tile runs the smallest kernel of 1, 2, 4, ... rows that
// covers it, so a few rows (a tail, or a single sample) do not pay for a full tile.
// With a_packed (pack_a's layout for rows [m0, m1) and this k block), A is read from there instead.
template <int NV, bool B_IN_PLACE = false>
inline void run_panel(long m0, long m1, long kc, matrix_view A, long k0, const float* bp, long ldb, float* C,
                      long ldc, long j0, bool load_c, int last_lanes, const float* a_packed = nullptr) {
  for (long i = m0; i < m1; i += mr) {
    const int rows = static_cast<int>(std::min<long>(mr, m1 - i));
    const float* a = a_packed ? a_packed + (i - m0) * kc : A.p + i * A.row_stride + k0 * A.col_stride;
    const long a_rs = a_packed ? 1 : A.row_stride, a_cs = a_packed ? mr : A.col_stride;
    float* c = C + i * ldc + j0;
    const auto kernel = [&]<int MR>() {
      if (a_packed) micro_kernel<MR, NV, B_IN_PLACE, true>(kc, a, a_rs, a_cs, rows, bp, ldb, c, ldc, load_c, last_lanes);
      else micro_kernel<MR, NV, B_IN_PLACE>(kc, a, a_rs, a_cs, rows, bp, ldb, c, ldc, load_c, last_lanes);
    };
    if (rows == mr) kernel.template operator()<mr>();
    else if (rows == 1) kernel.template operator()<1>();
    else if (rows == 2) kernel.template operator()<2>();
    else if (rows <= 4 || mr == 4) kernel.template operator()<std::min(4, mr)>();
    else kernel.template operator()<mr>();
  }
}

// Equal K blocks of at most kc_max (1500 becomes 2 × 750 rather than 1024 + 476).
inline long k_block(long K) { return ceil_div(K, ceil_div(K, kc_max)); }

// Floats pack_a needs for M rows and K columns of A (one m block of one k block).
inline long packed_a_floats(long M, long K) { return round_up(std::min(M, mc_max), mr) * std::min(K, k_block(K)); }

// Whether A is worth packing: when its rows are not contiguous along k (A = Yᵀ, the weight gradients'
// dYᵀ), the micro-kernel's broadcasts walk k with a stride of a whole row of Y — one cache line (and for
// wide layers one 4 KB page, always the same L1 set) per k step, for every column panel of B. Packed, a tile's
// k steps are contiguous. Packing is one more pass over A, repaid only when many panels reuse it: measured
// with bench_gemm, Aᵀ·B at 1024×1024×256 went from 87 to 113 GFLOP/s packed, while 256×128×784 (3 panels)
// dropped from 159 to 135.
inline bool packs_a(matrix_view A, long N) { return A.col_stride != 1 && N > 3 * nr; }

// dst <- rows [m0, m1) × columns [k0, k0 + kc) of A as row tiles of mr rows, each k-major (mr floats per k;
// a partial last tile is padded with copies of its last row, which the micro-kernel computes but never stores).
inline void pack_a(matrix_view A, long m0, long m1, long k0, long kc, float* dst) {
  for (long i = m0; i < m1; i += mr) {
    const long rows = std::min<long>(mr, m1 - i);
    float* tile = dst + (i - m0) * kc;
    const float* src = A.p + i * A.row_stride + k0 * A.col_stride;
    if (A.row_stride == 1 && rows == mr) {
      for (long k = 0; k < kc; ++k) std::copy_n(src + k * A.col_stride, mr, tile + k * mr);
    } else {
      for (long k = 0; k < kc; ++k)
        for (long r = 0; r < mr; ++r) tile[k * mr + r] = src[std::min(r, rows - 1) * A.row_stride + k * A.col_stride];
    }
  }
}

// The blocking gemm_packed and gemm_in_place share: M in blocks of mc_max rows, K in k_block(K) blocks, a
// transposed A packed per block when a_work is given and it pays (packs_a). f(m0, m1, k0, kc, load_c, a_packed)
// runs the column panels of one block (a_packed null: A is read in place).
template <class F>
inline void for_each_block(long M, long N, long K, matrix_view A, bool accumulate, float* a_work, F&& f) {
  const long kc_step = k_block(K);
  const bool pack = a_work && packs_a(A, N);
  for (long m0 = 0; m0 < M; m0 += mc_max) {
    const long m1 = std::min(M, m0 + mc_max);
    for (long k0 = 0; k0 < K; k0 += kc_step) {
      const long kc = std::min(kc_step, K - k0);
      if (pack) pack_a(A, m0, m1, k0, kc, a_work);
      f(m0, m1, k0, kc, accumulate || k0 > 0, pack ? static_cast<const float*>(a_work) : nullptr);
    }
  }
}

// C (+)= A·B with B already packed (pack_b layout for these N and K). a_work (packed_a_floats(M, K) floats, or
// null) lets a transposed A be packed (packs_a).
inline void gemm_packed(long M, long N, long K, matrix_view A, const float* packed, float* C, long ldc,
                        bool accumulate, float* a_work = nullptr) {
  for_each_block(M, N, K, A, accumulate, a_work, [&](long m0, long m1, long k0, long kc, bool load_c, const float* ap) {
    for_each_panel(N, [&](long j0, long width, int nv, long offset) {
      const int last = static_cast<int>(width - (nv - 1) * lanes);
      const long ldb = nv * lanes;
      const float* bp = packed + offset * K + k0 * ldb;
      with_vectors(nv, [&]<int NV>() { run_panel<NV>(m0, m1, kc, A, k0, bp, ldb, C, ldc, j0, load_c, last, ap); });
    });
  });
}

// C (+)= A·B reading a row-major B (col_stride 1) in place: for a few rows, packing B would cost more than
// the multiply. Same blocking as gemm_packed.
inline void gemm_in_place(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate,
                          float* a_work = nullptr) {
  for_each_block(M, N, K, A, accumulate, a_work, [&](long m0, long m1, long k0, long kc, bool load_c, const float* ap) {
    for_each_panel(N, [&](long j0, long width, int nv, long) {
      const int last = static_cast<int>(width - (nv - 1) * lanes);
      const float* bp = B.p + k0 * B.row_stride + j0;
      with_vectors(nv, [&]<int NV>() { run_panel<NV, true>(m0, m1, kc, A, k0, bp, B.row_stride, C, ldc, j0, load_c, last, ap); });
    });
  });
}

// C[i, j] (+)= dot(row i of A, column j of B) when both are contiguous along k (A.col_stride == B.row_stride
// == 1, i.e. B = Wᵀ): for a few rows (a single sample) or one or two columns (a regression head), where
// transposing B into panels would cost more than the multiply. Tiles of tm rows × tn columns share loads;
// edge tiles repeat their last row / column and drop the copies.
template <int tm, int tn>
inline void gemm_dot(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate) {
  for (long i0 = 0; i0 < M; i0 += tm) {
    const int rows = static_cast<int>(std::min<long>(tm, M - i0));
    const float* a[tm];
    for (int r = 0; r < tm; ++r) a[r] = A.p + (i0 + std::min(r, rows - 1)) * A.row_stride;
    for (long j0 = 0; j0 < N; j0 += tn) {
      const int cols = static_cast<int>(std::min<long>(tn, N - j0));
      const float* b[tn];
      for (int c = 0; c < tn; ++c) b[c] = B.p + (j0 + std::min(c, cols - 1)) * B.col_stride;
      vfloat acc[tm][tn] = {};
      const auto step = [&](long k, auto&& ld) {
        vfloat bv[tn];
        unroll<tn>([&](auto c) { bv[c] = ld(b[c] + k); });
        unroll<tm>([&](auto r) {
          const vfloat x = ld(a[r] + k);
          unroll<tn>([&](auto c) { acc[r][c] = fma(x, bv[c], acc[r][c]); });
        });
      };
      long k = 0;
      for (; k + lanes <= K; k += lanes) step(k, [](const float* p) { return load(p); });
      if (k < K) {
        const int n = static_cast<int>(K - k);
        step(k, [n](const float* p) { return load_partial(p, n); });
      }
      // The sums are taken at constant indices: indexing acc by the run-time rows and cols would make GCC keep it
      // in memory and store every accumulator in every step of the k loop. Measured on a Xeon with AVX-512 (a
      // harness with run-time sizes, 784→128): 4 rows 12.1 → 6.4 µs, 16 rows 51.1 → 25.6 µs.
      float sums[tm][tn];
      unroll<tm>([&](auto r) { unroll<tn>([&](auto c) { sums[r][c] = hsum(acc[r][c]); }); });
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
          float& out = C[(i0 + r) * ldc + j0 + c];
          out = accumulate ? out + sums[r][c] : sums[r][c];
        }
    }
  }
}

// Plain loops for problems too small to pay for packing.
inline void gemm_tiny(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate) {
  for (long i = 0; i < M; ++i)
    for (long j = 0; j < N; ++j) {
      float s = accumulate ? C[i * ldc + j] : 0.0f;
      for (long k = 0; k < K; ++k) s = fma(A.p[i * A.row_stride + k * A.col_stride], B.p[k * B.row_stride + j * B.col_stride], s);
      C[i * ldc + j] = s;
    }
}

inline float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(p) + 63) & ~std::uintptr_t{63});
}

// C (+)= A·B for B = Wᵀ (A and W contiguous along k) and a few rows of A, as Cᵀ = W·Aᵀ: Aᵀ is packed as gemm
// packs a B (K × M floats, a small copy), W is read in place by the micro-kernel's broadcasts, and the M rows lie
// along the vector lanes; Cᵀ goes to the workspace, then into C. Workspace: packed_b_floats(M, K) + M·N floats
// and alignment slack (choose() checks that gemm_workspace_floats(M, N, K) holds them).
inline void gemm_transposed(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate,
                            float* workspace) {
  float* packed = align64(workspace);
  pack_b(M, K, matrix_view{A.p, A.col_stride, A.row_stride}, packed);
  float* ct = align64(packed + packed_b_floats(M, K));
  gemm_packed(N, M, K, matrix_view{B.p, B.col_stride, B.row_stride}, packed, ct, M, false);
  for (long i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (accumulate)
      for (long j = 0; j < N; ++j) c[j] += ct[j * M + i];
    else
      for (long j = 0; j < N; ++j) c[j] = ct[j * M + i];
  }
}

// How gemm computes a product of these sizes (M, N, K > 0).
enum class method { tiny, dot, transposed, in_place, packed };
inline method choose(long M, long N, long K, matrix_view A, matrix_view B) {
  // Plain loops only up to one register tile of rows: a block of 64 rows with N and K of 1 or 2 (a binary
  // classifier's head at batch 256) spent its time in the scalar loops' control, not in the arithmetic.
  if (M * N * K <= tiny_flops && M <= mr) return method::tiny;
  if (A.col_stride == 1 && B.row_stride == 1 && K >= lanes && (M <= dot_max_rows || N <= 2)) {
    const bool fits = packed_b_floats(M, K) + M * N <= packed_b_floats(N, K) + packed_a_floats(M, K);
    return M >= transposed_min_rows && M <= dot_max_rows && N > 2 && fits ? method::transposed : method::dot;
  }
  if (M <= mr && B.col_stride == 1) return method::in_place;  // one row tile: packing B would not be repaid
  return method::packed;
}

template <long N_static, long K_static>
inline void check_static_sizes(long N, long K) {
  if ((N_static >= 0 && N != N_static) || (K_static >= 0 && K != K_static))
    throw shape_error("kiln::cpu::gemm: compiled for N = " + std::to_string(N_static) + ", K = " +
                      std::to_string(K_static) + " (-1: any), called with N = " + std::to_string(N) +
                      ", K = " + std::to_string(K));
}

}  // namespace gemm_detail

// The blocking this build uses, for reports (kiln-bench's header): the register tile, the K and M blocks.
// The same constants serve every machine measured so far: on a Xeon with AVX-512 (family 6 model 167), K blocks
// of 256, 384 and 512 and M blocks of 128 and 512 were no faster than these at the classifier's and the wide
// net's shapes (bench_gemm, alternating builds).
inline std::string gemm_blocking() {
  return "register tile " + std::to_string(gemm_detail::mr) + " rows x " + std::to_string(gemm_detail::nr) +
         " columns (" + std::to_string(KILN_CPU_VECTOR_BITS) + "-bit vectors), K blocks <= " +
         std::to_string(gemm_detail::kc_max) + ", M blocks <= " + std::to_string(gemm_detail::mc_max);
}

// Floats of workspace gemm needs for these sizes (the packed B panels, room to pack a block of a
// transposed A, and alignment slack).
inline std::size_t gemm_workspace_floats(long M, long N, long K) {
  const long m = std::max(M, 1L), n = std::max(N, 0L), k = std::max(K, 1L);
  return static_cast<std::size_t>(gemm_detail::packed_b_floats(n, k) + gemm_detail::packed_a_floats(m, k) + 32);
}
// Where gemm_prepacked's A workspace starts in a gemm workspace whose start holds B packed for N and K.
inline float* gemm_a_workspace(float* packed_b, long N, long K) {
  return gemm_detail::align64(packed_b + gemm_detail::packed_b_floats(std::max(N, 0L), std::max(K, 0L)));
}

// C (+)= A·B, see the top of this file. N_static / K_static >= 0 promise the sizes at compile time (checked:
// shape_error otherwise). workspace: gemm_workspace_floats(M, N, K) floats, any alignment.
template <long N_static = -1, long K_static = -1>
void gemm(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate,
          float* workspace) {
  gemm_detail::check_static_sizes<N_static, K_static>(N, K);
  const long n = N_static >= 0 ? N_static : N, k = K_static >= 0 ? K_static : K;
  if (M <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
    return;
  }
  switch (gemm_detail::choose(M, n, k, A, B)) {
    case gemm_detail::method::tiny: gemm_detail::gemm_tiny(M, n, k, A, B, C, ldc, accumulate); return;
    case gemm_detail::method::transposed: gemm_detail::gemm_transposed(M, n, k, A, B, C, ldc, accumulate, workspace); return;
    case gemm_detail::method::dot:
      if (M == 1) gemm_detail::gemm_dot<1, 4>(M, n, k, A, B, C, ldc, accumulate);
      else if (n == 1) gemm_detail::gemm_dot<4, 1>(M, n, k, A, B, C, ldc, accumulate);
      else if (n == 2) gemm_detail::gemm_dot<4, 2>(M, n, k, A, B, C, ldc, accumulate);
      else if (M == 2) gemm_detail::gemm_dot<2, 4>(M, n, k, A, B, C, ldc, accumulate);
      else gemm_detail::gemm_dot<gemm_detail::dot_tile_rows, 4>(M, n, k, A, B, C, ldc, accumulate);
      return;
    case gemm_detail::method::in_place: gemm_detail::gemm_in_place(M, n, k, A, B, C, ldc, accumulate); return;
    case gemm_detail::method::packed: break;
  }
  float* packed = gemm_detail::align64(workspace);
  gemm_detail::pack_b(n, k, B, packed);
  gemm_detail::gemm_packed(M, n, k, A, packed, C, ldc, accumulate, gemm_a_workspace(packed, n, k));
}

// C (+)= A·B reading a row-major B (col_stride 1) where it lies, for a caller that would otherwise pack B for
// only a few row blocks: packing is a full pass over B (a copy through memory), while reading B in place costs
// the micro-kernel a few percent. Measured on this repository's CPU: 64×784×256 (one thread's share of the
// classifier's first weight gradient) takes 33 µs to pack and 151 µs prepacked, 160 µs in place.
// a_workspace (gemm_packed_a_floats(M, K) floats, or null) lets a transposed A be packed.
inline void gemm_b_in_place(long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc, bool accumulate,
                            float* a_workspace = nullptr) {
  if (B.col_stride != 1) throw error("kiln::cpu::gemm_b_in_place: B must be row-major (column stride 1)");
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  gemm_detail::gemm_in_place(M, N, K, A, B, C, ldc, accumulate, a_workspace);
}

// Whether gemm packs B for these sizes and views (M, N, K > 0): then a caller running many row blocks against
// the same B can pack it once (gemm_pack_b) and call gemm_prepacked per block instead.
inline bool gemm_packs_b(long M, long N, long K, matrix_view A, matrix_view B) {
  return gemm_detail::choose(M, N, K, A, B) == gemm_detail::method::packed;
}

// Pack B once (gemm_packed_b_floats(N, K) floats, 64-byte alignment recommended) for many gemm_prepacked
// calls, e.g. one per row block of a batch.
inline std::size_t gemm_packed_b_floats(long N, long K) {
  return static_cast<std::size_t>(gemm_detail::packed_b_floats(std::max(N, 0L), std::max(K, 0L)));
}
inline void gemm_pack_b(long N, long K, matrix_view B, float* packed) {
  if (N > 0 && K > 0) gemm_detail::pack_b(N, K, B, packed);
}
// Row k of gemm_pack_b's layout for N columns and K rows <- row[0, N), B's row k: for a caller that makes B one
// row at a time (a convolution's patches, cpu/conv.hpp) and would otherwise write all of B and then pack it.
inline void gemm_pack_b_row(long N, long K, long k, const float* row, float* packed) {
  using namespace gemm_detail;
  for_each_panel(N, [&](long j0, long width, int nv, long offset) { pack_panel_row(row + j0, width, packed + offset * K + k * nv * lanes, 0, nv); });
}
// One of `parts` disjoint shares of gemm_pack_b (part in [0, parts)): threads that will all read the same
// packed B can pack it together, each its share, instead of each packing all of it.
inline void gemm_pack_b_part(long N, long K, matrix_view B, float* packed, int part, int parts) {
  if (parts < 1 || part < 0 || part >= parts)
    throw error("kiln::cpu::gemm_pack_b_part: part " + std::to_string(part) + " of " + std::to_string(parts) +
                " is not in [0, parts)");
  if (N > 0 && K > 0) gemm_detail::pack_b_part(N, K, B, packed, part, parts);
}
// As gemm, with B given packed by gemm_pack_b for the same N and K. a_workspace (gemm_packed_a_floats(M, K)
// floats, 64-byte alignment recommended), if given, lets a transposed A be packed, which pays for long K.
inline std::size_t gemm_packed_a_floats(long M, long K) {
  return static_cast<std::size_t>(gemm_detail::packed_a_floats(std::max(M, 1L), std::max(K, 1L)));
}
template <long N_static = -1, long K_static = -1>
void gemm_prepacked(long M, long N, long K, matrix_view A, const float* packed_b, float* C, long ldc,
                    bool accumulate, float* a_workspace = nullptr) {
  gemm_detail::check_static_sizes<N_static, K_static>(N, K);
  const long n = N_static >= 0 ? N_static : N, k = K_static >= 0 ? K_static : K;
  if (M <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
    return;
  }
  gemm_detail::gemm_packed(M, n, k, A, packed_b, C, ldc, accumulate, a_workspace);
}

}  // namespace kiln::cpu
