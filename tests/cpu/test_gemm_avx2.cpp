// GEMM at 8 lanes (the AVX2 code path: 4×3-vector register block).
#define KILN_CPU_VECTOR_BITS 256
#include "gemm_cases.hpp"
