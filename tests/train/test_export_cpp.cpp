// kiln::cpu::export_cpp: the exported header compiles with kiln NOT on the include path, as C++17 under g++ and
// clang with warnings as errors, and its predict() computes what the kiln::cpu::function computes, for an MLP
// (GELU, PReLU, tanh, softmax), a CNN (conv, batch norm in evaluation mode, pooling, dropout off) and an embedding
// model (class-index input). The same parameters give byte-identical headers.
#include "export_models.hpp"
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/export_cpp.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {
using namespace kiln_test::export_models;

template <class T>
void write_raw(const std::string& path, const std::vector<T>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}
std::vector<float> read_raw(const std::string& path, std::size_t n) {
  std::vector<float> v(n);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  REQUIRE(f.gcount() == static_cast<std::streamsize>(n * sizeof(float)));
  return v;
}

// A driver that reads the input (raw floats, or raw int32 when `indices`), calls ns::predict and writes raw floats.
std::string driver(const std::string& ns, bool indices) {
  const std::string type = indices ? "std::int32_t" : "float";
  return "#include \"model.hpp\"\n#include <cstdio>\n#include <cstdlib>\n#include <vector>\n"
         "int main(int argc, char** argv) {\n"
         "  if (argc != 4) return 2;\n"
         "  const int batch = std::atoi(argv[2]);\n"
         "  std::vector<" + type + "> in(static_cast<std::size_t>(batch) * 4096);\n"
         "  std::FILE* f = std::fopen(argv[1], \"rb\");\n"
         "  if (!f) return 3;\n"
         "  const std::size_t got = std::fread(in.data(), sizeof(" + type + "), in.size(), f);\n"
         "  std::fclose(f);\n"
         "  if (got == 0) return 4;\n"
         "  std::vector<float> out(static_cast<std::size_t>(batch) * " + ns + "::output_width);\n"
         "  " + ns + "::predict(in.data(), out.data(), batch);\n"
         "  std::FILE* o = std::fopen(argv[3], \"wb\");\n"
         "  if (!o) return 5;\n"
         "  std::fwrite(out.data(), sizeof(float), out.size(), o);\n"
         "  std::fclose(o);\n"
         "  return 0;\n}\n";
}

// The compilers to try: the build's, and g++ and clang++ when installed, for the default target (the header's
// portable loops), and the build's again for this machine's vector unit (its widest tiles) unless the build is
// not native, and for AVX2 where the machine has it.
std::vector<std::string> compilers() {
  std::vector<std::string> c{KILN_CXX_COMPILER};
  for (const char* other : {"g++", "clang++"})
    if (kiln_test::have(other)) c.push_back(other);
  if (std::string(KILN_CXX_NATIVE_FLAG).size() > 0) c.push_back(std::string(KILN_CXX_COMPILER) + " " + KILN_CXX_NATIVE_FLAG);
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))  // the AVX tiles, on an AVX-512 machine too
    c.push_back(std::string(KILN_CXX_COMPILER) + " -mavx2 -mfma");
#endif
  return c;
}

// Exports f, compiles the header with each compiler (no kiln include path), runs it on `input` and checks its
// output against kiln's `expected` ([batch, width]) to float rounding of the largest magnitude.
template <class F, class T>
void check_export(const F& f, const std::string& ns, const std::vector<T>& input, long batch, const std::vector<float>& expected) {
  const std::string dir = kiln_test::temp_dir();
  kiln::cpu::export_cpp(f, dir + "/model.hpp", ns);
  kiln::io::write_file_atomic(dir + "/driver.cpp", driver(ns, std::is_same_v<T, std::int32_t>));
  write_raw(dir + "/in.bin", input);
  REQUIRE(std::any_of(expected.begin(), expected.end(), [](float v) { return v != 0; }));  // a comparison that can fail
  for (const std::string& cxx : compilers()) {
    INFO("compiler: " << cxx);
    const std::string exe = dir + "/driver";
    std::filesystem::remove(exe);
    // the header's directory only: nothing of kiln is reachable
    REQUIRE(kiln_test::run(cxx + " -std=c++17 -pedantic -O2 -Wall -Wextra -Werror -I" + dir + " " + dir + "/driver.cpp -o " + exe));
    REQUIRE(kiln_test::run(exe + " " + dir + "/in.bin " + std::to_string(batch) + " " + dir + "/out.bin"));
    const std::vector<float> got = read_raw(dir + "/out.bin", expected.size());
    const deviation d = deviation_of(got, expected);
    INFO("output " << d.at << ": header " << got[d.at] << ", kiln " << expected[d.at] << "; max |output| " << d.scale);
    CHECK(d.within_rounding());
  }
}

// Convolutions and products whose tiles do not divide them: 20 output channels dilated and padded by 2, a strided
// grouped one with 20 channels a group, a padded 3×3 max pool, a 1×1 convolution to 36 channels without padding,
// then dense layers of 40 columns (two vectors and 8 more) and 5.
inline constexpr auto convs = kiln::nn::torch_sequential(
    kiln::conv2d<3, 20, 3, 1, 2, 2>{}, kiln::relu, kiln::conv2d<20, 40, 3, 2, 1, 1, 2, false>{}, kiln::max_pool2d<3, 2, 1>{},
    kiln::tanh, kiln::conv2d<40, 36, 1>{}, kiln::flatten, kiln::dense<40>{}, kiln::relu, kiln::dense<5>{});
struct convs_logits {
  constexpr auto operator()() const { return convs(kiln::image<3, 11, 13>("x")); }
};

// Seeded normal values for every parameter, in the shape train_step::param would give them (for function::copy_of).
template <class F>
struct random_parameters {
  std::map<std::string, std::vector<float>, std::less<>> values;
  explicit random_parameters(std::uint64_t seed) {
    const kiln::graph& g = F::function_graph();
    for (int l = 0; l < g.num_leaves; ++l)
      if (kiln::train::is_stored(g.leaves[l]))
        values[std::string(g.leaves[l].name.view())] = normal(static_cast<long>(g.leaves[l].shape.rows) * g.leaves[l].shape.cols, seed + l);
  }
  std::span<const float> param(std::string_view name) const { return values.find(name)->second; }
};

}  // namespace

TEST_CASE("export_cpp: an MLP's header computes the function's softmax, under g++ and clang, without kiln") {
  kiln::cpu::train_step<mlp_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 3);
  const std::vector<float> x = normal(6 * 7, 1);
  for (int i = 0; i < 5; ++i) step.run(6, {{"x", x}, {"y", classes(6, 5, 2)}});
  const auto f = kiln::cpu::function<mlp_probabilities>::copy_of(step);
  auto g = kiln::cpu::function<mlp_probabilities>::copy_of(step);
  const long batch = 4;
  const std::vector<float> in = normal(batch * 7, 3);
  check_export(f, "mlp_model", in, batch, run_function(g, "x", in, batch, 5));

  // deterministic: the same parameters, the same bytes (here through a checkpoint file)
  const std::string ckpt = kiln_test::temp_dir() + "/mlp.safetensors";
  kiln::train::save_checkpoint(step, ckpt);
  const auto loaded = kiln::cpu::function<mlp_probabilities>::load(ckpt);
  const std::string text = kiln::cpu::export_cpp_source(f, "mlp_model");
  CHECK(kiln::cpu::export_cpp_source(loaded, "mlp_model") == text);
  CHECK(text.find("#include <kiln") == std::string::npos);
  CHECK(text.find("w_fc1_weight") != std::string::npos);
}

TEST_CASE("export_cpp: a CNN's header (conv, batch norm, pooling, dropout off) computes the function's logits") {
  kiln::cpu::train_step<cnn_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 5);
  const std::vector<float> x = normal(8 * 288, 4);
  for (int i = 0; i < 4; ++i) step.run(8, {{"x", x}, {"y", classes(8, 3, 5)}});
  auto f = kiln::cpu::function<cnn_logits>::copy_of(step);
  const long batch = 3;
  const std::vector<float> in = normal(batch * 288, 6);
  check_export(f, "cnn_model", in, batch, run_function(f, "x", in, batch, 3));
  kiln::cpu::export_cpp(f, kiln_test::artifact_dir() + "/exported_cnn.hpp", "cnn_model");  // for a person to read
}

TEST_CASE("export_cpp: convolutions and products tiled with a remainder of rows and columns") {
  using F = kiln::cpu::function<convs_logits>;
  auto f = F::copy_of(random_parameters<F>(11));
  for (const long batch : {1L, 2L, 9L}) {  // rows one at a time, a tile and rows left, a part-filled tile
    const std::vector<float> in = normal(batch * 3 * 11 * 13, 12 + batch);
    check_export(f, "convs_model", in, batch, run_function(f, "x", in, batch, 5));
  }
  const std::string text = kiln::cpu::export_cpp_source(f, "convs_model");
  CHECK(text.find("conv2d_sample_taps<32>") != std::string::npos);  // 20 channels a group, padded to 32
  CHECK(text.find("conv2d_sample_taps<48>") != std::string::npos);  // 36 channels
  CHECK(text.find("max_pool2d_map(") != std::string::npos);
}

TEST_CASE("export_cpp: an embedding model's header takes class indices") {
  kiln::cpu::train_step<lm_loss, kiln::adam> step(kiln::adam{.lr = 1e-2}, 7);
  const std::vector<std::int32_t> context = classes(10 * 3, 9, 8);
  for (int i = 0; i < 4; ++i) step.run(10, {{"context", context}, {"y", classes(10, 9, 9)}});
  auto f = kiln::cpu::function<lm_logits>::copy_of(step);
  const long batch = 5;
  const std::vector<std::int32_t> in = classes(batch * 3, 9, 10);
  check_export(f, "lm_model", in, batch, run_function(f, "context", in, batch, 9));
  const std::string text = kiln::cpu::export_cpp_source(f, "lm_model");
  CHECK(text.find("predict(const std::int32_t* context, float* out, int batch_size)") != std::string::npos);
}
