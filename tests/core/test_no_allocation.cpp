// A compiled step allocates nothing once it has seen its batch size: global operator new is counted.
#include "../sanitizer_build.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>


namespace {
std::atomic<long> allocations{0};
}
#if !KILN_TEST_SANITIZED  // AddressSanitizer brings its own operator new; counting needs ours
// g++ flags malloc/free inside a replaced operator new/delete as "mismatched"; the pairing here is consistent.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

// Under AddressSanitizer the counter above is not installed: a case says so and passes nothing off as checked.
#if KILN_TEST_SANITIZED
#define SKIP_UNDER_SANITIZERS()                                                                          \
  do {                                                                                                   \
    WARN("skipped: allocations cannot be counted under AddressSanitizer (it replaces operator new)"); \
    return;                                                                                              \
  } while (false)
#else
#define SKIP_UNDER_SANITIZERS() static_cast<void>(0)
#endif

namespace {
struct classifier {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<32>{}, kiln::relu, kiln::dense<16>{}, kiln::relu, kiln::dense<10>{});
    return kiln::cross_entropy(net(kiln::input<50>("x")), kiln::labels<10>("y"));
  }
};
}  // namespace

TEST_CASE("repeated training steps allocate nothing", "[allocation]") {
  SKIP_UNDER_SANITIZERS();
  kiln::cpu::train_step<classifier, kiln::adam> step;
  std::vector<float> x(256 * 50, 0.25f);
  std::vector<std::int32_t> y(256, 3);
  step.run(256, {{"x", x}, {"y", y}});  // first step at this batch size lays out memory
  const long before = allocations.load();
  for (int i = 0; i < 20; ++i) step.run(256, {{"x", x}, {"y", y}});
  // a smaller batch reuses the same memory
  step.run(100, {{"x", std::span<const float>(x).first(100 * 50)}, {"y", std::span<const std::int32_t>(y).first(100)}});
  CHECK(allocations.load() - before == 0);
}

namespace {
struct classifier_logits {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<32>{}, kiln::relu, kiln::dense<16>{}, kiln::relu, kiln::dense<10>{});
    return net(kiln::input<50>("x"));
  }
};
}  // namespace

TEST_CASE("repeated inference calls allocate nothing, at batch 1 and on a caller's workspace", "[allocation]") {
  SKIP_UNDER_SANITIZERS();
  kiln::cpu::train_step<classifier, kiln::adam> step;
  kiln::cpu::function<classifier_logits> f(step);
  auto ws = f.make_workspace();
  std::vector<float> x(64 * 50, 0.25f), out(64 * 10);
  f.run(64, {{"x", x}}, out);      // the first call at a batch size lays out memory (a batch: the pooled workspace)
  f.run(1, {{"x", std::span<const float>(x).first(50)}}, std::span<float>(out).first(10));  // one sample: the serial one
  f.run(ws, 64, {{"x", x}}, out);
  const long before = allocations.load();
  for (int i = 0; i < 20; ++i) {
    f.run(1, {{"x", std::span<const float>(x).first(50)}}, std::span<float>(out).first(10));
    f.run(ws, 1, {{"x", std::span<const float>(x).first(50)}}, std::span<float>(out).first(10));
    f.run(ws, 64, {{"x", x}}, out);
  }
  CHECK(allocations.load() - before == 0);
}

namespace {
// every CNN layer kind: convolution (its patches in the program's per-thread workspace), batch norm, pooling,
// dropout
constexpr auto cnn_net() {
  using namespace kiln;
  return nn::sequential(conv2d<2, 8, 3, 1, 1, 1, 1, false>{}, batch_norm<8>{}, relu, max_pool2d<2>{}, flatten,
                        dropout{.p = 0.25}, dense<4>{});
}
struct cnn {
  constexpr auto operator()() const { return kiln::cross_entropy(cnn_net()(kiln::image<2, 12, 12>("x")), kiln::labels<4>("y")); }
};
struct cnn_logits {
  constexpr auto operator()() const { return cnn_net()(kiln::image<2, 12, 12>("x")); }
};
}  // namespace

// Every thread of the pool must have run each convolution kernel by some later step without growing memory:
// with its scratch thread-local, the first conv task a pool thread happened to get (step 2 or 9) allocated.
TEST_CASE("repeated CNN training steps and inference calls allocate nothing", "[allocation]") {
  SKIP_UNDER_SANITIZERS();
  kiln::cpu::train_step<cnn, kiln::adam> step;
  std::vector<float> x(96 * 2 * 12 * 12, 0.25f);
  std::vector<std::int32_t> y(96, 1);
  step.run(96, {{"x", x}, {"y", y}});
  kiln::cpu::function<cnn_logits> f(step);
  std::vector<float> out(96 * 4);
  // a batch large enough to run in chunks of samples, on per-thread parts made by the first such call
  const long large = 2 * kiln::cpu::function<cnn_logits>::chunk_rows() + 3;
  REQUIRE(kiln::cpu::function<cnn_logits>::runs_in_chunks(large));
  std::vector<float> x_large(static_cast<std::size_t>(large * 2 * 12 * 12), 0.5f), out_large(static_cast<std::size_t>(large * 4));
  f.run(96, {{"x", x}}, out);
  f.run(1, {{"x", std::span<const float>(x).first(2 * 12 * 12)}}, std::span<float>(out).first(4));
  f.run(large, {{"x", x_large}}, out_large);
  const long before = allocations.load();
  for (int i = 0; i < 20; ++i) {
    step.run(96, {{"x", x}, {"y", y}});
    f.run(96, {{"x", x}}, out);
    f.run(1, {{"x", std::span<const float>(x).first(2 * 12 * 12)}}, std::span<float>(out).first(4));
    f.run(large, {{"x", x_large}}, out_large);
  }
  CHECK(allocations.load() - before == 0);
}
