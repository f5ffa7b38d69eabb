// Serving a trained model: the notes' classifier (784 → 128 ReLU → 64 ReLU → 10) trained briefly on Fashion-MNIST,
// saved, reloaded as kiln::cpu::function (the inference API), exported as a standalone C++17 header
// (kiln::cpu::export_cpp) that the system compiler builds into a small server without kiln, and every route timed
// on a stream of single-sample requests (the test images one at a time): latency percentiles and accuracy per
// route, and whether the routes predict the same classes. The model is also
// and exported to ONNX (kiln::cpu::export_onnx) that ONNX Runtime serves (examples/onnx_serve.py, when a Python with
// onnxruntime is found: --onnx-python, else $KILN_ONNX_PYTHON, else ~/.cache/kiln-onnx-venv/bin/python made by
// tests/setup_onnx_venv.sh; the route says skipped otherwise).
//
//   inference [--epochs N] [--requests N] [--out DIR] [--data DIR] [--cxx COMPILER] [--onnx-python PYTHON]
//
// DIR (default ./out_inference) receives model.safetensors, model.hpp (the exported header), server.cpp (the
// stream served by the header) and its build, and model.onnx.
#include "fashion_mnist_model.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/export_cpp.hpp>
#include <kiln/cpu/export_onnx.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/train/checkpoint.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {
using classifier_loss = fashion_mlp::loss;
using classifier_logits = fashion_mlp::logits;
using step_type = kiln::cpu::train_step<classifier_loss, kiln::adam>;
using function_type = kiln::cpu::function<classifier_logits>;
constexpr long pixels = 784, classes = 10;

struct arguments {
  int epochs = 1;
  long requests = 10000;
  std::string out = "out_inference", data = "/usr/share/datasets/fashion-mnist", cxx = "c++", onnx_python;
};

[[noreturn]] void bad_usage(const std::string& why) {
  std::fprintf(stderr, "inference: %s\nusage: inference [--epochs N] [--requests N] [--out DIR] [--data DIR] [--cxx COMPILER] "
               "[--onnx-python PYTHON]\n",
               why.c_str());
  std::exit(2);
}

arguments parse(int argc, char** argv) {
  arguments a;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) bad_usage(flag + " needs a value");
    const std::string v = argv[i + 1];
    if (flag == "--epochs") a.epochs = std::atoi(v.c_str());
    else if (flag == "--requests") a.requests = std::atol(v.c_str());
    else if (flag == "--out") a.out = v;
    else if (flag == "--data") a.data = v;
    else if (flag == "--cxx") a.cxx = v;
    else if (flag == "--onnx-python") a.onnx_python = v;
    else bad_usage("unknown option " + flag);
  }
  if (a.epochs < 1) bad_usage("--epochs must be at least 1");
  if (a.requests < 1) bad_usage("--requests must be at least 1");
  if (a.onnx_python.empty()) {
    const char* env = std::getenv("KILN_ONNX_PYTHON");
    const char* home = std::getenv("HOME");
    a.onnx_python = env && *env ? std::string(env) : std::string(home ? home : "") + "/.cache/kiln-onnx-venv/bin/python";
  }
  return a;
}

// p50 and p99 of per-request times in microseconds (sorted in place)
struct percentiles { double p50, p99; };
percentiles of(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  return {at(0.50), at(0.99)};
}

long argmax(const float* row) { return static_cast<long>(std::max_element(row, row + classes) - row); }

// A route served in another process (the exported header's server, ONNX Runtime): it prints "p50 p99 correct" and
// then one predicted class per request. Prints its line and checks that it predicts what kiln::cpu::function
// predicts: the routes sum in different orders, so only a near-tie of two logits (within float rounding) may break
// differently. Returns false when they disagree on more than 1 in 1000 requests.
bool report_route(const char* label, const std::string& answers, const std::vector<long>& predicted, const std::string& how) {
  std::ifstream a(answers);
  double p50 = 0, p99 = 0;
  long correct = 0, agree = 0;
  const long n = static_cast<long>(predicted.size());
  a >> p50 >> p99 >> correct;
  for (long i = 0; i < n; ++i) {
    long p = -1;
    a >> p;
    agree += p == predicted[static_cast<std::size_t>(i)];
  }
  std::printf("  %-21s p50 %.2f us, p99 %.2f us, accuracy %.4f, the same class as kiln::cpu::function for %ld of %ld (%s)\n",
              label, p50, p99, static_cast<double>(correct) / static_cast<double>(n), agree, n, how.c_str());
  if (agree * 1000 < n * 999) {
    std::fprintf(stderr, "inference: the %s route disagrees with kiln::cpu::function on %ld requests\n", label, n - agree);
    return false;
  }
  return true;
}

// The server the exported header is built into: the same request stream, timed the same way, printed as
// "p50 p99 correct" followed by every prediction.
const char* server_source = R"(#include "model.hpp"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const long n = std::atol(argv[2]);
  std::vector<float> x(static_cast<std::size_t>(n) * 784);
  std::vector<int> y(static_cast<std::size_t>(n));
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f || std::fread(x.data(), sizeof(float), x.size(), f) != x.size() || std::fread(y.data(), sizeof(int), y.size(), f) != y.size()) return 3;
  std::fclose(f);
  std::vector<double> us(static_cast<std::size_t>(n));
  std::vector<int> predicted(static_cast<std::size_t>(n));
  float out[10];
  long correct = 0;
  for (long i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model::predict(x.data() + i * 784, out, 1);
    us[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    predicted[static_cast<std::size_t>(i)] = static_cast<int>(std::max_element(out, out + 10) - out);
    correct += predicted[static_cast<std::size_t>(i)] == y[static_cast<std::size_t>(i)];
  }
  std::sort(us.begin(), us.end());
  std::printf("%.3f %.3f %ld\n", us[static_cast<std::size_t>(0.50 * static_cast<double>(n - 1))], us[static_cast<std::size_t>(0.99 * static_cast<double>(n - 1))], correct);
  for (int p : predicted) std::printf("%d\n", p);
  return 0;
}
)";
}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
  kiln::data::labelled_images train_images, test_images;
  try {
    train_images = kiln::data::load_idx_pair(args.data + "/train-images-idx3-ubyte.gz", args.data + "/train-labels-idx1-ubyte.gz", 10);
    test_images = kiln::data::load_idx_pair(args.data + "/t10k-images-idx3-ubyte.gz", args.data + "/t10k-labels-idx1-ubyte.gz", 10);
  } catch (const kiln::io_error& e) {
    std::fprintf(stderr, "inference: %s\n  (install the data with: apt-get install dataset-fashion-mnist, or pass --data DIR)\n", e.what());
    return 1;
  }
  kiln::io::make_dirs(args.out);

  // 1. train briefly and save
  step_type step(kiln::adam{.lr = 1e-3}, 1);
  const long batch = 64, n_train = static_cast<long>(train_images.labels.size());
  std::vector<long> order(static_cast<std::size_t>(n_train));
  for (long i = 0; i < n_train; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(1);
  std::vector<float> xb(static_cast<std::size_t>(batch * pixels));
  std::vector<std::int32_t> yb(static_cast<std::size_t>(batch));
  const auto train_start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (long b0 = 0; b0 + batch <= n_train; b0 += batch) {
      for (long i = 0; i < batch; ++i) {
        const long s = order[static_cast<std::size_t>(b0 + i)];
        std::copy_n(train_images.pixels.begin() + s * pixels, pixels, xb.begin() + i * pixels);
        yb[static_cast<std::size_t>(i)] = train_images.labels[static_cast<std::size_t>(s)];
      }
      step.run(batch, {{"x", xb}, {"y", yb}});
    }
  }
  std::printf("trained the 784-128-64-10 classifier for %d epoch%s on %ld images in %.1f s\n", args.epochs, args.epochs == 1 ? "" : "s",
              n_train, std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count());
  const std::string checkpoint = args.out + "/model.safetensors";
  kiln::train::save_checkpoint(step, checkpoint);

  // 2. reload for inference, and export
  const function_type f = function_type::load(checkpoint);
  const std::string header = args.out + "/model.hpp";
  kiln::cpu::export_cpp(f, header, "model");
  std::printf("reloaded %s as kiln::cpu::function (%d kernels); exported %s\n", checkpoint.c_str(),
              function_type::compiled_plan().num_kernels, header.c_str());

  // 3. the request stream: the test images, one at a time
  const long n = std::min<long>(args.requests, static_cast<long>(test_images.labels.size()));
  auto ws = f.make_workspace();
  std::vector<double> us(static_cast<std::size_t>(n));
  std::vector<long> predicted(static_cast<std::size_t>(n));
  float out[classes];
  long correct = 0;
  for (long i = 0; i < n; ++i) {
    const std::span<const float> x(test_images.pixels.data() + i * pixels, pixels);
    const auto t0 = std::chrono::steady_clock::now();
    f.run(ws, 1, {{"x", x}}, out);
    us[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    predicted[static_cast<std::size_t>(i)] = argmax(out);
    correct += predicted[static_cast<std::size_t>(i)] == test_images.labels[static_cast<std::size_t>(i)];
  }
  const percentiles fp = of(us);
  std::printf("serving %ld single-sample requests:\n", n);
  std::printf("  kiln::cpu::function:  p50 %.2f us, p99 %.2f us, accuracy %.4f\n", fp.p50, fp.p99,
              static_cast<double>(correct) / static_cast<double>(n));

  // 4. the exported header, built by the system compiler with no kiln on the include path
  const std::string requests = args.out + "/requests.bin", server = args.out + "/server";
  {
    std::ofstream r(requests, std::ios::binary);
    r.write(reinterpret_cast<const char*>(test_images.pixels.data()), static_cast<std::streamsize>(n * pixels * sizeof(float)));
    std::vector<int> labels(test_images.labels.begin(), test_images.labels.begin() + n);
    r.write(reinterpret_cast<const char*>(labels.data()), static_cast<std::streamsize>(labels.size() * sizeof(int)));
  }
  kiln::io::write_file_atomic(args.out + "/server.cpp", server_source);
  const std::string build = args.cxx + " -std=c++17 -O2 -march=native -I" + args.out + " " + args.out + "/server.cpp -o " + server;
  bool ok = true;
  if (std::system((build + " 2> " + args.out + "/server_build.log").c_str()) != 0) {
    std::printf("  exported header:      skipped: '%s' failed (see %s/server_build.log)\n", build.c_str(), args.out.c_str());
  } else {
    const std::string answers = args.out + "/server_out.txt";
    if (std::system((server + " " + requests + " " + std::to_string(n) + " > " + answers).c_str()) != 0) {
      std::fprintf(stderr, "inference: the exported server failed\n");
      return 1;
    }
    ok = report_route("exported header:", answers, predicted, "built with: " + build) && ok;
  }

  // 5. the ONNX file, served by ONNX Runtime
  const std::string onnx = args.out + "/model.onnx";
  kiln::cpu::export_onnx(f, onnx);
  if (std::system((args.onnx_python + " -c 'import onnxruntime' > /dev/null 2>&1").c_str()) != 0) {
    std::printf("  ONNX Runtime:         skipped: %s cannot import onnxruntime (bash tests/setup_onnx_venv.sh, or --onnx-python)\n",
                args.onnx_python.c_str());
  } else {
    const std::string answers = args.out + "/onnx_out.txt";
    const std::string serve = args.onnx_python + " " + KILN_EXAMPLES_DIR + "/onnx_serve.py " + onnx + " " + requests + " " + std::to_string(n);
    if (std::system((serve + " > " + answers).c_str()) != 0) {
      std::fprintf(stderr, "inference: '%s' failed\n", serve.c_str());
      return 1;
    }
    ok = report_route("ONNX Runtime:", answers, predicted, "onnxruntime on " + onnx + ", one thread, timed in Python") && ok;
  }
  if (!ok) return 1;
  std::printf("test accuracy: %.4f\n", static_cast<double>(correct) / static_cast<double>(n));
  return 0;
}
