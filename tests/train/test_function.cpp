// kiln::cpu::function, the inference API: evaluation mode (dropout off, batch norm's running statistics), the
// same values whether it views a step, owns a copy or loads a file, concurrent callers on their own workspaces
// computing exactly what one caller computes, a profiled run's per-kernel times, large batches run in chunks of
// samples with the same values, and bad parameter files rejected naming the tensor.
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {
// 1×8×8 images → conv 3×3 → batch norm → ReLU → max-pool 2 → flatten 64 → dense 12 → dropout → dense 3
inline constexpr auto net =
    kiln::nn::torch_sequential(kiln::conv2d<1, 4, 3, 1, 1>{}, kiln::batch_norm<4>{}, kiln::relu, kiln::max_pool2d<2>{},
                         kiln::flatten, kiln::dense<12>{}, kiln::relu, kiln::dropout{.p = 0.5}, kiln::dense<3>{});
struct loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::image<1, 8, 8>("x")), kiln::labels<3>("y")); }
};
struct logits {
  constexpr auto operator()() const { return net(kiln::image<1, 8, 8>("x")); }
};
using step_type = kiln::cpu::train_step<loss, kiln::adam>;
using function_type = kiln::cpu::function<logits>;
constexpr long pixels = 64, classes = 3;

std::vector<float> images(long n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> x(static_cast<std::size_t>(n * pixels));
  for (float& v : x) v = d(rng);
  return x;
}

// Trains a few steps, so the running statistics and weights are away from their initial values.
void train(step_type& step) {
  const std::vector<float> x = images(16, 1);
  std::vector<std::int32_t> y(16);
  for (int i = 0; i < 16; ++i) y[static_cast<std::size_t>(i)] = i % 3;
  for (int i = 0; i < 4; ++i) step.run(16, {{"x", x}, {"y", y}});
}

template <class F>
std::vector<float> predict(F& f, long n, const std::vector<float>& x) {
  std::vector<float> out(static_cast<std::size_t>(n * classes));
  f.run(n, {{"x", x}}, out);
  return out;
}

// Expects function::load to throw format_error whose message holds every fragment (and the file's path).
void require_rejected(const std::map<std::string, kiln::io::tensor>& tensors, std::initializer_list<std::string> fragments) {
  const std::string path = kiln_test::temp_dir() + "/bad_model.safetensors";
  kiln::io::write_safetensors(path, tensors);
  try {
    (void)function_type::load(path);
    FAIL("the file was accepted");
  } catch (const kiln::format_error& e) {
    const std::string what = e.what();
    INFO(what);
    for (const auto& f : fragments) CHECK(what.find(f) != std::string::npos);
    CHECK(what.find(path) != std::string::npos);
  }
}

std::map<std::string, kiln::io::tensor> model_tensors(const step_type& step) {
  std::map<std::string, kiln::io::tensor> t = kiln::train::checkpoint_tensors(step);
  std::erase_if(t, [](const auto& e) { return e.first.find(".exp_avg") != std::string::npos; });
  return t;
}
}  // namespace

TEST_CASE("function: evaluation mode, from a step, a copy or a file, all the same values") {
  step_type step(kiln::adam{.lr = 1e-2}, 11);
  train(step);
  const long n = 5;
  const std::vector<float> x = images(n, 2);
  function_type viewing(step);
  const std::vector<float> expected = predict(viewing, n, x);

  // evaluation mode by hand: the running statistics normalize, no dropout (p = 0.5 would change most logits)
  CHECK(step.param("1.running_var")[0] != 1.0f);
  const std::vector<float> again = predict(viewing, n, x);
  CHECK(again == expected);  // deterministic: no random draws

  function_type copied = function_type::copy_of(step);
  CHECK(predict(copied, n, x) == expected);

  // one sample at a time (run() takes a single sample on the calling thread, a batch on the pool): the same rows
  for (long i = 0; i < n; ++i) {
    const std::vector<float> xi(x.begin() + i * pixels, x.begin() + (i + 1) * pixels);
    const std::vector<float> row = predict(copied, 1, xi);
    for (long c = 0; c < classes; ++c)
      CHECK(row[static_cast<std::size_t>(c)] == Approx(expected[static_cast<std::size_t>(i * classes + c)]).margin(1e-5));
  }

  const std::string ckpt = kiln_test::temp_dir() + "/step.safetensors";
  kiln::train::save_checkpoint(step, ckpt);  // optimizer state and num_batches_tracked included: skipped
  function_type loaded = function_type::load(ckpt);
  CHECK(predict(loaded, n, x) == expected);
  CHECK(loaded.param("5.weight").size() == 12 * 64);

  // a viewing function follows the step; owning ones do not
  std::vector<std::int32_t> y(static_cast<std::size_t>(n), 1);
  step.run(n, {{"x", x}, {"y", y}});
  const std::vector<float> after = predict(viewing, n, x);
  CHECK(after != expected);
  CHECK(predict(copied, n, x) == expected);
  CHECK(predict(loaded, n, x) == expected);

  // a batch of 1 computes row 0 of the batch
  const std::vector<float> one = predict(loaded, 1, std::vector<float>(x.begin(), x.begin() + pixels));
  for (long c = 0; c < classes; ++c) CHECK(one[static_cast<std::size_t>(c)] == Approx(expected[static_cast<std::size_t>(c)]).epsilon(1e-5));

  // profiled on a caller's workspace: the same output, and a time for every kernel
  {
    auto ws = loaded.make_workspace();
    const int kernels = function_type::compiled_plan().num_kernels;
    std::vector<double> ns(static_cast<std::size_t>(kernels), 0.0);
    std::vector<float> profiled(static_cast<std::size_t>(n * classes));
    for (int i = 0; i < 20; ++i) loaded.run_profiled(ws, n, {{"x", x}}, profiled, ns);  // 20 runs: above the clock's tick
    CHECK(profiled == expected);
    for (int k = 0; k < kernels; ++k) CHECK(ns[static_cast<std::size_t>(k)] > 0);
    std::vector<double> short_of_one(static_cast<std::size_t>(kernels - 1));
    CHECK_THROWS_WITH(loaded.run_profiled(ws, n, {{"x", x}}, profiled, short_of_one),
                      Catch::Contains("one entry per kernel (" + std::to_string(kernels) + ")"));
  }

  std::vector<float> wrong(7);
  CHECK_THROWS_WITH(loaded.run(n, {{"x", x}}, wrong), Catch::Contains("output buffer has 7 values") && Catch::Contains("[5, 3]"));
  CHECK_THROWS_WITH(loaded.param("fc9.weight"), Catch::Contains("fc9.weight") && Catch::Contains("5.weight"));
}

TEST_CASE("function: concurrent callers on their own workspaces compute what one caller computes") {
  step_type step(kiln::adam{.lr = 1e-2}, 11);
  train(step);
  const function_type f = function_type::copy_of(step);
  constexpr int callers = 4, calls = 25;
  constexpr long n = 3;
  std::vector<std::vector<float>> inputs, expected;
  {
    auto ws = f.make_workspace();
    for (int t = 0; t < callers; ++t) {
      inputs.push_back(images(n, 100 + static_cast<std::uint64_t>(t)));
      std::vector<float> out(static_cast<std::size_t>(n * classes));
      f.run(ws, n, {{"x", inputs.back()}}, out);
      expected.push_back(out);
    }
  }
  std::vector<int> mismatches(callers, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < callers; ++t)
    threads.emplace_back([&, t] {
      auto ws = f.make_workspace();
      std::vector<float> out(static_cast<std::size_t>(n * classes));
      for (int i = 0; i < calls; ++i) {
        const long batch = i % 2 ? n : 1;  // alternate sizes: the workspace grows once, then is reused
        f.run(ws, batch, {{"x", std::span<const float>(inputs[static_cast<std::size_t>(t)]).first(static_cast<std::size_t>(batch * pixels))}},
              std::span<float>(out).first(static_cast<std::size_t>(batch * classes)));
        for (long j = 0; j < batch * classes; ++j)
          mismatches[static_cast<std::size_t>(t)] += out[static_cast<std::size_t>(j)] != expected[static_cast<std::size_t>(t)][static_cast<std::size_t>(j)];
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < callers; ++t) CHECK(mismatches[static_cast<std::size_t>(t)] == 0);
}

namespace {
// The same network less its output's batch mean: the rows depend on each other, so no batch runs in chunks.
struct centered_logits {
  constexpr auto operator()() const {
    const auto z = net(kiln::image<1, 8, 8>("x"));
    return z - kiln::mean(z);
  }
};
}  // namespace

TEST_CASE("function: a batch whose buffers outgrow the caches runs in chunks of samples, with the same values") {
  step_type step(kiln::adam{.lr = 1e-2}, 11);
  train(step);
  function_type viewing(step);
  const long chunk = function_type::chunk_rows();
  REQUIRE(chunk > 5);
  REQUIRE(function_type::runs_in_chunks(2 * chunk));
  CHECK_FALSE(function_type::runs_in_chunks(1));
  CHECK_FALSE(kiln::cpu::function<centered_logits>::runs_in_chunks(2 * chunk));
  auto ws = viewing.make_workspace();
  std::vector<double> ns(static_cast<std::size_t>(function_type::compiled_plan().num_kernels));
  // Runs n samples on one thread (the chunks one after another) and on the default pool (the threads' shares side
  // by side), checked against run_profiled, which runs the batch whole.
  const auto check_batch = [&](long n) {
    INFO("batch " << n << ", chunks of " << chunk);
    const std::vector<float> x = images(n, 3);
    std::vector<float> expected(static_cast<std::size_t>(n * classes)), serial(expected.size()), pooled(expected.size());
    viewing.run_profiled(ws, n, {{"x", x}}, expected, ns);
    viewing.run(ws, n, {{"x", x}}, serial);
    viewing.run(n, {{"x", x}}, pooled);
    long differ = 0;
    for (std::size_t i = 0; i < expected.size(); ++i)
      differ += (std::abs(serial[i] - expected[i]) > 1e-5f * (1 + std::abs(expected[i]))) +
                (std::abs(pooled[i] - expected[i]) > 1e-5f * (1 + std::abs(expected[i])));
    CHECK(differ == 0);
  };
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    check_batch(3 * chunk - 5);  // the last chunk smaller: a part runs a chunk again, then at a new size
    check_batch(2 * chunk);      // the next run's first chunk has the size this run's last had
    // A training step changes the batch norm's statistics and scale: values of the parameters alone, which a
    // part computes in its first chunk of each run and reuses in the next chunks of that run only.
    std::vector<std::int32_t> y(16, 2);
    step.run(16, {{"x", images(16, 4)}, {"y", y}});
  }
}

TEST_CASE("function: a parameter file that does not match the model is rejected naming the tensor") {
  step_type step(kiln::adam{.lr = 1e-2}, 11);
  train(step);
  const auto good = model_tensors(step);
  {
    auto t = good;
    t.erase("5.bias");
    require_rejected(t, {"parameter '5.bias' [12] is missing"});
  }
  {
    auto t = good;
    t.erase("1.running_mean");
    require_rejected(t, {"state '1.running_mean' [4] is missing"});
  }
  {
    auto t = good;
    t["5.weight"] = kiln::io::make_f32({64, 12}, std::vector<float>(64 * 12, 0.0f));
    require_rejected(t, {"'5.weight'", "[64, 12]", "[12, 64]"});
  }
  {
    auto t = good;
    t["0.weight"] = kiln::io::make_i32({4, 1, 3, 3}, std::vector<std::int32_t>(36, 0));
    require_rejected(t, {"'0.weight'", "I32", "F32"});
  }
  {
    auto t = good;
    t["fc1.weight"] = kiln::io::make_f32({2}, std::vector<float>(2, 0.0f));
    require_rejected(t, {"'fc1.weight'", "not a parameter of this model"});
  }
  {
    auto t = good;
    std::vector<float> v(3, 0.0f);
    v[1] = std::numeric_limits<float>::quiet_NaN();
    t["8.bias"] = kiln::io::make_f32({3}, v);
    require_rejected(t, {"'8.bias'", "1 non-finite value"});
  }
  {  // PyTorch's state_dict keeps num_batches_tracked as int64: skipped, like kiln's own counter
    auto t = good;
    const std::vector<std::int64_t> tracked{4};
    t["1.num_batches_tracked"] = kiln::io::make_i64({}, tracked);
    const std::string path = kiln_test::temp_dir() + "/torch_like.safetensors";
    kiln::io::write_safetensors(path, t);
    function_type loaded = function_type::load(path);
    function_type copied = function_type::copy_of(step);
    const std::vector<float> x = images(2, 9);
    CHECK(predict(loaded, 2, x) == predict(copied, 2, x));
  }
}
