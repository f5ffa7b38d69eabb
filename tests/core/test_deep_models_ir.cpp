// Models past the old fixed capacities (64 leaves, 640 nodes, and a constexpr recursion that ended near 30
// layers), at the level of the IR: a graph's storage is sized by the model itself (ir/frozen.hpp), so depth is
// bounded only by compile time. No backend is instantiated here, so every compiler job builds this cheaply and
// checks that its constant evaluation copes; test_deep_models.cpp (built with the numerical sweeps) trains a
// 32-hidden-layer MLP on the CPU backend.
#include "deep_models.hpp"
#include "gradcheck.hpp"

#include <kiln/reference/evaluate.hpp>
#include <kiln/train/step_graph.hpp>

#include <catch2/catch.hpp>

#include <cmath>

using namespace kiln;
using kiln_test::deep_mlp;

namespace {

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

TEST_CASE("a 32-hidden-layer MLP's Adam step graph holds more than the old capacities", "[deep]") {
  const graph& G = step_graph<deep_mlp<32, 8>, adam>::value;
  // 33 dense layers: 66 parameters, each with Adam's two state tensors, plus x and y
  CHECK(G.num_leaves == 66 * 3 + 2);
  CHECK(G.num_leaves > 64);  // the old max_leaves
  CHECK(G.size > 640);       // the old max_nodes
  CHECK(G.num_outputs == 1 + 66 * 3);
  CHECK(G.leaves[G.num_leaves - 1].name.view() == "fc33.bias.exp_avg_sq");
}

TEST_CASE("a 64-hidden-layer MLP builds its Adam step graph, and the reference trains it", "[deep]") {
  const graph& G = step_graph<deep_mlp<64, 4>, adam>::value;
  CHECK(G.num_leaves == 130 * 3 + 2);
  CHECK(G.num_outputs == 1 + 130 * 3);
  auto leaves = kiln_test::random_leaves(G, 3, 99, -1, 1);
  for (int l = 0; l < G.num_leaves; ++l)  // Adam starts from zero moments
    if (G.leaves[l].kind == leaf_kind::state) leaves[static_cast<std::size_t>(l)].assign(leaves[static_cast<std::size_t>(l)].size(), 0.0);
  std::vector<double> hyp(16);
  adam{}.hypers(1, hyp.data());
  const double first = reference::step(G, 3, leaves, hyp);
  CHECK(std::isfinite(first));
  CHECK(first > 0);
}
