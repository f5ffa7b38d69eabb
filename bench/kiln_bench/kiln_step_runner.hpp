#pragma once
// Runs one kiln model's fused and unfused train_step on a case and reports both (plus kernels per step).
#include "bench_case.hpp"
#include "timing.hpp"

#include <kiln/cpu/train_step.hpp>

#include <string>
#include <vector>

namespace kiln_bench {

template <class Model, class Optimizer, kiln::fusion Mode>
result run_kiln_mode(const bench_case& c, const Optimizer& opt, const timing_options& t, const char* mode) {
  using step_type = kiln::cpu::train_step<Model, Optimizer, Mode>;
  step_type step(opt, /*seed=*/1);
  const std::vector<float> x = make_inputs(c);
  const std::vector<std::int32_t> y = make_labels(c);
  const std::vector<float> targets = make_targets(c);
  result r;
  r.case_name = c.name;
  r.backend = "cpu";
  r.mode = mode;
  r.batch = c.batch;
  r.threads = kiln::cpu::default_pool().num_threads();
  if (c.loss == loss_kind::cross_entropy)
    measure([&] { return step.run(c.batch, {{"x", x}, {"y", y}}); }, t, r);
  else
    measure([&] { return step.run(c.batch, {{"x", x}, {"t", targets}}); }, t, r);
  r.note = std::to_string(step_type::compiled_plan().num_kernels) + " kernels/step";
  return r;
}

template <class Model, class Optimizer>
std::vector<result> run_kiln_both(const bench_case& c, const Optimizer& opt, const timing_options& t) {
  return {run_kiln_mode<Model, Optimizer, kiln::fusion::fused>(c, opt, t, "fused"),
          run_kiln_mode<Model, Optimizer, kiln::fusion::unfused>(c, opt, t, "unfused")};
}

}  // namespace kiln_bench
