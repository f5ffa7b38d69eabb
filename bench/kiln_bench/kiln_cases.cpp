// Which kiln program runs which case.
#include "kiln_cases.hpp"

#include <kiln/cpu/thread_pool.hpp>

namespace kiln_bench {

std::vector<timed_step> kiln_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.is_contraction) return contraction_steps(c, skipped);
  if (c.inference) return kiln_infer_steps(c, skipped);
  if (c.model == model_kind::fashion_cnn) return kiln_cnn_steps(c, skipped);
  if (c.name.starts_with("classifier")) return kiln_classifier_steps(c, skipped);
  if (c.name.starts_with("wide")) return kiln_wide_steps(c, skipped);
  if (c.name.starts_with("xor")) return kiln_xor_steps(c, skipped);
  skipped.push_back(skipped_result(c, "cpu", "fused", "no kiln model is compiled for this case"));
  return {};
}

int kiln_threads() { return kiln::cpu::default_pool().num_threads(); }

}  // namespace kiln_bench
