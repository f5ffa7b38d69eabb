// A 20-convolution network trained with Adam on the CPU backend against the reference (two steps, batches 1
// and 4): 20 conv layers with their biases and Adam state (120 leaves), every window op forward and backward.
// Built with the numerical sweeps, at -O1.
#include "../core/backend_compare.hpp"
#include "../core/deep_models.hpp"

#include <catch2/catch.hpp>

TEST_CASE("a 20-convolution network with Adam trains like the reference (fused plan)", "[deep][conv]") {
  using model = kiln_test::deep_cnn<20>;
  for (long batch : {1L, 4L})
    compare_modes<model, adam, fusion::fused>(adam{.lr = 1e-2, .eps = 1e-4}, batch, 5151u + static_cast<std::uint64_t>(batch), 2);
}
