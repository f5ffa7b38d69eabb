#pragma once
// Window ops: convolution, pooling and the per-channel sum and repeat of feature maps (NCHW rows, see
// ops/window_math.hpp, where their arithmetic is written once for every backend). Each node's geometry is
// graph.windows[node.leaf]; builder::window_node makes them. Like the gather they read their operands at
// computed positions, so they are op_class::indexing: a kernel of their own over materialized operands.
// Their adjoints are window ops again, so gradients of any order stay in this set (max pooling's adjoint
// excepted: it is piecewise constant in x and has no second derivative here).
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

namespace detail {
constexpr void check_window(bool ok, const char* what) {
  if (!ok) throw what;
}
// The adjoint g of node self as a value of self's full shape (an adjoint may be held broadcast).
template <class B>
constexpr int full_adjoint(B& b, int self, int g) { return b.broadcast_to(g, b.shape(self)); }
}  // namespace detail

struct conv2d_op; struct conv2d_dx_op; struct conv2d_dw_op; struct max_pool2d_op; struct max_pool2d_dx_op;
struct avg_pool2d_op; struct avg_pool2d_dx_op; struct channel_sum_op; struct channel_repeat_op;

// y [R, O·OH·OW] = conv2d(x [R, C·H·W], w [O, C/G·kh·kw]); ∂x = conv2d_dx(g, w), ∂w = conv2d_dw(x, g)
struct conv2d_op {
  static constexpr op kind = op::conv2d; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "conv2d";
  static constexpr int window_code = window_math::kiln_conv2d;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size(), "kiln: conv2d: the input is not a C·H·W map");
    detail::check_window(in[1] == dims{w.o, w.c / w.groups * w.kh * w.kw}, "kiln: conv2d: the weight is not [O, C/groups·kh·kw]");
    return {in[0].rows, static_cast<int>(w.out_size())};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    const window w = b.window_of(self);
    const int G = detail::full_adjoint(b, self, g), x = b.operand(self, 0), wt = b.operand(self, 1);
    d[0] = b.template window_node<conv2d_dx_op>(G, wt, w);
    d[1] = b.template window_node<conv2d_dw_op>(x, G, w);
  }
};
// gx [R, C·H·W] = conv2d_dx(gy [R, O·OH·OW], w): the input adjoint (a transposed convolution).
// <A, conv2d_dx(gy, w)> = <conv2d(A, w), gy>, so ∂gy = conv2d(A, w) and ∂w = conv2d_dw(A, gy).
struct conv2d_dx_op {
  static constexpr op kind = op::conv2d_dx; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "conv2d_dx";
  static constexpr int window_code = window_math::kiln_conv2d_dx;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.out_size(), "kiln: conv2d_dx: the adjoint is not an O·OH·OW map");
    return {in[0].rows, static_cast<int>(w.in_size())};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    const window w = b.window_of(self);
    const int A = detail::full_adjoint(b, self, g), gy = b.operand(self, 0), wt = b.operand(self, 1);
    d[0] = b.template window_node<conv2d_op>(A, wt, w);
    d[1] = b.template window_node<conv2d_dw_op>(A, gy, w);
  }
};
// gw [O, C/G·kh·kw] = conv2d_dw(x, gy): the weight adjoint, summed over the batch.
// <A, conv2d_dw(x, gy)> = <conv2d(x, A), gy>, so ∂x = conv2d_dx(gy, A) and ∂gy = conv2d(x, A).
struct conv2d_dw_op {
  static constexpr op kind = op::conv2d_dw; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "conv2d_dw";
  static constexpr int window_code = window_math::kiln_conv2d_dw;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size() && in[1].cols == w.out_size() && in[0].rows == in[1].rows,
                         "kiln: conv2d_dw: the input and the adjoint do not match the window");
    return {w.o, w.c / w.groups * w.kh * w.kw};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    const window w = b.window_of(self);
    const int A = detail::full_adjoint(b, self, g), x = b.operand(self, 0), gy = b.operand(self, 1);
    d[0] = b.template window_node<conv2d_dx_op>(gy, A, w);
    d[1] = b.template window_node<conv2d_op>(x, A, w);
  }
};
// y [R, C·OH·OW]: the maximum of each window; ∂x = max_pool2d_dx(x, g)
struct max_pool2d_op {
  static constexpr op kind = op::max_pool2d; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "max_pool2d";
  static constexpr int window_code = window_math::kiln_max_pool2d;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size(), "kiln: max_pool2d: the input is not a C·H·W map");
    return {in[0].rows, static_cast<int>(w.out_size())};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.template window_node<max_pool2d_dx_op>(b.operand(self, 0), detail::full_adjoint(b, self, g), b.window_of(self));
  }
};
// gx [R, C·H·W] = max_pool2d_dx(x, gy): each window's adjoint routed to its maximum
struct max_pool2d_dx_op {
  static constexpr op kind = op::max_pool2d_dx; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 2; static constexpr const char* name = "max_pool2d_dx";
  static constexpr int window_code = window_math::kiln_max_pool2d_dx;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size() && in[1].cols == w.out_size() && in[0].rows == in[1].rows,
                         "kiln: max_pool2d_dx: the input and the adjoint do not match the window");
    return in[0];
  }
  template <class B> static constexpr void vjp(B&, int, int, int*) {
    throw "kiln: max_pool2d has no second derivative";
  }
};
// y [R, C·OH·OW]: the mean of each window, padding counted as zeros; ∂x = avg_pool2d_dx(g)
struct avg_pool2d_op {
  static constexpr op kind = op::avg_pool2d; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "avg_pool2d";
  static constexpr int window_code = window_math::kiln_avg_pool2d;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size(), "kiln: avg_pool2d: the input is not a C·H·W map");
    return {in[0].rows, static_cast<int>(w.out_size())};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.template window_node<avg_pool2d_dx_op>(detail::full_adjoint(b, self, g), -1, b.window_of(self));
  }
};
// gx = avg_pool2d_dx(gy): each window's adjoint spread evenly over it; linear, its adjoint is avg_pool2d
struct avg_pool2d_dx_op {
  static constexpr op kind = op::avg_pool2d_dx; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "avg_pool2d_dx";
  static constexpr int window_code = window_math::kiln_avg_pool2d_dx;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.out_size(), "kiln: avg_pool2d_dx: the adjoint is not a C·OH·OW map");
    return {in[0].rows, static_cast<int>(w.in_size())};
  }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.template window_node<avg_pool2d_op>(detail::full_adjoint(b, self, g), -1, b.window_of(self));
  }
};
// y [R, C] = Σ over each channel's H·W positions of x [R, C·H·W]; ∂x = channel_repeat(g)
struct channel_sum_op {
  static constexpr op kind = op::channel_sum; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "channel_sum";
  static constexpr int window_code = window_math::kiln_channel_sum;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.in_size(), "kiln: channel_sum: the input is not a C·H·W map");
    return {in[0].rows, w.c};
  }
  // over maps of one position it is its operand
  static constexpr int simplify(const int* in, const window& w) { return w.h * w.w == 1 ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.template window_node<channel_repeat_op>(detail::full_adjoint(b, self, g), -1, b.window_of(self));
  }
};
// y [R, C·H·W]: x [R, C] repeated over each channel's H·W positions; ∂x = channel_sum(g)
struct channel_repeat_op {
  static constexpr op kind = op::channel_repeat; static constexpr op_class cls = op_class::indexing;
  static constexpr int arity = 1; static constexpr const char* name = "channel_repeat";
  static constexpr int window_code = window_math::kiln_channel_repeat;
  static constexpr dims shape_of(const dims* in, const window& w) {
    detail::check_window(in[0].cols == w.c, "kiln: channel_repeat: the input is not one value per channel");
    return {in[0].rows, static_cast<int>(w.in_size())};
  }
  // over maps of one position it is its operand
  static constexpr int simplify(const int* in, const window& w) { return w.h * w.w == 1 ? in[0] : -1; }
  template <class B> static constexpr void vjp(B& b, int self, int g, int* d) {
    d[0] = b.template window_node<channel_sum_op>(detail::full_adjoint(b, self, g), -1, b.window_of(self));
  }
};

}  // namespace kiln::ops
