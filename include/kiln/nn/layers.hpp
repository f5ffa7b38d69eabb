#pragma once
// Layers: dense<N> (PyTorch's Linear: y = x·Wᵀ + b, W [N, in], b [N], both uniform ±1/√in, seeded by the step)
// and nn::sequential, which applies layers and activations in turn and names dense layers fc1, fc2, …
#include <kiln/nn/activations.hpp>

#include <string_view>

namespace kiln {

namespace detail {
constexpr short_name numbered(std::string_view stem, int index, std::string_view suffix) {
  char buf[short_name::capacity] = {};
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
  char buf[short_name::capacity] = {};
  int n = 0;
  for (char c : a) buf[n++] = c;
  for (char c : b) buf[n++] = c;
  return short_name(std::string_view(buf, static_cast<std::size_t>(n)));
}
}  // namespace detail

template <int Out>
struct dense {
  short_name name{};  // empty: named by sequential (fcN)
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

template <class... Layers>
struct sequential_t {
  std::tuple<Layers...> layers;

  template <expression X>
  constexpr auto operator()(X x) const { return step<0>(x, 1, 1); }

 private:
  template <class L> static constexpr bool is_dense = requires(L l) { []<int N>(const dense<N>&) {}(l); };

  template <std::size_t I, class X>
  constexpr auto step(X x, int dense_index, int prelu_index) const {
    if constexpr (I == sizeof...(Layers)) {
      return x;
    } else {
      const auto& layer = std::get<I>(layers);
      using L = std::remove_cvref_t<decltype(layer)>;
      if constexpr (is_dense<L>) {
        short_name n = layer.name.length ? layer.name : detail::numbered("fc", dense_index, "");
        return step<I + 1>(layer.apply(x, n), dense_index + 1, prelu_index);
      } else if constexpr (std::is_same_v<L, prelu_layer>) {
        short_name n = layer.name.length ? layer.name : detail::numbered("prelu", prelu_index, "");
        return step<I + 1>(layer.apply(x, n), dense_index, prelu_index + 1);
      } else {
        return step<I + 1>(layer(x), dense_index, prelu_index);
      }
    }
  }
};

// sequential(dense<128>{}, relu, dense<64>{}, relu, dense<10>{}) — layers and activations applied in order.
template <class... Layers>
constexpr auto sequential(Layers... layers) { return sequential_t<Layers...>{std::tuple<Layers...>{layers...}}; }

}  // namespace nn
}  // namespace kiln
