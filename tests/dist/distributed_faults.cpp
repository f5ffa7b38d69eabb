// Faults in a data-parallel run, under mpirun (tests/dist/CMakeLists.txt checks what each prints):
//   exit      rank 1 exits (code 3) after its first step, without a word: the other ranks are stopped by
//             mpirun (their next sum cannot complete), which names rank 1 and its exit code;
//   throw     rank 1 throws in its second step: it reports "kiln: rank 1: …" and aborts the job;
//   mismatch  rank 1 builds another model: every rank refuses to start, naming rank 1;
//   hang      rank 1 stops calling collectives (sleeps): rank 0's sums time out after 3 s and it aborts the job,
//             naming itself and what it waited for, instead of hanging.
// Each mode ends with a non-zero status; the time limit of each test bounds how long stopping may take.
#include <kiln/cpu/train_step.hpp>
#include <kiln/dist/mpi.hpp>
#include <kiln/kiln.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace kiln;

namespace {

struct model_a {
  constexpr auto operator()() const { return cross_entropy(nn::sequential(dense<8>{}, relu, dense<3>{})(input<4>("x")), labels<3>("y")); }
};
struct model_b {
  constexpr auto operator()() const { return cross_entropy(nn::sequential(dense<9>{}, relu, dense<3>{})(input<4>("x")), labels<3>("y")); }
};

template <class Model>
void run_steps(dist::communicator& comm, const std::string& mode) {
  cpu::train_step<Model, data_parallel<adam>> step;
  step.set_communicator(comm);
  std::vector<float> x(8 * 4, 0.5f);
  std::vector<std::int32_t> y(8, 1);
  for (int t = 1; t <= 20; ++t) {
    if (comm.rank() == 1 && mode == "exit" && t == 2) std::_Exit(3);
    if (comm.rank() == 1 && mode == "throw" && t == 2) throw std::runtime_error("a deliberate failure in step 2");
    if (comm.rank() == 1 && mode == "hang" && t == 2) std::this_thread::sleep_for(std::chrono::seconds(30));
    step.run(8, {{"x", x}, {"y", y}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  dist::mpi_communicator comm(&argc, &argv, {.timeout = std::chrono::seconds(3)});
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "mismatch" && comm.rank() == 1) run_steps<model_b>(comm, mode);
    else run_steps<model_a>(comm, mode);
  } catch (const std::exception& e) {
    comm.abort(e.what());
  }
  std::printf("rank %d finished without a fault\n", comm.rank());
  return 0;
}
