// GEMM at 4 lanes without FMA (the SSE2 code path: 4×2-vector register block).
#define KILN_CPU_VECTOR_BITS 128
#define KILN_CPU_NO_FMA 1
#include "gemm_cases.hpp"
