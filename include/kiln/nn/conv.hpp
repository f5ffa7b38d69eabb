#pragma once
// Convolution and pooling layers over feature maps (kiln::image<C, H, W>, or the output of one of these layers),
// PyTorch's nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d(1) + flatten, and nn.Flatten; and over
// sequences [batch, C, L] (kiln::input<C, L>), nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d.
// Maps are rows of C·H·W values in PyTorch's order (NCHW flattened), so a dense layer after flatten and a
// checkpoint (conv1.weight [O, C/groups, kh, kw], conv1.bias [O]) mean what they mean in PyTorch.
// The ops are window ops (ops/window.hpp). Shapes are checked at compile time: a conv whose declared input
// channels differ from the map's, a kernel or window larger than the (padded) map, and a map of the wrong
// width each fail with a static_assert inside a check named after the layer, whose arguments are the shapes.
#include <kiln/nn/layers.hpp>

#include <array>

namespace kiln {

namespace checks {
struct conv2d {};
struct max_pool2d {};
struct avg_pool2d {};
struct conv1d {};
struct max_pool1d {};
struct avg_pool1d {};
struct as_map {};
}  // namespace checks

// A layer's input must be a feature map (Map.c > 0) of Channels channels (0: any).
template <class Layer, feature_map Map, int Channels>
struct map_check {
  static_assert(Map.c > 0,
      "kiln: this layer takes feature maps: start from kiln::image<C, H, W>, or view a vector as a map with "
      "kiln::as_map<C, H, W>; the layer is the first argument of kiln::map_check above");
  static_assert(Channels == 0 || Map.c == Channels,
      "kiln: channel mismatch: the layer's input channels (third argument of kiln::map_check above) differ from "
      "the map's {c, h, w} (second argument)");
  static constexpr bool ok = true;
};
// The (padded) map must hold at least one window: Map {c, h, w}, Window {kernel, stride, padding, dilation}.
template <class Layer, feature_map Map, int Kernel, int Stride, int Padding, int Dilation>
struct window_check {
  static_assert(Kernel > 0 && Stride > 0 && Padding >= 0 && Dilation > 0,
      "kiln: a window needs kernel > 0, stride > 0, padding >= 0, dilation > 0 (arguments of kiln::window_check above)");
  static_assert(Map.h + 2 * Padding >= Dilation * (Kernel - 1) + 1 && Map.w + 2 * Padding >= Dilation * (Kernel - 1) + 1,
      "kiln: the window is larger than the padded map: the layer, the map {c, h, w}, kernel, stride, padding and "
      "dilation are the arguments of kiln::window_check above");
  static constexpr bool ok = true;
};

// A 1-D layer's input must be a sequence [batch, C, L] (a tensor of rank 3, or a map of one row) of Channels
// channels (0: any), holding at least one window along L: Map {c, 1, L}, Window {kernel, stride, padding, dilation}.
template <class Layer, feature_map Map, int Channels, int Kernel, int Stride, int Padding, int Dilation>
struct sequence_check {
  static_assert(Map.c > 0 && Map.h == 1,
      "kiln: this layer takes sequences [batch, C, L]: start from kiln::input<C, L>, or reshape<-1, C, L>; the "
      "layer and the value's map {c, h, w} are the first arguments of kiln::sequence_check above");
  static_assert(Channels == 0 || Map.c == Channels,
      "kiln: channel mismatch: the layer's input channels (third argument of kiln::sequence_check above) differ "
      "from the sequence's {c, 1, length} (second argument)");
  static_assert(Kernel > 0 && Stride > 0 && Padding >= 0 && Dilation > 0 && Map.w + 2 * Padding >= Dilation * (Kernel - 1) + 1,
      "kiln: the window is larger than the padded sequence: the layer, the sequence {c, 1, length}, kernel, "
      "stride, padding and dilation are the arguments of kiln::sequence_check above");
  static constexpr bool ok = true;
};

namespace detail {
template <feature_map M, int Out, int Kernel, int Stride, int Padding, int Dilation, int Groups>
constexpr window make_window() {
  window w;
  w.c = M.c; w.h = M.h; w.w = M.w; w.o = Out;
  w.kh = w.kw = Kernel; w.sh = w.sw = Stride; w.ph = w.pw = Padding; w.dh = w.dw = Dilation; w.groups = Groups;
  return w;
}
// The window of a 1-D op over sequences [C, L] (maps of one row): the kernel runs along L only.
template <feature_map M, int Out, int Kernel, int Stride, int Padding, int Dilation, int Groups>
constexpr window make_window_1d() {
  window w = make_window<M, Out, 1, 1, 0, 1, Groups>();
  w.kw = Kernel; w.sw = Stride; w.pw = Padding; w.dw = Dilation;
  return w;
}
// The result of a 1-D op with window W on rows of sequences: [rows, O, L'] (rows: the batch, or static).
template <window W, int Rows>
constexpr tensor_shape sequence_result() { return shape_from<Rows, W.o, W.ow()>(); }
template <window W>
constexpr feature_map output_map() { return feature_map{W.o, W.oh(), W.ow()}; }

template <class Op, window W>
struct window_tag {
  static constexpr int emit(builder& b, double, int x) { return b.window_node<Op>(x, -1, W); }
  static constexpr int emit(builder& b, double, int x, int y) { return b.window_node<Op>(x, y, W); }
};
}  // namespace detail

namespace detail {
// y = conv2d(x, weight) (+ bias per channel) for window W: the weight [O, C/G·kh·kw] with PyTorch's shape
// torch_dims (rank 4 for conv2d, 3 for conv1d) and default init, named prefix.weight and prefix.bias.
template <window W, bool Bias, class X>
constexpr auto convolution(X x, short_name prefix, std::array<int, 4> torch_dims, int rank) {
  constexpr int fan_in = W.c / W.groups * W.kh * W.kw;
  constexpr feature_map out = output_map<W>();
  auto weight = make_leaf<W.o, fan_in, value_kind::any, leaf_kind::param>("w", rank).init_uniform_fan_in(fan_in);
  weight.info.name = joined(prefix.view(), ".weight");
  for (int k = 0; k < rank; ++k) weight.info.torch_dims[k] = torch_dims[static_cast<std::size_t>(k)];
  auto y = make_expr<window_tag<ops::conv2d_op, W>, dims{X::shape.rows, out.size()}>(0, x, weight);
  if constexpr (Bias) {
    auto bias = make_leaf<1, W.o, value_kind::any, leaf_kind::param>("b", 1).init_uniform_fan_in(fan_in);
    bias.info.name = joined(prefix.view(), ".bias");
    constexpr window per_channel = make_window<out, W.o, 1, 1, 0, 1, 1>();
    return y + make_expr<window_tag<ops::channel_repeat_op, per_channel>, dims{1, out.size()}>(0, bias);
  } else {
    return y;
  }
}
}  // namespace detail

// conv2d<In, Out, Kernel, Stride, Padding, Dilation, Groups, Bias>: PyTorch's nn.Conv2d(In, Out, Kernel, …) with
// square kernels and zero padding. Weight [Out, In/Groups, K, K] and bias [Out], both uniform ±1/√(In/Groups·K²)
// (PyTorch's default), named conv1.weight, conv1.bias, … by nn::sequential.
template <int In, int Out, int Kernel, int Stride = 1, int Padding = 0, int Dilation = 1, int Groups = 1, bool Bias = true>
struct conv2d {
  static_assert(In > 0 && Out > 0 && Groups > 0 && In % Groups == 0 && Out % Groups == 0,
                "kiln: conv2d<In, Out, …, Groups>: In and Out must be positive multiples of Groups");
  static constexpr std::string_view stem = "conv";
  short_name name{};
  constexpr conv2d() = default;
  constexpr explicit conv2d(std::string_view n) : name(n) {}

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(map_check<checks::conv2d, m, In>::ok);
    static_assert(window_check<checks::conv2d, m, Kernel, Stride, Padding, Dilation>::ok);
    constexpr window w = detail::make_window<m, Out, Kernel, Stride, Padding, Dilation, Groups>();
    return with_map<detail::output_map<w>()>(detail::convolution<w, Bias>(x, prefix, {Out, In / Groups, Kernel, Kernel}, 4));
  }
};

// max_pool2d<Kernel, Stride, Padding, Dilation>: PyTorch's nn.MaxPool2d (stride defaults to the kernel); its
// gradient goes to the first maximum of each window (PyTorch's tie rule).
template <int Kernel, int Stride = Kernel, int Padding = 0, int Dilation = 1>
struct max_pool2d {
  static_assert(2 * Padding <= Kernel, "kiln: max_pool2d: padding must be at most half the kernel (PyTorch's rule)");
  template <expression X>
  constexpr auto operator()(X x) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(map_check<checks::max_pool2d, m, 0>::ok);
    static_assert(window_check<checks::max_pool2d, m, Kernel, Stride, Padding, Dilation>::ok);
    constexpr window w = detail::make_window<m, m.c, Kernel, Stride, Padding, Dilation, m.c>();
    constexpr feature_map out = detail::output_map<w>();
    return with_map<out>(make_expr<detail::window_tag<ops::max_pool2d_op, w>, dims{X::shape.rows, out.size()}>(0, x));
  }
};

// avg_pool2d<Kernel, Stride, Padding>: PyTorch's nn.AvgPool2d (count_include_pad: padding counts as zeros).
template <int Kernel, int Stride = Kernel, int Padding = 0>
struct avg_pool2d {
  static_assert(2 * Padding <= Kernel, "kiln: avg_pool2d: padding must be at most half the kernel (PyTorch's rule)");
  template <expression X>
  constexpr auto operator()(X x) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(map_check<checks::avg_pool2d, m, 0>::ok);
    static_assert(window_check<checks::avg_pool2d, m, Kernel, Stride, Padding, 1>::ok);
    constexpr window w = detail::make_window<m, m.c, Kernel, Stride, Padding, 1, m.c>();
    constexpr feature_map out = detail::output_map<w>();
    return with_map<out>(make_expr<detail::window_tag<ops::avg_pool2d_op, w>, dims{X::shape.rows, out.size()}>(0, x));
  }
};

// ---- 1-D layers over sequences [batch, C, L] (PyTorch's nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d): the 2-D window
// ops with a kernel of one row, so every backend runs them as it runs conv2d and pooling.

// conv1d<In, Out, Kernel, Stride, Padding, Dilation, Groups, Bias>: weight [Out, In/Groups, Kernel], bias [Out].
template <int In, int Out, int Kernel, int Stride = 1, int Padding = 0, int Dilation = 1, int Groups = 1, bool Bias = true>
struct conv1d {
  static_assert(In > 0 && Out > 0 && Groups > 0 && In % Groups == 0 && Out % Groups == 0,
                "kiln: conv1d<In, Out, …, Groups>: In and Out must be positive multiples of Groups");
  static constexpr std::string_view stem = "conv";
  short_name name{};
  constexpr conv1d() = default;
  constexpr explicit conv1d(std::string_view n) : name(n) {}

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(sequence_check<checks::conv1d, m, In, Kernel, Stride, Padding, Dilation>::ok);
    constexpr window w = detail::make_window_1d<m, Out, Kernel, Stride, Padding, Dilation, Groups>();
    return with_shape<detail::sequence_result<w, X::shape.rows>()>(
        detail::convolution<w, Bias>(x, prefix, {Out, In / Groups, Kernel, 0}, 3));
  }
};

// max_pool1d<Kernel, Stride, Padding, Dilation>: PyTorch's nn.MaxPool1d (the first maximum takes the gradient).
template <int Kernel, int Stride = Kernel, int Padding = 0, int Dilation = 1>
struct max_pool1d {
  static_assert(2 * Padding <= Kernel, "kiln: max_pool1d: padding must be at most half the kernel (PyTorch's rule)");
  template <expression X>
  constexpr auto operator()(X x) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(sequence_check<checks::max_pool1d, m, 0, Kernel, Stride, Padding, Dilation>::ok);
    constexpr window w = detail::make_window_1d<m, m.c, Kernel, Stride, Padding, Dilation, m.c>();
    constexpr tensor_shape out = detail::sequence_result<w, X::shape.rows>();
    return with_shape<out>(make_expr<detail::window_tag<ops::max_pool2d_op, w>, storage_of(out)>(0, x));
  }
};

// avg_pool1d<Kernel, Stride, Padding>: PyTorch's nn.AvgPool1d (count_include_pad).
template <int Kernel, int Stride = Kernel, int Padding = 0>
struct avg_pool1d {
  static_assert(2 * Padding <= Kernel, "kiln: avg_pool1d: padding must be at most half the kernel (PyTorch's rule)");
  template <expression X>
  constexpr auto operator()(X x) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(sequence_check<checks::avg_pool1d, m, 0, Kernel, Stride, Padding, 1>::ok);
    constexpr window w = detail::make_window_1d<m, m.c, Kernel, Stride, Padding, 1, m.c>();
    constexpr tensor_shape out = detail::sequence_result<w, X::shape.rows>();
    return with_shape<out>(make_expr<detail::window_tag<ops::avg_pool2d_op, w>, storage_of(out)>(0, x));
  }
};

// global_avg_pool: the mean of each channel, [batch, C] (PyTorch: AdaptiveAvgPool2d(1) then flatten).
struct global_avg_pool_fn {
  template <expression X>
  constexpr auto operator()(X x) const {
    constexpr feature_map m = nn::map_of<X>();
    static_assert(map_check<checks::avg_pool2d, m, 0>::ok);
    constexpr window w = detail::make_window<m, m.c, 1, 1, 0, 1, 1>();
    auto sums = make_expr<detail::window_tag<ops::channel_sum_op, w>, dims{X::shape.rows, m.c}>(0, x);
    return with_map<feature_map{m.c, 1, 1}>(sums * (1.0 / (m.h * m.w)));
  }
};
inline constexpr global_avg_pool_fn global_avg_pool{};

// flatten: the maps as plain vectors (the values stay where they are: NCHW flattened is PyTorch's flatten).
struct flatten_fn {
  template <expression X>
  constexpr auto operator()(X x) const { return with_map<feature_map{}>(x); }
};
inline constexpr flatten_fn flatten{};

// as_map<C, H, W>: a [batch, C·H·W] value viewed as C×H×W maps (PyTorch: x.view(-1, C, H, W)).
template <int C, int H, int W>
struct as_map_fn {
  template <expression X>
  constexpr auto operator()(X x) const {
    static_assert(C > 0 && H > 0 && W > 0, "kiln: as_map<C, H, W> needs C, H, W > 0");
    static_assert(same_width_check<checks::as_map, feature_map{C, H, W}, X::shape>::ok);
    return with_map<feature_map{C, H, W}>(x);
  }
 private:
  template <class Op, feature_map Map, dims Shape>
  struct same_width_check {
    static_assert(Map.size() == Shape.cols,
        "kiln: width mismatch: a value of shape Shape ({rows, cols}) cannot be viewed as maps {c, h, w} of another "
        "size; both are the arguments of same_width_check above");
    static constexpr bool ok = true;
  };
};
template <int C, int H, int W>
inline constexpr as_map_fn<C, H, W> as_map{};

}  // namespace kiln
