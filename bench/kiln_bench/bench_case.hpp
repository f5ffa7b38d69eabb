#pragma once
// What kiln-bench measures: the cases (one training step each, of an MLP or of the Fashion-MNIST CNN, or one
// contraction), the deterministic data every backend feeds them, their FLOP counts, and the result row every
// backend reports.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln_bench {

enum class activation { relu, sigmoid };
enum class loss_kind { cross_entropy, bce };  // cross_entropy: logits + class indices; bce: sigmoid output + 0/1 targets
enum class optimizer_kind { adam, sgd };
enum class data_kind { golden, xor_table };
// mlp: dense layers listed by `layers`; fashion_cnn: the Fashion-MNIST CNN of examples/fashion_mnist_cnn_model.hpp
// (conv 1→32 3×3 pad 1 no bias, BatchNorm2d, ReLU, max-pool 2; conv 32→64 likewise; flatten, 3136→128 ReLU,
// dropout 0.3, 128→10), trained in train mode (dropout on, batch statistics); `layers` is then {784, 10}, the
// flattened 1×28×28 input (NCHW) and the classes, which is all the data formulas below need.
enum class model_kind { mlp, fashion_cnn };

// One benchmark case. For MLP cases `layers` lists the feature counts from input to output; a step is
// forward + loss + backward (no input gradient) + optimizer update on one batch.
struct bench_case {
  std::string name;
  std::vector<long> layers;
  activation act = activation::relu;
  loss_kind loss = loss_kind::cross_entropy;
  optimizer_kind opt = optimizer_kind::adam;
  double lr = 1e-3;
  long batch = 0;
  data_kind data = data_kind::golden;
  bool is_contraction = false;  // the sgemm sub-benchmark: C[batch, layers[1]] = X[batch, layers[0]] · Wᵀ
  model_kind model = model_kind::mlp;
  // an inference case (named infer_*): the trained model's forward in evaluation mode (dropout off, batch norm on
  // running statistics), no loss, no update; the "loss" a backend returns is its first output
  bool inference = false;
};

// The suite, in the order it runs.
inline std::vector<bench_case> all_cases() {
  const std::vector<long> notes = {784, 128, 64, 10};
  return {
      {"classifier_b256", notes, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 1e-3, 256},
      {"classifier_b32", notes, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 1e-3, 32},
      {"xor_b4", {2, 2, 1}, activation::sigmoid, loss_kind::bce, optimizer_kind::sgd, 0.5, 4, data_kind::xor_table},
      {"wide_b256", {1024, 1024, 1024, 10}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 1e-3,
       256},
      {"sgemm_256x784x128", {784, 128}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 0, 256,
       data_kind::golden, true},
      {"cnn_b64", {784, 10}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 1e-3, 64,
       data_kind::golden, false, model_kind::fashion_cnn},
      {"cnn_b256", {784, 10}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 1e-3, 256,
       data_kind::golden, false, model_kind::fashion_cnn},
      {"infer_classifier_b1", notes, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 0, 1,
       data_kind::golden, false, model_kind::mlp, true},
      {"infer_classifier_b16", notes, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 0, 16,
       data_kind::golden, false, model_kind::mlp, true},
      {"infer_cnn_b1", {784, 10}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 0, 1,
       data_kind::golden, false, model_kind::fashion_cnn, true},
      {"infer_cnn_b16", {784, 10}, activation::relu, loss_kind::cross_entropy, optimizer_kind::adam, 0, 16,
       data_kind::golden, false, model_kind::fashion_cnn, true},
  };
}

// The Fashion-MNIST CNN's products as (multiply-adds per sample, whether the input gradient is computed):
// conv1 28·28 outputs × 32 channels × 1·3·3 taps (no input gradient: the data needs none), conv2 14·14 × 64 ×
// 32·3·3, fc1 3136·128, fc2 128·10. The first two are the convolutions (conv_flops).
struct product_macs {
  double macs;
  bool input_grad;
  bool conv;
};
inline std::vector<product_macs> fashion_cnn_products() {
  return {{28.0 * 28 * 32 * 1 * 9, false, true},
          {14.0 * 14 * 64 * 32 * 9, true, true},
          {3136.0 * 128, true, false},
          {128.0 * 10, true, false}};
}
// Flops of a CNN step's products: forward, weight gradient, and the input gradient where there is one (a
// forward alone: the forward products only).
inline double cnn_flops(long batch, bool convs_only, bool forward_only = false) {
  double macs = 0;
  for (const product_macs& p : fashion_cnn_products())
    if (p.conv || !convs_only) macs += p.macs * (forward_only ? 1 : p.input_grad ? 3 : 2);
  return 2 * static_cast<double>(batch) * macs;
}

// Multiply-adds count 2 flops. Forward: 2·B·Σ in·out. Backward: every weight gradient (2·B·in·out each) and
// the input gradient of every layer but the first (the data needs none). Elementwise work is not counted.
// The CNN counts its convolutions' and dense layers' multiply-adds alike (cnn_flops).
inline double step_flops(const bench_case& c) {
  if (c.model == model_kind::fashion_cnn) return cnn_flops(c.batch, false, c.inference);
  double forward = 0, input_grads = 0;
  for (std::size_t l = 0; l + 1 < c.layers.size(); ++l) {
    const double macs = static_cast<double>(c.layers[l]) * static_cast<double>(c.layers[l + 1]);
    forward += macs;
    if (l > 0) input_grads += macs;
  }
  const double b = static_cast<double>(c.batch);
  if (c.is_contraction || c.inference) return 2 * b * forward;
  return 2 * b * (2 * forward + input_grads);
}

// The data, identical in every backend (the Python peers compute the same formulas):
//   golden:    x[i] = frac((i + 1)·φ⁻¹) with φ⁻¹ = 0.6180339887498949 (evenly spread in [0, 1)),
//              y[s] = (7·s + 3) mod classes;
//   xor_table: the four XOR rows (0,0→0; 0,1→1; 1,0→1; 1,1→0).
inline std::vector<float> make_inputs(const bench_case& c) {
  if (c.data == data_kind::xor_table) return {0, 0, 0, 1, 1, 0, 1, 1};
  const long n = c.batch * c.layers.front();
  std::vector<float> x(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] = static_cast<float>(std::fmod(static_cast<double>(i + 1) * 0.6180339887498949, 1.0));
  return x;
}
inline std::vector<std::int32_t> make_labels(const bench_case& c) {
  std::vector<std::int32_t> y(static_cast<std::size_t>(c.batch));
  for (long s = 0; s < c.batch; ++s) y[static_cast<std::size_t>(s)] = static_cast<std::int32_t>((7 * s + 3) % c.layers.back());
  return y;
}
inline std::vector<float> make_targets(const bench_case& c) {
  if (c.data == data_kind::xor_table) return {0, 1, 1, 0};
  std::vector<float> t(static_cast<std::size_t>(c.batch));
  for (long s = 0; s < c.batch; ++s) t[static_cast<std::size_t>(s)] = static_cast<float>(s % 2);
  return t;
}

// One measured (or skipped) backend/mode on one case. gflops and peak_fraction are filled in by the driver
// from the case's FLOP count and the FMA peak for `threads`.
struct result {
  std::string case_name;
  std::string backend;  // cpu (kiln), openblas, pytorch, jax, eigen, dlib
  std::string mode;     // fused | unfused | pytorch | pytorch2_eager | torch_compile | jax_jit | eigen | dlib | gemm | sgemm
  long batch = 0;
  int threads = 0;
  double median_us = 0, min_us = 0, max_us = 0;
  long iters = 0;    // steps per timed repeat
  int repeats = 0;
  double loss_first = NAN, loss_second = NAN;  // loss returned by step 1 (before any update) and step 2
  double gflops = 0, peak_gflops = 0, peak_fraction = 0;
  std::string note;     // e.g. kernels per step, the thread setting that won
  std::string skipped;  // non-empty: not measured, and why
  bool measured() const { return skipped.empty(); }
};

// A row of case c for backend and mode, before it is measured.
inline result result_for(const bench_case& c, std::string backend, std::string mode, int threads = 0) {
  result r;
  r.case_name = c.name;
  r.backend = std::move(backend);
  r.mode = std::move(mode);
  r.batch = c.batch;
  r.threads = threads;
  return r;
}
inline result skipped_result(const bench_case& c, std::string backend, std::string mode, std::string why) {
  result r = result_for(c, std::move(backend), std::move(mode));
  r.skipped = std::move(why);
  return r;
}

// How long to measure.
struct timing_options {
  int repeats = 15;           // timed repeats; the median of their per-step means is reported
  double repeat_ms = 20;      // each repeat runs enough steps to last about this long
};

}  // namespace kiln_bench
