// Layers against PyTorch (float64): for seeded random shapes and values, kiln's double reference evaluator
// computes a layer's output y in evaluation mode (a forward graph) and, in training mode, the gradients of
// Σ y ⊙ r (r a random tensor of y's shape) with respect to the layer's input x, every parameter and r (which is
// the training-mode output: for dropout, x with kiln's mask applied); layers_torch.py builds the same layer from torch.nn, loads kiln's
// parameters by name with load_state_dict(strict=True) (so the names and layouts are PyTorch's), and compares
// y and every gradient. Both sides are float64 and differ only in the order of their sums: an element may
// differ by 1e-10 of the largest magnitude in its tensor (about 10⁶ ulp, sums of at most a few hundred terms).
// Convolution and pooling (nn/conv.hpp) take x as a parameter viewed as maps (rows of C·H·W values, NCHW), so
// torch sees it as [batch, C, H, W] and d/dx is compared; a small CNN checks the layers chained by nn::sequential.
// Batch norm (nn/batch_norm.hpp, over maps and over vectors) also records its state (running statistics,
// num_batches_tracked) after one step graph run with SGD at lr 0, compared with the module's after one forward in
// train(). A whole CNN training step over several Adam steps: test_cnn_step_torch.cpp.
// The CPU and CUDA backends are checked against the reference evaluator in their own tests.
#include "random_models_record.hpp"

#include <kiln/reference/evaluate.hpp>
#include <kiln/train/step_graph.hpp>

#include <cmath>
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

// ---- convolution and pooling (nn/conv.hpp): the input x is B maps of C×H×W as a parameter (rows of C·H·W values
// in NCHW order), so its gradient is computed; r has the shape of the layer's output.
template <class Layer, int B, int C, int H, int W>
struct on_maps {
  static constexpr auto x() { return with_map<feature_map{C, H, W}>(param<B, C * H * W>("x")); }
  struct output { constexpr auto operator()() const { return Layer{}()(x()); } };
  struct loss {
    constexpr auto operator()() const {
      const auto y = Layer{}()(x());
      using Y = decltype(y);
      const auto r = param<B, Y::shape.cols>("r");
      if constexpr (has_tensor_shape<Y>) return sum(y * with_shape<Y::tshape>(r));  // the 1-D layers' [B, O, L]
      else return sum(y * r);
    }
  };
};

// A window drawn for a map: kernel 1..4, stride 1..3, padding 0..K/2 (PyTorch's bound for pooling), dilation 1..2
// (1 when the layer has none), then H and W in 1..9 large enough for one window: H + 2P >= D(K − 1) + 1.
struct window_config {
  int kernel, stride, padding, dilation, h, w;
};
constexpr window_config window_of(splitmix64& r, bool dilated) {
  const int kernel = r.between(1, 4);
  const int stride = r.between(1, 3);
  const int padding = r.between(0, kernel / 2);
  const int dilation = dilated ? r.between(1, 2) : 1;
  const int span = dilation * (kernel - 1) + 1;
  const int lo = span - 2 * padding > 1 ? span - 2 * padding : 1;
  const int h = r.between(lo, 9);
  return {kernel, stride, padding, dilation, h, r.between(lo, 9)};
}
std::string json_fields(std::initializer_list<std::pair<const char*, int>> fields) {
  std::string s;
  for (const auto& [name, v] : fields) s += std::string(s.empty() ? "{" : ",") + "\"" + name + "\":" + std::to_string(v);
  return s + "}";
}
std::string window_json(int batch, int channels, const window_config& w, std::initializer_list<std::pair<const char*, int>> more = {}) {
  std::string s = json_fields({{"batch", batch}, {"channels", channels}, {"kernel", w.kernel}, {"stride", w.stride},
                               {"padding", w.padding}, {"dilation", w.dilation}, {"h", w.h}, {"w", w.w}});
  for (const auto& [name, v] : more) s.insert(s.size() - 1, std::string(",\"") + name + "\":" + std::to_string(v));
  return s;
}

// conv2d: batch 1..4; half the draws ungrouped (In, Out 1..4), a quarter grouped (Groups 2..3, In and Out 1..2
// times Groups), a quarter depthwise (Groups = In = Out, 2..4); bias on or off.
struct conv2d_config {
  int batch, in, out, groups;
  window_config win;
  bool bias;
};
constexpr conv2d_config conv2d_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 4);
  const int kind = r.between(0, 3);
  int in = 0, out = 0, groups = 1;
  if (kind <= 1) {
    in = r.between(1, 4);
    out = r.between(1, 4);
  } else if (kind == 2) {
    groups = r.between(2, 3);
    in = groups * r.between(1, 2);
    out = groups * r.between(1, 2);
  } else {
    in = out = groups = r.between(2, 4);
  }
  const window_config win = window_of(r, true);
  return {batch, in, out, groups, win, r.coin()};
}
template <std::uint64_t S>
struct conv2d_case {
  static constexpr conv2d_config c = conv2d_of(S);
  static constexpr window_config w = c.win;
  struct layer {
    constexpr auto operator()() const {
      return conv2d<c.in, c.out, w.kernel, w.stride, w.padding, w.dilation, c.groups, c.bias>("conv");
    }
  };
  using output = typename on_maps<layer, c.batch, c.in, w.h, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.in, w.h, w.w>::loss;
  static std::string config_json() {
    return window_json(c.batch, c.in, w, {{"out", c.out}, {"groups", c.groups}, {"bias", c.bias}});
  }
};

// max_pool2d (dilated) and avg_pool2d (no dilation): batch 1..4, channels 1..4.
struct pool_config {
  int batch, channels;
  window_config win;
};
constexpr pool_config pool_of(std::uint64_t seed, bool dilated) {
  splitmix64 r{seed};
  const int batch = r.between(1, 4);
  const int channels = r.between(1, 4);
  return {batch, channels, window_of(r, dilated)};
}
template <std::uint64_t S>
struct max_pool2d_case {
  static constexpr pool_config c = pool_of(S, true);
  static constexpr window_config w = c.win;
  struct layer { constexpr auto operator()() const { return max_pool2d<w.kernel, w.stride, w.padding, w.dilation>{}; } };
  using output = typename on_maps<layer, c.batch, c.channels, w.h, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.channels, w.h, w.w>::loss;
  static std::string config_json() { return window_json(c.batch, c.channels, w); }
};
template <std::uint64_t S>
struct avg_pool2d_case {
  static constexpr pool_config c = pool_of(S, false);
  static constexpr window_config w = c.win;
  struct layer { constexpr auto operator()() const { return avg_pool2d<w.kernel, w.stride, w.padding>{}; } };
  using output = typename on_maps<layer, c.batch, c.channels, w.h, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.channels, w.h, w.w>::loss;
  static std::string config_json() { return window_json(c.batch, c.channels, w); }
};

// The 1-D layers (nn/conv.hpp: conv1d, max_pool1d, avg_pool1d) on sequences [batch, C, L]: the 2-D draws with
// the map's H set to 1 (L: the draw's W, at least one window long).
template <std::uint64_t S>
struct conv1d_case {
  static constexpr conv2d_config c = conv2d_of(S);
  static constexpr window_config w = c.win;
  struct layer {
    constexpr auto operator()() const {
      return conv1d<c.in, c.out, w.kernel, w.stride, w.padding, w.dilation, c.groups, c.bias>("conv");
    }
  };
  using output = typename on_maps<layer, c.batch, c.in, 1, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.in, 1, w.w>::loss;
  static std::string config_json() {
    return window_json(c.batch, c.in, w, {{"out", c.out}, {"groups", c.groups}, {"bias", c.bias}});
  }
};
template <std::uint64_t S>
struct max_pool1d_case {
  static constexpr pool_config c = pool_of(S, true);
  static constexpr window_config w = c.win;
  struct layer { constexpr auto operator()() const { return max_pool1d<w.kernel, w.stride, w.padding, w.dilation>{}; } };
  using output = typename on_maps<layer, c.batch, c.channels, 1, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.channels, 1, w.w>::loss;
  static std::string config_json() { return window_json(c.batch, c.channels, w); }
};
template <std::uint64_t S>
struct avg_pool1d_case {
  static constexpr pool_config c = pool_of(S, false);
  static constexpr window_config w = c.win;
  struct layer { constexpr auto operator()() const { return avg_pool1d<w.kernel, w.stride, w.padding>{}; } };
  using output = typename on_maps<layer, c.batch, c.channels, 1, w.w>::output;
  using loss = typename on_maps<layer, c.batch, c.channels, 1, w.w>::loss;
  static std::string config_json() { return window_json(c.batch, c.channels, w); }
};

// global_avg_pool: batch 1..4, channels 1..6, H and W 1..9.
struct global_pool_config {
  int batch, channels, h, w;
};
constexpr global_pool_config global_pool_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 4);
  const int channels = r.between(1, 6);
  const int h = r.between(1, 9);
  return {batch, channels, h, r.between(1, 9)};
}
template <std::uint64_t S>
struct global_avg_pool_case {
  static constexpr global_pool_config c = global_pool_of(S);
  struct layer { constexpr auto operator()() const { return global_avg_pool; } };
  using output = typename on_maps<layer, c.batch, c.channels, c.h, c.w>::output;
  using loss = typename on_maps<layer, c.batch, c.channels, c.h, c.w>::loss;
  static std::string config_json() { return json_fields({{"batch", c.batch}, {"channels", c.channels}, {"h", c.h}, {"w", c.w}}); }
};

// ---- batch normalization (nn/batch_norm.hpp) over maps (nn.BatchNorm2d: batch 1..4, C 1..4, H and W 1..5 with
// H·W ≥ 2, so a batch of 1 still has several values per channel) and over vectors (nn.BatchNorm1d: batch 2..9,
// as PyTorch refuses one value per channel in training; C 1..12). eps is one of 1e-5, 1e-3, 0.1 times a factor
// in [0.5, 1.5); momentum is 1 (the running statistics become the batch's) one draw in five, else in [0.01, 0.99).
// Besides the output and gradients, the case records the running statistics after one step (running_stats).
struct batch_norm_config {
  int batch, channels, h, w;  // h = w = 0: vectors
  double eps, momentum;
};
constexpr batch_norm_config batch_norm_of(std::uint64_t seed, bool maps) {
  splitmix64 r{seed};
  constexpr double eps_choices[] = {1e-5, 1e-3, 0.1};
  int batch = 0, channels = 0, h = 0, w = 0;
  if (maps) {
    batch = r.between(1, 4);
    channels = r.between(1, 4);
    do {
      h = r.between(1, 5);
      w = r.between(1, 5);
    } while (h * w < 2);
  } else {
    batch = r.between(2, 9);
    channels = r.between(1, 12);
  }
  const double eps = r.pick(eps_choices);
  const double momentum = r.between(0, 4) == 0 ? 1.0 : r.uniform(0.01, 0.99);
  return {batch, channels, h, w, eps, momentum};
}
std::string batch_norm_json(const batch_norm_config& c) {
  std::string s = json_fields({{"batch", c.batch}, {"channels", c.channels}, {"h", c.h}, {"w", c.w}});
  s.pop_back();
  s += ",\"eps\":";
  kiln_torch::append(s, c.eps, 17);
  s += ",\"momentum\":";
  kiln_torch::append(s, c.momentum, 17);
  return s + "}";
}
template <batch_norm_config C>
struct batch_norm_layer {
  constexpr auto operator()() const { return batch_norm<C.channels>{.eps = C.eps, .momentum = C.momentum, .name = short_name("bn")}; }
};
template <std::uint64_t S>
struct batch_norm1d_case {
  static constexpr batch_norm_config c = batch_norm_of(S, false);
  static constexpr bool running_stats = true;
  static constexpr long rows = c.batch;  // batch_norm counts the run's batch size, not x's rows (see the TEST_CASE)
  static constexpr auto x = param<c.batch, c.channels>("x");
  struct output { constexpr auto operator()() const { return batch_norm_layer<c>{}()(x); } };
  struct loss { constexpr auto operator()() const { return sum(batch_norm_layer<c>{}()(x) * param<c.batch, c.channels>("r")); } };
  static std::string config_json() { return batch_norm_json(c); }
};

template <std::uint64_t S>
struct batch_norm2d_case {
  static constexpr batch_norm_config c = batch_norm_of(S, true);
  static constexpr bool running_stats = true;
  static constexpr long rows = c.batch;  // batch_norm counts the run's batch size, not x's rows (see the TEST_CASE)
  using output = typename on_maps<batch_norm_layer<c>, c.batch, c.channels, c.h, c.w>::output;
  using loss = typename on_maps<batch_norm_layer<c>, c.batch, c.channels, c.h, c.w>::loss;
  static std::string config_json() { return batch_norm_json(c); }
};

// A small CNN, nn::sequential(conv2d<In, Out, K, 1, P>{}, relu, max_pool2d<2>{}, flatten, dense<N>{}): In 1..3,
// Out 1..4, K 1..3, P 0..K/2, H and W 2..8 with a conv output of at least 2×2, N 1..5; parameters conv1.*, fc1.*.
// x is uniform in [−1, 1) here (no offset), so the convolution's outputs have both signs and relu cuts some.
struct cnn_config {
  int batch, in, out, kernel, padding, h, w, classes;
};
constexpr cnn_config cnn_of(std::uint64_t seed) {
  splitmix64 r{seed};
  const int batch = r.between(1, 4);
  const int in = r.between(1, 3);
  const int out = r.between(1, 4);
  const int kernel = r.between(1, 3);
  const int padding = r.between(0, kernel / 2);
  const int lo = kernel - 2 * padding + 1 > 2 ? kernel - 2 * padding + 1 : 2;
  const int h = r.between(lo, 8);
  const int w = r.between(lo, 8);
  return {batch, in, out, kernel, padding, h, w, r.between(1, 5)};
}
template <std::uint64_t S>
struct cnn_case {
  static constexpr cnn_config c = cnn_of(S);
  static constexpr double x_offset = 0;
  struct layer {
    constexpr auto operator()() const {
      return nn::sequential(conv2d<c.in, c.out, c.kernel, 1, c.padding>{}, relu, max_pool2d<2>{}, flatten, dense<c.classes>{});
    }
  };
  using output = typename on_maps<layer, c.batch, c.in, c.h, c.w>::output;
  using loss = typename on_maps<layer, c.batch, c.in, c.h, c.w>::loss;
  static std::string config_json() {
    return json_fields({{"batch", c.batch}, {"in", c.in}, {"out", c.out}, {"kernel", c.kernel}, {"padding", c.padding},
                        {"h", c.h}, {"w", c.w}, {"classes", c.classes}});
  }
};

template <class Case>
constexpr double x_offset_of() {
  if constexpr (requires { Case::x_offset; }) return Case::x_offset;
  else return 5;
}

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

// Random values for every parameter of the loss graph: x spread around an offset (so centering matters) drawn
// from ±5, or ±Case::x_offset where a case sets it; the rest uniform; a layer's scale parameters ("weight") around 1;
// batch norm's state: running_var in [0.25, 1.75), num_batches_tracked an integer in [0, 100).
values_by_name random_values(const graph& g, long rows, std::uint64_t seed, double offset_scale) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  values_by_name v;
  const double offset = offset_scale * u(rng);
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    const std::string name(info.name.view());
    std::vector<double> e(static_cast<std::size_t>((info.shape.rows == batch ? rows : info.shape.rows) * info.shape.cols));
    for (double& a : e)
      a = info.kind == leaf_kind::labels ? static_cast<double>(rng() % static_cast<std::uint64_t>(info.num_classes))
          : name == "x"                  ? offset + 2 * u(rng)
          : name.ends_with("weight")     ? 1 + 0.5 * u(rng)
          : name.ends_with("running_var") ? 1 + 0.75 * u(rng)                    // positive
          : name.ends_with("num_batches_tracked") ? std::floor(50 * (1 + u(rng)))  // an integer (a long in torch)
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
  const values_by_name v = random_values(G, rows, seed, x_offset_of<Case>());
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
  line += "}";
  // Batch norm: the state leaves (running statistics, num_batches_tracked) after one step of SGD with lr 0.
  if constexpr (requires { Case::running_stats; }) {
    constexpr const graph& S = step_graph<typename Case::loss, sgd>::value;
    auto s = bind(S, v);
    std::vector<double> h(sgd::num_hypers);
    sgd{.lr = 0}.hypers(1, h.data());
    reference::step(S, rows, s, h);
    line += ",\"state\":{";
    int n = 0;
    for (int l = 0; l < S.num_leaves; ++l) {
      if (S.leaves[l].kind != leaf_kind::state) continue;
      line += std::string(n++ ? "," : "") + "\"" + std::string(S.leaves[l].name.view()) + "\":";
      kiln_torch::append_array(line, s[static_cast<std::size_t>(l)], 17);
    }
    line += "}";
  }
  return line + "}";
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

// nn.Conv2d (square kernels, zero padding; stride, padding, dilation, groups with depthwise, bias on and off),
// loaded with kiln's conv.weight viewed as [Out, In/Groups, K, K]; x is a parameter, so d/dx is compared too.
// Base 54 draws: 2→4 K2 stride 2 padding 1 with bias; depthwise 3 groups K4 stride 2 dilation 2 without bias;
// 2 groups 4→4 K4 padding 1 without bias; 2→4 K4 padding 1 with bias.
TEST_CASE("torch: conv2d's output and gradients equal nn.Conv2d's (float64, seeded random shapes)", "[torch][conv]") {
  kiln_torch::check_against_torch(cases<conv2d_case, 54>("conv2d", std::make_index_sequence<4>{}), "conv2d", "layers_torch.py");
}

// Random inputs have no ties, so the gradient's route through each window's maximum is PyTorch's. Base 50 draws
// K2 stride 3 (gaps between windows), K4 dilation 2, K4 stride 2 padding 2 (= K/2), K4 stride 2 padding 1 dilation 2.
TEST_CASE("torch: max_pool2d's output and gradient equal nn.MaxPool2d's (float64, seeded random shapes)", "[torch][conv]") {
  kiln_torch::check_against_torch(cases<max_pool2d_case, 50>("max_pool2d", std::make_index_sequence<4>{}), "max_pool2d",
                                  "layers_torch.py");
}

// Base 51 draws K4 stride 2 padding 1 on a 2×7 map, K3 stride 2, K2 stride 1 padding 1 (= K/2), K2 stride 3.
TEST_CASE("torch: avg_pool2d's output and gradient equal nn.AvgPool2d's (count_include_pad, float64)", "[torch][conv]") {
  kiln_torch::check_against_torch(cases<avg_pool2d_case, 51>("avg_pool2d", std::make_index_sequence<4>{}), "avg_pool2d",
                                  "layers_torch.py");
}

TEST_CASE("torch: global_avg_pool equals nn.AdaptiveAvgPool2d(1) + flatten (float64, seeded random shapes)", "[torch][conv]") {
  kiln_torch::check_against_torch(cases<global_avg_pool_case, 53>("global_avg_pool", std::make_index_sequence<4>{}),
                                  "global_avg_pool", "layers_torch.py");
}

TEST_CASE("torch: a small CNN (conv2d, relu, max_pool2d, flatten, dense) equals its torch.nn twin (float64)", "[torch][conv]") {
  kiln_torch::check_against_torch(cases<cnn_case, 59>("cnn", std::make_index_sequence<2>{}), "cnn", "layers_torch.py");
}

// nn.BatchNorm2d over maps (a batch of 1 among the draws: the statistics run over the map alone) and nn.BatchNorm1d
// over vectors, loaded with kiln's weight, bias, running_mean, running_var (positive) and num_batches_tracked
// (an integer, a long in torch) by name, strict=True: the evaluation-mode output (running statistics), the
// training-mode output and gradients (batch statistics), and the state after one step (SGD, lr 0) against the
// module's after one forward in train(): running_mean, running_var (momentum as PyTorch's, m·new + (1 − m)·old,
// with the unbiased variance) and num_batches_tracked + 1.
// Base 61 draws 2 × 3 maps of 5×2, 2 × 3 of 5×5, 1 × 3 of 2×2 (momentum 1), 1 × 2 of 5×2, 2 × 2 of 4×4, 1 × 1 of
// 4×4; base 62 draws batches of 4, 4, 2 (momentum 1), 5, 5, 9 with 8, 2, 7, 9, 9, 9 channels.
// x is a parameter [B, C·H·W] (static rows), and batch_norm counts its values per channel as the run's batch size
// times H·W, not x's rows: the cases run with batch size B (rows), as a model whose x is an input would.
TEST_CASE("torch: batch_norm over maps equals nn.BatchNorm2d, running statistics included (float64, seeded random shapes)",
          "[torch][batch_norm]") {
  kiln_torch::check_against_torch(cases<batch_norm2d_case, 61>("batch_norm2d", std::make_index_sequence<6>{}), "batch_norm2d",
                                  "layers_torch.py");
}

TEST_CASE("torch: batch_norm over vectors equals nn.BatchNorm1d, running statistics included (float64, seeded random shapes)",
          "[torch][batch_norm]") {
  kiln_torch::check_against_torch(cases<batch_norm1d_case, 62>("batch_norm1d", std::make_index_sequence<6>{}), "batch_norm1d",
                                  "layers_torch.py");
}

// nn.Conv1d, nn.MaxPool1d and nn.AvgPool1d on sequences [batch, C, L]; conv1d.weight is saved as [Out, In/Groups, K].
TEST_CASE("torch: conv1d, max_pool1d and avg_pool1d equal nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d (float64, seeded random shapes)",
          "[torch][conv]") {
  std::vector<std::string> lines = cases<conv1d_case, 55>("conv1d", std::make_index_sequence<4>{});
  for (auto part : {cases<max_pool1d_case, 56>("max_pool1d", std::make_index_sequence<4>{}),
                    cases<avg_pool1d_case, 57>("avg_pool1d", std::make_index_sequence<4>{})})
    lines.insert(lines.end(), part.begin(), part.end());
  kiln_torch::check_against_torch(lines, "conv1d", "layers_torch.py");
}
