// A whole CNN training step against PyTorch over several Adam steps: conv2d (no bias) → batch_norm → relu →
// max_pool2d, twice, → flatten → dropout (p = 0: off) → dense → cross_entropy, trained for `steps` steps of Adam
// (non-default betas and eps, L2 weight decay) on fixed random batches, by kiln's double reference evaluator
// (reference::step on the step graph) and by the CPU backend (cpu::train_step, float). Each run is one JSON line:
// the model's layers (PyTorch's kinds, kiln's names), the optimizer, the initial parameters and batch-norm state,
// the batches, and the run's loss at each step and its parameters, batch-norm state (running statistics,
// num_batches_tracked) and Adam moments after each step; then the evaluation-mode logits of a fresh batch after
// the last step (running statistics). cnn_step_torch.py builds the torch.nn twin in float64, loads the initial
// state with load_state_dict(strict=True), runs torch.optim.Adam with the same hyperparameters and compares
// everything, tightly for the reference (both float64) and loosely for the float backend (see the script).
//
// The convolutions have no bias: a bias right before a batch norm has an exactly zero gradient, whose rounding
// noise Adam would normalize into a full ±lr step (test_batch_norm.cpp). The batch norms' weights, biases and
// running statistics start from random values rather than 1, 0, 0, 1, so that a swapped or ignored one shows.
#include "random_models_record.hpp"

#include <kiln/cpu/train_step.hpp>
#include <kiln/reference/evaluate.hpp>

namespace {

using namespace kiln;
using kiln_torch::splitmix64;

constexpr int pixels = 8 * 8, classes = 10;
constexpr long batch_rows = 16;
constexpr int steps = 5;
constexpr double bn_eps = 1e-3, bn_momentum = 0.2;  // not PyTorch's defaults, so the script must pass them on

struct logits {
  constexpr auto operator()() const {
    return nn::sequential(conv2d<1, 4, 3, 1, 1, 1, 1, false>{}, batch_norm<4>{.eps = bn_eps, .momentum = bn_momentum}, relu,
                          max_pool2d<2>{}, conv2d<4, 6, 3, 1, 1, 1, 1, false>{},
                          batch_norm<6>{.eps = bn_eps, .momentum = bn_momentum}, relu, max_pool2d<2>{}, flatten,
                          kiln::dropout{.p = 0}, dense<classes>{})(image<1, 8, 8>("x"));
  }
};
struct model { constexpr auto operator()() const { return cross_entropy(logits{}(), labels<classes>("y")); } };

// The same layers for the script (torch.nn modules in order; kiln's nn::sequential names them conv1, bn1, …).
std::string layers_json() {
  auto number = [](double v) { std::string s; kiln_torch::append(s, v, 17); return s; };
  const std::string bn = ",\"eps\":" + number(bn_eps) + ",\"momentum\":" + number(bn_momentum) + "}";
  return "[{\"kind\":\"conv2d\",\"name\":\"conv1\",\"in\":1,\"out\":4,\"kernel\":3,\"padding\":1,\"bias\":false},"
         "{\"kind\":\"batch_norm2d\",\"name\":\"bn1\",\"channels\":4" + bn + ",{\"kind\":\"relu\"},"
         "{\"kind\":\"max_pool2d\",\"kernel\":2},"
         "{\"kind\":\"conv2d\",\"name\":\"conv2\",\"in\":4,\"out\":6,\"kernel\":3,\"padding\":1,\"bias\":false},"
         "{\"kind\":\"batch_norm2d\",\"name\":\"bn2\",\"channels\":6" + bn + ",{\"kind\":\"relu\"},"
         "{\"kind\":\"max_pool2d\",\"kernel\":2},{\"kind\":\"flatten\"},{\"kind\":\"dropout\",\"p\":0},"
         "{\"kind\":\"linear\",\"name\":\"fc1\",\"in\":24,\"out\":10}]";
}

constexpr adam optimizer{.lr = 0.01, .beta1 = 0.85, .beta2 = 0.995, .eps = 1e-7, .weight_decay = 1e-3};
std::string optimizer_json() {
  std::string s = "{\"kind\":\"adam\"";
  const std::pair<const char*, double> fields[] = {{"lr", optimizer.lr}, {"beta1", optimizer.beta1}, {"beta2", optimizer.beta2},
                                                   {"eps", optimizer.eps}, {"weight_decay", optimizer.weight_decay}};
  for (const auto& [name, v] : fields) {
    s += std::string(",\"") + name + "\":";
    kiln_torch::append(s, v, 17);
  }
  return s + "}";
}

// A batch: pixels uniform in [0, 2) (a mean of 1, so the batch norms' centering matters), labels uniform.
struct batch_data {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
batch_data make_batch(std::uint64_t seed, int index) {
  splitmix64 r{seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(index)};
  batch_data b;
  for (long i = 0; i < batch_rows * pixels; ++i) b.x.push_back(static_cast<float>(2 * r.unit()));
  for (long i = 0; i < batch_rows; ++i) b.y.push_back(r.between(0, classes - 1));
  return b;
}
std::string batch_json(const batch_data& b) {
  std::string s = "{\"x\":";
  kiln_torch::append_array(s, b.x, 17);  // 17 digits: the float's exact value as a double
  s += ",\"y\":";
  kiln_torch::append_array(s, b.y, 17);
  return s + "}";
}

using step_type = cpu::train_step<model, adam>;
constexpr const graph& G = step_type::G;

bool stored(const leaf_info& l) { return l.kind == leaf_kind::param || l.kind == leaf_kind::state; }
bool optimizer_state(const leaf_info& l) { return l.kind == leaf_kind::state && l.owner >= 0; }

// {name: values} of the step graph's parameters and state (Adam's moments only when `moments`).
template <class Values>
std::string stored_json(const Values& value_of, bool moments) {
  std::string s = "{";
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    if (!stored(info) || (!moments && optimizer_state(info))) continue;
    s += std::string(s.size() > 1 ? "," : "") + "\"" + std::string(info.name.view()) + "\":";
    kiln_torch::append_array(s, value_of(l), 17);
  }
  return s + "}";
}

// Trains from the step's initial values on the batches, by the reference or by the step itself; one JSON line.
std::string run(step_type& step, std::uint64_t seed, const std::vector<batch_data>& batches, const batch_data& held_out,
                const std::string& init, bool reference) {
  std::string line = "{\"seed\":" + std::to_string(seed) + ",\"backend\":\"" + (reference ? "reference" : "cpu") +
                     "\",\"batch\":" + std::to_string(batch_rows) + ",\"layers\":" + layers_json() +
                     ",\"optimizer\":" + optimizer_json() + ",\"init\":" + init + ",\"batches\":[";
  for (std::size_t i = 0; i < batches.size(); ++i) line += (i ? "," : "") + batch_json(batches[i]);
  line += "],\"held_out\":" + batch_json(held_out);
  std::vector<std::vector<double>> leaves(static_cast<std::size_t>(G.num_leaves));
  for (int l = 0; l < G.num_leaves; ++l)
    if (stored(G.leaves[l])) {
      const auto p = step.param(G.leaves[l].name.view());
      leaves[static_cast<std::size_t>(l)].assign(p.begin(), p.end());
    }
  std::vector<double> losses;
  std::string after = "[";
  for (int t = 1; t <= steps; ++t) {
    const batch_data& b = batches[static_cast<std::size_t>(t - 1)];
    if (reference) {
      for (int l = 0; l < G.num_leaves; ++l) {
        const std::string_view name = G.leaves[l].name.view();
        if (name == "x") leaves[static_cast<std::size_t>(l)].assign(b.x.begin(), b.x.end());
        if (name == "y") leaves[static_cast<std::size_t>(l)].assign(b.y.begin(), b.y.end());
      }
      std::vector<double> h(adam::num_hypers);
      optimizer.hypers(t, h.data());
      losses.push_back(reference::step(G, batch_rows, leaves, h));
      after += (t > 1 ? "," : "") + stored_json([&](int l) { return leaves[static_cast<std::size_t>(l)]; }, true);
    } else {
      losses.push_back(step.run(batch_rows, {{"x", b.x}, {"y", b.y}}));
      after += (t > 1 ? "," : "") + stored_json([&](int l) { return step.param(G.leaves[l].name.view()); }, true);
    }
  }
  line += ",\"losses\":";
  kiln_torch::append_array(line, losses, 17);
  line += ",\"after\":" + after + "]";
  // evaluation mode after the last step: the forward graph, with the running statistics
  std::vector<double> out;
  if (reference) {
    constexpr const graph& F = forward_graph<logits>::value;
    std::vector<std::vector<double>> v(static_cast<std::size_t>(F.num_leaves));
    for (int l = 0; l < F.num_leaves; ++l) {
      const std::string_view name = F.leaves[l].name.view();
      if (name == "x") v[static_cast<std::size_t>(l)].assign(held_out.x.begin(), held_out.x.end());
      else v[static_cast<std::size_t>(l)] = leaves[static_cast<std::size_t>(step.leaf_index(name))];
    }
    out = reference::evaluate(F, batch_rows, v)[static_cast<std::size_t>(F.outputs[0].node)].v;
  } else {
    cpu::function<logits> f(step);
    std::vector<float> o(static_cast<std::size_t>(batch_rows * classes));
    f.run(batch_rows, {{"x", held_out.x}}, o);
    out.assign(o.begin(), o.end());
  }
  line += ",\"eval_logits\":";
  kiln_torch::append_array(line, out, 17);
  return line + "}";
}

// Two lines per seed: the reference's run and the CPU backend's, from the same initial values and batches.
std::vector<std::string> runs(std::initializer_list<std::uint64_t> seeds) {
  std::vector<std::string> lines;
  for (const std::uint64_t seed : seeds) {
    step_type step(optimizer, seed);
    splitmix64 r{seed ^ 0xb0b0ULL};
    for (const char* bn : {"bn1", "bn2"}) {  // random batch-norm parameters and running statistics
      const std::string p(bn);
      for (float& v : step.param(p + ".weight")) v = static_cast<float>(r.uniform(0.5, 1.5));
      for (float& v : step.param(p + ".bias")) v = static_cast<float>(r.uniform(-0.5, 0.5));
      for (float& v : step.param(p + ".running_mean")) v = static_cast<float>(r.uniform(-1, 1));
      for (float& v : step.param(p + ".running_var")) v = static_cast<float>(r.uniform(0.25, 2));
      step.param(p + ".num_batches_tracked")[0] = static_cast<float>(r.between(0, 20));
    }
    const std::string init = stored_json([&](int l) { return step.param(G.leaves[l].name.view()); }, false);
    std::vector<batch_data> batches;
    for (int t = 0; t < steps; ++t) batches.push_back(make_batch(seed, t));
    const batch_data held_out = make_batch(seed, steps);
    lines.push_back(run(step, seed, batches, held_out, init, true));  // reads the step's values, changes nothing
    lines.push_back(run(step, seed, batches, held_out, init, false));
  }
  return lines;
}

}  // namespace

TEST_CASE("torch: a CNN's training steps (conv2d, batch_norm, relu, max_pool2d, dense, cross_entropy, Adam) equal torch's",
          "[torch][conv][batch_norm]") {
  kiln_torch::check_against_torch(runs({71, 72}), "cnn_step", "cnn_step_torch.py");
}
