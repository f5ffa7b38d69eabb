// The Fashion-MNIST CNN (examples/fashion_mnist_cnn_model.hpp): conv 3×3 → batch norm → ReLU → max-pool, twice,
// then 3136 → 128 ReLU → dropout 0.3 → 10, softmax cross-entropy, Adam; in train mode (dropout on, batch
// statistics). Its own translation unit: the CNN's plan is the suite's costliest to compile.
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

#include "../../examples/fashion_mnist_cnn_model.hpp"

namespace kiln_bench {

std::vector<timed_step> kiln_cnn_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.model != model_kind::fashion_cnn || c.layers != std::vector<long>{784, 10}) {
    skipped.push_back(skipped_result(c, "cpu", "fused", "the kiln CNN is the Fashion-MNIST CNN on 1x28x28 inputs"));
    return {};
  }
  std::vector<timed_step> steps = kiln_fused_and_unfused<fashion_cnn::loss>(c, kiln::adam{.lr = c.lr});
  kiln_bf16_step<fashion_cnn::loss>(c, kiln::adam{.lr = c.lr}, steps, skipped);
  return steps;
}

}  // namespace kiln_bench
