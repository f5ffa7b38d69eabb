#pragma once
// Runs random_model<Seed> configurations in kiln (a CPU step, fused or unfused as drawn, and the double
// reference evaluator) and hands them to random_models_torch.py, which trains the same models in PyTorch float64 and
// compares. One JSON line per configuration:
//   {"seed", "config", "layers" (the torch.nn modules to build, with kiln's parameter names),
//    "initial" (every parameter: shape and values), "data" (per step: x, t, y),
//    "runs": {"fused"|"unfused"|"reference": {"losses": per step, "final": every parameter and optimizer state}}}
#include "random_models_record.hpp"

#include <kiln/cpu/train_step.hpp>
#include <kiln/reference/evaluate.hpp>

#include <string>
#include <utility>
#include <vector>

namespace kiln_torch {

// Every parameter and optimizer state of a step, by leaf (empty for the other leaves).
template <class Step>
std::vector<std::vector<double>> param_values(Step& step) {
  const kiln::graph& g = Step::G;
  std::vector<std::vector<double>> v(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) {
    const auto kind = g.leaves[l].kind;
    if (kind != kiln::leaf_kind::param && kind != kiln::leaf_kind::state) continue;
    const auto p = step.param(g.leaves[l].name.view());
    v[static_cast<std::size_t>(l)].assign(p.begin(), p.end());
  }
  return v;
}

// Trains configuration S for its steps in a CPU step and in the reference; returns its line.
template <std::uint64_t S>
std::string run_config() {
  constexpr config c = cfg<S>;
  const auto opt = make_optimizer<S>();
  using opt_type = std::remove_const_t<decltype(opt)>;
  // One plan per configuration (fused or unfused, drawn): the unfused step costs twice the fused one to compile.
  constexpr auto mode = c.unfused ? kiln::fusion::unfused : kiln::fusion::fused;
  kiln::cpu::train_step<random_model<S>, opt_type, mode> kiln_step(opt, S);
  const kiln::graph& g = decltype(kiln_step)::G;

  // Parameters and (zero) optimizer state from the step's initialization, also given to the reference.
  std::vector<std::vector<double>> leaves = param_values(kiln_step);
  std::string line = "{\"seed\":" + std::to_string(S) + ",\"config\":" + config_json(c) + ",\"layers\":" + layers_json(c) +
                     ",\"initial\":" + leaves_json(g, true, leaves, 17) + ",\"data\":[";
  std::vector<double> lk, lr;
  for (int step = 1; step <= c.steps; ++step) {
    const batch_data b = make_batch(c, step);
    line += std::string(step > 1 ? "," : "") + "{\"x\":";
    append_array(line, b.x, 17);
    line += ",\"t\":";
    append_array(line, b.t, 17);
    line += ",\"y\":";
    append_array(line, b.y, 17);
    line += '}';
    lk.push_back(kiln_step.run(c.batch, {{"x", b.x}, {"t", b.t}, {"y", b.y}}));
    const auto inputs = reference_leaves(g, b);
    for (int l = 0; l < g.num_leaves; ++l)
      if (!inputs[static_cast<std::size_t>(l)].empty()) leaves[static_cast<std::size_t>(l)] = inputs[static_cast<std::size_t>(l)];
    std::vector<double> hypers(16);
    opt.hypers(step, hypers.data());
    lr.push_back(kiln::reference::step(g, c.batch, leaves, hypers));
  }
  line += "],\"runs\":{\"" + std::string(c.unfused ? "unfused" : "fused") + "\":{\"losses\":";
  append_array(line, lk, 17);
  line += ",\"final\":" + leaves_json(g, false, param_values(kiln_step), 9) + "},\"reference\":{\"losses\":";
  append_array(line, lr, 17);
  return line + ",\"final\":" + leaves_json(g, false, leaves, 17) + "}}}";
}

template <std::uint64_t Base, std::size_t... I>
std::vector<std::string> run_configs(std::index_sequence<I...>) {
  return {run_config<seed_of(Base, I)>()...};
}

// Runs N configurations from base seed Base, then compares them with torch (check_against_torch).
template <std::uint64_t Base, std::size_t N>
void check_random_models(const std::string& label) {
  check_against_torch(run_configs<Base>(std::make_index_sequence<N>{}), label);
}

}  // namespace kiln_torch
