// Interoperability with PyTorch (run when /usr/bin/python3 can import torch; Debian: python3-torch):
//   - a kiln checkpoint loads with load_state_dict(strict=True) into the equivalent torch.nn model (Linear
//     layers fc1, fc2, fc3) and gives kiln's predictions;
//   - its Adam state (exp_avg, exp_avg_sq, step count) continues in torch.optim.Adam exactly as in kiln;
//   - a torch state_dict written in safetensors layout loads into kiln and gives torch's predictions.
// KILN_TORCH_PYTHON overrides the interpreter.
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {
constexpr auto net = kiln::nn::sequential(kiln::dense<16>{}, kiln::relu, kiln::dense<8>{}, kiln::relu, kiln::dense<3>{});
struct loss_model {
  constexpr auto operator()() const { return kiln::cross_entropy(net(kiln::input<20>("x")), kiln::labels<3>("y")); }
};
struct logits_model {
  constexpr auto operator()() const { return net(kiln::input<20>("x")); }
};
using step_type = kiln::cpu::train_step<loss_model, kiln::adam>;
constexpr long batch = 12;

std::string python() {
  const char* p = std::getenv("KILN_TORCH_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}
std::string script() { return std::string(KILN_SOURCE_DIR) + "/tests/train/torch_interop.py"; }

struct batch_data {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
batch_data make_batch() {
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<float> u(-1, 1);
  batch_data b;
  for (long i = 0; i < batch * 20; ++i) b.x.push_back(u(rng));
  for (long i = 0; i < batch; ++i) b.y.push_back(static_cast<std::int32_t>(rng() % 3));
  return b;
}
std::string write_inputs(const batch_data& b) {
  const std::string path = kiln_test::temp_dir() + "/inputs.safetensors";
  std::vector<std::int64_t> y(b.y.begin(), b.y.end());
  kiln::io::write_safetensors(path, {{"x", kiln::io::make_f32({batch, 20}, b.x)}, {"y", kiln::io::make_i64({batch}, y)}});
  return path;
}
std::vector<float> kiln_logits(step_type& step, const batch_data& b) {
  kiln::cpu::function<logits_model> f(step);
  std::vector<float> out(batch * 3);
  f.run(batch, {{"x", b.x}}, out);
  return out;
}
void check_close(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(what << "[" << i << "]");
    CHECK(a[i] == Approx(b[i]).epsilon(1e-5).margin(1e-6));
  }
}
}  // namespace

TEST_CASE("torch: checkpoints go both ways between kiln and torch.nn / torch.optim.Adam") {
  if (!kiln_test::run(python() + " -c 'import torch' > /dev/null 2>&1")) {
    WARN("skipped: " << python() << " cannot import torch (apt-get install python3-torch, or set KILN_TORCH_PYTHON)");
    return;
  }
  const std::string dir = kiln_test::temp_dir();
  const batch_data b = make_batch();
  const std::string inputs = write_inputs(b);
  step_type step(kiln::adam{.lr = 0.01}, 7);
  for (int i = 0; i < 4; ++i) step.run(batch, {{"x", b.x}, {"y", b.y}});
  const std::string ckpt = dir + "/kiln.safetensors";
  kiln::train::save_checkpoint(step, ckpt);
  // one Python run for all three checks (importing torch takes seconds)
  REQUIRE(kiln_test::run(python() + " " + script() + " " + ckpt + " " + inputs + " 0.01 3 " + dir));

  {  // the kiln checkpoint loads into torch.nn (strict) and predicts what kiln predicts
    check_close(kiln::io::values_f32(kiln::io::read_safetensors(dir + "/predicted.safetensors").at("logits")),
                kiln_logits(step, b), "logits");
  }
  {  // its Adam state continues in torch.optim.Adam exactly as in kiln
    const float loss = step.run(batch, {{"x", b.x}, {"y", b.y}});
    const auto file = kiln::io::read_safetensors_content(dir + "/continued.safetensors");
    CHECK(loss == Approx(std::stod(file.metadata.at("loss"))).epsilon(1e-5));
    CHECK(file.tensors.size() == 18);  // 6 parameters, each with exp_avg and exp_avg_sq
    for (const auto& [name, t] : file.tensors) {
      const auto p = step.param(name);
      check_close(kiln::io::values_f32(t), std::vector<float>(p.begin(), p.end()), name);
    }
  }
  {  // a torch state_dict in safetensors layout loads into kiln and predicts what torch predicts
    step_type fresh(kiln::adam{}, 1);
    const auto r = kiln::train::load_checkpoint(fresh, dir + "/state_dict.safetensors");
    CHECK_FALSE(r.optimizer_state);  // a state_dict holds parameters only
    check_close(kiln::io::values_f32(kiln::io::read_safetensors(dir + "/state_dict_logits.safetensors").at("logits")),
                kiln_logits(fresh, b), "logits");
  }
}
