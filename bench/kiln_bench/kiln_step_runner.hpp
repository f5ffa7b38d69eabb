#pragma once
// kiln's fused and unfused train_step for one model, as timed steps (plus kernels per step in the note), and the
// fused step in BF16 mixed precision ("fused_bf16") where this CPU has BF16 instructions.
#include "bench_case.hpp"
#include "timing.hpp"

#include <kiln/cpu/train_step.hpp>

#include <memory>
#include <string>
#include <vector>

namespace kiln_bench {

// The kernels of a compiled plan as a profile names them: kind and domain, and a column sum or a window op evaluated
// in another kernel's pass (executor riders and followers) marked, its time being that kernel's; a max-pool that
// keeps its windows' argmax for its adjoint (executor corners) marked "argmax", that adjoint "by argmax", and when
// that adjoint's map is rebuilt in its readers' passes (executor rebuilt), it "rebuilt where read" (its time is
// theirs) and they "+rebuilds kD".
template <class PlanHolder>
std::vector<std::string> kernel_labels() {
  const kiln::plan& p = PlanHolder::value;
  using executor = kiln::cpu::executor<PlanHolder>;
  std::vector<std::string> names;
  for (int k = 0; k < p.num_kernels; ++k) {
    std::string name = kiln::kernel_name(p, k) + " " + kiln::dims_text(p.kernels[k].domain);
    if (executor::riders.rider_of[k] >= 0) name += " +k" + std::to_string(executor::riders.rider_of[k]) + "'s sum";
    if (executor::riders.host_of[k] >= 0) name += " (in k" + std::to_string(executor::riders.host_of[k]) + ")";
    const int follower = executor::followers.follower_of[k];
    if (follower >= 0 && !executor::rebuilt.rebuilt[follower]) name += " +k" + std::to_string(follower);
    if (executor::followers.leader_of[k] >= 0 && !executor::rebuilt.rebuilt[k])
      name += " (in k" + std::to_string(executor::followers.leader_of[k]) + ")";
    if (executor::corners.reader_of[k] >= 0) name += " argmax";
    if (executor::corners.source_of[k] >= 0) name += " by argmax";
    if (executor::rebuilt.rebuilt[k]) name += ", rebuilt where read";
    if (executor::rebuilt.source_of[k] >= 0) name += " +rebuilds k" + std::to_string(executor::rebuilt.source_of[k]);
    names.push_back(name);
  }
  return names;
}

template <class Model, class Optimizer, kiln::fusion Mode>
timed_step kiln_timed_step(const bench_case& c, const Optimizer& opt, const char* mode,
                           kiln::cpu::precision precision = kiln::cpu::precision::fp32) {
  using step_type = kiln::cpu::train_step<Model, Optimizer, Mode>;
  struct state {  // a train_step is not movable: built in place
    state(const bench_case& k, const Optimizer& o)
        : step(o, /*seed=*/1), c(k), x(make_inputs(k)), targets(make_targets(k)), y(make_labels(k)) {}
    step_type step;
    bench_case c;
    std::vector<float> x, targets;
    std::vector<std::int32_t> y;
  };
  auto s = std::make_shared<state>(c, opt);
  s->step.set_precision(precision);
  timed_step t;
  t.r.case_name = c.name;
  t.r.backend = "cpu";
  t.r.mode = mode;
  t.r.batch = c.batch;
  t.r.threads = kiln::cpu::default_pool().num_threads();
  t.r.note = std::to_string(step_type::compiled_plan().num_kernels) + " kernels/step";
  if (precision != kiln::cpu::precision::fp32) t.r.note += ", " + s->step.precision_text();
  // Feeds named at compile time, as in performance-critical code: each is bound to the leaf the compiler found
  // (the string API compares names every step).
  using namespace kiln::literals;
  if constexpr (kiln::has_feed<typename step_type::graph_holder>("y"))
    t.step = [s] { return static_cast<double>(s->step.run(s->c.batch, "x"_in = s->x, "y"_in = s->y)); };
  else
    t.step = [s] { return static_cast<double>(s->step.run(s->c.batch, "x"_in = s->x, "t"_in = s->targets)); };
  const kiln::plan& p = step_type::compiled_plan();
  t.kernel_names = kernel_labels<typename step_type::plan_holder>();
  t.profile = [s, n = p.num_kernels](long steps) {
    std::vector<double> ns(static_cast<std::size_t>(n), 0.0);
    for (long i = 0; i < steps; ++i) {
      if (s->c.loss == loss_kind::cross_entropy) s->step.run_profiled(s->c.batch, {{"x", s->x}, {"y", s->y}}, ns);
      else s->step.run_profiled(s->c.batch, {{"x", s->x}, {"t", s->targets}}, ns);
    }
    return ns;
  };
  return t;
}

template <class Model, class Optimizer>
std::vector<timed_step> kiln_fused_and_unfused(const bench_case& c, const Optimizer& opt) {
  std::vector<timed_step> out;
  out.push_back(kiln_timed_step<Model, Optimizer, kiln::fusion::fused>(c, opt, "fused"));
  out.push_back(kiln_timed_step<Model, Optimizer, kiln::fusion::unfused>(c, opt, "unfused"));
  return out;
}

// The fused step in BF16 mixed precision, or why it is not measured (a CPU without BF16 instructions).
template <class Model, class Optimizer>
void kiln_bf16_step(const bench_case& c, const Optimizer& opt, std::vector<timed_step>& steps, std::vector<result>& skipped) {
  if (kiln::cpu::best_bf16_path() == kiln::cpu::bf16_path::fp32) {
    skipped.push_back(skipped_result(c, "cpu", "fused_bf16", "this CPU has neither AMX-BF16 nor AVX512-BF16"));
    return;
  }
  steps.push_back(kiln_timed_step<Model, Optimizer, kiln::fusion::fused>(c, opt, "fused_bf16", kiln::cpu::precision::bf16));
}

}  // namespace kiln_bench
