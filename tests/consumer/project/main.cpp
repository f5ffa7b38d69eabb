// Uses kiln through its installed headers, the way a user would: a model compiled into a training step,
// trained for a few steps on a linearly separable problem, plus the installed utility headers.
#include <kiln/core/hash.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/kiln.hpp>

#include <cstdio>
#include <vector>

static_assert(kiln::fnv1a64("a") == 0xaf63dc4c8601ec8cull);

namespace {
struct logistic {
  constexpr auto operator()() const {
    return kiln::bce_with_logits(kiln::nn::sequential(kiln::dense<1>{})(kiln::input<2>("x")), kiln::target<1>("t"));
  }
};
}  // namespace

int main() {
  // the label is 1 when x0 + x1 > 0
  const std::vector<float> x = {1, 2, -1, -2, 2, -1, -2, 1, 0.5f, 0.5f, -0.5f, -0.5f};
  const std::vector<float> t = {1, 0, 1, 0, 1, 0};
  kiln::cpu::train_step<logistic, kiln::sgd> step(kiln::sgd{.lr = 0.5});
  const float first = step.run(6, {{"x", x}, {"t", t}});
  float last = first;
  for (int i = 0; i < 200; ++i) last = step.run(6, {{"x", x}, {"t", t}});
  std::printf("kiln_consumer: loss %.4f -> %.4f\n", first, last);
  if (!(last < 0.5f * first)) {
    std::fprintf(stderr, "kiln_consumer: training did not reduce the loss\n");
    return 1;
  }
  std::puts("kiln_consumer: find_package(kiln) works");
  return 0;
}
