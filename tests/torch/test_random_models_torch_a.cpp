// placeholder, documented below once the design settles
#include "random_models_run.hpp"

#ifndef KILN_TORCH_BASE_SEED
#define KILN_TORCH_BASE_SEED 1
#endif
#ifndef KILN_TORCH_CONFIGS
#define KILN_TORCH_CONFIGS 10
#endif

TEST_CASE("torch: seeded random MLPs train as in torch.optim (float64)") {
  kiln_torch::check_random_models<KILN_TORCH_BASE_SEED, KILN_TORCH_CONFIGS>("a");
}
