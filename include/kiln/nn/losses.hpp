#pragma once
// Losses, with PyTorch's definitions and reductions. A loss is a scalar expression, [1, 1].
// The kinds of values are checked at compile time: e.g. softmax output given to a loss that expects logits or
// log-probabilities is a compile error that says so.
#include <kiln/nn/activations.hpp>

namespace kiln {

enum class reduction { mean, sum };

// What a shape error in a loss names (same_shape_check<kiln::checks::mse, prediction, target>).
namespace checks {
struct mse; struct mae; struct bce; struct bce_with_logits; struct categorical_cross_entropy; struct kl_div;
}

namespace detail {
template <reduction R, expression E>
constexpr auto reduce_loss(E per_element) {
  if constexpr (R == reduction::mean) return mean(per_element);
  else return sum(per_element);
}
// Σ over the batch of a per-sample [batch,1] value, divided by the batch size for the mean reduction.
template <reduction R, expression E>
constexpr auto reduce_per_sample(E per_sample) {
  if constexpr (R == reduction::mean) return mean(per_sample);
  else return sum(per_sample);
}
}  // namespace detail

// mse = mean((p − t)²); the notes' ½-scaled form is 0.5 * mse(p, t)
template <reduction R = reduction::mean, expression P, expression T>
constexpr auto mse(P p, T t) {
  (void)same_shape_check<checks::mse, P::shape, T::shape>::result;
  return detail::reduce_loss<R>(pow(p - t, 2.0));
}
// mae = L1 = mean(|p − t|)
template <reduction R = reduction::mean, expression P, expression T>
constexpr auto mae(P p, T t) {
  (void)same_shape_check<checks::mae, P::shape, T::shape>::result;
  return detail::reduce_loss<R>(abs(p - t));
}
template <reduction R = reduction::mean, expression P, expression T>
constexpr auto l1(P p, T t) { return mae<R>(p, t); }

// bce(p, t) = −[t·max(ln p, −100) + (1−t)·max(ln(1−p), −100)] on probabilities p
template <reduction R = reduction::mean, expression P, expression T>
constexpr auto bce(P p, T t) {
  static_assert(P::kind != value_kind::logits,
                "kiln: bce expects probabilities but got logits; apply sigmoid first or use bce_with_logits");
  static_assert(P::kind != value_kind::log_probabilities, "kiln: bce expects probabilities but got log-probabilities");
  (void)same_shape_check<checks::bce, P::shape, T::shape>::result;
  return detail::reduce_loss<R>(-(t * maximum(log(p), -100.0) + (1.0 - t) * maximum(log(1.0 - p), -100.0)));
}
// bce_with_logits(x, z) = max(x,0) − x·z + ln(1 + e^−|x|) = softplus(x) − x·z (the stable form)
template <reduction R = reduction::mean, expression X, expression T>
constexpr auto bce_with_logits(X x, T z) {
  static_assert(X::kind != value_kind::probabilities,
                "kiln: bce_with_logits expects logits but got probabilities (sigmoid output); use bce, or drop the sigmoid");
  (void)same_shape_check<checks::bce_with_logits, X::shape, T::shape>::result;
  return detail::reduce_loss<R>(softplus(x) - x * z);
}

// cross_entropy(logits, class indices) = mean over the batch of −log_softmax(x)[y]
template <reduction R = reduction::mean, expression X, expression L>
  requires requires { L::classes; }
constexpr auto cross_entropy(X x, L y) {
  static_assert(X::kind != value_kind::probabilities,
                "kiln: cross_entropy expects logits but got probabilities (softmax output); pass the logits — "
                "cross_entropy applies log_softmax itself");
  static_assert(X::shape.cols == L::classes,
                "kiln: cross_entropy: the logits' feature count differs from the labels' number of classes");
  return detail::reduce_per_sample<R>(-sum_features(one_hot(y) * log_softmax(x)));
}
// nll(log-probabilities, class indices) = mean over the batch of −logp[y]
template <reduction R = reduction::mean, expression X, expression L>
  requires requires { L::classes; }
constexpr auto nll(X logp, L y) {
  static_assert(X::kind != value_kind::probabilities,
                "kiln: nll expects log-probabilities but got probabilities (softmax output); use log_softmax");
  static_assert(X::shape.cols == L::classes, "kiln: nll: feature count differs from the labels' number of classes");
  return detail::reduce_per_sample<R>(-sum_features(one_hot(y) * logp));
}
// categorical cross-entropy on probabilities against one-hot (or soft) targets: mean over batch of −Σ t·ln p
template <reduction R = reduction::mean, expression P, expression T>
constexpr auto categorical_cross_entropy(P p, T t) {
  static_assert(P::kind != value_kind::logits,
                "kiln: categorical_cross_entropy expects probabilities but got logits; apply softmax, or use "
                "cross_entropy on the logits");
  static_assert(P::kind != value_kind::log_probabilities,
                "kiln: categorical_cross_entropy expects probabilities but got log-probabilities");
  (void)same_shape_check<checks::categorical_cross_entropy, P::shape, T::shape>::result;
  return detail::reduce_per_sample<R>(-sum_features(t * maximum(log(p), -100.0)));
}
// kl_div(input = log q, target = p), reduction batchmean: Σ p·(ln p − ln q) / batch; p = 0 contributes 0
template <expression Q, expression P>
constexpr auto kl_div(Q logq, P p) {
  static_assert(Q::kind != value_kind::probabilities,
                "kiln: kl_div expects log-probabilities as its input but got probabilities (softmax output); use "
                "log_softmax");
  static_assert(P::kind != value_kind::log_probabilities && P::kind != value_kind::logits,
                "kiln: kl_div expects probabilities as its target");
  (void)same_shape_check<checks::kl_div, Q::shape, P::shape>::result;
  auto positive = greater(p, 0.0);
  return mean_batch(sum_features(where(positive, p * (log(where(positive, p, 1.0)) - logq), 0.0)));
}

}  // namespace kiln
