// Which kiln program runs which case.
#include "kiln_cases.hpp"

#include <kiln/cpu/thread_pool.hpp>

namespace kiln_bench {

std::vector<result> run_kiln_case(const bench_case& c, const timing_options& t) {
  if (c.is_contraction) return run_contraction(c, t);
  if (c.name.starts_with("classifier")) return run_kiln_classifier(c, t);
  if (c.name.starts_with("wide")) return run_kiln_wide(c, t);
  if (c.name.starts_with("xor")) return run_kiln_xor(c, t);
  return {skipped_result(c, "cpu", "fused", "no kiln model is compiled for this case")};
}

int kiln_threads() { return kiln::cpu::default_pool().num_threads(); }

}  // namespace kiln_bench
