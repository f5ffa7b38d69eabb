// NVRTC compiles every kernel of the test models in fused mode (see nvrtc_cases.hpp).
#define KILN_NVRTC_MODE fused
#include "nvrtc_cases.hpp"
