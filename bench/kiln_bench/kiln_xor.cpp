// XOR: 2 → 2 sigmoid → 1 sigmoid, binary cross-entropy, plain SGD (overhead-bound: 112 flops per step).
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

#include <kiln/kiln.hpp>

namespace kiln_bench {
namespace {
struct xor_net {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<2>{}, kiln::sigmoid, kiln::dense<1>{}, kiln::sigmoid);
    return kiln::bce(net(kiln::input<2>("x")), kiln::target<1>("t"));
  }
};
}  // namespace

std::vector<timed_step> kiln_xor_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.layers != std::vector<long>{2, 2, 1}) {
    skipped.push_back(skipped_result(c, "cpu", "fused", "the kiln model is 2-2-1"));
    return {};
  }
  return kiln_fused_and_unfused<xor_net>(c, kiln::sgd{.lr = c.lr});
}

}  // namespace kiln_bench
