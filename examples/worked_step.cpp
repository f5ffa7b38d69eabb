// The notes' two-layer example: h = w1·x + b1, y = w2·h + b2, L = (y − t)², x = 2, t = 5, w1 = 1, w2 = 2,
// b1 = b2 = 0. Prints the four gradients, then one SGD step with η = 0.1 and the four updated parameters.
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>

#include <cstdio>

struct two_layer {
  constexpr auto operator()() const {
    auto x = kiln::input<1>("x");
    auto t = kiln::target<1>("t");
    auto w1 = kiln::param<>("w1"), b1 = kiln::param<>("b1"), w2 = kiln::param<>("w2"), b2 = kiln::param<>("b2");
    auto h = w1 * x + b1;
    auto y = w2 * h + b2;
    return kiln::sum(kiln::pow(y - t, 2.0));
  }
};

int main() {
  const float x[] = {2}, t[] = {5};
  auto set = [](auto& s) {
    s.param("w1")[0] = 1; s.param("b1")[0] = 0; s.param("w2")[0] = 2; s.param("b2")[0] = 0;
  };
  kiln::cpu::gradient<two_layer> g;
  set(g);
  const float L = g.run(1, {{"x", x}, {"t", t}});
  std::printf("forward: L = %g\n", L);
  for (const char* n : {"w1", "b1", "w2", "b2"}) std::printf("dL/d%s = %g\n", n, g.grad(n)[0]);

  kiln::cpu::train_step<two_layer, kiln::sgd> step(kiln::sgd{.lr = 0.1});
  set(step);
  step.run(1, {{"x", x}, {"t", t}});
  std::printf("after one SGD step (lr = 0.1):\n");
  for (const char* n : {"w1", "b1", "w2", "b2"}) std::printf("%s = %g\n", n, step.param(n)[0]);
}
