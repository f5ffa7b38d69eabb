#pragma once
// Deep MLPs for the tests of models past the old fixed capacities: Layers hidden tanh layers of Width features,
// then 3 logits, cross-entropy on labels y of 3 classes, input x of 6 features.
#include <kiln/kiln.hpp>

#include <cstddef>
#include <tuple>
#include <utility>

namespace kiln_test {

// sequential(dense<Width>, tanh, … (one pair per I), dense<3>)
template <int Width, std::size_t... I>
constexpr auto tanh_stack(std::index_sequence<I...>) {
  const auto layers = std::tuple_cat(((void)I, std::tuple{kiln::dense<Width>{}, kiln::tanh})..., std::tuple{kiln::dense<3>{}});
  return std::apply([](auto... l) { return kiln::nn::sequential(l...); }, layers);
}
template <int Layers, int Width>
struct deep_mlp {
  constexpr auto operator()() const {
    return kiln::cross_entropy(tanh_stack<Width>(std::make_index_sequence<Layers>{})(kiln::input<6>("x")),
                               kiln::labels<3>("y"));
  }
};

}  // namespace kiln_test
