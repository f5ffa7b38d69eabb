// kiln::cpu::export_onnx: the exported model passes onnx.checker (full check, shape inference included) and ONNX
// Runtime computes from it what the kiln::cpu::function computes, for an MLP (GELU, PReLU, tanh, softmax), a CNN
// (convolutions, batch norm in evaluation mode, pooling, dropout off), an embedding model (int64 indices) and a
// model of rank-4 tensors through every axis op. The parameters are initializers under their PyTorch names and
// shapes. Runs when a Python with onnx and onnxruntime is found (KILN_ONNX_PYTHON, else
// ~/.cache/kiln-onnx-venv/bin/python, made by tests/setup_onnx_venv.sh); says skipped otherwise.
#include "export_models.hpp"
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/export_onnx.hpp>
#include <kiln/cpu/train_step.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {
using namespace kiln_test::export_models;

std::string python() {
  if (const char* p = std::getenv("KILN_ONNX_PYTHON"); p && *p) return p;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/kiln-onnx-venv/bin/python";
}

bool have_onnx_runtime() {
  if (kiln_test::run(python() + " -c 'import onnx, onnxruntime' > /dev/null 2>&1")) return true;
  WARN("skipped: " << python() << " cannot import onnx and onnxruntime (bash tests/setup_onnx_venv.sh, or set KILN_ONNX_PYTHON)");
  return false;
}

template <class T>
std::string write_raw(const std::string& path, const std::vector<T>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  return path;
}

// Exports f, runs it in ONNX Runtime on `input` (fed as `name`, [batch, width]) and checks the result against kiln's
// `expected` to float rounding of the largest magnitude.
template <class F, class T>
void check_onnx(const F& f, const std::string& name, const std::vector<T>& input, long batch, long width,
                const std::vector<float>& expected) {
  const std::string dir = kiln_test::temp_dir();
  kiln::cpu::export_onnx(f, dir + "/model.onnx");
  std::string feed;
  if constexpr (std::is_same_v<T, std::int32_t>) {
    const std::vector<std::int64_t> wide(input.begin(), input.end());  // ONNX's indices are int64
    feed = name + " int64 " + std::to_string(batch) + " " + std::to_string(width) + " " + write_raw(dir + "/in.bin", wide);
  } else {
    feed = name + " float32 " + std::to_string(batch) + " " + std::to_string(width) + " " + write_raw(dir + "/in.bin", input);
  }
  const std::string out = dir + "/out.bin";
  std::filesystem::remove(out);
  REQUIRE(kiln_test::run(python() + " " + KILN_SOURCE_DIR + "/tests/train/onnx_run.py " + dir + "/model.onnx " + out + " " + feed));
  std::vector<float> got(expected.size());
  std::ifstream in(out, std::ios::binary);
  in.read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(got.size() * sizeof(float)));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(got.size() * sizeof(float)));
  const deviation d = deviation_of(got, expected);
  INFO("output " << d.at << ": ONNX Runtime " << got[d.at] << ", kiln " << expected[d.at] << "; max |output| " << d.scale);
  REQUIRE(d.scale > 0);
  CHECK(d.within_rounding());
}
}  // namespace

TEST_CASE("export_onnx: an MLP's softmax in ONNX Runtime") {
  if (!have_onnx_runtime()) return;
  kiln::cpu::train_step<mlp_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 3);
  for (int i = 0; i < 5; ++i) step.run(6, {{"x", normal(6 * 7, 1)}, {"y", classes(6, 5, 2)}});
  auto f = kiln::cpu::function<mlp_probabilities>::copy_of(step);
  const std::vector<float> in = normal(4 * 7, 3);
  check_onnx(f, "x", in, 4, 7, run_function(f, "x", in, 4, 5));
  // deterministic, and the parameters under their PyTorch names
  const std::string bytes = kiln::cpu::export_onnx_bytes(f);
  CHECK(kiln::cpu::export_onnx_bytes(f) == bytes);
  CHECK(bytes.find("fc1.weight") != std::string::npos);
}

TEST_CASE("export_onnx: a CNN's logits in ONNX Runtime (conv, batch norm, pooling, dropout off)") {
  if (!have_onnx_runtime()) return;
  kiln::cpu::train_step<cnn_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 5);
  for (int i = 0; i < 4; ++i) step.run(8, {{"x", normal(8 * 288, 4)}, {"y", classes(8, 3, 5)}});
  auto f = kiln::cpu::function<cnn_logits>::copy_of(step);
  const std::vector<float> in = normal(3 * 288, 6);
  check_onnx(f, "x", in, 3, 288, run_function(f, "x", in, 3, 3));
}

TEST_CASE("export_onnx: an embedding model takes int64 indices") {
  if (!have_onnx_runtime()) return;
  kiln::cpu::train_step<lm_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 7);
  for (int i = 0; i < 4; ++i) step.run(10, {{"context", classes(30, 9, 8)}, {"y", classes(10, 9, 9)}});
  auto f = kiln::cpu::function<lm_logits>::copy_of(step);
  const std::vector<std::int32_t> in = classes(5 * 3, 9, 10);
  check_onnx(f, "context", in, 5, 3, run_function(f, "context", in, 5, 9));
}

TEST_CASE("export_onnx: rank-4 tensors through permute, slice, concat, broadcasting and reductions") {
  if (!have_onnx_runtime()) return;
  kiln::cpu::train_step<axes_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 9);
  for (int i = 0; i < 3; ++i) step.run(6, {{"x", normal(6 * 24, 11)}, {"y", classes(6, 3, 12)}});
  auto f = kiln::cpu::function<axes_logits>::copy_of(step);
  const std::vector<float> in = normal(4 * 24, 13);
  check_onnx(f, "x", in, 4, 24, run_function(f, "x", in, 4, 3));
}

namespace {
// The input saliency of a small CNN, d(Σ logits)/dx: its graph holds the backward-only window ops (max_pool2d_dx,
// conv2d_dx), which ONNX has no operator for.
inline constexpr auto saliency_net = kiln::nn::torch_sequential(kiln::conv2d<1, 2, 3, 1, 1>{}, kiln::max_pool2d<2>{}, kiln::flatten,
                                                                kiln::dense<3>{});
struct saliency_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(saliency_net(kiln::image<1, 4, 4>("x")), kiln::labels<3>("y")); }
};
struct saliency {
  constexpr auto operator()() const {
    auto x = kiln::image<1, 4, 4>("x");
    return kiln::grad(kiln::sum(saliency_net(x)), x);
  }
};
}  // namespace

TEST_CASE("export_onnx: an op ONNX cannot express fails at export, naming the op, and writes no file") {
  kiln::cpu::train_step<saliency_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 1);
  auto f = kiln::cpu::function<saliency>::copy_of(step);
  const std::vector<float> in = normal(2 * 16, 14);
  CHECK(run_function(f, "x", in, 2, 16).size() == 32);  // the function itself runs
  const std::string path = kiln_test::temp_dir() + "/saliency.onnx";
  CHECK_THROWS_WITH(kiln::cpu::export_onnx(f, path), Catch::Contains("kiln::export_onnx: op '") && Catch::Contains("_dx'") &&
                                                          Catch::Contains("has no ONNX form"));
  CHECK_FALSE(std::filesystem::exists(path));
}
