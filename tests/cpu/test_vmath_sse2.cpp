// Vector math at 4 lanes without FMA (the SSE2 code path). Both compilers would otherwise contract a*b + c
// into an FMA behind our back on this machine, so contraction is switched off for this file.
#define KILN_CPU_VECTOR_BITS 128
#define KILN_CPU_NO_FMA 1
#if defined(__clang__)
#pragma clang fp contract(off)
#else
#pragma GCC optimize("fp-contract=off")
#endif
#include "vmath_cases.hpp"
