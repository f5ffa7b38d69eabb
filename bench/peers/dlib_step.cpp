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

#include <memory>
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
timed_step net_at(const bench_case& c, const Solver& solver, const std::vector<Label>& labels, int threads) {
  struct state {
    Net net;
    dlib::resizable_tensor batch;
    std::vector<Solver> solvers;
    std::vector<Label> labels;
    double lr = 0;
  };
  auto s = std::make_shared<state>();
  const std::vector<float> x = make_inputs(c);
  const long features = c.layers.front();
  std::vector<sample> samples(static_cast<std::size_t>(c.batch));
  for (long i = 0; i < c.batch; ++i) {
    samples[static_cast<std::size_t>(i)].set_size(features);
    for (long f = 0; f < features; ++f) samples[static_cast<std::size_t>(i)](f) = x[static_cast<std::size_t>(i * features + f)];
  }
  s->net.to_tensor(samples.begin(), samples.end(), s->batch);
  s->solvers.assign(Net::num_computational_layers, solver);
  s->labels = labels;
  s->lr = c.lr;
  timed_step t;
  t.r.case_name = c.name;
  t.r.backend = "dlib";
  t.r.mode = "dlib";
  t.r.batch = c.batch;
  t.r.threads = set_blas_threads(threads) ? threads : 0;  // 0: no OpenBLAS to set, its BLAS's own default
  t.r.note = "dlib " + std::to_string(DLIB_MAJOR_VERSION) + "." + std::to_string(DLIB_MINOR_VERSION);
  t.activate = [threads] { set_blas_threads(threads); };
  t.step = [s] {
    const double loss = s->net.compute_parameter_gradients(s->batch, s->labels.begin());
    s->net.update_parameters(s->solvers, s->lr);
    return loss;
  };
  return t;
}

template <class Net, class Solver, class Label>
std::vector<timed_step> both_settings(const bench_case& c, const Solver& solver, const std::vector<Label>& labels) {
  std::vector<timed_step> out;
  out.push_back(net_at<Net>(c, solver, labels, 1));
  if (out.back().r.threads != 0) out.push_back(net_at<Net>(c, solver, labels, 2));
  return out;
}

}  // namespace

std::vector<timed_step> dlib_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.is_contraction) return {};
  if (c.inference) {
    skipped.push_back(skipped_result(c, "dlib", "dlib", "no dlib forward is written for the inference cases (Eigen is the hand-written peer)"));
    return {};
  }
  if (c.model != model_kind::mlp) {
    skipped.push_back(skipped_result(c, "dlib", "dlib", "no dlib network type is written for this case (the CNN)"));
    return {};
  }
  const dlib::adam adam(/*weight_decay=*/0.0f, /*beta1=*/0.9f, /*beta2=*/0.999f);
  std::vector<unsigned long> classes;
  for (std::int32_t y : make_labels(c)) classes.push_back(static_cast<unsigned long>(y));
  if (c.layers == std::vector<long>{784, 128, 64, 10}) return both_settings<classifier_net>(c, adam, classes);
  if (c.layers == std::vector<long>{1024, 1024, 1024, 10}) return both_settings<wide_net>(c, adam, classes);
  if (c.layers == std::vector<long>{2, 2, 1}) {
    std::vector<float> signs;
    for (float target : make_targets(c)) signs.push_back(target > 0.5f ? 1.0f : -1.0f);
    return both_settings<xor_net>(c, dlib::sgd(/*weight_decay=*/0.0f, /*momentum=*/0.0f), signs);
  }
  skipped.push_back(skipped_result(c, "dlib", "dlib", "no dlib network type is written for this case"));
  return {};
}

}  // namespace kiln_bench
