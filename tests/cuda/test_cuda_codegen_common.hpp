#pragma once
// Shared by tests/cuda/test_cuda_codegen_*.cpp: the test models (the style of tests/core/test_backends.cpp, plus
// combined models that put several activations or losses in one step so that compile-only tests stay cheap),
// and the comparison of a CUDA step (on a GPU or the host emulator) with the double reference evaluator.
#include <kiln/kiln.hpp>
#include <kiln/cuda/step.hpp>
#include <kiln/reference/evaluate.hpp>

#include <catch2/catch.hpp>

#include <future>
#include <iomanip>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kiln_cuda_test {

using namespace kiln;

template <class Act>
constexpr auto mlp(Act act) { return nn::sequential(dense<7>{}, act, dense<5>{}, act, dense<3>{}); }
inline constexpr auto x = input<6>("x");
inline constexpr auto y = labels<3>("y");
inline constexpr auto t = target<3>("target");
inline constexpr auto soft = probability_target<3>("soft");

// ---- one model per activation / loss (as in tests/core/test_backends.cpp)
template <class Act> struct ce_model { constexpr auto operator()() const { return cross_entropy(mlp(Act{})(x), y); } };
template <class Act> struct mse_model { constexpr auto operator()() const { return mse(mlp(Act{})(x), t); } };
struct mae_model { constexpr auto operator()() const { return mae(mlp(relu)(x), t); } };
struct bce_model { constexpr auto operator()() const { return bce(kiln::sigmoid(mlp(kiln::tanh)(x)), t); } };
struct bce_logits_model { constexpr auto operator()() const { return bce_with_logits(mlp(gelu)(x), t); } };
struct kl_model { constexpr auto operator()() const { return kl_div(log_softmax(mlp(elu)(x)), soft); } };
struct cce_model { constexpr auto operator()() const { return categorical_cross_entropy(softmax(mlp(swish)(x)), one_hot(y)); } };
struct nll_model { constexpr auto operator()() const { return nll(log_softmax(mlp(leaky_relu)(x)), y); } };
struct prelu_model {
  constexpr auto operator()() const { return cross_entropy(nn::sequential(dense<7>{}, prelu_l, dense<3>{})(x), y); }
};

// ---- combined models: every activation and loss in four steps
struct acts_a_model {  // relu, sigmoid, tanh, leaky_relu; cross-entropy
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<5>{}, relu, dense<5>{}, kiln::sigmoid, dense<5>{}, kiln::tanh, dense<5>{}, leaky_relu, dense<3>{})(x), y);
  }
};
struct acts_b_model {  // elu, gelu, gelu_tanh; mse
  constexpr auto operator()() const {
    return mse(nn::sequential(dense<5>{}, elu, dense<5>{}, gelu, dense<5>{}, gelu_tanh, dense<3>{})(x), t);
  }
};
struct acts_c_model {  // swish, softplus, identity, prelu; mae
  constexpr auto operator()() const {
    return mae(nn::sequential(dense<5>{}, swish, dense<5>{}, kiln::softplus, dense<5>{}, identity, prelu_l, dense<3>{})(x), t);
  }
};
struct losses_model {  // bce, bce_with_logits, kl_div, categorical cross-entropy, nll, summed
  constexpr auto operator()() const {
    auto p = nn::sequential(dense<5>{}, relu, dense<3>{})(x);
    return bce(kiln::sigmoid(p), t) + bce_with_logits(p, t) + kl_div(log_softmax(p), soft) +
           categorical_cross_entropy(softmax(p), one_hot(y)) + nll(log_softmax(p), y);
  }
};

// A factored weight W = A·B [6,3]: batch-free contractions (the product before the rows kernel, A's and B's
// gradients after the batch reduction), run by the single-block kernels.
struct factored_model {
  constexpr auto operator()() const {
    auto w = matmul(param<6, 4>("a").init_uniform_fan_in(6), param<4, 3>("b").init_uniform_fan_in(4));
    return mse(matmul(x, w), t);
  }
};

// ---- the benchmark's steps
struct mlp64_model {
  constexpr auto operator()() const {
    return mse(nn::sequential(dense<64>{}, relu, dense<64>{}, relu, dense<64>{}, relu, dense<64>{}, relu, dense<16>{})(input<64>("x")),
               target<16>("target"));
  }
};
struct mlp128_model {
  constexpr auto operator()() const {
    return mse(nn::sequential(dense<128>{}, relu, dense<128>{}, relu, dense<128>{}, relu, dense<128>{}, relu, dense<16>{})(input<64>("x")),
               target<16>("target"));
  }
};
struct classifier_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<128>{}, relu, dense<64>{}, relu, dense<10>{})(input<784>("x")), labels<10>("y"));
  }
};

// Random batch for the inputs of a step graph, by their names: x uniform in [-2, 2], target in (0.05, 0.95),
// soft (probability targets) rows that sum to 1, y uniform class (or token) indices.
struct batch_data {
  std::vector<float> xs, ts, soft;
  std::vector<std::int32_t> ys;
};
inline batch_data random_batch(const graph& G, long batch_size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2), p(0.05, 0.95);
  batch_data d;
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    const std::string name(info.name.view());
    const long n = batch_size * info.shape.cols;
    if (name == "x") {
      for (long i = 0; i < n; ++i) d.xs.push_back(static_cast<float>(u(rng)));
    } else if (name == "target") {
      for (long i = 0; i < n; ++i) d.ts.push_back(static_cast<float>(p(rng)));
    } else if (name == "soft") {
      for (long r = 0; r < batch_size; ++r) {
        std::vector<float> row(static_cast<std::size_t>(info.shape.cols));
        float sum = 0;
        for (float& v : row) sum += (v = static_cast<float>(p(rng)));
        for (float v : row) d.soft.push_back(v / sum);
      }
    } else if (name == "y") {
      for (long i = 0; i < n; ++i) d.ys.push_back(static_cast<std::int32_t>(rng() % static_cast<unsigned>(info.num_classes)));
    }
  }
  return d;
}

// A step under test, seen through a non-template interface so that the comparison below is compiled once.
struct step_under_test {
  virtual ~step_under_test() = default;
  virtual const graph& step_graph() const = 0;
  virtual float run(long batch_size, const batch_data& d) = 0;
  virtual std::vector<float> param(std::string_view name) = 0;
  virtual void hypers(long t, double* out) const = 0;
  // The random key of step t (dropout's draws), which the reference must draw with too.
  virtual random::key random_key_of_step(long t) const = 0;
  virtual std::string describe() const = 0;
};

template <class Model, class Opt, fusion Mode>
struct cuda_step_under_test final : step_under_test {
  cuda_step_under_test(std::shared_ptr<cuda::device> dev, Opt o, std::uint64_t seed, int tile_rows,
                       cuda::matmul_precision precision = cuda::matmul_precision::fp32)
      : opt(o), step(o, seed, options(std::move(dev), tile_rows, precision)) {}
  static cuda::step_options options(std::shared_ptr<cuda::device> dev, int tile_rows, cuda::matmul_precision precision) {
    cuda::step_options so;
    so.on = std::move(dev);
    so.render.tile_rows = tile_rows;
    so.render.precision = precision;
    return so;
  }
  const graph& step_graph() const override { return step.step_graph(); }
  float run(long batch_size, const batch_data& d) override {
    return step.run(batch_size, {{"x", d.xs}, {"target", d.ts}, {"soft", d.soft}, {"y", d.ys}});
  }
  std::vector<float> param(std::string_view name) override { return step.param(name); }
  void hypers(long t, double* out) const override { opt.hypers(t, out); }
  random::key random_key_of_step(long t) const override { return {step.seed(), static_cast<std::uint64_t>(t)}; }
  std::string describe() const override {
    return step.name() + ", " + (Mode == fusion::fused ? "fused" : "unfused") + " (" +
           std::to_string(step.launches_per_step()) + " launches), optimizer " + Opt::name;
  }
  Opt opt;
  cuda::train_step<Model, Opt, Mode> step;
};

// Every parameter and optimizer state of a step, by name.
inline std::map<std::string, std::vector<float>> all_params(step_under_test& s) {
  const graph& G = s.step_graph();
  std::map<std::string, std::vector<float>> out;
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state)
      out[std::string(G.leaves[l].name.view())] = s.param(G.leaves[l].name.view());
  return out;
}
template <class Step>
std::map<std::string, std::vector<float>> all_params(Step& step) {
  const graph& G = Step::step_graph();
  std::map<std::string, std::vector<float>> out;
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state)
      out[std::string(G.leaves[l].name.view())] = step.param(G.leaves[l].name.view());
  return out;
}

// How close a step must stay to the double reference. FP32 steps: to float rounding (the defaults). TF32
// tensor-core products round every operand to 10 mantissa bits (2^-11 relative), which block_gemm's own test
// checks to FP32 accumulation; a whole TF32 training step is held to 1 % of the loss and, for every parameter
// and optimizer state, 1 % of the value plus 10 % of its tensor's largest value, plus 2·lr per step for
// parameters. Why that much: a ReLU unit whose pre-activation the rounding moves across 0 adds or drops one
// sample's term in the weight gradient (measured up to 4.6 % of a tensor's largest value, the benchmark's MLP at
// batch 96), a gradient near 0 can change sign, and Adam moves a parameter by about lr per step whatever its
// gradient's size.
struct tolerance {
  double loss_rel = 2e-5, loss_abs = 1e-6;
  double value_rel = 1e-4, value_abs = 2e-5;
  double of_largest = 0;   // plus this fraction of the tensor's largest |value|
  double param_abs = 0;    // plus this much for parameters (not optimizer state)
};
inline tolerance tf32_tolerance(double lr, int steps) {
  return {.loss_rel = 1e-2, .loss_abs = 1e-5, .value_rel = 1e-2, .value_abs = 1e-6, .of_largest = 0.1,
          .param_abs = 2 * lr * steps};
}
// BF16 products round every operand to 8 significant bits (2^-9 relative, 8 times TF32's), but what dominates a
// step's difference is the same as for TF32: ReLU masks flipped by the rounding, gradients near 0 changing sign,
// Adam's ±lr steps. Measured on the emulated MLP64 at batch 96 (2 Adam steps): the loss within 1e-4 of the
// reference's (TF32: 3e-6) and the worst value 5.6 % of its tensor's largest (an Adam moment; TF32: 4.6 %); held
// to 1 % of the loss and 2 % of the value plus 20 % of the tensor's largest, plus 2·lr per step for parameters.
inline tolerance bf16_tolerance(double lr, int steps) {
  return {.loss_rel = 1e-2, .loss_abs = 1e-5, .value_rel = 2e-2, .value_abs = 1e-6, .of_largest = 0.2,
          .param_abs = 2 * lr * steps};
}

// Runs `steps` training steps of `s` and of the reference from the same initial parameters and batch;
// compares the loss and every parameter and optimizer state after each step. Returns the final parameters.
inline std::map<std::string, std::vector<float>> compare_with_reference(step_under_test& s, long batch_size,
                                                                        std::uint64_t seed, int steps,
                                                                        const tolerance& tol = {}) {
  INFO("model " << s.describe() << ", batch " << batch_size << ", seed " << seed);
  const graph& G = s.step_graph();
  const batch_data d = random_batch(G, batch_size, seed + 1000);
  std::vector<std::vector<double>> leaves(static_cast<std::size_t>(G.num_leaves));
  for (int l = 0; l < G.num_leaves; ++l) {
    const std::string name(G.leaves[l].name.view());
    auto& out = leaves[static_cast<std::size_t>(l)];
    if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state) {
      const std::vector<float> p = s.param(name);
      out.assign(p.begin(), p.end());
    } else if (name == "x") {
      out.assign(d.xs.begin(), d.xs.end());
    } else if (name == "target") {
      out.assign(d.ts.begin(), d.ts.end());
    } else if (name == "soft") {
      out.assign(d.soft.begin(), d.soft.end());
    } else if (name == "y") {
      out.assign(d.ys.begin(), d.ys.end());
    }
  }
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    std::vector<double> hypers(cuda::max_hypers);
    s.hypers(step, hypers.data());
    const double ref_loss = reference::step(G, batch_size, leaves, hypers, s.random_key_of_step(step));
    const float loss = s.run(batch_size, d);
    CHECK(loss == Approx(ref_loss).epsilon(tol.loss_rel).margin(tol.loss_abs));
    for (int l = 0; l < G.num_leaves; ++l) {
      if (G.leaves[l].kind != leaf_kind::param && G.leaves[l].kind != leaf_kind::state) continue;
      const std::string name(G.leaves[l].name.view());
      const std::vector<float> got = s.param(name);
      const auto& want = leaves[static_cast<std::size_t>(l)];
      REQUIRE(got.size() == want.size());
      double largest = 0;
      for (double w : want) largest = std::max(largest, std::abs(w));
      const double margin = tol.value_abs + tol.of_largest * largest +
                            (G.leaves[l].kind == leaf_kind::param ? tol.param_abs : 0.0);
      for (std::size_t j = 0; j < want.size(); ++j) {
        INFO(name << "[" << j << "]: " << std::setprecision(9) << got[j] << " against " << want[j] << ", margin " << margin
                  << " (largest " << largest << ")");
        REQUIRE(got[j] == Approx(want[j]).epsilon(tol.value_rel).margin(margin));
      }
    }
  }
  return all_params(s);
}

// The CUDA step of Model/Opt/Mode on `dev` against the reference (see above).
template <class Model, class Opt, fusion Mode>
std::map<std::string, std::vector<float>> compare_with_reference(std::shared_ptr<cuda::device> dev, Opt opt, long batch_size,
                                                                 std::uint64_t seed, int steps = 3, int tile_rows = 0) {
  cuda_step_under_test<Model, Opt, Mode> s(std::move(dev), opt, seed, tile_rows);
  return compare_with_reference(s, batch_size, seed, steps);
}

// fused == unfused: both modes from the same start give the same parameters (within float rounding).
inline void check_same_params(const std::map<std::string, std::vector<float>>& a,
                              const std::map<std::string, std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, va] : a) {
    const auto& vb = b.at(name);
    REQUIRE(va.size() == vb.size());
    for (std::size_t j = 0; j < va.size(); ++j) {
      INFO(name << "[" << j << "]");
      REQUIRE(va[j] == Approx(vb[j]).epsilon(1e-5).margin(1e-6));
    }
  }
}

// ---- on a real GPU

// One CUDA device for every step of the process (kernels compiled once, then from the kernel cache), or
// nullptr after WARN("skipped: <why>") where CUDA cannot run.
inline std::shared_ptr<cuda::device> gpu_or_skip() {
  static std::shared_ptr<cuda::device> dev;
  static std::string why;
  if (!dev && why.empty()) {
    try {
      dev = std::make_shared<cuda::cuda_device>();
    } catch (const backend_unavailable& e) {
      why = e.what();
    }
  }
  if (!dev) WARN("skipped: no usable CUDA device: " << why);
  return dev;
}

// Batch sizes that are and are not multiples of the tile sizes.
inline constexpr long device_batches[] = {1, 7, 128, 1000, 65537};

// Both modes against the reference at every batch size, and against each other.
template <class Model, class Opt>
void check_everywhere(const std::shared_ptr<cuda::device>& dev, Opt opt, std::uint64_t seed) {
  for (long b : device_batches) {
    const int steps = b > 10000 ? 2 : 3;
    const auto fused = compare_with_reference<Model, Opt, fusion::fused>(dev, opt, b, seed, steps);
    const auto unfused = compare_with_reference<Model, Opt, fusion::unfused>(dev, opt, b, seed, steps);
    INFO("fused == unfused, batch " << b);
    check_same_params(fused, unfused);
  }
}

// ---- compile-only

// The opt-in shared memory per block of the GPUs an architecture is rendered for: A100 (sm_80) and H100 (sm_90).
inline int shared_bytes_of(const std::string& arch) { return arch == "sm_80" ? 166912 : 232448; }

// NVRTC, or nullptr after WARN("skipped: ...") where it cannot be loaded.
inline std::shared_ptr<const cuda::nvrtc_library> nvrtc_or_skip() {
  try {
    return cuda::nvrtc_library::load();
  } catch (const backend_unavailable& e) {
    WARN("skipped: NVRTC not available: " << e.what());
    return nullptr;
  }
}

// The architectures a plan's module is compiled for. The shared-memory budget, the one render option that differs
// between them, shapes only a fused plan's whole-step kernels: an unfused plan renders the same source for both,
// so it is compiled once, for sm_90 (the H100 and H200 the GPU checks run on), which halves the NVRTC time of the
// unfused cases.
inline std::vector<std::string> architectures_for(const plan& p) {
  if (p.mode == fusion::fused) return {"sm_80", "sm_90"};
  return {"sm_90"};
}

// Renders plan p for each of architectures_for(p) and compiles the whole module to a CUBIN with NVRTC (the
// architectures concurrently); checks that each CUBIN is for its architecture and holds every kernel's symbol.
// Returns the number of kernels compiled per architecture.
inline std::size_t compile_for_architectures(const plan& p, const cuda::nvrtc_library& nvrtc,
                                             cuda::matmul_precision precision = cuda::matmul_precision::fp32) {
  const std::vector<std::string> archs = architectures_for(p);
  std::vector<std::future<std::pair<cuda::rendered_program, cuda::compiled_kernel>>> jobs;
  for (const std::string& arch : archs)
    jobs.push_back(std::async(std::launch::async, [&p, &nvrtc, arch, precision] {
      cuda::render_options o;
      o.shared_bytes = shared_bytes_of(arch);
      o.precision = precision;
      cuda::rendered_program r = cuda::render(p, o);
      cuda::compiled_kernel k = nvrtc.compile({r.module_source(), r.launches.front().name, cuda::module_options()},
                                              cuda::gpu_target::parse(arch));
      return std::make_pair(std::move(r), std::move(k));
    }));
  std::size_t kernels = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto [r, k] = jobs[i].get();  // rethrows an NVRTC error with its log and the numbered source
    INFO(k.target << ": " << k.log);
    CHECK(k.kind == cuda::binary_kind::cubin);
    CHECK(k.target == archs[i]);
    CHECK(k.image.compare(0, 4, "\x7f" "ELF") == 0);
    for (const cuda::launch_spec& l : r.launches) {
      INFO("kernel " << l.name);
      CHECK(k.image.find(l.name) != std::string::npos);
    }
    kernels = r.launches.size();
  }
  return kernels;
}

template <class Model, class Opt, fusion Mode>
struct step_plan {
  static constexpr const graph& g = step_graph<Model, Opt>::value;
  static constexpr const plan& p = frozen_plan<step_graph<Model, Opt>, Mode>::value;
};

// Compiles the step of Model with Opt in mode Mode for architectures_for(its plan); WARNs the kernel count.
template <class Model, class Opt, fusion Mode>
void compile_step(const char* what, cuda::matmul_precision precision = cuda::matmul_precision::fp32) {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  if (const std::string hazard = cuda::in_place_hazard(step_plan<Model, Opt, Mode>::p); !hazard.empty()) {
    WARN("not compiled: the plan of " << what << " is refused by the CUDA renderer: " << hazard);
    return;
  }
  const std::size_t n = compile_for_architectures(step_plan<Model, Opt, Mode>::p, *nvrtc, precision);
  std::string archs;
  for (const std::string& a : architectures_for(step_plan<Model, Opt, Mode>::p)) archs += (archs.empty() ? "" : " and ") + a;
  WARN("NVRTC " << nvrtc->version().text() << " compiled the " << n << " kernels of " << what << " ("
                << (Mode == fusion::fused ? "fused" : "unfused")
                << (precision == cuda::matmul_precision::fp32 ? "" : std::string(", ") + cuda::precision_name(precision) + " products")
                << ") for " << archs);
}

}  // namespace kiln_cuda_test
