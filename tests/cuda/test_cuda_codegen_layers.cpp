// Layers through the CUDA backend (layer_norm, dropout, embedding, conv and pooling, tensor ops of any rank): the generated kernels on the host emulator
// against the double reference evaluator, fused and unfused; NVRTC compiles every kernel of their steps (fused: for
// sm_80 and sm_90, unfused: for sm_90; skipped without NVRTC, and not registered in a build with
// KILN_TEST_NVRTC_KERNELS off); on a GPU, both modes at every batch size (skipped without one).
#include "emulated_model_check.hpp"
#include "../core/tensor_model.hpp"

using namespace kiln;
using namespace kiln_cuda_test;

namespace {
// dense → layer_norm → gelu → dense: two row-mean reductions in the forward pass, and their broadcasts back in
// the backward pass (one norm: the unfused plan of two has 268 kernels for the emulator's host compiler).
struct layer_norm_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<7>{}, layer_norm{.eps = 1e-3}, gelu, dense<3>{})(x), y);
  }
};
// dropout after each hidden layer: the kernels draw the reference's masks (km::uniform, the same Philox rounds)
struct dropout_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<9>{}, relu, kiln::dropout{.p = 0.3}, dense<7>{}, gelu, kiln::dropout{.p = 0.6},
                                        dense<3>{})(x), y);
  }
};
// an embedding of 3 tokens per sample ("y": the harness's class-index input, here [batch, 3]): a gather kernel
// forward, a scatter-add kernel for the table's gradient (the whole-step lowering refuses both, so the fused plan
// runs one kernel per plan kernel)
struct embedding_model {
  constexpr auto operator()() const {
    return mse(nn::sequential(embedding<11, 4>{}, dense<5>{}, kiln::tanh, dense<3>{})(tokens<11, 3>("y")), target<3>("target"));
  }
};
// conv (stride 2, padding), max pooling (padded, overlapping), a grouped conv without bias, average pooling,
// global average pooling: every window op forward and backward, a thread per output element
struct cnn_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 4, 3, 2, 1>{}, relu, max_pool2d<3, 1, 1>{}, conv2d<4, 4, 2, 1, 1, 1, 2, false>{},
                                        kiln::tanh, avg_pool2d<2>{}, global_avg_pool, dense<3>{})(image<2, 6, 6>("x")), y);
  }
};
// batch norm over maps and over vectors: batch statistics (row sums, then channel sums) and the running
// statistics assigned after the loss
struct batch_norm_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(conv2d<2, 3, 3, 1, 1, 1, 1, false>{}, batch_norm<3>{}, relu, max_pool2d<2>{}, flatten,
                                        dense<5>{}, batch_norm<5>{}, kiln::tanh, dense<3>{})(image<2, 4, 4>("x")), y);
  }
};
}  // namespace

// SGD with momentum: a bias before a batch norm has a gradient of exactly 0 (float rounding noise), which Adam
// would scale to a full step
TEST_CASE("emulated: batch_norm, fused and unfused", "[cuda][emulated][batch_norm]") {
  check_model<batch_norm_model>(momentum{.lr = 0.05}, 13);
}

TEST_CASE("NVRTC: every kernel of a batch_norm model's step, fused and unfused", "[cuda][nvrtc][batch_norm]") {
  compile_step<batch_norm_model, momentum, fusion::fused>("batch_norm_model/momentum");
  compile_step<batch_norm_model, momentum, fusion::unfused>("batch_norm_model/momentum");
}

TEST_CASE("device: batch_norm, fused and unfused, every batch size", "[cuda][device][batch_norm]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<batch_norm_model>(dev, momentum{.lr = 0.05}, 14);
}

TEST_CASE("emulated: conv and pooling kernels, fused and unfused", "[cuda][emulated][conv]") {
  check_model<cnn_model>(adam{.lr = 1e-2}, 11);
}

TEST_CASE("NVRTC: every kernel of a CNN's step, fused and unfused", "[cuda][nvrtc][conv]") {
  compile_step<cnn_model, adam, fusion::fused>("cnn_model/adam");
  compile_step<cnn_model, adam, fusion::unfused>("cnn_model/adam");
}

TEST_CASE("device: a CNN, fused and unfused, every batch size", "[cuda][device][conv]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<cnn_model>(dev, adam{.lr = 1e-2}, 12);
}

TEST_CASE("emulated: an embedding's gather and scatter-add kernels, fused and unfused", "[cuda][emulated][embedding]") {
  check_model<embedding_model>(adam{.lr = 1e-2}, 9);
}

TEST_CASE("NVRTC: every kernel of an embedding model's step, fused and unfused", "[cuda][nvrtc][embedding]") {
  compile_step<embedding_model, adam, fusion::fused>("embedding_model/adam");
  compile_step<embedding_model, adam, fusion::unfused>("embedding_model/adam");
}

TEST_CASE("device: embedding, fused and unfused, every batch size", "[cuda][device][embedding]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<embedding_model>(dev, adam{.lr = 1e-2}, 10);
}

TEST_CASE("emulated: dropout draws the reference's masks, fused and unfused", "[cuda][emulated][dropout]") {
  check_model<dropout_model>(adam{.lr = 1e-2}, 7);
}

TEST_CASE("NVRTC: every kernel of a dropout model's step, fused and unfused", "[cuda][nvrtc][dropout]") {
  compile_step<dropout_model, adam, fusion::fused>("dropout_model/adam");
  compile_step<dropout_model, adam, fusion::unfused>("dropout_model/adam");
}

TEST_CASE("device: dropout, fused and unfused, every batch size", "[cuda][device][dropout]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<dropout_model>(dev, adam{.lr = 1e-2}, 8);
}

TEST_CASE("emulated: layer_norm with cross-entropy and Adam", "[cuda][emulated][normalization]") {
  check_model<layer_norm_model>(adam{.lr = 1e-2}, 5);
}

TEST_CASE("NVRTC: every kernel of a layer_norm model's step, fused and unfused", "[cuda][nvrtc][normalization]") {
  compile_step<layer_norm_model, adam, fusion::fused>("layer_norm_model/adam");
  compile_step<layer_norm_model, adam, fusion::unfused>("layer_norm_model/adam");
}

TEST_CASE("device: layer_norm, fused and unfused, every batch size", "[cuda][device][normalization]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<layer_norm_model>(dev, adam{.lr = 1e-2}, 6);
}

// permute, slice, concat (pads), reshape, broadcast_axes, sum_to, max_to and its adjoint, on batched tensors and
// parameters: a thread per output element (kiln_axes_at in the prelude)
TEST_CASE("emulated: tensor ops of any rank, fused and unfused", "[cuda][emulated][tensor]") {
  check_model<kiln_test::axes_model>(adam{.lr = 1e-2}, 15);
}

TEST_CASE("NVRTC: every kernel of a tensor-op model's step, fused and unfused", "[cuda][nvrtc][tensor]") {
  compile_step<kiln_test::axes_model, adam, fusion::fused>("axes_model/adam");
  compile_step<kiln_test::axes_model, adam, fusion::unfused>("axes_model/adam");
}

TEST_CASE("device: tensor ops of any rank, fused and unfused, every batch size", "[cuda][device][tensor]") {
  auto dev = gpu_or_skip();
  if (!dev) return;
  check_everywhere<kiln_test::axes_model>(dev, adam{.lr = 1e-2}, 16);
}
