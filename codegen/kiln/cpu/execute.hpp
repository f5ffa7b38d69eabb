#pragma once
// The CPU backend: every kernel of a constexpr plan becomes straight-line, fully specialized code at compile
// time — no graph, tape or interpreter at run time. An elementwise body is evaluated on SIMD vectors (a partial
// vector at the end of a row); threads split elementwise work and reductions by rows. Contractions run through
// one shared driver (cpu/contraction.hpp) that splits them between threads, packs B and calls the GEMM on row
// blocks, running each kernel's fused body (its epilogue) on each block while it is in cache.
#include <kiln/cpu/context.hpp>
#include <kiln/cpu/contraction.hpp>
#include <kiln/cpu/gemm.hpp>
#include <kiln/cpu/gemm_bf16.hpp>
#include <kiln/cpu/simd.hpp>
#include <kiln/cpu/simd_math.hpp>
#include <kiln/cpu/thread_pool.hpp>
#include <kiln/cpu/vmath.hpp>
#include <kiln/cpu/window_kernels.hpp>
#include <kiln/core/philox.hpp>
#include <kiln/plan/plan.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace kiln::cpu {

// Whether a convolution's forward shares one sample's output channels between threads when a batch has fewer
// samples than threads (executor::run_window): at least two register tiles of channels per group, and a sample
// worth as many multiply-adds as a contraction that is split (parallel_contraction_threshold).
constexpr bool conv_shares_sample_channels(const window& w) {
  const long og = w.o / w.groups, macs_per_sample = w.out_size() * (w.c / w.groups) * w.kh * w.kw;
  return og > gemm_detail::mr && macs_per_sample >= parallel_contraction_threshold;
}

template <class Plan>
struct executor {
  static constexpr const plan& P = Plan::value;
  static constexpr int N = P.num_kernels;

  // ---- riders (a CPU schedule; the plan itself is unchanged). A column sum (sum_rows) over a wide domain is
  // evaluated in the pass of an earlier kernel over the same domain (an elementwise kernel or another column sum,
  // its host) when everything it reads is ready by then: values computed before the host, leaves nothing from
  // the host on overwrites, or the host's own stores, read at the element it has just stored. Batch norm's
  // backward pass then reads its maps once for both of its sums (Σ g and Σ g·(x − μ)), and the sum of the input
  // adjoint is taken while that adjoint is written, instead of in a pass of its own over memory.
  // Narrower sums keep their row in registers and are left alone (is_wide); so are flat hosts.
  // A row of at most 8 vectors keeps its column sums in registers (run_reduction); a wider one walks each row
  // through memory: only such sums ride in other passes, and only such sums' passes rebuild maps.
  static constexpr bool is_wide(long cols) { return cols > 8 * lanes; }
  // A task's partial column sums of one output take C floats, the next output's starting at a multiple of 16.
  static constexpr long partials_stride(long C) { return (C + 15) / 16 * 16; }
  struct rider_map {
    std::array<int, N> rider_of{}, host_of{};  // the rider a kernel carries, the host a kernel rides in; or -1
    int count = 0;
  };
  static constexpr bool is_column_sum(int k) {
    return P.kernels[k].kind == kernel_kind::reduction && P.g.nodes[P.kernels[k].anchor].kind == op::sum_rows;
  }
  // Where node id sits in kernel k's body, or -1.
  static constexpr int body_slot(int k, int id) {
    for (int b = P.kernels[k].body_begin; b < P.kernels[k].body_end; ++b)
      if (P.body[b] == id) return b - P.kernels[k].body_begin;
    return -1;
  }
  // Whether leaf `leaf` is written in place (an optimizer's update) by a kernel in [k0, k1).
  static constexpr bool leaf_written_in(int leaf, int k0, int k1) {
    for (int o = 0; o < P.g.num_outputs; ++o) {
      const int id = P.g.outputs[o].node;
      if (P.g.outputs[o].assign_to == leaf && P.kernel_of[id] >= k0 && P.kernel_of[id] < k1) return true;
    }
    return false;
  }
  // Whether kernel j's column sum can be evaluated during kernel h's pass (h < j).
  static constexpr bool can_ride(int h, int j) {
    const kernel& H = P.kernels[h];
    const kernel& J = P.kernels[j];
    if (!is_column_sum(j) || !(J.domain == H.domain) || kernel_reads_collective(P, j) || P.assign[J.anchor] >= 0) return false;
    auto ready = [&](int a) {
      if (a < 0 || body_slot(j, a) >= 0 || ops::class_of(P.g.nodes[a].kind) == op_class::immediate) return true;
      if (ops::class_of(P.g.nodes[a].kind) == op_class::leaf) return !leaf_written_in(P.g.nodes[a].leaf, h, j);
      if (P.kernel_of[a] >= 0 && P.kernel_of[a] < h) return true;
      return P.kernel_of[a] == h && H.kind == kernel_kind::elementwise && P.g.nodes[a].shape == H.domain && stored_by(h, a);
    };
    for (int b = J.body_begin; b < J.body_end; ++b)
      for (const int a : P.g.nodes[P.body[b]].in)
        if (!ready(a)) return false;
    return ready(P.g.nodes[J.anchor].in[0]);
  }
  static constexpr rider_map find_riders() {
    rider_map m;
    m.rider_of.fill(-1);
    m.host_of.fill(-1);
    constexpr std::array<bool, N> flat = flat_kernels(std::make_index_sequence<N>{});
    constexpr int reach = 16;  // how many kernels ahead a host looks for its rider
    for (int h = 0; h < N; ++h) {
      const kernel& H = P.kernels[h];
      if (m.host_of[h] >= 0 || flat[h] || !is_wide(H.domain.cols)) continue;
      if (!(H.kind == kernel_kind::elementwise || is_column_sum(h))) continue;
      for (int j = h + 1; j < N && j <= h + reach; ++j)
        if (m.host_of[j] < 0 && m.rider_of[j] < 0 && can_ride(h, j)) {
          m.rider_of[h] = j;
          m.host_of[j] = h;
          ++m.count;
          break;
        }
    }
    return m;
  }

  // ---- followers (a CPU schedule; the plan is unchanged). A pooling (or a pooling's input adjoint) that reads a map
  // the elementwise kernel right before it has just stored runs in that kernel's pass: each task evaluates the
  // kernel on a few samples and then pools those samples while their map is still in the core's L2, instead of a
  // second pass that reads the map back from memory (batch norm's y = max((x − μ)·s + b, 0), then max-pooling). A
  // pooling reads only its samples' rows, so the values are the same bits. Everything else it reads must be ready
  // before the kernel (computed earlier, or a leaf that nothing updates in between). Measured on a Xeon (family 6,
  // model 167), kiln-bench --profile of the Fashion-MNIST CNN, its two batch-norm + max-pool pairs: 4814-5491 µs
  // apart, 3847-3919 µs together at batch 256; 897-946 against 801-842 µs at batch 64.
  struct follower_map {
    std::array<int, N> follower_of{}, leader_of{};  // the pooling a kernel runs in its pass, the kernel it runs in; or -1
    int count = 0;
  };
  // Not convolutions: their patches (about 1 MiB a block of samples) already fill the L2 that the map would be kept
  // in, and the kernel's pass between two blocks evicts them. The Fashion-MNIST CNN's second convolution's input
  // adjoint in batch norm's pass took 2910-2954 µs at batch 64, against 2424-2443 µs for the two kernels apart.
  static constexpr bool follows_in_pass(int code) {
    return code == window_math::kiln_max_pool2d || code == window_math::kiln_max_pool2d_dx || code == window_math::kiln_avg_pool2d ||
           code == window_math::kiln_avg_pool2d_dx;
  }
  // A convolution's weight gradient with a patch narrower than a vector (a first layer's: K = C/G·kh·kw taps,
  // conv.hpp's narrow path) follows too: its patches are a few rows of its input, so the map gy it sums against,
  // which the leader stores (batch norm's input adjoint: 25.7 MB at batch 256 in the Fashion-MNIST CNN's first
  // block), is read from L2 instead of memory, and is not stored at all when nothing else reads it
  // (find_private_maps). Each task adds its samples into its own partial, and the partials are added in task order.
  static constexpr bool is_weight_gradient(int k) { return P.g.nodes[P.kernels[k].anchor].kind == op::conv2d_dw; }
  static constexpr bool narrow_weight_gradient(const node& nd) {
    return nd.kind == op::conv2d_dw && conv::narrow_patch(conv::sizes_of(P.g.windows[nd.leaf]));
  }
  static constexpr bool stored_by(int k, int id) {
    for (int s = P.kernels[k].store_begin; s < P.kernels[k].store_end; ++s)
      if (P.stores[s] == id) return true;
    return false;
  }
  static constexpr bool can_follow(int h, int f) {
    const kernel& H = P.kernels[h];
    const kernel& F = P.kernels[f];
    const node& nd = P.g.nodes[F.anchor];
    if (H.kind != kernel_kind::elementwise || H.domain.rows != batch || F.kind != kernel_kind::indexing ||
        !ops::is_window_op(nd.kind) || !(follows_in_pass(ops::window_code_of(nd.kind)) || narrow_weight_gradient(nd)) ||
        kernel_reads_collective(P, f) ||
        P.assign[F.anchor] >= 0)
      return false;
    bool reads_a_store = false;
    for (const int a : nd.in) {
      if (a < 0 || ops::class_of(P.g.nodes[a].kind) == op_class::immediate) continue;
      if (P.kernel_of[a] == h) {
        if (!stored_by(h, a) || !(P.g.nodes[a].shape == H.domain)) return false;
        reads_a_store = true;
      } else if (ops::class_of(P.g.nodes[a].kind) == op_class::leaf) {
        if (leaf_written_in(P.g.nodes[a].leaf, h, f + 1)) return false;
      } else if (!(P.kernel_of[a] >= 0 && P.kernel_of[a] < h)) {
        return false;
      }
    }
    return reads_a_store;
  }
  static constexpr follower_map find_followers(const rider_map& r) {
    follower_map m;
    m.follower_of.fill(-1);
    m.leader_of.fill(-1);
    for (int h = 0; h + 1 < N; ++h)
      if (r.rider_of[h] < 0 && r.host_of[h] < 0 && can_follow(h, h + 1)) {
        m.follower_of[h] = h + 1;
        m.leader_of[h + 1] = h;
        ++m.count;
      }
    return m;
  }

  // ---- argmax pooling (a CPU schedule; the plan is unchanged). A follower max-pool of 2×2 windows at stride 2 whose
  // map y no kernel reads but it and max-pool's input adjoint: the leader writes y only to its task's scratch, where
  // the pool reads it, and the pool also stores which corner of each window is its maximum (a byte per window, in
  // y's own buffer, which nothing else uses); the adjoint then scatters by those corners instead of reading y back.
  // Batch norm's y = max((x − μ)·s + b, 0) before a max-pool is such a map (the ReLU's mask is recomputed from x):
  // at batch 256 the Fashion-MNIST CNN's first block no longer writes and reads back 25.7 MB. Same bits: the corners
  // are the ones the adjoint finds in y.
  static constexpr bool same_pool_window(const window& a, const window& b) {
    return a.c == b.c && a.h == b.h && a.w == b.w && a.kh == b.kh && a.kw == b.kw && a.sh == b.sh && a.sw == b.sw &&
           a.ph == b.ph && a.pw == b.pw && a.dh == b.dh && a.dw == b.dw;
  }
  // Whether kernel k reads node id from memory (id computed by another kernel).
  static constexpr bool reads_from_memory(int k, int id) {
    return kernel_reads_if(P, k, [&](int a) { return a == id && P.kernel_of[a] != k; });
  }
  // The max-pool adjoint kernel that reads the corners follower f keeps, or -1 when f keeps none.
  static constexpr int corners_reader(const follower_map& fm, int f) {
    if (fm.leader_of[f] < 0) return -1;
    const node& nd = P.g.nodes[P.kernels[f].anchor];
    if (!ops::is_window_op(nd.kind) || ops::window_code_of(nd.kind) != window_math::kiln_max_pool2d) return -1;
    const window& w = P.g.windows[nd.leaf];
    const int y = nd.in[0];
    if (!pool::is_pair_window(w) || P.is_output[y] != 0 || P.assign[y] >= 0) return -1;
    int reader = -1;
    for (int k = 0; k < N; ++k) {
      if (k == f || !reads_from_memory(k, y)) continue;
      const node& a = P.g.nodes[P.kernels[k].anchor];
      const bool adjoint = P.kernels[k].kind == kernel_kind::indexing && ops::is_window_op(a.kind) &&
                           ops::window_code_of(a.kind) == window_math::kiln_max_pool2d_dx && a.in[0] == y && a.in[1] != y &&
                           same_pool_window(P.g.windows[a.leaf], w);
      if (!adjoint || reader >= 0 || k < f) return -1;
      reader = k;
    }
    return reader;
  }
  // Samples a leader's task evaluates before its follower runs on them (run_leading): up to 64 K floats (256 KB) of map.
  static constexpr long max_leading_samples(int k) { return std::max(1L, (1L << 16) / P.kernels[k].domain.cols); }
  // Samples of a pool adjoint's map (kernel d's) that a pass rebuilds at a time (find_rebuilt): as many floats.
  static constexpr long rebuilt_samples(int d) { return std::max(1L, (1L << 16) / P.g.nodes[P.kernels[d].anchor].shape.cols); }
  // The scratch floats those samples take (rebuilding()), and those of a leader's samples of a map it keeps
  // (run_leading), each with room to align the next part to 64 bytes.
  static constexpr long rebuilt_floats(int d) { return rebuilt_samples(d) * P.g.nodes[P.kernels[d].anchor].shape.cols + 16; }
  static constexpr long kept_floats(int k) { return max_leading_samples(k) * P.kernels[k].domain.cols + 16; }
  struct corners_map {
    std::array<int, N> reader_of{}, source_of{};  // the adjoint reading a follower's corners, the follower an adjoint reads; or -1
    int count = 0;
  };
  // Fused plans only: an unfused step stores every node (nan_guard reads them all back after the step).
  static constexpr corners_map find_corners(const follower_map& fm) {
    corners_map m;
    m.reader_of.fill(-1);
    m.source_of.fill(-1);
    if (P.mode != fusion::fused) return m;
    for (int f = 0; f < N; ++f)
      if (const int d = corners_reader(fm, f); d >= 0) {
        m.reader_of[f] = d;
        m.source_of[d] = f;
        ++m.count;
      }
    return m;
  }

  // The map gy a weight-gradient follower sums against, when no other kernel reads it and it is no output: its
  // leader then stores it only to the task's scratch, a few samples at a time (run_leading), and it is never written
  // to memory. Fused plans only, as corners.
  struct private_map_table {
    std::array<int, N> of{};  // the node follower f's leader keeps in scratch, or -1
    int count = 0;
  };
  static constexpr private_map_table find_private_maps(const follower_map& fm) {
    private_map_table m;
    m.of.fill(-1);
    if (P.mode != fusion::fused) return m;
    for (int f = 0; f < N; ++f) {
      const node& nd = P.g.nodes[P.kernels[f].anchor];
      if (fm.leader_of[f] < 0 || !is_weight_gradient(f)) continue;
      const int gy = nd.in[1];
      if (P.kernel_of[gy] != fm.leader_of[f] || P.is_output[gy] != 0 || P.assign[gy] >= 0 || nd.in[0] == gy) continue;
      bool read_elsewhere = false;
      for (int k = 0; k < N; ++k) read_elsewhere = read_elsewhere || (k != f && reads_from_memory(k, gy));
      if (read_elsewhere) continue;
      m.of[f] = gy;
      ++m.count;
    }
    return m;
  }

  // ---- channel totals (a CPU schedule; the plan is unchanged). A wide column sum s = Σ_rows v [1, C·L] whose only
  // reader is the channel sum of its C runs of L columns (batch norm's statistics and its backward's Σg, Σg·d) is
  // summed a channel at a time instead: each task adds row r's L values of channel ch in a vector and then into its
  // partial total for ch (C floats), and the pass stores the channel sums' [1, C] directly; s is not written and
  // the channel-sum kernel does not run. Summing into C·L partials in memory took a load and a store of a partial
  // per vector of v. Fused plans only; a masked step sums per channel too wherever it runs the column sum over all
  // of its rows, so that its statistics have the bits of the unmasked step's (tests compare the two).
  struct totals_map {
    std::array<int, N> target_of{};  // the channel-sum kernel whose result a column sum stores, or -1
    std::array<int, N> source_of{};  // the column sum that stores a channel-sum kernel's result, or -1
    int count = 0;
  };
  // The channel-sum kernel whose result column sum k could store, or -1.
  static constexpr int channel_total_target(int k) {
    if (P.mode != fusion::fused || !is_column_sum(k) || !is_wide(P.kernels[k].domain.cols)) return -1;
    const int s = P.kernels[k].anchor;
    if (P.is_output[s] != 0 || P.assign[s] >= 0) return -1;
    int reader = -1;
    for (int q = 0; q < N; ++q) {
      if (q == k || !reads_from_memory(q, s)) continue;
      if (reader >= 0) return -1;
      reader = q;
    }
    if (reader < 0) return -1;
    const node& sum = P.g.nodes[P.kernels[reader].anchor];
    if (sum.kind != op::channel_sum || sum.in[0] != s || P.kernels[reader].body_end != P.kernels[reader].body_begin) return -1;
    const window& w = P.g.windows[sum.leaf];
    return static_cast<long>(w.c) * w.h * w.w == P.kernels[k].domain.cols ? reader : -1;
  }
  static constexpr long positions_per_channel(const window& w) { return static_cast<long>(w.h) * w.w; }
  static constexpr long positions_summed(int target) {  // by channel-sum kernel `target`
    return positions_per_channel(P.g.windows[P.g.nodes[P.kernels[target].anchor].leaf]);
  }
  // Whether every kernel over k's domain that reads a channel repeat of it or would sum it per channel (target:
  // channel_total_target of each kernel) does so over channels of L positions: a column sum and the pass it rides
  // in (or carries) then walk the same channel runs.
  static constexpr bool one_channel_size(int k, long L, const std::array<int, N>& target) {
    const dims domain = P.kernels[k].domain;
    for (int q = 0; q < N; ++q) {
      if (!(P.kernels[q].domain == domain)) continue;
      if (target[q] >= 0 && positions_summed(target[q]) != L) return false;
      for (int b = P.kernels[q].body_begin; b < P.kernels[q].body_end; ++b)
        for (const int a : P.g.nodes[P.body[b]].in)
          if (a >= 0 && P.g.nodes[a].kind == op::channel_repeat && P.g.nodes[a].shape == dims{1, domain.cols} &&
              positions_per_channel(P.g.windows[P.g.nodes[a].leaf]) != L)
            return false;
    }
    return true;
  }
  static constexpr totals_map find_totals() {
    totals_map m;
    m.target_of.fill(-1);
    m.source_of.fill(-1);
    std::array<int, N> target{};
    for (int k = 0; k < N; ++k) target[k] = channel_total_target(k);
    for (int k = 0; k < N; ++k)
      if (const int q = target[k]; q >= 0 && one_channel_size(k, positions_summed(q), target)) {
        m.target_of[k] = q;
        m.source_of[q] = k;
        ++m.count;
      }
    return m;
  }
  static constexpr totals_map totals = find_totals();
  // How many column sums store their channel sums' results (what tests check is exercised).
  static constexpr int totals_count() { return totals.count; }
  // Whether column sum k sums per channel in this step: it has channel totals and runs over all of its rows.
  static bool totals_apply(const context& c, int k) {
    return totals.target_of[k] >= 0 && (!c.run_kernel || c.run_kernel[k]) && (!c.kernel_rows || c.kernel_rows[2 * k] < 0);
  }
  // L of kernel k's channel totals (the positions per channel), or 0
  static constexpr long total_run(int k) {
    return totals.target_of[k] < 0 ? 0 : positions_summed(totals.target_of[k]);
  }

  template <int K>
  struct kernel_impl {
    static constexpr kernel KR = P.kernels[K];
    static constexpr int NB = KR.body_end - KR.body_begin;
    static constexpr int body_node(int j) { return P.body[KR.body_begin + j]; }
    static constexpr int slot_of(int id) { return body_slot(K, id); }
    static constexpr int reduce_input() { return KR.kind == kernel_kind::reduction ? P.g.nodes[KR.anchor].in[0] : -1; }

    // Flat iteration (one long row) is possible when every loaded operand is full-shape or a single scalar and
    // nothing depends on the column index.
    static constexpr bool flat_ok() {
      if (KR.kind != kernel_kind::elementwise) return false;
      for (int j = 0; j < NB; ++j) {
        const node& n = P.g.nodes[body_node(j)];
        if (n.kind == op::iota || n.kind == op::random_uniform) return false;  // they depend on (row, column)
        for (int k = 0; k < 3; ++k) {
          const int a = n.in[k];
          if (a < 0 || slot_of(a) >= 0) continue;
          const dims s = P.g.nodes[a].shape;
          if (!(s == KR.domain) && !(s == dims{1, 1})) return false;
        }
      }
      return true;
    }
    static constexpr bool flat = flat_ok();

    // Narrow rows packed several to a vector: a row kernel of C ≤ lanes / 2 columns evaluates lanes / C whole
    // rows per vector, lane l of the vector at element e0 (a multiple of C) being element e0 + l of the
    // row-major domain, at row (e0 + l) / C and column l % C. (One row per vector leaves lanes − C lanes idle:
    // a [batch, 2] sigmoid would use 2 of 16.) Each element's arithmetic is the same as row by row, so the
    // results are the same bits. Operands: full-shape ones are read in place, a [1, C] row is repeated across
    // the vector and a [rows, 1] column spread over each row's C lanes. Random draws follow the sample row
    // (random::sample_row), so kernels that draw stay row by row.
    static constexpr long packed_cols = KR.domain.cols;
    static constexpr bool packed_ok() {
      if (flat || packed_cols > lanes / 2 || KR.domain.rows == 1) return false;
      // of the reductions, the column sums (sum_rows) of C a power of 2 pack: their vector is folded in halves
      // down to C lanes at the end
      if (KR.kind == kernel_kind::reduction && (P.g.nodes[KR.anchor].kind != op::sum_rows || (packed_cols & (packed_cols - 1)) != 0))
        return false;
      for (int j = 0; j < NB; ++j) {
        const node& n = P.g.nodes[body_node(j)];
        if (n.kind == op::random_uniform) return false;  // its draws follow the (sample) row, not the element
        for (int k = 0; k < 3; ++k) {
          const int a = n.in[k];
          if (a < 0 || slot_of(a) >= 0) continue;
          const dims s = P.g.nodes[a].shape;
          const bool column = s.rows == KR.domain.rows && s.cols == 1, row = s.rows == 1 && s.cols == KR.domain.cols;
          if (!(s == KR.domain) && !(s == dims{1, 1}) && !column && !row) return false;
        }
      }
      return true;
    }
    static constexpr bool packed = packed_ok();

    // Channel runs. A [1, C·L] row made by channel_repeat (batch norm's per-channel mean, scale and shift over
    // maps of L = H·W positions) is L copies of each of C values. Read as a row, every vector of the kernel
    // loads it again: the batch-norm passes over a [64, 25088] map loaded three to five such rows beside their
    // one or two maps, and in a harness ran at 1.3-1.7 times their memory traffic. A kernel that reads one walks
    // each row a channel at a time instead (a last vector of a channel partial when lanes do not divide L), and
    // reads the repeat as its source's value for the channel, splat: the same values at the same elements, so the
    // same bits. The source must still hold the value the repeat copied: a kernel's result is never overwritten, and
    // a leaf is read only if nothing updates it in place between the repeat and this kernel.
    static constexpr bool channel_repeat_source_ready(int id) {
      const node& rep = P.g.nodes[id];
      if (rep.kind != op::channel_repeat || !(rep.shape == dims{1, KR.domain.cols}) || P.kernel_of[id] < 0) return false;
      const int src = rep.in[0];
      if (P.assign[src] >= 0) return false;
      if (ops::class_of(P.g.nodes[src].kind) == op_class::leaf) return !leaf_written_in(P.g.nodes[src].leaf, P.kernel_of[id], K + 1);
      return P.materialized[src];  // computed before the repeat's kernel, which read it
    }
    static constexpr bool reads_channel_repeat(int id) { return id >= 0 && slot_of(id) < 0 && channel_repeat_source_ready(id); }
    // L of the channel repeats this kernel reads (all of one L), or 0: walk whole rows. Only for wide rows walked a
    // vector at a time (flat and packed kernels and rows of at most 8 vectors, summed in registers, keep their
    // walks), and not for random draws, which follow (row, column) in runs of a vector.
    static constexpr long channel_run_of() {
      if (flat || packed || !is_wide(KR.domain.cols)) return 0;
      if (!(KR.kind == kernel_kind::elementwise || KR.kind == kernel_kind::contraction || is_column_sum(K))) return 0;
      long run = 0;
      for (int j = 0; j < NB; ++j) {
        const node& n = P.g.nodes[body_node(j)];
        if (n.kind == op::random_uniform) return 0;
        for (const int a : n.in)
          if (reads_channel_repeat(a)) {
            const window& w = P.g.windows[P.g.nodes[a].leaf];
            const long L = static_cast<long>(w.h) * w.w;
            if (run != 0 && run != L) return 0;
            run = L;
          }
      }
      return run >= lanes ? run : 0;
    }
    static constexpr long channel_run = channel_run_of();
    // the positions per channel of this column sum's channel totals (see totals), or 0
    static constexpr long total_L = total_run(K);
    static_assert(channel_run == 0 || total_L == 0 || channel_run == total_L, "kiln cpu: channel totals over maps of another size");
    // Where this column sum's sums go and how many there are: its own [1, C] row, or with channel totals its
    // channel sum's [1, C / L] result.
    static float* sums_out(const context& c) {
      if constexpr (total_L > 0) return c.buf[P.kernels[totals.target_of[K]].anchor];
      else return c.buf[KR.anchor];
    }
    static constexpr long sums_width = total_L > 0 ? KR.domain.cols / total_L : KR.domain.cols;

    // Where the run of columns starting at s ends (no later than j1): a row's vectors are taken lanes at a time
    // within each run, so that with Run > 0 (a channel's columns) no vector spans two channels.
    template <long Run>
    static long run_end(long s, long j1) {
      if constexpr (Run == 0) return j1;
      else return std::min(j1, (s / Run + 1) * Run);
    }
    // Lane l ← lane Index(l) of v (a compile-time permutation).
    template <long (*Index)(long), std::size_t... L>
    static vfloat permute(vfloat v, std::index_sequence<L...>) {
      return __builtin_shufflevector(v, v, static_cast<int>(Index(static_cast<long>(L)))...);
    }
    static constexpr long column_of_lane(long l) { return l % packed_cols; }
    static constexpr long row_of_lane(long l) { return l / packed_cols; }
    // acc[j] = Σ over lanes l ≡ j (mod C) of v: halves added until C lanes are left (C a power of 2)
    template <int N>
    static void store_column_sums(simd_detail::fvec<N> v, float* acc) {
      if constexpr (N == packed_cols) {
        for (int j = 0; j < N; ++j) acc[j] = v[j];
      } else {
        constexpr auto half = std::make_integer_sequence<int, N / 2>{};
        store_column_sums<N / 2>(simd_detail::low_half<N>(v, half) + simd_detail::high_half<N>(v, half), acc);
      }
    }

    // ---- the value of node Id at row r, columns [c0, c0 + n); Packed: at elements [c0, c0 + n), from row r
    template <int Id, bool Packed = false, class V>
    static V operand(const context& c, const V* vals, long r, long c0, int n) {
      constexpr int s = slot_of(Id);
      if constexpr (s >= 0) {
        return vals[s];
      } else {
        constexpr dims sh = P.g.nodes[Id].shape;
        const float* base = c.buf[Id];
        if constexpr (sh.cols == 1 && sh.rows == 1) {
          return splat<V>(base[0]);
        } else if constexpr (channel_run > 0 && reads_channel_repeat(Id)) {  // [c0, c0 + n) lies in one channel
          return splat<V>(c.buf[P.g.nodes[Id].in[0]][c0 / channel_run]);
        } else if constexpr (Packed && sh.rows == 1 && !(sh == KR.domain)) {  // the row [1, C], repeated
          return permute<column_of_lane>(load_partial<V>(base, packed_cols), std::make_index_sequence<lanes>{});
        } else if constexpr (Packed && sh.cols == 1 && !(sh == KR.domain)) {  // the column [rows, 1], each value C times
          return permute<row_of_lane>(load_partial<V>(base + r, static_cast<int>((n + packed_cols - 1) / packed_cols)),
                                      std::make_index_sequence<lanes>{});
        } else if constexpr (flat || Packed) {  // full-shape operand of a flat loop: element c0 onwards
          return n == lanes ? load<V>(base + c0) : load_partial<V>(base + c0, n);
        } else if constexpr (sh.cols == 1) {
          return splat<V>(base[r]);
        } else {
          const float* p = base + (sh.rows == 1 ? 0 : r) * static_cast<long>(sh.cols) + c0;
          return n == lanes ? load<V>(p) : load_partial<V>(p, n);
        }
      }
    }

    template <int J, bool Packed, class V>
    static void eval_node(const context& c, V* vals, long r, long c0, int n) {
      constexpr int id = body_node(J);
      constexpr node nd = P.g.nodes[id];
      if constexpr (nd.kind == op::constant) {
        vals[J] = splat<V>(static_cast<float>(nd.k));
      } else if constexpr (nd.kind == op::hyper) {
        vals[J] = splat<V>(c.hyper[nd.leaf]);
      } else if constexpr (nd.kind == op::batch_size) {
        vals[J] = splat<V>(static_cast<float>(c.batch));
      } else if constexpr (nd.kind == op::iota && Packed) {  // the column of each lane
        V v{};
        for (int l = 0; l < lanes; ++l) v[l] = static_cast<float>(column_of_lane(l));
        vals[J] = v;
      } else if constexpr (nd.kind == op::iota) {
        V v = splat<V>(static_cast<float>(c0));
        if constexpr (is_vector_v<V>)
          for (int l = 0; l < lanes; ++l) v[l] += static_cast<float>(l);
        vals[J] = v;
      } else if constexpr (nd.kind == op::random_uniform) {
        // element (r, c0 + l) of the node's shape: its draw (random::element_index), one Philox block per 4
        static_assert(!Packed, "kiln cpu: random draws are evaluated row by row");
        static_assert(batch < 0, "random::element_index takes the batch dimension as a negative row count");
        constexpr dims sh = nd.shape;
        const auto stream = static_cast<std::uint32_t>(nd.k);
        const std::uint64_t first = random::element_index(c.rng, sh.rows, sh.cols, r, c0);
        if constexpr (!is_vector_v<V> || sh.cols == 1) {
          vals[J] = splat<V>(random::uniform(c.rng, stream, first));
        } else {
          alignas(64) float draws[lanes];
          random::uniform_run(c.rng, stream, first, lanes, draws);
          vals[J] = load<V>(draws);
        }
      } else {
        using O = ops::of<nd.kind>;
        static_assert(O::cls == op_class::elementwise, "kiln cpu: non-elementwise node inside a kernel body");
        if constexpr (O::arity == 1)
          vals[J] = O::template forward<simd_math>(operand<nd.in[0], Packed>(c, vals, r, c0, n), nd.k);
        else if constexpr (O::arity == 2)
          vals[J] = O::template forward<simd_math>(operand<nd.in[0], Packed>(c, vals, r, c0, n),
                                                operand<nd.in[1], Packed>(c, vals, r, c0, n), nd.k);
        else
          vals[J] = O::template forward<simd_math>(operand<nd.in[0], Packed>(c, vals, r, c0, n),
                                                operand<nd.in[1], Packed>(c, vals, r, c0, n),
                                                operand<nd.in[2], Packed>(c, vals, r, c0, n), nd.k);
      }
    }

    // The body and the stores are folds over at most fold_chunk nodes each: clang limits the nesting of one
    // fold expression to 256 (-fbracket-depth), and a kernel that updates many same-shaped parameters has more.
    static constexpr std::size_t fold_chunk = 128;
    template <std::size_t Total, std::size_t Chunk>
    static constexpr std::size_t chunk_size = Total - Chunk * fold_chunk < fold_chunk ? Total - Chunk * fold_chunk : fold_chunk;

    template <bool Packed, class V, std::size_t Begin, std::size_t... J>
    static void eval_span([[maybe_unused]] const context& c, [[maybe_unused]] V* vals, [[maybe_unused]] long r,
                          [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<J...>) {
      (eval_node<static_cast<int>(Begin + J), Packed>(c, vals, r, c0, n), ...);
    }
    template <bool Packed, class V, std::size_t... Chunk>
    static void eval_chunks([[maybe_unused]] const context& c, [[maybe_unused]] V* vals, [[maybe_unused]] long r,
                            [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<Chunk...>) {
      (eval_span<Packed, V, Chunk * fold_chunk>(c, vals, r, c0, n, std::make_index_sequence<chunk_size<NB, Chunk>>{}), ...);
    }
    template <bool Packed = false, class V, std::size_t... J>
    static void eval_body([[maybe_unused]] const context& c, [[maybe_unused]] V* vals, [[maybe_unused]] long r, [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<J...>) {
      eval_chunks<Packed>(c, vals, r, c0, n, std::make_index_sequence<(sizeof...(J) + fold_chunk - 1) / fold_chunk>{});
    }

    template <bool Packed, class V, std::size_t Begin, std::size_t... S>
    static void store_span([[maybe_unused]] const context& c, [[maybe_unused]] const V* vals, [[maybe_unused]] long r,
                           [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<S...>) {
      [[maybe_unused]] auto one = [&](auto s_const) {
        constexpr int id = P.stores[KR.store_begin + decltype(s_const)::value];
        constexpr int slot = slot_of(id);
        float* p = c.buf[id] + (flat || Packed ? c0 : r * static_cast<long>(KR.domain.cols) + c0);
        if (n == lanes) store(p, vals[slot]);
        else store_partial(p, vals[slot], n);
      };
      (one(std::integral_constant<std::size_t, Begin + S>{}), ...);
    }
    template <bool Packed, class V, std::size_t Total, std::size_t... Chunk>
    static void store_chunks([[maybe_unused]] const context& c, [[maybe_unused]] const V* vals, [[maybe_unused]] long r,
                             [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<Chunk...>) {
      (store_span<Packed, V, Chunk * fold_chunk>(c, vals, r, c0, n, std::make_index_sequence<chunk_size<Total, Chunk>>{}), ...);
    }
    template <bool Packed = false, class V, std::size_t... S>
    static void store_roots([[maybe_unused]] const context& c, [[maybe_unused]] const V* vals, [[maybe_unused]] long r, [[maybe_unused]] long c0, [[maybe_unused]] int n, std::index_sequence<S...>) {
      store_chunks<Packed, V, sizeof...(S)>(c, vals, r, c0, n, std::make_index_sequence<(sizeof...(S) + fold_chunk - 1) / fold_chunk>{});
    }

    // Evaluates the body and stores the roots for rows [r0, r1) (or flat elements [r0, r1)).
    static void elementwise_rows(const context& c, long r0, long r1) {
      if constexpr (flat) {
        constexpr int NS = KR.store_end - KR.store_begin;
        vfloat vals[NB > 0 ? NB : 1];
        long i = r0;
        for (; i + lanes <= r1; i += lanes) {
          eval_body(c, vals, 0, i, lanes, std::make_index_sequence<NB>{});
          store_roots(c, vals, 0, i, lanes, std::make_index_sequence<NS>{});
        }
        if (i < r1) {
          const int n = static_cast<int>(r1 - i);
          eval_body(c, vals, 0, i, n, std::make_index_sequence<NB>{});
          store_roots(c, vals, 0, i, n, std::make_index_sequence<NS>{});
        }
      } else {
        block_rows_cols(c, r0, r1, 0, KR.domain.cols);
      }
    }
    // The body on rows [r0, r1) × columns [j0, j1) (not for flat kernels): the one instantiation of a row
    // kernel's body, shared by whole rows and by a contraction task's column block.
    static void block_rows_cols(const context& c, long r0, long r1, long j0, long j1) {
      if constexpr (packed)
        if (j0 == 0 && j1 == packed_cols) {  // whole rows, lanes / C of them per vector
          constexpr int NS = KR.store_end - KR.store_begin;
          vfloat vals[NB > 0 ? NB : 1];
          constexpr long per_vector = lanes / packed_cols * packed_cols;
          for (long e = r0 * packed_cols; e < r1 * packed_cols; e += per_vector) {
            const int n = static_cast<int>(std::min(per_vector, r1 * packed_cols - e));
            eval_body<true>(c, vals, e / packed_cols, e, n, std::make_index_sequence<NB>{});
            store_roots<true>(c, vals, e / packed_cols, e, n, std::make_index_sequence<NS>{});
          }
          return;
        }
      for (long r = r0; r < r1; ++r)
        for (long s = j0, e; s < j1; s = e) {
          e = run_end<channel_run>(s, j1);
          for (long c0 = s; c0 < e; c0 += lanes) at(c, r, c0, static_cast<int>(std::min<long>(lanes, e - c0)), nullptr);
        }
    }

    // A copy of a context whose buffer table can point one node's rows into a task's scratch, a few samples at a
    // time (a map kept or rebuilt there): kernels read and store element (r, j) of a node at buf + r·C + j.
    struct moved_buffers {
      std::array<float*, P.g.size> table;
      context ctx;
      explicit moved_buffers(const context& c) : ctx(c) {
        std::copy_n(c.buf, P.g.size, table.begin());
        ctx.buf = table.data();
      }
      moved_buffers(const moved_buffers&) = delete;  // ctx.buf points into table
      // node id's rows of C floats from sample n on at `at` (sample n's row at its start)
      void point(int id, float* at, long n, long C) {
        table[id] = reinterpret_cast<float*>(reinterpret_cast<std::uintptr_t>(at) - static_cast<std::uintptr_t>(n * C) * sizeof(float));
      }
    };

    // ---- a pass that rebuilds a pool adjoint's map g (see find_rebuilt): f(ctx, n, m) for rows [b, e), a few samples
    // at a time, g made for those samples in the task's scratch just before and ctx's buffer table pointing there.
    // Other kernels, and any kernel in a masked step (which stores g), run f(c, b, e).
    template <class F>
    static void rebuilding(const context& c, long b, long e, int thread, F&& f) {
      constexpr int d = rebuilt.source_of[K];
      if constexpr (d >= 0) {
        if (!c.run_kernel && !c.kernel_rows) {
          constexpr int g = P.kernels[d].anchor;
          constexpr long C = P.g.nodes[g].shape.cols, samples = rebuilt_samples(d);
          moved_buffers local(c);
          float* scratch = gemm_detail::align64(c.gemm_ws + thread * c.gemm_ws_stride);
          for (long n = b; n < e; n += samples) {
            const long m = std::min(e, n + samples);
            kernel_impl<d>::adjoint_by_corners(c, scratch, n, m);
            local.point(g, scratch, n, C);
            f(static_cast<const context&>(local.ctx), n, m);
          }
          return;
        }
      }
      f(c, b, e);
    }

    static void run_elementwise(const context& c) {
      long r0 = 0, r1 = resolve(KR.domain.rows, c.batch);
      if (c.kernel_rows && c.kernel_rows[2 * K] >= 0) r0 = c.kernel_rows[2 * K], r1 = c.kernel_rows[2 * K + 1];
      constexpr long C = KR.domain.cols;
      if constexpr (rebuilt.source_of[K] >= 0) {
        if (!c.run_kernel && !c.kernel_rows) {  // by whole samples, whose rows of g the task makes (rebuilding)
          parallel_range(c, r1 - r0, C * NB, 1, [&](long b, long e, int thread) {
            rebuilding(c, b, e, thread, [](const context& lc, long n, long m) {
              if constexpr (flat) elementwise_rows(lc, n * C, m * C);
              else elementwise_rows(lc, n, m);
            });
          });
          return;
        }
      }
      if constexpr (flat)
        parallel_range(c, (r1 - r0) * C, NB, lanes, [&](long b, long e, int) { elementwise_rows(c, r0 * C + b, r0 * C + e); });
      else
        parallel_range(c, r1 - r0, C * NB, 1, [&](long b, long e, int) { elementwise_rows(c, r0 + b, r0 + e); });
    }

    // ---- reductions
    static void run_reduction(const context& c) {
      constexpr node R = P.g.nodes[KR.anchor];
      constexpr int in = R.in[0];
      constexpr long C = KR.domain.cols;
      const long rows = resolve(KR.domain.rows, c.batch);
      float* out = c.buf[KR.anchor];
      if constexpr (R.kind == op::sum_rows) {
        // A row of at most 8 vectors is summed in registers and stored once: summing in memory made every
        // row wait on the last row's store (the bias gradients and the loss mean took 0.7–1.3 µs at batch 256).
        // The additions are the same, in the same order.
        if constexpr (total_L > 0)
          if (totals_apply(c, K)) return run_carrying<-1>(c);
        constexpr long row_vectors = (C + lanes - 1) / lanes;
        column_sums_by_task<1>(c, rows, rows * C * (NB + 1), {out}, {C}, [&](long b, long e, std::array<float*, 1> accs, [[maybe_unused]] int thread) {
          float* acc = accs[0];
          vfloat vals[NB > 0 ? NB : 1];
          if constexpr (packed) {  // lanes / C rows per vector; lane l sums column l % C of every lanes / C-th row
            constexpr long per_vector = lanes / packed_cols * packed_cols;
            vfloat sums = splat<vfloat>(0.0f);
            for (long i = b * C; i < e * C; i += per_vector) {
              const int n = static_cast<int>(std::min(per_vector, e * C - i));
              eval_body<true>(c, vals, i / C, i, n, std::make_index_sequence<NB>{});
              const vfloat v = operand<in, true>(c, vals, i / C, i, n);
              sums += n == lanes ? v : blend(simd_detail::first_lanes_mask(n), v, splat<vfloat>(0.0f));  // past the last row: whatever the body made of zeros
            }
            store_column_sums<lanes>(sums, acc);
          } else if constexpr (!is_wide(C)) {
            vfloat sums[row_vectors];
            for (vfloat& s : sums) s = splat<vfloat>(0.0f);
            for (long r = b; r < e; ++r)
              gemm_detail::unroll<row_vectors>([&](auto v) {  // unrolled, so that sums stay in registers
                constexpr long c0 = v * lanes;
                constexpr int n = static_cast<int>(std::min<long>(lanes, C - c0));
                eval_body(c, vals, r, c0, n, std::make_index_sequence<NB>{});
                sums[v] += operand<in>(c, vals, r, c0, n);
              });
            for (long v = 0; v < row_vectors; ++v) {
              const long c0 = v * lanes;
              const int n = static_cast<int>(std::min<long>(lanes, C - c0));
              if (n == lanes) store(acc + c0, sums[v]);
              else store_partial(acc + c0, sums[v], n);
            }
          } else {
            rebuilding(c, b, e, thread, [&](const context& lc, long n, long m) {
              for (long r = n; r < m; ++r)
                for (long s = 0, t; s < C; s = t) {
                  t = run_end<channel_run>(s, C);
                  for (long c0 = s; c0 < t; c0 += lanes) at(lc, r, c0, static_cast<int>(std::min<long>(lanes, t - c0)), acc);
                }
            });
          }
        });
      } else {
        // one value per row: sum or max over the columns, masked at the end of the row
        constexpr bool is_max = R.kind == op::max_cols;
        parallel_range(c, rows, C * (NB + 1), 1, [&](long b, long e, int) {
          vfloat vals[NB > 0 ? NB : 1];
          for (long r = b; r < e; ++r) {
            vfloat acc = splat<vfloat>(is_max ? -__builtin_inff() : 0.0f);
            for (long c0 = 0; c0 < C; c0 += lanes) {
              const int n = static_cast<int>(std::min<long>(lanes, C - c0));
              eval_body(c, vals, r, c0, n, std::make_index_sequence<NB>{});
              vfloat v = operand<in>(c, vals, r, c0, n);
              if (n < lanes) {
                // lanes past the row's end hold whatever the body made of zeros: they must be neutral, the
                // running maximum for max (max(acc, acc) = acc) and 0 for sum (acc + acc would count acc twice)
                vfloat keep = splat<vfloat>(0.0f);
                for (int l = 0; l < n; ++l) keep[l] = 1.0f;
                v = select(keep, v, is_max ? acc : splat<vfloat>(0.0f));
              }
              acc = is_max ? max(v, acc) : acc + v;
            }
            out[r] = is_max ? hmax(acc) : hsum(acc);
          }
        });
      }
    }

    // Column sums over `rows` rows of Count outputs of C columns each, the rows split between tasks: each task
    // adds its rows into its own zeroed partials, `sum(b, e, partials, thread)`, and the partials are then added in task
    // order, so that the result does not depend on which thread ran which task (a thread's slot would add a
    // different grouping whenever one thread ran two). `work`: the element operations, against parallel_threshold.
    template <int Count, class Sum>
    static void column_sums_by_task(const context& c, long rows, long work, std::array<float*, Count> out,
                                    std::array<long, Count> widths, Sum sum) {
      constexpr long output_stride = partials_stride(KR.domain.cols);  // between a task's partials of two outputs
      const int threads = c.pool->num_threads();
      const long tasks = (work < parallel_threshold || threads == 1) ? 1 : threads;
      const long chunk = (rows + tasks - 1) / tasks;
      auto task = [&](int t, int thread) {
        std::array<float*, Count> acc = out;
        if (tasks > 1)
          for (int s = 0; s < Count; ++s) acc[s] = c.reduce_ws + t * c.reduce_ws_stride + s * output_stride;
        for (int s = 0; s < Count; ++s) std::fill_n(acc[s], widths[s], 0.0f);
        const long b = std::min(rows, t * chunk), e = std::min(rows, b + chunk);
        sum(b, e, acc, thread);
      };
      if (tasks == 1) return thread_pool::run_single(task);  // on this thread, through the one compiled copy of task
      c.pool->parallel_for(static_cast<int>(tasks), task);
      // A vector of columns at a time, the tasks' partials added to 0 in task order (the same sums as one column at
      // a time, −0 included). Column by column, the loop over tasks innermost stayed scalar: the CNN's batch-norm
      // mean over [64, 25088] took 174-202 µs with it and 146-163 µs this way (kiln-bench --profile, a Xeon,
      // family 6 model 167).
      for (int s = 0; s < Count; ++s)
        for (long j = 0; j < widths[s]; j += lanes) {
          const int n = static_cast<int>(std::min<long>(lanes, widths[s] - j));
          const float* part = c.reduce_ws + s * output_stride + j;
          vfloat total = splat<vfloat>(0.0f) + load_partial(part, n);
          for (int t = 1; t < tasks; ++t) total += load_partial(part + t * c.reduce_ws_stride, n);
          if (n == lanes) store(out[s] + j, total);
          else store_partial(out[s] + j, total, n);
        }
    }

    // This kernel's work on row r, columns [c0, c0 + n): its body and stores (an elementwise kernel, or a
    // contraction's epilogue), or a column sum's (sum_rows) terms added to acc, its partial sums. Always inlined
    // into the loops over a row: left to g++, it was a call per vector, every operand's address reloaded from c.
    [[gnu::always_inline]] static void at(const context& c, long r, long c0, int n, [[maybe_unused]] float* acc) {
      vfloat vals[NB > 0 ? NB : 1];
      eval_body(c, vals, r, c0, n, std::make_index_sequence<NB>{});
      if constexpr (KR.kind != kernel_kind::reduction) {
        store_roots(c, vals, r, c0, n, std::make_index_sequence<KR.store_end - KR.store_begin>{});
      } else {
        const vfloat v = operand<reduce_input()>(c, vals, r, c0, n);
        if (n == lanes) store(acc + c0, load(acc + c0) + v);
        else store_partial(acc + c0, load_partial(acc + c0, n) + v, n);
      }
    }

    // This column sum's terms at row r, columns [c0, c0 + n), the lanes past n zero.
    [[gnu::always_inline]] static vfloat term(const context& c, long r, long c0, int n) {
      vfloat vals[NB > 0 ? NB : 1];
      eval_body(c, vals, r, c0, n, std::make_index_sequence<NB>{});
      const vfloat v = operand<reduce_input()>(c, vals, r, c0, n);
      return n == lanes ? v : blend(simd_detail::first_lanes_mask(n), v, splat<vfloat>(0.0f));
    }

    // This kernel (elementwise: its stores; a column sum: its sums) and the column sum of kernel J, its rider
    // (see `riders`), in one pass: J's terms at each element right after this kernel's, while what they both
    // read is in cache.
    // A column sum with channel totals (see totals) sums per channel, into its channel sum's [1, C] result. J < 0:
    // this kernel alone (a column sum with channel totals).
    template <int J>
    static void run_carrying(const context& c) {
      constexpr bool has_rider = J >= 0;
      using rider = kernel_impl<has_rider ? J : K>;
      constexpr long C = KR.domain.cols;
      const long rows = resolve(KR.domain.rows, c.batch);
      const long work = rows * C * (NB + (has_rider ? rider::NB : 0) + 2);
      // the walk by channels if either reads channel repeats or sums per channel (all of the same maps)
      constexpr long runs[4] = {channel_run, total_L, has_rider ? rider::channel_run : 0, has_rider ? rider::total_L : 0};
      constexpr long run = std::max({runs[0], runs[1], runs[2], runs[3]});
      static_assert((runs[0] == 0 || runs[0] == run) && (runs[2] == 0 || runs[2] == run) && (runs[3] == 0 || runs[3] == run),
                    "kiln cpu: a column sum riding in a kernel over maps of another size");
      auto pass = [&](long b, long e, float* acc, float* rider_acc, int thread) {
        rebuilding(c, b, e, thread, [&](const context& lc, long n0, long n1) {
          for (long r = n0; r < n1; ++r)
            for (long s = 0, t; s < C; s = t) {
              t = run_end<run>(s, C);
              vfloat total = splat<vfloat>(0.0f), rider_total = splat<vfloat>(0.0f);
              for (long c0 = s; c0 < t; c0 += lanes) {
                const int n = static_cast<int>(std::min<long>(lanes, t - c0));
                if constexpr (total_L > 0) total += term(lc, r, c0, n);
                else at(lc, r, c0, n, acc);
                if constexpr (has_rider) {
                  if constexpr (rider::total_L > 0) rider_total += rider::term(lc, r, c0, n);
                  else rider::at(lc, r, c0, n, rider_acc);
                }
              }
              if constexpr (total_L > 0) acc[s / run] += hsum(total);
              if constexpr (has_rider && rider::total_L > 0) rider_acc[s / run] += hsum(rider_total);
            }
        });
      };
      if constexpr (!has_rider)
        column_sums_by_task<1>(c, rows, work, {sums_out(c)}, {sums_width},
                               [&](long b, long e, std::array<float*, 1> acc, int thread) { pass(b, e, acc[0], nullptr, thread); });
      else if constexpr (KR.kind == kernel_kind::reduction)
        column_sums_by_task<2>(c, rows, work, {sums_out(c), rider::sums_out(c)}, {sums_width, rider::sums_width},
                               [&](long b, long e, std::array<float*, 2> acc, int thread) { pass(b, e, acc[0], acc[1], thread); });
      else
        column_sums_by_task<1>(c, rows, work, {rider::sums_out(c)}, {rider::sums_width},
                               [&](long b, long e, std::array<float*, 1> acc, int thread) { pass(b, e, nullptr, acc[0], thread); });
    }

    // ---- contractions
    template <int Id>
    static matrix_view view(const context& c) {
      constexpr node nd = P.g.nodes[Id];
      if constexpr (nd.kind == op::transpose) {
        constexpr int src = nd.in[0];
        const long src_cols = resolve(P.g.nodes[src].shape.cols, c.batch);
        return matrix_view{c.buf[src], 1, src_cols};  // (i, k) of srcᵀ is src[k, i]
      } else {
        static_assert(P.materialized[Id], "kiln cpu: a contraction operand must have a buffer");
        return matrix_view{c.buf[Id], resolve(nd.shape.cols, c.batch), 1};
      }
    }

    // The product through the shared driver (kiln/cpu/contraction.hpp), with this kernel's body as its epilogue.
    static void run_contraction(const context& c) {
      constexpr node MM = P.g.nodes[KR.anchor];
      constexpr dims As = P.g.nodes[MM.in[0]].shape;
      static_assert(MM.shape.cols != batch, "kiln cpu: a contraction whose columns are the batch is not supported");
      const contraction k{view<MM.in[0]>(c), view<MM.in[1]>(c), c.buf[KR.anchor], resolve(MM.shape.rows, c.batch),
                          MM.shape.cols,     resolve(As.cols, c.batch), As.cols == batch, NB, &block_rows_cols};
      // A product small enough for gemm's plain loops runs them here, where its sizes and strides are constants:
      // through the shared driver, each of the XOR net's products (4×2 by 2×2) took 40 ns longer. Only kernels
      // whose static sizes allow it get this code.
      constexpr long static_flops = (MM.shape.rows == batch ? 1 : MM.shape.rows) * MM.shape.cols * (As.cols == batch ? 1 : As.cols);
      if constexpr (static_flops <= gemm_detail::tiny_flops)
        if (k.M * k.N * k.Kd <= gemm_detail::tiny_flops && c.products == bf16_path::fp32) {
          if (k.M > 0) gemm_detail::gemm_tiny(k.M, MM.shape.cols, k.Kd, k.A, k.B, k.C, MM.shape.cols, false);
          block_rows_cols(c, 0, k.M, 0, MM.shape.cols);
          return;
        }
      cpu::run_contraction(c, k);
    }

    // Gather and scatter-add (ops/indexing.hpp): whole rows of D floats moved by index. The indices are exact
    // integers in [0, V) (labels, range-checked when bound). The scatter-add runs on one thread in (row, position)
    // order, so its sums come out the same on every run and every machine.
    static void run_indexing(const context& c) {
      if constexpr (ops::is_window_op(P.g.nodes[KR.anchor].kind)) run_window(c);
      else if constexpr (P.g.nodes[KR.anchor].kind == op::all_reduce) run_collective(c);
      else run_gather_scatter(c);
    }
    // all_reduce: the operand, times this rank's weight, copied into the collective's own buffer, which the
    // sink then sums over ranks in place (in buckets, while the kernels that follow run).
    static void run_collective(const context& c) {
      constexpr node nd = P.g.nodes[KR.anchor];
      const float* x = c.buf[nd.in[0]];
      float* y = c.buf[KR.anchor];
      const long n = resolve(nd.shape.rows, c.batch) * nd.shape.cols;
      if constexpr (nd.k >= 0) {
        const float w = c.hyper[static_cast<int>(nd.k)];
        for (long i = 0; i < n; ++i) y[i] = w * x[i];
      } else {
        std::copy_n(x, n, y);
      }
      if (c.collectives) c.collectives->ready(K);
    }
    static void run_gather_scatter(const context& c) {
      constexpr node nd = P.g.nodes[KR.anchor];
      constexpr dims ix = P.g.nodes[nd.in[1]].shape;
      constexpr long C = ix.cols;
      const long rows = resolve(ix.rows, c.batch);
      const float* idx = c.buf[nd.in[1]];
      float* out = c.buf[KR.anchor];
      if constexpr (nd.kind == op::gather) {
        constexpr long D = P.g.nodes[nd.in[0]].shape.cols;
        const float* table = c.buf[nd.in[0]];
        for (long i = 0; i < rows * C; ++i) std::copy_n(table + static_cast<long>(idx[i]) * D, D, out + i * D);
      } else {
        static_assert(nd.kind == op::scatter_add, "kiln cpu: an indexing op without a kernel");
        constexpr long D = nd.shape.cols;
        const float* g = c.buf[nd.in[0]];
        std::fill_n(out, static_cast<long>(nd.shape.rows) * D, 0.0f);
        for (long i = 0; i < rows * C; ++i) {
          float* dst = out + static_cast<long>(idx[i]) * D;
          const float* src = g + i * D;
          for (long j = 0; j < D; ++j) dst[j] += src[j];
        }
      }
    }

    // ---- a follower (see find_followers) in this kernel's pass: this kernel's rows and follower F's samples a few
    // at a time, up to 64 K floats (256 KB) of map
    template <int F>
    static void run_leading(const context& c) {
      using follower = kernel_impl<F>;
      constexpr long C = KR.domain.cols, samples = leading_samples;
      constexpr bool weight_gradient = is_weight_gradient(F);
      // the map the leader stores only to the task's scratch: a max-pool's that keeps its corners (find_corners) or
      // a weight gradient's that nothing else reads (find_private_maps); or -1
      constexpr int kept = corners.reader_of[F] >= 0 ? P.g.nodes[P.kernels[F].anchor].in[0] : private_maps.of[F];
      const long rows = resolve(KR.domain.rows, c.batch);
      // samples [b, e) on `thread`: the leader's rows and the follower's samples, `samples` at a time; a weight
      // gradient's sums go to `partial`
      auto task = [&](long b, long e, int thread, float* partial) {
        // keeping the map, the task evaluates its samples into its scratch (after the rows of a map it rebuilds)
        moved_buffers local(c);
        constexpr int d = rebuilt.source_of[K];
        float* scratch = gemm_detail::align64(c.gemm_ws + thread * c.gemm_ws_stride + (d >= 0 ? rebuilt_floats(d) : 0));
        [[maybe_unused]] float* follower_scratch = gemm_detail::align64(scratch + (kept >= 0 ? kept_floats(K) : 0));
        for (long n = b; n < e; n += samples) {
          const long m = std::min(e, n + samples);
          if constexpr (kept >= 0) local.point(kept, scratch, n, C);
          rebuilding(local.ctx, n, m, thread, [&](const context& lc, long n0, long n1) {
            if constexpr (flat) elementwise_rows(lc, n0 * C, n1 * C);
            else elementwise_rows(lc, n0, n1);
          });
          if constexpr (weight_gradient) follower::weight_gradient_samples(local.ctx, n, m, follower_scratch, partial, n > b);
          else if constexpr (corners.reader_of[F] >= 0) follower::pool_keeping_corners(c, scratch, n, m);
          else follower::window_samples(c, n, m, thread);
        }
      };
      if constexpr (weight_gradient) {
        const long tasks = follower::weight_gradient_tasks(c, rows);
        c.pool->parallel_for(static_cast<int>(tasks), [&](int t, int thread) {
          task(rows * t / tasks, rows * (t + 1) / tasks, thread, c.ksplit_ws + t * c.ksplit_ws_stride);
        });
        follower::add_task_partials(c, tasks);
      } else {
        parallel_range(c, rows, C * NB + follower::work_per_sample, 1, [&](long b, long e, int thread) { task(b, e, thread, nullptr); });
      }
    }
    static constexpr long leading_samples = max_leading_samples(K);

    // A follower max-pool keeping its corners (see find_corners): samples [n0, n1), whose map starts at `map`.
    static void pool_keeping_corners(const context& c, const float* map, long n0, long n1) {
      constexpr node nd = P.g.nodes[KR.anchor];
      static constexpr window w = P.g.windows[nd.leaf];
      auto* corners_at = reinterpret_cast<std::uint8_t*>(c.buf[nd.in[0]]);  // in the map's own buffer
      pool::max_forward_argmax<w>(map, c.buf[KR.anchor] + n0 * nd.shape.cols, corners_at + n0 * pool::argmax_bytes_per_sample<w>, n1 - n0);
    }

    // A max-pool adjoint reading its forward's corners (see find_corners): samples [n0, n1) of its map into `map`
    // (sample n0's row first).
    static void adjoint_by_corners(const context& c, float* map, long n0, long n1) {
      constexpr node nd = P.g.nodes[KR.anchor];
      static constexpr window w = P.g.windows[nd.leaf];
      const auto* corners_at = reinterpret_cast<const std::uint8_t*>(c.buf[nd.in[0]]);
      pool::max_adjoint_argmax<w>(corners_at + n0 * pool::argmax_bytes_per_sample<w>, c.buf[nd.in[1]] + n0 * w.out_size(), map, n1 - n0);
    }

    // a window op's work per sample, for splitting between threads (multiply-adds and map elements)
    static constexpr long work_per_sample = [] {
      if constexpr (KR.kind == kernel_kind::indexing && ops::is_window_op(P.g.nodes[KR.anchor].kind)) {
        constexpr window w = P.g.windows[P.g.nodes[KR.anchor].leaf];
        return w.out_size() * (w.c / w.groups) * w.kh * w.kw + w.in_size();
      } else {
        return 0LL;
      }
    }();
    // samples [n0, n1) of a per-sample window op, on `thread`'s scratch
    static void window_samples(const context& c, long n0, long n1, int thread) {
      constexpr node nd = P.g.nodes[KR.anchor];
      static constexpr window w = P.g.windows[nd.leaf];
      if constexpr (corners.source_of[K] >= 0) {
        // the forward pool kept its corners in the map's buffer, unless a masked step ran it apart
        if (!c.run_kernel && !c.kernel_rows) return adjoint_by_corners(c, c.buf[KR.anchor] + n0 * w.in_size(), n0, n1);
      }
      window_rows<ops::window_code_of(nd.kind), w>(c.buf[nd.in[0]], nd.in[1] >= 0 ? c.buf[nd.in[1]] : nullptr, c.buf[KR.anchor],
                                                   n0, n1, c.gemm_ws + thread * c.gemm_ws_stride, c.products);
    }

    // ---- a convolution's weight gradient: each task sums its samples into its own partial (c.ksplit_ws), and the
    // partials are then added in task order, so that the result depends on the thread count only
    static long weight_gradient_tasks(const context& c, long rows) {
      return rows * work_per_sample < parallel_threshold ? 1 : std::min<long>(c.pool->num_threads(), rows);
    }
    static void add_task_partials(const context& c, long tasks) {
      constexpr long size = P.g.nodes[KR.anchor].shape.rows * P.g.nodes[KR.anchor].shape.cols;
      float* out = c.buf[KR.anchor];
      std::copy_n(c.ksplit_ws, size, out);
      for (long t = 1; t < tasks; ++t)
        for (long i = 0; i < size; ++i) out[i] += c.ksplit_ws[t * c.ksplit_ws_stride + i];
    }
    // Samples [n0, n1) of this weight gradient into `partial` (added to it with `add`), on `scratch`, as a follower.
    static void weight_gradient_samples(const context& c, long n0, long n1, float* scratch, float* partial, bool add) {
      constexpr node nd = P.g.nodes[KR.anchor];
      static constexpr window w = P.g.windows[nd.leaf];
      conv::weight_adjoint(w, c.buf[nd.in[0]], c.buf[nd.in[1]], partial, n0, n1, scratch, c.products, add);
    }

    // Window ops (conv, pooling, channel sums; cpu/window_kernels.hpp). Convolutions and pooling run sample by
    // sample, the samples split between threads; the weight gradient sums per-thread partials in thread order
    // (the same bits for the same thread count); channel sums and repeats run element by element.
    static void run_window(const context& c) {
      constexpr node nd = P.g.nodes[KR.anchor];
      static constexpr window w = P.g.windows[nd.leaf];  // static: the lambdas below see it as a constant (not a capture)
      constexpr int code = ops::window_code_of(nd.kind);
      const long rows = resolve(P.g.nodes[nd.in[0]].shape.rows, c.batch);
      const float* a = c.buf[nd.in[0]];
      const float* b = nd.in[1] >= 0 ? c.buf[nd.in[1]] : nullptr;
      float* out = c.buf[KR.anchor];
      if constexpr (code == window_math::kiln_conv2d) {
        // Fewer samples than threads (a single sample, say): the threads share the output channels instead, in
        // whole register tiles, each building the samples' patches itself (conv_shares_sample_channels).
        constexpr long og = w.o / w.groups, tiles = (og + gemm_detail::mr - 1) / gemm_detail::mr;
        const int threads = c.pool->num_threads();
        if (conv_shares_sample_channels(w) && rows < threads) {
          const int parts = static_cast<int>(std::min<long>(threads, tiles));
          c.pool->parallel_for(parts, [&](int t, int thread) {
            const long o0 = gemm_detail::mr * (tiles * t / parts), o1 = std::min(og, gemm_detail::mr * (tiles * (t + 1) / parts));
            conv::forward(w, a, b, out, 0, rows, c.gemm_ws + thread * c.gemm_ws_stride, c.products, o0, o1);
          });
          return;
        }
      }
      if constexpr (window_per_sample(code)) {
        parallel_range(c, rows, work_per_sample, 1, [&](long n0, long n1, int thread) { window_samples(c, n0, n1, thread); });
      } else if constexpr (code == window_math::kiln_conv2d_dw) {
        const long tasks = weight_gradient_tasks(c, rows);
        c.pool->parallel_for(static_cast<int>(tasks), [&](int t, int thread) {
          conv::weight_adjoint(w, a, b, c.ksplit_ws + t * c.ksplit_ws_stride, rows * t / tasks, rows * (t + 1) / tasks,
                               c.gemm_ws + thread * c.gemm_ws_stride, c.products);
        });
        add_task_partials(c, tasks);
      } else {
        const long total = resolve(nd.shape.rows, c.batch) * nd.shape.cols;
        parallel_range(c, total, w.h * w.w, 1, [&](long e0, long e1, int) { window_elements<code, w>(a, b, rows, out, e0, e1); });
      }
    }

    // Never inlined: run() and run_profiled() must execute one and the same copy (see kernel_table).
    [[gnu::noinline]] static void run(const context& c) {
      if constexpr (kernel_reads_collective(P, K))
        if (c.collectives) c.collectives->wait();  // a barrier: every sum over ranks started so far is complete
      // A masked step (a sharded optimizer's share of the kernels and rows) runs every kernel on its own.
      constexpr int rider = riders.rider_of[K], host = riders.host_of[K];
      if constexpr (rider >= 0) {
        if (!c.run_kernel && !c.kernel_rows) return run_carrying<rider>(c);
      } else if constexpr (host >= 0) {
        if (!c.run_kernel && !c.kernel_rows) return;  // summed in its host's pass
      }
      if constexpr (rebuilt.rebuilt[K]) {
        if (!c.run_kernel && !c.kernel_rows) return;  // made again in its readers' passes
      }
      if constexpr (totals.source_of[K] >= 0) {
        if (totals_apply(c, totals.source_of[K])) return;  // stored by the column sum it sums (channel totals)
      }
      constexpr int follower = followers.follower_of[K], leader = followers.leader_of[K];
      if constexpr (follower >= 0 && !rebuilt.rebuilt[follower]) {
        if (!c.run_kernel && !c.kernel_rows) return run_leading<follower>(c);
      } else if constexpr (leader >= 0) {
        if (!c.run_kernel && !c.kernel_rows) return;  // pooled in its leader's pass
      }
      if constexpr (KR.kind == kernel_kind::elementwise) run_elementwise(c);
      else if constexpr (KR.kind == kernel_kind::reduction) run_reduction(c);
      else if constexpr (KR.kind == kernel_kind::indexing) run_indexing(c);
      else run_contraction(c);
    }
  };

  template <std::size_t... K>
  static constexpr std::array<bool, N> flat_kernels(std::index_sequence<K...>) {
    return {kernel_impl<static_cast<int>(K)>::flat...};
  }
  static constexpr rider_map riders = find_riders();
  // How many column sums run in another kernel's pass (what tests check is exercised).
  static constexpr int rider_count() { return riders.count; }
  static constexpr follower_map followers = find_followers(riders);
  // How many poolings run in the pass of the kernel that stores their map (what tests check is exercised).
  static constexpr int follower_count() { return followers.count; }
  static constexpr corners_map corners = find_corners(followers);
  static constexpr private_map_table private_maps = find_private_maps(followers);
  // How many weight gradients follow their map's pass, and how many of their maps are never stored (what tests
  // check is exercised).
  static constexpr int weight_gradient_follower_count() {
    int n = 0;
    for (int k = 0; k < N; ++k) n += followers.leader_of[k] >= 0 && is_weight_gradient(k) ? 1 : 0;
    return n;
  }
  static constexpr int private_map_count() { return private_maps.count; }
  // How many max-pools keep their corners for their adjoint (what tests check is exercised).
  static constexpr int corners_count() { return corners.count; }

  // ---- rebuilt pool adjoints (a CPU schedule; the plan is unchanged). The map g that a max-pool's adjoint scatters
  // by its forward's corners (find_corners) is cheap to make again: a byte and an output adjoint per window of four
  // elements. When every kernel reading g is an elementwise kernel or a wide column sum over g's own rows and columns
  // (batch norm's backward: its two sums in one pass as host and rider, then its input adjoint), each of those
  // passes makes g for a few samples at a time in its task's scratch and reads it there, and the adjoint kernel
  // does not run: g (25.7 MB at batch 256 in the Fashion-MNIST CNN's first block) is never written to memory, and
  // its two readers read a byte and a float per four elements instead of four floats. Same bits: the same g, read
  // at the same elements. A masked step runs everything apart as before.
  struct rebuilt_map {
    std::array<int, N> source_of{};  // the adjoint kernel whose map a kernel's pass rebuilds, or -1
    std::array<bool, N> rebuilt{};   // an adjoint kernel whose map its readers' passes rebuild (it does not run)
    int count = 0;
  };
  // The kernel whose pass evaluates kernel k: its host if it rides in one (riders), itself otherwise.
  static constexpr int pass_of(int k) { return riders.host_of[k] >= 0 ? riders.host_of[k] : k; }
  // Whether pass p can rebuild the map g of adjoint kernel d (the kernels that read g from memory, or carry one).
  static constexpr bool can_rebuild_in(int d, int p) {
    const kernel& K = P.kernels[p];
    const bool wide_sum = is_column_sum(p) && is_wide(K.domain.cols);  // run_reduction's row-by-row walk
    // a leader rebuilds g for each of its chunks of samples before its rows (run_leading), unless its follower is a
    // pooling, whose scratch use (kept corners) does not leave room for g
    const int f = followers.follower_of[p];
    const bool leader_ok = f < 0 || is_weight_gradient(f);
    return p > d && K.domain == P.g.nodes[P.kernels[d].anchor].shape && (K.kind == kernel_kind::elementwise || wide_sum) &&
           leader_ok && followers.leader_of[p] < 0;
  }
  static constexpr rebuilt_map find_rebuilt() {
    rebuilt_map m;
    m.source_of.fill(-1);
    for (int d = 0; d < N; ++d) {
      if (corners.source_of[d] < 0) continue;
      const int g = P.kernels[d].anchor;
      if (P.is_output[g] != 0 || P.assign[g] >= 0) continue;
      bool ok = true, read = false;
      for (int k = 0; k < N && ok; ++k) {
        if (k == d || !reads_from_memory(k, g)) continue;
        const int p = pass_of(k);
        ok = can_rebuild_in(d, p) && (m.source_of[p] < 0 || m.source_of[p] == d);
        read = true;
      }
      if (!ok || !read) continue;
      for (int k = 0; k < N; ++k)
        if (k != d && reads_from_memory(k, g)) m.source_of[pass_of(k)] = d;
      m.rebuilt[d] = true;
      ++m.count;
    }
    return m;
  }
  static constexpr rebuilt_map rebuilt = find_rebuilt();
  // How many pool adjoints are rebuilt in their readers' passes (what tests check is exercised).
  static constexpr int rebuilt_count() { return rebuilt.count; }
  // How many kernels walk their rows a channel at a time, reading channel repeats as one value per channel, and
  // how many of them carry a rider (what tests check is exercised).
  template <std::size_t... K>
  static constexpr int count_channel_walks(bool hosts_only, std::index_sequence<K...>) {
    return ((kernel_impl<static_cast<int>(K)>::channel_run > 0 && (!hosts_only || riders.rider_of[K] >= 0) ? 1 : 0) + ... + 0);
  }
  static constexpr int channel_walk_count(bool hosts_only = false) {
    return count_channel_walks(hosts_only, std::make_index_sequence<N>{});
  }

  // Kernel k as a function pointer: the table both run() and run_profiled() call through, so that a profiled
  // step executes the very same machine code (an inlined copy could contract a·b + c into an FMA differently
  // and differ in the last bit). A table rather than a fold expression also keeps each kernel its own function,
  // which bounds the compiler's work per function for plans of hundreds of kernels.
  using kernel_fn = void (*)(const context&);
  template <std::size_t... K>
  static constexpr std::array<kernel_fn, sizeof...(K)> kernel_table(std::index_sequence<K...>) {
    return {&kernel_impl<static_cast<int>(K)>::run...};
  }
  static constexpr std::array<kernel_fn, P.num_kernels> kernels = kernel_table(std::make_index_sequence<P.num_kernels>{});

  // Runs the kernels in order.
  static void run(const context& c) {
    if (!c.run_kernel) {
      for (const kernel_fn k : kernels) k(c);
      return;
    }
    for (int k = 0; k < P.num_kernels; ++k)
      if (c.run_kernel[k]) kernels[static_cast<std::size_t>(k)](c);
  }

  // As run(), adding each kernel's wall time in nanoseconds to ns[k]: the per-kernel profile.
  static void run_profiled(const context& c, double* ns) {
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    for (int k = 0; k < P.num_kernels; ++k) {
      if (!c.run_kernel || c.run_kernel[k]) kernels[static_cast<std::size_t>(k)](c);
      const auto t1 = clock::now();
      ns[k] += std::chrono::duration<double, std::nano>(t1 - t0).count();
      t0 = t1;
    }
  }

  // Workspace sizes for a batch size and thread count.
  static long reduce_ws_floats() {
    long m = 0;
    for (int k = 0; k < P.num_kernels; ++k) {
      const long C = P.kernels[k].domain.cols;
      if (P.kernels[k].kind == kernel_kind::reduction) m = std::max<long>(m, C);
      if (riders.rider_of[k] >= 0)  // its own partials (a column sum's), then its rider's (run_carrying)
        m = std::max<long>(m, (P.kernels[k].kind == kernel_kind::reduction ? partials_stride(C) : 0) + C);
    }
    return (m + 15) / 16 * 16;
  }
  static long ksplit_ws_floats() {
    long m = 0;
    for (int k = 0; k < P.num_kernels; ++k)
      if (is_weight_gradient(k)) {  // its per-thread partial weight gradients
        const node& dw = P.g.nodes[P.kernels[k].anchor];
        m = std::max<long>(m, static_cast<long>(dw.shape.rows) * dw.shape.cols);
      } else if (P.kernels[k].kind == kernel_kind::contraction) {
        const node& mm = P.g.nodes[P.kernels[k].anchor];
        if (P.g.nodes[mm.in[0]].shape.cols == batch) m = std::max<long>(m, static_cast<long>(mm.shape.rows) * mm.shape.cols);
      }
    return (m + 15) / 16 * 16;
  }
  static long gemm_ws_floats(long batch_size) {
    long m = 0;
    for (int k = 0; k < P.num_kernels; ++k)
      if (P.kernels[k].kind == kernel_kind::contraction) {
        const node& mm = P.g.nodes[P.kernels[k].anchor];
        const long M = mm.shape.rows == batch ? std::min(batch_size, gemm_row_block) : mm.shape.rows;
        const long K = resolve(P.g.nodes[mm.in[0]].shape.cols, batch_size);
        m = std::max<long>(m, static_cast<long>(gemm_bf16_workspace_floats(M, mm.shape.cols, K)));  // FP32's or BF16's
      } else if (P.kernels[k].kind == kernel_kind::indexing && ops::is_window_op(P.g.nodes[P.kernels[k].anchor].kind)) {
        const node& nd = P.g.nodes[P.kernels[k].anchor];  // a convolution's patches (cpu/conv.hpp)
        const int code = ops::window_code_of(nd.kind);
        if (code == window_math::kiln_conv2d || code == window_math::kiln_conv2d_dx || code == window_math::kiln_conv2d_dw)
          m = std::max<long>(m, static_cast<long>(conv::scratch_floats(code, P.g.windows[nd.leaf])));
      }
    for (int k = 0; k < N; ++k) {  // a leader's (run_leading): a rebuilt map's rows, its kept map's, the follower's scratch
      const int f = followers.follower_of[k];
      if (f < 0) continue;
      const int d = rebuilt.source_of[k];
      const long rebuilt_rows = d >= 0 ? rebuilt_floats(d) : 0;
      const long kept = corners.reader_of[f] >= 0 || private_maps.of[f] >= 0 ? kept_floats(k) : 0;
      const long follower = is_weight_gradient(f) ? static_cast<long>(conv::scratch_floats(window_math::kiln_conv2d_dw, P.g.windows[P.g.nodes[P.kernels[f].anchor].leaf])) : 0;
      m = std::max<long>(m, rebuilt_rows + kept + follower + 48);
    }
    for (int k = 0; k < N; ++k)  // a pass's samples of a pool adjoint's map it rebuilds (rebuilding)
      if (rebuilt.rebuilt[k]) m = std::max<long>(m, rebuilt_floats(k));
    return (m + 15) / 16 * 16;
  }
};

}  // namespace kiln::cpu
