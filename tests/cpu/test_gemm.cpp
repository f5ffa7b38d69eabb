// GEMM at the native vector width (see gemm_cases.hpp).
#include "gemm_cases.hpp"
