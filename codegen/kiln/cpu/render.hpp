#pragma once
// Renders a plan as a self-contained C++ translation unit: the same kernels the CPU backend instantiates, with
// the same SIMD vector type, math functions and GEMM (it includes <kiln/cpu/...>), as readable loops. The
// function it defines,
//     extern "C" void <name>(float* const* buf, const float* hyper, long batch, float* gemm_workspace,
//                            const kiln::random::key* rng)
// takes one buffer per node (buf[i] for node i, as kiln::cpu::program lays them out) and the step's random key
// (dropout's draws), and runs every kernel in order on the calling thread. Tests compile it with the system compiler and check it computes what the
// template-instantiated backend computes.
#include <kiln/cpu/window_kernels.hpp>
#include <kiln/plan/kernel_view.hpp>
#include <kiln/plan/print.hpp>

#include <string>

namespace kiln::cpu {

namespace render_detail {

inline std::string var(int id) { return "v" + std::to_string(id); }
inline std::string num(double v) { return ops::num(v); }

inline bool flat_kernel(const plan& p, const kernel& k, const kernel_view& v) {
  if (k.kind != kernel_kind::elementwise) return false;
  for (int id : v.nodes) {
    const node& n = p.g.nodes[id];
    if (n.kind == op::iota || n.kind == op::random_uniform) return false;
    for (int i = 0; i < 3; ++i) {
      const int a = n.in[i];
      if (a < 0 || v.has(a)) continue;
      const dims s = p.g.nodes[a].shape;
      if (!(s == k.domain) && !(s == dims{1, 1})) return false;
    }
  }
  return true;
}

// The value of operand a at row r, columns c0 .. c0+n (as in executor::operand).
inline std::string operand(const plan& p, const kernel_view& v, int a, bool flat) {
  if (v.has(a)) return var(a);
  const dims s = p.g.nodes[a].shape;
  const std::string b = "buf[" + std::to_string(a) + "]";
  if (s.rows == 1 && s.cols == 1) return "splat<vfloat>(" + b + "[0])";
  if (flat) return "ld(" + b + " + c0, n)";
  if (s.cols == 1) return "splat<vfloat>(" + b + "[r])";
  return "ld(" + b + " + " + (s.rows == 1 ? std::string("0") : "r * " + std::to_string(s.cols)) + " + c0, n)";
}

// How the ops' forward is written in this source (ops::text_math): vmath's functions on vfloat, through the
// namespace m below.
struct dialect {
  static constexpr std::string_view prefix = "m::", value_type = "vfloat";
  static std::string constant(const std::string& literal) { return "splat<vfloat>(" + literal + ")"; }
};

inline std::string body(const plan& p, const kernel_view& v, bool flat, const std::string& indent) {
  std::string out;
  for (int id : v.nodes) {
    const node& n = p.g.nodes[id];
    std::string e;
    ops::code_block locals{"", var(id), indent, 0};  // what the op's forward computes once (ops::text_math::let)
    switch (n.kind) {
      case op::constant: e = dialect::constant(num(n.k)); break;
      case op::hyper: e = "splat<vfloat>(hyper[" + std::to_string(n.leaf) + "])"; break;
      case op::batch_size: e = "splat<vfloat>(static_cast<float>(batch))"; break;
      case op::iota: e = "column_index(c0)"; break;
      case op::random_uniform: {  // element (r, c0 + l) of the node's shape at random::element_index
        const std::string stream = std::to_string(static_cast<std::uint32_t>(n.k)) + "u";
        const std::string index = "kiln::random::element_index(*rng, " + std::to_string(n.shape.rows) + ", " +
                                  std::to_string(n.shape.cols) + ", r, c0)";
        e = n.shape.cols == 1 ? "splat<vfloat>(kiln::random::uniform(*rng, " + stream + ", " + index + "))"
                              : "draws(*rng, " + stream + ", " + index + ")";
        break;
      }
      default: {
        ops::code args[3];
        for (int i = 0; i < ops::arity_of(n.kind); ++i) args[i] = {operand(p, v, n.in[i], flat), &locals};
        ops::visit_op(n.kind, [&](auto o) {
          using O = decltype(o);
          if constexpr (O::cls == op_class::elementwise) e = ops::forward_of<O, ops::text_math<dialect>>(args, n.k).text;
        });
      }
    }
    out += locals.lines + indent + "const vfloat " + var(id) + " = " + e + ";  // " + node_text(p, id) + "\n";
  }
  return out;
}

inline std::string stores(const plan& p, const kernel& k, const kernel_view& v, bool flat, const std::string& indent) {
  std::string out;
  for (int id : v.roots) {
    const std::string where = flat ? "c0" : "r * " + std::to_string(k.domain.cols) + " + c0";
    out += indent + "st(buf[" + std::to_string(id) + "] + " + where + ", " + var(id) + ", n);";
    if (p.assign[id] >= 0) out += "  // -> " + std::string(p.g.leaves[p.assign[id]].name.view());
    out += "\n";
  }
  return out;
}

inline std::string rows_expr(int rows) { return rows == batch ? "batch" : std::to_string(rows) + "L"; }

inline std::string elementwise_rows(const plan& p, const kernel& k, const kernel_view& v, const std::string& r0,
                                    const std::string& r1) {
  const std::string C = std::to_string(k.domain.cols);
  std::string out;
  out += "  for (long r = " + r0 + "; r < " + r1 + "; ++r)\n";
  out += "    for (long c0 = 0; c0 < " + C + "; c0 += lanes) {\n";
  out += "      const int n = static_cast<int>(std::min<long>(lanes, " + C + " - c0));\n";
  out += body(p, v, false, "      ");
  out += stores(p, k, v, false, "      ");
  out += "    }\n";
  return out;
}

inline std::string kernel_source(const plan& p, int ki) {
  const kernel& k = p.kernels[ki];
  const kernel_view v = view_of(p, k);
  std::string out = "// k" + std::to_string(ki) + " " + kernel_name(p, ki) + " " + dims_text(k.domain) + "\n";
  out += "static void k" + std::to_string(ki) +
         "(float* const* buf, [[maybe_unused]] const float* hyper, [[maybe_unused]] long batch, "
         "[[maybe_unused]] float* gemm_workspace, [[maybe_unused]] const kiln::random::key* rng) {\n";
  const std::string R = rows_expr(k.domain.rows);
  const std::string C = std::to_string(k.domain.cols);
  if (k.kind == kernel_kind::elementwise) {
    if (flat_kernel(p, k, v)) {
      out += "  const long total = " + R + " * " + C + ";\n";
      out += "  for (long c0 = 0; c0 < total; c0 += lanes) {\n";
      out += "    const int n = static_cast<int>(std::min<long>(lanes, total - c0));\n";
      out += body(p, v, true, "    ");
      out += stores(p, k, v, true, "    ");
      out += "  }\n";
    } else {
      out += elementwise_rows(p, k, v, "0", R);
    }
  } else if (k.kind == kernel_kind::indexing && ops::is_window_op(p.g.nodes[k.anchor].kind)) {  // as executor::run_window
    const node& nd = p.g.nodes[k.anchor];
    const std::string a = "buf[" + std::to_string(nd.in[0]) + "]", b = nd.in[1] >= 0 ? "buf[" + std::to_string(nd.in[1]) + "]" : "nullptr";
    out += "  // " + node_text(p, k.anchor) + "\n";
    out += "  constexpr kiln::window_math::kiln_window w" + window_initializer(p.g.windows[nd.leaf]) + ";\n";
    const std::string o = "buf[" + std::to_string(k.anchor) + "]", rows = rows_expr(p.g.nodes[nd.in[0]].shape.rows);
    const int code = ops::window_code_of(nd.kind);
    if (window_per_sample(code)) {  // as executor::run_window, on one thread
      out += "  kiln::cpu::window_rows<" + std::to_string(code) + ", w>(" + a + ", " + b + ", " + o + ", 0, " + rows + ", gemm_workspace);\n";
    } else if (nd.kind == op::conv2d_dw) {
      out += "  kiln::cpu::conv::weight_adjoint(w, " + a + ", " + b + ", " + o + ", 0, " + rows + ", gemm_workspace);\n";
    } else {
      out += "  kiln::cpu::window_elements<" + std::to_string(code) + ", w>(" + a + ", " + b + ", " + rows + ", " + o + ", 0, " + R + " * " + C + ");\n";
    }
  } else if (k.kind == kernel_kind::indexing && p.g.nodes[k.anchor].kind == op::all_reduce) {  // as executor::run_collective
    const node& nd = p.g.nodes[k.anchor];
    out += "  // " + node_text(p, k.anchor) + ": the sum over one rank (the program's communicator sums over ranks)\n";
    const std::string w = nd.k >= 0 ? "hyper[" + std::to_string(static_cast<int>(nd.k)) + "]" : std::string("1.0f");
    out += "  for (long i = 0; i < " + R + " * " + C + "; ++i) buf[" + std::to_string(k.anchor) + "][i] = " + w + " * buf[" +
           std::to_string(nd.in[0]) + "][i];\n";
  } else if (k.kind == kernel_kind::indexing) {  // as executor::run_indexing
    const node& nd = p.g.nodes[k.anchor];
    const dims ix = p.g.nodes[nd.in[1]].shape;
    const std::string n_idx = rows_expr(ix.rows) + " * " + std::to_string(ix.cols);
    const std::string idx = "buf[" + std::to_string(nd.in[1]) + "]", o = "buf[" + std::to_string(k.anchor) + "]";
    const std::string in = "buf[" + std::to_string(nd.in[0]) + "]";
    if (nd.kind == op::gather) {
      const std::string D = std::to_string(p.g.nodes[nd.in[0]].shape.cols);
      out += "  // " + node_text(p, k.anchor) + ": row idx[i] of the table to position i\n";
      out += "  for (long i = 0; i < " + n_idx + "; ++i) std::copy_n(" + in + " + static_cast<long>(" + idx + "[i]) * " + D +
             ", " + D + ", " + o + " + i * " + D + ");\n";
    } else {
      const std::string D = std::to_string(nd.shape.cols);
      out += "  // " + node_text(p, k.anchor) + ": position i added to row idx[i], in order\n";
      out += "  std::fill_n(" + o + ", " + std::to_string(static_cast<long>(nd.shape.rows) * nd.shape.cols) + "L, 0.0f);\n";
      out += "  for (long i = 0; i < " + n_idx + "; ++i)\n";
      out += "    for (long j = 0; j < " + D + "; ++j) " + o + "[static_cast<long>(" + idx + "[i]) * " + D + " + j] += " + in +
             "[i * " + D + " + j];\n";
    }
  } else if (k.kind == kernel_kind::reduction) {
    const node& red = p.g.nodes[k.anchor];
    const std::string in = operand(p, v, red.in[0], false);
    const std::string o = "buf[" + std::to_string(k.anchor) + "]";
    if (red.kind == op::sum_rows) {
      out += "  std::fill(" + o + ", " + o + " + " + C + ", 0.0f);\n";
      out += "  for (long r = 0; r < " + R + "; ++r)\n";
      out += "    for (long c0 = 0; c0 < " + C + "; c0 += lanes) {\n";
      out += "      const int n = static_cast<int>(std::min<long>(lanes, " + C + " - c0));\n";
      out += body(p, v, false, "      ");
      out += "      st(" + o + " + c0, ld(" + o + " + c0, n) + " + in + ", n);\n";
      out += "    }\n";
    } else {
      const bool is_max = red.kind == op::max_cols;
      out += "  for (long r = 0; r < " + R + "; ++r) {\n";
      out += std::string("    vfloat acc = splat<vfloat>(") + (is_max ? "-INFINITY" : "0.0f") + ");\n";
      out += "    for (long c0 = 0; c0 < " + C + "; c0 += lanes) {\n";
      out += "      const int n = static_cast<int>(std::min<long>(lanes, " + C + " - c0));\n";
      out += body(p, v, false, "      ");
      // lanes past the row's end: the running maximum for max, 0 for a sum (acc there would count acc twice)
      out += "      const vfloat x = keep_first(" + in + (is_max ? ", acc, n);\n" : ", splat<vfloat>(0.0f), n);\n");
      out += std::string("      acc = ") + (is_max ? "max(x, acc)" : "acc + x") + ";\n";
      out += "    }\n";
      out += "    " + o + "[r] = " + (is_max ? "hmax(acc)" : "hsum(acc)") + ";\n";
      out += "  }\n";
    }
  } else {
    const node& mm = p.g.nodes[k.anchor];
    auto view = [&](int id) {
      const node& n = p.g.nodes[id];
      if (n.kind == op::transpose) {
        const int src = n.in[0];
        return "matrix_view{buf[" + std::to_string(src) + "], 1, " + rows_expr(p.g.nodes[src].shape.cols) + "}";
      }
      return "matrix_view{buf[" + std::to_string(id) + "], " + rows_expr(n.shape.cols) + ", 1}";
    };
    const dims as = p.g.nodes[mm.in[0]].shape;
    const std::string M = rows_expr(mm.shape.rows), K = rows_expr(as.cols), N = std::to_string(mm.shape.cols);
    const std::string Ks = as.cols == batch ? "-1" : std::to_string(as.cols);
    const std::string Cb = "buf[" + std::to_string(k.anchor) + "]";
    out += "  // " + node_text(p, k.anchor) + "\n";
    out += "  const matrix_view A = " + view(mm.in[0]) + ", B = " + view(mm.in[1]) + ";\n";
    if (as.cols == batch || mm.shape.rows != batch) {
      out += "  gemm<" + N + ", " + Ks + ">(" + M + ", " + N + ", " + K + ", A, B, " + Cb + ", " + N + ", false, gemm_workspace);\n";
      if (k.store_end > k.store_begin) out += elementwise_rows(p, k, v, "0", M);
    } else {
      // row blocks of the batch: each block's epilogue right after its GEMM
      out += "  for (long b = 0; b < " + M + "; b += 64) {\n";
      out += "    const long e = std::min<long>(" + M + ", b + 64);\n";
      out += "    gemm<" + N + ", " + Ks + ">(e - b, " + N + ", " + K + ", matrix_view{A.p + b * A.row_stride, A.row_stride, "
             "A.col_stride}, B, " + Cb + " + b * " + N + ", " + N + ", false, gemm_workspace);\n";
      if (k.store_end > k.store_begin) {
        std::string rows = elementwise_rows(p, k, v, "b", "e");
        // indent the epilogue one level
        std::string indented;
        for (std::size_t i = 0; i < rows.size(); ++i) {
          if (i == 0 || rows[i - 1] == '\n') indented += "  ";
          indented += rows[i];
        }
        out += indented;
      }
      out += "  }\n";
    }
  }
  out += "}\n\n";
  return out;
}

}  // namespace render_detail

// The plan as C++ source defining `extern "C" void <function_name>(…)` (see the header comment).
inline std::string render_source(const plan& p, const std::string& function_name = "kiln_step") {
  using namespace render_detail;
  std::string out;
  out += "// Generated by kiln from this plan:\n";
  std::string text = to_string(p);
  for (std::size_t b = 0; b < text.size();) {
    std::size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    out += "//   " + text.substr(b, e - b) + "\n";
    b = e + 1;
  }
  out += R"(
#include <kiln/core/philox.hpp>
#include <kiln/ops/window_math.hpp>
#include <kiln/cpu/window_kernels.hpp>
#include <kiln/cpu/fp_mode.hpp>
#include <kiln/cpu/gemm.hpp>
#include <kiln/cpu/simd.hpp>
#include <kiln/cpu/vmath.hpp>

#include <algorithm>
#include <cmath>

namespace {
using namespace kiln::cpu;
namespace m {
using namespace kiln::cpu;  // the math policy's functions (vmath.hpp, simd.hpp), called m::exp(…)
}  // namespace m
// n lanes starting at p (n < lanes reads and writes only the first n)
inline vfloat ld(const float* p, int n) { return n == lanes ? load(p) : load_partial(p, n); }
inline void st(float* p, vfloat v, int n) { if (n == lanes) store(p, v); else store_partial(p, v, n); }
[[maybe_unused]] inline vfloat column_index(long c0) {
  vfloat v = splat<vfloat>(static_cast<float>(c0));
  for (int l = 0; l < lanes; ++l) v[l] += static_cast<float>(l);
  return v;
}
// the random draws of elements first … first + lanes − 1 (kiln/core/philox.hpp)
[[maybe_unused]] inline vfloat draws(const kiln::random::key& rng, std::uint32_t stream, std::uint64_t first) {
  alignas(64) float d[lanes];
  kiln::random::uniform_run(rng, stream, first, lanes, d);
  return load(d);
}
// lanes at or past n take `fill` (so a partial vector does not disturb a reduction)
[[maybe_unused]] inline vfloat keep_first(vfloat x, vfloat fill, int n) {
  if (n == lanes) return x;
  vfloat keep = splat<vfloat>(0.0f);
  for (int l = 0; l < n; ++l) keep[l] = 1.0f;
  return select(keep, x, fill);
}

)";
  for (int k = 0; k < p.num_kernels; ++k) out += kernel_source(p, k);
  out += "}  // namespace\n\n";
  out += "extern \"C\" void " + function_name +
         "(float* const* buf, const float* hyper, long batch, float* gemm_workspace, const kiln::random::key* rng) {\n";
  out += "  const scoped_denormal_mode flush_denormals(true);  // as kiln::cpu::program runs a plan\n";
  for (int k = 0; k < p.num_kernels; ++k) out += "  k" + std::to_string(k) + "(buf, hyper, batch, gemm_workspace, rng);\n";
  out += "}\n";
  return out;
}

}  // namespace kiln::cpu
