#pragma once
// Turning measured rows into the report: GFLOP/s and fraction of the FMA peak, the time relative to kiln's
// fused step (or kiln's gemm, in the contraction case), the peers' loss check, the printed table and the
// JSON lines.
#include "bench_case.hpp"

#include <map>
#include <string>
#include <vector>

namespace kiln_bench {

struct report_row {
  result r;
  double vs_kiln = 0;      // this median / kiln fused median (> 1: kiln is faster); 0 when not comparable
  std::string loss_check;  // "ok", "MISMATCH (…)", or "" when there is nothing to check
};

struct machine_info {
  std::string cpu;
  std::string compiler;      // the compiler that built kiln-bench
  std::string kiln_commit;   // git rev-parse --short HEAD of the source tree, or "unknown"
  std::string openblas;      // OpenBLAS's kernel family in use ("" when not loaded)
  std::string bf16;          // how kiln's fused_bf16 rows multiply on this CPU (AMX, AVX512-BF16, or none)
  std::string gemm;          // kiln's GEMM blocking (register tile, K and M blocks)
  int kiln_threads = 0;
  std::map<int, double> peak_gflops;  // FMA peak by thread count
  std::string timestamp;              // UTC, ISO 8601
  std::string load_before, load_after;  // /proc/loadavg's 1, 5, 15-minute figures: how busy the machine was
};

// Fills gflops / peak fraction, ratios and loss checks. Rows keep their order.
std::vector<report_row> finish(const std::vector<bench_case>& cases, std::vector<result> rows,
                               const machine_info& m);

void print_table(const std::vector<bench_case>& cases, const std::vector<report_row>& rows, const machine_info& m);

// A dated Markdown section (machine, compiler, commit, command, load, one table per case) for RESULTS.md.
std::string markdown_section(const std::vector<bench_case>& cases, const std::vector<report_row>& rows,
                             const machine_info& m, const std::string& command);

std::string json_lines(const std::vector<report_row>& rows, const machine_info& m);

std::string cpu_model_name();
std::string utc_timestamp();
std::string load_average();
std::string compiler_name();
std::string git_commit(const std::string& source_dir);

}  // namespace kiln_bench
