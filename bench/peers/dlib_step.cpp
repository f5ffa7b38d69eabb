// dlib peer: the suite's MLP training step with dlib's DNN, networks written as template types, trained
// through dlib's own step API (compute_parameter_gradients + update_parameters with one solver per layer).
// dlib's fully connected layers call BLAS (OpenBLAS here) for their products, so the thread setting tried is
// OpenBLAS's (1 and 2). Differences from the other backends, all the same maths:
//  - XOR: dlib's loss_binary_log is binary cross-entropy on logits with ±1 labels, so the network ends at the
//    second fc and the loss applies the sigmoid: −log σ(y·z) = BCE(σ(z), t) with y = 2t − 1.
//  - weights start from dlib's own initialisation, so losses agree in range, not digit for digit.
#include "blas_threads.hpp"
#include "cxx_peers.hpp"
#include "timing.hpp"

#include <dlib/dnn.h>
#include <dlib/revision.h>

#include <string>
#include <vector>

namespace kiln_bench {
namespace {

using sample = dlib::matrix<float, 0, 1>;
using classifier_net =
    dlib::loss_multiclass_log<dlib::fc<10, dlib::relu<dlib::fc<64, dlib::relu<dlib::fc<128, dlib::input<sample>>>>>>>;
using wide_net =
    dlib::loss_multiclass_log<dlib::fc<10, dlib::relu<dlib::fc<1024, dlib::relu<dlib::fc<1024, dlib::input<sample>>>>>>>;
using xor_net = dlib::loss_binary_log<dlib::fc<1, dlib::sig<dlib::fc<2, dlib::input<sample>>>>>;

template <class Net, class Solver, class Label>
result run_net(const bench_case& c, const Solver& solver, const std::vector<Label>& labels, int threads,
               const timing_options& t) {
  const bool blas_threads_set = set_blas_threads(threads);
  const std::vector<float> x = make_inputs(c);
  const long features = c.layers.front();
  std::vector<sample> samples(static_cast<std::size_t>(c.batch));
  for (long s = 0; s < c.batch; ++s) {
    samples[static_cast<std::size_t>(s)].set_size(features);
    for (long f = 0; f < features; ++f) samples[static_cast<std::size_t>(s)](f) = x[static_cast<std::size_t>(s * features + f)];
  }
  Net net;
  dlib::resizable_tensor batch;
  net.to_tensor(samples.begin(), samples.end(), batch);
  std::vector<Solver> solvers(Net::num_computational_layers, solver);
  result r;
  r.case_name = c.name;
  r.backend = "dlib";
  r.mode = "dlib";
  r.batch = c.batch;
  r.threads = blas_threads_set ? threads : 0;
  measure([&] {
    const double loss = net.compute_parameter_gradients(batch, labels.begin());
    net.update_parameters(solvers, c.lr);
    return loss;
  }, t, r);
  return r;
}

template <class Net, class Solver, class Label>
std::vector<result> run_best(const bench_case& c, const Solver& solver, const std::vector<Label>& labels,
                             const timing_options& t) {
  result best = best_of(run_net<Net>(c, solver, labels, 1, t), run_net<Net>(c, solver, labels, 2, t));
  set_blas_threads(1);  // park OpenBLAS's extra thread
  best.note = "dlib " + std::to_string(DLIB_MAJOR_VERSION) + "." + std::to_string(DLIB_MINOR_VERSION) + ", " + best.note;
  return {best};
}

}  // namespace

std::vector<result> run_dlib_peer(const bench_case& c, const timing_options& t) {
  if (c.is_contraction) return {};
  const dlib::adam adam(/*weight_decay=*/0.0f, /*beta1=*/0.9f, /*beta2=*/0.999f);
  std::vector<unsigned long> classes;
  for (std::int32_t y : make_labels(c)) classes.push_back(static_cast<unsigned long>(y));
  if (c.layers == std::vector<long>{784, 128, 64, 10}) return run_best<classifier_net>(c, adam, classes, t);
  if (c.layers == std::vector<long>{1024, 1024, 1024, 10}) return run_best<wide_net>(c, adam, classes, t);
  if (c.layers == std::vector<long>{2, 2, 1}) {
    std::vector<float> signs;
    for (float target : make_targets(c)) signs.push_back(target > 0.5f ? 1.0f : -1.0f);
    return run_best<xor_net>(c, dlib::sgd(/*weight_decay=*/0.0f, /*momentum=*/0.0f), signs, t);
  }
  return {skipped_result(c, "dlib", "dlib", "no dlib network type is written for this case")};
}

}  // namespace kiln_bench
