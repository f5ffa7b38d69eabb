#pragma once
// BF16 products with FP32 sums (PyTorch autocast's matmul semantics):
//     C[i, j] = (accumulate ? C[i, j] : 0) + Σ_k bf16(A(i, k))·bf16(B(k, j)),
// where bf16(x) rounds x to bfloat16 (8 significant bits) to nearest, ties to even. A product of two bf16
// values is exact in FP32 and the sums are FP32, so the result differs from the exact product of the rounded
// operands by FP32 summation error only, and from the FP32 product by at most (2u + u²)·Σ_k |A(i,k)·B(k,j)|
// more (u = 2^-8, BF16's unit roundoff: each operand carries a relative error of at most u).
//
// Two kernels read one packed layout, chosen at run time (cpu_features.hpp):
//  - A is packed row-major in BF16 in blocks of up to 64 rows, K padded with zeros to Kp (a multiple of 32)
//    and the rows to a multiple of 16;
//  - B is packed in panels of 16 columns, each [Kp/2][16][2]: one 32-bit word holds B(k, j) and B(k+1, j),
//    the pair layout both instructions read.
//  - AMX: TDPBF16PS multiplies a 16×32 A tile by a 32×16 B tile into a 16×16 FP32 tile; a 32×32 block of C
//    lives in 4 tiles while the other 4 hold two A and two B tiles, so each tile load feeds two products.
//  - AVX512-BF16: VDPBF16PS adds a broadcast pair of A times 16 pairs of B to 16 FP32 sums; an 8 × 48 block of
//    C lives in 24 zmm registers (the FP32 kernel's shape, with pairs of k per instruction).
// Both instructions flush denormal inputs and results to zero (the conversion treats denormals as zero too,
// see to_bf16), and TDPBF16PS adds the two products of a pair before rounding, so the two paths may differ
// in the last bits of the FP32 sums.
#include <kiln/core/error.hpp>
#include <kiln/cpu/cpu_features.hpp>
#include <kiln/cpu/gemm.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#if KILN_CPU_X86
#include <immintrin.h>
#define KILN_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define KILN_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))
#endif

namespace kiln::cpu {

// How a BF16 product is computed: on AMX tiles, with AVX512-BF16 dot products, or (no BF16 instructions on
// this CPU) in plain FP32, which is at least as accurate.
enum class bf16_path { fp32, avx512_bf16, amx };

// A step's arithmetic: FP32 throughout, or BF16 matrix-product operands with FP32 sums (mixed precision).
enum class precision { fp32, bf16 };

inline const char* describe(bf16_path p) {
  switch (p) {
    case bf16_path::amx: return "bf16 products on AMX tiles (TDPBF16PS), fp32 sums";
    case bf16_path::avx512_bf16: return "bf16 products with AVX512-BF16 (VDPBF16PS), fp32 sums";
    case bf16_path::fp32: return "fp32 products (this CPU has no BF16 instructions)";
  }
  return "?";
}
inline bool available(bf16_path p) {
  return p == bf16_path::fp32 || (p == bf16_path::amx ? this_cpu().amx_bf16 : this_cpu().avx512_bf16);
}
// The fastest path this machine has.
inline bf16_path best_bf16_path() {
  if (available(bf16_path::amx)) return bf16_path::amx;
  if (available(bf16_path::avx512_bf16)) return bf16_path::avx512_bf16;
  return bf16_path::fp32;
}

// x rounded to bfloat16 as VCVTNEPS2BF16 does: to nearest, ties to even; a denormal becomes a zero of its sign;
// NaN stays NaN (made quiet); overflow rounds to infinity.
inline std::uint16_t to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  if ((u & 0x7f800000u) == 0) return static_cast<std::uint16_t>((u >> 16) & 0x8000);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

namespace bf16_detail {
inline constexpr long k_step = 32;       // k per AMX tile row (64 bytes of bf16)
inline constexpr long tile_rows = 16;    // rows of an AMX tile
inline constexpr long panel_cols = 16;   // columns per B panel (one zmm of FP32 sums)
inline constexpr long block_rows = 64;   // rows of A packed at a time (64 × Kp bf16 stays in L2)

inline long padded_k(long K) { return gemm_detail::round_up(K, k_step); }
inline long panels(long N) { return gemm_detail::ceil_div(N, panel_cols); }
inline long packed_b_halves(long N, long K) { return panels(N) * panel_cols * padded_k(K); }
inline long packed_a_halves(long M, long K) {
  return gemm_detail::round_up(std::min(M, block_rows), tile_rows) * padded_k(K);
}
inline std::uint16_t* halves(float* p) { return reinterpret_cast<std::uint16_t*>(p); }
inline const std::uint16_t* halves(const float* p) { return reinterpret_cast<const std::uint16_t*>(p); }

#if KILN_CPU_X86
KILN_BF16_TARGET inline __mmask16 lane_mask(long n) {
  return n <= 0 ? __mmask16{0} : n >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << n) - 1u);
}
// 32 floats at p, of which the first n exist (the rest read as 0), as 32 bf16.
KILN_BF16_TARGET inline __m512i convert_32(const float* p, long n) {
  const __m512 lo = _mm512_maskz_loadu_ps(lane_mask(n), p), hi = _mm512_maskz_loadu_ps(lane_mask(n - 16), p + 16);
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // lo in the low half
}

// ---- packing

// Transpose a 16×16 matrix of 32-bit words held as 16 rows, in 4 rounds: round h swaps the off-diagonal h×h
// blocks of every 2h×2h block.
typedef std::uint32_t words16 __attribute__((vector_size(64)));
template <int H, int... E>
KILN_BF16_TARGET inline void transpose_round(words16 (&v)[16], std::integer_sequence<int, E...>) {
  constexpr auto lo = [](int e) { return (e % (2 * H) < H) ? e : 16 + e - H; };
  constexpr auto hi = [](int e) { return (e % (2 * H) < H) ? e + H : 16 + e; };
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    if (i & H) continue;
    const words16 a = v[i], b = v[i + H];
    v[i] = __builtin_shufflevector(a, b, lo(E)...);
    v[i + H] = __builtin_shufflevector(a, b, hi(E)...);
  }
}
KILN_BF16_TARGET inline void transpose_words(words16 (&v)[16]) {
  constexpr auto e = std::make_integer_sequence<int, 16>{};
  transpose_round<8>(v, e);
  transpose_round<4>(v, e);
  transpose_round<2>(v, e);
  transpose_round<1>(v, e);
}

// Two rows of 16 floats (lo: row k, hi: row k + 1) as 16 pair words: word j = (lo[j], hi[j]) in bf16.
KILN_BF16_TARGET inline __m512i pair_words(__m512 lo, __m512 hi) {
  alignas(64) static constexpr std::uint16_t interleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                               21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                               11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i pair = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // halves 0..15 from lo
  return _mm512_permutexvar_epi16(_mm512_load_si512(interleave), pair);
}


// Rows [m0, m0 + rows) of A, all K, into dst (packed_a_halves layout); rows up to the next multiple of 16 are 0.
KILN_BF16_TARGET inline void pack_a(matrix_view A, long m0, long rows, long K, std::uint16_t* dst) {
  const long Kp = padded_k(K), rows_padded = gemm_detail::round_up(rows, tile_rows);
  if (A.col_stride == 1) {
    for (long r = 0; r < rows; ++r) {
      const float* src = A.p + (m0 + r) * A.row_stride;
      for (long k0 = 0; k0 < Kp; k0 += k_step) _mm512_storeu_si512(dst + r * Kp + k0, convert_32(src + k0, K - k0));
    }
  } else if (A.row_stride == 1) {  // A = Yᵀ (the weight gradients' dYᵀ): 16 rows are contiguous at each k
    const __mmask16 m = lane_mask(16);
    for (long r0 = 0; r0 < rows; r0 += tile_rows) {
      const long nr = std::min(tile_rows, rows - r0);
      const __mmask16 mr = nr == 16 ? m : lane_mask(nr);
      const float* src = A.p + m0 + r0;
      for (long k0 = 0; k0 < Kp; k0 += k_step) {
        words16 v[16];  // v[q]: the pair (k0 + 2q, k0 + 2q + 1) of each of the 16 rows
        for (int q = 0; q < 16; ++q) {
          const long k = k0 + 2 * q;
          const __m512 lo = k < K ? _mm512_maskz_loadu_ps(mr, src + k * A.col_stride) : _mm512_setzero_ps();
          const __m512 hi = k + 1 < K ? _mm512_maskz_loadu_ps(mr, src + (k + 1) * A.col_stride) : _mm512_setzero_ps();
          v[q] = reinterpret_cast<words16>(pair_words(lo, hi));
        }
        transpose_words(v);  // v[r]: row r's 16 pairs, its 32 k in order
        for (long r = 0; r < nr; ++r) _mm512_storeu_si512(dst + (r0 + r) * Kp + k0, reinterpret_cast<__m512i>(v[r]));
      }
    }
  } else {  // a strided A: gathered 16 rows × 32 k at a time
    alignas(64) float t[tile_rows][k_step];
    for (long r0 = 0; r0 < rows; r0 += tile_rows) {
      const long nr = std::min(tile_rows, rows - r0);
      for (long k0 = 0; k0 < Kp; k0 += k_step) {
        const long nk = std::min(k_step, K - k0);
        for (long kk = 0; kk < k_step; ++kk)
          for (long rr = 0; rr < tile_rows; ++rr)
            t[rr][kk] = rr < nr && kk < nk ? A.p[(m0 + r0 + rr) * A.row_stride + (k0 + kk) * A.col_stride] : 0.0f;
        for (long rr = 0; rr < nr; ++rr) _mm512_storeu_si512(dst + (r0 + rr) * Kp + k0, convert_32(t[rr], k_step));
      }
    }
  }
  std::fill(dst + rows * Kp, dst + rows_padded * Kp, std::uint16_t{0});
}

// Panels [p0, p1) of B (K × N) into dst (packed_b_halves layout; panel p at p·16·Kp).
KILN_BF16_TARGET inline void pack_b(matrix_view B, long N, long K, std::uint16_t* dst, long p0, long p1) {
  const long Kp = padded_k(K);
  for (long p = p0; p < p1; ++p) {
    std::uint16_t* d = dst + p * panel_cols * Kp;
    const long j0 = p * panel_cols, w = std::min(panel_cols, N - j0);
    if (B.col_stride == 1) {  // rows of B contiguous: two rows' 16 columns converted and interleaved
      const __mmask16 m = lane_mask(w);
      for (long k = 0; k < Kp; k += 2) {
        const __m512 r0 = k < K ? _mm512_maskz_loadu_ps(m, B.p + k * B.row_stride + j0) : _mm512_setzero_ps();
        const __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(m, B.p + (k + 1) * B.row_stride + j0) : _mm512_setzero_ps();
        _mm512_storeu_si512(d + k * panel_cols, pair_words(r0, r1));
      }
    } else if (B.row_stride == 1) {  // columns contiguous along k (B = Wᵀ): a column's 32 k are 16 pair words
      for (long k0 = 0; k0 < Kp; k0 += k_step) {
        words16 v[16];
        for (long c = 0; c < 16; ++c)
          v[c] = c < w ? reinterpret_cast<words16>(convert_32(B.p + (j0 + c) * B.col_stride + k0, K - k0)) : words16{};
        transpose_words(v);  // v[q]: pair q of every column
        for (int q = 0; q < 16; ++q) _mm512_storeu_si512(d + (k0 / 2 + q) * 2 * panel_cols, reinterpret_cast<__m512i>(v[q]));
      }
    } else {
      for (long k = 0; k < Kp; ++k)
        for (long c = 0; c < panel_cols; ++c)
          d[(k / 2 * panel_cols + c) * 2 + k % 2] =
              c < w && k < K ? to_bf16(B.p[k * B.row_stride + (j0 + c) * B.col_stride]) : std::uint16_t{0};
    }
  }
}

// ---- AVX512-BF16 kernel: C[0:rows, 0:NV·16] (+)= A[0:MR, :]·B panels, for pairs of k [0, pairs)
template <int MR, int NV>
KILN_BF16_TARGET inline void dot_block(long pairs, const std::uint16_t* a, long Kp, const std::uint16_t* b,
                                       long panel_halves, int rows, int last_cols, float* c, long ldc, bool load_c) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (long q = 0; q < pairs; ++q) {
    __m512i bv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + v * panel_halves + q * 2 * panel_cols);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      std::int32_t word;
      std::memcpy(&word, a + r * Kp + 2 * q, 4);
      const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(word));
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, reinterpret_cast<__m512bh>(bv[v]));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = v + 1 < NV ? __mmask16{0xffff} : lane_mask(last_cols);
      float* p = c + r * ldc + v * panel_cols;
      const __m512 sum = load_c ? _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(m, p)) : acc[r][v];
      _mm512_mask_storeu_ps(p, m, sum);
    }
  }
}

// One row tile of MR rows against nv (1–3) panels: a function, not a lambda, so that it carries the target.
template <int MR>
KILN_BF16_TARGET inline void dot_tile(int nv, long pairs, const std::uint16_t* a, long Kp, const std::uint16_t* b,
                                      long panel_halves, int rows, int last, float* c, long ldc, bool accumulate) {
  if (nv == 3) dot_block<MR, 3>(pairs, a, Kp, b, panel_halves, rows, last, c, ldc, accumulate);
  else if (nv == 2) dot_block<MR, 2>(pairs, a, Kp, b, panel_halves, rows, last, c, ldc, accumulate);
  else dot_block<MR, 1>(pairs, a, Kp, b, panel_halves, rows, last, c, ldc, accumulate);
}

// C[0:rows, 0:N] (+)= packed A block (rows ≤ 64, padded to 16) · packed B.
KILN_BF16_TARGET inline void dot_run(long rows, long N, long K, const std::uint16_t* a, const std::uint16_t* b, float* C,
                                     long ldc, bool accumulate) {
  const long Kp = padded_k(K), pairs = (K + 1) / 2, np = panels(N), panel_halves = Kp * panel_cols;
  for (long i0 = 0; i0 < rows; i0 += 8) {
    const int r = static_cast<int>(std::min<long>(8, rows - i0));
    for (long p = 0; p < np; p += 3) {
      const int nv = static_cast<int>(std::min<long>(3, np - p));
      const int last = static_cast<int>(std::min(panel_cols, N - (p + nv - 1) * panel_cols));
      const std::uint16_t* ai = a + i0 * Kp;
      const std::uint16_t* bp = b + p * panel_halves;
      float* c = C + i0 * ldc + p * panel_cols;
      // A is padded to 16 rows, so a tile of more rows than are left never reads past it
      if (r > 4) dot_tile<8>(nv, pairs, ai, Kp, bp, panel_halves, r, last, c, ldc, accumulate);
      else if (r > 2) dot_tile<4>(nv, pairs, ai, Kp, bp, panel_halves, r, last, c, ldc, accumulate);
      else if (r == 2) dot_tile<2>(nv, pairs, ai, Kp, bp, panel_halves, r, last, c, ldc, accumulate);
      else dot_tile<1>(nv, pairs, ai, Kp, bp, panel_halves, r, last, c, ldc, accumulate);
    }
  }
}

// ---- AMX kernel

// LDTILECFG's 64-byte operand: palette 1, then bytes per row and rows of each of the 16 tile registers.
struct alignas(64) tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};
static_assert(sizeof(tile_config) == 64);

// Tiles 0–3: C(mt, nt) = 2·mt + nt, 16 × 16 FP32; 4–5: A(mt), 16 rows × 32 bf16; 6–7: B(nt), 16 pairs × 16.
KILN_AMX_TARGET inline void amx_begin() {
  tile_config cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.bytes_per_row[t] = 64;
  }
  // LDTILECFG in asm that names all 64 bytes as its input: GCC's _tile_loadconfig names only the first 8, so the
  // stores of rows and widths were dropped as dead (a SIGILL at the first tile instruction).
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}
KILN_AMX_TARGET inline void amx_end() { _tile_release(); }

// C[0:16·MT, 0:16·NT] (+)= A rows · B panels, c with row stride ldc (whole tiles: the caller routes an edge
// block through a scratch tile).
template <int MT, int NT>
KILN_AMX_TARGET inline void amx_block(long Kp, const std::uint16_t* a, const std::uint16_t* b, long panel_halves, float* c,
                                      long ldc, bool load_c) {
  const long cs = ldc * 4, as = Kp * 2;  // row strides in bytes
  float* c1 = c + 16 * ldc;
  if (load_c) {
    _tile_loadd(0, c, cs);
    if constexpr (NT > 1) _tile_loadd(1, c + 16, cs);
    if constexpr (MT > 1) _tile_loadd(2, c1, cs);
    if constexpr (MT > 1 && NT > 1) _tile_loadd(3, c1 + 16, cs);
  } else {
    _tile_zero(0);
    if constexpr (NT > 1) _tile_zero(1);
    if constexpr (MT > 1) _tile_zero(2);
    if constexpr (MT > 1 && NT > 1) _tile_zero(3);
  }
  for (long k0 = 0; k0 < Kp; k0 += k_step) {
    _tile_loadd(4, a + k0, as);
    if constexpr (MT > 1) _tile_loadd(5, a + 16 * Kp + k0, as);
    _tile_loadd(6, b + k0 * panel_cols, 64);  // pairs k0/2 … k0/2 + 15, 64 bytes each
    if constexpr (NT > 1) _tile_loadd(7, b + panel_halves + k0 * panel_cols, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NT > 1) _tile_dpbf16ps(1, 4, 7);
    if constexpr (MT > 1) _tile_dpbf16ps(2, 5, 6);
    if constexpr (MT > 1 && NT > 1) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, cs);
  if constexpr (NT > 1) _tile_stored(1, c + 16, cs);
  if constexpr (MT > 1) _tile_stored(2, c1, cs);
  if constexpr (MT > 1 && NT > 1) _tile_stored(3, c1 + 16, cs);
}

KILN_AMX_TARGET inline void amx_run(long rows, long N, long K, const std::uint16_t* a, const std::uint16_t* b, float* C,
                                    long ldc, bool accumulate) {
  const long Kp = padded_k(K), np = panels(N), panel_halves = Kp * panel_cols;
  alignas(64) float edge[32 * 32];
  for (long i0 = 0; i0 < rows; i0 += 32) {
    const bool two_rows = rows - i0 > 16;  // A is padded to 16 rows, so a second row tile exists
    for (long p = 0; p < np; p += 2) {
      const bool two_cols = np - p >= 2;
      const long h = std::min<long>(two_rows ? 32 : 16, rows - i0), j0 = p * panel_cols;
      const long w = std::min<long>(two_cols ? 32 : 16, N - j0);
      const bool whole = h == (two_rows ? 32 : 16) && w == (two_cols ? 32 : 16);
      float* c = whole ? C + i0 * ldc + j0 : edge;
      const long l = whole ? ldc : 32;
      const bool load_c = whole && accumulate;
      const std::uint16_t* ai = a + i0 * Kp;
      const std::uint16_t* bp = b + p * panel_halves;
      if (two_rows && two_cols) amx_block<2, 2>(Kp, ai, bp, panel_halves, c, l, load_c);
      else if (two_rows) amx_block<2, 1>(Kp, ai, bp, panel_halves, c, l, load_c);
      else if (two_cols) amx_block<1, 2>(Kp, ai, bp, panel_halves, c, l, load_c);
      else amx_block<1, 1>(Kp, ai, bp, panel_halves, c, l, load_c);
      if (!whole)
        for (long r = 0; r < h; ++r)
          for (long j = 0; j < w; ++j) {
            float& out = C[(i0 + r) * ldc + j0 + j];
            out = accumulate ? out + edge[r * 32 + j] : edge[r * 32 + j];
          }
    }
  }
}
#endif  // KILN_CPU_X86

inline void require(bf16_path path, const char* what) {
  if (path == bf16_path::fp32 || !available(path))
    throw error(std::string("kiln::cpu::") + what + ": the path '" + describe(path) +
                "' is not a BF16 path this CPU can run (see best_bf16_path())");
}
}  // namespace bf16_detail

// Floats for B packed by gemm_bf16_pack_b (64-byte alignment required), for A's packed blocks
// (gemm_bf16_prepacked's a_workspace, 64-byte aligned), and for gemm_bf16's whole workspace (any alignment).
inline std::size_t gemm_bf16_packed_b_floats(long N, long K) {
  return static_cast<std::size_t>(bf16_detail::packed_b_halves(std::max(N, 1L), std::max(K, 1L)) / 2);
}
inline std::size_t gemm_bf16_packed_a_floats(long M, long K) {
  return static_cast<std::size_t>(bf16_detail::packed_a_halves(std::max(M, 1L), std::max(K, 1L)) / 2);
}
inline std::size_t gemm_bf16_workspace_floats(long M, long N, long K) {
  return std::max(gemm_bf16_packed_b_floats(N, K) + gemm_bf16_packed_a_floats(M, K) + 32, gemm_workspace_floats(M, N, K));
}

// B (K × N) rounded to bf16 and packed for gemm_bf16_prepacked; packed: gemm_bf16_packed_b_floats(N, K)
// floats, 64-byte aligned. Columns [16·p0, 16·p1) only when a panel range is given, so that threads can pack
// one B together.
inline void gemm_bf16_pack_b(long N, long K, matrix_view B, float* packed, long p0 = 0, long p1 = -1) {
  bf16_detail::require(bf16_path::avx512_bf16, "gemm_bf16_pack_b");  // both BF16 paths pack with AVX512-BF16
#if KILN_CPU_X86
  if (N > 0 && K > 0) bf16_detail::pack_b(B, N, K, bf16_detail::halves(packed), p0, p1 < 0 ? bf16_detail::panels(N) : p1);
#endif
}
// Panels of 16 columns for N columns (gemm_bf16_pack_b's p0, p1 range over them).
inline long gemm_bf16_panels(long N) { return bf16_detail::panels(N); }

// C (+)= bf16(A)·bf16(B) with B packed by gemm_bf16_pack_b for these N and K, on `path` (AMX or AVX512-BF16,
// which this CPU must have). a_workspace: gemm_bf16_packed_a_floats(M, K) floats, 64-byte aligned.
inline void gemm_bf16_prepacked(bf16_path path, long M, long N, long K, matrix_view A, const float* packed_b, float* C,
                                long ldc, bool accumulate, float* a_workspace) {
  bf16_detail::require(path, "gemm_bf16_prepacked");
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
#if KILN_CPU_X86
  using namespace bf16_detail;
  std::uint16_t* a = halves(a_workspace);
  const std::uint16_t* b = halves(packed_b);
  if (path == bf16_path::amx) amx_begin();
  for (long m0 = 0; m0 < M; m0 += block_rows) {
    const long rows = std::min(block_rows, M - m0);
    pack_a(A, m0, rows, K, a);
    if (path == bf16_path::amx) amx_run(rows, N, K, a, b, C + m0 * ldc, ldc, accumulate);
    else dot_run(rows, N, K, a, b, C + m0 * ldc, ldc, accumulate);
  }
  if (path == bf16_path::amx) amx_end();
#endif
}

// C (+)= bf16(A)·bf16(B) (see the top of this file); on bf16_path::fp32, the FP32 gemm. workspace:
// gemm_bf16_workspace_floats(M, N, K) floats, any alignment.
inline void gemm_bf16(bf16_path path, long M, long N, long K, matrix_view A, matrix_view B, float* C, long ldc,
                      bool accumulate, float* workspace) {
  if (path == bf16_path::fp32) {
    gemm(M, N, K, A, B, C, ldc, accumulate, workspace);
    return;
  }
  bf16_detail::require(path, "gemm_bf16");
  if (M <= 0 || N <= 0 || K <= 0) {
    gemm_bf16_prepacked(path, M, N, K, A, nullptr, C, ldc, accumulate, nullptr);
    return;
  }
  float* packed = gemm_detail::align64(workspace);
  gemm_bf16_pack_b(N, K, B, packed);
  gemm_bf16_prepacked(path, M, N, K, A, packed, C, ldc, accumulate,
                      gemm_detail::align64(packed + gemm_bf16_packed_b_floats(N, K)));
}

}  // namespace kiln::cpu
