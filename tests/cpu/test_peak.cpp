// measure_fma_peak_gflops: a sanity check only (timings never go in tests).
#include <kiln/cpu/peak.hpp>

#include <catch2/catch.hpp>

TEST_CASE("the measured FMA peak is positive on one and on two threads") {
  CHECK(kiln::cpu::measure_fma_peak_gflops(1) > 0.0);
  CHECK(kiln::cpu::measure_fma_peak_gflops(2) > 0.0);
}
