// Convolution and pooling (nn/conv.hpp, ops/window.hpp, ops/window_math.hpp): forward values against closed
// forms, the max-pool tie rule, gradients against finite differences in double (stride, padding, dilation,
// groups, padded pooling borders, a batch of 1), the CPU backend fused and unfused against the reference over
// several Adam steps, and poolings run in the pass of the kernel that stores their map against pooling apart
// (and a max-pool that keeps its corners for its adjoint against the map stored).
// PyTorch's layers: tests/torch/test_layers_torch.cpp; CUDA: tests/cuda/test_cuda_codegen_layers.cpp.
#include "cnn_compare.hpp"
#include "gradcheck.hpp"

#include <kiln/cpu/train_step.hpp>
#include <kiln/train/checkpoint.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

using namespace kiln;

namespace {

// 2 channels of 5×5 → conv 3×3 pad 1 → relu → max_pool 2 (stride 2, on a 5×5 map: 2×2) → flatten → dense
struct small_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 3, 3, 1, 1>{}, relu, max_pool2d<2>{}, flatten, dense<4>{})(image<2, 5, 5>("x")),
                         labels<4>("y"));
  }
};
// Every geometry at once: stride 2 with padding, dilation 2, grouped (and depthwise) convolutions without bias,
// padded max and average pooling with strides that overlap, global average pooling.
struct geometry_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 4, 3, 2, 1>{},                // 7×7 → 4×4
                                        kiln::tanh,
                                        conv2d<4, 4, 2, 1, 1, 2, 2, false>{},   // dilation 2, 2 groups: 4×4
                                        max_pool2d<3, 2, 1>{},                  // 4×4 → 2×2, padded
                                        conv2d<4, 4, 1, 1, 0, 1, 4>{},          // depthwise 1×1
                                        avg_pool2d<2, 1, 1>{},                  // 2×2 → 3×3, padding counted
                                        kiln::gelu,
                                        global_avg_pool,
                                        dense<3>{})(image<2, 7, 7>("x")),
                         labels<3>("y"));
  }
};

// conv → batch_norm → relu → max_pool → tanh → conv → gelu → avg_pool → batch_norm → relu → dense: the CPU
// schedule runs each pooling and each pooling's input adjoint in the pass of the kernel that stores its map
// (executor followers): the max-pool in that of batch norm's y, the average pool in the gelu's, their adjoints in
// those of the tanh's and batch norm's input adjoints
struct chained_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 4, 3, 1, 1>{}, batch_norm<4>{}, relu, max_pool2d<2>{}, kiln::tanh, conv2d<4, 4, 3, 1, 1>{},
                                        kiln::gelu, avg_pool2d<2, 1, 1>{}, batch_norm<4>{}, relu, flatten, dense<3>{})(image<2, 6, 6>("x")),
                         labels<3>("y"));
  }
};

struct conv_only { constexpr auto operator()() const { return conv2d<1, 1, 2, 1, 0, 1, 1, false>("c")(image<1, 3, 3>("x")); } };
struct pool_only { constexpr auto operator()() const { return max_pool2d<2, 1>{}(image<1, 2, 3>("x")); } };


}  // namespace

TEST_CASE("conv2d: each output is the window's dot product with the kernel", "[conv]") {
  constexpr const graph& G = forward_graph<conv_only>::value;
  // x = 1 … 9 in a 3×3 map, kernel [[1, 2], [3, 4]]: y[0, 0] = 1 + 2·2 + 3·4 + 4·5 = 37, …
  const auto v = kiln_test::leaves_by_name(G, {{"x", {1, 2, 3, 4, 5, 6, 7, 8, 9}}, {"c.weight", {1, 2, 3, 4}}});
  const auto out = reference::evaluate(G, 1, v)[static_cast<std::size_t>(G.outputs[0].node)].v;
  CHECK(out == std::vector<double>{37, 47, 67, 77});
  CHECK(G.nodes[G.outputs[0].node].shape == dims{batch, 4});
}

TEST_CASE("max_pool2d: the first maximum of a window takes its gradient (PyTorch's tie rule)", "[conv][gradients]") {
  // 1×2×3 map [[5, 5, 1], [5, 2, 5]], windows 2×2 at stride 1: both windows' maximum 5 is tied; the first in scan
  // order is (0, 0) for window 0 and (0, 1) for window 1.
  struct weighted { constexpr auto operator()() const { return sum(max_pool2d<2, 1>{}(image<1, 2, 3>("x")) * input<2>("R")); } };
  constexpr const graph& F = forward_graph<pool_only>::value;
  const auto fv = kiln_test::leaves_by_name(F, {{"x", {5, 5, 1, 5, 2, 5}}});
  CHECK(reference::evaluate(F, 1, fv)[static_cast<std::size_t>(F.outputs[0].node)].v == std::vector<double>{5, 5});
  // the gradient with respect to x, through a parameter-free graph: d/dx Σ R·pool(x), x a parameter here
  struct as_param {
    constexpr auto operator()() const {
      auto x = with_map<feature_map{1, 2, 3}>(param<1, 6>("x"));
      return sum(max_pool2d<2, 1>{}(x) * input<2>("R"));
    }
  };
  constexpr const graph& G = gradient_graph<as_param>::value;
  const auto v = kiln_test::leaves_by_name(G, {{"x", {5, 5, 1, 5, 2, 5}}, {"R", {10, 100}}});
  const auto val = reference::evaluate(G, 1, v);
  CHECK(val[static_cast<std::size_t>(G.outputs[1].node)].v == std::vector<double>{10, 100, 0, 0, 0, 0});
}

TEST_CASE("conv and pooling: gradients equal finite differences", "[conv][gradients]") {
  for (std::uint64_t seed : {71u, 72u})
    for (long batch : {1L, 3L}) {
      INFO("seed " << seed << ", batch " << batch);
      constexpr const graph& A = gradient_graph<small_cnn>::value;
      kiln_test::check_against_finite_differences(A, batch, kiln_test::random_leaves(A, batch, seed), 1e-6);
      constexpr const graph& B = gradient_graph<geometry_cnn>::value;
      kiln_test::check_against_finite_differences(B, batch, kiln_test::random_leaves(B, batch, seed), 1e-6);
    }
}


TEST_CASE("conv and pooling: fused == unfused == reference on the CPU", "[conv][backend]") {
  for (long batch : {1L, 5L, 33L}) {
    kiln_test::compare_cnn<small_cnn, 50, 4>(batch, 81);
    kiln_test::compare_cnn<geometry_cnn, 98, 3>(batch, 82);
  }
}

TEST_CASE("conv2d: names and PyTorch shapes of its parameters", "[conv]") {
  constexpr const graph& G = step_graph<small_cnn, adam>::value;
  bool weight = false, bias = false;
  for (int l = 0; l < G.num_leaves; ++l) {
    const leaf_info& info = G.leaves[l];
    if (info.name.view() == "conv1.weight") {
      weight = true;
      CHECK(info.shape == dims{3, 18});
      CHECK(train::torch_shape(info) == std::vector<std::int64_t>{3, 2, 3, 3});
    }
    if (info.name.view() == "conv1.bias") {
      bias = true;
      CHECK(train::torch_shape(info) == std::vector<std::int64_t>{3});
    }
  }
  CHECK(weight);
  CHECK(bias);
}

TEST_CASE("nn::torch_sequential names parameters and state as torch.nn.Sequential's state_dict", "[conv][names]") {
  struct indexed {
    constexpr auto operator()() const {
      return cross_entropy(nn::torch_sequential(conv2d<1, 2, 3, 1, 1, 1, 1, false>{}, batch_norm<2>{}, relu, max_pool2d<2>{},
                                                flatten, dense<4>{}, relu, kiln::dropout{.p = 0.1}, dense<3>("head"))(image<1, 4, 4>("x")),
                           labels<3>("y"));
    }
  };
  constexpr const graph& G = step_graph<indexed, sgd>::value;
  std::vector<std::string> names;
  for (int l = 0; l < G.num_leaves; ++l)
    if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state) names.emplace_back(G.leaves[l].name.view());
  std::sort(names.begin(), names.end());
  // Sequential(Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear, ReLU, Dropout, Linear): modules 0 … 8; a
  // layer given a name keeps it
  CHECK(names == std::vector<std::string>{"0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var",
                                          "1.weight", "5.bias", "5.weight", "head.bias", "head.weight"});
}

// Follower K of a program's plan (a pooling run in its leader's pass): its output after the step, against the
// pooling run on its own over the whole batch from the same inputs, bit for bit.
template <class PlanHolder, int K>
void check_follower(const cpu::program<PlanHolder>& prog, long batch) {
  // (a max-pool keeping its corners, and its adjoint, have no map to pool again: check_corners; a weight gradient
  // sums its samples in another grouping, and its map may be kept in scratch: check_same_step)
  using exec = cpu::executor<PlanHolder>;
  constexpr const plan& P = PlanHolder::value;
  if constexpr (exec::followers.leader_of[K] >= 0 && exec::corners.reader_of[K] < 0 && exec::corners.source_of[K] < 0 &&
                P.g.nodes[P.kernels[K].anchor].kind != op::conv2d_dw) {
    constexpr node nd = P.g.nodes[P.kernels[K].anchor];
    static constexpr window w = P.g.windows[nd.leaf];
    INFO("kernel " << K << " (" << ops::name_of(nd.kind) << ")");
    const long n = batch * nd.shape.cols;
    std::vector<float> alone(static_cast<std::size_t>(n));
    cpu::window_rows<ops::window_code_of(nd.kind), w>(prog.node_value(nd.in[0]), nd.in[1] >= 0 ? prog.node_value(nd.in[1]) : nullptr,
                                                      alone.data(), 0, batch, nullptr);
    const float* in_pass = prog.node_value(P.kernels[K].anchor);
    CHECK(std::equal(alone.begin(), alone.end(), in_pass));
  }
}
template <class PlanHolder, std::size_t... K>
void check_followers(const cpu::program<PlanHolder>& prog, long batch, std::index_sequence<K...>) {
  (check_follower<PlanHolder, static_cast<int>(K)>(prog, batch), ...);
}

// Max-pool K keeps its windows' corners for its adjoint (executor argmax pooling), so that its map is never stored:
// against a masked run of the same step (every kernel apart, the map stored), whose forward has the same bits (its
// column sums ride in no other pass), the pooled map, the corners (those of the stored map) and the adjoint
// scattered by them (against max-pool's adjoint of the stored map, from the same output adjoint), bit for bit. An
// adjoint rebuilt in its readers' passes (executor rebuilt) is not stored either: the masked run's is checked, and
// its readers' results are (check_same_step).
template <class PlanHolder, int K>
void check_corners(const cpu::program<PlanHolder>& kept, const cpu::program<PlanHolder>& apart, long batch) {
  constexpr int reader = cpu::executor<PlanHolder>::corners.reader_of[K];
  if constexpr (reader >= 0) {
    constexpr const plan& P = PlanHolder::value;
    constexpr node pool = P.g.nodes[P.kernels[K].anchor], adjoint = P.g.nodes[P.kernels[reader].anchor];
    static constexpr window w = P.g.windows[pool.leaf];
    INFO("max-pool kernel " << K << ", its adjoint kernel " << reader);
    const auto same = [](const float* a, const float* b, long n) { return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(float)) == 0; };
    const float* map = apart.node_value(pool.in[0]);
    CHECK(same(kept.node_value(P.kernels[K].anchor), apart.node_value(P.kernels[K].anchor), batch * pool.shape.cols));
    const long bytes = batch * cpu::pool::argmax_bytes_per_sample<w>;
    std::vector<float> pooled(static_cast<std::size_t>(batch * pool.shape.cols));
    std::vector<std::uint8_t> corners(static_cast<std::size_t>(bytes));
    cpu::pool::max_forward_argmax<w>(map, pooled.data(), corners.data(), batch);
    CHECK(std::memcmp(kept.node_value(pool.in[0]), corners.data(), static_cast<std::size_t>(bytes)) == 0);
    std::vector<float> gx(static_cast<std::size_t>(batch * adjoint.shape.cols));
    cpu::pool::max_adjoint<w>(map, kept.node_value(adjoint.in[1]), gx.data(), 0, batch);
    const bool rebuilt = cpu::executor<PlanHolder>::rebuilt.rebuilt[reader];
    CHECK(same((rebuilt ? apart : kept).node_value(P.kernels[reader].anchor), gx.data(), batch * adjoint.shape.cols));
  }
}

// How far a run's values are from another's, and whether within float rounding (see check_same_step).
struct difference {
  double largest = 0, scale = 1e-30;  // the largest |a − b| and the largest |b|
  bool small() const { return largest <= 1e-5 * scale + 1e-6; }
};
inline difference difference_of(const float* a, const float* b, long n) {
  difference d;
  for (long e = 0; e < n; ++e) {
    d.largest = std::max(d.largest, std::abs(static_cast<double>(a[e]) - b[e]));
    d.scale = std::max(d.scale, std::abs(static_cast<double>(b[e])));
  }
  return d;
}

// Every node a step stores, the same in a masked run of it (every kernel apart, every node stored), but the maps
// the fused schedule keeps elsewhere (a max-pool's map holding its corners, a rebuilt adjoint's map, the map a
// weight gradient in its leader's pass sums against) and the column sums it adds per channel straight into their
// channel sums (executor totals): what reads such a map reads the right samples' rows. To float rounding, not bit
// for bit: a column sum riding in another kernel's pass may be split between more tasks than when it runs apart
// (its work counts the host's too), channel totals add each row's channel first, a weight gradient in its leader's
// pass adds its samples a few at a time, and some sums nearly cancel (batch norm's Σ g: values of 1e-8 from terms of 1e-1), hence an absolute floor
// of 1e-6.
template <class PlanHolder>
void check_same_step(const cpu::program<PlanHolder>& kept, const cpu::program<PlanHolder>& apart, long batch) {
  using exec = cpu::executor<PlanHolder>;
  constexpr const plan& P = PlanHolder::value;
  int compared = 0;
  for (int i = 0; i < P.g.size; ++i) {
    const op_class cls = ops::class_of(P.g.nodes[i].kind);
    if (!P.materialized[i] || cls == op_class::leaf || P.assign[i] >= 0) continue;
    bool elsewhere = false;
    for (int k = 0; k < P.num_kernels; ++k)
      elsewhere = elsewhere || (exec::corners.reader_of[k] >= 0 && P.g.nodes[P.kernels[k].anchor].in[0] == i) ||
                  (exec::rebuilt.rebuilt[k] && P.kernels[k].anchor == i) || exec::private_maps.of[k] == i ||
                  (exec::totals.target_of[k] >= 0 && P.kernels[k].anchor == i);
    if (elsewhere) continue;
    const dims s = P.g.nodes[i].shape;
    const long n = cpu::resolve(s.rows, batch) * cpu::resolve(s.cols, batch);
    const difference d = difference_of(kept.node_value(i), apart.node_value(i), n);
    INFO("node " << i << " (" << ops::name_of(P.g.nodes[i].kind) << "): largest difference " << d.largest << ", largest value " << d.scale);
    CHECK(d.small());
    ++compared;
  }
  CHECK(compared > 30);
}

template <class PlanHolder, std::size_t... K>
void check_all_corners(const cpu::program<PlanHolder>& kept, const cpu::program<PlanHolder>& apart, long batch, std::index_sequence<K...>) {
  (check_corners<PlanHolder, static_cast<int>(K)>(kept, apart, batch), ...);
}

// One momentum step of Model at `batch` through the fused schedule and through a masked run of it (every kernel
// apart): the followers (check_followers), the corners (check_all_corners), every stored node (check_same_step) and
// the parameters and state updated in place.
template <class Model>
void check_schedule_against_apart(long batch) {
  using plan_holder = typename cpu::train_step<Model, momentum, fusion::fused>::plan_holder;
  const plan& P = plan_holder::value;
  const momentum opt{.lr = 0.05, .momentum = 0.9};
  std::vector<float> hypers(16);
  {
    std::vector<double> h(16);
    opt.hypers(1, h.data());
    std::copy(h.begin(), h.end(), hypers.begin());
  }
  INFO("batch " << batch);
  std::mt19937 rng(static_cast<unsigned>(batch));
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<std::vector<float>> leaves(static_cast<std::size_t>(P.g.num_leaves));
  for (int l = 0; l < P.g.num_leaves; ++l) {
    const leaf_info& info = P.g.leaves[l];
    auto& v = leaves[static_cast<std::size_t>(l)];
    v.resize(static_cast<std::size_t>(cpu::resolve(info.shape.rows, batch) * cpu::resolve(info.shape.cols, batch)));
    for (auto& e : v) e = info.kind == leaf_kind::labels ? static_cast<float>(rng() % 3) : normal(rng);
  }
  auto leaves_apart = leaves;  // the step updates its parameters in place
  auto prog = std::make_unique<cpu::program<plan_holder>>();
  for (int l = 0; l < P.g.num_leaves; ++l) prog->bind_leaf(l, leaves[static_cast<std::size_t>(l)].data());
  prog->run(batch, hypers.data());
  check_followers(*prog, batch, std::make_index_sequence<plan_holder::value.num_kernels>{});
  auto apart = std::make_unique<cpu::program<plan_holder>>();
  const std::vector<char> every_kernel(static_cast<std::size_t>(P.num_kernels), 1);
  apart->set_kernel_mask(every_kernel.data(), nullptr, nullptr);
  for (int l = 0; l < P.g.num_leaves; ++l) apart->bind_leaf(l, leaves_apart[static_cast<std::size_t>(l)].data());
  apart->run(batch, hypers.data());
  check_all_corners(*prog, *apart, batch, std::make_index_sequence<plan_holder::value.num_kernels>{});
  check_same_step(*prog, *apart, batch);
  for (std::size_t l = 0; l < leaves.size(); ++l) {
    const difference d = difference_of(leaves[l].data(), leaves_apart[l].data(), static_cast<long>(leaves[l].size()));
    INFO("leaf " << P.g.leaves[l].name.view() << ": largest difference " << d.largest << ", largest value " << d.scale);
    CHECK(d.small());
  }
}

// The poolings that run in the pass of the kernel storing their map (executor followers) give the same bits as
// pooling the whole batch on its own after the step, at a batch of 1 (one task), 7 and 40 (split between threads);
// the max-pool keeps its corners (check_corners), its adjoint's map is rebuilt in its readers' passes, the step
// equals a masked run of it (every kernel apart) and the reference.
TEST_CASE("conv and pooling: poolings in the pass of the kernel storing their map == pooled apart, bit for bit", "[conv][backend]") {
  using plan_holder = cpu::train_step<chained_cnn, momentum, fusion::fused>::plan_holder;
  using exec = cpu::executor<plan_holder>;
  const plan& P = plan_holder::value;
  STATIC_REQUIRE(exec::follower_count() >= 4);
  std::vector<op> followed;
  for (int k = 0; k < P.num_kernels; ++k)
    if (exec::followers.leader_of[k] >= 0) followed.push_back(P.g.nodes[P.kernels[k].anchor].kind);
  for (const op kind : {op::max_pool2d, op::max_pool2d_dx, op::avg_pool2d, op::avg_pool2d_dx})
    CHECK(std::count(followed.begin(), followed.end(), kind) == 1);
  // batch norm's y is read by the max-pool and its adjoint only: the pool keeps its corners instead; and that
  // adjoint's map is read only by batch norm's backward (its sums, then its input adjoint): rebuilt in their passes
  STATIC_REQUIRE(exec::corners_count() == 1);
  STATIC_REQUIRE(exec::rebuilt_count() == 1);
  // an unfused step stores every node (nan_guard reads them back): neither
  using unfused_exec = cpu::executor<cpu::train_step<chained_cnn, momentum, fusion::unfused>::plan_holder>;
  STATIC_REQUIRE(unfused_exec::corners_count() == 0);
  STATIC_REQUIRE(unfused_exec::rebuilt_count() == 0);
  for (long batch : {1L, 7L, 40L}) {
    check_schedule_against_apart<chained_cnn>(batch);
    kiln_test::compare_cnn<chained_cnn, 72, 3>(batch, 83, momentum{.lr = 0.05, .momentum = 0.9});
  }
}

namespace {
// The Fashion-MNIST CNN's first block, narrower: its max-pool adjoint's map (6272 floats a sample) is rebuilt ten
// samples at a time, so that at batch 45 each task's rows take several rounds, the last one partial.
struct wide_block_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 8, 3, 1, 1>{}, batch_norm<8>{}, relu, max_pool2d<2>{}, flatten, dense<3>{})(image<1, 28, 28>("x")),
                         labels<3>("y"));
  }
};
}  // namespace
TEST_CASE("conv and pooling: a max-pool adjoint rebuilt in its readers' passes, several rounds a task", "[conv][backend]") {
  using exec = cpu::executor<cpu::train_step<wide_block_cnn, momentum, fusion::fused>::plan_holder>;
  STATIC_REQUIRE(exec::corners_count() == 1);
  STATIC_REQUIRE(exec::rebuilt_count() == 1);
  for (long batch : {1L, 45L}) check_schedule_against_apart<wide_block_cnn>(batch);
}

namespace {
// The same block with the Fashion-MNIST CNN's bias-free first convolution: its weight gradient (3×3 taps of one
// channel, narrower than a vector) then reads only batch norm's input adjoint, so it runs in that adjoint's pass, ten
// samples at a time, and the adjoint is never stored (with a bias, the bias gradient's sums come in between).
struct first_block_cnn {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<1, 8, 3, 1, 1, 1, 1, false>{}, batch_norm<8>{}, relu, max_pool2d<2>{}, flatten, dense<3>{})(
                             image<1, 28, 28>("x")),
                         labels<3>("y"));
  }
};
}  // namespace
TEST_CASE("conv: a first layer's weight gradient in the pass of batch norm's input adjoint, whose map is never stored", "[conv][backend]") {
  using exec = cpu::executor<cpu::train_step<first_block_cnn, momentum, fusion::fused>::plan_holder>;
  constexpr int narrow = 9 < cpu::lanes ? 1 : 0;  // 9 taps: narrower than a vector of 16 lanes, not of 8 or 4
  STATIC_REQUIRE(exec::weight_gradient_follower_count() == narrow);
  STATIC_REQUIRE(exec::private_map_count() == narrow);
  STATIC_REQUIRE(exec::rebuilt_count() == 1);  // that pass still rebuilds the max-pool adjoint's map it reads
  // unfused, the weight gradient follows the kernel storing its map, which stays stored (nan_guard reads it)
  using unfused_exec = cpu::executor<cpu::train_step<first_block_cnn, momentum, fusion::unfused>::plan_holder>;
  STATIC_REQUIRE(unfused_exec::weight_gradient_follower_count() == narrow);
  STATIC_REQUIRE(unfused_exec::private_map_count() == 0);
  // a bias gradient also reading the map keeps the weight gradient apart
  STATIC_REQUIRE(cpu::executor<cpu::train_step<wide_block_cnn, momentum, fusion::fused>::plan_holder>::weight_gradient_follower_count() == 0);
  // batch 1: one task, one round; 45: two tasks of three rounds, the last partial
  for (long batch : {1L, 45L}) {
    check_schedule_against_apart<first_block_cnn>(batch);
    kiln_test::compare_cnn<first_block_cnn, 784, 3>(batch, 91, momentum{.lr = 0.05, .momentum = 0.9});
  }
}
