// kiln-bench: kiln's CPU training steps (fused and unfused) against PyTorch, JAX, Eigen and dlib doing the
// same step, measured side by side in one invocation, plus kiln's GEMM against OpenBLAS's sgemm.
//
//   kiln-bench [--filter NAME[,NAME…]] [--repeats N] [--repeat-ms MS] [--json FILE] [--markdown FILE]
//              [--no-python] [--python PATH] [--jax-venv DIR] [--torch-venv DIR] [--peers-dir DIR] [--list]
// KILN_NUM_THREADS sets kiln's thread count (default: all cores); see bench/RESULTS.md for results.
#include "blas_threads.hpp"
#include "cxx_peers.hpp"
#include "kiln_cases.hpp"
#include "openblas_core.hpp"
#include "python_peers.hpp"

#include <kiln/cpu/gemm_bf16.hpp>
#include "report.hpp"

#include <kiln/core/error.hpp>
#include <kiln/cpu/peak.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#ifndef KILN_BENCH_PEERS_DIR
#define KILN_BENCH_PEERS_DIR "bench/peers"
#endif
#ifndef KILN_BENCH_SOURCE_DIR
#define KILN_BENCH_SOURCE_DIR "."
#endif

namespace {

using namespace kiln_bench;

struct options {
  std::vector<std::string> filters;
  timing_options timing;
  std::string json_path;
  std::string markdown_path;
  std::string command;  // as invoked, for the Markdown section
  bool python = true;
  bool list = false;
  bool profile = false;
  std::string python_exe = "/usr/bin/python3";
  std::string jax_venv;
  std::string torch_venv;  // PyTorch 2 from PyPI, for torch.compile (Debian's torch 1.13 predates it)
  std::string onnx_venv;   // onnxruntime from PyPI, for the inference cases' ONNX Runtime rows
  std::string peers_dir = KILN_BENCH_PEERS_DIR;
};

const char* usage =
    "usage: kiln-bench [options]\n"
    "  --filter NAME[,NAME...]  run only the cases whose name contains one of these (see --list)\n"
    "  --repeats N              timed repeats per measurement, median reported (default 15)\n"
    "  --repeat-ms MS           length of one timed repeat in milliseconds (default 20)\n"
    "  --json FILE              also write one JSON line per result to FILE\n"
    "  --markdown FILE          also append a dated Markdown section with the tables to FILE (RESULTS.md)\n"
    "  --no-python              do not run the Python peers (PyTorch, JAX); they are reported as skipped\n"
    "  --python PATH            interpreter for the PyTorch peer (default /usr/bin/python3)\n"
    "  --jax-venv DIR           virtual environment holding jax (default $KILN_BENCH_VENV or\n"
    "                           ~/.cache/kiln-bench-venv; create it with bench/peers/setup_jax_venv.sh)\n"
    "  --torch-venv DIR         virtual environment holding PyTorch 2 for the torch.compile peer (default\n"
    "                           $KILN_BENCH_TORCH_VENV or ~/.cache/kiln-bench-torch-venv; create it with\n"
    "                           bench/peers/setup_torch_venv.sh); without it, torch.compile is tried with the\n"
    "                           --python interpreter's torch\n"
    "  --onnx-venv DIR          virtual environment holding onnx and onnxruntime for the inference cases' ONNX\n"
    "                           Runtime rows (default $KILN_ONNX_VENV or ~/.cache/kiln-onnx-venv; create it with\n"
    "                           tests/setup_onnx_venv.sh)\n"
    "  --peers-dir DIR          where the peer scripts are (default the source tree's bench/peers)\n"
    "  --profile                also print where kiln's step time goes, kernel by kernel (median over the\n"
    "                           repeats of each kernel's mean time per step; for infer_*, the function's\n"
    "                           forward on a caller's workspace)\n"
    "  --list                   list the cases and exit\n";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    const std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

long parse_positive(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v <= 0)
    throw std::invalid_argument(flag + " expects a positive whole number, found '" + value + "'");
  return v;
}

options parse(int argc, char** argv) {
  options o;
  const char* home = std::getenv("HOME");
  if (const char* venv = std::getenv("KILN_BENCH_VENV")) o.jax_venv = venv;
  else if (home) o.jax_venv = std::string(home) + "/.cache/kiln-bench-venv";
  if (const char* venv = std::getenv("KILN_BENCH_TORCH_VENV")) o.torch_venv = venv;
  else if (home) o.torch_venv = std::string(home) + "/.cache/kiln-bench-torch-venv";
  if (const char* venv = std::getenv("KILN_ONNX_VENV")) o.onnx_venv = venv;
  else if (home) o.onnx_venv = std::string(home) + "/.cache/kiln-onnx-venv";
  o.command = "kiln-bench";
  for (int i = 1; i < argc; ++i) o.command += std::string(" ") + argv[i];
  if (const char* via = std::getenv("KILN_BENCH_COMMAND")) o.command = via;  // set by bench/run.sh
  // settings given by the user that change what is measured (not the OPENBLAS_CORETYPE kiln-bench set itself)
  if (const char* v = std::getenv("KILN_NUM_THREADS")) o.command = std::string("KILN_NUM_THREADS=") + v + " " + o.command;
  if (const char* v = std::getenv("OPENBLAS_CORETYPE"); v && !std::getenv("KILN_BENCH_OPENBLAS_DETECTED"))
    o.command = std::string("OPENBLAS_CORETYPE=") + v + " " + o.command;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " expects a value");
      return argv[++i];
    };
    if (a == "--filter") {
      for (const std::string& f : split_commas(value())) o.filters.push_back(f);
    } else if (a == "--repeats") {
      o.timing.repeats = static_cast<int>(parse_positive(a, value()));
    } else if (a == "--repeat-ms") {
      o.timing.repeat_ms = static_cast<double>(parse_positive(a, value()));
    } else if (a == "--json") {
      o.json_path = value();
    } else if (a == "--markdown") {
      o.markdown_path = value();
    } else if (a == "--no-python") {
      o.python = false;
    } else if (a == "--python") {
      o.python_exe = value();
    } else if (a == "--jax-venv") {
      o.jax_venv = value();
    } else if (a == "--torch-venv") {
      o.torch_venv = value();
    } else if (a == "--onnx-venv") {
      o.onnx_venv = value();
    } else if (a == "--peers-dir") {
      o.peers_dir = value();
    } else if (a == "--profile") {
      o.profile = true;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option '" + a + "'");
    }
  }
  return o;
}

bool executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }
bool readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// PyTorch eager runs on the --python interpreter (Debian's torch with OpenBLAS) and, as pytorch2_eager, on the
// torch virtual environment's PyTorch 2 (PyPI: MKL, oneDNN); torch.compile on that PyTorch 2 when there is one,
// else on the --python interpreter too (which reports it skipped when its torch predates torch.compile).
std::vector<python_peer> python_peers(const options& o) {
  const std::string torch_script = o.peers_dir + "/pytorch_cpu.py";
  const std::string venv_python = o.torch_venv + "/bin/python";
  const bool compile_in_venv = !o.torch_venv.empty() && executable(venv_python);
  python_peer torch{"pytorch", {"pytorch"}, o.python_exe, torch_script, ""};
  // eager on PyPI's PyTorch 2 as well (MKL and oneDNN, what a user would install), beside Debian's light one
  python_peer torch2_eager{"pytorch", {"pytorch2_eager"}, venv_python, torch_script, ""};
  python_peer torch_compile{"pytorch", {"torch_compile"}, compile_in_venv ? venv_python : o.python_exe, torch_script, ""};
  // autocast to BF16 on PyPI's PyTorch 2 (oneDNN with AMX where the CPU has it), the peer of kiln's fused_bf16
  python_peer torch_bf16{"pytorch", {"pytorch_bf16"}, compile_in_venv ? venv_python : o.python_exe, torch_script, ""};
  python_peer jax{"jax", {"jax_jit"}, o.jax_venv + "/bin/python", o.peers_dir + "/jax_cpu.py", ""};
  python_peer ort{"onnxruntime", {"onnxruntime"}, o.onnx_venv + "/bin/python", o.peers_dir + "/onnxruntime_cpu.py", ""};
  ort.environment = std::string("KILN_BENCH_ONNX_DIR='") + KILN_BENCH_EXPORTED_DIR + "'";
  ort.inference_only = true;
  for (python_peer* p : {&torch, &torch2_eager, &torch_compile, &torch_bf16, &jax, &ort}) {
    if (!o.python) p->absent = "disabled by --no-python";
    else if (!readable(p->script)) p->absent = "peer script " + p->script + " not found (see --peers-dir)";
  }
  if (torch2_eager.absent.empty() && !compile_in_venv)
    torch2_eager.absent = "no PyTorch 2 virtual environment at " + o.torch_venv + " (create it: bash bench/peers/setup_torch_venv.sh)";
  for (python_peer* p : {&torch, &torch_compile, &torch_bf16})
    if (p->absent.empty() && !executable(p->python))
      p->absent = "no Python interpreter at " + p->python + " (apt-get install python3-torch)";
  if (jax.absent.empty() && !executable(jax.python))
    jax.absent = "no JAX virtual environment at " + o.jax_venv + " (create it: bash bench/peers/setup_jax_venv.sh)";
  if (ort.absent.empty() && !executable(ort.python))
    ort.absent = "no ONNX virtual environment at " + o.onnx_venv + " (create it: bash tests/setup_onnx_venv.sh)";
  return {torch, torch2_eager, torch_compile, torch_bf16, jax, ort};
}

// Per-kernel times of one kiln step: `repeats` rounds of the step's timed-repeat length, each kernel's median
// over the rounds of its mean time per step; the kernels' sum against the step's median shows the time spent
// outside kernels (binding, dispatch).
void print_profile(timed_step& s, const timing_options& t, const bench_case& c, double peak) {
  const std::size_t n = s.kernel_names.size();
  std::vector<std::vector<double>> us(n);
  std::vector<double> plain_us;  // the un-profiled step, timed in the same rounds
  s.activate();
  for (int round = 0; round < std::max(1, t.repeats); ++round) {
    const std::vector<double> ns = s.profile(s.r.iters);
    for (std::size_t k = 0; k < n; ++k) us[k].push_back(ns[k] * 1e-3 / static_cast<double>(s.r.iters));
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < s.r.iters; ++i) s.step();
    plain_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
                       static_cast<double>(s.r.iters));
  }
  std::sort(plain_us.begin(), plain_us.end());
  std::vector<double> med(n);
  double total = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::sort(us[k].begin(), us[k].end());
    const std::size_t m = us[k].size();
    med[k] = m % 2 ? us[k][m / 2] : 0.5 * (us[k][m / 2 - 1] + us[k][m / 2]);
    total += med[k];
  }
  std::printf("\nprofile of %s, kiln %s (%d threads): %zu kernels, sum of kernel medians %.2f us, "
              "un-profiled step in the same rounds %.2f us\n",
              s.r.case_name.c_str(), s.r.mode.c_str(), s.r.threads, n, total, plain_us[plain_us.size() / 2]);
  std::printf("  %-4s %-48s %10s %7s\n", "k", "kernel", "us", "share");
  for (std::size_t k = 0; k < n; ++k)
    std::printf("  %-4zu %-48s %10.2f %6.1f%%\n", k, s.kernel_names[k].c_str(), med[k], total > 0 ? 100 * med[k] / total : 0.0);
  // the costliest kernels first, and for the CNN its convolutions' (conv2d, conv2d_dx, conv2d_dw kernels) rate
  std::vector<std::size_t> order(n);
  for (std::size_t k = 0; k < n; ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return med[a] > med[b]; });
  std::printf("  top kernels:");
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 10); ++i)
    std::printf("%s %s %.0f us (%.1f%%)", i ? ";" : "", s.kernel_names[order[i]].c_str(), med[order[i]],
                total > 0 ? 100 * med[order[i]] / total : 0.0);
  std::printf("\n");
  if (c.model == model_kind::fashion_cnn) {
    double conv_us = 0;
    for (std::size_t k = 0; k < n; ++k)
      if (s.kernel_names[k].starts_with("conv2d")) conv_us += med[k];
    const double gflops = conv_us > 0 ? cnn_flops(c.batch, /*convs_only=*/true, c.inference) / (conv_us * 1e3) : 0;
    std::printf("  convolution kernels (%s): %.2f us, %.1f%% of the kernels' time, "
                "%.2f GFLOP/s = %.1f%% of the %d-thread FP32 FMA peak (%.1f GFLOP/s)%s\n",
                c.inference ? "forward" : "forward, weight and input gradients", conv_us, total > 0 ? 100 * conv_us / total : 0.0, gflops, peak > 0 ? 100 * gflops / peak : 0.0,
                s.r.threads, peak, s.r.mode.find("bf16") != std::string::npos ? "; BF16 products on AMX have a higher peak of their own" : "");
  }
}

int run(const options& o) {
  std::vector<bench_case> cases;
  for (const bench_case& c : all_cases()) {
    bool keep = o.filters.empty();
    for (const std::string& f : o.filters) keep |= c.name.find(f) != std::string::npos;
    if (keep) cases.push_back(c);
  }
  if (o.list) {
    for (const bench_case& c : all_cases()) std::printf("%s\n", c.name.c_str());
    return 0;
  }
  if (cases.empty()) {
    std::fprintf(stderr, "kiln-bench: no case matches the filter (cases: see --list)\n");
    return 2;
  }

  machine_info m;
  m.cpu = cpu_model_name();
  m.timestamp = utc_timestamp();
  m.kiln_threads = kiln_threads();
  m.load_before = load_average();
  m.compiler = compiler_name();
  m.openblas = openblas_core();
  m.bf16 = kiln::cpu::describe(kiln::cpu::best_bf16_path());
  m.gemm = kiln::cpu::gemm_blocking();
  if (const char* detected = std::getenv("KILN_BENCH_OPENBLAS_DETECTED"))
    m.openblas += std::string(" (forced by kiln-bench: OpenBLAS chose ") + detected + " kernels for this CPU)";
  m.kiln_commit = git_commit(KILN_BENCH_SOURCE_DIR);
  std::fprintf(stderr, "measuring the FMA peak...\n");
  m.peak_gflops[1] = kiln::cpu::measure_fma_peak_gflops(1);
  for (int threads : {2, m.kiln_threads})
    if (threads > 1) m.peak_gflops[threads] = kiln::cpu::measure_fma_peak_gflops(threads);

  std::vector<result> rows;
  auto add = [&](std::vector<result> more) { rows.insert(rows.end(), more.begin(), more.end()); };
  // Case by case: the in-process backends interleaved repeat by repeat (see timing.hpp), then the Python peers,
  // so that a change in the machine's load hits a case's rows alike rather than one backend.
  for (const bench_case& c : cases) {
    std::fprintf(stderr, "%s: kiln, eigen, dlib...\n", c.name.c_str());
    std::vector<result> skipped;
    std::vector<timed_step> steps = kiln_steps(c, skipped);
    for (timed_step& s : steps)
      if (s.r.backend == "cpu") s.activate = [] { set_blas_threads(1); };  // park a BLAS peer's extra thread
    for (auto* peer : {&eigen_steps, &dlib_steps})
      for (timed_step& s : peer(c, skipped)) steps.push_back(std::move(s));
    measure_interleaved(steps, o.timing);
    if (o.profile)
      for (timed_step& s : steps)
        if (s.profile) print_profile(s, o.timing, c, m.peak_gflops.count(s.r.threads) ? m.peak_gflops.at(s.r.threads) : 0);
    std::vector<result> measured;
    for (const timed_step& s : steps) measured.push_back(s.r);
    measured = keep_fastest_setting(keep_fastest_setting(measured, "eigen"), "dlib");
    add(measured);
    add(skipped);
    set_blas_threads(1);
    for (const python_peer& p : python_peers(o)) add(run_python_peer(p, {c}, {1, 2}, o.timing));
  }
  m.load_after = load_average();
  const std::vector<report_row> report = finish(cases, rows, m);
  print_table(cases, report, m);
  if (!o.json_path.empty()) {
    kiln::io::write_file_atomic(o.json_path, json_lines(report, m));
    std::printf("wrote %zu JSON lines to %s\n", report.size(), o.json_path.c_str());
  }
  if (!o.markdown_path.empty()) {
    std::string text;
    if (access(o.markdown_path.c_str(), F_OK) == 0) text = kiln::io::read_file(o.markdown_path);
    text += markdown_section(cases, report, m, o.command);
    kiln::io::write_file_atomic(o.markdown_path, text);
    std::printf("appended the tables to %s\n", o.markdown_path.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* core = openblas_core_to_force()) {
    const std::string detected = openblas_core();
    setenv("KILN_BENCH_OPENBLAS_DETECTED", detected.c_str(), 1);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then go on with OpenBLAS's own choice
  }
  try {
    return run(parse(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "kiln-bench: %s\n%s", e.what(), usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln-bench: %s\n", e.what());
    return 1;
  }
}
