#pragma once
// Tensor functions of any rank, with PyTorch's meaning and axis numbering (axis 0 is the batch of a batched
// tensor; a negative axis counts from the end): reshape, permute, slice, concat, broadcast_to, and the sum, mean
// and max over any set of axes. Shapes are checked at compile time; each check is a template named after the
// function whose arguments are the shapes ({rank, {dims}}, -1 = batch). How tensors map onto the rank-2 IR:
// expr/tensor_shape.hpp.
#include <kiln/expr/operators.hpp>

namespace kiln {

namespace checks {
struct reshape {};
struct permute {};
struct slice {};
struct concat {};
struct reduce {};
struct broadcast_to {};
}  // namespace checks

template <class Fn, tensor_shape From, tensor_shape To>
struct reshape_check {
  static_assert(From.batched() == To.batched() && From.size_from(0) == To.size_from(0) && (!To.batched() || From.size_from(1) == To.size_from(1)),
      "kiln: reshape: the new shape must hold as many values, and keep the batch (-1) first exactly when the "
      "tensor is batched; the old and new shapes ({rank, {dims}}) are the arguments of kiln::reshape_check above");
  static constexpr bool ok = true;
};
template <class Fn, tensor_shape From, int Axis>
struct axis_check {
  static_assert(Axis >= 0 && Axis < From.rank,
      "kiln: axis out of range: the tensor's shape ({rank, {dims}}) and the axis are the arguments of kiln::axis_check above");
  static_assert(!From.batched() || Axis > 0,
      "kiln: this op cannot act on the batch axis (axis 0 of a batched tensor: its size is only known at run time); "
      "the shape and the axis are the arguments of kiln::axis_check above");
  static constexpr bool ok = true;
};
template <class Fn, tensor_shape From, tensor_shape Other, int Axis>
struct same_but_axis_check {
  static constexpr bool same() {
    if (From.rank != Other.rank) return false;
    for (int k = 0; k < From.rank; ++k)
      if (k != Axis && From.d[k] != Other.d[k]) return false;
    return true;
  }
  static_assert(same(),
      "kiln: concat: the tensors must have the same shape except along the axis; both shapes ({rank, {dims}}) and "
      "the axis are the arguments of kiln::same_but_axis_check above");
  static constexpr bool ok = true;
};

namespace detail {
template <int Rank>
constexpr int normalized_axis(int axis) { return axis < 0 ? axis + Rank : axis; }

template <class Op, tensor_shape From, tensor_shape To, axis_args Args>
struct axis_tag {
  static constexpr int emit(builder& b, double, int x) { return axis_node<Op>(b, x, From, To, Args); }
};
template <tensor_shape From, tensor_shape To>
struct reshape_tag {
  static constexpr int emit(builder& b, double, int x) { return reshape_storage(b, x, storage_of(From), storage_of(To)); }
};
template <tensor_shape From, int... P>
constexpr bool valid_permutation() {
  if (static_cast<int>(sizeof...(P)) != From.rank) return false;
  const int perm[] = {normalized_axis<From.rank>(P)...};
  bool seen[max_rank] = {};
  for (int p : perm) {
    if (p < 0 || p >= From.rank || seen[p]) return false;
    seen[p] = true;
  }
  return !From.batched() || perm[0] == 0;
}
template <tensor_shape From, int... P>
constexpr axis_args permutation_args() {
  axis_args a;
  int k = 0;
  ((a.set_perm(k++, normalized_axis<From.rank>(P))), ...);
  return a;
}
template <tensor_shape From, axis_args A>
constexpr tensor_shape permuted_shape() {
  tensor_shape t = From;
  for (int k = 0; k < From.rank; ++k) t.d[k] = From.d[A.perm(k)];
  return t;
}
constexpr axis_args offset_args(int axis, int begin) {
  axis_args a;
  a.set_begin(axis, begin);
  return a;
}
constexpr tensor_shape resized(tensor_shape t, int axis, int extent) {
  t.d[axis] = extent;
  return t;
}
template <std::size_t N>
constexpr int offset_of(const int (&extents)[N], std::size_t i) {
  int o = 0;
  for (std::size_t k = 0; k < i; ++k) o += extents[k];
  return o;
}
}  // namespace detail

// reshape<-1, 2, 392>(x): x viewed with a new shape of as many values (PyTorch's x.reshape(-1, 2, 392)); the batch
// (-1) stays first. A batched tensor reshapes without a node; a parameter's [rows, cols] may change (one copy).
template <int... D, expression X>
  requires(sizeof...(D) > 0)
constexpr auto reshape(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>(), to = shape_from<D...>();
  static_assert(reshape_check<checks::reshape, from, to>::ok);
  if constexpr (storage_of(from) == storage_of(to)) return with_shape<to>(x);
  else return with_shape<to>(make_expr<detail::reshape_tag<from, to>, storage_of(to), X::kind>(0, x));
}

// permute<0, 2, 3, 1>(x): the axes reordered, result axis k = x's axis P[k] (torch.permute). A batched tensor's
// batch stays axis 0.
template <int... P, expression X>
  requires(sizeof...(P) > 0)
constexpr auto permute(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>();
  static_assert(detail::valid_permutation<from, P...>(),
                "kiln: permute<P...>: P must list each axis of the tensor once (a batched tensor's batch, axis 0, first)");
  constexpr axis_args args = detail::permutation_args<from, P...>();
  constexpr tensor_shape to = detail::permuted_shape<from, args>();
  return with_shape<to>(make_expr<detail::axis_tag<ops::permute_op, from, to, args>, storage_of(to), X::kind>(0, x));
}

// slice<Axis, Begin, End>(x): positions [Begin, End) of one axis (x[:, Begin:End] for Axis 1; torch.narrow).
template <int Axis, int Begin, int End, expression X>
constexpr auto slice(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>();
  constexpr int axis = detail::normalized_axis<from.rank>(Axis);
  static_assert(axis_check<checks::slice, from, axis>::ok);
  static_assert(0 <= Begin && Begin < End && End <= from.d[axis],
                "kiln: slice<Axis, Begin, End>: needs 0 <= Begin < End <= the axis' size");
  constexpr axis_args args = detail::offset_args(axis, Begin);
  constexpr tensor_shape to = detail::resized(from, axis, End - Begin);
  return with_shape<to>(make_expr<detail::axis_tag<ops::crop_op, from, to, args>, storage_of(to), X::kind>(0, x));
}

namespace detail {
// x placed at offset Begin along Axis of a tensor of shape To, zeros elsewhere (concat's part).
template <int Axis, int Begin, tensor_shape To, class X>
constexpr auto padded(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>();
  constexpr axis_args args = offset_args(Axis, Begin);
  return with_shape<To>(make_expr<axis_tag<ops::pad_op, from, To, args>, storage_of(To)>(0, x));
}
template <int Axis, tensor_shape To, class... X, std::size_t... I>
constexpr auto concat_parts(std::index_sequence<I...>, X... x) {
  constexpr int extents[] = {tensor_shape_of<X>().d[Axis]...};
  return (padded<Axis, offset_of(extents, I), To>(x) + ...);
}
}  // namespace detail

// concat<Axis>(a, b, …): the tensors side by side along Axis (torch.cat); the others' shapes must match.
template <int Axis, expression X0, expression... X>
  requires(sizeof...(X) > 0)
constexpr auto concat(X0 x0, X... x) {
  constexpr tensor_shape first = tensor_shape_of<X0>();
  constexpr int axis = detail::normalized_axis<first.rank>(Axis);
  static_assert(axis_check<checks::concat, first, axis>::ok);
  static_assert((same_but_axis_check<checks::concat, first, tensor_shape_of<X>(), axis>::ok && ...));
  constexpr tensor_shape to = detail::resized(first, axis, (first.d[axis] + ... + tensor_shape_of<X>().d[axis]));
  return detail::concat_parts<axis, to>(std::make_index_sequence<sizeof...(X) + 1>{}, x0, x...);
}

// broadcast_to<-1, 3, 4, 5>(x): x stretched by numpy's rules to the given shape (torch.broadcast_to).
template <int... D, expression X>
  requires(sizeof...(D) > 0)
constexpr auto broadcast_to(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>(), to = shape_from<D...>();
  static_assert(tensor_broadcast_check<checks::broadcast_to, from, to>::result == to,
                "kiln: broadcast_to: the tensor does not broadcast to exactly that shape");
  return with_shape<to>(make_expr<detail::tensor_binary_tag<op::add, from, to, to>, storage_of(to), X::kind>(0, x, scalar_expr{0}));
}

// ---- reductions over any set of axes: sum, mean, max (torch.sum / mean / amax with dim=(…); keepdim variants).
// Over the batch axis too (sum and mean; not max). Max's adjoint goes to the first maximum of each group in
// row-major order (torch.max(x, dim)'s rule; torch.amax would split ties evenly).
namespace detail {
enum class reduce_kind { sum, mean, max };
template <tensor_shape From, int... Axes>
constexpr tensor_shape kept_shape() {  // the axes reduced to 1
  tensor_shape t = From;
  ((t.d[normalized_axis<From.rank>(Axes)] = 1), ...);
  return t;
}
template <tensor_shape From, int... Axes>
constexpr tensor_shape dropped_shape() {  // the axes removed
  bool drop[max_rank] = {};
  ((drop[normalized_axis<From.rank>(Axes)] = true), ...);
  tensor_shape t;
  for (int k = 0; k < From.rank; ++k)
    if (!drop[k]) t.d[t.rank++] = From.d[k];
  return t;
}
template <tensor_shape From, int... Axes>
constexpr bool valid_axes() {
  bool seen[max_rank] = {};
  for (int a : {normalized_axis<From.rank>(Axes)...}) {
    if (a < 0 || a >= From.rank || seen[a]) return false;
    seen[a] = true;
  }
  return true;
}
template <reduce_kind R, tensor_shape From, tensor_shape Kept>
struct reduce_tag {
  static constexpr int emit(builder& b, double, int x) {
    // the row axes first (sum_to / max_to, or sum_cols / max_cols when the whole row goes), then the batch
    tensor_shape mid = Kept;
    const bool over_batch = From.batched() && Kept.d[0] == 1;
    if (over_batch) mid.d[0] = batch;
    int y = x;
    if (mid != From) {
      bool whole_row = From.batched() && mid.size_from(1) == 1;
      if (whole_row) y = R == reduce_kind::max ? b.max_cols(x) : b.sum_cols(x);
      else y = R == reduce_kind::max ? axis_node<ops::max_to_op>(b, x, From, mid, axis_args{})
                                   : axis_node<ops::sum_to_op>(b, x, From, mid, axis_args{});
    }
    if (over_batch) y = b.sum_rows(y);
    if (R == reduce_kind::mean) {
      const long long n = From.size_from(0) / Kept.size_from(0);  // the batch's −1 cancels when it is reduced
      y = b.mul(y, b.scalar(1.0 / static_cast<double>(over_batch ? -n : n)));
      if (over_batch) y = b.div(y, b.batch_size());
    }
    return y;
  }
};
template <reduce_kind R, bool Keep, int... Axes, class X>
constexpr auto reduce_axes(X x) {
  constexpr tensor_shape from = tensor_shape_of<X>();
  static_assert(valid_axes<from, Axes...>(), "kiln: a reduction's axes must be distinct axes of the tensor");
  constexpr tensor_shape kept = kept_shape<from, Axes...>();
  static_assert(!(R == reduce_kind::max && from.batched() && kept.d[0] == 1),
                "kiln: max over the batch axis is not supported (sum and mean are)");
  constexpr tensor_shape to = Keep ? kept : dropped_shape<from, Axes...>();
  static_assert(storage_of(kept).cols == storage_of(to).cols || !from.batched() || kept.d[0] == 1,
                "kiln: internal: a batched reduction keeps its row size");
  auto y = make_expr<reduce_tag<R, from, kept>, storage_of(kept)>(0, x);
  if constexpr (storage_of(kept) == storage_of(to)) return with_shape<to>(y);
  else return with_shape<to>(make_expr<reshape_tag<kept, to>, storage_of(to)>(0, y));
}
}  // namespace detail

template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto sum(X x) { return detail::reduce_axes<detail::reduce_kind::sum, false, Axes...>(x); }
template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto sum_keepdim(X x) { return detail::reduce_axes<detail::reduce_kind::sum, true, Axes...>(x); }
template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto mean(X x) { return detail::reduce_axes<detail::reduce_kind::mean, false, Axes...>(x); }
template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto mean_keepdim(X x) { return detail::reduce_axes<detail::reduce_kind::mean, true, Axes...>(x); }
template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto max(X x) { return detail::reduce_axes<detail::reduce_kind::max, false, Axes...>(x); }
template <int... Axes, expression X> requires(sizeof...(Axes) > 0)
constexpr auto max_keepdim(X x) { return detail::reduce_axes<detail::reduce_kind::max, true, Axes...>(x); }

// ---- leaves of any rank
// tensor_input<3, 32, 32>("x"): a batch of tensors [batch, 3, 32, 32] (input<784> is its rank-2 case, tensor_input<>
// one value per sample, [batch]).
template <int... D>
constexpr auto tensor_input(std::string_view name) {
  static_assert(sizeof...(D) < max_rank && ((D > 0) && ...),
                "kiln: tensor_input<D...> takes up to 7 positive sizes (the batch comes first on its own; none: one "
                "value per sample)");
  constexpr tensor_shape s = shape_from<batch, D...>();
  return with_shape<s>(make_leaf<batch, storage_of(s).cols, value_kind::any, leaf_kind::input>(name, 2));
}
// input<3, 32, 32>("x"): the same as tensor_input (input<784> is the rank-2 input of expr/expression.hpp).
template <int D0, int D1, int... D>
constexpr auto input(std::string_view name) { return tensor_input<D0, D1, D...>(name); }
// tensor_param<4, 3, 5>("p"): a parameter of any rank, PyTorch's shape in checkpoints; zero-initialised, or with
// fan_in > 0 uniform in ±1/√fan_in (PyTorch's Linear and Conv default); values can always be set by name.
template <int... D>
constexpr auto tensor_param(std::string_view name, int fan_in = 0) {
  static_assert(sizeof...(D) <= max_rank && ((D > 0) && ...), "kiln: tensor_param<D...> takes up to 8 positive sizes");
  constexpr tensor_shape s = shape_from<D...>();
  constexpr dims st = storage_of(s);
  auto leaf = make_leaf<st.rows, st.cols, value_kind::any, leaf_kind::param>(name, s.rank);
  for (int k = 0; k < s.rank; ++k) leaf.info.torch_dims[k] = s.d[k];
  if (fan_in > 0) leaf = leaf.init_uniform_fan_in(fan_in);
  return with_shape<s>(leaf);
}

}  // namespace kiln
