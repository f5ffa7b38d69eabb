// The inference cases (infer_*): the classifier's and the Fashion-MNIST CNN's forward in evaluation mode, by
//   function   kiln::cpu::function on a caller's workspace: the calling thread alone, as a latency-critical
//              caller runs it (no hand-off to a pool);
//   function_own   the same function's own run(batch, feeds, out): a batch on kiln's default pool (all cores), in
//                  chunks of samples where its buffers outgrow the caches; a single sample on the calling thread,
//                  or on the pool where a kernel shares it between threads (function::single_sample_on_pool);
//   exported   the standalone header kiln::cpu::export_cpp wrote at build time (bench/export), its predict();
// and, for the classifier at batch 1, the bound a batch-1 forward approaches: reading its weights once from L2
// (backend "bound", mode "l2_read": a vector loop summing the 109,386 weight floats, 427 KB, kept warm).
// Every row starts from the parameters a train_step initializes with seed 1.
#include "bench_models.hpp"
#include "kiln_cases.hpp"
#include "kiln_step_runner.hpp"

#include "../../examples/fashion_mnist_cnn_model.hpp"

#include <exported_classifier.hpp>
#include <exported_cnn.hpp>

#include <kiln/core/aligned_vector.hpp>
#include <kiln/cpu/simd.hpp>
#include <kiln/cpu/train_step.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace kiln_bench {
namespace {

timed_step row(const bench_case& c, const std::string& backend, const std::string& mode, int threads, std::string note) {
  timed_step t;
  t.r = result_for(c, backend, mode, threads);
  t.r.note = std::move(note);
  return t;
}

template <class Loss, class Logits>
std::vector<timed_step> function_rows(const bench_case& c) {
  using function_type = kiln::cpu::function<Logits>;
  struct state {
    explicit state(const bench_case& k)
        : step(kiln::adam{}, 1), f(function_type::copy_of(step)), ws(f.make_workspace()), x(make_inputs(k)),
          out(static_cast<std::size_t>(k.batch * k.layers.back())), batch(k.batch) {}
    kiln::cpu::train_step<Loss, kiln::adam> step;
    function_type f;
    typename function_type::workspace ws;
    std::vector<float> x, out;
    long batch;
  };
  auto s = std::make_shared<state>(c);
  const std::string kernels = std::to_string(function_type::compiled_plan().num_kernels) + " kernels";
  std::vector<timed_step> rows;
  rows.push_back(row(c, "cpu", "function", 1, kernels + ", caller's workspace (calling thread)"));
  rows.back().step = [s] {
    s->f.run(s->ws, s->batch, {{"x", s->x}}, s->out);
    return static_cast<double>(s->out[0]);
  };
  rows.back().kernel_names = kernel_labels<typename function_type::plan_holder>();
  rows.back().profile = [s](long runs) {
    std::vector<double> ns(static_cast<std::size_t>(function_type::compiled_plan().num_kernels), 0.0);
    for (long i = 0; i < runs; ++i) s->f.run_profiled(s->ws, s->batch, {{"x", s->x}}, s->out, ns);
    return ns;
  };
  const bool serial = c.batch == 1 && !function_type::single_sample_on_pool;
  std::string own = serial ? ", its own workspace (calling thread)" : ", its own workspace (default pool)";
  if (function_type::runs_in_chunks(c.batch))
    own += ", in chunks of " + std::to_string(std::min(function_type::chunk_rows(), c.batch)) + " samples";
  else if (c.batch == 1 && !serial)
    own += ", the sample shared between threads";
  rows.push_back(row(c, "cpu", "function_own", serial ? 1 : kiln_threads(), kernels + own));
  rows.back().step = [s] {
    s->f.run(s->batch, {{"x", s->x}}, s->out);
    return static_cast<double>(s->out[0]);
  };
  return rows;
}

template <class Predict>
timed_step exported_row(const bench_case& c, Predict predict, long kernels) {
  struct state {
    std::vector<float> x, out;
    long batch;
  };
  auto s = std::make_shared<state>(state{make_inputs(c), std::vector<float>(static_cast<std::size_t>(c.batch * c.layers.back())), c.batch});
  timed_step t = row(c, "cpu", "exported", 1, "standalone header (kiln::cpu::export_cpp), " + std::to_string(kernels) + " kernels");
  t.step = [s, predict] {
    predict(s->x.data(), s->out.data(), static_cast<int>(s->batch));
    return static_cast<double>(s->out[0]);
  };
  return t;
}

// The time to read n floats that sit in L2: eight vector accumulators over a 64-byte-aligned array (as kiln's
// parameters are), warm after the first pass.
timed_step l2_read_row(const bench_case& c, long n) {
  using namespace kiln::cpu;
  auto data = std::make_shared<kiln::aligned_floats>(static_cast<std::size_t>((n + 127) / 128 * 128), 1.0f);
  timed_step t = row(c, "bound", "l2_read", 1,
                     "reads the classifier's " + std::to_string(n) + " weights (" + std::to_string(n * 4 / 1024) + " KB) from L2");
  t.step = [data] {
    vfloat acc[8] = {};
    const float* p = data->data();
    const long m = static_cast<long>(data->size());
    for (long i = 0; i + 8 * lanes <= m; i += 8 * lanes)
      for (int v = 0; v < 8; ++v) acc[v] += load(p + i + v * lanes);
    for (int v = 1; v < 8; ++v) acc[0] += acc[v];
    return static_cast<double>(hsum(acc[0]));
  };
  return t;
}

}  // namespace

std::vector<timed_step> kiln_infer_steps(const bench_case& c, std::vector<result>& skipped) {
  std::vector<timed_step> rows;
  if (c.model == model_kind::fashion_cnn) {
    rows = function_rows<fashion_cnn::loss, fashion_cnn::logits>(c);
    rows.push_back(exported_row(c, exported_cnn::predict, kiln::cpu::function<fashion_cnn::logits>::compiled_plan().num_kernels));
  } else if (c.layers == std::vector<long>{784, 128, 64, 10}) {
    rows = function_rows<models::classifier_loss, models::classifier_logits>(c);
    rows.push_back(exported_row(c, exported_classifier::predict,
                                kiln::cpu::function<models::classifier_logits>::compiled_plan().num_kernels));
    if (c.batch == 1) rows.push_back(l2_read_row(c, 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10));
  } else {
    skipped.push_back(skipped_result(c, "cpu", "function", "no kiln model is compiled for this inference case"));
  }
  return rows;
}

}  // namespace kiln_bench
