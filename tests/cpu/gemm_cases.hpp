// Test cases for kiln/cpu/gemm.hpp, included by test_gemm*.cpp, each built for one vector width (the
// including file may define KILN_CPU_VECTOR_BITS first). Every result is checked against a double-precision
// triple loop, with a tolerance scaled by Σ_k |A(i,k)·B(k,j)| (the size of the rounding the float sums may
// carry), over many shapes (tiles, tails, tiny, K and M blocking), all four transpose combinations given as
// strides, general strides, accumulate on and off, and a C with padding columns that must stay untouched.
#include "gemm_operands.hpp"

#include <kiln/cpu/gemm.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kiln::cpu {
namespace {

using gemm_test::at;
using gemm_test::make_operand;
using gemm_test::operand;
using gemm_test::shape;

// Runs gemm on one case and compares with the double-precision reference; returns the number of mismatches.
long check_case(shape s, bool a_trans, bool b_trans, long spread, bool accumulate, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const operand A = make_operand(s.M, s.K, a_trans, spread, rng);
  const operand B = make_operand(s.K, s.N, b_trans, spread, rng);
  const long ldc = s.N + 3;  // padding columns must stay untouched
  constexpr float pad = -777.0f;
  std::vector<float> C(static_cast<std::size_t>(std::max(1L, s.M * ldc)), pad), C0;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (long i = 0; i < s.M; ++i)
    for (long j = 0; j < s.N; ++j) C[i * ldc + j] = accumulate ? dist(rng) : std::numeric_limits<float>::quiet_NaN();
  C0 = C;
  // Workspace with a guard after it: gemm must stay within gemm_workspace_floats.
  const std::size_t ws = gemm_workspace_floats(s.M, s.N, s.K);
  std::vector<float> work(ws + 64, 0.0f);
  for (std::size_t i = ws; i < work.size(); ++i) work[i] = pad;

  gemm(s.M, s.N, s.K, A.view, B.view, C.data(), ldc, accumulate, work.data());

  long bad = 0;
  for (std::size_t i = ws; i < work.size(); ++i) bad += work[i] != pad;
  for (long i = 0; i < s.M; ++i) {
    for (long j = 0; j < s.N; ++j) {
      double ref = accumulate ? C0[i * ldc + j] : 0.0, scale = accumulate ? std::fabs(C0[i * ldc + j]) : 0.0;
      for (long k = 0; k < s.K; ++k) {
        const double t = static_cast<double>(at(A.view, i, k)) * at(B.view, k, j);
        ref += t;
        scale += std::fabs(t);
      }
      const double got = C[i * ldc + j];
      if (!(std::fabs(got - ref) <= 1e-5 * scale + 1e-30)) {
        if (bad < 3) UNSCOPED_INFO("C[" << i << "," << j << "] = " << got << ", want " << ref << " (scale " << scale << ")");
        ++bad;
      }
    }
    for (long j = s.N; j < ldc; ++j) bad += C[i * ldc + j] != pad;
  }
  return bad;
}

const std::vector<shape>& test_shapes() {
  static const std::vector<shape> shapes = {
      {1, 1, 1},     {7, 10, 3},   {3, 2, 2},    {4, 1, 2},    {256, 128, 784}, {13, 17, 19},  {33, 47, 65},
      {8, 48, 16},   {9, 49, 17},  {16, 96, 32}, {5, 1, 300},  {300, 1, 5},     {100, 2, 64},  {1, 128, 784},
      {2, 784, 33},  {17, 10, 64}, {64, 33, 1100}, {600, 20, 8}, {31, 31, 31},   {2, 3, 40},    {40, 3, 2},
      {128, 64, 256}, {6, 130, 9}, {20, 64, 30}, {11, 112, 5},
      // a few rows against a transposed B from 9 rows on: computed transposed (rows along the lanes)
      {5, 40, 33}, {12, 128, 784}, {16, 10, 64}, {16, 3, 16}, {9, 200, 1100}, {7, 64, 100},
  };
  return shapes;
}

TEST_CASE("gemm matches a double-precision reference: shapes × transposes × accumulate") {
  std::uint32_t seed = 1;
  for (const shape& s : test_shapes())
    for (int trans = 0; trans < 4; ++trans)
      for (bool accumulate : {false, true}) {
        const bool a_trans = trans & 1, b_trans = trans & 2;
        INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " A" << (a_trans ? "ᵀ" : "") << " B" << (b_trans ? "ᵀ" : "")
                  << " accumulate=" << accumulate << " seed=" << seed);
        CHECK(check_case(s, a_trans, b_trans, 1, accumulate, seed++) == 0);
      }
}

TEST_CASE("gemm with general strides (neither stride 1)") {
  std::uint32_t seed = 1000;
  for (const shape& s : {shape{9, 21, 14}, shape{40, 50, 60}, shape{3, 2, 2}, shape{1, 5, 33}})
    for (int trans = 0; trans < 4; ++trans) {
      INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " transposes=" << trans << " seed=" << seed);
      CHECK(check_case(s, trans & 1, trans & 2, 3, trans == 1, seed++) == 0);
    }
}

TEST_CASE("a few rows against a transposed B: dot products up to 8 rows, the transposed product from 9") {
  // the shapes above that reach each method (their results are checked there)
  std::mt19937 rng(5);
  const auto method_for = [&](long M, long N, long K) {
    const operand A = make_operand(M, K, false, 1, rng), B = make_operand(K, N, true, 1, rng);
    return gemm_detail::choose(M, N, K, A.view, B.view);
  };
  CHECK(method_for(12, 128, 784) == gemm_detail::method::transposed);
  CHECK(method_for(9, 200, 1100) == gemm_detail::method::transposed);
  CHECK(method_for(7, 64, 100) == gemm_detail::method::dot);
  CHECK(method_for(16, 10, 64) == gemm_detail::method::transposed);
  CHECK(method_for(16, 3, 16) == gemm_detail::method::transposed);
  CHECK(method_for(1, 128, 784) == gemm_detail::method::dot);
  CHECK(method_for(100, 2, 64) == gemm_detail::method::dot);  // two columns: still dot products
  CHECK(method_for(20, 64, 30) == gemm_detail::method::packed);
}

TEST_CASE("gemm with K = 0 writes zeros or leaves C alone; empty M or N touch nothing") {
  float C[6] = {1, 2, 3, 4, 5, 6};
  float ws[64];
  const float a = 0.0f;
  gemm(2, 3, 0, matrix_view{&a, 0, 1}, matrix_view{&a, 3, 1}, C, 3, true, ws);
  CHECK(C[5] == 6.0f);
  gemm(2, 3, 0, matrix_view{&a, 0, 1}, matrix_view{&a, 3, 1}, C, 3, false, ws);
  for (float c : C) CHECK(c == 0.0f);
  C[0] = 9.0f;
  gemm(0, 3, 5, matrix_view{&a, 0, 1}, matrix_view{&a, 3, 1}, C, 3, false, ws);
  gemm(2, 0, 5, matrix_view{&a, 0, 1}, matrix_view{&a, 3, 1}, C, 3, false, ws);
  CHECK(C[0] == 9.0f);
}

TEST_CASE("compile-time sizes give the same result and are checked") {
  std::mt19937 rng(7);
  const long M = 37, N = 64, K = 100;
  const operand A = make_operand(M, K, false, 1, rng), B = make_operand(K, N, true, 1, rng);
  std::vector<float> C1(M * N), C2(M * N), work(gemm_workspace_floats(M, N, K));
  gemm(M, N, K, A.view, B.view, C1.data(), N, false, work.data());
  gemm<64, 100>(M, N, K, A.view, B.view, C2.data(), N, false, work.data());
  CHECK(C1 == C2);
  gemm<64, -1>(M, N, K, A.view, B.view, C2.data(), N, false, work.data());
  CHECK(C1 == C2);
  CHECK_THROWS_AS((gemm<65, -1>(M, N, K, A.view, B.view, C2.data(), N, false, work.data())), shape_error);
  CHECK_THROWS_WITH((gemm<64, 99>(M, N, K, A.view, B.view, C2.data(), N, false, work.data())),
                    Catch::Contains("K = 99") && Catch::Contains("K = 100"));
}

TEST_CASE("B packed once serves many row blocks, with or without packing a transposed A") {
  std::mt19937 rng(11);
  for (int trans = 0; trans < 4; ++trans)
    for (bool a_workspace : {false, true}) {
      const bool a_trans = trans & 1, b_trans = trans & 2;
      const long M = 200, N = 130, K = 77, block = 64;
      const operand A = make_operand(M, K, a_trans, 1, rng), B = make_operand(K, N, b_trans, 1, rng);
      std::vector<float> whole(M * N), blocks(M * N), work(gemm_workspace_floats(M, N, K));
      std::vector<float> packed(gemm_packed_b_floats(N, K)), a_work(gemm_packed_a_floats(block, K) + 64, -777.0f);
      gemm(M, N, K, A.view, B.view, whole.data(), N, false, work.data());
      gemm_pack_b(N, K, B.view, packed.data());
      for (long r = 0; r < M; r += block) {
        const matrix_view a{A.view.p + r * A.view.row_stride, A.view.row_stride, A.view.col_stride};
        gemm_prepacked<130, 77>(std::min(block, M - r), N, K, a, packed.data(), blocks.data() + r * N, N, false,
                                a_workspace ? a_work.data() : nullptr);
      }
      INFO("A transposed: " << a_trans << ", B transposed: " << b_trans << ", A workspace: " << a_workspace);
      CHECK(whole == blocks);  // same kernels, same summation order
      for (std::size_t i = gemm_packed_a_floats(block, K); i < a_work.size(); ++i) CHECK(a_work[i] == -777.0f);
    }
}

TEST_CASE("B packed in parts writes exactly what packing it whole writes") {
  std::mt19937 rng(13);
  for (const shape s : {shape{1, 128, 784}, shape{1, 130, 77}, shape{1, 10, 33}, shape{1, 200, 5}, shape{1, 1, 1}})
    for (long spread : {1L, 3L})
      for (bool b_trans : {false, true}) {
        const operand B = make_operand(s.K, s.N, b_trans, spread, rng);
        std::vector<float> whole(gemm_packed_b_floats(s.N, s.K), -1.0f);
        gemm_pack_b(s.N, s.K, B.view, whole.data());
        for (int parts = 1; parts <= 5; ++parts) {
          INFO("N " << s.N << " K " << s.K << ", B transposed: " << b_trans << ", spread " << spread << ", " << parts << " parts");
          std::vector<float> joined(whole.size() + 16, -777.0f);  // -777 marks what no part wrote
          for (int part = parts - 1; part >= 0; --part) gemm_pack_b_part(s.N, s.K, B.view, joined.data(), part, parts);
          CHECK(std::equal(whole.begin(), whole.end(), joined.begin()));
          for (std::size_t i = whole.size(); i < joined.size(); ++i) CHECK(joined[i] == -777.0f);
        }
      }
  std::vector<float> out(gemm_packed_b_floats(16, 16));
  const operand B = make_operand(16, 16, false, 1, rng);
  CHECK_THROWS_WITH(gemm_pack_b_part(16, 16, B.view, out.data(), 2, 2), Catch::Contains("part 2 of 2"));
}

TEST_CASE("a row-major B read in place gives gemm's result, with or without packing a transposed A") {
  std::mt19937 rng(12);
  for (const shape s : {shape{200, 130, 77}, shape{64, 784, 256}, shape{9, 49, 1100}, shape{300, 20, 8}})
    for (bool a_trans : {false, true})
      for (bool a_workspace : {false, true}) {
        const operand A = make_operand(s.M, s.K, a_trans, 1, rng), B = make_operand(s.K, s.N, false, 1, rng);
        std::vector<float> packed_result(s.M * s.N), in_place(s.M * s.N), work(gemm_workspace_floats(s.M, s.N, s.K));
        std::vector<float> a_work(gemm_packed_a_floats(s.M, s.K) + 64, -777.0f);
        gemm(s.M, s.N, s.K, A.view, B.view, packed_result.data(), s.N, false, work.data());
        gemm_b_in_place(s.M, s.N, s.K, A.view, B.view, in_place.data(), s.N, false, a_workspace ? a_work.data() : nullptr);
        INFO("M " << s.M << " N " << s.N << " K " << s.K << ", A transposed: " << a_trans << ", A workspace: " << a_workspace);
        CHECK(packed_result == in_place);  // the same micro-kernels over k in the same order
        for (std::size_t i = gemm_packed_a_floats(s.M, s.K); i < a_work.size(); ++i) CHECK(a_work[i] == -777.0f);
        gemm_b_in_place(s.M, s.N, s.K, A.view, B.view, in_place.data(), s.N, true);  // accumulate: twice the product
        long bad = 0;
        for (std::size_t i = 0; i < in_place.size(); ++i)
          bad += !(std::fabs(in_place[i] - 2 * packed_result[i]) <= 1e-5f * (1 + std::fabs(packed_result[i])));
        CHECK(bad == 0);
      }
  const operand B = make_operand(8, 8, true, 1, rng);  // column-major
  std::vector<float> C(64);
  CHECK_THROWS_WITH(gemm_b_in_place(8, 8, 8, B.view, B.view, C.data(), 8, false), Catch::Contains("row-major"));
}

}  // namespace
}  // namespace kiln::cpu
