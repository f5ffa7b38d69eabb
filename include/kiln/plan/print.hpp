#pragma once
// Human-readable plan: one line per kernel, named after what it fuses, then the nodes it evaluates.
//   k3 contraction  matmul+add+max  [batch,128] = n5[batch,784] · n4ᵀ[784,128]; stores n7 n8
#include <kiln/plan/plan.hpp>

#include <string>

namespace kiln {

inline std::string dims_text(dims d) {
  auto one = [](int v) { return v == batch ? std::string("batch") : std::to_string(v); };
  return "[" + one(d.rows) + "," + one(d.cols) + "]";
}

inline std::string node_label(const graph& g, int i) {
  const node& n = g.nodes[i];
  switch (n.kind) {
    case op::input: case op::param: case op::state: return std::string(g.leaves[n.leaf].name.view());
    case op::constant: { std::string s = ops::num(n.k); s.pop_back(); return s; }
    case op::hyper: return "hyper" + std::to_string(n.leaf);
    default: return "n" + std::to_string(i);
  }
}

// The kernel's name: its anchor op, then the distinct ops of its body in order, joined by '_'
// (e.g. matmul_add_max, sum_cols_exp_sub, ew_mul_add_sqrt_div_sub).
inline std::string kernel_name(const plan& p, int k) {
  const kernel& kr = p.kernels[k];
  std::string name = kr.kind == kernel_kind::elementwise ? "ew" : ops::name_of(p.g.nodes[kr.anchor].kind);
  bool used[op_count]{};
  for (int b = kr.body_begin; b < kr.body_end; ++b) {
    const op o = p.g.nodes[p.body[b]].kind;
    if (ops::class_of(o) == op_class::immediate || used[static_cast<int>(o)]) continue;
    used[static_cast<int>(o)] = true;
    name += "_";
    name += ops::name_of(o);
  }
  return name;
}

// A window's fields in declaration order, the initializer of a kiln_window (ops/window_math.hpp):
// "{C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, groups, {rank, {in}, {out}, {perm}, {begin}}}".
inline std::string window_initializer(const window& w) {
  auto list = [](const int* v, int n) {
    std::string s = "{";
    for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "}";
  };
  const int f[] = {w.c, w.h, w.w, w.o, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.groups};
  const axes_geometry& a = w.ax;
  std::string s = list(f, 13);
  s.pop_back();
  return s + ", {" + std::to_string(a.rank) + ", " + list(a.in, 8) + ", " + list(a.out, 8) + ", " + list(a.perm, 8) + ", " +
         list(a.begin, 8) + "}}";
}
// The window as a reader wants it: "2x5x5->3 k3x3 s1x1 p1x1 d1x1 g1"; an axis op's: "[2x3x4]->[4x2x3] perm 2,0,1".
inline std::string window_label(const window& w) {
  auto pair = [](int a, int b) { return std::to_string(a) + "x" + std::to_string(b); };
  if (w.ax.rank > 0) {
    const axes_geometry& a = w.ax;
    auto shape = [&](const int* d) {
      std::string s = "[";
      for (int k = 0; k < a.rank; ++k) s += (k ? "x" : "") + std::to_string(d[k]);
      return s + "]";
    };
    auto list = [&](const char* what, const int* v) {
      std::string s = std::string(" ") + what + " ";
      for (int k = 0; k < a.rank; ++k) s += (k ? "," : "") + std::to_string(v[k]);
      return s;
    };
    bool permuted = false, offset = false;
    for (int k = 0; k < a.rank; ++k) permuted |= a.perm[k] != k, offset |= a.begin[k] != 0;
    return shape(a.in) + "->" + shape(a.out) + (permuted ? list("perm", a.perm) : "") + (offset ? list("at", a.begin) : "");
  }
  return std::to_string(w.c) + "x" + pair(w.h, w.w) + "->" + std::to_string(w.o) + " k" + pair(w.kh, w.kw) + " s" +
         pair(w.sh, w.sw) + " p" + pair(w.ph, w.pw) + " d" + pair(w.dh, w.dw) + " g" + std::to_string(w.groups);
}

inline std::string node_text(const plan& p, int i) {
  const node& n = p.g.nodes[i];
  std::string s = node_label(p.g, i) + " = " + ops::name_of(n.kind) + "(";
  for (int k = 0; k < 3 && n.in[k] >= 0; ++k) s += (k ? ", " : "") + node_label(p.g, n.in[k]);
  if (ops::uses_k(n.kind)) s += ", " + ops::num(n.k);
  if (ops::is_window_op(n.kind)) s += ", " + window_label(p.g.windows[n.leaf]);
  return s + ") " + dims_text(n.shape);
}

// Kernel k's lines of the printed plan: its name, domain and anchor, then one line per body node (immediates
// inlined) with where it is stored. `prefix` starts every line (the renderers print it as a comment).
inline std::string kernel_text(const plan& p, int k, const std::string& prefix = "") {
  const kernel& kr = p.kernels[k];
  std::string out = prefix + "k" + std::to_string(k) + " " + kernel_name(p, k) + " " + dims_text(kr.domain);
  if (kr.kind != kernel_kind::elementwise) out += "  " + node_text(p, kr.anchor);
  out += "\n";
  for (int b = kr.body_begin; b < kr.body_end; ++b) {
    const int i = p.body[b];
    if (ops::class_of(p.g.nodes[i].kind) == op_class::immediate && !p.materialized[i]) continue;  // inlined
    out += prefix + "    " + node_text(p, i);
    for (int s = kr.store_begin; s < kr.store_end; ++s)
      if (p.stores[s] == i) out += p.assign[i] >= 0 ? "  -> " + std::string(p.g.leaves[p.assign[i]].name.view()) : "  -> store";
    out += "\n";
  }
  return out;
}

inline std::string to_string(const plan& p) {
  std::string out = std::string("plan (") + (p.mode == fusion::fused ? "fused" : "unfused") + "): " +
                    std::to_string(p.num_kernels) + " kernels, " + std::to_string(p.g.size) + " nodes\n";
  for (int k = 0; k < p.num_kernels; ++k) out += kernel_text(p, k);
  return out;
}

}  // namespace kiln
