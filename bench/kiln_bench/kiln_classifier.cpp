// The notes' classifier: 784 → 128 ReLU → 64 ReLU → 10, softmax cross-entropy, Adam.
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

#include <kiln/kiln.hpp>

namespace kiln_bench {
namespace {
struct classifier {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<128>{}, kiln::relu, kiln::dense<64>{}, kiln::relu, kiln::dense<10>{});
    return kiln::cross_entropy(net(kiln::input<784>("x")), kiln::labels<10>("y"));
  }
};
}  // namespace

std::vector<timed_step> kiln_classifier_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.layers != std::vector<long>{784, 128, 64, 10}) {
    skipped.push_back(skipped_result(c, "cpu", "fused", "the kiln model is 784-128-64-10"));
    return {};
  }
  return kiln_fused_and_unfused<classifier>(c, kiln::adam{.lr = c.lr});
}

}  // namespace kiln_bench
