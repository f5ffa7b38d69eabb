#include "python_peers.hpp"

#include <kiln/io/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

namespace kiln_bench {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

const kiln::io::json_value* member(const kiln::io::json_value& obj, const std::string& key) {
  for (const auto& m : obj.members)
    if (m.key == key) return &m.value;
  return nullptr;
}
std::string text_of(const kiln::io::json_value& obj, const std::string& key) {
  const auto* v = member(obj, key);
  return v && v->is(kiln::io::json_value::kind::string) ? v->text : std::string();
}
double number_of(const kiln::io::json_value& obj, const std::string& key) {
  const auto* v = member(obj, key);
  return v && v->is(kiln::io::json_value::kind::number) ? std::strtod(v->text.c_str(), nullptr) : NAN;
}

// The last non-empty line of a file (a Python traceback ends with the exception).
std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

// " 2 threads 1234.5 us": a slower setting, for the note of the kept one
std::string setting(const result& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " %d thread%s %.1f us", r.threads, r.threads == 1 ? "" : "s", r.median_us);
  return buf;
}

struct run_output {
  std::vector<result> rows;
  std::string failure;  // non-empty when the process failed or printed nothing usable
};

run_output run_once(const python_peer& peer, const std::string& cases, int threads, const timing_options& t) {
  std::string modes;
  for (const std::string& m : peer.modes) modes += (modes.empty() ? "" : ",") + m;
  char err_path[] = "/tmp/kiln-bench-peer-XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd >= 0) close(fd);
  // PYTHONDONTWRITEBYTECODE: keep __pycache__ out of the source tree
  const std::string cmd = "PYTHONDONTWRITEBYTECODE=1 " + peer.environment + (peer.environment.empty() ? "" : " ") + shell_quote(peer.python) + " " + shell_quote(peer.script) + " --threads " +
                          std::to_string(threads) + " --repeats " + std::to_string(t.repeats) + " --repeat-ms " +
                          std::to_string(t.repeat_ms) + " --cases " + shell_quote(cases) + " --modes " +
                          shell_quote(modes) + " 2>" + shell_quote(err_path);
  run_output out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    out.failure = "could not start " + peer.python;
    return out;
  }
  std::string line;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;
    line.pop_back();
    try {
      const kiln::io::json_value v = kiln::io::parse_json(line, peer.script + " output");
      result r;
      r.case_name = text_of(v, "case");
      r.backend = text_of(v, "backend");
      r.mode = text_of(v, "mode");
      r.batch = static_cast<long>(number_of(v, "batch"));
      r.threads = static_cast<int>(number_of(v, "threads"));
      r.note = text_of(v, "note");
      r.skipped = text_of(v, "skipped");
      if (r.skipped.empty()) {
        r.median_us = number_of(v, "median_us");
        r.min_us = number_of(v, "min_us");
        r.max_us = number_of(v, "max_us");
        r.iters = static_cast<long>(number_of(v, "iters"));
        r.repeats = static_cast<int>(number_of(v, "repeats"));
        r.loss_first = number_of(v, "loss_first");
        r.loss_second = number_of(v, "loss_second");
      }
      out.rows.push_back(r);
    } catch (const kiln::error&) {
      // not a result line (e.g. a library printing a warning on stdout): ignored
    }
    line.clear();
  }
  const int status = pclose(pipe);
  const std::string last = last_line_of(err_path);
  std::remove(err_path);
  if (status != 0 || out.rows.empty())
    out.failure = peer.script + " (" + std::to_string(threads) + " threads) exited with status " +
                  std::to_string(status) + (last.empty() ? "" : ": " + last);
  return out;
}

}  // namespace

std::string cases_json(const std::vector<bench_case>& cases) {
  std::ostringstream o;
  o << "[";
  bool first = true;
  for (const bench_case& c : cases) {
    if (c.is_contraction) continue;
    o << (first ? "" : ",") << "{\"name\":" << kiln::io::json_quote(c.name) << ",\"layers\":[";
    for (std::size_t i = 0; i < c.layers.size(); ++i) o << (i ? "," : "") << c.layers[i];
    char lr[32];
    std::snprintf(lr, sizeof lr, "%.17g", c.lr);
    o << "],\"activation\":\"" << (c.act == activation::relu ? "relu" : "sigmoid") << "\",\"loss\":\""
      << (c.loss == loss_kind::cross_entropy ? "cross_entropy" : "bce") << "\",\"optimizer\":\""
      << (c.opt == optimizer_kind::adam ? "adam" : "sgd") << "\",\"lr\":" << lr << ",\"batch\":" << c.batch
      << ",\"data\":\"" << (c.data == data_kind::xor_table ? "xor" : "golden") << "\",\"model\":\""
      << (c.model == model_kind::fashion_cnn ? "fashion_cnn" : "mlp") << "\",\"inference\":" << (c.inference ? "true" : "false") << "}";
    first = false;
  }
  o << "]";
  return o.str();
}

std::vector<result> run_python_peer(const python_peer& peer, const std::vector<bench_case>& cases,
                                    const std::vector<int>& thread_settings, const timing_options& t) {
  std::vector<const bench_case*> steps;
  for (const bench_case& c : cases)
    if (!c.is_contraction && (c.inference || !peer.inference_only)) steps.push_back(&c);
  std::vector<result> out;
  auto skip_all = [&](const std::string& why) {
    for (const bench_case* c : steps)
      for (const std::string& mode : peer.modes) out.push_back(skipped_result(*c, peer.backend, mode, why));
    return out;
  };
  if (steps.empty()) return out;
  if (!peer.absent.empty()) return skip_all(peer.absent);

  // (case, mode) → best measured row so far, or the latest skipped row
  std::map<std::pair<std::string, std::string>, result> best;
  std::map<std::pair<std::string, std::string>, std::string> others;  // the slower settings, for the note
  std::string failure;
  const std::string json = cases_json(cases);
  for (int threads : thread_settings) {
    std::fprintf(stderr, "  %s peer (%s), %d thread%s...\n", peer.backend.c_str(), peer.python.c_str(), threads, threads == 1 ? "" : "s");
    run_output run = run_once(peer, json, threads, t);
    if (!run.failure.empty()) failure = run.failure;
    for (result& r : run.rows) {
      const auto key = std::make_pair(r.case_name, r.mode);
      auto it = best.find(key);
      if (it == best.end()) {
        best.emplace(key, r);
        continue;
      }
      result& b = it->second;
      if (!r.measured()) continue;
      if (!b.measured() || r.median_us < b.median_us) {
        if (b.measured()) others[key] += setting(b);
        b = r;
      } else {
        others[key] += setting(r);
      }
    }
  }
  for (const bench_case* c : steps)
    for (const std::string& mode : peer.modes) {
      const auto key = std::make_pair(c->name, mode);
      auto it = best.find(key);
      if (it == best.end()) {
        out.push_back(skipped_result(*c, peer.backend, mode,
                                     failure.empty() ? peer.script + " printed no row for this case" : failure));
        continue;
      }
      result r = it->second;
      if (r.measured() && !others[key].empty())
        r.note += (r.note.empty() ? "" : ", ") + std::string("fastest of the thread settings (other:") + others[key] + ")";
      out.push_back(r);
    }
  return out;
}

}  // namespace kiln_bench
