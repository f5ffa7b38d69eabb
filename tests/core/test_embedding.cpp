// Embeddings (nn/embedding.hpp, ops/indexing.hpp): the gather against its closed form, the scatter-add with
// repeated indices (within a sample and across the batch), gradients against finite differences in double, and
// the CPU backend fused and unfused against the reference. The CUDA kernels: test_cuda_codegen_layers.cpp;
// PyTorch's nn.Embedding: tests/torch/test_layers_torch.cpp.
#include "gradcheck.hpp"

#include <kiln/cpu/train_step.hpp>

#include <memory>
#include <random>

using namespace kiln;

namespace {

constexpr auto context = tokens<7, 3>("tok");  // three token ids per sample, each in [0, 7)
struct lookup { constexpr auto operator()() const { return embedding<7, 4>("emb")(context); } };
// A next-token model in the style of Bengio et al. 2003: embeddings of the context side by side, a tanh layer,
// the logits of the next token.
struct next_token {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(embedding<7, 4>{}, dense<6>{}, kiln::tanh, dense<7>{})(context), labels<7>("y"));
  }
};
// The table read twice (two lookups of one table): its gradient sums both scatter-adds.
struct tied_lookups {
  constexpr auto operator()() const {
    const auto e = embedding<7, 4>("emb");
    return sum(e(context) * e(tokens<7, 3>("other"))) + 0.5 * sum(e(context));
  }
};

}  // namespace

TEST_CASE("embedding: the lookup puts row idx[r, c] of the table at columns c·D … c·D + D − 1 of row r", "[embedding]") {
  constexpr const graph& G = forward_graph<lookup>::value;
  std::vector<std::vector<double>> v(static_cast<std::size_t>(G.num_leaves));
  for (int l = 0; l < G.num_leaves; ++l) {
    if (G.leaves[l].kind == leaf_kind::param)
      for (int i = 0; i < 7 * 4; ++i) v[static_cast<std::size_t>(l)].push_back(10.0 * (i / 4) + i % 4);  // row t: t0, t1, t2, t3
    else
      v[static_cast<std::size_t>(l)] = {0, 6, 6, 3, 3, 1};  // two samples
  }
  const auto out = reference::evaluate(G, 2, v)[static_cast<std::size_t>(G.outputs[0].node)].v;
  CHECK(out == std::vector<double>{0, 1, 2, 3, 60, 61, 62, 63, 60, 61, 62, 63, 30, 31, 32, 33, 30, 31, 32, 33, 10, 11, 12, 13});
}

TEST_CASE("embedding: the table's gradient adds each position's gradient into its token's row", "[embedding][gradients]") {
  // ∂/∂T Σ (lookup ⊙ R) = Σ over positions with token t of R's D values there
  struct weighted { constexpr auto operator()() const { return sum(embedding<7, 4>("emb")(context) * input<12>("R")); } };
  constexpr const graph& G = gradient_graph<weighted>::value;
  std::vector<std::vector<double>> v(static_cast<std::size_t>(G.num_leaves));
  std::vector<double> R(24);
  for (std::size_t i = 0; i < R.size(); ++i) R[i] = static_cast<double>(i + 1);
  int emb = -1, r = -1;
  for (int l = 0; l < G.num_leaves; ++l) {
    const std::string_view name = G.leaves[l].name.view();
    if (name == "emb.weight") { v[static_cast<std::size_t>(l)].assign(28, 0.5); emb = l; }
    else if (name == "R") { v[static_cast<std::size_t>(l)] = R; r = l; }
    else v[static_cast<std::size_t>(l)] = {2, 5, 2, 5, 5, 0};  // token 2 twice in sample 0; token 5 in both samples
  }
  REQUIRE(emb >= 0);
  REQUIRE(r >= 0);
  const auto val = reference::evaluate(G, 2, v);
  int k = 0;
  for (int l = 0; l < G.num_leaves; ++l) {
    if (G.leaves[l].kind != leaf_kind::param) continue;
    ++k;
    if (l != emb) continue;
    const auto& g = val[static_cast<std::size_t>(G.outputs[k].node)].v;
    std::vector<double> want(28, 0.0);
    const int toks[6] = {2, 5, 2, 5, 5, 0};
    for (int p = 0; p < 6; ++p)
      for (int j = 0; j < 4; ++j) want[static_cast<std::size_t>(toks[p] * 4 + j)] += R[static_cast<std::size_t>(p * 4 + j)];
    CHECK(g == want);
  }
}

TEST_CASE("embedding: gradients equal finite differences", "[embedding][gradients]") {
  for (std::uint64_t seed : {51u, 52u})
    for (long batch : {1L, 5L}) {
      INFO("seed " << seed << ", batch " << batch);
      constexpr const graph& A = gradient_graph<next_token>::value;
      kiln_test::check_against_finite_differences(A, batch, kiln_test::random_leaves(A, batch, seed), 1e-6);
      constexpr const graph& B = gradient_graph<tied_lookups>::value;
      kiln_test::check_against_finite_differences(B, batch, kiln_test::random_leaves(B, batch, seed), 1e-6);
    }
}

namespace {
// Trains the next-token model for a few steps fused, unfused and on the reference; compares losses and every
// parameter and optimizer state after each step.
void compare_next_token(long batch, std::uint64_t seed) {
  INFO("batch " << batch << ", seed " << seed);
  const adam opt{.lr = 0.02};
  auto fused = std::make_unique<cpu::train_step<next_token, adam, fusion::fused>>(opt, seed);
  auto unfused = std::make_unique<cpu::train_step<next_token, adam, fusion::unfused>>(opt, seed);
  const graph& G = decltype(fused)::element_type::G;
  std::mt19937_64 rng(seed);
  std::vector<std::vector<double>> leaves(static_cast<std::size_t>(G.num_leaves));
  std::vector<std::int32_t> tok(static_cast<std::size_t>(batch * 3)), y(static_cast<std::size_t>(batch));
  for (auto& t : tok) t = static_cast<std::int32_t>(rng() % 7);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = tok[3 * i + 1];  // learnable: the middle token
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    auto& v = leaves[static_cast<std::size_t>(l)];
    if (info.kind == leaf_kind::param || info.kind == leaf_kind::state) {
      const auto p = fused->param(info.name.view());
      v.assign(p.begin(), p.end());
    } else if (info.name.view() == "tok") {
      v.assign(tok.begin(), tok.end());
    } else {
      v.assign(y.begin(), y.end());
    }
  }
  for (int step = 1; step <= 4; ++step) {
    INFO("step " << step);
    std::vector<double> h(16);
    opt.hypers(step, h.data());
    const double ref = reference::step(G, batch, leaves, h);
    const float lf = fused->run(batch, {{"tok", tok}, {"y", y}});
    const float lu = unfused->run(batch, {{"tok", tok}, {"y", y}});
    CHECK(lf == Approx(ref).epsilon(2e-5));
    CHECK(lu == Approx(ref).epsilon(2e-5));
    for (int l = 0; l < G.num_leaves; ++l) {
      const leaf_info& info = G.leaves[l];
      if (info.kind != leaf_kind::param && info.kind != leaf_kind::state) continue;
      const auto a = fused->param(info.name.view()), b = unfused->param(info.name.view());
      const auto& want = leaves[static_cast<std::size_t>(l)];
      for (std::size_t j = 0; j < want.size(); ++j) {
        INFO(std::string(info.name.view()) << "[" << j << "]");
        REQUIRE(a[j] == Approx(want[j]).epsilon(1e-4).margin(2e-5));
        REQUIRE(b[j] == Approx(want[j]).epsilon(1e-4).margin(2e-5));
      }
    }
  }
}
}  // namespace

TEST_CASE("embedding: fused == unfused == reference on the CPU", "[embedding][backend]") {
  for (long batch : {1L, 6L, 70L}) compare_next_token(batch, 61);
}

TEST_CASE("embedding: a token outside the vocabulary is refused when the batch is bound, naming it", "[embedding]") {
  cpu::train_step<next_token, adam> step(adam{}, 1);
  const std::vector<std::int32_t> tok = {1, 2, 7}, y = {0};
  CHECK_THROWS_WITH(step.run(1, {{"tok", tok}, {"y", y}}), Catch::Contains("label 7 at index 2 of 'tok' is outside [0, 7)"));
  CHECK(step.param("emb1.weight").size() == 28);
}
