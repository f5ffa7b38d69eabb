// The CPU backend, fused and unfused, against the double reference evaluator over every activation
// (cross-entropy; Adam and Nesterov), several batch sizes and steps; the seed is printed on failure.
#include "backend_compare.hpp"

TEST_CASE("fused == unfused == reference across activations", "[backend]") {
  for (long batch : {1L, 7L, 64L, 300L}) {
    compare<activations_a>(adam{.lr = 1e-2}, batch, 1);
    compare<activations_b>(nesterov{.lr = 1e-2, .momentum = 0.9}, batch, 2);
  }
}
