// Checkpoints: PyTorch names and shapes in the file, exact round trip of parameters, optimizer state and step
// count (training continues identically), weights-only files, and each kind of mismatch rejected with a
// message naming the tensor, before anything in the step changes.
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace {
constexpr auto net = kiln::nn::sequential(kiln::dense<6>{}, kiln::prelu_l, kiln::dense<3>{});
struct model {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::input<5>("x")), kiln::labels<3>("y")); }
};
struct scaled_model {  // adds a scalar parameter (rank 0)
  constexpr auto operator()() const {
    return kiln::param<>("scale") * kiln::cross_entropy(net(kiln::input<5>("x")), kiln::labels<3>("y"));
  }
};
using step_type = kiln::cpu::train_step<model, kiln::adam>;

const std::vector<float> xs = {0.1f, -0.4f, 0.9f, 0.3f, -0.2f, 0.5f, 0.5f, -0.7f, 0.0f, 0.8f, -1.0f, 0.2f, 0.4f, -0.3f, 0.6f};
const std::vector<std::int32_t> ys = {2, 0, 1};

template <class Step>
float train_step_once(Step& s) { return s.run(3, {{"x", xs}, {"y", ys}}); }

template <class Step>
std::vector<float> everything(const Step& s) {
  std::vector<float> out;
  for (const auto& [name, t] : kiln::train::checkpoint_tensors(s)) {
    const auto v = kiln::io::values_f32(t);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Expects load_checkpoint to throw format_error mentioning every fragment, and the step to be unchanged.
void require_rejected(const std::map<std::string, kiln::io::tensor>& tensors, std::map<std::string, std::string> meta,
                      std::initializer_list<std::string> fragments) {
  const std::string path = kiln_test::temp_dir() + "/bad.safetensors";
  kiln::io::write_safetensors(path, tensors, meta);
  step_type s(kiln::adam{}, 3);
  const auto before = everything(s);
  try {
    kiln::train::load_checkpoint(s, path);
    FAIL("the checkpoint was accepted");
  } catch (const kiln::format_error& e) {
    const std::string what = e.what();
    INFO(what);
    for (const auto& f : fragments) CHECK(what.find(f) != std::string::npos);
    CHECK(what.find(path) != std::string::npos);
  }
  CHECK(everything(s) == before);
  CHECK(s.step_count() == 0);
}
}  // namespace

TEST_CASE("checkpoint: PyTorch names, shapes and dtype; step count in the metadata") {
  step_type s(kiln::adam{}, 1);
  train_step_once(s);
  train_step_once(s);
  const std::string path = kiln_test::temp_dir() + "/names.safetensors";
  kiln::train::save_checkpoint(s, path, {{"note", "test"}});
  const auto file = kiln::io::read_safetensors_content(path);
  using shape = std::vector<std::int64_t>;
  const std::map<std::string, shape> expected = {
      {"fc1.weight", {6, 5}}, {"fc1.bias", {6}}, {"prelu1.weight", {1}}, {"fc2.weight", {3, 6}}, {"fc2.bias", {3}}};
  for (const auto& [name, dims] : expected) {
    INFO(name);
    REQUIRE(file.tensors.count(name) == 1);
    CHECK(file.tensors.at(name).shape == dims);
    CHECK(file.tensors.at(name).dtype == "F32");
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
      REQUIRE(file.tensors.count(name + suffix) == 1);
      CHECK(file.tensors.at(name + suffix).shape == dims);
    }
  }
  CHECK(file.tensors.size() == 15);
  CHECK(file.metadata.at("kiln.step_count") == "2");
  CHECK(file.metadata.at("note") == "test");
  const auto w = kiln::io::values_f32(file.tensors.at("fc1.weight"));
  const auto p = s.param("fc1.weight");
  CHECK(std::equal(w.begin(), w.end(), p.begin(), p.end()));

  kiln::cpu::train_step<scaled_model, kiln::sgd> scalar;
  kiln::train::save_checkpoint(scalar, path);
  CHECK(kiln::io::read_safetensors(path).at("scale").shape.empty());  // rank 0: a scalar
}

TEST_CASE("checkpoint: a round trip restores everything, and training continues bit-identically") {
  step_type a(kiln::adam{.lr = 0.01}, 1);
  for (int i = 0; i < 3; ++i) train_step_once(a);
  const std::string path = kiln_test::temp_dir() + "/round.safetensors";
  kiln::train::save_checkpoint(a, path);
  step_type b(kiln::adam{.lr = 0.01}, 2);  // different initial weights
  REQUIRE(everything(a) != everything(b));
  const auto r = kiln::train::load_checkpoint(b, path);
  CHECK(r.optimizer_state);
  CHECK(r.step_count == 3);
  CHECK(b.step_count() == 3);
  CHECK(everything(a) == everything(b));
  // Adam's bias correction depends on the step count, its update on the moments: both must have come back
  CHECK(train_step_once(a) == train_step_once(b));
  CHECK(everything(a) == everything(b));
}

TEST_CASE("checkpoint: a weights-only file (a PyTorch state_dict) loads and resets the optimizer") {
  step_type a(kiln::adam{}, 1);
  train_step_once(a);
  auto tensors = kiln::train::checkpoint_tensors(a);
  std::erase_if(tensors, [](const auto& kv) { return kv.first.find(".exp_avg") != std::string::npos; });
  const std::string path = kiln_test::temp_dir() + "/weights.safetensors";
  kiln::io::write_safetensors(path, tensors);
  step_type b(kiln::adam{}, 2);
  train_step_once(b);
  const auto r = kiln::train::load_checkpoint(b, path);
  CHECK_FALSE(r.optimizer_state);
  CHECK(b.step_count() == 0);
  const auto pa = a.param("fc2.weight"), pb = b.param("fc2.weight");
  CHECK(std::equal(pa.begin(), pa.end(), pb.begin(), pb.end()));
  for (float v : b.param("fc2.weight.exp_avg")) CHECK(v == 0.0f);
}

TEST_CASE("checkpoint: mismatches are rejected with the tensor named, and the step is left alone") {
  step_type good(kiln::adam{}, 1);
  train_step_once(good);
  const auto tensors = kiln::train::checkpoint_tensors(good);
  const std::map<std::string, std::string> meta = {{"kiln.step_count", "1"}};

  SECTION("a missing parameter") {
    auto t = tensors;
    t.erase("fc2.bias");
    require_rejected(t, meta, {"parameter 'fc2.bias' [3] is missing"});
  }
  SECTION("a wrong shape") {
    auto t = tensors;
    t["fc1.weight"] = kiln::io::make_f32({5, 6}, kiln::io::values_f32(t["fc1.weight"]));
    require_rejected(t, meta, {"'fc1.weight' has shape [5, 6], the step expects [6, 5]"});
  }
  SECTION("a matrix where PyTorch stores a vector") {
    auto t = tensors;
    t["fc1.bias"] = kiln::io::make_f32({1, 6}, kiln::io::values_f32(t["fc1.bias"]));
    require_rejected(t, meta, {"'fc1.bias' has shape [1, 6], the step expects [6]"});
  }
  SECTION("a wrong dtype") {
    auto t = tensors;
    const auto v = kiln::io::values_f32(t["fc2.bias"]);
    const std::vector<double> d(v.begin(), v.end());
    t["fc2.bias"] = kiln::io::make_tensor<double>({3}, d);
    require_rejected(t, meta, {"'fc2.bias' has dtype F64, the step expects F32"});
  }
  SECTION("a tensor the step does not have") {
    auto t = tensors;
    t["fc3.weight"] = kiln::io::make_f32({1}, std::vector<float>{1});
    require_rejected(t, meta, {"'fc3.weight' is not a parameter or optimizer state", "fc1.weight"});
  }
  SECTION("part of the optimizer state") {
    auto t = tensors;
    t.erase("prelu1.weight.exp_avg_sq");
    require_rejected(t, meta, {"holds 9 of the optimizer's 10 state tensors", "'prelu1.weight.exp_avg_sq' is missing"});
  }
  SECTION("a step count that is not a number") {
    require_rejected(tensors, {{"kiln.step_count", "12x"}}, {"kiln.step_count is '12x'"});
  }
  SECTION("the state of another optimizer") {
    kiln::cpu::train_step<model, kiln::momentum> other;
    require_rejected(kiln::train::checkpoint_tensors(other), meta, {"'fc1.bias.momentum_buffer' is not a parameter"});
  }
}

TEST_CASE("checkpoint: writing is atomic: an existing file is replaced whole, a failed write leaves nothing") {
  const std::string dir = kiln_test::temp_dir() + "/atomic";
  kiln::io::make_dirs(dir);
  step_type a(kiln::adam{}, 1), b(kiln::adam{}, 2);
  kiln::train::save_checkpoint(a, dir + "/model.safetensors");
  kiln::train::save_checkpoint(b, dir + "/model.safetensors");
  step_type c(kiln::adam{}, 3);
  kiln::train::load_checkpoint(c, dir + "/model.safetensors");
  CHECK(everything(c) == everything(b));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);  // no temporary left behind
  CHECK_THROWS_AS(kiln::train::save_checkpoint(a, dir + "/no/such/dir/model.safetensors"), kiln::io_error);
  CHECK_THROWS_AS(kiln::train::load_checkpoint(c, dir + "/missing.safetensors"), kiln::io_error);
}

TEST_CASE("snapshot: restores parameters, state and step count by name into another step type") {
  step_type a(kiln::adam{}, 1);
  train_step_once(a);
  const auto snap = kiln::train::snapshot::capture(a);
  kiln::cpu::train_step<model, kiln::adam, kiln::fusion::unfused> u(kiln::adam{}, 9);
  snap.restore(u);
  CHECK(u.step_count() == 1);
  CHECK(everything(u) == everything(a));
  CHECK(train_step_once(u) == Approx(train_step_once(a)).epsilon(1e-6));
}

TEST_CASE("checkpoint: NaN or inf weights are refused by default, naming the tensor and how many") {
  step_type s(kiln::adam{}, 1);
  auto tensors = kiln::train::checkpoint_tensors(s);
  auto w = kiln::io::values_f32(tensors.at("fc1.weight"));
  w[0] = std::numeric_limits<float>::quiet_NaN();
  w[7] = -std::numeric_limits<float>::infinity();
  tensors["fc1.weight"] = kiln::io::make_f32({6, 5}, w);
  require_rejected(tensors, {}, {"tensor 'fc1.weight' holds 2 non-finite values (NaN or inf) of 30",
                                 "load_options{.allow_non_finite = true}"});

  // allowed: loaded as written, with the same words as a warning
  const std::string path = kiln_test::temp_dir() + "/nan.safetensors";
  kiln::io::write_safetensors(path, tensors);
  step_type t(kiln::adam{}, 2);
  const auto r = kiln::train::load_checkpoint(t, path, {.allow_non_finite = true});
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("tensor 'fc1.weight' holds 2 non-finite values") != std::string::npos);
  CHECK(std::isnan(t.param("fc1.weight")[0]));
  CHECK(std::isinf(t.param("fc1.weight")[7]));
}

TEST_CASE("checkpoint: an unknown tensor's name is shown with its control bytes escaped") {
  step_type s(kiln::adam{}, 1);
  auto tensors = kiln::train::checkpoint_tensors(s);
  tensors[std::string("fc1.weight\0.evil", 16)] = kiln::io::make_f32({1}, std::vector<float>{1.0f});
  require_rejected(tensors, {}, {"tensor 'fc1.weight\\x00.evil' is not a parameter"});
}
