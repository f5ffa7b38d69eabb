#pragma once
// The CPU backend against the double reference at every SIMD remainder. A row of W features is ⌈W/lanes⌉
// vectors, the last one partial unless lanes divides W; every kernel kind treats that partial vector on its
// own (masked loads and stores, neutral lanes in a reduction), so each width 1 … 3·lanes + 1 is a case of its
// own, and 8·lanes + 1 reaches the column sums that no longer fit in registers. Batches sit around the
// vector width, the GEMM row block (64) and a multiple of it plus one.
//
// The model (core/sweep_model.hpp) puts every kind of kernel on rows of W features.
//
// KILN_SWEEP_PART / KILN_SWEEP_PARTS (defaults 0 / 1) pick the widths W with W % PARTS == PART, so the sweep
// can be split over several translation units to keep each one's compile time bounded.
#include "../core/backend_compare.hpp"
#include "../core/sweep_model.hpp"

#include <cstdint>
#include <utility>
#include <vector>

#if !defined(KILN_SWEEP_PART)
#define KILN_SWEEP_PART 0
#endif
#if !defined(KILN_SWEEP_PARTS)
#define KILN_SWEEP_PARTS 1
#endif

namespace kiln_sweep {

using namespace kiln;

using kiln_test::sweep_model;

// Batches around the vector width, the GEMM row block and the thread split.
inline std::vector<long> sweep_batches() {
  return {1L, cpu::lanes - 1L, static_cast<long>(cpu::lanes), cpu::lanes + 1L, 63L, 64L, 65L, 257L};
}

template <int W>
void sweep_width() {
  if constexpr (W % KILN_SWEEP_PARTS == KILN_SWEEP_PART) {
    DYNAMIC_SECTION("width " << W) {  // one width alone: -c "width 17"
      for (long batch : sweep_batches()) compare<sweep_model<W>>(adam{.lr = 1e-2}, batch, 7919u * W + static_cast<std::uint64_t>(batch), 2);
    }
  }
}

template <int... W>
void sweep_widths(std::integer_sequence<int, W...>) {
  (sweep_width<W + 1>(), ...);
}

}  // namespace kiln_sweep
