#pragma once
// The Fashion-MNIST demos' common part (fashion_mnist.cpp: the notes' MLP; fashion_mnist_cnn.cpp: a CNN): the
// command line, the data (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist; 10% of the training
// images held out for validation, the test set used once at the end), training with kiln's trainer on the CPU or
// with --device cuda on the GPU (kiln::cuda::train_step; evaluation, checkpoints and plots use the parameters
// copied back after every epoch), and what they print and write:
//
//   PROGRAM [--epochs N] [--batch B] [--lr X] [--seed S] [--device cpu|cuda] [--out DIR] [--data DIR] [--limit N]
//           [--distributed [--zero]] [--precision fp32|tf32|bf16]
//
// --distributed trains data-parallel over the ranks of an MPI job (mpirun -np 2 PROGRAM --distributed; a build
// with MPI): each rank takes its share of every batch of B rows, the gradients are summed over ranks during the
// backward pass, and rank 0 prints and writes; it reaches what one process reaches (the same batches). --zero
// also shards the Adam state over the ranks (ZeRO-1).
//
// DIR/model.safetensors (PyTorch names), DIR/log.csv, DIR/curves.svg and DIR/kernels/ (the fused and unfused plans
// as text, the step's graph as Graphviz DOT, the step rendered as C++ source, and as CUDA C++ with --device cuda).
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/plan/dot.hpp>
#include <kiln/cpu/render.hpp>
#include <kiln/cuda/step.hpp>
#include <kiln/cpu/trainer.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace fashion_demo {

struct arguments {
  int epochs = 10;
  long batch = 64;
  double lr = 1e-3;
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::string out = "out";
  std::string data = "/usr/share/datasets/fashion-mnist";
  long limit = 0;  // use only the first N training images (0: all)
  bool distributed = false;
  bool zero = false;  // with --distributed: the optimizer state sharded over the ranks (ZeRO-1)
  std::string precision = "fp32";  // or bf16: BF16 matrix-product operands, FP32 sums, weights and Adam state;
                                   // with --device cuda also tf32 (TF32 tensor-core products)
};

inline std::string program = "fashion_mnist";
inline const char* usage =
    "usage: PROGRAM [--epochs N] [--batch B] [--lr X] [--seed S] [--device cpu|cuda] [--out DIR]\n"
    "               [--data DIR] [--limit N]\n"
    "  --epochs N   passes over the training set (default 10)\n"
    "  --batch B    samples per iteration (default 64)\n"
    "  --lr X       Adam learning rate (default 0.001)\n"
    "  --seed S     initialization and shuffling seed (default 0)\n"
    "  --device D   cpu (default) or cuda\n"
    "  --out DIR    where the checkpoint, log, curves and kernels go (default ./out, fashion_mnist_cnn: ./out_cnn)\n"
    "  --data DIR   the IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  --limit N    train on the first N training images only (a quick run)\n"
    "  --distributed  data-parallel over the ranks of an MPI job (mpirun -np 2 PROGRAM --distributed)\n"
    "  --zero         with --distributed: each rank holds and updates the Adam state of its share of the parameters (ZeRO-1)\n"
    "  --precision P  fp32 (default) or bf16: the step's matrix products and convolutions take BF16 operands\n"
    "                 with FP32 sums (on the CPU: AMX or AVX512-BF16 where it has them; on a GPU: tensor cores);\n"
    "                 weights, Adam and the rest stay FP32. With --device cuda also tf32 (TF32 tensor cores)\n";

// The usage text with this program's name.
inline std::string usage_text() {
  std::string u = usage;
  const std::size_t at = u.find("PROGRAM");
  return u.replace(at, 7, program);
}

[[noreturn]] inline void bad_usage(const std::string& why) {
  std::fprintf(stderr, "%s: %s\n%s", program.c_str(), why.c_str(), usage_text().c_str());
  std::exit(2);
}

// Parses a whole argument as a number, or stops with a message naming the flag.
template <class T>
T number(const std::string& flag, const std::string& text) {
  T v{};
  const char* end = text.data() + text.size();
  if constexpr (std::is_integral_v<T>) {
    const auto r = std::from_chars(text.data(), end, v);
    bool negative = false;
    if constexpr (std::is_signed_v<T>) negative = v < 0;
    if (r.ec != std::errc{} || r.ptr != end || negative) bad_usage(flag + " needs a whole number >= 0, got '" + text + "'");
  } else {
    char* stop = nullptr;
    v = std::strtod(text.c_str(), &stop);
    if (text.empty() || stop != end || !std::isfinite(v)) bad_usage(flag + " needs a number, got '" + text + "'");
  }
  return v;
}

inline arguments parse(int argc, char** argv, const std::string& default_out) {
  arguments a;
  a.out = default_out;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage_text().c_str(), stdout);
      std::exit(0);
    }
    if (flag == "--distributed" || flag == "--zero") {
      (flag == "--zero" ? a.zero : a.distributed) = true;
      continue;
    }
    if (i + 1 >= argc) bad_usage("missing value after " + flag);
    const std::string v = argv[++i];
    if (flag == "--epochs") a.epochs = number<int>(flag, v);
    else if (flag == "--batch") a.batch = number<long>(flag, v);
    else if (flag == "--lr") a.lr = number<double>(flag, v);
    else if (flag == "--seed") a.seed = number<std::uint64_t>(flag, v);
    else if (flag == "--device") a.device = v;
    else if (flag == "--out") a.out = v;
    else if (flag == "--data") a.data = v;
    else if (flag == "--limit") a.limit = number<long>(flag, v);
    else if (flag == "--precision") a.precision = v;
    else bad_usage("unknown option " + flag);
  }
  if (a.epochs < 1) bad_usage("--epochs must be at least 1");
  if (a.batch < 1) bad_usage("--batch must be at least 1");
  if (!(a.lr > 0)) bad_usage("--lr must be positive");
  if (a.device != "cpu" && a.device != "cuda") bad_usage("--device must be cpu or cuda, got '" + a.device + "'");
  if (a.distributed && a.device != "cpu") bad_usage("--distributed trains on the CPU (--device cpu)");
  if (a.zero && !a.distributed) bad_usage("--zero shards the optimizer state over the ranks of --distributed");
  if (a.precision != "fp32" && a.precision != "tf32" && a.precision != "bf16")
    bad_usage("--precision must be fp32, tf32 or bf16, got '" + a.precision + "'");
  if (a.precision == "tf32" && a.device != "cuda") bad_usage("--precision tf32 is the GPU step's (--device cuda)");
  return a;
}

inline kiln::train::table to_table(const kiln::data::labelled_images& d) {
  kiln::train::table t;
  t.add_features("x", d.pixels, d.pixels_per_image()).add_labels("y", d.labels);
  return t;
}

// Median wall time of one training step, in milliseconds, over `reps` steps on one batch (after a warm-up).
template <class Step>
double median_step_ms(Step& step, const kiln::train::table& data, long batch, int reps) {
  const auto& x = data["x"].values;
  const auto& y = data["y"].labels;
  const std::span<const float> xs(x.data(), static_cast<std::size_t>(batch) * 784);  // 28×28 grey images
  const std::span<const std::int32_t> ys(y.data(), static_cast<std::size_t>(batch));
  for (int i = 0; i < 5; ++i) step.run(batch, {{"x", xs}, {"y", ys}});
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step.run(batch, {{"x", xs}, {"y", ys}});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[static_cast<std::size_t>(reps / 2)];
}

struct splits {
  kiln::train::table train, validation, test;
};
// The training images (the first args.limit), 10% of them held out for validation, and the test set.
inline splits load_splits(const arguments& args) {
  const kiln::data::labelled_images train_images =
      kiln::data::load_idx_pair(args.data + "/train-images-idx3-ubyte.gz", args.data + "/train-labels-idx1-ubyte.gz", 10);
  const kiln::data::labelled_images test_images =
      kiln::data::load_idx_pair(args.data + "/t10k-images-idx3-ubyte.gz", args.data + "/t10k-labels-idx1-ubyte.gz", 10);
  kiln::train::table all = to_table(train_images);
  if (args.limit > 0) all = all.head(static_cast<std::size_t>(args.limit));
  const auto split = kiln::data::train_validation_split(all.rows(), 0.1, args.seed);
  return {all.select(split.train), all.select(split.validation), to_table(test_images)};
}

inline kiln::cpu::precision arithmetic(const arguments& args) {
  return args.precision == "bf16" ? kiln::cpu::precision::bf16 : kiln::cpu::precision::fp32;
}

// --distributed: the same training, data-parallel over the MPI job's ranks; rank 0 prints and writes. Each program
// defines it for its model in its own translation unit (examples/<program>/distributed.cpp, with
// fashion_mnist_demo_distributed.hpp): the data-parallel step is a third of the demo's compile time, and compiled
// beside the rest it made one translation unit of over a minute.
int run_distributed(int argc, char** argv, const arguments& args, const std::string& model);

// Trains the model whose loss is Loss and whose predictions are Logits (inputs "x" [batch, 784], labels "y") on
// Fashion-MNIST as the arguments say, and prints what it reached. `model` describes it in the log and the plot.
template <class Loss, class Logits>
int run(int argc, char** argv, const std::string& name, const std::string& model, const std::string& default_out = "out") {
  program = name;
  const arguments args = parse(argc, argv, default_out);
  if (args.distributed) return run_distributed(argc, argv, args, model);
  using trainer_type = kiln::train::trainer<Loss, kiln::adam, Logits>;
  using gpu_step = kiln::cuda::train_step<Loss, kiln::adam>;
  using gpu_unfused_step = kiln::cuda::train_step<Loss, kiln::adam, kiln::fusion::unfused>;
  std::unique_ptr<gpu_step> gpu;
  if (args.device == "cuda") {
    try {
      kiln::cuda::step_options so;
      so.render.precision = args.precision == "tf32"   ? kiln::cuda::matmul_precision::tf32
                            : args.precision == "bf16" ? kiln::cuda::matmul_precision::bf16
                                                       : kiln::cuda::matmul_precision::fp32;
      gpu = std::make_unique<gpu_step>(kiln::adam{.lr = args.lr}, args.seed, so);  // compiles the step with NVRTC
    } catch (const kiln::error& e) {
      std::fprintf(stderr, "%s: --device cuda: %s\n  (run with --device cpu to train on the CPU)\n", program.c_str(), e.what());
      return 2;
    }
    std::printf("device: %s\nproducts: %s\n", gpu->on().describe().c_str(),
                args.precision == "fp32" ? "fp32 (FFMA)" : (args.precision + " tensor cores, fp32 sums").c_str());
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    std::printf("loading Fashion-MNIST from %s\n", args.data.c_str());
    splits data;
    try {
      data = load_splits(args);
    } catch (const kiln::io_error& e) {
      std::fprintf(stderr, "%s: %s\n  (install the data with: apt-get install dataset-fashion-mnist, or pass --data DIR)\n", program.c_str(), e.what());
      return 1;
    }
    const kiln::train::table &train = data.train, &validation = data.validation, &test = data.test;

    kiln::train::options opt;
    opt.epochs = args.epochs;
    opt.batch_size = args.batch;
    opt.seed = args.seed;
    opt.out_dir = args.out;
    opt.keep_best = true;  // the checkpoint is the epoch with the lowest validation loss
    char title[128];
    std::snprintf(title, sizeof title, "Fashion-MNIST, %s, Adam lr %g, batch %ld", model.c_str(), args.lr, args.batch);
    opt.title = title;
    trainer_type trainer(kiln::adam{.lr = args.lr}, opt);
    if (!gpu) {
      trainer.step().set_precision(arithmetic(args));
      std::printf("products: %s\n", trainer.step().precision_text().c_str());
    }
    const long per_epoch = static_cast<long>((train.rows() + static_cast<std::size_t>(args.batch) - 1) / static_cast<std::size_t>(args.batch));
    std::printf("training on %zu images, validating on %zu, testing on %zu\n", train.rows(), validation.rows(), test.rows());
    std::printf("model %s, cross-entropy, Adam lr %g, batch %ld: %ld iterations per epoch, %d epochs, seed %llu\n", model.c_str(),
                args.lr, args.batch, per_epoch, args.epochs, static_cast<unsigned long long>(args.seed));
    std::printf("compiled step: %d fused kernels (unfused: %d)%s\n", kiln::kernel_count(trainer_type::step_type::compiled_plan()),
                kiln::kernel_count(trainer_type::unfused_step_type::compiled_plan()),
                gpu ? (", " + std::to_string(gpu->launches_per_step()) + " CUDA launches per step").c_str() : "");

    const auto train_start = std::chrono::steady_clock::now();
    if (gpu) trainer.fit_on(*gpu, train, validation);
    else trainer.fit(train, validation);
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
    const kiln::train::evaluation test_result = trainer.evaluate(test);

    // One step's time at this batch size, fused against unfused (fresh steps: the trained one is left alone).
    const long b = std::min<long>(args.batch, static_cast<long>(train.rows()));
    double fused_ms, unfused_ms;
    if (gpu) {
      gpu_step fused(kiln::adam{.lr = args.lr}, args.seed);
      gpu_unfused_step unfused(kiln::adam{.lr = args.lr}, args.seed);
      fused_ms = median_step_ms(fused, train, b, 51);
      unfused_ms = median_step_ms(unfused, train, b, 51);
    } else {
      typename trainer_type::step_type fused(kiln::adam{.lr = args.lr}, args.seed);
      typename trainer_type::unfused_step_type unfused(kiln::adam{.lr = args.lr}, args.seed);
      fused.set_precision(arithmetic(args));
      unfused.set_precision(arithmetic(args));
      fused_ms = median_step_ms(fused, train, b, 51);
      unfused_ms = median_step_ms(unfused, train, b, 51);
    }
    std::printf("%s step time at batch %ld (median of 51%s): fused %.3f ms, unfused %.3f ms (unfused/fused %.2fx)\n",
                gpu ? "CUDA" : "CPU", b, gpu ? ", batch uploaded each step" : "", fused_ms, unfused_ms, unfused_ms / fused_ms);

    const std::string kernels = args.out + "/kernels";
    kiln::io::make_dirs(kernels);
    const auto& fused_plan = trainer_type::step_type::compiled_plan();
    kiln::io::write_file_atomic(kernels + "/plan.txt", trainer_type::step_type::plan_text());
    kiln::io::write_file_atomic(kernels + "/plan_unfused.txt", trainer_type::unfused_step_type::plan_text());
    kiln::io::write_file_atomic(kernels + "/step.dot", kiln::to_dot(fused_plan, program + " training step"));
    kiln::io::write_file_atomic(kernels + "/step_cpu.cpp", kiln::cpu::render_source(fused_plan, program + "_step"));
    if (gpu) kiln::io::write_file_atomic(kernels + "/step_cuda.cu", gpu->source());
    std::printf("trained in %.1f s (%.1f s with loading and timing)\n", train_seconds,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::printf("wrote %s (checkpoint), %s/log.csv, %s/curves.svg and %s/ (plans, graph DOT, C++%s source)\n",
                trainer.checkpoint_path().c_str(), args.out.c_str(), args.out.c_str(), kernels.c_str(),
                gpu ? " and CUDA" : "");
    std::printf("test loss: %.4f\n", test_result.loss);
    std::printf("test accuracy: %.4f\n", test_result.accuracy);
    return 0;
  } catch (const kiln::error& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace fashion_demo
