#pragma once
// Primitive operations on expressions: arithmetic with broadcasting, elementwise math, comparisons and where,
// reductions, contraction, softmax family, one-hot. Numbers mix freely with expressions (2.0 * b).
#include <kiln/expr/expression.hpp>
#include <kiln/expr/tensor_shape.hpp>

#include <type_traits>

namespace kiln {

template <class T>
concept operand = expression<T> || std::is_arithmetic_v<T>;

template <operand T>
constexpr auto as_expr(T v) {
  if constexpr (expression<T>) return v;
  else return scalar_expr{static_cast<double>(v)};
}
template <class T>
using as_expr_t = decltype(as_expr(std::declval<T>()));

namespace tags {
template <op O>
struct unary { static constexpr int emit(builder& b, double k, int x) { return b.unary(O, x, k); } };
template <op O>
struct binary { static constexpr int emit(builder& b, double, int x, int y) { return b.binary(O, x, y); } };
struct where { static constexpr int emit(builder& b, double, int c, int x, int y) { return b.where(c, x, y); } };
template <op O>
struct reduce { static constexpr int emit(builder& b, double, int x) { return b.reduce(O, x); } };
struct sum_all { static constexpr int emit(builder& b, double, int x) { return b.sum_all(x); } };
// mean = sum · 1/count, where count may include the run-time batch size
struct mean_over {
  // k encodes which dimensions: 0 all, 1 rows (batch), 2 cols (features)
  static constexpr int emit(builder& b, double k, int x) {
    const dims s = b.shape(x);
    const int mode = static_cast<int>(k);
    int sum = mode == 0 ? b.sum_all(x) : mode == 1 ? b.sum_rows(x) : b.sum_cols(x);
    const bool rows = mode != 2, cols = mode != 1;
    double static_count = 1;
    if (cols) static_count *= s.cols;
    if (rows && s.rows != batch) static_count *= s.rows;
    int r = b.mul(sum, b.scalar(1.0 / static_count));
    if (rows && s.rows == batch) r = b.div(r, b.batch_size());
    return r;
  }
};
struct matmul { static constexpr int emit(builder& b, double, int x, int y) { return b.matmul(x, y); } };
struct transpose { static constexpr int emit(builder& b, double, int x) { return b.transpose(x); } };
// log_softmax over features: x − m − log Σ exp(x − m), m = max(x) held constant (the result does not depend on it)
struct log_softmax {
  static constexpr int emit(builder& b, double, int x) {
    int shifted = b.sub(x, b.stop_gradient(b.max_cols(x)));
    return b.sub(shifted, b.log(b.sum_cols(b.exp(shifted))));
  }
};
struct softmax { static constexpr int emit(builder& b, double k, int x) { return b.exp(log_softmax::emit(b, k, x)); } };
// one_hot(y)[i, c] = (y[i] == c)
struct one_hot { static constexpr int emit(builder& b, double classes, int y) { return b.eq(y, b.iota(static_cast<int>(classes))); } };
}  // namespace tags

// ---- arithmetic
#define KILN_BINARY_OPERATOR(sym, op_kind, unused)                                                        \
  template <operand A, operand B>                                                                         \
    requires(expression<A> || expression<B>)                                                              \
  constexpr auto operator sym(A a, B b) {                                                                 \
    using X = as_expr_t<A>;                                                                               \
    using Y = as_expr_t<B>;                                                                               \
    if constexpr (has_tensor_shape<X> || has_tensor_shape<Y>) /* numpy broadcasting of tensor shapes */  \
      return tensor_binary<op::op_kind>(as_expr(a), as_expr(b));                                          \
    else                                                                                                  \
      return make_expr<tags::binary<op::op_kind>, broadcast_check<ops::of<op::op_kind>, X::shape, Y::shape>::result>(0, as_expr(a), as_expr(b)); \
  }
KILN_BINARY_OPERATOR(+, add, add)
KILN_BINARY_OPERATOR(-, sub, sub)
KILN_BINARY_OPERATOR(*, mul, mul)
KILN_BINARY_OPERATOR(/, div, div)
#undef KILN_BINARY_OPERATOR

template <expression A>
constexpr auto operator-(A a) { return make_expr<tags::unary<op::neg>, A::shape>(0, a); }

// ---- comparisons (0/1 masks, no gradient); less(a, b) is gt(b, a), so each names itself in a shape error
namespace checks { struct greater; struct greater_equal; struct less; struct less_equal; struct equal; }
#define KILN_COMPARISON(fname, op_kind, swap)                                                              \
  template <operand A, operand B>                                                                          \
    requires(expression<A> || expression<B>)                                                               \
  constexpr auto fname(A a, B b) {                                                                         \
    using X = as_expr_t<A>;                                                                                \
    using Y = as_expr_t<B>;                                                                                \
    if constexpr (swap)                                                                                    \
      return make_expr<tags::binary<op::op_kind>, broadcast_check<checks::fname, Y::shape, X::shape>::result, value_kind::mask>(0, as_expr(b), as_expr(a)); \
    else                                                                                                   \
      return make_expr<tags::binary<op::op_kind>, broadcast_check<checks::fname, X::shape, Y::shape>::result, value_kind::mask>(0, as_expr(a), as_expr(b)); \
  }
KILN_COMPARISON(greater, gt, false)
KILN_COMPARISON(greater_equal, ge, false)
KILN_COMPARISON(less, gt, true)
KILN_COMPARISON(less_equal, ge, true)
KILN_COMPARISON(equal, eq, false)
#undef KILN_COMPARISON

// where(c, a, b): a where c is nonzero, else b. Gradients never leak NaN from the unselected branch.
template <operand C, operand A, operand B>
constexpr auto where(C c, A a, B b) {
  using X = as_expr_t<A>;
  using Y = as_expr_t<B>;
  using Z = as_expr_t<C>;
  constexpr dims ab = broadcast_check<ops::where_op, X::shape, Y::shape>::result;
  return make_expr<tags::where, broadcast_check<ops::where_op, Z::shape, ab>::result>(0, as_expr(c), as_expr(a), as_expr(b));
}

// ---- elementwise math
#define KILN_UNARY_FUNCTION(fname, op_kind)                                                                 \
  template <expression A>                                                                                  \
  constexpr auto fname(A a) { return make_expr<tags::unary<op::op_kind>, A::shape>(0, a); }
KILN_UNARY_FUNCTION(exp, exp)
KILN_UNARY_FUNCTION(expm1, expm1)
KILN_UNARY_FUNCTION(log, log)
KILN_UNARY_FUNCTION(log1p, log1p)
KILN_UNARY_FUNCTION(sqrt, sqrt)
KILN_UNARY_FUNCTION(abs, abs)
KILN_UNARY_FUNCTION(erf, erf)
KILN_UNARY_FUNCTION(stop_gradient, stop_gradient)
#undef KILN_UNARY_FUNCTION
template <expression A>
constexpr auto pow(A a, double p) { return make_expr<tags::unary<op::pow_c>, A::shape>(p, a); }
// max/min with a constant; the derivative is 1 strictly above (below) the constant and 0 at ties.
template <expression A>
constexpr auto maximum(A a, double c) { return make_expr<tags::unary<op::max_c>, A::shape>(c, a); }
template <expression A>
constexpr auto minimum(A a, double c) { return make_expr<tags::unary<op::min_c>, A::shape>(c, a); }

// ---- reductions
template <expression A>
constexpr auto sum(A a) { return make_expr<tags::sum_all, dims{1, 1}>(0, a); }
template <expression A>
constexpr auto sum_batch(A a) { return make_expr<tags::reduce<op::sum_rows>, dims{1, A::shape.cols}>(0, a); }
template <expression A>
constexpr auto sum_features(A a) { return make_expr<tags::reduce<op::sum_cols>, dims{A::shape.rows, 1}>(0, a); }
template <expression A>
constexpr auto max_features(A a) { return make_expr<tags::reduce<op::max_cols>, dims{A::shape.rows, 1}>(0, a); }
template <expression A>
constexpr auto mean(A a) { return make_expr<tags::mean_over, dims{1, 1}>(0, a); }
template <expression A>
constexpr auto mean_batch(A a) { return make_expr<tags::mean_over, dims{1, A::shape.cols}>(1, a); }
template <expression A>
constexpr auto mean_features(A a) { return make_expr<tags::mean_over, dims{A::shape.rows, 1}>(2, a); }

// ---- contraction and layout
template <expression A, expression B>
constexpr auto matmul(A a, B b) { return make_expr<tags::matmul, contraction_check<ops::matmul_op, A::shape, B::shape>::result>(0, a, b); }
template <expression A>
constexpr auto transpose(A a) { return make_expr<tags::transpose, dims{A::shape.cols, A::shape.rows}>(0, a); }

// ---- softmax family (over features)
template <expression A>
constexpr auto log_softmax(A a) { return make_expr<tags::log_softmax, A::shape, value_kind::log_probabilities>(0, a); }
template <expression A>
constexpr auto softmax(A a) { return make_expr<tags::softmax, A::shape, value_kind::probabilities>(0, a); }

// ---- one-hot encoding of class-index labels
template <expression L>
  requires requires { L::classes; }
constexpr auto one_hot(L y) { return make_expr<tags::one_hot, dims{L::shape.rows, L::classes}, value_kind::probabilities>(L::classes, y); }

}  // namespace kiln
