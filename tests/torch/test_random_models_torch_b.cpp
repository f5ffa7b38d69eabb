// The second part of the CI subset of test_random_models_torch_a.cpp (documented there): another base seed, in
// its own TU so that each compiles in about a minute.
#define KILN_TORCH_BASE_SEED 2
#define KILN_TORCH_LABEL "b"
#include "test_random_models_torch_a.cpp"
