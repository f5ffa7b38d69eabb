#pragma once
// The Fashion-MNIST demos' --distributed run (declared in fashion_mnist_demo.hpp): the same training,
// data-parallel over the ranks of an MPI job. examples/<program>/distributed.cpp instantiates it for the program's
// model, in a translation unit of its own. Without MPI the run says how to get it.
#include "fashion_mnist_demo.hpp"
#if KILN_HAVE_MPI
#include <kiln/dist/mpi.hpp>
#endif

namespace fashion_demo {

#if KILN_HAVE_MPI
template <class Loss, class Logits>
int run_distributed_of(int argc, char** argv, const arguments& args, const std::string& model) {
  kiln::dist::mpi_communicator comm(&argc, &argv);
  try {
    const splits data = load_splits(args);
    kiln::train::options opt;
    opt.epochs = args.epochs;
    opt.batch_size = args.batch;
    opt.seed = args.seed;
    opt.out_dir = args.out;
    opt.keep_best = true;
    opt.title = "Fashion-MNIST, " + model + ", data-parallel over " + std::to_string(comm.size()) + " ranks";
    using optimizer = kiln::data_parallel<kiln::adam>;
    kiln::cpu::thread_pool pool(comm.threads_per_rank());  // the machine's cores shared between its ranks
    kiln::train::trainer<Loss, optimizer, Logits> trainer(optimizer{.inner = {.lr = args.lr}}, opt);
    trainer.set_communicator(comm, kiln::cpu::data_parallel_options{.shard_optimizer_state = args.zero});
    trainer.step().set_thread_pool(pool);
    trainer.step().set_precision(arithmetic(args));
    if (comm.is_root()) std::printf("products: %s\n", trainer.step().precision_text().c_str());
    if (comm.is_root())
      std::printf("data-parallel over %d ranks (MPI, %s): global batch %ld, about %ld rows per rank, %d threads per rank; "
                  "%d gradient buckets\n",
                  comm.size(), comm.overlaps() ? "sums overlap the backward pass" : "sums on the calling thread",
                  args.batch, args.batch / comm.size(), comm.threads_per_rank(), trainer.step().collectives()->num_buckets());
    if (const kiln::cpu::optimizer_shards* s = trainer.step().shards(); s && comm.is_root())
      std::printf("ZeRO-1: rank 0 holds %ld of the %ld Adam state values\n", s->state_floats_held,
                  s->state_floats);
    const auto t0 = std::chrono::steady_clock::now();
    trainer.fit(data.train, data.validation);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const kiln::train::evaluation test = trainer.evaluate(data.test);
    const kiln::cpu::collective_stats& st = trainer.step().collectives()->stats();
    if (comm.is_root()) {
      const double steps = static_cast<double>(std::max(1L, st.steps));
      std::printf("trained in %.1f s; per step: %.0f gradient values summed in %.1f buckets, %.1f us spent in sums on the "
                  "communication thread, %.1f us of it not hidden behind the backward pass\n",
                  seconds, st.floats / steps, static_cast<double>(st.buckets) / steps, comm.communication_seconds() / steps * 1e6,
                  st.wait_seconds / steps * 1e6);
      std::printf("wrote %s (checkpoint), %s/log.csv and %s/curves.svg\n", trainer.checkpoint_path().c_str(), args.out.c_str(),
                  args.out.c_str());
      std::printf("test loss: %.4f\n", test.loss);
      std::printf("test accuracy: %.4f\n", test.accuracy);
    }
    return 0;
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
}
#else
template <class Loss, class Logits>
int run_distributed_of(int, char**, const arguments&, const std::string&) {
  std::fprintf(stderr, "%s: --distributed: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then configure again)\n",
               program.c_str());
  return 2;
}
#endif

}  // namespace fashion_demo
