// The row reductions' partial last vector at this machine's vector width (reduction_tail_cases.hpp); the same
// cases run at every other width kiln supports through the _v128 variant, and the width
// sweeps cover the row reductions at 4, 8 and the machine's lanes (tests/CMakeLists.txt).
#include "reduction_tail_cases.hpp"
