#pragma once
// What every backend's compiled training step offers, so that code driving training (the trainer, checkpoints,
// device mirroring) needs no backend of its own: kiln::cpu::train_step and kiln::cuda::train_step both satisfy
// it (asserted in tests/train/test_trainer.cpp and test_trainer_cuda_emulated.cpp).
#include <kiln/ir/graph.hpp>
#include <kiln/plan/plan.hpp>
#include <kiln/train/feed.hpp>

#include <concepts>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace kiln {

// What the trainer needs of a step that runs elsewhere and is mirrored by name (trainer::fit_on):
// run: one step (forward, loss, backward, update) on a batch, returning the loss before the update;
// param / set_param: parameters and optimizer state by PyTorch name, row-major (param may be a view or a copy);
// step_count: how many updates the optimizer has made (its bias corrections depend on it).
template <class S>
concept device_step = requires(S& s, const S& cs, long batch, std::initializer_list<feed> feeds, std::string_view name,
                               std::span<const float> values, long t) {
  { s.run(batch, feeds) } -> std::convertible_to<float>;
  { s.param(name) };
  s.set_param(name, values);
  { cs.step_count() } -> std::convertible_to<long>;
  s.set_step_count(t);
};

// A backend's compiled step: a device_step that also says what it compiled (step_graph / compiled_plan /
// plan_text), finds leaves by name and holds its optimizer.
template <class S>
concept training_step = device_step<S> && requires(S& s, const S& cs, std::string_view name) {
  typename S::optimizer_type;
  { cs.leaf_index(name) } -> std::convertible_to<int>;
  { s.optimizer() } -> std::same_as<typename S::optimizer_type&>;
  { S::step_graph() } -> std::same_as<const graph&>;
  { S::compiled_plan() } -> std::same_as<const plan&>;
  { S::plan_text() } -> std::convertible_to<std::string>;
};

// Forward evaluation of a model with parameters taken by name from a step: run writes the model's output
// (row-major, [batch or 1, cols]) into out.
template <class F>
concept forward_function = requires(F& f, long batch, std::initializer_list<feed> feeds, std::span<float> out) {
  f.run(batch, feeds, out);
};

}  // namespace kiln
