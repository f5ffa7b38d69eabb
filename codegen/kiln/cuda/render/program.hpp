#pragma once
// A plan rendered as CUDA C++: the prelude plus one extern "C" kernel per launch, deterministic text (the same
// plan and options give the same bytes), static feature sizes baked in, the batch size a kernel argument
// (KILN_PARAMS), one float* per buffer a kernel touches, hyperparameters as a small by-value array.
//
//   unfused plan   one kernel per plan kernel, i.e. per primitive; every intermediate in global memory
//   fused plan     the whole-step lowering (whole_step.hpp): pre?, rows, reduce, tail — three launches for an
//                  MLP step; plans it cannot take fall back to one kernel per plan kernel (note says why)
//
// Kernel names: k<index>_<kiln::kernel_name> for per-plan-kernel launches (k3_matmul_add_max), fused_pre /
// fused_rows / fused_reduce / fused_tail for the whole-step kernels (their comments list the plan kernels
// they run, with the plan's printed lines). module_source() is what gets compiled; kernel_file(i) is one
// kernel with the prelude, which compiles on its own (what KILN_DUMP_DIR writes).
#include <kiln/cuda/runtime/api_types.hpp>
#include <kiln/cuda/render/prelude.hpp>
#include <kiln/cuda/render/whole_step.hpp>

namespace kiln::cuda {

struct render_options {
  int threads = 256;                // threads per block, every kernel
  int shared_bytes = 96 * 1024;     // dynamic shared memory a whole-step rows kernel may use (the device's opt-in max)
  int tile_rows = 0;                // batch rows per block tile of the rows kernel; 0: the largest of 128/64/32 that
                                    // keeps every intermediate on chip (else 32, spilling what does not fit)
  bool whole_step = true;           // fused plans: try the whole-step lowering
  matmul_precision precision = matmul_precision::fp32;
};

struct rendered_program {
  std::string prelude;
  std::vector<launch_spec> launches;
  bool whole_step = false;          // the fused whole-step lowering was used
  std::string note;                 // fused plan that fell back: the reason
  int tile_rows = 0;
  std::set<int> on_chip;            // nodes the rows kernel keeps in shared memory: they get no global buffer

  std::string module_source() const {
    std::string s = prelude;
    for (const launch_spec& l : launches) s += "\n" + l.text;
    return s;
  }
  std::string kernel_file(std::size_t i) const { return prelude + "\n" + launches.at(i).text; }
  std::vector<std::string> kernel_names() const {
    std::vector<std::string> n;
    for (const launch_spec& l : launches) n.push_back(l.name);
    return n;
  }
};

// A plan kernel that overwrites a leaf in place before a later kernel reads the leaf's old value (directly or
// through a transpose) breaks the rule that assignments happen after every read. Returns a description of the
// first such pair, or "" when there is none. (Reads of the assigned node itself want the new value: fine.)
inline std::string in_place_hazard(const plan& p) {
  std::vector<int> written_by(static_cast<std::size_t>(p.g.num_leaves), -1);
  for (int k = 0; k < p.num_kernels; ++k) {
    const kernel& kr = p.kernels[k];
    const kernel_view body = view_of(p, kr);
    auto reads_old = [&](int id) -> int {  // the leaf whose old value node `id` is, or -1
      if (id < 0) return -1;
      if (p.at(id).kind == op::transpose) id = p.at(id).in[0];
      return ops::class_of(p.at(id).kind) == op_class::leaf ? p.at(id).leaf : -1;
    };
    std::vector<int> loads;
    for (int id : body.nodes)
      for (int a = 0; a < ops::arity_of(p.at(id).kind); ++a)
        if (!body.has(p.at(id).in[a])) loads.push_back(p.at(id).in[a]);
    if (kr.kind != kernel_kind::elementwise)
      for (int a = 0; a < ops::arity_of(p.at(kr.anchor).kind); ++a) loads.push_back(p.at(kr.anchor).in[a]);
    for (int id : loads) {
      const int leaf = reads_old(id);
      if (leaf >= 0 && written_by[leaf] >= 0)
        return std::string("k") + std::to_string(written_by[leaf]) + " " + kernel_name(p, written_by[leaf]) + " overwrites '" +
               std::string(p.g.leaves[leaf].name.view()) + "' in place before k" + std::to_string(k) + " " +
               kernel_name(p, k) + " reads its old value";
    }
    for (int r : body.roots)
      if (p.assign[r] >= 0 && written_by[p.assign[r]] < 0) written_by[p.assign[r]] = k;
  }
  return {};
}

// Throws kiln::error when the plan overwrites a leaf before a later read of its old value (see
// in_place_hazard): running it would silently compute with the new value.
inline rendered_program render(const plan& p, const render_options& o = {}) {
  check_threads(o.threads);
  if (const std::string hazard = in_place_hazard(p); !hazard.empty())
    throw error("kiln cuda: the plan cannot run as lowered: " + hazard +
                " (lowering must place every in-place assignment after the last read of the old value)");
  rendered_program out;
  out.prelude = prelude_source(o.precision);
  if (p.mode == fusion::fused && o.whole_step) {
    const whole_step_plan w = plan_whole_step(p, o.threads, o.shared_bytes / 4, o.tile_rows);
    if (w.ok) {
      out.whole_step = true;
      out.tile_rows = w.tile_rows;
      for (const tile_slot& s : w.slots)
        if (s.offset >= 0) out.on_chip.insert(s.node);
      if (w.has_stage(0)) out.launches.push_back(render_single_block(p, w, 0, "fused_pre", o.threads));
      if (!w.phases.empty()) out.launches.push_back(render_fused_rows(p, w, "fused_rows", o.threads));
      if (w.has_stage(2)) out.launches.push_back(render_fused_reduce(p, w, "fused_reduce", o.threads));
      if (w.has_stage(3)) out.launches.push_back(render_single_block(p, w, 3, "fused_tail", o.threads));
      return out;
    }
    out.note = "whole-step lowering not possible: " + w.why + "; one kernel per plan kernel instead";
  }
  for (int k = 0; k < p.num_kernels; ++k)
    out.launches.push_back(render_plan_kernel(p, k, std::string("k") + std::to_string(k) + "_" + kernel_name(p, k), o.threads));
  return out;
}

// ---- launch geometry, decided per run from the batch size and the device

struct launch_geometry {
  dims3 grid{}, block{};
  unsigned shared_bytes = 0;
  long long ws_floats = 0;   // workspace the launch writes (one region shared by every launch of a program)
  unsigned tickets = 0;      // zeroed counters it uses (likewise shared)
  int ws_blocks = 0;         // the KILN_PARAMS argument: blocks of the rows launch, for the reduce launch
};

inline long long resolve_dim(int d, long long batch_size) { return d == batch ? batch_size : d; }

inline unsigned grid_cap(long long want, long long cap) {
  return static_cast<unsigned>(want < 1 ? 1 : want > cap ? cap : want);
}

// Blocks of the rows launch: every SM busy (two blocks per SM when the shared memory allows), at most one per tile.
inline unsigned rows_blocks(const launch_spec& s, long long batch_size, int sms, int max_shared_bytes) {
  const long long tiles = (batch_size + s.tile_rows - 1) / s.tile_rows;
  const long long per_sm = static_cast<long long>(s.shared_floats) * 4 * 2 <= max_shared_bytes ? 2 : 1;
  return grid_cap(std::min(tiles, per_sm * sms), 65535);
}

inline std::vector<launch_geometry> program_geometry(const rendered_program& prog, long long batch_size, int sms,
                                                     int threads, int max_shared_bytes) {
  std::vector<launch_geometry> out;
  unsigned rows_grid = 1;
  const long long wide = static_cast<long long>(sms) * 16;
  for (const launch_spec& s : prog.launches) {
    launch_geometry g;
    g.block = dims3{static_cast<unsigned>(threads), 1, 1};
    g.shared_bytes = static_cast<unsigned>(s.shared_floats) * 4;
    switch (s.kind) {
      case launch_kind::elementwise: {
        const long long total = resolve_dim(s.domain.rows, batch_size) * s.domain.cols;
        g.grid.x = grid_cap((total + threads - 1) / threads, wide);
        break;
      }
      case launch_kind::row_reduce: {
        const long long rows = resolve_dim(s.domain.rows, batch_size), per_block = threads / 32;
        g.grid.x = grid_cap((rows + per_block - 1) / per_block, wide);
        break;
      }
      case launch_kind::column_sum: {
        const long long rows = resolve_dim(s.domain.rows, batch_size), C = s.domain.cols;
        g.grid.x = grid_cap((C + 31) / 32, 1LL << 30);
        // split the rows over blocks when they are many and the columns give too few blocks
        const long long want = std::min((rows + 1023) / 1024, std::max(1LL, 4LL * sms / g.grid.x));
        g.grid.y = grid_cap(want, 65535);
        if (g.grid.y > 1) g.ws_floats = static_cast<long long>(g.grid.y) * C;
        g.tickets = g.grid.x;
        break;
      }
      case launch_kind::contraction: {
        const long long M = resolve_dim(s.domain.rows, batch_size), N = s.domain.cols, K = resolve_dim(s.inner, batch_size);
        g.grid.x = grid_cap((N + s.tile_n - 1) / s.tile_n, 1LL << 30);
        g.grid.y = grid_cap((M + s.tile_m - 1) / s.tile_m, 65535);
        const long long tiles = static_cast<long long>(g.grid.x) * g.grid.y;
        // split a long contracted dimension (weight gradients contract the batch) when the tiles are few
        if (K >= 2048 && tiles < 2LL * sms && g.grid.y * static_cast<long long>(s.tile_m) >= M) g.grid.z = grid_cap(std::min((K + 1023) / 1024, (2LL * sms + tiles - 1) / tiles), 65535);
        if (g.grid.z > 1) g.ws_floats = static_cast<long long>(g.grid.z) * M * N;
        g.tickets = static_cast<unsigned>(tiles);
        break;
      }
      case launch_kind::rows:
        rows_grid = rows_blocks(s, batch_size, sms, max_shared_bytes);
        g.grid.x = rows_grid;
        g.ws_floats = static_cast<long long>(rows_grid) * s.partial_floats;
        break;
      case launch_kind::reduce:
        g.grid.x = grid_cap((static_cast<long long>(s.domain.cols) + threads - 1) / threads, wide);
        g.ws_blocks = static_cast<int>(rows_grid);
        break;
      case launch_kind::single_block: break;
    }
    out.push_back(g);
  }
  return out;
}

}  // namespace kiln::cuda
