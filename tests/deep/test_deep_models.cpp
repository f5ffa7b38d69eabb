// A 32-hidden-layer MLP trained with Adam on the CPU backend against the reference (two steps, batches 1 and 5).
// Its graph (200 leaves, over 1500 nodes) is past every old fixed capacity; test_deep_models_ir checks the sizes.
// The fused plan is the one that merges all same-shaped Adam updates into kernels of hundreds of nodes; the
// unfused plan (a kernel per primitive, as for any model) is left to the other backend tests, which keeps this
// translation unit within budget. Built with the numerical sweeps, at -O1.
#include "../core/backend_compare.hpp"
#include "../core/deep_models.hpp"

#include <catch2/catch.hpp>

TEST_CASE("a 32-hidden-layer MLP with Adam trains like the reference (fused plan)", "[deep]") {
  using model = kiln_test::deep_mlp<32, 8>;
  for (long batch : {1L, 5L})
    compare_modes<model, adam, fusion::fused>(adam{.lr = 1e-2, .eps = 1e-4}, batch, 4242u + static_cast<std::uint64_t>(batch), 2);
}
