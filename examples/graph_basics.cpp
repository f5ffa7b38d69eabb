// The notes' computation graph: L(a, b, c) = c·(a + 2b) at a = 3, b = 1, c = −2.
// kiln differentiates it at compile time and runs the compiled forward + backward.
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>

#include <cstdio>

int main() {
  struct graph_model {
    constexpr auto operator()() const {
      auto a = kiln::param<>("a"), b = kiln::param<>("b"), c = kiln::param<>("c");
      return c * (a + 2.0 * b);
    }
  };
  kiln::cpu::gradient<graph_model> g;
  g.param("a")[0] = 3;
  g.param("b")[0] = 1;
  g.param("c")[0] = -2;
  const float L = g.run(1);
  std::printf("L = c(a + 2b) at a=3, b=1, c=-2\n");
  std::printf("L     = %g\n", L);
  std::printf("dL/da = %g\n", g.grad("a")[0]);
  std::printf("dL/db = %g\n", g.grad("b")[0]);
  std::printf("dL/dc = %g\n", g.grad("c")[0]);
  std::printf("\n%s", decltype(g)::plan_text().c_str());
}
