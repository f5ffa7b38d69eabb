#pragma once
// The Python peers (PyTorch eager / torch.compile, JAX jit, ONNX Runtime on the exported inference models) run as subprocesses in the same invocation:
// kiln-bench hands them the case list as JSON, runs each once per thread setting, reads one JSON line per
// (case, mode) from its stdout and keeps the fastest setting per (case, mode), naming it. A peer whose
// interpreter or virtual environment is missing, or whose process fails, is reported as skipped with why.
#include "bench_case.hpp"

#include <string>
#include <vector>

namespace kiln_bench {

struct python_peer {
  std::string backend;              // pytorch, jax
  std::vector<std::string> modes;   // the modes it reports (pytorch + torch_compile; jax_jit)
  std::string python;               // interpreter
  std::string script;               // path of the peer script
  std::string absent;               // non-empty: the peer cannot run here, and why (all its rows are skipped)
  std::string environment;          // NAME=VALUE settings put before the command (shell-quoted values)
  bool inference_only = false;      // runs the inference cases only (ONNX Runtime)
};

std::vector<result> run_python_peer(const python_peer& peer, const std::vector<bench_case>& cases,
                                    const std::vector<int>& thread_settings, const timing_options& t);

// The cases as the JSON list the peer scripts read (see bench/peers/peer_common.py); contractions left out.
std::string cases_json(const std::vector<bench_case>& cases);

}  // namespace kiln_bench
