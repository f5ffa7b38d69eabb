// Vector math at 8 lanes (the AVX2 code path), whatever the machine offers beyond it.
#define KILN_CPU_VECTOR_BITS 256
#include "vmath_cases.hpp"
