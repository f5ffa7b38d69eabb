#pragma once
// Activations: compositions of primitives (their gradients come from the primitives' rules), except sigmoid,
// tanh and softplus, which are primitives for numerical stability. Each is a function object, so it is both a
// function (kiln::relu(x)) and a layer in nn::sequential.
#include <kiln/expr/operators.hpp>

namespace kiln {

struct identity_fn { template <expression X> constexpr auto operator()(X x) const { return x; } };
// relu(x) = max(x, 0); relu′(0) = 0
struct relu_fn { template <expression X> constexpr auto operator()(X x) const { return maximum(x, 0.0); } };
// σ(x) = 1/(1+e^−x), a probability
struct sigmoid_fn {
  template <expression X> constexpr auto operator()(X x) const { return make_expr<tags::unary<op::sigmoid>, X::shape, value_kind::probabilities>(0, x); }
};
struct tanh_fn { template <expression X> constexpr auto operator()(X x) const { return make_expr<tags::unary<op::tanh>, X::shape>(0, x); } };
// softplus(x) = ln(1+e^x), = x above 20 (PyTorch's threshold)
struct softplus_fn { template <expression X> constexpr auto operator()(X x) const { return make_expr<tags::unary<op::softplus>, X::shape>(0, x); } };
// leaky_relu(x) = x if x > 0 else slope·x (PyTorch: gradient `slope` at 0)
struct leaky_relu_fn {
  double slope = 0.01;
  template <expression X> constexpr auto operator()(X x) const { return where(greater(x, 0.0), x, slope * x); }
};
// elu(x) = x if x > 0 else α(e^x − 1) (expm1, as PyTorch computes it: exact near 0)
struct elu_fn {
  double alpha = 1.0;
  template <expression X> constexpr auto operator()(X x) const { return where(greater(x, 0.0), x, alpha * expm1(x)); }
};
// gelu(x) = x·Φ(x) = ½x(1 + erf(x/√2)) (exact form)
struct gelu_fn { template <expression X> constexpr auto operator()(X x) const { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); } };
// gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (PyTorch's approximate='tanh')
struct gelu_tanh_fn {
  template <expression X> constexpr auto operator()(X x) const {
    return 0.5 * x * (1.0 + tanh_fn{}(0.7978845608028654 * (x + 0.044715 * pow(x, 3.0))));
  }
};
// swish(x) = silu(x) = x·σ(x)
struct swish_fn { template <expression X> constexpr auto operator()(X x) const { return x * sigmoid_fn{}(x); } };

inline constexpr identity_fn identity{};
inline constexpr relu_fn relu{};
inline constexpr sigmoid_fn sigmoid{};
inline constexpr tanh_fn tanh{};
inline constexpr softplus_fn softplus{};
inline constexpr leaky_relu_fn leaky_relu{};
inline constexpr elu_fn elu{};
inline constexpr gelu_fn gelu{};
inline constexpr gelu_tanh_fn gelu_tanh{};
inline constexpr swish_fn swish{};
inline constexpr swish_fn silu{};

// prelu(x, a) = x if x > 0 else a·x, with a learned slope a (a parameter)
template <expression X, expression A>
constexpr auto prelu(X x, A a) { return where(greater(x, 0.0), x, a * x); }

}  // namespace kiln
