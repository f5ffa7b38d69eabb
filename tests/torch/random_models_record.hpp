#pragma once
// The non-template half of random_models_run.hpp: the JSON record of a configuration, its data, and the call
// to the PyTorch script.
#include "random_models.hpp"
#include "../temp_dir.hpp"

#include <kiln/io/atomic_file.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace kiln_torch {

// ---- JSON text. Data and initial values are written with 17 digits: 9 round-trip a float to a float, but the
// decimal parsed as a double (as Python does) is up to 3e-10 (relative) away from the float.
inline void append(std::string& s, double v, int digits) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  s += buf;
}
template <class Range>
void append_array(std::string& s, const Range& values, int digits) {
  s += '[';
  bool first = true;
  for (auto v : values) {
    if (!first) s += ',';
    first = false;
    append(s, static_cast<double>(v), digits);
  }
  s += ']';
}

// One step's batch: inputs uniform in [−1, 1); dense targets in [−1, 1) for regression, in [0, 1) for BCE, a
// distribution with some exact zeros for KL (zero targets contribute 0); class labels uniform.
struct batch_data {
  std::vector<float> x, t;
  std::vector<std::int32_t> y;
};
inline batch_data make_batch(const config& c, int step) {
  splitmix64 r{c.seed ^ (0xdadaULL + static_cast<std::uint64_t>(step) * 0x9e3779b97f4a7c15ULL)};
  batch_data b;
  for (long i = 0; i < c.batch * c.in; ++i) b.x.push_back(static_cast<float>(r.uniform(-1, 1)));
  for (long i = 0; i < c.batch; ++i) {
    float row = 0;
    for (int j = 0; j < c.out; ++j) {
      double v = r.uniform(-1, 1);
      if (c.loss == loss_kind::bce || c.loss == loss_kind::bce_with_logits) v = r.unit();
      if (c.loss == loss_kind::kl_div) v = r.between(0, 4) == 0 ? 0.0 : r.unit();
      b.t.push_back(static_cast<float>(v));
      row += b.t.back();
    }
    if (c.loss == loss_kind::kl_div) {
      if (row == 0) b.t[static_cast<std::size_t>(i * c.out)] = row = 1;
      for (int j = 0; j < c.out; ++j) b.t[static_cast<std::size_t>(i * c.out + j)] /= row;
    }
    b.y.push_back(r.between(0, c.out - 1));
  }
  return b;
}

inline std::string config_json(const config& c) {
  std::string s = "{\"in\":" + std::to_string(c.in) + ",\"hidden\":[";
  for (int i = 0; i < c.hidden; ++i) s += std::string(i ? "," : "") + std::to_string(c.width[i]);
  s += "],\"activations\":[";
  for (int i = 0; i < c.hidden; ++i) s += std::string(i ? "," : "") + "\"" + act_names[static_cast<int>(c.act[i])] + "\"";
  s += "],\"out\":" + std::to_string(c.out) + ",\"loss\":\"" + loss_names[static_cast<int>(c.loss)] +
       "\",\"reduction\":\"" + (c.sum_reduction ? "sum" : "mean") + "\",\"optimizer\":\"" + opt_names[static_cast<int>(c.opt)] +
       "\",\"batch\":" + std::to_string(c.batch) + ",\"steps\":" + std::to_string(c.steps) +
       ",\"fusion\":\"" + (c.unfused ? "unfused" : "fused") + "\"";
  const std::pair<const char*, double> numbers[] = {{"leaky_slope", c.leaky_slope}, {"elu_alpha", c.elu_alpha},
                                                    {"lr", c.lr}, {"momentum", c.momentum},
                                                    {"weight_decay", c.weight_decay}, {"beta1", c.beta1},
                                                    {"beta2", c.beta2}, {"eps", c.eps}, {"max_norm", c.max_norm}};
  for (const auto& [name, v] : numbers) {
    s += std::string(",\"") + name + "\":";
    append(s, v, 17);
  }
  return s + "}";
}

// The torch.nn modules of the model in order, with the names kiln gives their parameters: nn::sequential
// numbers dense layers fc1, fc2, … and one-slope PReLUs prelu1, prelu2, …; channel PReLUs are cprelu<layer>.
inline std::string layers_json(const config& c) {
  std::string s = "[";
  int in = c.in, prelus = 0;
  for (int i = 0; i <= c.hidden; ++i) {
    const int out = i < c.hidden ? c.width[i] : c.out;
    s += std::string(i ? "," : "") + "{\"kind\":\"linear\",\"name\":\"fc" + std::to_string(i + 1) + "\",\"in\":" +
         std::to_string(in) + ",\"out\":" + std::to_string(out) + "}";
    in = out;
    if (i == c.hidden) break;
    const act_kind a = c.act[i];
    if (a == act_kind::prelu) s += ",{\"kind\":\"prelu\",\"name\":\"prelu" + std::to_string(++prelus) + "\",\"n\":1}";
    else if (a == act_kind::prelu_channels)
      s += ",{\"kind\":\"prelu\",\"name\":\"cprelu" + std::to_string(i + 1) + "\",\"n\":" + std::to_string(out) + "}";
    else s += std::string(",{\"kind\":\"") + act_names[static_cast<int>(a)] + "\"}";
  }
  return s + "]";
}

// {name: {"shape": PyTorch's shape, "values": row-major}} for every parameter (and optimizer state).
inline std::string leaves_json(const kiln::graph& g, bool params_only, const std::vector<std::vector<double>>& values,
                               int digits) {
  std::string s = "{";
  bool first = true;
  for (int l = 0; l < g.num_leaves; ++l) {
    const kiln::leaf_info& info = g.leaves[l];
    if (info.kind != kiln::leaf_kind::param && (params_only || info.kind != kiln::leaf_kind::state)) continue;
    const kiln::leaf_info& owner = info.kind == kiln::leaf_kind::state ? g.leaves[info.owner] : info;
    s += std::string(first ? "" : ",") + "\"" + std::string(info.name.view()) + "\":{\"shape\":" +
         (owner.rank == 2 ? "[" + std::to_string(info.shape.rows) + "," : "[") + std::to_string(info.shape.cols) +
         "],\"values\":";
    append_array(s, values[static_cast<std::size_t>(l)], digits);
    s += "}";
    first = false;
  }
  return s + "}";
}

// The reference evaluator's values of the input leaves x, t and y (class indices as doubles); empty elsewhere.
inline std::vector<std::vector<double>> reference_leaves(const kiln::graph& g, const batch_data& b) {
  std::vector<std::vector<double>> v(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) {
    const std::string_view name = g.leaves[l].name.view();
    const auto kind = g.leaves[l].kind;
    if (kind != kiln::leaf_kind::input && kind != kiln::leaf_kind::labels) continue;
    auto& out = v[static_cast<std::size_t>(l)];
    if (name == "x") out.assign(b.x.begin(), b.x.end());
    if (name == "t") out.assign(b.t.begin(), b.t.end());
    if (name == "y") out.assign(b.y.begin(), b.y.end());
  }
  return v;
}

inline std::string python() {
  const char* p = std::getenv("KILN_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

// Writes the lines, runs the PyTorch script once (importing torch takes seconds) and turns each of its
// verdicts into one CHECK; prints `skipped: …` when there is no torch to compare with.
// Hands the lines to a PyTorch script (random_models_torch.py unless another under tests/torch/ is named), which
// writes one verdict per line to FILE.verdicts; every verdict must be PASS.
inline void check_against_torch(const std::vector<std::string>& lines, const std::string& label,
                                const std::string& script_name = "random_models_torch.py") {
  if (std::system((python() + " -c 'import torch' > /dev/null 2>&1").c_str()) != 0) {
    WARN("skipped: " << python() << " cannot import torch (apt-get install python3-torch, or set KILN_TORCH_PYTHON)");
    return;
  }
  const std::string file = kiln_test::temp_dir() + "/" + label + ".jsonl";
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  kiln::io::write_file_atomic(file, text);
  if (const char* keep = std::getenv("KILN_TORCH_KEEP"); keep && *keep) kiln::io::write_file_atomic(std::string(keep) + "/" + label + ".jsonl", text);
  const std::string script = std::string(KILN_SOURCE_DIR) + "/tests/torch/" + script_name;
  const int rc = std::system((python() + " " + script + " " + file + " > " + file + ".out 2>&1").c_str());
  const std::string out = kiln::io::read_file(file + ".out");
  INFO(out);
  REQUIRE(rc != -1);
  REQUIRE((WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 1));  // 1: some configuration differs; else the script broke
  std::ifstream verdicts(file + ".verdicts");
  std::size_t n = 0;
  for (std::string v; std::getline(verdicts, v); ++n) {
    INFO(v);
    CHECK(v.rfind("PASS", 0) == 0);
  }
  CHECK(n == lines.size());
}

}  // namespace kiln_torch
