// The CPU backend's threaded paths give the reference's results: a contraction is split over threads by
// columns, by rows, or by the batch it contracts (weight gradients of a narrow layer), depending on its
// shape, and each split runs its epilogue on its own block. The models below are sized so that every split
// runs (see executor::run_contraction); each is trained on pools of 1, 2 and 3 threads and compared with the
// double-precision reference after every step; a single sample's convolution and product are shared between
// threads. Also: the per-kernel profile and the denormal mode.
#include "../core/step_feeds.hpp"

#include <kiln/cpu/fp_mode.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/kiln.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

using namespace kiln;

namespace {

// batch 2048 (every product above parallel_contraction_threshold): forward 96→80 splits by columns (5 vectors;
// by rows on 3 threads), 80→40 by rows (3 vectors), weight gradients by columns
struct wide_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<80>{}, relu, dense<40>{}, kiln::tanh, dense<3>{})(input<96>("x")),
                         labels<3>("y"));
  }
};
// batch 16384: the first layer's weight gradient [16, 24] is too narrow for columns or rows: split by the batch
struct narrow_model {
  constexpr auto operator()() const {
    return mse(nn::sequential(dense<16>{}, relu, dense<3>{})(input<24>("x")), target<3>("t"));
  }
};

// batch 512: the forward 256→128 splits by rows and its Wᵀ (32 K floats, see shared_packing_floats) is packed
// once, in shares, by all the row tasks
struct shared_packing_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<128>{}, relu, dense<3>{})(input<256>("x")), labels<3>("y"));
  }
};

// batch 1: the convolution (16 → 32 channels on 16 × 16, 1.2 M multiply-adds) shares its output channels between
// threads (conv_shares_sample_channels), and the 8192 → 96 layer's product (a 3 MB weight, parallel_stream_floats)
// splits its columns although it has one row
constexpr auto single_sample_net() {
  return nn::sequential(conv2d<16, 32, 3, 1, 1>{}, relu, flatten, dense<96>{}, kiln::tanh, dense<3>{});
}
struct single_sample_model {
  constexpr auto operator()() const { return cross_entropy(single_sample_net()(image<16, 16, 16>("x")), labels<3>("y")); }
};
struct single_sample_forward {
  constexpr auto operator()() const { return single_sample_net()(image<16, 16, 16>("x")); }
};

template <class Model>
void compare_threads(long batch, int threads, std::uint64_t seed) {
  INFO("threads " << threads << ", batch " << batch << ", seed " << seed);
  cpu::thread_pool pool(threads);
  cpu::train_step<Model, adam> step(adam{.lr = 1e-2}, seed);
  step.set_thread_pool(pool);
  const graph& G = decltype(step)::G;
  auto leaves = kiln_test::random_leaves(G, batch, seed + 7, -1, 1);
  const auto [xs, ts, ys] = kiln_test::start_from_step(step, leaves, "t");
  for (int s = 1; s <= 2; ++s) {
    INFO("step " << s);
    std::vector<double> hyp(16);
    adam{.lr = 1e-2}.hypers(s, hyp.data());
    const double ref = reference::step(G, batch, leaves, hyp);
    const float loss = ys.empty() ? step.run(batch, {{"x", xs}, {"t", ts}}) : step.run(batch, {{"x", xs}, {"y", ys}});
    CHECK(loss == Approx(ref).epsilon(1e-4));
    for (int l = 0; l < G.num_leaves; ++l) {
      const leaf_info& info = G.leaves[l];
      if (info.kind != leaf_kind::param && info.kind != leaf_kind::state) continue;
      INFO(info.name.view());
      const auto got = step.param(info.name.view());
      const auto& want = leaves[static_cast<std::size_t>(l)];
      double worst = 0;
      for (std::size_t i = 0; i < want.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - want[i]) / (1e-3 + std::abs(want[i])));
      CHECK(worst < 2e-3);
    }
  }
}

}  // namespace

TEST_CASE("threaded contractions split by columns and by rows match the reference", "[cpu][threads]") {
  for (int threads : {1, 2, 3}) compare_threads<wide_model>(2048, threads, 11);
}

TEST_CASE("row tasks that pack a shared B in parts match the reference", "[cpu][threads]") {
  for (int threads : {1, 2, 3}) compare_threads<shared_packing_model>(512, threads, 13);
}

TEST_CASE("a contraction over the batch split across threads matches the reference", "[cpu][threads]") {
  for (int threads : {1, 2, 3}) compare_threads<narrow_model>(16384, threads, 12);
}

TEST_CASE("a single sample shared between threads matches the reference", "[cpu][threads]") {
  STATIC_REQUIRE(cpu::conv_shares_sample_channels(window{16, 16, 16, 32, 3, 3, 1, 1, 1, 1}));
  for (int threads : {1, 2, 3}) compare_threads<single_sample_model>(1, threads, 14);
  // the inference function runs a single sample on its pool, with the values of one thread
  STATIC_REQUIRE(cpu::function<single_sample_forward>::single_sample_on_pool);
  cpu::train_step<single_sample_model, adam> step(adam{}, 3);
  cpu::function<single_sample_forward> f(step);
  std::vector<float> image(16 * 16 * 16);
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<float> pooled(3), serial(3);
  cpu::thread_pool two(2);
  auto ws = f.make_workspace(two);
  auto ws1 = f.make_workspace();
  f.run(ws, 1, {{"x", image}}, pooled);
  f.run(ws1, 1, {{"x", image}}, serial);
  CHECK(pooled == serial);
}

TEST_CASE("the per-kernel profile runs the same step and times every kernel", "[cpu][profile]") {
  cpu::train_step<wide_model, adam> plain(adam{}, 5), profiled(adam{}, 5);
  const long batch = 64;
  std::vector<float> xs(static_cast<std::size_t>(batch * 96));
  std::vector<std::int32_t> ys(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  for (std::size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<std::int32_t>(i % 3);
  std::vector<double> ns(static_cast<std::size_t>(decltype(profiled)::compiled_plan().num_kernels), 0.0);
  for (int s = 0; s < 3; ++s) {
    const float a = plain.run(batch, {{"x", xs}, {"y", ys}});
    const float b = profiled.run_profiled(batch, {{"x", xs}, {"y", ys}}, ns);
    CHECK(a == b);
  }
  const auto w1 = plain.param("fc1.weight"), w2 = profiled.param("fc1.weight");
  CHECK(std::equal(w1.begin(), w1.end(), w2.begin()));
  double total = 0;
  for (double t : ns) {
    CHECK(t >= 0);
    total += t;
  }
  CHECK(total > 0);
  std::vector<double> wrong(3);
  CHECK_THROWS_WITH(profiled.run_profiled(batch, {{"x", xs}, {"y", ys}}, wrong),
                    Catch::Contains("one entry per kernel") && Catch::Contains("given 3"));
}

namespace {
// 1e-30 · 1e-10 = 1e-40 is a denormal float: kept by IEEE arithmetic, 0 when denormals are flushed.
float tiny_product() {
  volatile float a = 1e-30f, b = 1e-10f;
  return a * b;
}
}  // namespace

TEST_CASE("denormals are flushed inside the scope and on the pool's threads, kept outside", "[cpu][fp_mode]") {
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
  REQUIRE(tiny_product() != 0.0f);  // the test process runs with IEEE denormals
  cpu::thread_pool pool(3);
  {
    const cpu::scoped_denormal_mode flush(true);
    CHECK(tiny_product() == 0.0f);
    std::atomic<int> flushed{0};
    pool.parallel_for(12, [&](int, int) { flushed += tiny_product() == 0.0f; });
    CHECK(flushed.load() == 12);
    {
      const cpu::scoped_denormal_mode keep(false);
      CHECK(tiny_product() != 0.0f);
    }
    CHECK(tiny_product() == 0.0f);
  }
  CHECK(tiny_product() != 0.0f);
  std::atomic<int> kept{0};
  pool.parallel_for(12, [&](int, int) { kept += tiny_product() != 0.0f; });
  CHECK(kept.load() == 12);  // workers follow the caller back to IEEE mode
#else
  WARN("skipped: no denormal control on this architecture");
#endif
}
