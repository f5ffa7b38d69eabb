// The rendered C++ source of a plan computes what the template-instantiated CPU backend computes: render,
// compile it with the system compiler into a shared library, load it, run both on the same data, compare.
#include "gradcheck.hpp"

#include <kiln/cpu/render.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/io/atomic_file.hpp>

#include <dlfcn.h>

#include <cstdlib>
#include <random>
#include <string>

using namespace kiln;

namespace {

using rendered_fn = void (*)(float* const*, const float*, long, float*, const random::key*);

// Compiles `source` into a shared library and returns the loaded function (the library stays loaded).
rendered_fn compile_and_load(const std::string& source, const std::string& tag) {
  const std::string dir = std::string(KILN_BINARY_DIR) + "/rendered";
  io::make_dirs(dir);
  const std::string cpp = dir + "/" + tag + ".cpp", so = dir + "/" + tag + ".so";
  io::write_file_atomic(cpp, source);
  const std::string cmd = std::string(KILN_CXX_COMPILER) + " -std=c++20 -O2 " + KILN_CXX_NATIVE_FLAG +
                          " -fPIC -shared -Wall -Wextra -Werror -I" KILN_SOURCE_DIR "/include -I" KILN_SOURCE_DIR
                          "/codegen " + cpp + " -o " + so + " 2>&1";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  void* lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  INFO((lib ? "" : dlerror()));
  REQUIRE(lib != nullptr);
  auto fn = reinterpret_cast<rendered_fn>(dlsym(lib, "kiln_step"));
  REQUIRE(fn != nullptr);
  return fn;
}

template <class Step>
void check_rendered(const std::string& tag, long batch, std::uint64_t seed, const typename Step::optimizer_type& opt) {
  using holder = typename Step::plan_holder;
  const plan& P = holder::value;
  const graph& G = P.g;
  INFO("model " << tag << ", batch " << batch << ", seed " << seed);
  const rendered_fn fn = compile_and_load(cpu::render_source(P), tag);
  cpu::program<holder> templated, rendered;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<std::vector<float>> a(static_cast<std::size_t>(G.num_leaves)), b;
  for (int l = 0; l < G.num_leaves; ++l) {
    auto& v = a[static_cast<std::size_t>(l)];
    v.resize(kiln_test::leaf_size(G.leaves[l], batch));
    for (float& e : v)
      e = G.leaves[l].kind == leaf_kind::labels ? static_cast<float>(rng() % static_cast<unsigned>(G.leaves[l].num_classes))
        : G.leaves[l].kind == leaf_kind::state ? std::fabs(u(rng)) : u(rng);
  }
  b = a;
  for (int l = 0; l < G.num_leaves; ++l) {
    templated.bind_leaf(l, a[static_cast<std::size_t>(l)].data());
    rendered.bind_leaf(l, b[static_cast<std::size_t>(l)].data());
  }
  double h[16] = {};
  opt.hypers(3, h);
  float hyper[16];
  for (int i = 0; i < 16; ++i) hyper[i] = static_cast<float>(h[i]);
  const random::key key{seed, 3};  // dropout's draws
  templated.run(batch, hyper, key);
  rendered.bind(batch, hyper, key);
  fn(rendered.buffers(), hyper, batch, rendered.gemm_workspace(), &key);
  // every output (the loss and every updated parameter and state) agrees
  for (int o = 0; o < G.num_outputs; ++o) {
    const node& n = G.nodes[G.outputs[o].node];
    const long count = (n.shape.rows == kiln::batch ? batch : n.shape.rows) * n.shape.cols;
    for (long i = 0; i < count; ++i) {
      INFO("output " << o << " element " << i);
      REQUIRE(rendered.output(o)[i] == Approx(templated.output(o)[i]).epsilon(1e-5).margin(1e-6));
    }
  }
}

struct classifier {
  constexpr auto operator()() const {
    auto net = nn::sequential(dense<48>{}, relu, dense<24>{}, relu, dense<10>{});
    return cross_entropy(net(input<100>("x")), labels<10>("y"));
  }
};
struct activations {
  constexpr auto operator()() const {
    auto net = nn::sequential(dense<9>{}, gelu, dense<9>{}, elu, dense<9>{}, swish, dense<9>{}, softplus,
                              dense<9>{}, kiln::tanh, dense<9>{}, leaky_relu, dense<3>{});
    return kl_div(log_softmax(net(input<5>("x"))), softmax(input<3>("soft")));
  }
};
// dropout on a batch of rows and on a [1, 8] parameter broadcast over the batch
struct regularized {
  constexpr auto operator()() const {
    auto h = kiln::dropout{.p = 0.3}(sigmoid(dense<8>("fc1")(input<4>("x"))) + kiln::dropout{.p = 0.5}(param<8>("shift")));
    return mse(dense<2>("fc2")(h), target<2>("t"));
  }
};
// an embedding: its gather and scatter-add kernels
struct lookup_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(embedding<9, 5>{}, dense<6>{}, kiln::tanh, dense<9>{})(tokens<9, 3>("x")), labels<9>("y"));
  }
};
struct regression {
  constexpr auto operator()() const {
    return mse(nn::sequential(dense<8>{}, sigmoid, dense<2>{})(input<4>("x")), target<2>("t")) +
           0.1 * mae(nn::sequential(dense<8>{}, sigmoid, dense<2>{})(input<4>("x")), target<2>("t"));
  }
};

}  // namespace

// conv (im2col + GEMM products, kiln/cpu/conv.hpp) → batch_norm → pooling: the window kernels
struct cnn_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 4, 3, 1, 1>{}, batch_norm<4>{}, relu, max_pool2d<2>{}, conv2d<4, 4, 3, 2, 1, 1, 2>{},
                                        avg_pool2d<2, 1>{}, flatten, dense<3>{})(image<2, 6, 6>("x")), labels<3>("y"));
  }
};

TEST_CASE("rendered C++ equals the template backend", "[render]") {
  check_rendered<cpu::train_step<classifier, adam, fusion::fused>>("classifier_fused", 150, 1, adam{});
  check_rendered<cpu::train_step<classifier, adam, fusion::unfused>>("classifier_unfused", 150, 2, adam{});
  check_rendered<cpu::train_step<activations, nesterov, fusion::fused>>("activations_fused", 33, 3, nesterov{});
  check_rendered<cpu::train_step<regression, adamw, fusion::fused>>("regression_fused", 7, 4, adamw{});
  check_rendered<cpu::train_step<regularized, sgd, fusion::fused>>("dropout_fused", 37, 5, sgd{.lr = 0.1});
  check_rendered<cpu::train_step<lookup_model, adam, fusion::fused>>("embedding_fused", 21, 6, adam{});
  check_rendered<cpu::train_step<cnn_model, momentum, fusion::fused>>("cnn_fused", 9, 7, momentum{});
}

TEST_CASE("the rendered source is deterministic and names its kernels", "[render]") {
  const plan& P = cpu::train_step<classifier, adam>::plan_holder::value;
  const std::string s1 = cpu::render_source(P), s2 = cpu::render_source(P);
  CHECK(s1 == s2);
  CHECK(s1.find("// k0 matmul_add_max [batch,48]") != std::string::npos);
  CHECK(s1.find("extern \"C\" void kiln_step(") != std::string::npos);
}
