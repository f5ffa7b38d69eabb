// Run under mpirun with N ranks (ctest: test names containing "distributed"). For each optimizer, with clipping
// by the global gradient norm on and off, N ranks each train a data-parallel step on their share (B/N rows) of
// the same batches, and rank 0 also trains one process on the whole batches (B rows); after every step:
//   - the ranks' parameters and optimizer state are bit-identical (every rank applies the same update to the
//     same sums: MPI's sum gives every rank the same result);
//   - the mean of the ranks' losses equals the one process's loss, and every parameter and moment equals its
//     value in the one process, within the float32 tolerance derived below.
// Every configuration runs twice: without and with ZeRO-1 (the optimizer state sharded over the ranks). Sharded,
// the state is gathered from the rank that holds it for the comparison, each rank must hold less than the whole
// state (their shares adding up to the whole), and the gradient sums must be reduces to their owners exactly
// when no clipping reads every gradient.
// A model with dropout runs with each rank's rows a block of the batch (set_sample_rows) and strided (the
// trainer's split, set_communicator's default): the ranks draw the masks of their rows' places in the whole
// batch, so they match the one process too.
// Prints one PASS/FAIL line per configuration on rank 0 and exits 1 on any failure.
//
// Tolerance. The two runs differ only in how the batch mean of the gradients is summed: one process adds B
// per-sample terms in its kernels' order, the ranks add B/N each and then sum N partial means. Each order gives
// the exact mean to within about B·u relative to Σ|terms| (u = 2⁻²⁴ ≈ 6e-8), so B = 24 gives about 1.5e-6 of a
// gradient's scale. SGD and momentum move a parameter by lr times the gradient, so their difference is
// ~1e-6·lr·|g| per step; Adam divides by √v̂, which keeps a relative error relative unless a gradient is near
// zero against its own rounding (its step could then be any value up to lr; these models have no parameter
// with an exactly-zero gradient). Clipping multiplies every gradient by one factor computed from the same sums.
// Over 6 steps these stay below 1e-5 of each tensor's largest magnitude (measured: see the printed worst
// ratios), so the check uses REL = 1e-4 of each tensor's largest magnitude, and 1e-5 for the losses.
#include <kiln/core/hash.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/dist/mpi.hpp>
#include <kiln/kiln.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace kiln;

namespace {

constexpr long global_batch = 24;  // divisible by 1, 2, 3 and 4 ranks
constexpr int steps = 6;
constexpr double rel = 1e-4, loss_rel = 1e-5;

struct model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<16>{}, relu, dense<12>{}, kiln::tanh, dense<5>{})(input<10>("x")), labels<5>("y"));
  }
};

// Dropout after both hidden layers: the ranks draw the masks of their rows' places in the whole batch
// (random::sample_row), so together they drop what the one process drops.
struct dropout_model {
  constexpr auto operator()() const {
    return cross_entropy(nn::sequential(dense<16>{}, relu, kiln::dropout{.p = 0.4}, dense<12>{}, kiln::tanh,
                                        kiln::dropout{.p = 0.2}, dense<5>{})(input<10>("x")),
                         labels<5>("y"));
  }
};

// How a rank's rows are taken from the batch: a block of B/N rows (set_sample_rows(rank·B/N, 1)), or rows rank,
// rank + N, … (the trainer's split, which set_communicator assumes).
enum class split { block, strided };

struct batch_data {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
std::vector<batch_data> make_batches(std::uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<batch_data> out(steps);
  for (batch_data& b : out) {
    for (long i = 0; i < global_batch * 10; ++i) b.x.push_back(u(r));
    for (long i = 0; i < global_batch; ++i) b.y.push_back(static_cast<std::int32_t>(r() % 5));
  }
  return out;
}

template <class Inner>
constexpr bool clipped = false;
template <class Inner>
constexpr bool clipped<clip_grad_norm<Inner>> = true;

// FNV-1a over a tensor's bytes (kiln::fnv1a64), continuing from h.
std::uint64_t hash_of(std::span<const float> v, std::uint64_t h) {
  return fnv1a64(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)), h);
}

template <class Inner, class Model = model>
bool check(dist::communicator& comm, const char* label, Inner inner, std::uint64_t seed, bool zero, split rows = split::block) {
  using parallel_step = cpu::train_step<Model, data_parallel<Inner>>;
  const graph& G = parallel_step::G;
  parallel_step parallel({.inner = inner}, comm.rank() == 0 ? seed : seed + 17);  // rank 0's values are broadcast
  parallel.set_communicator(comm, {.bucket_floats = 200, .shard_optimizer_state = zero});  // several buckets
  std::string sharding;  // what ZeRO-1 saved on this rank
  bool sharding_ok = true;
  if (zero) {
    const cpu::optimizer_shards& s = *parallel.shards();
    int reduces = 0, sums = 0;
    for (int i = 0; i < G.size; ++i)
      if (G.nodes[i].kind == op::all_reduce) sums += 1, reduces += s.reduce[static_cast<std::size_t>(i)];
    sharding = "; ZeRO-1: rank 0 holds " + std::to_string(s.state_floats_held) + " of " + std::to_string(s.state_floats) +
               " state values, " + std::to_string(reduces) + " of " + std::to_string(sums) + " sums go to one rank";
    // the ranks' shares of the state add up to the whole (no rank holds another's), each less than the whole where
    // there is state; sums are reduces unless clipping reads them all
    long held_by_all = 0;
    for (const std::uint64_t held : comm.all_gather(static_cast<std::uint64_t>(s.state_floats_held))) held_by_all += static_cast<long>(held);
    sharding_ok = held_by_all == s.state_floats && (s.state_floats == 0 || s.state_floats_held < s.state_floats) &&
                  (reduces == sums) != clipped<Inner>;
    for (int l = 0; l < G.num_leaves; ++l)  // state held only in part is refused by name, naming its holders
      if (!s.held[static_cast<std::size_t>(l)]) {
        const cpu::row_share first = s.shares[static_cast<std::size_t>(l)].front();
        const std::string expected = "is sharded over the ranks (rows [0, " + std::to_string(first.end) + ") on rank " +
                                     std::to_string(first.rank);
        try {
          (void)parallel.param(G.leaves[l].name.view());
          sharding_ok = false;
        } catch (const error& e) {
          sharding_ok = sharding_ok && std::string(e.what()).find(expected) != std::string::npos;
        }
      }
  }
  cpu::train_step<Model, Inner> single(inner, seed);
  const long share = global_batch / comm.size();
  if (rows == split::block) parallel.set_sample_rows(static_cast<std::uint64_t>(comm.rank() * share), 1);
  const std::vector<batch_data> batches = make_batches(seed);
  double worst = 0;  // of the difference to the tolerance
  std::string where;
  bool identical = true;
  for (int t = 0; t < steps; ++t) {
    const batch_data& b = batches[static_cast<std::size_t>(t)];
    std::vector<float> x;
    std::vector<std::int32_t> y;
    for (long i = 0; i < share; ++i) {  // this rank's rows of the batch
      const long row = rows == split::block ? comm.rank() * share + i : comm.rank() + i * comm.size();
      x.insert(x.end(), b.x.begin() + row * 10, b.x.begin() + (row + 1) * 10);
      y.push_back(b.y[static_cast<std::size_t>(row)]);
    }
    double loss = parallel.run(share, {{"x", x}, {"y", y}});
    comm.all_reduce_sum(std::span<double>(&loss, 1));
    loss /= comm.size();
    // every parameter and state, from the rank that holds it (a collective when sharded)
    std::vector<std::vector<float>> values(static_cast<std::size_t>(G.num_leaves));
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (int l = 0; l < G.num_leaves; ++l)
      if (G.leaves[l].kind == leaf_kind::param || G.leaves[l].kind == leaf_kind::state) {
        values[static_cast<std::size_t>(l)] = parallel.gather(G.leaves[l].name.view());
        h = hash_of(values[static_cast<std::size_t>(l)], h);
      }
    const std::vector<std::uint64_t> hashes = comm.all_gather(h);
    for (const std::uint64_t other : hashes) identical = identical && other == hashes[0];
    if (comm.rank() != 0) continue;
    const double one = single.run(global_batch, {{"x", b.x}, {"y", b.y}});
    const double loss_ratio = std::abs(loss - one) / (loss_rel * std::abs(one));
    if (loss_ratio > worst) { worst = loss_ratio; where = "loss at step " + std::to_string(t + 1); }
    for (int l = 0; l < G.num_leaves; ++l) {
      if (G.leaves[l].kind != leaf_kind::param && G.leaves[l].kind != leaf_kind::state) continue;
      const std::string name(G.leaves[l].name.view());
      const std::vector<float>& a = values[static_cast<std::size_t>(l)];
      const auto e = single.param(name);
      double scale = 0;
      for (const float v : e) scale = std::max(scale, static_cast<double>(std::abs(v)));
      for (std::size_t j = 0; j < a.size(); ++j) {
        const double ratio = std::abs(static_cast<double>(a[j]) - e[j]) / (rel * scale);
        if (ratio > worst) {
          worst = ratio;
          where = "step " + std::to_string(t + 1) + " " + name + "[" + std::to_string(j) + "]: ranks " + std::to_string(a[j]) +
                  ", one process " + std::to_string(e[j]);
        }
      }
    }
  }
  if (comm.rank() != 0) return true;
  const bool ok = worst <= 1 && identical && sharding_ok;
  std::printf("%s distributed %d ranks, %s%s%s: worst %s (%.3g of the tolerance)%s%s%s\n", ok ? "PASS" : "FAIL", comm.size(), label,
              zero ? ", ZeRO-1" : "", rows == split::strided ? ", strided rows" : "", where.c_str(), worst, identical ? "" : "; the ranks' parameters differ", sharding.c_str(),
              sharding_ok ? "" : " (expected less than the whole state on each rank, and reduces exactly when unclipped)");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  dist::mpi_communicator comm(&argc, &argv, {.timeout = std::chrono::seconds(60)});
  if (global_batch % comm.size() != 0) comm.abort("the test's batch of 24 does not split over " + std::to_string(comm.size()) + " ranks");
  bool ok = true;
  try {
    for (const bool zero : {false, true}) {  // ZeRO-1 off and on
      ok &= check(comm, "sgd", sgd{.lr = 0.1, .weight_decay = 1e-3}, 1, zero);
      ok &= check(comm, "momentum", momentum{.lr = 0.05, .momentum = 0.9}, 2, zero);
      ok &= check(comm, "nesterov", nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}, 3, zero);
      ok &= check(comm, "adam", adam{.lr = 1e-2}, 4, zero);
      ok &= check(comm, "adamw", adamw{.lr = 1e-2, .weight_decay = 0.05}, 5, zero);
      ok &= check(comm, "sgd clipped", clip_grad_norm<sgd>{.inner = {.lr = 0.1}, .max_norm = 0.1}, 6, zero);
      ok &= check(comm, "adam clipped", clip_grad_norm<adam>{.inner = {.lr = 1e-2}, .max_norm = 0.1}, 7, zero);
      ok &= check(comm, "adamw clipped (inactive)", clip_grad_norm<adamw>{.inner = {.lr = 1e-2}, .max_norm = 1e3}, 8, zero);
      ok &= check<adam, dropout_model>(comm, "adam, dropout", adam{.lr = 1e-2}, 9, zero);
      ok &= check<adam, dropout_model>(comm, "adam, dropout", adam{.lr = 1e-2}, 10, zero, split::strided);
    }
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
  return comm.rank() == 0 && !ok ? 1 : 0;
}
