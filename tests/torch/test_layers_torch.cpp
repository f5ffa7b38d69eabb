// Layers against PyTorch (float64): for seeded random shapes and values, kiln's double reference evaluator
// computes a layer's output y in evaluation mode (a forward graph) and, in training mode, the gradients of
// Σ y ⊙ r (r a random tensor of y's shape) with respect to the layer's input x, every parameter and r (which is
// the training-mode output: for dropout, x with kiln's mask applied); layers_torch.py builds the same layer from torch.nn, loads kiln's
// parameters by name with load_state_dict(strict=True) (so the names and layouts are PyTorch's), and compares
// y and every gradient. Both sides are float64 and differ only in the order of their sums: an element may
// differ by 1e-10 of the largest magnitude in its tensor (about 10⁶ ulp, sums of at most a few hundred terms).
// The CPU and CUDA backends are checked against the reference evaluator in their own tests.
#include "random_models_record.hpp"

#include <kiln/reference/evaluate.hpp>
#include <kiln/train/step_graph.hpp>

#include <map>
#include <random>

namespace {

using namespace kiln;
using kiln_torch::splitmix64;
using values_by_name = std::map<std::string, std::vector<double>>;

// ---- the layers under test, each a configuration drawn from a seed (shapes are static, so a seed is a type)
struct layer_norm_config {
  int batch, features;
  double eps;
};
constexpr layer_norm_config layer_norm_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 9);
  const int features = r.between(1, 40);
  constexpr double eps_choices[] = {1e-5, 1e-3, 0.1};
  return {batch, features, eps_choices[r.between(0, 2)]};
}
template <std::uint64_t S>
struct layer_norm_case {
  static constexpr layer_norm_config c = layer_norm_of(S);
  static constexpr auto x = param<c.batch, c.features>("x");
  static constexpr auto layer() { return layer_norm{.eps = c.eps, .name = short_name("norm")}; }
  struct output { constexpr auto operator()() const { return layer()(x); } };
  struct loss { constexpr auto operator()() const { return sum(layer()(x) * param<c.batch, c.features>("r")); } };
  static std::string config_json() {
    return "{\"batch\":" + std::to_string(c.batch) + ",\"features\":" + std::to_string(c.features) +
           ",\"eps\":" + std::to_string(c.eps) + "}";
  }
};

struct dropout_config {
  int batch, features;
  double p;
};
constexpr dropout_config dropout_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 9);
  const int features = r.between(1, 64);
  constexpr double p_choices[] = {0.1, 0.25, 0.5, 0.8};
  return {batch, features, p_choices[r.between(0, 3)]};
}
template <std::uint64_t S>
struct dropout_case {
  static constexpr dropout_config c = dropout_of(S);
  static constexpr auto x = param<c.batch, c.features>("x");
  struct output { constexpr auto operator()() const { return kiln::dropout{.p = c.p}(x); } };
  struct loss { constexpr auto operator()() const { return sum(kiln::dropout{.p = c.p}(x) * param<c.batch, c.features>("r")); } };
  static std::string config_json() {
    return "{\"batch\":" + std::to_string(c.batch) + ",\"features\":" + std::to_string(c.features) +
           ",\"p\":" + std::to_string(c.p) + "}";
  }
};

struct embedding_config {
  int batch, vocabulary, dim, context;
};
constexpr embedding_config embedding_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 9);
  const int vocabulary = r.between(1, 30);
  const int dim = r.between(1, 12);
  return {batch, vocabulary, dim, r.between(1, 5)};
}
// The indices are a batch input (tokens), so r is one too: only the table has a gradient.
template <std::uint64_t S>
struct embedding_case {
  static constexpr embedding_config c = embedding_of(S);
  static constexpr long rows = c.batch;
  static constexpr auto layer() { return embedding<c.vocabulary, c.dim>("emb"); }
  struct output { constexpr auto operator()() const { return layer()(tokens<c.vocabulary, c.context>("x")); } };
  struct loss {
    constexpr auto operator()() const { return sum(layer()(tokens<c.vocabulary, c.context>("x")) * input<c.context * c.dim>("r")); }
  };
  static std::string config_json() {
    return "{\"batch\":" + std::to_string(c.batch) + ",\"vocabulary\":" + std::to_string(c.vocabulary) +
           ",\"dim\":" + std::to_string(c.dim) + ",\"context\":" + std::to_string(c.context) + "}";
  }
};

template <class Case>
constexpr long rows_of() {
  if constexpr (requires { Case::rows; }) return Case::rows;
  else return 1;
}

// ---- evaluation: leaves bound by name, so the output graph and the loss graph may order them differently
std::vector<std::vector<double>> bind(const graph& g, const values_by_name& v) {
  std::vector<std::vector<double>> out(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) out[static_cast<std::size_t>(l)] = v.at(std::string(g.leaves[l].name.view()));
  return out;
}

// Random values for every parameter of the loss graph: x spread around an offset (so centering matters), the
// rest uniform; a layer's scale parameters ("weight") around 1.
values_by_name random_values(const graph& g, long rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  values_by_name v;
  const double offset = 5 * u(rng);
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    const std::string name(info.name.view());
    std::vector<double> e(static_cast<std::size_t>((info.shape.rows == batch ? rows : info.shape.rows) * info.shape.cols));
    for (double& a : e)
      a = info.kind == leaf_kind::labels ? static_cast<double>(rng() % static_cast<std::uint64_t>(info.num_classes))
          : name == "x"                  ? offset + 2 * u(rng)
          : name.ends_with("weight")     ? 1 + 0.5 * u(rng)
                                         : u(rng);
    v[name] = e;
  }
  return v;
}

template <class Case>
std::string run_case(const char* kind, std::uint64_t seed) {
  constexpr const graph& Y = forward_graph<typename Case::output>::value;
  constexpr const graph& G = gradient_graph<typename Case::loss>::value;
  constexpr long rows = rows_of<Case>();
  const values_by_name v = random_values(G, rows, seed);
  const auto y = reference::evaluate(Y, rows, bind(Y, v));
  const auto g = reference::evaluate(G, rows, bind(G, v));
  std::string line = std::string("{\"case\":\"") + kind + "\",\"seed\":" + std::to_string(seed) + ",\"config\":" +
                     Case::config_json() + ",\"values\":{";
  bool first = true;
  for (const auto& [name, values] : v) {
    line += std::string(first ? "" : ",") + "\"" + name + "\":";
    kiln_torch::append_array(line, values, 17);
    first = false;
  }
  line += "},\"out\":";
  kiln_torch::append_array(line, y[static_cast<std::size_t>(Y.outputs[0].node)].v, 17);
  line += ",\"grads\":{";
  int k = 0;
  for (int l = 0; l < G.num_leaves; ++l) {
    if (G.leaves[l].kind != leaf_kind::param) continue;
    line += std::string(k ? "," : "") + "\"" + std::string(G.leaves[l].name.view()) + "\":";
    kiln_torch::append_array(line, g[static_cast<std::size_t>(G.outputs[++k].node)].v, 17);
  }
  return line + "}}";
}

template <template <std::uint64_t> class Case, std::uint64_t Base, std::size_t... I>
std::vector<std::string> cases(const char* kind, std::index_sequence<I...>) {
  return {run_case<Case<kiln_torch::seed_of(Base, I)>>(kind, kiln_torch::seed_of(Base, I))...};
}

}  // namespace

TEST_CASE("torch: layer_norm's output and gradients equal nn.LayerNorm's (float64, seeded random shapes)", "[torch][normalization]") {
  kiln_torch::check_against_torch(cases<layer_norm_case, 41>("layer_norm", std::make_index_sequence<8>{}), "layer_norm",
                                  "layers_torch.py");
}

// torch cannot be given kiln's mask, so the script reads it off kiln's training output (the zeros) and checks
// the rest against torch: the kept elements scaled by what nn.Dropout(p) scales them by in training, the
// gradient with respect to x that autograd gives for that mask, the identity in evaluation mode, and a kept
// fraction within 5σ of 1 − p.
TEST_CASE("torch: embedding's lookup and table gradient equal nn.Embedding's (float64, seeded random shapes)", "[torch][embedding]") {
  kiln_torch::check_against_torch(cases<embedding_case, 47>("embedding", std::make_index_sequence<8>{}), "embedding",
                                  "layers_torch.py");
}

TEST_CASE("torch: dropout scales as nn.Dropout in training and is the identity in evaluation (float64)", "[torch][dropout]") {
  kiln_torch::check_against_torch(cases<dropout_case, 43>("dropout", std::make_index_sequence<8>{}), "dropout", "layers_torch.py");
}
