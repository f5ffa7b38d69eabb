#pragma once
// Batch normalization, PyTorch's nn.BatchNorm2d(C) over feature maps and nn.BatchNorm1d(C) over [batch, C]
// vectors: batch_norm<C>{.eps, .momentum}.
//   training graph (a step's, the gradients'): per channel c, over the batch and the map's L = H·W positions,
//     μ = Σ x / (N·L), σ² = Σ (x − μ)² / (N·L) (biased), y = (x − μ) / √(σ² + ε) · weight + bias, and the step
//     updates the running statistics (state, not trained): running_mean ← (1 − m)·running_mean + m·μ,
//     running_var ← (1 − m)·running_var + m·σ²·N·L / (N·L − 1) (unbiased), num_batches_tracked ← + 1;
//   forward graph (evaluation, predictions): y = (x − running_mean) / √(running_var + ε) · weight + bias.
// Names and shapes are PyTorch's (bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var [C],
// bn1.num_batches_tracked [], held as a float: exact to 2²⁴ steps), so a checkpoint loads into the PyTorch model
// with strict=True. weight starts at 1, bias at 0, running_var at 1. One value per channel in training (a batch
// of 1 without a map), which PyTorch refuses, normalizes to 0 (then y = bias) and moves running_var toward 0.
// A composition of primitives (row and channel sums, a power), so gradients, fusion and every backend come
// from theirs.
#include <kiln/nn/conv.hpp>

namespace kiln {

namespace checks {
struct batch_norm {};
}  // namespace checks

template <class Layer, int Channels, int Features>
struct features_check {
  static_assert(Channels == Features,
      "kiln: channel mismatch: the layer's channels (second argument of kiln::features_check above) differ from "
      "the input's features (third argument)");
  static constexpr bool ok = true;
};

namespace detail {
template <class X, class Vector, class Scalar, feature_map Map>
struct batch_norm_expr {
  static constexpr dims shape = X::shape;
  static constexpr value_kind kind = value_kind::any;
  static constexpr feature_map map = Map;
  X x;
  Vector weight, bias, running_mean, running_var;
  Scalar tracked;
  double eps = 1e-5, momentum = 0.1;

  constexpr int emit(builder& b) const {
    const int xi = x.emit(b), w = weight.emit(b), bi = bias.emit(b);
    const int rm = running_mean.emit(b), rv = running_var.emit(b);
    // channel sums and repeats over the map (identities for vectors: one position per channel)
    constexpr int C = Vector::shape.cols;
    constexpr feature_map maps = Map.c > 0 ? Map : feature_map{C, 1, 1};
    constexpr window per_channel = make_window<maps, C, 1, 1, 0, 1, 1>();
    constexpr int L = maps.h * maps.w;
    auto sum = [&](int v) { return b.window_node<ops::channel_sum_op>(b.sum_rows(v), -1, per_channel); };
    auto repeat = [&](int v) { return b.window_node<ops::channel_repeat_op>(v, -1, per_channel); };
    if (!b.training) {
      const int scale = b.mul(w, b.pow(b.add(rv, b.scalar(eps)), -0.5));
      return b.add(b.mul(b.sub(xi, repeat(rm)), repeat(scale)), repeat(bi));
    }
    const int rows = b.shape(xi).rows == batch ? b.batch_size() : b.scalar(b.shape(xi).rows);
    const int count = b.mul(rows, b.scalar(L));
    // y = (x − μ̄)·s + (bias + (μ̄ − μ)·s), s = weight/√(σ² + ε), μ̄ = stop_gradient(μ): the values of (x − μ)·s + bias
    // (μ̄ − μ is 0), but the mean's gradient flows only through the per-channel term. x's adjoint is then
    //   g·s + (x − μ)·2·(∂L/∂σ²)/n − s·Σg/n
    // with ∂L/∂σ² from Σ g·(x − μ̄): the channel sums of g and g·(x − μ̄), read in one pass, and then one elementwise
    // pass, as in PyTorch's batch-norm backward.
    //   Over a map that is stored anyway (x computed by a convolution, a product, a pooling or any kernel other
    // than an elementwise one, or fed), both statistics come from one pass over x: with d = x − K for a per-channel
    // K (gradient stopped; it moves neither μ nor σ²), δ = Σd/n, μ = K + δ and σ² = Σd²/n − δ², two channel sums of
    // the same rows (a column sum and its rider on the CPU), and x − μ̄ is taken as d − δ̄. K is each channel's mean
    // over the batch at the map's centre position. The difference loses about ε·δ²/σ² of σ² to cancellation. δ² is
    // the squared distance of one position's batch mean from μ, and the average of those over the map's positions
    // is at most σ² (the law of total variance: σ² is that average plus the mean variance within a position), so
    // δ²/σ² is about 1 at a typical position and at most L at any; a lagging K (the running mean, 0 at the first
    // step) or none (K = 0) could make it 10⁶ for a channel far from 0 with little spread. For such a channel d − δ̄
    // is also closer than x − μ̄ in floats: d is exact there, and μ̄'s own rounding (ε·|μ|) is not in it.
    //   Otherwise μ = Σx/n, then σ² = Σ(x − μ̄)²/n in a second pass: with one position per channel (a vector's
    // features, a 1×1 map) K would be μ itself, and an elementwise x (a convolution's bias added, say) is
    // recomputed where it is read, which the centre's values, read from memory, would have to store first.
    const bool one_pass = L > 1 && ops::class_of(b.node_at(xi).kind) != op_class::elementwise;
    int base = xi, offset = -1, mean = -1, var = -1;  // x − μ = base − offset
    if (one_pass) {
      axes_geometry centre;  // the values of position (h/2, w/2) of each channel: [rows, C·L] → [rows, C]
      centre.rank = 2;
      centre.in[0] = C; centre.in[1] = L;
      centre.out[0] = C; centre.out[1] = 1;
      centre.begin[1] = maps.h / 2 * maps.w + maps.w / 2;
      const int at_centre = b.window_node<ops::crop_op>(xi, -1, ops::detail::axes_window(centre));
      const int reference = b.stop_gradient(b.div(b.sum_rows(at_centre), rows));
      base = b.sub(xi, repeat(reference));
      offset = b.div(sum(base), count);
      mean = b.add(reference, offset);
      // σ² ≥ 0 also where rounding leaves the difference a hair below it
      var = b.unary(op::max_c, b.sub(b.div(sum(b.mul(base, base)), count), b.mul(offset, offset)), 0.0);
    } else {
      offset = mean = b.div(sum(xi), count);
    }
    const int fixed_offset = b.stop_gradient(offset);
    const int centered = b.sub(base, repeat(fixed_offset));
    if (!one_pass) var = b.div(sum(b.mul(centered, centered)), count);
    const int scale = b.mul(w, b.pow(b.add(var, b.scalar(eps)), -0.5));
    const int shift = b.add(bi, b.mul(b.sub(fixed_offset, offset), scale));
    const int y = b.add(b.mul(centered, repeat(scale)), repeat(shift));
    const int keep = b.scalar(1 - momentum), m = b.scalar(momentum);
    // σ²·n/(n − 1); with a single value per channel (n = 1, where PyTorch refuses to train) σ² = 0, and the
    // divisor max(n − 1, 1) keeps it 0 instead of 0/0 poisoning running_var
    const int unbiased = b.div(b.mul(var, count), b.unary(op::max_c, b.sub(count, b.scalar(1)), 1.0));
    b.update_state(b.add(b.mul(keep, rm), b.mul(m, mean)), rm);
    b.update_state(b.add(b.mul(keep, rv), b.mul(m, unbiased)), rv);
    const int nt = tracked.emit(b);
    b.update_state(b.add(nt, b.scalar(1)), nt);
    return y;
  }
};
}  // namespace detail

template <int Channels>
struct batch_norm {
  static_assert(Channels > 0, "kiln: batch_norm<C> needs C > 0 channels");
  static constexpr std::string_view stem = "bn";  // named bn1, bn2, … by nn::sequential
  double eps = 1e-5;
  double momentum = 0.1;
  short_name name{};

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    constexpr feature_map m = nn::map_of<X>();
    if constexpr (m.c > 0) static_assert(map_check<checks::batch_norm, m, Channels>::ok);
    else static_assert(features_check<checks::batch_norm, Channels, X::shape.cols>::ok);
    auto vector = [&](std::string_view suffix, leaf_kind kind, double init) {
      auto v = make_leaf<1, Channels, value_kind::any, leaf_kind::param>("v", 1).init_constant(init);
      v.info.kind = kind;
      v.info.name = detail::joined(prefix.view(), suffix);
      return v;
    };
    auto tracked = make_leaf<1, 1, value_kind::any, leaf_kind::param>("n", 0);
    tracked.info.kind = leaf_kind::state;
    tracked.info.name = detail::joined(prefix.view(), ".num_batches_tracked");
    using vector_t = decltype(vector("", leaf_kind::param, 0));
    return detail::batch_norm_expr<X, vector_t, decltype(tracked), m>{
        x, vector(".weight", leaf_kind::param, 1), vector(".bias", leaf_kind::param, 0), vector(".running_mean", leaf_kind::state, 0),
        vector(".running_var", leaf_kind::state, 1), tracked, eps, momentum};
  }
};

}  // namespace kiln
