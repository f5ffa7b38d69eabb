#pragma once
// Layers: dense<N> (PyTorch's Linear: y = x·Wᵀ + b, W [N, in], b [N], both uniform ±1/√in, seeded by the step)
// and nn::sequential, which applies layers and activations in turn and names the layers that own parameters
// by their stem: fc1, fc2, … for dense layers (layer_norm: nn/normalization.hpp).
#include <kiln/nn/activations.hpp>

#include <concepts>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace kiln {

namespace detail {
constexpr short_name numbered(std::string_view stem, int index, std::string_view suffix) {
  char buf[2 * short_name::capacity + 16] = {};  // room for any stem and suffix: short_name reports a name too long
  int n = 0;
  for (char c : stem) buf[n++] = c;
  char digits[12] = {};
  int nd = 0;
  do { digits[nd++] = static_cast<char>('0' + index % 10); index /= 10; } while (index > 0);
  while (nd > 0) buf[n++] = digits[--nd];
  for (char c : suffix) buf[n++] = c;
  return short_name(std::string_view(buf, static_cast<std::size_t>(n)));
}
constexpr short_name joined(std::string_view a, std::string_view b) {
  char buf[2 * short_name::capacity + 16] = {};  // room for any stem and suffix: short_name reports a name too long
  int n = 0;
  for (char c : a) buf[n++] = c;
  for (char c : b) buf[n++] = c;
  return short_name(std::string_view(buf, static_cast<std::size_t>(n)));
}
}  // namespace detail

template <int Out>
struct dense {
  static constexpr std::string_view stem = "fc";  // named fc1, fc2, … by nn::sequential
  short_name name{};  // empty: named by sequential
  constexpr dense() = default;
  constexpr explicit dense(std::string_view n) : name(n) {}

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    constexpr int in = X::shape.cols;
    auto w = make_leaf<Out, in, value_kind::any, leaf_kind::param>("w", 2).init_uniform_fan_in(in);
    auto b = make_leaf<1, Out, value_kind::any, leaf_kind::param>("b", 1).init_uniform_fan_in(in);
    w.info.name = detail::joined(prefix.view(), ".weight");
    b.info.name = detail::joined(prefix.view(), ".bias");
    return make_expr<dense_logits_tag, dims{X::shape.rows, Out}, value_kind::logits>(0, matmul(x, transpose(w)) + b);
  }

 private:
  struct dense_logits_tag { static constexpr int emit(builder&, double, int y) { return y; } };
};

// A PReLU layer with one learned slope (PyTorch's default num_parameters=1, init 0.25).
struct prelu_layer {
  static constexpr std::string_view stem = "prelu";  // named prelu1, prelu2, … by nn::sequential
  short_name name{};
  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    auto a = make_leaf<1, 1, value_kind::any, leaf_kind::param>("a", 1).init_constant(0.25);
    a.info.name = detail::joined(prefix.view(), ".weight");
    return prelu(x, a);
  }
  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }
};
inline constexpr prelu_layer prelu_l{};

namespace nn {

// The class (or vocabulary) count of a labels expression, 0 for other expressions.
template <class E>
constexpr int classes_of() {
  if constexpr (requires { E::classes; }) return E::classes;
  else return 0;
}

// The feature map (C×H×W) a value's row holds, NCHW flattened; empty (c = 0) for a plain vector.
template <class E>
constexpr feature_map map_of() {
  if constexpr (requires { E::map; }) return E::map;
  else if constexpr (requires { E::tshape; }) {  // a tensor [batch, C, H, W] or a sequence [batch, C, L]
    constexpr tensor_shape s = E::tshape;
    if constexpr (s.batched() && s.rank == 4) return feature_map{s.d[1], s.d[2], s.d[3]};
    else if constexpr (s.batched() && s.rank == 3) return feature_map{s.d[1], 1, s.d[2]};
    else return feature_map{};
  } else return feature_map{};
}

// A node already in the graph being built, as an expression of static shape and kind (and class count, for the
// labels or tokens a sequential starts from): sequential applies each layer to the previous layer's node instead
// of nesting the layers' expressions inside each other.
template <dims Shape, value_kind Kind, int Classes = 0, feature_map Map = feature_map{}>
struct node_ref_expr {
  static constexpr dims shape = Shape;
  static constexpr value_kind kind = Kind;
  static constexpr int classes = Classes;
  static constexpr feature_map map = Map;
  int id = -1;
  constexpr int emit(builder&) const { return id; }
};

namespace detail {
// A layer that owns parameters declares the stem of its default name (dense: fc) and takes its name in apply.
template <class L> inline constexpr bool is_named_layer = requires { { L::stem } -> std::convertible_to<std::string_view>; };
template <class L>
constexpr std::string_view stem_of() {
  if constexpr (is_named_layer<L>) return L::stem;
  else return {};
}

// What layer L gives for an input of type In (its name does not change the type).
template <class L, class In>
using layer_result = decltype(std::declval<const L&>()(std::declval<In>()));
// The feature map of a layer's result: its own (conv, pooling, flatten's none), else the input's when the layer
// keeps the width (an activation, dropout, a normalization), else none.
template <class R, class In>
constexpr feature_map map_after() {
  if constexpr (requires { R::map; } || requires { R::tshape; }) return map_of<R>();
  else if constexpr (R::shape.cols == In::shape.cols) return map_of<In>();
  else return feature_map{};
}
template <class L, class In>
using next_ref = node_ref_expr<layer_result<L, In>::shape, layer_result<L, In>::kind, 0, map_after<layer_result<L, In>, In>()>;

// The input of layer I: a node_ref of the model's input for I = 0, else of the previous layer's result.
template <std::size_t I, class In, class... Layers>
struct input_of_layer { using type = node_ref_expr<In::shape, In::kind, classes_of<In>(), map_of<In>()>; };
template <std::size_t I, class In, class L, class... Rest>
  requires(I > 0)
struct input_of_layer<I, In, L, Rest...> {
  using type = typename input_of_layer<I - 1, next_ref<L, In>, Rest...>::type;
};
}  // namespace detail

// The expression of a sequential applied to x. It holds x and the layers side by side (not nested), and emits
// them one after another, so building and emitting an L-layer network costs O(L) time and constexpr depth.
// How a sequential names the layers that own parameters: per stem (fc1, conv1, bn1, …, as one would name the
// attributes of a hand-written torch.nn.Module), or by position, as torch.nn.Sequential does (0.weight, 4.bias:
// every layer counts, activations and pooling included, one torch module per kiln layer).
enum class naming { by_stem, by_index };

template <naming Naming, class X, class... Layers>
struct sequential_expr {
  using last_input = typename detail::input_of_layer<sizeof...(Layers) - 1, X, Layers...>::type;
  using result = detail::layer_result<std::tuple_element_t<sizeof...(Layers) - 1, std::tuple<Layers...>>, last_input>;
  static constexpr dims shape = result::shape;
  static constexpr value_kind kind = result::kind;
  X input;
  std::tuple<Layers...> layers;

  constexpr int emit(builder& b) const {
    int id = input.emit(b);
    emit_layers(b, id, std::index_sequence_for<Layers...>{});
    return id;
  }

 private:
  // Layers with parameters are numbered per stem in order, unless given a name: fc1, fc2, …, prelu1, norm1, ….
  template <std::size_t I>
  static constexpr int number_of() {
    using L = std::tuple_element_t<I, std::tuple<Layers...>>;
    constexpr bool same_family[] = {(detail::stem_of<Layers>() == L::stem)...};
    int n = 1;
    for (std::size_t j = 0; j < I; ++j) n += same_family[j];
    return n;
  }
  template <std::size_t... I>
  constexpr void emit_layers(builder& b, int& id, std::index_sequence<I...>) const {
    ((id = emit_layer<I>(b, id)), ...);
  }
  template <std::size_t I>
  constexpr int emit_layer(builder& b, int id) const {
    using In = typename detail::input_of_layer<I, X, Layers...>::type;
    const In x{id};
    const auto& layer = std::get<I>(layers);
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (detail::is_named_layer<L>) {
      const short_name n = layer.name.length            ? layer.name
                           : Naming == naming::by_index ? kiln::detail::numbered("", static_cast<int>(I), "")
                                                        : kiln::detail::numbered(L::stem, number_of<I>(), "");
      return layer.apply(x, n).emit(b);
    } else {
      return layer(x).emit(b);
    }
  }
};

template <naming Naming, class... Layers>
struct sequential_t {
  static_assert(sizeof...(Layers) > 0, "kiln: nn::sequential needs at least one layer");
  std::tuple<Layers...> layers;

  template <expression X>
  constexpr auto operator()(X x) const { return sequential_expr<Naming, X, Layers...>{x, layers}; }
};

// sequential(dense<128>{}, relu, dense<64>{}, relu, dense<10>{}) — layers and activations applied in order,
// named per stem: fc1.weight, fc1.bias, fc2.weight, …
template <class... Layers>
constexpr auto sequential(Layers... layers) { return sequential_t<naming::by_stem, Layers...>{std::tuple<Layers...>{layers...}}; }
// The same named as torch.nn.Sequential(Linear(…), ReLU(), Linear(…), …) names its state_dict: 0.weight,
// 0.bias, 2.weight, … (a layer given a name keeps it).
template <class... Layers>
constexpr auto torch_sequential(Layers... layers) { return sequential_t<naming::by_index, Layers...>{std::tuple<Layers...>{layers...}}; }

}  // namespace nn
}  // namespace kiln
