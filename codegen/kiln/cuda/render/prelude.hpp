#pragma once
// The text every generated CUDA module starts with:
//   km::          the math policy of the ops' forward (ops/math.hpp) in float, with the reference's conventions
//   kiln_hypers   the run-time scalars (learning rate, bias corrections, …) and the step's random key, passed
//                 by value to every kernel
//   KILN_PARAMS   the parameters every kernel takes before its buffers
//   kiln_rt::     block-level building blocks: a shared-memory tiled GEMM over accessor functors, warp
//                 reductions, and the last-block-done ticket that finishes cross-block reductions in one launch
// Plain CUDA C++ without any #include, so NVRTC compiles it with no header search path and nvcc compiles a
// dumped kernel file on its own. KILN_HOST_EMULATION (see emulator.hpp) swaps the few CUDA-only spellings.
#include <kiln/ops/window_math.hpp>

#include <cstdint>
#include <string>

namespace kiln::cuda {

inline constexpr int max_hypers = 16;  // slots of kiln_hypers; optimizers use at most 9

// How matrix products are computed: fp32, FFMA on CUDA cores (exact to the CPU reference within float rounding);
// tf32 and bf16, mma.sync on tensor cores (sm_80 and newer) with the operands rounded to TF32's 10 or BF16's 7
// stored mantissa bits and the sums in FP32, everything else (activations, losses, the optimizer, the master
// weights) staying FP32. See kiln_rt::block_gemm below; the tolerances against the reference are in tests/cuda.
enum class matmul_precision : std::uint8_t { fp32, tf32, bf16 };
inline const char* precision_name(matmul_precision p) {
  return p == matmul_precision::tf32 ? "tf32" : p == matmul_precision::bf16 ? "bf16" : "fp32";
}

inline const char* prelude_source() {
  return R"KILN(// ---- kiln CUDA prelude: float32 throughout (matrix products on tensor cores in TF32 when KILN_TF32_PRODUCTS
// is 1, in BF16 when KILN_BF16_PRODUCTS is 1)
#ifndef KILN_HOST_EMULATION
#define KILN_DYNAMIC_SHARED(name) extern __shared__ __align__(16) float name[]
#define KILN_LOAD_CG(p) __ldcg(p)
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// v: the optimizer's scalars; rng: the step's random key (kiln/core/philox.hpp): seed low and high word, step
// low and high word.
struct kiln_hypers { float v[16]; unsigned rng[4]; };

// batch: the run-time batch size; h: hyperparameters; ws/tickets: this launch's workspace and zeroed counters;
// ws_blocks: how many blocks wrote the partial sums a reduce kernel reads.
#define KILN_PARAMS const long long batch, const kiln_hypers h, float* const ws, unsigned* const tickets, const int ws_blocks

namespace km {
__device__ __forceinline__ float exp(float x) { return expf(x); }
__device__ __forceinline__ float expm1(float x) { return expm1f(x); }
__device__ __forceinline__ float log(float x) { return logf(x); }
__device__ __forceinline__ float log1p(float x) { return log1pf(x); }
__device__ __forceinline__ float sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ float abs(float x) { return fabsf(x); }
__device__ __forceinline__ float tanh(float x) { return tanhf(x); }
__device__ __forceinline__ float erf(float x) { return erff(x); }
// x^p; small integer powers multiplied out (exact for p = 2, as the reference's pow is)
__device__ __forceinline__ float pow(float x, float p) {
  if (p == 2.0f) return x * x;
  if (p == 3.0f) return x * x * x;
  return powf(x, p);
}
// NaN in the first operand propagates: max(a, b) = isnan(a) ? a : (a > b ? a : b), as in the reference
__device__ __forceinline__ float max(float a, float b) { return a != a ? a : (a > b ? a : b); }
__device__ __forceinline__ float min(float a, float b) { return a != a ? a : (a < b ? a : b); }
__device__ __forceinline__ float gt(float a, float b) { return a > b ? 1.0f : 0.0f; }
__device__ __forceinline__ float ge(float a, float b) { return a >= b ? 1.0f : 0.0f; }
__device__ __forceinline__ float eq(float a, float b) { return a == b ? 1.0f : 0.0f; }
__device__ __forceinline__ float select(float c, float a, float b) { return c != 0.0f ? a : b; }
// Element e's uniform draw in [0, 1) in stream `stream`: Philox4x32-10 on the counter (e / 4, stream, step) with
// the seed as key, word e % 4, its top 24 bits. The same rounds as kiln::random::uniform (core/philox.hpp).
__device__ __forceinline__ float uniform(const kiln_hypers& h, unsigned stream, unsigned long long e) {
  const unsigned long long q = e >> 2;
  unsigned c0 = (unsigned)q, c1 = (unsigned)(q >> 32) ^ h.rng[3], c2 = stream, c3 = h.rng[2];
  unsigned k0 = h.rng[0], k1 = h.rng[1];
  for (int round = 0; round < 10; ++round) {
    const unsigned long long p0 = (unsigned long long)0xD2511F53u * c0, p1 = (unsigned long long)0xCD9E8D57u * c2;
    c0 = (unsigned)(p1 >> 32) ^ c1 ^ k0;
    c1 = (unsigned)p1;
    c2 = (unsigned)(p0 >> 32) ^ c3 ^ k1;
    c3 = (unsigned)p0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  const unsigned w = (e & 3) == 0 ? c0 : (e & 3) == 1 ? c1 : (e & 3) == 2 ? c2 : c3;
  return (float)(w >> 8) * 5.9604644775390625e-08f;  // 2^-24
}
}  // namespace km

namespace kiln_rt {

// Sum / max over the 32 lanes of a warp (butterfly: every lane ends with the same value). All lanes must call.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = km::max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// True in exactly one block of the `count` that share `ticket`: the last to arrive, once every block's global
// writes before this call are visible to it (read them with KILN_LOAD_CG, past the non-coherent L1). The last
// block resets the ticket, so the counters are zero again for the next launch. Every thread must call.
__device__ __forceinline__ bool last_block(unsigned* ticket, unsigned count, float* flag_slot) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const bool last = atomicAdd(ticket, 1u) == count - 1u;
    if (last) atomicExch(ticket, 0u);
    flag_slot[0] = last ? 1.0f : 0.0f;
  }
  __syncthreads();
  const bool last = flag_slot[0] != 0.0f;
  __syncthreads();  // the slot may be reused after this call
  if (last) __threadfence();
  return last;
}

// TF32 tensor cores (KILN_TF32_PRODUCTS 1, render_options::precision = tf32; sm_80 and newer): a warp-wide
// mma.sync m16n8k8 multiplies a 16×8 tile of A by an 8×8 tile of B, the inputs rounded to TF32 (10 mantissa
// bits, round to nearest with ties away, cvt.rna) and the products summed in FP32. Fragment layout (lane = 4g + t):
// A(r, k) is register (r ≥ 8) + 2·(k ≥ 4) of lane 4·(r mod 8) + (k mod 4); B(k, c) is register (k ≥ 4) of lane
// 4c + (k mod 4); C(r, c) is register 2·(r ≥ 8) + (c mod 2) of lane 4·(r mod 8) + c/2. The host emulation
// computes the same sums lane by lane from the warp's exchanged registers, so the generated kernels' use of the
// layout is tested without a GPU.
#ifndef KILN_TF32_PRODUCTS
#define KILN_TF32_PRODUCTS 0
#endif
#if KILN_TF32_PRODUCTS
#ifdef KILN_HOST_EMULATION
__device__ __forceinline__ unsigned tf32_bits(float x) {
  unsigned u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;  // round the magnitude to nearest, ties away (inf/NaN kept)
  return u & 0xffffe000u;
}
__device__ __forceinline__ float tf32_float(unsigned u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const float mine[6] = {tf32_float(a[0]), tf32_float(a[1]), tf32_float(a[2]), tf32_float(a[3]), tf32_float(b[0]),
                         tf32_float(b[1])};
  const float* all = kiln_emu_warp_share(mine, 6);  // lane l's A registers at 6l, its B registers at 6l + 4
  for (int k = 0; k < 8; ++k) {
    const int hi = k >= 4 ? 1 : 0, a_lane = 4 * g + k % 4;
    const float a_lo = all[6 * a_lane + 2 * hi], a_hi = all[6 * a_lane + 2 * hi + 1];
    const float b0 = all[6 * (4 * (2 * t) + k % 4) + 4 + hi], b1 = all[6 * (4 * (2 * t + 1) + k % 4) + 4 + hi];
    d[0] = fmaf(a_lo, b0, d[0]);
    d[1] = fmaf(a_lo, b1, d[1]);
    d[2] = fmaf(a_hi, b0, d[2]);
    d[3] = fmaf(a_hi, b1, d[3]);
  }
  kiln_emu_warp_done();
}
#else
__device__ __forceinline__ unsigned tf32_bits(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif
#endif

// BF16 tensor cores (KILN_BF16_PRODUCTS 1, render_options::precision = bf16; sm_80 and newer): a warp-wide
// mma.sync m16n8k16 multiplies a 16×16 tile of A by a 16×8 tile of B, the inputs rounded to bfloat16 (8
// significant bits, to nearest, ties to even: cvt.rn) and their products, exact in FP32, summed in FP32 (PyTorch
// autocast's matmul). A 32-bit register holds two bf16 values, the lower k in its low half. Fragment layout
// (lane = 4g + t): A(r, k) is half k mod 2 of register (r ≥ 8) + 2·(k ≥ 8) of lane 4·(r mod 8) + (k mod 8)/2;
// B(k, c) is half k mod 2 of register (k ≥ 8) of lane 4c + (k mod 8)/2; C as for TF32 above. The host emulation
// computes the same sums lane by lane from the warp's exchanged registers.
#ifndef KILN_BF16_PRODUCTS
#define KILN_BF16_PRODUCTS 0
#endif
#if KILN_BF16_PRODUCTS
#ifdef KILN_HOST_EMULATION
__device__ __forceinline__ unsigned bf16_bits(float x) {
  unsigned u;
  memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;  // NaN stays a (quiet) NaN
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                  // to nearest, ties to even (inf stays inf)
}
__device__ __forceinline__ unsigned bf16x2(float lo, float hi) { return bf16_bits(lo) | (bf16_bits(hi) << 16); }
__device__ __forceinline__ float bf16_float(unsigned half) {
  const unsigned u = (half & 0xffffu) << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float mine[8];
  for (int i = 0; i < 4; ++i) mine[2 * i] = bf16_float(a[i]), mine[2 * i + 1] = bf16_float(a[i] >> 16);
  const float* all = kiln_emu_warp_share(mine, 8);  // lane l's A values at 8l + 2·register + half
  float row_g[16], row_g8[16];                       // A(g, k) and A(g + 8, k)
  for (int k = 0; k < 16; ++k) {
    const float* from = all + 8 * (4 * g + (k % 8) / 2);
    const int at = 2 * (k >= 8 ? 2 : 0) + k % 2;
    row_g[k] = from[at];
    row_g8[k] = from[at + 2];
  }
  kiln_emu_warp_done();
  for (int i = 0; i < 2; ++i) mine[2 * i] = bf16_float(b[i]), mine[2 * i + 1] = bf16_float(b[i] >> 16);
  all = kiln_emu_warp_share(mine, 4);  // lane l's B values at 4l + 2·register + half
  for (int k = 0; k < 16; ++k) {
    const int at = 2 * (k >= 8 ? 1 : 0) + k % 2;
    const float b0 = all[4 * (4 * (2 * t) + (k % 8) / 2) + at], b1 = all[4 * (4 * (2 * t + 1) + (k % 8) / 2) + at];
    d[0] = fmaf(row_g[k], b0, d[0]);
    d[1] = fmaf(row_g[k], b1, d[1]);
    d[2] = fmaf(row_g8[k], b0, d[2]);
    d[3] = fmaf(row_g8[k], b1, d[3]);
  }
  kiln_emu_warp_done();
}
#else
__device__ __forceinline__ unsigned bf16x2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // the first source goes to the high half
  return r;
}
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif
#endif

// One warp's tensor-core step on the staged tiles (k-major, SA and SB floats per k): d (a 16×8 tile of C) += the
// product of the 16 × MMA_K block of A whose element (g, 0) is at a and the MMA_K × 8 block of B whose (0, g) is at
// b, for lane 4g + t, in the fragment layouts above.
#if KILN_BF16_PRODUCTS
#define KILN_MMA_K 16
template <int SA, int SB>
__device__ __forceinline__ void mma_tile(float (&d)[4], const float* a, const float* b, int t) {
  const float* a0 = a + 2 * t * SA;
  const float* a8 = a0 + 8 * SA;
  const float* b0 = b + 2 * t * SB;
  const float* b8 = b0 + 8 * SB;
  const unsigned fa[4] = {bf16x2(a0[0], a0[SA]), bf16x2(a0[8], a0[SA + 8]), bf16x2(a8[0], a8[SA]), bf16x2(a8[8], a8[SA + 8])};
  const unsigned fb[2] = {bf16x2(b0[0], b0[SB]), bf16x2(b8[0], b8[SB])};
  mma_bf16(d, fa, fb);
}
#elif KILN_TF32_PRODUCTS
#define KILN_MMA_K 8
template <int SA, int SB>
__device__ __forceinline__ void mma_tile(float (&d)[4], const float* a, const float* b, int t) {
  const float* ak = a + t * SA;
  const float* bk = b + t * SB;
  const unsigned fa[4] = {tf32_bits(ak[0]), tf32_bits(ak[8]), tf32_bits(ak[4 * SA]), tf32_bits(ak[4 * SA + 8])};
  const unsigned fb[2] = {tf32_bits(bk[0]), tf32_bits(bk[4 * SB])};
  mma_tf32(d, fa, fb);
}
#endif

// Stages A's rows [m0, m0 + BM) and B's columns [n0, n0 + BN) for k in [k0, k0 + KC) into shared memory, k-major
// (sa[kk·(BM+1) + mm], sb[kk·(BN+1) + nn]), zeros past the counts. A_K_FAST/B_K_FAST say which index of an
// operand is contiguous in memory, so the loop walks it fastest and global loads coalesce.
template <int NT, int BM, int BN, int KC, bool A_K_FAST, bool B_K_FAST, class FA, class FB>
__device__ __forceinline__ void stage_tiles(float* sa, float* sb, int m0, int n0, int k0, int m_count, int n_count,
                                            int k_count, FA a, FB b) {
  constexpr int SA = BM + 1, SB = BN + 1;
  for (int i = threadIdx.x; i < KC * BM; i += NT) {
    const int kk = A_K_FAST ? i % KC : i / BM, mm = A_K_FAST ? i / KC : i % BM;
    const int m = m0 + mm, k = k0 + kk;
    sa[kk * SA + mm] = (m < m_count && k < k_count) ? a(m, k) : 0.0f;
  }
  for (int i = threadIdx.x; i < KC * BN; i += NT) {
    const int kk = B_K_FAST ? i % KC : i / BN, nn = B_K_FAST ? i / KC : i % BN;
    const int n = n0 + nn, k = k0 + kk;
    sb[kk * SB + nn] = (n < n_count && k < k_count) ? b(k, n) : 0.0f;
  }
}

// C[m][n] = sum over k of a(m, k) * b(k, n), for m < m_count, n < n_count, k < k_count; out(m, n, value) is called
// once per element. The whole block works on a block tile of BM = (NT/TX)*RM rows by BN = TX*RN columns; KC values
// of k at a time are staged through shared memory (scratch holds KC*(BM+1) + KC*(BN+1) floats; the +1 keeps the
// transposed stores free of bank conflicts). In FP32 each thread keeps an RM x RN register tile; with TF32 or
// BF16 products (above) each warp keeps the accumulators of some of the tile's 16×8 sub-tiles instead. Every thread must
// call (it synchronizes); the counts must be the same in every thread.
template <int NT, int TX, int RM, int RN, int KC, bool A_K_FAST, bool B_K_FAST, class FA, class FB, class FO>
__device__ __forceinline__ void block_gemm(float* scratch, int m_count, int n_count, int k_count, FA a, FB b, FO out) {
  constexpr int TY = NT / TX, BM = TY * RM, BN = TX * RN, SA = BM + 1, SB = BN + 1;
  float* sa = scratch;
  float* sb = scratch + KC * SA;
#ifdef KILN_MMA_K
  if constexpr (BM % 16 == 0 && BN % 8 == 0 && KC % KILN_MMA_K == 0 && NT % 32 == 0) {
    constexpr int TILES_N = BN / 8, TILES = (BM / 16) * TILES_N, WARPS = NT / 32;
    constexpr int PER_WARP = (TILES + WARPS - 1) / WARPS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    for (int m0 = 0; m0 < m_count; m0 += BM)
      for (int n0 = 0; n0 < n_count; n0 += BN) {
        float acc[PER_WARP][4];
#pragma unroll
        for (int w = 0; w < PER_WARP; ++w)
#pragma unroll
          for (int q = 0; q < 4; ++q) acc[w][q] = 0.0f;
        for (int k0 = 0; k0 < k_count; k0 += KC) {
          stage_tiles<NT, BM, BN, KC, A_K_FAST, B_K_FAST>(sa, sb, m0, n0, k0, m_count, n_count, k_count, a, b);
          __syncthreads();
#pragma unroll
          for (int ks = 0; ks < KC; ks += KILN_MMA_K)
#pragma unroll
            for (int w = 0; w < PER_WARP; ++w) {
              const int tile = warp + w * WARPS;  // the same in every lane of a warp: mma.sync runs warp-wide
              if (tile >= TILES) break;
              mma_tile<SA, SB>(acc[w], sa + ks * SA + (tile / TILES_N) * 16 + g, sb + ks * SB + (tile % TILES_N) * 8 + g, t);
            }
          __syncthreads();
        }
#pragma unroll
        for (int w = 0; w < PER_WARP; ++w) {
          const int tile = warp + w * WARPS;
          if (tile >= TILES) break;
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int m = m0 + (tile / TILES_N) * 16 + g + 8 * (q >> 1), n = n0 + (tile % TILES_N) * 8 + 2 * t + (q & 1);
            if (m < m_count && n < n_count) out(m, n, acc[w][q]);
          }
        }
      }
    return;
  }
#endif
  const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  for (int m0 = 0; m0 < m_count; m0 += BM)
    for (int n0 = 0; n0 < n_count; n0 += BN) {
      float acc[RM][RN];
#pragma unroll
      for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j) acc[i][j] = 0.0f;
      for (int k0 = 0; k0 < k_count; k0 += KC) {
        stage_tiles<NT, BM, BN, KC, A_K_FAST, B_K_FAST>(sa, sb, m0, n0, k0, m_count, n_count, k_count, a, b);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KC; ++kk) {
          float av[RM], bv[RN];
#pragma unroll
          for (int i = 0; i < RM; ++i) av[i] = sa[kk * SA + ty + i * TY];
#pragma unroll
          for (int j = 0; j < RN; ++j) bv[j] = sb[kk * SB + tx + j * TX];
#pragma unroll
          for (int i = 0; i < RM; ++i)
#pragma unroll
            for (int j = 0; j < RN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
      }
#pragma unroll
      for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j) {
          const int m = m0 + ty + i * TY, n = n0 + tx + j * TX;
          if (m < m_count && n < n_count) out(m, n, acc[i][j]);
        }
    }
}

// Shared-memory floats block_gemm needs for its staging tiles.
template <int NT, int TX, int RM, int RN, int KC>
struct gemm_scratch { static constexpr int floats = KC * ((NT / TX) * RM + 1) + KC * (TX * RN + 1); };

}  // namespace kiln_rt
)KILN";
}

// The prelude of a module whose products run on tensor cores in TF32 or BF16 (render_options::precision) or in
// FP32. Each with the window ops' arithmetic (conv, pooling: kiln/ops/window_math.hpp), the very text the host
// compiles, as __device__ functions.
inline std::string prelude_source(matmul_precision precision) {
  const char* define = precision == matmul_precision::tf32   ? "#define KILN_TF32_PRODUCTS 1\n"
                       : precision == matmul_precision::bf16 ? "#define KILN_BF16_PRODUCTS 1\n"
                                                             : "";
  return define + std::string(prelude_source()) +
         "\n// ---- window ops (kiln/ops/window_math.hpp)\n" +
         KILN_WINDOW_TEXT(KILN_WINDOW_SOURCE(__device__ __forceinline__)) + "\n";
}

}  // namespace kiln::cuda
