// NVRTC compiles every kernel of the test models in unfused mode (see nvrtc_cases.hpp).
#define KILN_NVRTC_MODE unfused
#include "nvrtc_cases.hpp"
