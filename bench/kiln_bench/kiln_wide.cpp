// The wide net: 1024 → 1024 ReLU → 1024 ReLU → 10, softmax cross-entropy, Adam (GEMM-bound).
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

#include <kiln/kiln.hpp>

namespace kiln_bench {
namespace {
struct wide {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<1024>{}, kiln::relu, kiln::dense<1024>{}, kiln::relu, kiln::dense<10>{});
    return kiln::cross_entropy(net(kiln::input<1024>("x")), kiln::labels<10>("y"));
  }
};
}  // namespace

std::vector<timed_step> kiln_wide_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.layers != std::vector<long>{1024, 1024, 1024, 10}) {
    skipped.push_back(skipped_result(c, "cpu", "fused", "the kiln model is 1024-1024-1024-10"));
    return {};
  }
  std::vector<timed_step> steps = kiln_fused_and_unfused<wide>(c, kiln::adam{.lr = c.lr});
  kiln_bf16_step<wide>(c, kiln::adam{.lr = c.lr}, steps, skipped);
  return steps;
}

}  // namespace kiln_bench
