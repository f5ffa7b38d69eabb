#pragma once
// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011). A draw is a pure function of (key, counter), so every backend computes the same value for
// an element without sharing any generator state: the reference evaluator, the CPU kernels (per lane) and the
// CUDA kernels (per thread; the same rounds in render/prelude.hpp) draw exactly the same dropout masks.
//
// uniform(key, stream, e) is element e's draw in stream `stream` (one stream per random node: its k) for the
// step's key {seed, step}: the counter is (e / 4, stream, step) and the key the seed; word e % 4 of the
// result, its top 24 bits, gives a float in [0, 1) on a grid of 2⁻²⁴ (exact in float and in double).
#include <array>
#include <cstdint>

namespace kiln::random {

// What varies a step's draws: the seed (fixed for a run) and the step number (advanced by every step).
// row_first and row_stride place the step's batch in a larger one: its row r is row row_first + r·row_stride of
// the whole batch, and a value with a row per sample draws that row's numbers. A data-parallel rank that
// trains on its share of each batch thereby drops what one process training on the whole batch would drop
// (cpu::train_step::set_sample_rows).
struct key {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint64_t row_first = 0, row_stride = 1;
  constexpr bool operator==(const key&) const = default;
};

// The row of the whole batch that row r of this step's batch is.
constexpr std::uint64_t sample_row(const key& k, std::uint64_t r) { return k.row_first + r * k.row_stride; }

// Where element (r, c) of a random value of `rows` × `cols` draws in its stream: R·cols + c, where R is 0 for a
// single row, the row of the whole batch for a row per sample (rows < 0: the graph's batch dimension, kiln::batch)
// and r otherwise; a dimension of 1 is one draw broadcast along it. Every backend places its draws with this.
constexpr std::uint64_t element_index(const key& k, long rows, long cols, long r, long c) {
  const std::uint64_t row = rows == 1 ? 0 : rows < 0 ? sample_row(k, static_cast<std::uint64_t>(r)) : static_cast<std::uint64_t>(r);
  return row * static_cast<std::uint64_t>(cols) + static_cast<std::uint64_t>(cols == 1 ? 0 : c);
}

inline constexpr std::uint32_t philox_m0 = 0xD2511F53u, philox_m1 = 0xCD9E8D57u;  // round multipliers
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u, philox_w1 = 0xBB67AE85u;  // key schedule (golden ratio, √3 − 1)

// Ten rounds: (c0, c1, c2, c3) ← (hi(m1·c2) ⊕ c1 ⊕ k0, lo(m1·c2), hi(m0·c0) ⊕ c3 ⊕ k1, lo(m0·c0)), the key
// advanced by (w0, w1) after each round.
constexpr std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> c, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(philox_m0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(philox_m1) * c[2];
    c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<std::uint32_t>(p1),
         static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<std::uint32_t>(p0)};
    k0 += philox_w0;
    k1 += philox_w1;
  }
  return c;
}

// The four draws of elements 4q … 4q + 3 of a stream.
constexpr std::array<std::uint32_t, 4> block_of(const key& k, std::uint32_t stream, std::uint64_t q) {
  return philox4x32_10({static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(q >> 32) ^ static_cast<std::uint32_t>(k.step >> 32),
                        stream, static_cast<std::uint32_t>(k.step)},
                       static_cast<std::uint32_t>(k.seed), static_cast<std::uint32_t>(k.seed >> 32));
}

constexpr float to_unit(std::uint32_t word) { return static_cast<float>(word >> 8) * 0x1p-24f; }

// Element e's uniform draw in [0, 1).
constexpr float uniform(const key& k, std::uint32_t stream, std::uint64_t e) { return to_unit(block_of(k, stream, e >> 2)[e & 3]); }

// The draws of elements first … first + count − 1 into out, one Philox block per 4 elements.
constexpr void uniform_run(const key& k, std::uint32_t stream, std::uint64_t first, int count, float* out) {
  std::uint64_t q = first >> 2;
  std::array<std::uint32_t, 4> w = block_of(k, stream, q);
  for (int i = 0; i < count; ++i) {
    const std::uint64_t e = first + static_cast<std::uint64_t>(i);
    if ((e >> 2) != q) w = block_of(k, stream, q = e >> 2);
    out[i] = to_unit(w[e & 3]);
  }
}

}  // namespace kiln::random
