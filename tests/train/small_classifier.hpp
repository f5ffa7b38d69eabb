#pragma once
// The model the trainer tests train, on the CPU and on the emulated CUDA device: 4 inputs, 8 ReLU units, 3
// classes; the loss graph for training and the logits graph for evaluation share their parameters' names.
#include <kiln/kiln.hpp>
#include <kiln/cpu/trainer.hpp>

namespace kiln_test {
inline constexpr auto small_net = kiln::nn::sequential(kiln::dense<8>{}, kiln::relu, kiln::dense<3>{});
struct small_loss_model {
  constexpr auto operator()() const { return kiln::cross_entropy(small_net(kiln::input<4>("x")), kiln::labels<3>("y")); }
};
struct small_logits_model {
  constexpr auto operator()() const { return small_net(kiln::input<4>("x")); }
};
using small_trainer = kiln::train::trainer<small_loss_model, kiln::adam, small_logits_model>;
}  // namespace kiln_test
