#pragma once
// Axis ops: permute, crop (slice), pad, broadcast, sum and max over axes, and reshape, on tensors whose rows are
// row-major tensors of rank ≤ 8 (ops/axes_math.hpp, where their arithmetic is written once for every backend).
// Each node's geometry is graph.windows[node.leaf].ax: they share the window ops' table and kernels (an
// indexing kernel over materialized operands, one element per call). Every adjoint is an axis op again:
// permute ↔ the inverse permute, crop ↔ pad, broadcast ↔ sum_to, reshape ↔ the reverse reshape, and max_to's
// adjoint routes each group's adjoint to its first maximum (max_to_dx, without a second derivative, like max
// pooling's).
#include <kiln/ops/window.hpp>

namespace kiln::ops {

namespace detail {
// The window-table entry of an axis op: only its geometry `ax` is set.
constexpr window axes_window(const axes_geometry& a) {
  window w;
  w.ax = a;
  return w;
}
// The geometry of the reverse mapping: operand and result shapes swapped (pad ↔ crop, broadcast ↔ sum_to).
constexpr axes_geometry swapped(axes_geometry a) {
  for (int k = 0; k < 8; ++k) {
    const int t = a.in[k];
    a.in[k] = a.out[k];
    a.out[k] = t;
  }
  return a;
}
constexpr bool same_row_shapes(const axes_geometry& a) {
  for (int k = 0; k < a.rank; ++k)
    if (a.in[k] != a.out[k]) return false;
  return true;
}
constexpr void check_axes(bool ok, const char* what) {
  if (!ok) throw what;
}
// Result dims of an axis op on rows of a.in: the operand's rows, a row of a.out.
constexpr dims axes_result(const dims& in, const axes_geometry& a, const char* what) {
  check_axes(a.rank >= 0 && a.rank <= 8, "kiln: an axis op's rank must be at most 8");
  check_axes(in.cols == a.in_size(), what);
  return {in.rows, static_cast<int>(a.out_size())};
}
template <class Op, class B>
constexpr int axes_node(B& b, int x, int y, const axes_geometry& a) { return b.template window_node<Op>(x, y, axes_window(a)); }
}  // namespace detail

struct permute_op; struct crop_op; struct pad_op; struct broadcast_axes_op; struct sum_to_op; struct max_to_op;
struct max_to_dx_op; struct reshape_op;

// y = x.permute(perm) row by row (out[k] = in[perm[k]]); ∂x = the inverse permutation of g
struct permute_op {
  static constexpr op kind = op::permute; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "permute";
  static constexpr int window_code = window_math::kiln_permute;
  static constexpr dims shape_of(const dims* in, const window& w) {
    bool seen[8] = {};
    for (int k = 0; k < w.ax.rank; ++k) {
      const int p = w.ax.perm[k];
      detail::check_axes(p >= 0 && p < w.ax.rank && !seen[p], "kiln: permute: perm is not a permutation of the axes");
      seen[p] = true;
      detail::check_axes(w.ax.out[k] == w.ax.in[p], "kiln: permute: the result shape is not the permuted shape");
    }
    return detail::axes_result(in[0], w.ax, "kiln: permute: the operand's row is not the permuted shape's size");
  }
  static constexpr int simplify(const int* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      if (w.ax.perm[k] != k) return -1;
    return in[0];
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    axes_geometry inv = detail::swapped(b.window_of(self).ax);
    for (int k = 0; k < inv.rank; ++k) inv.perm[b.window_of(self).ax.perm[k]] = k;
    d[0] = detail::axes_node<permute_op>(b, detail::full_adjoint(b, self, g), -1, inv);
  }
};
// y[o] = x[o + begin]: a slice of every axis (out[k] ≤ in[k] − begin[k]); ∂x = pad(g)
struct crop_op {
  static constexpr op kind = op::crop; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "crop";
  static constexpr int window_code = window_math::kiln_crop;
  static constexpr dims shape_of(const dims* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      detail::check_axes(w.ax.begin[k] >= 0 && w.ax.out[k] >= 1 && w.ax.begin[k] + w.ax.out[k] <= w.ax.in[k],
                         "kiln: crop: the slice lies outside the operand");
    return detail::axes_result(in[0], w.ax, "kiln: crop: the operand's row is not the shape cropped");
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<pad_op>(b, detail::full_adjoint(b, self, g), -1, detail::swapped(b.window_of(self).ax));
  }
};
// y[o] = x[o − begin] inside, 0 outside (in[k] + begin[k] ≤ out[k]); ∂x = crop(g)
struct pad_op {
  static constexpr op kind = op::pad; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "pad";
  static constexpr int window_code = window_math::kiln_pad;
  static constexpr dims shape_of(const dims* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      detail::check_axes(w.ax.begin[k] >= 0 && w.ax.in[k] >= 1 && w.ax.begin[k] + w.ax.in[k] <= w.ax.out[k],
                         "kiln: pad: the operand does not fit inside the padded shape");
    return detail::axes_result(in[0], w.ax, "kiln: pad: the operand's row is not the shape padded");
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<crop_op>(b, detail::full_adjoint(b, self, g), -1, detail::swapped(b.window_of(self).ax));
  }
};
// y[o] = x[o with the size-1 axes of in held at 0] (in[k] ∈ {1, out[k]}); ∂x = sum_to(g)
struct broadcast_axes_op {
  static constexpr op kind = op::broadcast_axes; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "broadcast_axes";
  static constexpr int window_code = window_math::kiln_broadcast;
  static constexpr dims shape_of(const dims* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      detail::check_axes(w.ax.in[k] == 1 || w.ax.in[k] == w.ax.out[k], "kiln: broadcast_axes: only axes of size 1 stretch");
    return detail::axes_result(in[0], w.ax, "kiln: broadcast_axes: the operand's row is not the shape broadcast");
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<sum_to_op>(b, detail::full_adjoint(b, self, g), -1, detail::swapped(b.window_of(self).ax));
  }
};
// y[o] = Σ x over the axes where out[k] = 1 < in[k] (keepdim); ∂x = broadcast_axes(g)
struct sum_to_op {
  static constexpr op kind = op::sum_to; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "sum_to";
  static constexpr int window_code = window_math::kiln_sum_to;
  static constexpr dims shape_of(const dims* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      detail::check_axes(w.ax.out[k] == 1 || w.ax.in[k] == w.ax.out[k], "kiln: sum_to: only axes reduced to size 1 change");
    return detail::axes_result(in[0], w.ax, "kiln: sum_to: the operand's row is not the shape summed");
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<broadcast_axes_op>(b, detail::full_adjoint(b, self, g), -1, detail::swapped(b.window_of(self).ax));
  }
};
// y[o] = the first maximum over the axes where out[k] = 1 < in[k] (a NaN wins; torch.max(x, dim) for one axis);
// ∂x = max_to_dx(x, g)
struct max_to_op {
  static constexpr op kind = op::max_to; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "max_to";
  static constexpr int window_code = window_math::kiln_max_to;
  static constexpr dims shape_of(const dims* in, const window& w) {
    for (int k = 0; k < w.ax.rank; ++k)
      detail::check_axes(w.ax.out[k] == 1 || w.ax.in[k] == w.ax.out[k], "kiln: max_to: only axes reduced to size 1 change");
    return detail::axes_result(in[0], w.ax, "kiln: max_to: the operand's row is not the shape reduced");
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<max_to_dx_op>(b, b.operand(self, 0), detail::full_adjoint(b, self, g), b.window_of(self).ax);
  }
};
// gx [R, in] = max_to_dx(x [R, in], gy [R, out]): each group's adjoint routed to its first maximum
struct max_to_dx_op {
  static constexpr op kind = op::max_to_dx; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "max_to_dx";
  static constexpr int window_code = window_math::kiln_max_to_dx;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_axes(in[0].cols == w.ax.in_size() && in[1].cols == w.ax.out_size() && in[0].rows == in[1].rows,
                       "kiln: max_to_dx: the operand and the adjoint do not match the reduction");
    return in[0];
  }
  template <class B> static constexpr void vjp(B&, int, int, int*) {
    throw "kiln: a maximum over axes has no second derivative";
  }
};
// y [out[0], out[1]] = x [in[0], in[1]] element by element, in the same order (a parameter's rows regrouped;
// batched tensors reshape without a node); ∂x = the reverse reshape of g
struct reshape_op {
  static constexpr op kind = op::reshape; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "reshape";
  static constexpr int window_code = window_math::kiln_reshape;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_axes(w.ax.rank == 2 && in[0] == dims{w.ax.in[0], w.ax.in[1]} && w.ax.in_size() == w.ax.out_size(),
                       "kiln: reshape: the operand is not [in[0], in[1]] or the sizes differ");
    detail::check_axes(!in[0].batched(), "kiln: reshape: a batched tensor keeps its rows (its row shape is static)");
    return {w.ax.out[0], w.ax.out[1]};
  }
  static constexpr int simplify(const int* in, const window& w) { return detail::same_row_shapes(w.ax) ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = detail::axes_node<reshape_op>(b, detail::full_adjoint(b, self, g), -1, detail::swapped(b.window_of(self).ax));
  }
};

}  // namespace kiln::ops
