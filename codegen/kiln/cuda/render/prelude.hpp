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

#include <string>

namespace kiln::cuda {

inline constexpr int max_hypers = 16;  // slots of kiln_hypers; optimizers use at most 9

inline const char* prelude_source() {
  return R"KILN(// ---- kiln CUDA prelude: float32 throughout (matrix products on TF32 tensor cores when KILN_TF32_PRODUCTS is 1)
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
// transposed stores free of bank conflicts). In FP32 each thread keeps an RM x RN register tile; with TF32
// products (above) each warp keeps the accumulators of some of the tile's 16×8 sub-tiles instead. Every thread must
// call (it synchronizes); the counts must be the same in every thread.
template <int NT, int TX, int RM, int RN, int KC, bool A_K_FAST, bool B_K_FAST, class FA, class FB, class FO>
__device__ __forceinline__ void block_gemm(float* scratch, int m_count, int n_count, int k_count, FA a, FB b, FO out) {
  constexpr int TY = NT / TX, BM = TY * RM, BN = TX * RN, SA = BM + 1, SB = BN + 1;
  float* sa = scratch;
  float* sb = scratch + KC * SA;
#if KILN_TF32_PRODUCTS
  if constexpr (BM % 16 == 0 && BN % 8 == 0 && KC % 8 == 0 && NT % 32 == 0) {
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
          for (int ks = 0; ks < KC; ks += 8)
#pragma unroll
            for (int w = 0; w < PER_WARP; ++w) {
              const int tile = warp + w * WARPS;  // the same in every lane of a warp: mma.sync runs warp-wide
              if (tile >= TILES) break;
              const float* ak = sa + (ks + t) * SA + (tile / TILES_N) * 16 + g;
              const float* bk = sb + (ks + t) * SB + (tile % TILES_N) * 8 + g;
              const unsigned fa[4] = {tf32_bits(ak[0]), tf32_bits(ak[8]), tf32_bits(ak[4 * SA]), tf32_bits(ak[4 * SA + 8])};
              const unsigned fb[2] = {tf32_bits(bk[0]), tf32_bits(bk[4 * SB])};
              mma_tf32(acc[w], fa, fb);
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

// The prelude of a module whose products run on TF32 tensor cores (render_options::precision) or in FP32.
// Both with the window ops' arithmetic (conv, pooling: kiln/ops/window_math.hpp), the very text the host
// compiles, as __device__ functions.
inline std::string prelude_source(bool tf32_products) {
  return std::string(tf32_products ? "#define KILN_TF32_PRODUCTS 1\n" : "") + prelude_source() +
         "\n// ---- window ops (kiln/ops/window_math.hpp)\n" +
         KILN_WINDOW_TEXT(KILN_WINDOW_SOURCE(__device__ __forceinline__)) + "\n";
}

}  // namespace kiln::cuda
