// The notes' classifier: 784 → 128 ReLU → 64 ReLU → 10, softmax cross-entropy, Adam.
#include "bench_models.hpp"
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

namespace kiln_bench {

std::vector<timed_step> kiln_classifier_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.layers != std::vector<long>{784, 128, 64, 10}) {
    skipped.push_back(skipped_result(c, "cpu", "fused", "the kiln model is 784-128-64-10"));
    return {};
  }
  std::vector<timed_step> steps = kiln_fused_and_unfused<models::classifier_loss>(c, kiln::adam{.lr = c.lr});
  kiln_bf16_step<models::classifier_loss>(c, kiln::adam{.lr = c.lr}, steps, skipped);
  return steps;
}

}  // namespace kiln_bench
