// BF16 mixed-precision training steps against PyTorch: MLPs (dense → sigmoid → dense → tanh → dense →
// cross_entropy) and a small CNN, trained with SGD for a few steps by cpu::train_step with
// set_precision(precision::bf16), on each BF16 path this CPU has (the test says 'skipped' where it has none).
// Each run is one JSON line: the initial parameters, the batches, and kiln's loss at each step and parameters
// after each. bf16_step_torch.py trains the same model twice in float64 from the same start: once with every
// matrix product's and convolution's operands rounded to BF16 (forward, input gradients and weight gradients:
// the semantics set_precision promises), once without, and checks that kiln follows the first closely and is
// clearly farther from the second (see the script).
#include "random_models_record.hpp"

#include <kiln/cpu/train_step.hpp>

namespace {

using namespace kiln;
using cpu::bf16_path;
using cpu::precision;
using cpu::available;
using cpu::describe;
using cpu::best_bf16_path;
using kiln_torch::splitmix64;

// SGD: a parameter's change is lr times its summed gradients, so a difference in a gradient shows in proportion.
// (Adam divides each gradient by its own scale, which turns a gradient near 0 into a full ±lr step whose sign a
// rounding may flip; its update is FP32 code that precision does not touch, checked by the other tests.)
constexpr sgd optimizer{.lr = 0.1};

// Trains Model (loss of "x" [Batch, In] and labels "y" of Classes) for Steps steps; one JSON line.
template <class Model, int In, int Classes, long Batch, int Steps>
struct recorded_run {
  using step_type = cpu::train_step<Model, sgd>;
  static constexpr const graph& G = step_type::G;

  static std::string params_json(const step_type& step) {
    std::string s = "{";
    for (int l = 0; l < G.num_leaves; ++l) {
      if (G.leaves[l].kind != leaf_kind::param) continue;
      s += std::string(s.size() > 1 ? "," : "") + "\"" + std::string(G.leaves[l].name.view()) + "\":";
      kiln_torch::append_array(s, step.param(G.leaves[l].name.view()), 17);
    }
    return s + "}";
  }

  static std::string run(std::uint64_t seed, bf16_path path, cpu::thread_pool& pool, const std::string& kind) {
    step_type step(optimizer, seed);
    step.set_thread_pool(pool);
    step.set_precision(precision::bf16, path);
    std::string line = "{\"kind\":" + kind + ",\"seed\":" + std::to_string(seed) + ",\"path\":\"" + describe(path) +
                       "\",\"threads\":" + std::to_string(pool.num_threads()) + ",\"lr\":" + std::to_string(optimizer.lr) +
                       ",\"init\":" + params_json(step) + ",\"batches\":[";
    std::vector<double> losses;
    std::string after = "[";
    for (int t = 0; t < Steps; ++t) {
      splitmix64 r{seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(t)};
      std::vector<float> x;
      std::vector<std::int32_t> y;
      for (long i = 0; i < Batch * In; ++i) x.push_back(static_cast<float>(r.uniform(-2, 2)));
      for (long i = 0; i < Batch; ++i) y.push_back(r.between(0, Classes - 1));
      line += t ? ",{\"x\":" : "{\"x\":";
      kiln_torch::append_array(line, x, 17);  // 17 digits: the float exactly, so that its bf16 rounding is the same in torch
      line += ",\"y\":";
      kiln_torch::append_array(line, y, 9);
      line += "}";
      losses.push_back(step.run(Batch, {{"x", x}, {"y", y}}));
      after += (t ? "," : "") + params_json(step);
    }
    line += "],\"losses\":";
    kiln_torch::append_array(line, losses, 17);
    return line + ",\"after\":" + after + "]}";
  }
};

// An MLP In → H1 (sigmoid) → H2 (tanh) → Classes with cross_entropy, trained on Batch rows for Steps steps.
// Smooth activations: relu's mask flips where a pre-activation is within float rounding of 0, which BF16's
// coarse operands make likely enough (one in 32 000 here, at −1.9e-9) to move a first-step change by 1 %.
template <int In, int H1, int H2, int Classes, long Batch, int Steps>
struct mlp_case {
  struct model {
    constexpr auto operator()() const {
      return cross_entropy(nn::sequential(dense<H1>{}, kiln::sigmoid, dense<H2>{}, kiln::tanh, dense<Classes>{})(input<In>("x")),
                           labels<Classes>("y"));
    }
  };
  static std::string run(std::uint64_t seed, bf16_path path, cpu::thread_pool& pool) {
    return recorded_run<model, In, Classes, Batch, Steps>::run(seed, path, pool, "\"mlp\"");
  }
};

// A CNN on 3 × 6 × 6 images: conv2d (3 → 4 channels, 3×3, padding 1, bias) → tanh → conv2d (4 → 6, stride 2) →
// tanh → flatten → dense (5 classes): the convolutions' forward and weight-gradient products, and the second's
// input-gradient product (x is an input, so the first has none), as BF16 products.
struct cnn_case {
  struct model {
    constexpr auto operator()() const {
      return cross_entropy(nn::sequential(conv2d<3, 4, 3, 1, 1>{}, kiln::tanh, conv2d<4, 6, 3, 2, 1>{}, kiln::tanh, flatten,
                                          dense<5>{})(image<3, 6, 6>("x")),
                           labels<5>("y"));
    }
  };
  static std::string run(std::uint64_t seed, bf16_path path, cpu::thread_pool& pool) {
    const std::string kind = "{\"cnn\":[{\"name\":\"conv1\",\"in\":3,\"out\":4,\"stride\":1},"
                             "{\"name\":\"conv2\",\"in\":4,\"out\":6,\"stride\":2}],\"channels\":3,\"size\":6}";
    return recorded_run<model, 3 * 6 * 6, 5, 50, 3>::run(seed, path, pool, kind);
  }
};

// Small: partial AMX tiles (16 rows, 16 columns, 32 k) and register blocks everywhere, one thread per product.
using small_case = mlp_case<40, 48, 24, 7, 37, 4>;
// Wide, on 3 threads, products past the threading threshold (execute.hpp's run_contraction) split every way:
// by rows with B converted once and shared (a: the first layer forward and its weight gradient; b: the same), by
// rows each packing its own B (a: the second layer forward and its input gradient), over the batch (a: the
// second layer's weight gradient, 40 × 80) and by columns (b: the second layer's weight gradient, 24 × 300).
using wide_case_a = mlp_case<420, 80, 40, 10, 400, 2>;
using wide_case_b = mlp_case<200, 300, 24, 10, 400, 2>;

}  // namespace

TEST_CASE("torch: BF16 mixed-precision MLP steps follow torch with BF16-rounded matmul operands, not plain float64",
          "[torch][bf16]") {
  std::vector<std::string> lines;
  cpu::thread_pool one(1), three(3);
  for (bf16_path path : {bf16_path::avx512_bf16, bf16_path::amx})
    if (available(path))
      for (std::uint64_t seed : {81, 82}) {
        lines.push_back(small_case::run(seed, path, one));
        lines.push_back(cnn_case::run(seed, path, seed == 81 ? one : three));
        if (seed == 81) {
          lines.push_back(wide_case_a::run(seed, path, three));
          lines.push_back(wide_case_b::run(seed, path, three));
        }
      }
  if (lines.empty()) {
    WARN("skipped: this CPU has no BF16 instructions (" << describe(best_bf16_path()) << ")");
    return;
  }
  kiln_torch::check_against_torch(lines, "bf16_step", "bf16_step_torch.py");
}
