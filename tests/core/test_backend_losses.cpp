// The CPU backend, fused and unfused, against the double reference evaluator over every loss
// (several batch sizes and steps; the seed is printed on failure), and run-time shape errors.
#include "backend_compare.hpp"

TEST_CASE("fused == unfused == reference across losses", "[backend]") {
  for (long batch : {1L, 5L, 100L}) {
    compare<mse_model<relu_fn>>(sgd{.lr = 0.05}, batch, 21);
    compare<mae_model>(sgd{.lr = 0.05}, batch, 27);
    compare<bce_model>(adam{.lr = 1e-2}, batch, 28);
    compare<bce_logits_model>(momentum{.lr = 0.05}, batch, 29);
    compare<kl_model>(adam{.lr = 1e-2}, batch, 30);
    compare<cce_model>(adam{.lr = 1e-2}, batch, 31);
  }
}

TEST_CASE("a batch that does not match the input's shape throws naming both shapes", "[backend]") {
  cpu::train_step<mse_model<relu_fn>, sgd> step;
  std::vector<float> xs(6 * 4), ts(3 * 5);
  try {
    step.run(5, {{"x", xs}, {"target", ts}});
    FAIL("no exception");
  } catch (const shape_error& e) {
    const std::string m = e.what();
    CHECK(m.find("'x'") != std::string::npos);
    CHECK(m.find("24 values") != std::string::npos);
    CHECK(m.find("[5, 6]") != std::string::npos);
  }
  std::vector<std::int32_t> bad_labels = {0, 1, 3};
  cpu::train_step<activations_a, sgd> ce;
  std::vector<float> x3(18);
  CHECK_THROWS_WITH(ce.run(3, {{"x", x3}, {"y", bad_labels}}), Catch::Contains("outside [0, 3)"));
}
