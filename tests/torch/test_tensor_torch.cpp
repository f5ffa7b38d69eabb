// Tensor ops of any rank against PyTorch (float64): for seeded random shapes, kiln's double reference evaluator
// computes y = op(x) (a forward graph) and the gradients of Σ y ⊙ r (r random, y's shape) with respect to every
// parameter; tensor_torch.py builds the same op with torch and compares y and the gradients. The ops: permute,
// slice, concat, sum / mean / max over random sets of axes (keepdim or not), reshape, and arithmetic broadcast by
// numpy's rules, on parameters of rank 1 to 4 and on batched tensors [batch, 1 to 4 axes] (x = an input times a
// parameter s of the row's shape, so the batched path's gradient reaches s). Same tolerance as the layers:
// 1e-10 of the largest magnitude of a tensor.
#include "random_models_record.hpp"

#include <kiln/kiln.hpp>
#include <kiln/reference/evaluate.hpp>
#include <kiln/train/step_graph.hpp>

#include <map>
#include <random>
#include <utility>

namespace {

using namespace kiln;
using kiln_torch::splitmix64;

enum tensor_kind { t_permute, t_slice, t_concat, t_sum, t_mean, t_max, t_broadcast, t_reshape, t_kinds };
constexpr const char* kind_names[] = {"permute", "slice", "concat", "sum", "mean", "max", "broadcast", "reshape"};

// One draw: x's shape (a batched tensor's axis 0 is the batch, `rows` samples), and the op's arguments.
struct tensor_config {
  int kind = 0;
  bool batched = false;
  int rows = 1;
  int rank = 1;             // x's rank, the batch included
  int d[6] = {};            // x's shape (d[0] = -1 when batched)
  int perm[6] = {};         // permute
  int axis = 0, begin = 0, end = 0;  // slice; concat's axis
  int parts = 2, extent[3] = {};     // concat: the parts' extents along the axis
  int n_axes = 0, axes[6] = {};      // reductions
  bool keep = false;
  int op = 0;               // broadcast: 0 add, 1 sub, 2 mul
  bool swap = false;        // broadcast: the other operand first
  int o_rank = 0, o[6] = {};         // broadcast: the other operand's shape (a parameter)
};

constexpr tensor_config draw(std::uint64_t seed, int kind) {
  splitmix64 r{seed};
  tensor_config c;
  c.kind = kind;
  c.batched = r.coin();
  c.rows = r.between(1, 3);
  const int o = c.batched ? 1 : 0;  // the first axis an op may move or cut
  c.rank = o + r.between(kind == t_permute ? 2 : 1, 4);
  if (c.batched) c.d[0] = batch;
  for (int k = o; k < c.rank; ++k) c.d[k] = r.between(1, 4);
  for (int k = 0; k < c.rank; ++k) c.perm[k] = k;
  for (int k = c.rank - 1; k > o; --k) {  // Fisher–Yates over the movable axes
    const int j = r.between(o, k);
    const int t = c.perm[k];
    c.perm[k] = c.perm[j];
    c.perm[j] = t;
  }
  c.axis = r.between(o, c.rank - 1);
  if (kind == t_slice) {
    c.d[c.axis] = r.between(2, 5);
    c.begin = r.between(0, c.d[c.axis] - 1);
    c.end = r.between(c.begin + 1, c.d[c.axis]);
  }
  c.parts = r.between(2, 3);
  for (int p = 0; p < 3; ++p) c.extent[p] = r.between(1, 3);
  if (kind == t_sum || kind == t_mean || kind == t_max) {
    const int lo = kind == t_max ? o : 0;  // sum and mean may reduce the batch too
    for (int k = lo; k < c.rank; ++k)
      if (r.coin()) c.axes[c.n_axes++] = k;
    if (c.n_axes == 0) c.axes[c.n_axes++] = r.between(lo, c.rank - 1);
    c.keep = r.coin();
  }
  c.op = r.between(0, 2);
  c.swap = r.coin();
  // the other operand: x's trailing axes (a random number of them, at least one), some stretched from 1
  c.o_rank = r.between(1, c.rank - o);
  for (int k = 0; k < c.o_rank; ++k) c.o[k] = r.between(0, 2) == 0 ? 1 : c.d[c.rank - c.o_rank + k];
  if (kind == t_broadcast && !c.batched && r.coin()) {  // or x stretched along one of its axes instead
    const int k = r.between(0, c.rank - 1);
    if (c.o_rank == c.rank) c.o[k] = c.d[k], c.d[k] = 1;
  }
  return c;
}

// x: a parameter of shape d, or (batched) an input times a parameter s of the row's shape
template <const tensor_config& C, std::size_t... I>
constexpr auto x_of(std::index_sequence<I...>) {
  if constexpr (C.batched) return tensor_input<C.d[I + 1]...>("xin") * tensor_param<C.d[I + 1]...>("s");
  else return tensor_param<C.d[I]...>("x");
}
template <const tensor_config& C>
constexpr auto x_of() { return x_of<C>(std::make_index_sequence<static_cast<std::size_t>(C.batched ? C.rank - 1 : C.rank)>{}); }

template <const tensor_config& C, std::size_t... I>
constexpr auto other_of(std::index_sequence<I...>) { return tensor_param<C.o[I]...>("other"); }

// the concat parts: part p is x's shape with extent[p] along the axis (batched: input qp times parameter pp)
template <const tensor_config& C, int P, std::size_t... I>
constexpr auto part_of(std::index_sequence<I...>) {
  constexpr const char* input = P == 0 ? "q0" : P == 1 ? "q1" : "q2";
  constexpr const char* param = P == 0 ? "p0" : P == 1 ? "p1" : "p2";
  if constexpr (C.batched) return tensor_input<(static_cast<int>(I) + 1 == C.axis ? C.extent[P] : C.d[I + 1])...>(input) *
                                  tensor_param<(static_cast<int>(I) + 1 == C.axis ? C.extent[P] : C.d[I + 1])...>(param);
  else return tensor_param<(static_cast<int>(I) == C.axis ? C.extent[P] : C.d[I])...>(param);
}
template <const tensor_config& C, int P>
constexpr auto part_of() { return part_of<C, P>(std::make_index_sequence<static_cast<std::size_t>(C.batched ? C.rank - 1 : C.rank)>{}); }

template <const tensor_config& C, std::size_t... I>
constexpr auto apply(std::index_sequence<I...>) {
  if constexpr (C.kind == t_permute) return permute<C.perm[I]...>(x_of<C>());
  else if constexpr (C.kind == t_slice) return slice<C.axis, C.begin, C.end>(x_of<C>());
  else if constexpr (C.kind == t_concat) {
    if constexpr (C.parts == 2) return concat<C.axis>(part_of<C, 0>(), part_of<C, 1>());
    else return concat<C.axis>(part_of<C, 0>(), part_of<C, 1>(), part_of<C, 2>());
  } else if constexpr (C.kind == t_reshape) {  // the shape reversed (the batch stays first)
    if constexpr (C.batched) return reshape<batch, C.d[C.rank - 1 - I]...>(x_of<C>());
    else return reshape<C.d[C.rank - 1 - I]...>(x_of<C>());
  } else if constexpr (C.kind == t_broadcast) {
    constexpr auto o = other_of<C>(std::make_index_sequence<static_cast<std::size_t>(C.o_rank)>{});
    constexpr auto x = x_of<C>();
    if constexpr (C.swap) {
      if constexpr (C.op == 0) return o + x;
      else if constexpr (C.op == 1) return o - x;
      else return o * x;
    } else {
      if constexpr (C.op == 0) return x + o;
      else if constexpr (C.op == 1) return x - o;
      else return x * o;
    }
  }
}
template <const tensor_config& C, std::size_t... A>
constexpr auto reduce(std::index_sequence<A...>) {
  if constexpr (C.kind == t_sum && C.keep) return sum_keepdim<C.axes[A]...>(x_of<C>());
  else if constexpr (C.kind == t_sum) return sum<C.axes[A]...>(x_of<C>());
  else if constexpr (C.kind == t_mean && C.keep) return mean_keepdim<C.axes[A]...>(x_of<C>());
  else if constexpr (C.kind == t_mean) return mean<C.axes[A]...>(x_of<C>());
  else if constexpr (C.keep) return max_keepdim<C.axes[A]...>(x_of<C>());
  else return max<C.axes[A]...>(x_of<C>());
}
template <const tensor_config& C>
constexpr auto output_of() {
  if constexpr (C.kind == t_sum || C.kind == t_mean || C.kind == t_max)
    return reduce<C>(std::make_index_sequence<static_cast<std::size_t>(C.n_axes)>{});
  else if constexpr (C.kind == t_reshape)
    return apply<C>(std::make_index_sequence<static_cast<std::size_t>(C.batched ? C.rank - 1 : C.rank)>{});
  else
    return apply<C>(std::make_index_sequence<static_cast<std::size_t>(C.rank)>{});
}

// r: y's shape, an input when y is batched
template <class Y, std::size_t... I>
constexpr auto weights_of(std::index_sequence<I...>) {
  constexpr tensor_shape s = tensor_shape_of<Y>();
  if constexpr (s.batched()) return tensor_input<s.d[I + 1]...>("r");
  else if constexpr (s.rank == 0) return param<>("r");
  else return tensor_param<s.d[I]...>("r");
}

template <std::uint64_t S, int Kind>
struct tensor_case {
  static constexpr tensor_config c = draw(S, Kind);
  using Y = decltype(output_of<c>());
  static constexpr tensor_shape y_shape = tensor_shape_of<Y>();
  struct output { constexpr auto operator()() const { return output_of<c>(); } };
  struct loss {
    constexpr auto operator()() const {
      constexpr std::size_t n = static_cast<std::size_t>(y_shape.batched() ? y_shape.rank - 1 : y_shape.rank);
      return sum(output_of<c>() * weights_of<Y>(std::make_index_sequence<n>{}));
    }
  };
};

std::string ints(const int* v, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}
std::string config_json(const tensor_config& c) {
  return std::string("{\"kind\":\"") + kind_names[c.kind] + "\",\"batched\":" + (c.batched ? "true" : "false") +
         ",\"rows\":" + std::to_string(c.rows) + ",\"shape\":" + ints(c.d, c.rank) + ",\"perm\":" + ints(c.perm, c.rank) +
         ",\"axis\":" + std::to_string(c.axis) + ",\"begin\":" + std::to_string(c.begin) + ",\"end\":" + std::to_string(c.end) +
         ",\"extents\":" + ints(c.extent, c.parts) + ",\"axes\":" + ints(c.axes, c.n_axes) + ",\"keep\":" + (c.keep ? "true" : "false") +
         ",\"op\":" + std::to_string(c.op) + ",\"swap\":" + (c.swap ? "true" : "false") + ",\"other\":" + ints(c.o, c.o_rank) + "}";
}

using values_by_name = std::map<std::string, std::vector<double>>;
std::vector<std::vector<double>> bind_by_name(const graph& g, const values_by_name& v) {
  std::vector<std::vector<double>> out(static_cast<std::size_t>(g.num_leaves));
  for (int l = 0; l < g.num_leaves; ++l) out[static_cast<std::size_t>(l)] = v.at(std::string(g.leaves[l].name.view()));
  return out;
}

template <class Case>
std::string run_case(std::uint64_t seed) {
  constexpr const graph& Y = forward_graph<typename Case::output>::value;
  constexpr const graph& G = gradient_graph<typename Case::loss>::value;
  constexpr long rows = Case::c.rows;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  values_by_name v;
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    std::vector<double> e(static_cast<std::size_t>((info.shape.rows == batch ? rows : info.shape.rows) * info.shape.cols));
    for (double& a : e) a = u(rng);
    v[std::string(info.name.view())] = e;
  }
  const auto y = reference::evaluate(Y, rows, bind_by_name(Y, v));
  const auto g = reference::evaluate(G, rows, bind_by_name(G, v));
  std::string line = std::string("{\"case\":\"") + kind_names[Case::c.kind] + "\",\"seed\":" + std::to_string(seed) +
                     ",\"config\":" + config_json(Case::c) + ",\"y_shape\":" + ints(Case::y_shape.d, Case::y_shape.rank) +
                     ",\"values\":{";
  bool first = true;
  for (const auto& [name, values] : v) {
    line += std::string(first ? "" : ",") + "\"" + name + "\":";
    kiln_torch::append_array(line, values, 17);
    first = false;
  }
  line += "},\"out\":";
  kiln_torch::append_array(line, y[static_cast<std::size_t>(Y.outputs[0].node)].v, 17);
  line += ",\"grads\":{";
  int k = 0;  // output 1 + k is the gradient of the k-th parameter
  bool first_grad = true;
  for (int l = 0; l < G.num_leaves; ++l) {
    if (G.leaves[l].kind != leaf_kind::param) continue;
    ++k;
    if (G.leaves[l].name.view() == "r") continue;
    line += std::string(first_grad ? "" : ",") + "\"" + std::string(G.leaves[l].name.view()) + "\":";
    kiln_torch::append_array(line, g[static_cast<std::size_t>(G.outputs[k].node)].v, 17);
    first_grad = false;
  }
  return line + "}}";
}

template <int Kind, std::uint64_t Base, std::size_t... I>
std::vector<std::string> cases(std::index_sequence<I...>) {
  return {run_case<tensor_case<kiln_torch::seed_of(Base, I), Kind>>(kiln_torch::seed_of(Base, I))...};
}
template <int Kind>
std::vector<std::string> draws() { return cases<Kind, 100 + Kind>(std::make_index_sequence<6>{}); }

}  // namespace

TEST_CASE("torch: permute, slice, concat and reshape equal torch's (float64, seeded random shapes)", "[torch][tensor]") {
  std::vector<std::string> lines;
  for (auto part : {draws<t_permute>(), draws<t_slice>(), draws<t_concat>(), draws<t_reshape>()}) lines.insert(lines.end(), part.begin(), part.end());
  kiln_torch::check_against_torch(lines, "tensor_layout", "tensor_torch.py");
}

TEST_CASE("torch: sum, mean and max over axes equal torch.sum / mean / amax (float64, seeded random shapes)", "[torch][tensor]") {
  std::vector<std::string> lines;
  for (auto part : {draws<t_sum>(), draws<t_mean>(), draws<t_max>()}) lines.insert(lines.end(), part.begin(), part.end());
  kiln_torch::check_against_torch(lines, "tensor_reduce", "tensor_torch.py");
}

TEST_CASE("torch: arithmetic broadcasts as torch's (numpy's rules; float64, seeded random shapes)", "[torch][tensor]") {
  kiln_torch::check_against_torch(draws<t_broadcast>(), "tensor_broadcast", "tensor_torch.py");
}
