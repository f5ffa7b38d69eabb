// A data-parallel run stopped and resumed on another number of ranks (tests/dist/CMakeLists.txt runs the two
// halves as two mpirun jobs sharing a directory):
//   distributed_resume first DIR    (2 ranks) trains epochs 1–2 of a 3-epoch run into DIR; its checkpoint is the
//                                   end of epoch 2
//   distributed_resume resume DIR   (3 ranks) resumes that checkpoint and trains epoch 3; rank 0 also trains
//                                   all 3 epochs in one process, and compares
//   distributed_resume first|resume DIR zero   the same with ZeRO-1 (the Adam state sharded over the ranks):
//                                   rank 0 writes the whole state, fetched from the ranks that hold it, and each
//                                   rank of the resumed run loads its own share
// The resumed run must see the same batches, the same warm-up-and-cosine learning rates and the same step count
// (Adam's bias corrections), so its epoch-3 training and validation losses and its parameters equal the
// uninterrupted run's within the float32 tolerance of distributed_steps.cpp (sums in another order: 1e-5 of a
// loss, 1e-4 of a tensor's largest magnitude).
#include <kiln/cpu/trainer.hpp>
#include <kiln/dist/mpi.hpp>
#include <kiln/kiln.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace kiln;

namespace {

constexpr auto net = nn::sequential(dense<16>{}, kiln::tanh, dense<3>{});
struct loss_model { constexpr auto operator()() const { return cross_entropy(net(input<5>("x")), labels<3>("y")); } };
struct logits_model { constexpr auto operator()() const { return net(input<5>("x")); } };
template <class Optimizer>
using trainer_of = train::trainer<loss_model, Optimizer, logits_model>;

train::table make_data(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (int i = 0; i < n; ++i) {
    float v[5];
    for (float& e : v) x.push_back(e = u(rng));
    y.push_back(v[0] + v[1] > v[2] ? (v[3] > 0 ? 0 : 1) : 2);
  }
  train::table t;
  t.add_features("x", x, 5).add_labels("y", y);
  return t;
}

train::options settings(int epochs, const std::string& dir) {
  train::options o;
  o.epochs = epochs;
  o.batch_size = 24;  // 96 rows: 4 batches, each split evenly over 2 or 3 ranks
  o.seed = 9;
  o.out_dir = dir;
  o.progress = train::progress_style::quiet;
  o.schedule = warmup_cosine{.warmup = 3, .total = 12, .start = 0.2};
  o.schedule_per_iteration = true;
  return o;
}

using parallel_optimizer = data_parallel<adam>;
constexpr adam inner{.lr = 0.02};

}  // namespace

int main(int argc, char** argv) {
  dist::mpi_communicator comm(&argc, &argv, {.timeout = std::chrono::seconds(60)});
  if (argc != 3 && !(argc == 4 && std::string(argv[3]) == "zero")) comm.abort("usage: distributed_resume first|resume DIR [zero]");
  const std::string mode = argv[1], dir = argv[2];
  const cpu::data_parallel_options step_options{.shard_optimizer_state = argc == 4};
  const train::table data = make_data(96, 1), validation = make_data(30, 2);
  try {
    if (mode == "first") {
      trainer_of<parallel_optimizer> t({.inner = inner}, settings(2, dir));
      t.set_communicator(comm, step_options);
      t.fit(data, validation);
      return 0;
    }
    trainer_of<parallel_optimizer> resumed({.inner = inner}, settings(1, dir + "/resumed"));
    resumed.set_communicator(comm, step_options);
    const int epoch = resumed.resume(dir + "/model.safetensors");
    resumed.fit(data, validation);
    const graph& g = decltype(resumed)::step_type::step_graph();
    std::vector<std::vector<float>> values(static_cast<std::size_t>(g.num_leaves));  // from the ranks that hold them
    for (int l = 0; l < g.num_leaves; ++l)
      if (train::is_stored(g.leaves[l])) values[static_cast<std::size_t>(l)] = resumed.step().gather(g.leaves[l].name.view());
    if (!comm.is_root()) return 0;
    trainer_of<adam> whole(inner, settings(3, ""));
    whole.fit(data, validation);
    const train::epoch_record &a = resumed.history().at(0), &b = whole.history().at(2);
    double worst = std::max(std::abs(a.train_loss - b.train_loss) / (1e-5 * b.train_loss),
                            std::abs(a.val_loss - b.val_loss) / (1e-5 * b.val_loss));
    std::string where = "losses";
    for (int l = 0; l < g.num_leaves; ++l) {
      if (!train::is_stored(g.leaves[l])) continue;
      const std::string name(g.leaves[l].name.view());
      const std::vector<float>& p = values[static_cast<std::size_t>(l)];
      const auto q = whole.step().param(name);
      double scale = 0;
      for (const float v : q) scale = std::max(scale, static_cast<double>(std::abs(v)));
      for (std::size_t j = 0; j < p.size(); ++j)
        if (const double r = std::abs(static_cast<double>(p[j]) - q[j]) / (1e-4 * scale); r > worst) {
          worst = r;
          where = name + "[" + std::to_string(j) + "]";
        }
    }
    const bool ok = epoch == 2 && a.epoch == 3 && a.lr == b.lr && resumed.step().step_count() == whole.step().step_count() && worst <= 1;
    std::printf("%s resumed on %d ranks%s from epoch %d: epoch %d train loss %.9g (one process %.9g), val loss %.9g (%.9g), "
                "lr %.9g (%.9g), worst %s at %.3g of the tolerance\n",
                ok ? "PASS" : "FAIL", comm.size(), step_options.shard_optimizer_state ? " (ZeRO-1)" : "", epoch, a.epoch, a.train_loss, b.train_loss, a.val_loss, b.val_loss, a.lr, b.lr,
                where.c_str(), worst);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
}
