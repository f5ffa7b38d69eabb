// Vector math at the native width (see vmath_cases.hpp).
#include "vmath_cases.hpp"
