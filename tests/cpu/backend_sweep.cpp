// The CPU backend against the reference at every width 1 … 3·lanes + 1 and at 8·lanes + 1 (backend_sweep.hpp).
#include "backend_sweep.hpp"

TEST_CASE("fused == unfused == reference at every SIMD remainder", "[backend][sweep]") {
  using namespace kiln_sweep;
  sweep_widths(std::make_integer_sequence<int, 3 * cpu::lanes + 1>{});
  sweep_width<8 * cpu::lanes + 1>();
}
