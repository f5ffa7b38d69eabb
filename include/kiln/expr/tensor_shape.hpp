#pragma once
// Tensors of any rank (0 to 8) over the rank-2 IR. What a user sees is PyTorch's shape, [batch, d1, …, dk] for a
// batched tensor (the batch a run-time leading dimension, written −1 = kiln::batch) or [d0, …, dk] for a parameter;
// what a node stores is that tensor row-major as [rows, cols]: [batch, d1·…·dk], or [d0, d1·…·dk] (a vector
// [1, d0], a scalar [1, 1]). So reshaping a batched tensor moves nothing, every elementwise op, reduction and
// product of the rank-2 IR applies unchanged, and checkpoints hold PyTorch's layout. The axis ops
// (ops/axes.hpp) act on a row's tensor: a batched tensor's [d1, …, dk], a parameter's whole shape (held as one
// row [1, size] for the op, a reshape node either side when its storage has several rows).
//
// An expression's tensor shape is tensor_shape_of<E>(): its static member `tshape` if it has one (shaped_expr,
// or an elementwise function of one), else the feature map it holds ([rows, C, H, W]), else its storage read as rank ≤ 2 ([batch, n], [n] for a
// [1, n] value, [] for [1, 1], [r, c]). Arithmetic between expressions of which one has a tshape broadcasts by
// numpy's rules (tensor_binary): an operand whose row differs from the result's is stretched by broadcast_axes.
#include <kiln/expr/expression.hpp>
#include <kiln/ops/axes.hpp>

namespace kiln {

namespace detail {
// A batched tensor of rank 4 holds feature maps [C, H, W], one of rank 3 sequences [C, L] (maps of one row): it
// gets the member `map` the conv and pooling layers read.
template <tensor_shape S, bool Map = (S.rank == 3 || S.rank == 4) && S.batched()>
struct map_member {};
template <tensor_shape S>
struct map_member<S, true> {
  static constexpr feature_map map = S.rank == 4 ? feature_map{S.d[1], S.d[2], S.d[3]} : feature_map{S.d[1], 1, S.d[2]};
};
struct identity_tag { static constexpr int emit(builder&, double, int x) { return x; } };
}  // namespace detail

// An expression E (without a feature map of its own) viewed as a tensor of shape S, stored as E is.
template <class E, tensor_shape S>
struct shaped_expr : E, detail::map_member<S> {
  static_assert(storage_of(S) == E::shape, "kiln: a tensor shape must match the value's [rows, cols]");
  static constexpr tensor_shape tshape = S;
  using unshaped_type = E;
};
template <tensor_shape S, class E>
constexpr auto with_shape(E e) {
  if constexpr (requires { typename E::unshaped_type; })  // a new shape replaces the old
    return with_shape<S>(static_cast<const typename E::unshaped_type&>(e));
  else if constexpr (requires { E::map; }) return with_shape<S>(make_expr<detail::identity_tag, E::shape, E::kind>(0, e));
  else return shaped_expr<E, S>{e, {}};
}

template <class E>
constexpr tensor_shape tensor_shape_of() {
  constexpr dims s = E::shape;
  if constexpr (requires { E::tshape; }) {
    return E::tshape;
  } else if constexpr (requires { E::map; }) {
    if constexpr (E::map.c > 0) return shape_from<s.rows, E::map.c, E::map.h, E::map.w>();
    else if constexpr (s.rows == batch) return shape_from<batch, s.cols>();
    else return shape_from<s.rows, s.cols>();
  } else if constexpr (s.rows == batch) {
    return shape_from<batch, s.cols>();
  } else if constexpr (s.rows == 1 && s.cols == 1) {
    return shape_from<>();
  } else if constexpr (s.rows == 1) {
    return shape_from<s.cols>();
  } else {
    return shape_from<s.rows, s.cols>();
  }
}
template <class E>
inline constexpr bool has_tensor_shape = requires { E::tshape; };

// ---- numpy broadcasting of two tensor shapes (the batch stretches nothing and is stretched from 1 only)
namespace detail {
constexpr int broadcast_extent(int a, int b) {
  if (a == b || b == 1) return a;
  if (a == 1) return b;
  return 0;  // incompatible
}
constexpr tensor_shape broadcast_shapes(const tensor_shape& a, const tensor_shape& b) {
  tensor_shape r;
  r.rank = a.rank > b.rank ? a.rank : b.rank;
  for (int k = 0; k < r.rank; ++k) {
    const int ia = k - (r.rank - a.rank), ib = k - (r.rank - b.rank);
    r.d[k] = broadcast_extent(ia >= 0 ? a.d[ia] : 1, ib >= 0 ? b.d[ib] : 1);
  }
  return r;
}
constexpr bool broadcastable(const tensor_shape& a, const tensor_shape& b) {
  const tensor_shape r = broadcast_shapes(a, b);
  for (int k = 0; k < r.rank; ++k)
    if (r.d[k] == 0) return false;
  // a batch can only sit on the leading axis of the result
  for (int k = 1; k < r.rank; ++k)
    if (r.d[k] == batch) return false;
  return true;
}
}  // namespace detail

template <class Op, tensor_shape Lhs, tensor_shape Rhs>
struct tensor_broadcast_check {
  static_assert(detail::broadcastable(Lhs, Rhs),
      "kiln: shape mismatch: these tensors cannot be broadcast together (numpy's rules: trailing axes equal or 1); "
      "the op and both shapes ({rank, {dims}}, -1 = batch) are the arguments of kiln::tensor_broadcast_check<op, "
      "lhs, rhs> above");
  static constexpr tensor_shape result = detail::broadcast_shapes(Lhs, Rhs);
};

// ---- emitting tensor ops on the rank-2 IR
// The permutation and offsets of an axis op over all of a tensor's axes, a template argument of the tags below.
// Held plus one: g++ 12 compares array members of class-type template arguments with their zero elements
// dropped (so {0, 0, 2} and {0, 2, 0} would name one specialization); with no zero element they stay distinct.
struct axis_args {
  int perm1[max_rank] = {1, 2, 3, 4, 5, 6, 7, 8};
  int begin1[max_rank] = {1, 1, 1, 1, 1, 1, 1, 1};
  constexpr int perm(int k) const { return perm1[k] - 1; }
  constexpr int begin(int k) const { return begin1[k] - 1; }
  constexpr void set_perm(int k, int p) { perm1[k] = p + 1; }
  constexpr void set_begin(int k, int b) { begin1[k] = b + 1; }
  constexpr bool operator==(const axis_args&) const = default;
};

namespace detail {
// A reshape node from storage `from` to `to` (none when equal; never for a batched tensor).
constexpr int reshape_storage(builder& b, int x, dims from, dims to) {
  if (from == to) return x;
  axes_geometry a;
  a.rank = 2;
  a.in[0] = from.rows; a.in[1] = from.cols;
  a.out[0] = to.rows; a.out[1] = to.cols;
  return b.window_node<ops::reshape_op>(x, -1, ops::detail::axes_window(a));
}
// Node x (tensor s) as one row: a parameter held [d0, rest] becomes [1, d0·rest].
constexpr int as_one_row(builder& b, int x, const tensor_shape& s) {
  const dims d = storage_of(s);
  if (s.batched() || d.rows == 1) return x;
  return reshape_storage(b, x, d, {1, d.rows * d.cols});
}
// Node x holding tensor s as one row, back in s's storage.
constexpr int from_one_row(builder& b, int x, const tensor_shape& s) {
  const dims d = storage_of(s);
  if (s.batched() || d.rows == 1) return x;
  return reshape_storage(b, x, {1, d.rows * d.cols}, d);
}
// Axis op Op taking node x (tensor `from`) to tensor `to`, perm and begin given over all of from's axes: on each
// row of a batched tensor (whose axis 0, the batch, stays), on the whole of a parameter.
template <class Op>
constexpr int axis_node(builder& b, int x, const tensor_shape& from, const tensor_shape& to, const axis_args& args) {
  const int o = from.batched() ? 1 : 0;
  axes_geometry a;
  a.rank = from.rank - o;
  for (int k = 0; k < a.rank; ++k) {
    a.in[k] = from.d[k + o];
    a.out[k] = to.d[k + o];
    a.perm[k] = args.perm(k + o) - o;
    a.begin[k] = args.begin(k + o);
  }
  const int r = b.window_node<Op>(as_one_row(b, x, from), -1, ops::detail::axes_window(a));
  return from_one_row(b, r, to);
}
// Node x (tensor s) in a form that broadcasts to tensor r under the rank-2 IR's rules: r's own storage, [1, 1],
// or (r batched) one row [1, d1·…·dk]; a broadcast_axes node stretches what those rules cannot.
constexpr int stretch(builder& b, int x, const tensor_shape& s, const tensor_shape& r) {
  if (s == r) return x;
  if (s.size_from(0) == 1 && !s.batched()) return as_one_row(b, x, s);  // one value: [1, 1]
  tensor_shape a;  // s aligned to r's rank with leading 1s
  a.rank = r.rank;
  for (int k = 0; k < r.rank; ++k) a.d[k] = k < r.rank - s.rank ? 1 : s.d[k - (r.rank - s.rank)];
  const int o = r.batched() ? 1 : 0;
  bool same_row = true;
  for (int k = o; k < r.rank; ++k) same_row = same_row && a.d[k] == r.d[k];
  if (r.batched() && same_row) return as_one_row(b, x, s);  // [batch or 1, row]: broadcast by rows
  axes_geometry g;
  g.rank = r.rank - o;
  for (int k = 0; k < g.rank; ++k) { g.in[k] = a.d[k + o]; g.out[k] = r.d[k + o]; }
  const int y = b.window_node<ops::broadcast_axes_op>(as_one_row(b, x, s), -1, ops::detail::axes_window(g));
  return r.batched() ? y : from_one_row(b, y, r);
}
template <op O, tensor_shape A, tensor_shape B, tensor_shape R>
struct tensor_binary_tag {
  static constexpr int emit(builder& b, double, int x, int y) { return b.binary(O, stretch(b, x, A, R), stretch(b, y, B, R)); }
};
}  // namespace detail

// a ⊕ b for op O with numpy broadcasting of their tensor shapes.
template <op O, class X, class Y>
constexpr auto tensor_binary(X x, Y y) {
  constexpr tensor_shape a = tensor_shape_of<X>(), b = tensor_shape_of<Y>();
  constexpr tensor_shape r = tensor_broadcast_check<ops::of<O>, a, b>::result;
  return with_shape<r>(make_expr<detail::tensor_binary_tag<O, a, b, r>, storage_of(r)>(0, x, y));
}

}  // namespace kiln
