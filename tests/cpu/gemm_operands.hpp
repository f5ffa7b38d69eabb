#pragma once
// Random GEMM operands for the gemm tests (gemm_cases.hpp, test_gemm_bf16.cpp): an M×K or K×N matrix stored
// row-major or transposed, its elements optionally `spread` floats apart (so that neither stride is 1).
#include <kiln/cpu/gemm.hpp>

#include <algorithm>
#include <random>
#include <vector>

namespace kiln::cpu::gemm_test {

struct shape {
  long M, N, K;
};

// Operand storage: A is M×K, stored row-major (a_trans = false) or as its transpose (K×M, row-major);
// `spread` > 1 stores every element `spread` floats apart (neither stride 1) to exercise general strides.
struct operand {
  std::vector<float> data;
  matrix_view view;
};
inline operand make_operand(long rows, long cols, bool transposed, long spread, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  operand o;
  o.data.resize(static_cast<std::size_t>(std::max(1L, rows * cols * spread)));
  for (float& x : o.data) x = dist(rng);
  o.view = transposed ? matrix_view{o.data.data(), spread, rows * spread} : matrix_view{o.data.data(), cols * spread, spread};
  return o;
}

inline float at(matrix_view v, long r, long c) { return v.p[r * v.row_stride + c * v.col_stride]; }

}  // namespace kiln::cpu::gemm_test
