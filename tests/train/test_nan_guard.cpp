// The NaN guard: a hand-written binary cross-entropy without bce's clamp meets an input so large that the
// sigmoid saturates to exactly 0 or 1 in float, so one of log(p), log(1 − p) is log(0) = −inf. The trainer
// must stop at that batch (epoch, step), keep and restore the last good parameters, and in debug mode re-run
// the step unfused and name the log node, its shape and the sample's flat index.
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/trainer.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {
constexpr auto probability = kiln::sigmoid(kiln::nn::sequential(kiln::dense<1>{})(kiln::input<2>("x")));
struct unclamped_bce {
  constexpr auto operator()() const {
    auto t = kiln::target<1>("t");
    return -kiln::mean(t * kiln::log(probability) + (1.0 - t) * kiln::log(1.0 - probability));
  }
};
using trainer_type = kiln::train::trainer<unclamped_bce, kiln::sgd>;

// 64 samples with small features; sample `poisoned` (if >= 0) gets x = (1e6, 1e6).
kiln::train::table data(int poisoned) {
  std::vector<float> x, t;
  for (int i = 0; i < 64; ++i) {
    const float a = static_cast<float>(i % 7) / 7 - 0.5f, b = static_cast<float>(i % 5) / 5 - 0.4f;
    x.push_back(i == poisoned ? 1e6f : a);
    x.push_back(i == poisoned ? 1e6f : b);
    t.push_back(a + b > 0 ? 1.0f : 0.0f);
  }
  kiln::train::table table;
  table.add_features("x", x, 2).add_features("t", t, 1);
  return table;
}

kiln::train::options settings(const std::string& out_dir, bool debug) {
  kiln::train::options o;
  o.epochs = 1;
  o.batch_size = 16;
  o.shuffle = false;  // sample 37 is then row 5 of batch 3 (rows 32..47)
  o.seed = 4;
  o.out_dir = out_dir;
  o.progress = kiln::train::progress_style::quiet;
  o.debug_nonfinite = debug;
  return o;
}

template <class Step>
std::vector<float> weights(Step& s) {
  std::vector<float> w;
  for (const char* n : {"fc1.weight", "fc1.bias"})
    for (float v : s.param(n)) w.push_back(v);
  return w;
}
}  // namespace

TEST_CASE("nan guard: stops at the batch with log(0) and names the node in debug mode") {
  const std::string dir = kiln_test::temp_dir() + "/debug";
  trainer_type t(kiln::sgd{.lr = 0.1}, settings(dir, true));
  trainer_type fresh(kiln::sgd{.lr = 0.1}, settings("", false));
  try {
    t.fit(data(37));
    FAIL("training did not stop");
  } catch (const kiln::train::nonfinite_loss& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.epoch == 1);
    CHECK(e.step == 3);
    CHECK(e.iteration == 3);
    CHECK_FALSE(std::isfinite(e.loss));
    CHECK(what.find("epoch 1, step 3") != std::string::npos);
    CHECK(what.find("'" + dir + "/model.safetensors' (the initial parameters)") != std::string::npos);
    REQUIRE(e.origin.found);
    CHECK(e.origin.op == "log");
    CHECK(e.origin.rows == 16);
    CHECK(e.origin.cols == 1);
    CHECK(e.origin.flat_index == 5);
    CHECK(e.origin.value == -INFINITY);
    CHECK(what.find("= log(") != std::string::npos);
    CHECK(what.find("[batch,1] (here [16,1]) is -inf at flat index 5 (row 5, column 0), in the forward pass") != std::string::npos);
    CHECK(what.find(" = 0)") != std::string::npos);  // its operand was exactly 0 there
  }
  // the step holds the last good (here: initial) parameters again, and so does the checkpoint
  CHECK(weights(t.step()) == weights(fresh.step()));
  trainer_type loaded(kiln::sgd{}, settings("", false));
  kiln::train::load_checkpoint(loaded.step(), dir + "/model.safetensors");
  CHECK(weights(loaded.step()) == weights(fresh.step()));
}

TEST_CASE("nan guard: the last good checkpoint is the end of the last finished epoch") {
  const std::string dir = kiln_test::temp_dir() + "/resume";
  trainer_type t(kiln::sgd{.lr = 0.1}, settings(dir, false));
  t.fit(data(-1));  // epoch 1 on clean data
  const auto after_epoch_1 = weights(t.step());
  try {
    t.fit(data(37));  // epoch 2 meets the poisoned sample
    FAIL("training did not stop");
  } catch (const kiln::train::nonfinite_loss& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.epoch == 2);
    CHECK(e.step == 3);
    CHECK(e.iteration == 7);  // 4 iterations in epoch 1
    CHECK(what.find("(the end of epoch 1)") != std::string::npos);
    CHECK(what.find("debug_nonfinite") != std::string::npos);  // says how to find the node
    CHECK_FALSE(e.origin.found);
  }
  CHECK(weights(t.step()) == after_epoch_1);
  CHECK(t.step().step_count() == 4);
  trainer_type loaded(kiln::sgd{}, settings("", false));
  kiln::train::load_checkpoint(loaded.step(), dir + "/model.safetensors");
  CHECK(weights(loaded.step()) == after_epoch_1);
}

namespace {
// Parameters kept apart from the host, as on a GPU (the interface of kiln::cuda::train_step).
struct separate_memory_step {
  kiln::cpu::train_step<unclamped_bce, kiln::sgd> inner{kiln::sgd{.lr = 0.1}};
  float run(long b, std::initializer_list<kiln::feed> f) { return inner.run(b, f); }
  std::vector<float> param(std::string_view name) {
    const auto p = inner.param(name);
    return {p.begin(), p.end()};
  }
  void set_param(std::string_view name, std::span<const float> v) { std::copy(v.begin(), v.end(), inner.param(name).begin()); }
  long step_count() const { return inner.step_count(); }
  void set_step_count(long t) { inner.set_step_count(t); }
};
}  // namespace

TEST_CASE("nan guard: with the steps on a device, the device gets the last good parameters back") {
  trainer_type t(kiln::sgd{.lr = 0.1}, settings("", true));
  trainer_type fresh(kiln::sgd{.lr = 0.1}, settings("", false));
  separate_memory_step device;
  try {
    t.fit_on(device, data(37));
    FAIL("training did not stop");
  } catch (const kiln::train::nonfinite_loss& e) {
    CHECK(e.step == 3);
    REQUIRE(e.origin.found);  // the unfused re-run started from the device's parameters before step 3
    CHECK(e.origin.op == "log");
    CHECK(e.origin.flat_index == 5);
  }
  CHECK(weights(device.inner) == weights(fresh.step()));
  CHECK(device.step_count() == 0);
}

TEST_CASE("nan guard: non-finite data or parameters are named before anything runs") {
  kiln::cpu::train_step<unclamped_bce, kiln::sgd, kiln::fusion::unfused> step;
  std::vector<float> x = {0.1f, 0.2f, NAN, 0.3f}, t = {1, 0};
  auto o = kiln::train::trace_nonfinite(step, 2, {{"x", x}, {"t", t}});
  CHECK(o.found);
  CHECK(o.op == "input");
  CHECK(o.flat_index == 2);
  CHECK(o.description.find("the data for input 'x'") != std::string::npos);
  CHECK(step.step_count() == 0);  // nothing ran

  x[2] = 0.5f;
  step.param("fc1.bias")[0] = INFINITY;
  o = kiln::train::trace_nonfinite(step, 2, {{"x", x}, {"t", t}});
  CHECK(o.op == "param");
  CHECK(o.description.find("'fc1.bias' already holds inf") != std::string::npos);

  step.param("fc1.bias")[0] = 0;
  o = kiln::train::trace_nonfinite(step, 2, {{"x", x}, {"t", t}});
  CHECK_FALSE(o.found);  // a healthy step: nothing to report
  CHECK(o.description.find("no non-finite value") != std::string::npos);
}
