// Tensors of any rank (expr/tensor.hpp, ops/axes.hpp, ops/axes_math.hpp): reshape, permute, slice, concat,
// broadcasting by numpy's rules, and sums, means and maxima over any axes — forward values against closed forms,
// gradients against finite differences in double, the CPU backend fused and unfused against the reference.
// Against PyTorch: tests/torch/test_tensor_torch.cpp; CUDA: tests/cuda/test_cuda_codegen_layers.cpp.
#include "cnn_compare.hpp"
#include "gradcheck.hpp"
#include "tensor_model.hpp"

#include <kiln/train/checkpoint.hpp>

using namespace kiln;

namespace {

std::vector<double> iota_values(int n, double from = 0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = from + i;
  return v;
}
template <class Model>
std::vector<double> forward_values(long batch, std::initializer_list<std::pair<std::string_view, std::vector<double>>> values) {
  constexpr const graph& G = forward_graph<Model>::value;
  return reference::evaluate(G, batch, kiln_test::leaves_by_name(G, values))[static_cast<std::size_t>(G.outputs[0].node)].v;
}

}  // namespace

TEST_CASE("tensor shapes: storage and static shapes of the results", "[tensor]") {
  constexpr auto x = input<2, 3, 4>("x");
  static_assert(decltype(x)::tshape == shape_from<batch, 2, 3, 4>());
  static_assert(decltype(x)::shape == dims{batch, 24});
  static_assert(decltype(permute<0, 3, 1, 2>(x))::tshape == shape_from<batch, 4, 2, 3>());
  static_assert(decltype(reshape<-1, 6, 4>(x))::tshape == shape_from<batch, 6, 4>());
  static_assert(decltype(slice<2, 1, 3>(x))::tshape == shape_from<batch, 2, 2, 4>());
  static_assert(decltype(slice<-1, 0, 1>(x))::shape == dims{batch, 6});
  static_assert(decltype(concat<1>(x, x, x))::tshape == shape_from<batch, 6, 3, 4>());
  static_assert(decltype(sum<1, 3>(x))::tshape == shape_from<batch, 3>());
  static_assert(decltype(sum_keepdim<1, 3>(x))::tshape == shape_from<batch, 1, 3, 1>());
  static_assert(decltype(mean<0, 2>(x))::tshape == shape_from<2, 4>());
  static_assert(decltype(max<-1>(x))::tshape == shape_from<batch, 2, 3>());
  constexpr auto p = tensor_param<3, 1>("p");
  static_assert(decltype(x + p)::tshape == shape_from<batch, 2, 3, 4>());
  static_assert(decltype(p * tensor_param<5, 1, 4>("q"))::tshape == shape_from<5, 3, 4>());
  static_assert(decltype(broadcast_to<-1, 2, 3, 4>(input<1, 3, 1>("z")))::shape == dims{batch, 24});
  // a batched rank-4 tensor is a feature map the conv layers take
  static_assert(decltype(reshape<-1, 2, 3, 4>(input<24>("v")))::map == feature_map{2, 3, 4});
}

TEST_CASE("permute, slice, concat, reshape: values move as in PyTorch", "[tensor]") {
  // x[n, i, j, k] = 12·i + 4·j + k over [2, 3, 4] (one sample): permute(0, 3, 1, 2) puts k first
  struct permuted { constexpr auto operator()() const { return permute<0, 3, 1, 2>(input<2, 3, 4>("x")); } };
  const auto p = forward_values<permuted>(1, {{"x", iota_values(24)}});
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) CHECK(p[static_cast<std::size_t>((k * 2 + i) * 3 + j)] == 12 * i + 4 * j + k);
  // x[:, :, 1:3, :]
  struct sliced { constexpr auto operator()() const { return slice<2, 1, 3>(input<2, 3, 4>("x")); } };
  const auto s = forward_values<sliced>(2, {{"x", iota_values(48)}});
  REQUIRE(s.size() == 32);
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 4; ++k) CHECK(s[static_cast<std::size_t>(((n * 2 + i) * 2 + j) * 4 + k)] == 24 * n + 12 * i + 4 * (j + 1) + k);
  // cat([a, b], dim=2) of [1, 2] and [1, 3] rows: [a0 a1 b0 b1 b2] per sample
  struct joined {
    constexpr auto operator()() const { return concat<2>(input<1, 2>("a"), input<1, 3>("b")); }
  };
  CHECK(forward_values<joined>(2, {{"a", {1, 2, 3, 4}}, {"b", {5, 6, 7, 8, 9, 10}}}) == std::vector<double>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10});
  // a parameter [2, 3] reshaped to [3, 2] and transposed by permute: the storage changes rows
  struct regrouped { constexpr auto operator()() const { return permute<1, 0>(reshape<3, 2>(tensor_param<2, 3>("p"))); } };
  CHECK(forward_values<regrouped>(1, {{"p", iota_values(6)}}) == std::vector<double>{0, 2, 4, 1, 3, 5});
}

TEST_CASE("broadcasting by numpy's rules", "[tensor]") {
  // [batch, 2, 3] + [2, 1] (a parameter): p[i] added along each row i
  struct plus_column { constexpr auto operator()() const { return input<2, 3>("x") + tensor_param<2, 1>("p"); } };
  CHECK(forward_values<plus_column>(1, {{"x", iota_values(6)}, {"p", {100, 200}}}) == std::vector<double>{100, 101, 102, 203, 204, 205});
  // [batch, 2, 1] · [3]: an outer product per sample
  struct outer { constexpr auto operator()() const { return input<2, 1>("x") * tensor_param<3>("p"); } };
  CHECK(forward_values<outer>(2, {{"x", {1, 2, 3, 4}}, {"p", {1, 10, 100}}}) ==
        std::vector<double>{1, 10, 100, 2, 20, 200, 3, 30, 300, 4, 40, 400});
  // two parameters [2, 1, 3] and [4, 1]: [2, 4, 3]
  struct both { constexpr auto operator()() const { return tensor_param<2, 1, 3>("a") - tensor_param<4, 1>("b"); } };
  const auto v = forward_values<both>(1, {{"a", iota_values(6)}, {"b", {0, 10, 20, 30}}});
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) CHECK(v[static_cast<std::size_t>((i * 4 + j) * 3 + k)] == 3 * i + k - 10 * j);
}

TEST_CASE("sum, mean and max over any axes", "[tensor]") {
  // x [2 samples, 2, 3]: sum over axis 1, mean over axis 2, max over axes (0, 2) is not allowed, max over 2
  struct sum1 { constexpr auto operator()() const { return sum<1>(input<2, 3>("x")); } };
  CHECK(forward_values<sum1>(2, {{"x", iota_values(12)}}) == std::vector<double>{3, 5, 7, 15, 17, 19});
  struct mean2 { constexpr auto operator()() const { return mean<2>(input<2, 3>("x")); } };
  CHECK(forward_values<mean2>(2, {{"x", iota_values(12)}}) == std::vector<double>{1, 4, 7, 10});
  struct mean02 { constexpr auto operator()() const { return mean<0, 2>(input<2, 3>("x")); } };
  CHECK(forward_values<mean02>(2, {{"x", iota_values(12)}}) == std::vector<double>{(1 + 7) / 2.0, (4 + 10) / 2.0});
  struct max1 { constexpr auto operator()() const { return max<1>(input<3, 2>("x")); } };
  CHECK(forward_values<max1>(1, {{"x", {1, 9, 7, 2, 3, 9}}}) == std::vector<double>{7, 9});
  // the first maximum takes the gradient: d/dx Σ r · max over axis 0 of [[1, 9], [7, 2], [3, 9]]
  struct weighted {
    constexpr auto operator()() const { return sum(max<0>(tensor_param<3, 2>("x")) * tensor_param<2>("r")); }
  };
  constexpr const graph& G = gradient_graph<weighted>::value;
  const auto v = kiln_test::leaves_by_name(G, {{"x", {1, 9, 7, 2, 3, 9}}, {"r", {10, 100}}});
  const auto val = reference::evaluate(G, 1, v);
  // output 1 is the gradient of the first parameter, x (emitted first)
  REQUIRE(G.leaves[0].name.view() == "x");
  CHECK(val[static_cast<std::size_t>(G.outputs[1].node)].v == std::vector<double>{0, 100, 10, 0, 0, 0});
}


TEST_CASE("tensor ops: gradients equal finite differences", "[tensor][gradients]") {
  constexpr const graph& G = gradient_graph<kiln_test::axes_model>::value;
  for (std::uint64_t seed : {11u, 12u})
    for (long batch : {1L, 3L}) {
      INFO("seed " << seed << ", batch " << batch);
      kiln_test::check_against_finite_differences(G, batch, kiln_test::random_leaves(G, batch, seed), 1e-6);
    }
}

TEST_CASE("tensor ops: fused == unfused == reference on the CPU", "[tensor][backend]") {
  for (long batch : {1L, 4L, 37L}) kiln_test::compare_cnn<kiln_test::axes_model, 24, 3>(batch, 91);
}

namespace {
// A 1-D CNN over sequences [batch, 2, 9]: conv1d (padding), max_pool1d, a grouped dilated conv1d without bias,
// a padded avg_pool1d, then a dense head: every 1-D layer forward and backward.
struct sequence_cnn {
  constexpr auto operator()() const {
    auto h = nn::sequential(conv1d<2, 3, 3, 1, 1>{}, relu, max_pool1d<2>{},          // 9 → 9 → 4
                            conv1d<3, 3, 2, 1, 1, 2, 3, false>{}, kiln::tanh,          // 4 → 4
                            avg_pool1d<2, 1, 1>{})(input<2, 9>("x"));                   // 4 → 5
    static_assert(decltype(h)::shape.cols == 15);
    return cross_entropy(dense<3>("fc")(reshape<-1, 15>(h)), labels<3>("y"));
  }
};
}  // namespace

TEST_CASE("conv1d and 1-D pooling: gradients equal finite differences, the CPU equals the reference", "[tensor][conv]") {
  constexpr const graph& G = gradient_graph<sequence_cnn>::value;
  for (long batch : {1L, 3L}) kiln_test::check_against_finite_differences(G, batch, kiln_test::random_leaves(G, batch, 21), 1e-6);
  for (long batch : {1L, 6L}) kiln_test::compare_cnn<sequence_cnn, 18, 3>(batch, 22);
  constexpr const graph& S = step_graph<sequence_cnn, adam>::value;
  bool weight = false;
  for (int l = 0; l < S.num_leaves; ++l)
    if (S.leaves[l].name.view() == "conv1.weight") {
      weight = true;
      CHECK(train::torch_shape(S.leaves[l]) == std::vector<std::int64_t>{3, 2, 3});
    }
  CHECK(weight);
}

namespace {
// 2×2 pooling at stride 2 (the CPU's vectorized pair-window loops) over x + p, p a zero-initialised parameter:
// with x rounded to integers the windows hold ties, and p's gradient shows where each window's adjoint went. An
// odd map (5×5) leaves a last row and column outside every window.
// (Once p moves, x + p rounds differently in float and in double, and near-ties may go different ways.)
template <int H, int W>
struct tied_pool {
  constexpr auto operator()() const {
    auto h = max_pool2d<2>{}(input<2, H, W>("x") + tensor_param<2, H, W>("p"));
    return cross_entropy(dense<3>("fc")(flatten(h)), labels<3>("y"));
  }
};
}  // namespace

TEST_CASE("max_pool2d 2x2: ties go to the first maximum on the CPU as on the reference", "[tensor][conv]") {
  for (long batch : {1L, 5L}) {
    // lr 0 keeps p at 0 (so the ties stay, in float as in double); the momentum buffers hold the gradients
    kiln_test::compare_cnn<tied_pool<6, 6>, 72, 3>(batch, 31, momentum{.lr = 0}, true);
    kiln_test::compare_cnn<tied_pool<5, 5>, 50, 3>(batch, 32, momentum{.lr = 0}, true);
  }
}
