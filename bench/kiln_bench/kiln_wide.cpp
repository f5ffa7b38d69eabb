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

std::vector<result> run_kiln_wide(const bench_case& c, const timing_options& t) {
  if (c.layers != std::vector<long>{1024, 1024, 1024, 10}) return {skipped_result(c, "cpu", "fused", "kiln model is 1024-1024-1024-10")};
  return run_kiln_both<wide>(c, kiln::adam{.lr = c.lr}, t);
}

}  // namespace kiln_bench
