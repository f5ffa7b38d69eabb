// GPU benchmark of the CUDA backend: the fused training step (the whole-step lowering: three launches) against
// the unfused one (one kernel per primitive, every intermediate in global memory), side by side in one run:
//   mlp64 / mlp128   64 -> 4 hidden layers of width 64 / 128 (ReLU) -> 16, MSE, Adam, batch 2^14 .. 2^20
//   classifier       784 -> 128 -> 64 -> 10 (ReLU), cross-entropy, Adam, batch 2^14 .. 2^20
// Data lives on the device (uploaded once per batch size); a step's time is the median over repeats of the mean
// of k steps (synchronized at the end). Prints samples/s, launches per step, GFLOP/s of the step's matrix
// products and the fraction of the GPU's FP32 peak (SMs x FP32 lanes per SM x 2 x clock, read from the driver),
// and per program the NVRTC cold compile time and the kernel-cache hit load time.
// --pytorch <bench/pytorch_gpu.py>: also runs the same steps in PyTorch (eager and torch.compile) and prints
// kiln/PyTorch ratios. Without a usable GPU: prints "skipped: <reason>" and exits 0.
// --emulate: runs the same code on the host emulator (kiln/cuda/emulator.hpp) with small batches, to check the
// benchmark itself where there is no GPU; its timings mean nothing.
// Usage: bench_gpu [--quick] [--repeats N] [--pytorch path/to/pytorch_gpu.py] [--emulate]
#include <kiln/kiln.hpp>
#include <kiln/cuda/emulator.hpp>
#include <kiln/cuda/step.hpp>
#include <kiln/io/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace kiln;

struct mlp64 {
  constexpr auto operator()() const {
    auto net = nn::sequential(dense<64>{}, relu, dense<64>{}, relu, dense<64>{}, relu, dense<64>{}, relu, dense<16>{});
    return mse(net(input<64>("x")), target<16>("t"));
  }
};
struct mlp128 {
  constexpr auto operator()() const {
    auto net = nn::sequential(dense<128>{}, relu, dense<128>{}, relu, dense<128>{}, relu, dense<128>{}, relu, dense<16>{});
    return mse(net(input<64>("x")), target<16>("t"));
  }
};
struct classifier {
  constexpr auto operator()() const {
    auto net = nn::sequential(dense<128>{}, relu, dense<64>{}, relu, dense<10>{});
    return cross_entropy(net(input<784>("x")), labels<10>("y"));
  }
};

struct gpu {
  std::function<std::shared_ptr<cuda::device>()> fresh;  // a device with its own runtime (memory cache)
  std::string cache_dir;  // a fresh kernel cache on disk, so the first build is a cold compile
  double peak_gflops = 0;
  int repeats = 5;
  bool tensor_cores = false;  // sm_80 or newer: also time the fused steps with TF32 and with BF16 tensor-core products
};

// FP32 lanes per SM by compute capability (CUDA programming guide, arithmetic instruction throughput).
int fp32_lanes_per_sm(int major, int minor) {
  if (major == 8 && minor == 0) return 64;
  if (major >= 8) return 128;
  return 64;
}

double fp32_peak_gflops(cuda::cuda_device& d) {
  const auto& drv = d.cuda_runtime().context()->driver();
  cuda::cu_device dev = 0;
  drv.check(drv.api().DeviceGet(&dev, d.cuda_runtime().device().ordinal), "cuDeviceGet");
  constexpr int clock_rate_attribute = 13;  // CU_DEVICE_ATTRIBUTE_CLOCK_RATE, kHz
  int khz = 0;
  drv.check(drv.api().DeviceGetAttribute(&khz, clock_rate_attribute, dev), "cuDeviceGetAttribute(CLOCK_RATE)");
  const auto& info = d.cuda_runtime().device();
  return static_cast<double>(info.multiprocessors) * fp32_lanes_per_sm(info.cc_major, info.cc_minor) * 2.0 * khz * 1e-6;
}

// Floating-point operations of a step's matrix products: 2·M·N·K summed over its contractions.
double step_flops(const plan& p, long batch_size) {
  double f = 0;
  for (int i = 0; i < p.g.size; ++i) {
    const node& n = p.g.nodes[i];
    if (n.kind != op::matmul) continue;
    const double m = n.shape.rows == batch ? batch_size : n.shape.rows;
    const double k_dim = p.g.nodes[n.in[0]].shape.cols == batch ? batch_size : p.g.nodes[n.in[0]].shape.cols;
    f += 2.0 * m * n.shape.cols * k_dim;
  }
  return f;
}

struct timing {
  std::string model, mode;
  long batch = 0;
  double ms = 0;
};

// Mode "fused", "unfused", "fused+tf32" or "fused+bf16" (products on tensor cores, render_options::precision).
template <class Model, fusion Mode>
void bench(const char* name, gpu& g, const std::vector<long>& batches, std::vector<timing>& out,
           cuda::matmul_precision precision = cuda::matmul_precision::fp32) {
  const std::string mode_text = std::string(Mode == fusion::fused ? "fused" : "unfused") +
                                (precision == cuda::matmul_precision::fp32 ? "" : std::string("+") + cuda::precision_name(precision));
  const char* mode = mode_text.c_str();
  using step_t = cuda::train_step<Model, adam, Mode>;
  // cold compile (empty cache), then a cache hit in a fresh runtime (disk entry)
  cuda::step_options cold_options;
  cold_options.on = g.fresh();
  cold_options.render.precision = precision;
  step_t cold(adam{}, 1, cold_options);
  cuda::step_options warm_options;
  warm_options.on = g.fresh();
  warm_options.render.precision = precision;
  step_t step(adam{}, 1, warm_options);
  const cuda::module_report& c = cold.compile_report();
  const cuda::module_report& w = step.compile_report();
  std::printf("%-10s %-7s %3zu launches/step  NVRTC: %s %.3f s (+ module load %.3f s), then %s hit %.4f s (+ %.3f s)\n",
              name, mode, step.launches_per_step(), c.origin.c_str(), c.seconds, c.module_load_seconds, w.origin.c_str(),
              w.seconds, w.module_load_seconds);
  const graph& G = step_t::step_graph();
  int in = 0, out_cols = 0;
  bool labels = false;
  for (int l = 0; l < G.num_leaves; ++l) {
    if (G.leaves[l].kind == leaf_kind::labels) labels = true, out_cols = G.leaves[l].num_classes;
    else if (G.leaves[l].kind == leaf_kind::input && G.leaves[l].name.view() == "x") in = G.leaves[l].shape.cols;
    else if (G.leaves[l].kind == leaf_kind::input) out_cols = G.leaves[l].shape.cols;
  }
  cuda::device& dev = step.on();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (long b : batches) {
    std::vector<float> xs(static_cast<std::size_t>(b) * in), ts(static_cast<std::size_t>(b) * (labels ? 1 : out_cols));
    for (float& v : xs) v = u(rng);
    for (float& v : ts) v = labels ? static_cast<float>(rng() % static_cast<unsigned>(out_cols)) : u(rng);
    const cuda::cu_deviceptr dx = dev.allocate(xs.size() * 4), dt = dev.allocate(ts.size() * 4);
    dev.upload(dx, xs.data(), xs.size() * 4);
    dev.upload(dt, ts.data(), ts.size() * 4);
    auto run = [&] { step.run_on_device(b, {{"x", dx}, {labels ? "y" : "t", dt}}); };
    for (int i = 0; i < 3; ++i) run();
    step.loss();
    // k steps per measurement, so that one lasts about 50 ms
    const auto t0 = std::chrono::steady_clock::now();
    run();
    step.loss();
    const double one = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int k = std::clamp(static_cast<int>(0.05 / std::max(one, 1e-6)), 1, 200);
    std::vector<double> ms;
    for (int r = 0; r < g.repeats; ++r) {
      const auto s0 = std::chrono::steady_clock::now();
      for (int i = 0; i < k; ++i) run();
      const float loss = step.loss();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count() / k);
      if (!(loss == loss)) std::printf("  warning: loss is NaN\n");
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    const double gflops = step_flops(step_t::compiled_plan(), b) / (med * 1e6);
    std::printf("  batch %8ld  %9.3f ms  %12.0f samples/s  %8.1f GFLOP/s  %5.1f%% of FP32 peak\n", b, med, b / (med * 1e-3),
                gflops, 100 * gflops / g.peak_gflops);
    std::fflush(stdout);
    out.push_back({name, mode, b, med});
    dev.release(dx);
    dev.release(dt);
  }
}

// Runs the PyTorch peer and returns its timings (model, "eager"/"compile", batch, ms).
std::vector<timing> run_pytorch(const std::string& script, const std::vector<long>& batches, int repeats) {
  std::string list;
  for (long b : batches) list += (list.empty() ? "" : ",") + std::to_string(b);
  const std::string command = "python3 " + script + " --json --repeats " + std::to_string(repeats) + " --batches " + list;
  std::printf("\n%s\n", command.c_str());
  std::vector<timing> out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char line[4096];
  while (std::fgets(line, sizeof line, p)) {
    if (line[0] != '{') {
      std::printf("  pytorch: %s", line);
      continue;
    }
    try {
      const io::json_value v = io::parse_json(line, "pytorch_gpu.py output");
      timing t;
      for (const io::json_member& m : v.members) {
        if (m.key == "model") t.model = m.value.text;
        if (m.key == "variant") t.mode = m.value.text;
        if (m.key == "batch") t.batch = std::atol(m.value.text.c_str());
        if (m.key == "ms") t.ms = std::atof(m.value.text.c_str());
      }
      out.push_back(t);
    } catch (const error& e) {
      std::printf("  pytorch: unreadable line (%s): %s", e.what(), line);
    }
  }
  ::pclose(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, emulate = false;
  std::string pytorch;
  gpu g;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--emulate")) emulate = true;
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) g.repeats = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--pytorch") && i + 1 < argc) pytorch = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--repeats N] [--pytorch path/to/pytorch_gpu.py] [--emulate]\n", argv[0]);
      return 2;
    }
  }
  std::vector<long> batches;
  if (emulate) {
    auto dev = std::make_shared<cuda::emulated_device>();
    g.fresh = [dev] { return dev; };
    g.peak_gflops = 1;
    g.repeats = 1;
    batches = {300, 1000};
    g.tensor_cores = true;  // the emulator runs the TF32 and BF16 kernels too (their mma.sync computed lane by lane)
    std::printf("device: %s (timings and %% of peak are meaningless)\n\n", dev->describe().c_str());
  } else {
    g.cache_dir = (std::filesystem::temp_directory_path() / ("kiln-bench-gpu-cache-" + std::to_string(::getpid()))).string();
    std::shared_ptr<cuda::cuda_device> dev;
    try {
      dev = std::make_shared<cuda::cuda_device>(cuda::runtime::options{0, g.cache_dir});
    } catch (const backend_unavailable& e) {
      std::printf("skipped: %s\n", e.what());
      return 0;
    }
    g.fresh = [&g] { return std::make_shared<cuda::cuda_device>(cuda::runtime::options{0, g.cache_dir}); };
    g.peak_gflops = fp32_peak_gflops(*dev);
    std::printf("device: %s\nFP32 peak: %.1f TFLOP/s (FFMA; the +tf32 and +bf16 rows run their products on tensor "
                "cores, their %% is still of the FP32 peak)\n\n", dev->describe().c_str(), g.peak_gflops / 1e3);
    g.tensor_cores = dev->arch() >= 80;
    for (int e = 14; e <= 20; e += quick ? 3 : 1) batches.push_back(1L << e);
  }
  std::vector<timing> kiln_times;
  try {
    bench<mlp64, fusion::fused>("mlp64", g, batches, kiln_times);
    bench<mlp64, fusion::unfused>("mlp64", g, batches, kiln_times);
    bench<mlp128, fusion::fused>("mlp128", g, batches, kiln_times);
    bench<mlp128, fusion::unfused>("mlp128", g, batches, kiln_times);
    bench<classifier, fusion::fused>("classifier", g, batches, kiln_times);
    bench<classifier, fusion::unfused>("classifier", g, batches, kiln_times);
    if (g.tensor_cores) {
      bench<mlp64, fusion::fused>("mlp64", g, batches, kiln_times, cuda::matmul_precision::tf32);
      bench<mlp128, fusion::fused>("mlp128", g, batches, kiln_times, cuda::matmul_precision::tf32);
      bench<classifier, fusion::fused>("classifier", g, batches, kiln_times, cuda::matmul_precision::tf32);
      bench<mlp64, fusion::fused>("mlp64", g, batches, kiln_times, cuda::matmul_precision::bf16);
      bench<mlp128, fusion::fused>("mlp128", g, batches, kiln_times, cuda::matmul_precision::bf16);
      bench<classifier, fusion::fused>("classifier", g, batches, kiln_times, cuda::matmul_precision::bf16);
    }
  } catch (const error& e) {
    std::printf("error: %s\n", e.what());
    std::error_code ec;
    if (!g.cache_dir.empty()) std::filesystem::remove_all(g.cache_dir, ec);
    return 1;
  }
  std::error_code ec;
  if (!g.cache_dir.empty()) std::filesystem::remove_all(g.cache_dir, ec);

  std::map<std::string, double> ms;  // "model mode batch"
  auto key = [](const timing& t) { return t.model + " " + t.mode + " " + std::to_string(t.batch); };
  for (const timing& t : kiln_times) ms[key(t)] = t.ms;
  std::printf("\n%-10s %8s  %12s  %12s  %12s  %s\n", "model", "batch", "unfused/fused", "fused/+tf32", "fused/+bf16",
              pytorch.empty() ? "" : "PyTorch, each variant over kiln's step in the same precision: eager/fused  compile/fused  "
                                     "eager+tf32/+tf32  compile+tf32/+tf32  eager+bf16/+bf16  compile+bf16/+bf16");
  std::vector<timing> torch_times;
  if (!pytorch.empty()) torch_times = run_pytorch(pytorch, batches, g.repeats);
  for (const timing& t : torch_times) ms["torch " + t.model + " " + t.mode + " " + std::to_string(t.batch)] = t.ms;
  for (const char* model : {"mlp64", "mlp128", "classifier"})
    for (long b : batches) {
      const std::string f = std::string(model) + " fused " + std::to_string(b);
      const std::string u = std::string(model) + " unfused " + std::to_string(b);
      const std::string t = std::string(model) + " fused+tf32 " + std::to_string(b);
      const std::string h = std::string(model) + " fused+bf16 " + std::to_string(b);
      std::printf("%-10s %8ld  %12.2fx", model, b, ms[u] / ms[f]);
      for (const std::string& rounded : {t, h}) {
        if (ms.count(rounded)) std::printf("  %11.2fx", ms[f] / ms[rounded]);
        else std::printf("  %12s", "-");
      }
      // PyTorch in the same precision: FP32 against kiln's fused step, TF32 ("+tf32") and BF16 ("+bf16") against
      // kiln's +tf32 and +bf16 ones
      for (const auto& [against, suffix] : {std::pair{f, ""}, std::pair{t, "+tf32"}, std::pair{h, "+bf16"}})
        for (const char* variant : {"eager", "compile"}) {
          const auto it = ms.find(std::string("torch ") + model + " " + variant + suffix + " " + std::to_string(b));
          if (it != ms.end() && ms.count(against)) std::printf("  %12.2fx", it->second / ms[against]);
        }
      std::printf("\n");
    }
  return 0;
}
