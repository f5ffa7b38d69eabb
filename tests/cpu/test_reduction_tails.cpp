// The row reductions' partial last vector at this machine's vector width (reduction_tail_cases.hpp); the same
// cases run at every other width kiln supports through the _v128 and _v256 variants (tests/CMakeLists.txt).
#include "reduction_tail_cases.hpp"
