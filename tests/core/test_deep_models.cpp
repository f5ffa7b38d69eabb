// Models past the old fixed capacities (64 leaves, 640 nodes, and a constexpr recursion that ended near 30
// layers): a graph's storage is sized by the model itself (ir/frozen.hpp), so depth is bounded only by the
// compiler's own limits. A 32-hidden-layer MLP trained with Adam must compile and match the reference, fused and
// unfused; a 64-layer one must at least build its step graph.
#include "backend_compare.hpp"

#include <kiln/reference/evaluate.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>
#include <utility>

namespace {

// sequential(dense<Width>, tanh, … (one pair per I), dense<3>)
template <int Width, std::size_t... I>
constexpr auto tanh_stack(std::index_sequence<I...>) {
  const auto layers = std::tuple_cat(((void)I, std::tuple{dense<Width>{}, kiln::tanh})..., std::tuple{dense<3>{}});
  return std::apply([](auto... l) { return nn::sequential(l...); }, layers);
}
template <int Layers, int Width>
struct deep_mlp {
  constexpr auto operator()() const { return cross_entropy(tanh_stack<Width>(std::make_index_sequence<Layers>{})(x), y); }
};

// ct_vector, the passes' growing array: growth, copies and moves keep every element (checked by the compiler,
// which rejects any read of storage where no element lives).
constexpr bool ct_vector_keeps_elements() {
  ct_vector<int> a;
  for (int i = 0; i < 100; ++i) a.push_back(i);
  ct_vector<int> b = a;
  b.push_back(100);
  ct_vector<int> c = std::move(b);
  a = c;
  ct_vector<ct_vector<int>> nested(3, ct_vector<int>{});
  nested[1] = a;
  nested.push_back(c);
  int sum = 0;
  for (const int v : nested[1]) sum += v;
  return a.size() == 101 && b.empty() && sum == 5050 && nested[3][100] == 100 && nested[0].empty();
}
static_assert(ct_vector_keeps_elements());

}  // namespace

TEST_CASE("a 32-hidden-layer MLP with Adam compiles and trains like the reference, fused and unfused", "[deep]") {
  using model = deep_mlp<32, 8>;
  const graph& G = kiln::step_graph<model, adam>::value;
  // 33 dense layers: 66 parameters, each with Adam's two state tensors, plus x and y
  CHECK(G.num_leaves == 66 * 3 + 2);
  CHECK(G.num_leaves > 64);   // the old max_leaves
  CHECK(G.size > 640);        // the old max_nodes
  CHECK(G.num_outputs == 1 + 66 * 3);
  for (long batch : {1L, 5L})
    compare<model>(adam{.lr = 1e-2, .eps = 1e-4}, batch, 4242u + static_cast<std::uint64_t>(batch), 2);
}

TEST_CASE("a 64-hidden-layer MLP builds its Adam step graph, and the reference trains it", "[deep]") {
  using model = deep_mlp<64, 4>;
  const graph& G = kiln::step_graph<model, adam>::value;
  CHECK(G.num_leaves == 130 * 3 + 2);
  CHECK(G.num_outputs == 1 + 130 * 3);
  // the reference evaluator runs the graph (no backend instantiation: this case checks the IR, cheaply)
  auto leaves = kiln_test::random_leaves(G, 3, 99, -1, 1);
  for (int l = 0; l < G.num_leaves; ++l)  // Adam starts from zero moments
    if (G.leaves[l].kind == leaf_kind::state) leaves[static_cast<std::size_t>(l)].assign(leaves[static_cast<std::size_t>(l)].size(), 0.0);
  std::vector<double> hyp(16);
  adam{}.hypers(1, hyp.data());
  const double first = reference::step(G, 3, leaves, hyp);
  CHECK(std::isfinite(first));
  CHECK(first > 0);
}
