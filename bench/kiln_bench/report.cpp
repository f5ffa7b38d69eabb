#include "report.hpp"

#include <kiln/io/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace kiln_bench {
namespace {

// The kiln row the others are compared with: the fused step, or kiln's gemm in the contraction case.
const result* kiln_reference(const std::vector<result>& rows, const std::string& case_name) {
  for (const result& r : rows)
    if (r.case_name == case_name && r.backend == "cpu" && (r.mode == "fused" || r.mode == "gemm" || r.mode == "function") && r.measured())
      return &r;
  return nullptr;
}

// Same step, same data, different random initial weights: the first losses agree in range, not exactly.
// At PyTorch-style initialisation a 10-class cross-entropy starts near ln 10 ≈ 2.30 and XOR's BCE near
// ln 2 ≈ 0.69; a factor of 1.5 either way separates "same step" from a wrong loss (a missing mean over the
// batch would be off by the batch size, a missing softmax by far more).
std::string check_loss(const result& r, const result& ref) {
  if (!r.measured() || std::isnan(r.loss_first) || std::isnan(ref.loss_first) || ref.loss_first <= 0) return "";
  const double ratio = r.loss_first / ref.loss_first;
  if (ratio > 1 / 1.5 && ratio < 1.5) return "ok";
  char buf[96];
  std::snprintf(buf, sizeof buf, "MISMATCH (first loss %.4g vs kiln %.4g)", r.loss_first, ref.loss_first);
  return buf;
}

// An inference case's first output: ONNX Runtime runs the file exported from kiln's own parameters, so it must
// give kiln's value to float rounding; the other peers initialise their own weights (no check).
std::string check_output(const result& r, const result& ref) {
  if (r.backend != "onnxruntime" || !r.measured() || std::isnan(r.loss_first) || std::isnan(ref.loss_first)) return "";
  if (std::abs(r.loss_first - ref.loss_first) <= 1e-4 * std::max(1.0, std::abs(ref.loss_first))) return "first output same as kiln's";
  char buf[96];
  std::snprintf(buf, sizeof buf, "first output MISMATCH (%.6g vs kiln %.6g)", r.loss_first, ref.loss_first);
  return buf;
}

// "loss ok"; an inference case's check says "first output …" itself
std::string check_label(const report_row& row) { return row.loss_check.starts_with("first output") ? "" : "loss "; }

std::string fmt(const char* f, double v) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string describe(const bench_case& c) {
  std::string s;
  if (c.is_contraction) {
    s += "C[" + std::to_string(c.batch) + "," + std::to_string(c.layers[1]) + "] = X[" + std::to_string(c.batch) + ",";
    s += std::to_string(c.layers[0]) + "] * W^T, one contraction";
    return s;
  }
  if (c.inference)
    return std::string(c.model == model_kind::fashion_cnn ? "the Fashion-MNIST CNN's" : "784-128-64-10 relu's") +
           " forward, evaluation mode, batch " + std::to_string(c.batch);
  if (c.model == model_kind::fashion_cnn)
    return "Fashion-MNIST CNN 1x28x28: conv3x3 32 bn relu pool2, conv3x3 64 bn relu pool2, 3136-128 relu "
           "dropout 0.3 -10, cross-entropy adam, train mode, batch " + std::to_string(c.batch);
  for (std::size_t i = 0; i < c.layers.size(); ++i) {
    if (i) s += '-';
    s += std::to_string(c.layers[i]);
  }
  s += c.act == activation::relu ? " relu" : " sigmoid";
  s += c.loss == loss_kind::cross_entropy ? " cross-entropy" : " bce";
  s += c.opt == optimizer_kind::adam ? " adam" : " sgd";
  return s + ", batch " + std::to_string(c.batch);
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::vector<report_row> finish(const std::vector<bench_case>& cases, std::vector<result> rows, const machine_info& m) {
  std::vector<report_row> out;
  for (const result& r0 : rows) {
    report_row row{r0, 0, ""};
    result& r = row.r;
    const bench_case* c = nullptr;
    for (const bench_case& k : cases)
      if (k.name == r.case_name) c = &k;
    if (r.measured() && c && r.median_us > 0) {
      r.gflops = step_flops(*c) / (r.median_us * 1e3);
      const auto it = m.peak_gflops.find(r.threads);
      r.peak_gflops = it != m.peak_gflops.end() ? it->second : m.peak_gflops.at(m.kiln_threads);
      r.peak_fraction = r.gflops / r.peak_gflops;
    }
    if (const result* ref = kiln_reference(rows, r.case_name); ref && r.measured()) {
      row.vs_kiln = r.median_us / ref->median_us;
      if (c && c->inference) row.loss_check = check_output(r, *ref);
      else if (r.backend != "cpu" && r.backend != "openblas") row.loss_check = check_loss(r, *ref);
    }
    out.push_back(row);
  }
  return out;
}

void print_table(const std::vector<bench_case>& cases, const std::vector<report_row>& rows, const machine_info& m) {
  std::printf("\nkiln-bench  %s  kiln %s  %s\nCPU: %s, kiln threads %d; FP32 FMA peak", m.timestamp.c_str(),
              m.kiln_commit.c_str(), m.compiler.c_str(), m.cpu.c_str(), m.kiln_threads);
  for (const auto& [threads, gflops] : m.peak_gflops) std::printf("  %d thread%s %.1f GFLOP/s", threads, threads == 1 ? "" : "s", gflops);
  if (!m.openblas.empty()) std::printf("\nOpenBLAS kernels: %s", m.openblas.c_str());
  std::printf("\nkiln fused_bf16: %s", m.bf16.c_str());
  std::printf("\nkiln gemm: %s", m.gemm.c_str());
  std::printf("\nload average (1, 5, 15 min) before %s, after %s; a shared machine: compare ratios\n",
              m.load_before.c_str(), m.load_after.c_str());
  std::printf("median of repeated timings; %%peak is of the FP32 FMA peak for the row's thread count (BF16 rows too); "
              "x kiln = this time / kiln fused time (> 1: kiln is faster)\n");
  for (const bench_case& c : cases) {
    bool any = false;
    for (const report_row& row : rows) any |= row.r.case_name == c.name;
    if (!any) continue;
    std::printf("\n%s: %s, %.4g MFLOP per %s\n", c.name.c_str(), describe(c).c_str(), step_flops(c) * 1e-6,
                c.is_contraction ? "call" : "step");
    std::printf("  %-9s %-14s %3s %11s %11s %8s %6s %8s %8s  %s\n", "backend", "mode", "thr", "median_us", "min_us",
                "GFLOP/s", "%peak", "x kiln", "loss1", "note / loss check");
    for (const report_row& row : rows) {
      const result& r = row.r;
      if (r.case_name != c.name) continue;
      if (!r.measured()) {
        std::printf("  %-9s %-14s skipped: %s\n", r.backend.c_str(), r.mode.c_str(), r.skipped.c_str());
        continue;
      }
      std::string note = r.note;
      if (!row.loss_check.empty()) note = check_label(row) + row.loss_check + (note.empty() ? "" : "; " + note);
      std::printf("  %-9s %-14s %3d %11s %11s %8s %6s %8s %8s  %s\n", r.backend.c_str(), r.mode.c_str(), r.threads,
                  fmt("%.2f", r.median_us).c_str(), fmt("%.2f", r.min_us).c_str(), fmt("%.2f", r.gflops).c_str(),
                  fmt("%.1f", 100 * r.peak_fraction).c_str(), row.vs_kiln > 0 ? fmt("%.2f", row.vs_kiln).c_str() : "-",
                  fmt("%.4f", r.loss_first).c_str(), note.c_str());
    }
  }
  std::printf("\nfused vs unfused (unfused time / fused time):");
  for (const bench_case& c : cases)
    for (const report_row& row : rows)
      if (row.r.case_name == c.name && row.r.mode == "unfused" && row.vs_kiln > 0)
        std::printf("  %s %.2fx", c.name.c_str(), row.vs_kiln);
  std::printf("\n");
  // BF16 mixed precision: kiln's own FP32 step against its BF16 step, and PyTorch's autocast against kiln's BF16
  bool header = false;
  for (const bench_case& c : cases) {
    const result *bf16 = nullptr, *fp32 = nullptr, *autocast = nullptr;
    for (const report_row& row : rows) {
      if (row.r.case_name != c.name || !row.r.measured()) continue;
      if (row.r.backend == "cpu" && row.r.mode == "fused_bf16") bf16 = &row.r;
      if (row.r.backend == "cpu" && row.r.mode == "fused") fp32 = &row.r;
      if (row.r.backend == "pytorch" && row.r.mode == "pytorch_bf16") autocast = &row.r;
    }
    if (!bf16) continue;
    if (!header) std::printf("BF16 (kiln fused_bf16, %s):", m.bf16.c_str());
    header = true;
    std::printf("  %s: %.2fx kiln FP32", c.name.c_str(), fp32 ? fp32->median_us / bf16->median_us : NAN);
    if (autocast) std::printf(", %.2fx PyTorch autocast", autocast->median_us / bf16->median_us);
  }
  if (header) std::printf("\n");
}

std::string markdown_section(const std::vector<bench_case>& cases, const std::vector<report_row>& rows,
                             const machine_info& m, const std::string& command) {
  std::ostringstream o;
  o << "\n### " << m.timestamp << ", " << m.cpu << ", kiln " << m.kiln_commit << "\n\n"
    << "- command: `" << command << "`\n- compiler: " << m.compiler << "\n- kiln threads: " << m.kiln_threads
    << "; FP32 FMA peak (GFLOP/s):";
  for (const auto& [threads, gflops] : m.peak_gflops) o << " " << threads << " thread" << (threads == 1 ? "" : "s") << " " << fmt("%.1f", gflops) << ";";
  o << "\n- load average (1, 5, 15 min): before " << m.load_before << ", after " << m.load_after << "\n";
  if (!m.openblas.empty()) o << "- OpenBLAS kernels: " << m.openblas << "\n";
  o << "- kiln fused_bf16: " << m.bf16 << "\n";
  o << "- kiln gemm: " << m.gemm << "\n";
  o << "\n| case | backend | mode | threads | median µs | min µs | GFLOP/s | % peak | × kiln fused | loss₁ | note |\n"
    << "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const bench_case& c : cases)
    for (const report_row& row : rows) {
      const result& r = row.r;
      if (r.case_name != c.name) continue;
      o << "| " << r.case_name << " | " << r.backend << " | " << r.mode << " | ";
      if (!r.measured()) {
        o << " | | | | | | | skipped: " << r.skipped << " |\n";
        continue;
      }
      std::string note = r.note;
      if (!row.loss_check.empty()) note = check_label(row) + row.loss_check + (note.empty() ? "" : "; " + note);
      o << r.threads << " | " << fmt("%.2f", r.median_us) << " | " << fmt("%.2f", r.min_us) << " | "
        << fmt("%.2f", r.gflops) << " | " << fmt("%.1f", 100 * r.peak_fraction) << " | "
        << (row.vs_kiln > 0 ? fmt("%.2f", row.vs_kiln) : "-") << " | " << fmt("%.4f", r.loss_first) << " | " << note
        << " |\n";
    }
  return o.str();
}

std::string json_lines(const std::vector<report_row>& rows, const machine_info& m) {
  std::ostringstream o;
  for (const report_row& row : rows) {
    const result& r = row.r;
    o << "{\"case\":" << kiln::io::json_quote(r.case_name) << ",\"backend\":" << kiln::io::json_quote(r.backend)
      << ",\"mode\":" << kiln::io::json_quote(r.mode) << ",\"batch\":" << r.batch << ",\"threads\":" << r.threads;
    if (r.measured())
      o << ",\"median_us\":" << json_number(r.median_us) << ",\"min_us\":" << json_number(r.min_us)
        << ",\"max_us\":" << json_number(r.max_us) << ",\"iters\":" << r.iters << ",\"repeats\":" << r.repeats
        << ",\"gflops\":" << json_number(r.gflops) << ",\"peak_gflops\":" << json_number(r.peak_gflops)
        << ",\"peak_fraction\":" << json_number(r.peak_fraction)
        << ",\"time_vs_kiln_fused\":" << (row.vs_kiln > 0 ? json_number(row.vs_kiln) : "null")
        << ",\"loss_first\":" << json_number(r.loss_first) << ",\"loss_second\":" << json_number(r.loss_second)
        << ",\"loss_check\":" << (row.loss_check.empty() ? "null" : kiln::io::json_quote(row.loss_check))
        << ",\"skipped\":null";
    else
      o << ",\"median_us\":null,\"gflops\":null,\"peak_fraction\":null,\"skipped\":" << kiln::io::json_quote(r.skipped);
    o << ",\"note\":" << kiln::io::json_quote(r.note) << ",\"cpu\":" << kiln::io::json_quote(m.cpu)
      << ",\"time\":" << kiln::io::json_quote(m.timestamp)
      << ",\"kiln_commit\":" << kiln::io::json_quote(m.kiln_commit) << ",\"compiler\":" << kiln::io::json_quote(m.compiler)
      << ",\"openblas\":" << kiln::io::json_quote(m.openblas) << ",\"load_before\":" << kiln::io::json_quote(m.load_before)
      << ",\"load_after\":" << kiln::io::json_quote(m.load_after) << "}\n";
  }
  return o.str();
}

// "model name" from /proc/cpuinfo, with family and model numbers (a VM often shows only a generic name).
std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown CPU", family, model;
  auto value = [&] { return line.substr(line.find_first_not_of(" \t", line.find(':') + 1)); };
  while (std::getline(in, line) && !line.empty()) {
    if (line.find(':') == std::string::npos) continue;
    if (line.rfind("model name", 0) == 0) name = value();
    else if (line.rfind("cpu family", 0) == 0) family = value();
    else if (line.rfind("model", 0) == 0 && line.find_first_of(" \t") == 5) model = value();
  }
  if (!family.empty() && !model.empty()) name += " (family " + family + ", model " + model + ")";
  return name;
}

std::string compiler_name() {
#if defined(__clang__)
  return "clang++ " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown compiler";
#endif
}

std::string git_commit(const std::string& source_dir) {
  const std::string cmd = "git -C '" + source_dir + "' rev-parse --short HEAD 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return "unknown";
  char buf[64] = {};
  const bool got = std::fgets(buf, sizeof buf, pipe) != nullptr;
  pclose(pipe);
  std::string commit = got ? buf : "";
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r')) commit.pop_back();
  return commit.empty() ? "unknown" : commit;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kiln_bench
