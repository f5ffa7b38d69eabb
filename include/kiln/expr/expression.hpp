#pragma once
// User-facing expressions. An expression is a small constexpr value whose *type* carries its static shape and
// what kind of value it is (logits, probabilities, log-probabilities, labels), and whose emit(builder&) appends
// it to the graph. Constants and names are values; the graph is built in a constexpr function, so it exists
// entirely at compile time.
#include <kiln/ir/builder.hpp>

#include <concepts>
#include <tuple>

namespace kiln {

enum class value_kind { any, logits, probabilities, log_probabilities, labels, mask };

template <class E>
concept expression = requires(const E& e, builder& b) {
  { e.emit(b) } -> std::same_as<int>;
  { E::shape } -> std::convertible_to<dims>;
  { E::kind } -> std::convertible_to<value_kind>;
};

// ---- readable shape errors: the static_assert fires inside a template whose arguments name the op and shapes.
// The op is a type that g++ and clang both print by name: the primitive's own struct where the user's call is
// one primitive (broadcast_check<kiln::ops::add_op, {-1, 784}, {1, 128}>), else a tag declared next to the
// function that checks (kiln::checks::mse, kiln::checks::less).
template <class Op, dims Lhs, dims Rhs>
struct broadcast_check {
  static constexpr bool rows_ok = Lhs.rows == Rhs.rows || Lhs.rows == 1 || Rhs.rows == 1;
  static constexpr bool cols_ok = Lhs.cols == Rhs.cols || Lhs.cols == 1 || Rhs.cols == 1;
  static_assert(rows_ok && cols_ok,
      "kiln: shape mismatch: these operands cannot be broadcast together; the op and both shapes ({rows, cols}, "
      "-1 = batch) are the arguments of kiln::broadcast_check<op, lhs, rhs> above");
  static constexpr dims result{Lhs.rows == 1 ? Rhs.rows : Lhs.rows, Lhs.cols == 1 ? Rhs.cols : Lhs.cols};
};
template <class Op, dims Lhs, dims Rhs>
struct contraction_check {
  static_assert(Lhs.cols == Rhs.rows,
      "kiln: shape mismatch: inner dimensions of a contraction differ; the op and both shapes ({rows, cols}, -1 = "
      "batch) are the arguments of kiln::contraction_check<op, lhs, rhs> above");
  static constexpr dims result{Lhs.rows, Rhs.cols};
};
template <class Op, dims Lhs, dims Rhs>
struct same_shape_check {
  static_assert(Lhs == Rhs,
      "kiln: shape mismatch: this loss needs prediction and target of the same shape; the op and both shapes "
      "({rows, cols}, -1 = batch) are the arguments of kiln::same_shape_check<op, prediction, target> above");
  static constexpr dims result = Lhs;
};

// ---- tensor shapes (expr/tensor_shape.hpp): PyTorch's shape of a value, [batch, d1, …] or [d0, …], rank ≤ 8
inline constexpr int max_rank = 8;

struct tensor_shape {
  int rank = 0;
  int d[max_rank] = {};
  constexpr bool operator==(const tensor_shape&) const = default;
  constexpr bool batched() const { return rank > 0 && d[0] == batch; }
  constexpr long long size_from(int k) const {
    long long n = 1;
    for (int i = k; i < rank; ++i) n *= d[i];
    return n;
  }
};

// The [rows, cols] a tensor of shape s is stored as.
constexpr dims storage_of(const tensor_shape& s) {
  if (s.rank == 0) return {1, 1};
  if (s.batched()) return {batch, static_cast<int>(s.size_from(1))};
  if (s.rank == 1) return {1, s.d[0]};
  return {s.d[0], static_cast<int>(s.size_from(1))};
}

template <int... D>
constexpr tensor_shape shape_from() {
  static_assert(sizeof...(D) <= max_rank, "kiln: tensors have rank at most 8");
  tensor_shape s;
  s.rank = static_cast<int>(sizeof...(D));
  int i = 0;
  ((s.d[i++] = D), ...);
  return s;
}

// An expression of the same storage as its first operand keeps that operand's tensor shape (elementwise math,
// activations): the member `tshape` is inherited.
template <dims Shape, class... A>
struct inherited_tensor_shape {};
template <dims Shape, class A0, class... A>
  requires(requires { A0::tshape; } && A0::shape == Shape)
struct inherited_tensor_shape<Shape, A0, A...> {
  static constexpr tensor_shape tshape = A0::tshape;
};

// ---- generic node: Tag::emit(builder&, k, operand nodes...) with a type-level shape and kind.
// Operands are held by arity (0 to 3) and emitted left to right in one function, so emitting an expression
// tree costs one constexpr call frame per level: a 32-layer network stays far inside the compiler's default
// constexpr depth (512). (Function-argument order is unspecified, and node order must not depend on the compiler.)
template <class... A>
struct operands;
template <>
struct operands<> {};
template <class A0>
struct operands<A0> { A0 a0; };
template <class A0, class A1>
struct operands<A0, A1> { A0 a0; A1 a1; };
template <class A0, class A1, class A2>
struct operands<A0, A1, A2> { A0 a0; A1 a1; A2 a2; };

template <class Tag, dims Shape, value_kind Kind, class... A>
struct apply_expr : inherited_tensor_shape<Shape, A...> {
  static_assert(sizeof...(A) <= 3, "kiln: a primitive takes at most three operands");
  static constexpr dims shape = Shape;
  static constexpr value_kind kind = Kind;
  operands<A...> args;
  double k = 0;
  constexpr int emit(builder& b) const {
    if constexpr (sizeof...(A) == 0) {
      return Tag::emit(b, k);
    } else if constexpr (sizeof...(A) == 1) {
      return Tag::emit(b, k, args.a0.emit(b));
    } else if constexpr (sizeof...(A) == 2) {
      const int x = args.a0.emit(b);
      const int y = args.a1.emit(b);
      return Tag::emit(b, k, x, y);
    } else {
      const int x = args.a0.emit(b);
      const int y = args.a1.emit(b);
      const int z = args.a2.emit(b);
      return Tag::emit(b, k, x, y, z);
    }
  }
};

template <class Tag, dims Shape, value_kind Kind = value_kind::any, class... A>
constexpr auto make_expr(double k, A... a) { return apply_expr<Tag, Shape, Kind, A...>{{}, operands<A...>{a...}, k}; }

// ---- leaves
// A compile-time constant broadcast to [1, 1].
struct scalar_expr {
  static constexpr dims shape{1, 1};
  static constexpr value_kind kind = value_kind::any;
  double value = 0;
  constexpr int emit(builder& b) const { return b.scalar(value); }
};

template <int Rows, int Cols, value_kind Kind, leaf_kind Leaf>
struct leaf_expr {
  static constexpr dims shape{Rows, Cols};
  static constexpr value_kind kind = Kind;
  leaf_info info{};
  constexpr int emit(builder& b) const { return b.leaf(info); }
  // Parameters: default initial value (PyTorch Linear init, constant, zeros).
  constexpr leaf_expr init_uniform_fan_in(int fan_in) const { leaf_expr e = *this; e.info.init = init_kind::uniform_fan_in; e.info.fan_in = fan_in; return e; }
  constexpr leaf_expr init_constant(double v) const { leaf_expr e = *this; e.info.init = init_kind::constant; e.info.init_value = v; return e; }
  constexpr leaf_expr init_normal(double deviation) const { leaf_expr e = *this; e.info.init = init_kind::normal; e.info.init_value = deviation; return e; }
};

template <int Rows, int Cols, value_kind Kind, leaf_kind Leaf>
constexpr auto make_leaf(std::string_view name, int rank) {
  leaf_expr<Rows, Cols, Kind, Leaf> e;
  e.info.kind = Leaf;
  e.info.name = short_name(name);
  e.info.shape = dims{Rows, Cols};
  e.info.rank = rank;
  return e;
}

// The shape of a feature map a row holds, C channels of H×W, stored NCHW flattened (PyTorch's
// torch.flatten(x, 1)); c = 0 for none. Expressions that hold maps say so with a static member `map`.
struct feature_map {
  int c = 0, h = 0, w = 0;
  constexpr bool operator==(const feature_map&) const = default;
  constexpr int size() const { return c * h * w; }
};
// An expression E whose rows hold feature maps of shape M.
template <class E, feature_map M>
struct mapped_expr : E {
  static constexpr feature_map map = M;
};
template <feature_map M, class E>
constexpr auto with_map(E e) {
  if constexpr (requires { typename E::unshaped_type; })  // a tensor shape (expr/tensor_shape.hpp) gives way to the map
    return with_map<M>(static_cast<const typename E::unshaped_type&>(e));
  else return mapped_expr<E, M>{e};
}

// image<1, 28, 28>("x"): a batch of C×H×W images, [batch, C·H·W] (PyTorch's [batch, C, H, W] flattened).
template <int C, int H, int W>
constexpr auto image(std::string_view name) {
  static_assert(C > 0 && H > 0 && W > 0, "kiln: image<C, H, W> needs C, H, W > 0");
  return with_map<feature_map{C, H, W}>(make_leaf<batch, C * H * W, value_kind::any, leaf_kind::input>(name, 2));
}

// input<784>("x"): a batch of feature vectors, [batch, 784].
template <int Features>
constexpr auto input(std::string_view name) { return make_leaf<batch, Features, value_kind::any, leaf_kind::input>(name, 2); }
// target<10>("t"): dense targets, [batch, 10]; probability_target for soft targets of KL divergence.
template <int Features>
constexpr auto target(std::string_view name) { return make_leaf<batch, Features, value_kind::any, leaf_kind::input>(name, 2); }
template <int Features>
constexpr auto probability_target(std::string_view name) { return make_leaf<batch, Features, value_kind::probabilities, leaf_kind::input>(name, 2); }
// labels<10>("y"): one class index in [0, 10) per sample, [batch, 1].
template <int Classes>
struct labels_expr : leaf_expr<batch, 1, value_kind::labels, leaf_kind::labels> {
  static constexpr int classes = Classes;
};
template <int Classes>
constexpr auto labels(std::string_view name) {
  labels_expr<Classes> e;
  e.info = make_leaf<batch, 1, value_kind::labels, leaf_kind::labels>(name, 1).info;
  e.info.num_classes = Classes;
  return e;
}
// param<>("a") scalar, param<128>("b") vector, param<128, 784>("W") matrix (PyTorch layouts). Zero-initialised
// unless an init_* is applied; values can always be set by name on the step.
template <int... Dims>
constexpr auto param(std::string_view name) {
  static_assert(sizeof...(Dims) <= 2, "kiln: param<> takes rank 0, 1 or 2; kiln::tensor_param<D...> (expr/tensor.hpp) takes any rank");
  constexpr int d[4] = {Dims..., 1, 1};
  if constexpr (sizeof...(Dims) == 2) return make_leaf<d[0], d[1], value_kind::any, leaf_kind::param>(name, 2);
  else return make_leaf<1, d[0], value_kind::any, leaf_kind::param>(name, static_cast<int>(sizeof...(Dims)));
}

}  // namespace kiln
