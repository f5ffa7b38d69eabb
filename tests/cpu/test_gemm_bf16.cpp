// gemm_bf16 (kiln/cpu/gemm_bf16.hpp) on every BF16 path this CPU has (the others say 'skipped'):
//  - the scalar model of the conversion (to_bf16) is what the hardware does, on ties, denormals, NaN, overflow;
//  - every result equals the double-precision product of the bf16-rounded operands up to FP32 summation error
//    (1e-5·Σ|a·b|, as the FP32 gemm test), and the FP32 product up to (2u + u²)·Σ|a·b| more (u = 2^-8);
//  - the operands really are rounded (a difference only BF16 makes is seen exactly);
//  - over shapes around the tiles (16-row AMX tiles, 8-row and 48-column register blocks, 64-row A blocks,
//    32-k tile steps), all four transposes, general strides, accumulate on and off, padding columns of C and
//    the workspace's end untouched.
#include "../sanitizer_build.hpp"
#include "gemm_operands.hpp"

#include <kiln/cpu/gemm_bf16.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kiln::cpu {
namespace {

std::vector<bf16_path> paths_here() {
  std::vector<bf16_path> p;
  for (bf16_path q : {bf16_path::avx512_bf16, bf16_path::amx})
    if (available(q)) p.push_back(q);
  return p;
}

bool skip_without_bf16() {
  if (!paths_here().empty()) return false;
  WARN("skipped: this CPU has no AVX512-BF16 or AMX-BF16 (best path: " << describe(best_bf16_path()) << ")");
  return true;
}

using gemm_test::at;
using gemm_test::make_operand;
using gemm_test::operand;
using gemm_test::shape;
double rounded(float x) { return from_bf16(to_bf16(x)); }

long check_case(bf16_path path, shape s, bool a_trans, bool b_trans, long spread, bool accumulate, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const operand A = make_operand(s.M, s.K, a_trans, spread, rng), B = make_operand(s.K, s.N, b_trans, spread, rng);
  const long ldc = s.N + 3;
  constexpr float pad = -777.0f;
  std::vector<float> C(static_cast<std::size_t>(s.M * ldc), pad);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (long i = 0; i < s.M; ++i)
    for (long j = 0; j < s.N; ++j) C[i * ldc + j] = accumulate ? dist(rng) : std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> C0 = C;
  const std::size_t ws = gemm_bf16_workspace_floats(s.M, s.N, s.K);
  std::vector<float> work(ws + 64, pad);
  gemm_bf16(path, s.M, s.N, s.K, A.view, B.view, C.data(), ldc, accumulate, work.data());

  long bad = 0;
  for (std::size_t i = ws; i < work.size(); ++i) bad += work[i] != pad;
  constexpr double u = 1.0 / 256;  // BF16's unit roundoff
  for (long i = 0; i < s.M; ++i) {
    for (long j = 0; j < s.N; ++j) {
      const double c0 = accumulate ? C0[i * ldc + j] : 0.0;
      double of_rounded = c0, exact = c0, scale = std::fabs(c0);
      for (long k = 0; k < s.K; ++k) {
        const float a = at(A.view, i, k), b = at(B.view, k, j);
        of_rounded += rounded(a) * rounded(b);
        exact += static_cast<double>(a) * b;
        scale += std::fabs(static_cast<double>(a) * b);
      }
      const double got = C[i * ldc + j];
      const bool near_rounded = std::fabs(got - of_rounded) <= 1e-5 * scale + 1e-30;
      const bool near_exact = std::fabs(got - exact) <= (2 * u + u * u + 1e-5) * scale + 1e-30;
      if (!near_rounded || !near_exact) {
        if (bad < 3)
          UNSCOPED_INFO("C[" << i << "," << j << "] = " << got << ", want " << of_rounded << " (of the bf16 operands), "
                             << exact << " (exact), scale " << scale);
        ++bad;
      }
    }
    for (long j = s.N; j < ldc; ++j) bad += C[i * ldc + j] != pad;
  }
  return bad;
}

TEST_CASE("to_bf16 rounds as the hardware does: ties to even, denormals to zero, NaN kept, overflow to infinity") {
  if (skip_without_bf16()) return;
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 1.0f + 1.0f / 512,
                           1.0f + 1.0f / 128 + 1.0f / 256, 3.0e38f, -3.4e38f, 1e-39f, -1e-39f, 1.2e-38f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max(),
                           std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  while (xs.size() % 32 != 0 || xs.size() < 4096) {
    const std::uint32_t b = bits(rng);
    float x;
    std::memcpy(&x, &b, 4);
    xs.push_back(x);
  }
  // one row of A per 32 values, packed (converted) by the hardware
  const long K = 32, M = static_cast<long>(xs.size()) / K;
  std::vector<std::uint16_t> packed(static_cast<std::size_t>((M + 15) / 16 * 16 * K));
  long mismatches = 0;
  for (long m0 = 0; m0 < M; m0 += 64) {
    const long rows = std::min(64L, M - m0);
    bf16_detail::pack_a(matrix_view{xs.data(), K, 1}, m0, rows, K, packed.data());
    for (long i = 0; i < rows * K; ++i) {
      const float x = xs[static_cast<std::size_t>(m0 * K + i)];
      const std::uint16_t want = to_bf16(x), got = packed[static_cast<std::size_t>(i)];
      const bool both_nan = std::isnan(x) && std::isnan(from_bf16(got)) && std::isnan(from_bf16(want));
      if (got != want && !both_nan) {
        if (mismatches < 5) UNSCOPED_INFO("x = " << x << ": hardware " << got << ", to_bf16 " << want);
        ++mismatches;
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(to_bf16(1.0f + 1.0f / 256) == to_bf16(1.0f));                 // a tie goes to the even neighbour
  CHECK(from_bf16(to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);  // and the other tie up
}

TEST_CASE("gemm_bf16 matches the product of the rounded operands: shapes × transposes × accumulate, each path") {
  if (skip_without_bf16()) return;
  const std::vector<shape> shapes = {
      {1, 1, 1},      {1, 16, 32},    {3, 2, 2},      {7, 10, 3},    {8, 48, 64},    {9, 49, 65},   {15, 17, 31},
      {16, 16, 32},   {17, 33, 33},   {31, 31, 100},  {32, 32, 32},  {33, 47, 63},   {64, 64, 64},  {65, 50, 17},
      {100, 2, 64},   {130, 97, 40},  {400, 80, 40},  {5, 1, 300},   {2, 784, 33},   {40, 3, 2},    {1, 128, 784},
      {256, 128, 784}, {400, 80, 420}, {80, 420, 400},
  };
  std::uint32_t seed = 1;
  for (bf16_path path : paths_here())
    for (const shape& s : shapes) {
      // Under the sanitizers the double reference of the largest shapes takes minutes; their blocking (several
      // 64-row A blocks, long K) is checked by the optimized build, every tile edge by the small shapes.
      if (KILN_TEST_SANITIZED && s.M * s.N * s.K > 200000) {
        seed += 8;
        continue;
      }
      for (int trans = 0; trans < 4; ++trans)
        for (bool accumulate : {false, true}) {
          INFO(describe(path) << ": M=" << s.M << " N=" << s.N << " K=" << s.K << " A" << (trans & 1 ? "ᵀ" : "") << " B"
                              << (trans & 2 ? "ᵀ" : "") << " accumulate=" << accumulate << " seed=" << seed);
          CHECK(check_case(path, s, trans & 1, trans & 2, 1, accumulate, seed++) == 0);
        }
    }
}

TEST_CASE("gemm_bf16 with general strides (neither stride 1)") {
  if (skip_without_bf16()) return;
  std::uint32_t seed = 1000;
  for (bf16_path path : paths_here())
    for (const shape& s : {shape{9, 21, 14}, shape{40, 50, 60}, shape{3, 2, 2}, shape{33, 5, 33}})
      for (int trans = 0; trans < 4; ++trans) {
        INFO(describe(path) << ": M=" << s.M << " N=" << s.N << " K=" << s.K << " transposes=" << trans);
        CHECK(check_case(path, s, trans & 1, trans & 2, 3, trans == 1, seed++) == 0);
      }
}

TEST_CASE("gemm_bf16 rounds its operands: 1 + 2^-10 counts as 1, where FP32 sees it") {
  if (skip_without_bf16()) return;
  const long M = 20, N = 20, K = 40;
  std::vector<float> A(M * K, 1.0f + 1.0f / 1024), B(K * N, 1.0f), C(M * N), work(gemm_bf16_workspace_floats(M, N, K));
  for (bf16_path path : paths_here()) {
    INFO(describe(path));
    gemm_bf16(path, M, N, K, matrix_view{A.data(), K, 1}, matrix_view{B.data(), N, 1}, C.data(), N, false, work.data());
    for (float c : C) CHECK(c == static_cast<float>(K));  // exact: 40 products of 1·1
  }
  gemm_bf16(bf16_path::fp32, M, N, K, matrix_view{A.data(), K, 1}, matrix_view{B.data(), N, 1}, C.data(), N, false, work.data());
  CHECK(C[0] == Approx(K * (1.0 + 1.0 / 1024)).epsilon(1e-6));
}

TEST_CASE("gemm_bf16 refuses a path this CPU lacks, naming it") {
  for (bf16_path path : {bf16_path::avx512_bf16, bf16_path::amx}) {
    if (available(path)) continue;
    float a = 1, c = 0, ws[256];
    CHECK_THROWS_WITH(gemm_bf16(path, 1, 1, 1, matrix_view{&a, 1, 1}, matrix_view{&a, 1, 1}, &c, 1, false, ws),
                      Catch::Contains(describe(path)));
  }
  if (available(bf16_path::amx)) WARN("skipped: this CPU has every BF16 path, none to refuse");
}

}  // namespace
}  // namespace kiln::cpu
