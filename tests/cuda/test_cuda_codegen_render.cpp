// The CUDA renderer without compiling: deterministic text, kernel names, the whole-step lowering's launch
// counts and its fallback, shared-memory placement under a budget, and launch geometry.
#include "test_cuda_codegen_common.hpp"

#include <algorithm>

using namespace kiln;
using namespace kiln_cuda_test;

namespace {

template <class Model, class Opt, fusion Mode>
struct compiled {
  static constexpr const graph& g = step_graph<Model, Opt>::value;
  static constexpr const plan& p = frozen_plan<step_graph<Model, Opt>, Mode>::value;
};

// x - mean over the batch feeds a layer: a row kernel needs a batch reduction first (as batch norm would).
struct centered_model {
  constexpr auto operator()() const { return mse(nn::sequential(dense<3>{})(x - mean_batch(x)), t); }
};

std::vector<std::string> names(const cuda::rendered_program& r) { return r.kernel_names(); }

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("rendering is deterministic and names kernels after the plan", "[cuda][render]") {
  const plan& p = compiled<ce_model<relu_fn>, adam, fusion::unfused>::p;
  const cuda::rendered_program a = cuda::render(p), b = cuda::render(p);
  CHECK(a.module_source() == b.module_source());
  REQUIRE(static_cast<int>(a.launches.size()) == p.num_kernels);
  for (int k = 0; k < p.num_kernels; ++k) {
    INFO("kernel " << k);
    CHECK(a.launches[k].name == std::string("k") + std::to_string(k) + "_" + kernel_name(p, k));
    CHECK(contains(a.launches[k].text, "extern \"C\" __global__ void __launch_bounds__(256) " + a.launches[k].name + "(KILN_PARAMS"));
    // the plan's own printed line for the kernel is its comment
    CHECK(contains(a.launches[k].text, std::string("// k") + std::to_string(k) + " " + kernel_name(p, k) + " " + dims_text(p.kernels[k].domain)));
  }
  CHECK_FALSE(a.whole_step);
  CHECK(a.note.empty());  // unfused plans are one kernel per primitive by design, not a fallback
}

TEST_CASE("feature sizes are baked in, the batch is an argument, buffers are parameters", "[cuda][render]") {
  const plan& p = compiled<classifier_model, adam, fusion::unfused>::p;
  const cuda::rendered_program r = cuda::render(p);
  auto is_gemm = [](const cuda::launch_spec& l) { return l.kind == cuda::launch_kind::contraction; };
  const auto at = std::find_if(r.launches.begin(), r.launches.end(), is_gemm);
  REQUIRE(at != r.launches.end());
  const cuda::launch_spec& first = *at;  // x·W1ᵀ: [batch,784]·[784,128]
  CHECK(contains(first.text, "const int M = (int)batch, N = 128, K = 784;"));
  // one float* per buffer it touches: x, fc1.weight (read through its transpose) and the result
  CHECK(first.buffers.size() == 3);
  for (int b : first.buffers) CHECK(contains(first.text, "float* " + cuda::buffer_name(b)));
  CHECK(contains(r.prelude, "struct kiln_hypers { float v[16]; unsigned rng[4]; };"));  // scalars, random key
  CHECK(contains(r.module_source(), "h.v[0]"));  // the learning rate is read at run time
}

TEST_CASE("an MLP training step is three launches in fused mode", "[cuda][render][fused]") {
  auto check_three = [](const plan& p) {
    const cuda::rendered_program r = cuda::render(p);
    INFO(r.note);
    REQUIRE(r.whole_step);
    CHECK(names(r) == std::vector<std::string>{"fused_rows", "fused_reduce", "fused_tail"});
    // every plan kernel runs in one of them
    std::string fused;
    for (const auto& l : r.launches) fused += " " + l.fuses;
    for (int k = 0; k < p.num_kernels; ++k) CHECK(contains(fused + " ", std::string(" k") + std::to_string(k) + " "));
  };
  check_three(compiled<mlp64_model, adam, fusion::fused>::p);
  check_three(compiled<classifier_model, adam, fusion::fused>::p);
  check_three(compiled<ce_model<gelu_fn>, nesterov, fusion::fused>::p);
  check_three(compiled<acts_a_model, adam, fusion::fused>::p);
  check_three(compiled<prelu_model, sgd, fusion::fused>::p);
}

TEST_CASE("batch-free values next to the loss sum run before the rows kernel", "[cuda][render][fused]") {
  // The plan puts 1/batch (needed by the backward rows) and the summed loss (needing the batch) in one [1,1]
  // kernel; the lowering splits it by root.
  const plan& p = compiled<losses_model, momentum, fusion::fused>::p;
  const cuda::rendered_program r = cuda::render(p);
  INFO(r.note);
  REQUIRE(r.whole_step);
  CHECK(names(r) == std::vector<std::string>{"fused_pre", "fused_rows", "fused_reduce", "fused_tail"});
  CHECK(contains(r.launches[0].text, "(this part: the roots"));
}

TEST_CASE("batch-free contractions run in the single-block kernels around the rows kernel", "[cuda][render][fused]") {
  const plan& p = compiled<factored_model, adam, fusion::fused>::p;
  // Lowering may attach A's update (in place) to a kernel before B's gradient reads A through Aᵀ. Rendering
  // must then refuse, naming both kernels, rather than compute B's gradient from the updated A.
  const std::string hazard = cuda::in_place_hazard(p);
  if (!hazard.empty()) {
    CHECK_THAT(hazard, Catch::Contains("overwrites 'a' in place before") && Catch::Contains("reads its old value"));
    CHECK_THROWS_WITH(cuda::render(p), Catch::Contains("the plan cannot run as lowered: " + hazard));
    WARN("the fused plan of factored_model overwrites a leaf before reading it: " << hazard);
    return;
  }
  const cuda::rendered_program r = cuda::render(p);
  INFO(r.note);
  REQUIRE(r.whole_step);
  CHECK(names(r) == std::vector<std::string>{"fused_pre", "fused_rows", "fused_reduce", "fused_tail"});
  CHECK(contains(r.launches.front().text, "kiln_rt::block_gemm<"));  // W = A·B
  CHECK(contains(r.launches.back().text, "kiln_rt::block_gemm<"));   // the gradients of A and B
}

TEST_CASE("no test model's plan overwrites a leaf before reading its old value", "[cuda][render]") {
  CHECK(cuda::in_place_hazard(compiled<factored_model, adam, fusion::unfused>::p).empty());
  CHECK(cuda::in_place_hazard(compiled<classifier_model, adam, fusion::fused>::p).empty());
  CHECK(cuda::in_place_hazard(compiled<acts_a_model, adam, fusion::fused>::p).empty());
  CHECK(cuda::in_place_hazard(compiled<acts_b_model, adamw, fusion::fused>::p).empty());
  CHECK(cuda::in_place_hazard(compiled<acts_c_model, nesterov, fusion::fused>::p).empty());
  CHECK(cuda::in_place_hazard(compiled<losses_model, momentum, fusion::fused>::p).empty());
}

TEST_CASE("a row kernel that needs a batch reduction falls back to one launch per plan kernel, saying why",
          "[cuda][render][fused]") {
  const plan& p = compiled<centered_model, sgd, fusion::fused>::p;
  const cuda::rendered_program r = cuda::render(p);
  CHECK_FALSE(r.whole_step);
  CHECK(static_cast<int>(r.launches.size()) == p.num_kernels);
  CHECK_THAT(r.note, Catch::Contains("works on batch rows but depends on") && Catch::Contains("needs the whole batch first"));
  cuda::render_options off;
  off.whole_step = false;
  CHECK(cuda::render(compiled<mlp64_model, adam, fusion::fused>::p, off).launches.size() ==
        static_cast<std::size_t>(compiled<mlp64_model, adam, fusion::fused>::p.num_kernels));
}

TEST_CASE("the rows kernel keeps intermediates on chip within the shared-memory budget", "[cuda][render][fused]") {
  const plan& p = compiled<mlp64_model, adam, fusion::fused>::p;
  cuda::render_options big, small;
  big.shared_bytes = 227 * 1024;
  small.shared_bytes = 48 * 1024;
  const cuda::rendered_program rb = cuda::render(p, big), rs = cuda::render(p, small);
  REQUIRE(rb.whole_step);
  REQUIRE(rs.whole_step);
  CHECK(rb.tile_rows > rs.tile_rows);
  CHECK(rs.tile_rows == 32);
  CHECK(rb.on_chip.size() > rs.on_chip.size());
  const cuda::launch_spec& rows_big = rb.launches[0];
  const cuda::launch_spec& rows_small = rs.launches[0];
  CHECK(rows_big.shared_floats * 4 <= big.shared_bytes);
  CHECK(rows_small.shared_floats * 4 <= small.shared_bytes);
  CHECK_FALSE(contains(rows_big.text, "// in global memory:"));
  CHECK(contains(rows_small.text, "// in global memory:"));
  // values that do not fit are read from their global buffers at row0 + r
  for (const auto& l : rs.launches)
    for (int b : l.buffers)
      if (!cuda::is_leaf_buffer(b)) CHECK(rs.on_chip.count(cuda::node_of_buffer(b)) == 0);
  cuda::render_options fixed = big;
  fixed.tile_rows = 16;
  CHECK(cuda::render(p, fixed).tile_rows == 16);
}

TEST_CASE("launch geometry follows the batch and the device", "[cuda][render]") {
  const plan& p = compiled<mse_model<relu_fn>, sgd, fusion::unfused>::p;
  const cuda::rendered_program r = cuda::render(p);
  const auto small = cuda::program_geometry(r, 7, 132, 256, 227 * 1024);
  const auto large = cuda::program_geometry(r, 1 << 20, 132, 256, 227 * 1024);
  bool split_sum = false, split_gemm = false;
  for (std::size_t i = 0; i < r.launches.size(); ++i) {
    const cuda::launch_spec& s = r.launches[i];
    INFO(s.name);
    CHECK(small[i].grid.y == 1);
    CHECK(small[i].grid.z == 1);
    if (s.kind == cuda::launch_kind::column_sum && s.domain.rows == batch) {
      split_sum |= large[i].grid.y > 1;
      CHECK(large[i].ws_floats == static_cast<long long>(large[i].grid.y) * s.domain.cols);
    }
    if (s.kind == cuda::launch_kind::contraction && s.inner == batch) {  // weight gradients contract the batch
      split_gemm |= large[i].grid.z > 1;
      CHECK(large[i].ws_floats == static_cast<long long>(large[i].grid.z) * s.domain.rows * s.domain.cols);
    }
  }
  CHECK(split_sum);
  CHECK(split_gemm);
  // 2^23 rows are 131072 row tiles of 64: the grid stops at 65535 rows of blocks, which walk the rest
  const auto huge = cuda::program_geometry(r, 1L << 23, 132, 256, 227 * 1024);
  for (std::size_t i = 0; i < r.launches.size(); ++i)
    if (r.launches[i].kind == cuda::launch_kind::contraction && r.launches[i].domain.rows == batch) {
      CHECK(huge[i].grid.y == 65535);
      CHECK(huge[i].grid.z == 1);
      CHECK(contains(r.launches[i].text, "for (int mt = blockIdx.y; mt * 64 < M; mt += gridDim.y)"));
    }

  const cuda::rendered_program f = cuda::render(compiled<mse_model<relu_fn>, sgd, fusion::fused>::p);
  REQUIRE(f.whole_step);
  const auto g7 = cuda::program_geometry(f, 7, 132, 256, 227 * 1024);
  const auto gm = cuda::program_geometry(f, 1 << 20, 132, 256, 227 * 1024);
  CHECK(g7[0].grid.x == 1);                     // one tile
  CHECK(gm[0].grid.x >= 132);                   // every SM busy
  CHECK(gm[1].ws_blocks == static_cast<int>(gm[0].grid.x));  // the reduce kernel sums every block's partials
  CHECK(gm[0].ws_floats == static_cast<long long>(gm[0].grid.x) * f.launches[0].partial_floats);
  CHECK(gm[2].grid.x == 1);                     // the tail is one block
}
