// Data-parallel training steps over MPI against one process (bench/run_distributed.sh runs both ways and prints
// them side by side):
//   mpirun -np N bench_distributed [--threads T] [--reps R] [--batch B]   N ranks of T threads, global batch B
//   bench_distributed --threads T [--reps R] [--batch B]                   one process of T threads, batch B
// Cases: the course's classifier (784-128-64-10, Adam) and the Fashion-MNIST CNN (two conv/batch-norm/pool
// blocks; examples/fashion_mnist_cnn_model.hpp), on random data. Each prints one line per case with the median
// step time over R steps (after 5 warm-up steps); with several ranks also, per step, the gradient values summed,
// the buckets, the time the communication thread spent in sums and the part of it the step waited for (not
// hidden behind the backward pass), without and with ZeRO-1 (the Adam state sharded over the ranks; its
// parameter broadcasts after the step are part of the step time). Rank 0 prints.
#include "../../examples/fashion_mnist_cnn_model.hpp"

#include <kiln/cpu/train_step.hpp>
#include <kiln/dist/mpi.hpp>
#include <kiln/kiln.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr auto classifier_net = kiln::nn::sequential(kiln::dense<128>{}, kiln::relu, kiln::dense<64>{}, kiln::relu, kiln::dense<10>{});
struct classifier_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(classifier_net(kiln::input<784>("x")), kiln::labels<10>("y")); }
};

struct settings {
  int threads = 1, reps = 50;
  long batch = 256;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

template <class Step>
double median_step_us(Step& step, long rows, const settings& s, kiln::dist::communicator* comm) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> x(static_cast<std::size_t>(rows) * 784);
  std::vector<std::int32_t> y(static_cast<std::size_t>(rows));
  for (float& v : x) v = u(rng);
  for (std::int32_t& v : y) v = static_cast<std::int32_t>(rng() % 10);
  std::vector<double> us;
  for (int i = 0; i < 5 + s.reps; ++i) {
    double together = 0;  // a one-value sum: the ranks start each step together
    if (comm) comm->all_reduce_sum(std::span<double>(&together, 1));
    const auto t0 = std::chrono::steady_clock::now();
    step.run(rows, {{"x", x}, {"y", y}});
    const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (i >= 5) us.push_back(t);
  }
  return median(us);
}

template <class Loss>
void run_case(const char* name, const settings& s, kiln::dist::mpi_communicator& comm) {
  kiln::cpu::thread_pool pool(s.threads);
  if (comm.size() == 1) {
    kiln::cpu::train_step<Loss, kiln::adam> step({.lr = 1e-3});
    step.set_thread_pool(pool);
    const double us = median_step_us(step, s.batch, s, nullptr);
    std::printf("%s b%ld: 1 process x %d threads: %.0f us/step\n", name, s.batch, s.threads, us);
    return;
  }
  using optimizer = kiln::data_parallel<kiln::adam>;
  for (const bool zero : {false, true}) {
    kiln::cpu::train_step<Loss, optimizer> step(optimizer{.inner = {.lr = 1e-3}});
    step.set_thread_pool(pool);
    step.set_communicator(comm, {.shard_optimizer_state = zero});
    const double busy_before = comm.communication_seconds();
    const double us = median_step_us(step, s.batch / comm.size(), s, &comm);
    const kiln::cpu::collective_stats& st = step.collectives()->stats();
    const double steps = static_cast<double>(st.steps);
    std::string state;  // ZeRO-1: the optimizer state this rank holds
    if (const kiln::cpu::optimizer_shards* shards = step.shards())
      state = ", ZeRO-1: rank 0 holds " + std::to_string(shards->state_floats_held) + " of " +
              std::to_string(shards->state_floats) + " Adam state values";
    if (comm.is_root())
      std::printf("%s b%ld: %d ranks x %d threads%s: %.0f us/step; per step %.0f values summed in %.1f buckets, %.0f us in sums "
                  "(communication thread), %.0f us of it waited for\n",
                  name, s.batch, comm.size(), s.threads, state.c_str(), us, st.floats / steps, static_cast<double>(st.buckets) / steps,
                  (comm.communication_seconds() - busy_before) / steps * 1e6, st.wait_seconds / steps * 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  kiln::dist::mpi_communicator comm(&argc, &argv);
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") s.threads = std::atoi(argv[i + 1]);
    else if (flag == "--reps") s.reps = std::atoi(argv[i + 1]);
    else if (flag == "--batch") s.batch = std::atol(argv[i + 1]);
    else comm.abort("unknown option " + flag);
  }
  if (s.threads < 1 || s.reps < 1 || s.batch % comm.size() != 0) comm.abort("bad settings (the batch must split evenly over the ranks)");
  run_case<classifier_loss>("classifier", s, comm);
  run_case<fashion_cnn::loss>("cnn", s, comm);
  return 0;
}
