#pragma once
// kiln::train::trainer<Model, Optimizer, Predict>: the training loop (kiln/train/trainer.hpp) on the CPU
// backend: its steps are kiln::cpu::train_step, its evaluations kiln::cpu::function.
#include <kiln/cpu/train_step.hpp>
#include <kiln/train/trainer.hpp>

namespace kiln::cpu {

struct trainer_backend {
  template <class Model, class Optimizer, fusion Mode>
  using step = train_step<Model, Optimizer, Mode>;
  template <class Model>
  using function = cpu::function<Model>;
};

}  // namespace kiln::cpu

namespace kiln::train {

template <class Model, class Optimizer, class Predict = no_prediction>
using trainer = basic_trainer<cpu::trainer_backend, Model, Optimizer, Predict>;

}  // namespace kiln::train
