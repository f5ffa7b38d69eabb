#pragma once
// Shared by the tests that train a CPU step next to the double reference: both must start from the same state
// and see the same inputs. The step's own parameters and optimizer state (PyTorch's initialization) are copied
// into the reference's leaves, and the step's feeds are taken from the reference's random leaves.
#include "gradcheck.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln_test {

struct step_feeds {
  std::vector<float> x, target;     // the input "x" and the dense target, empty when the model has none
  std::vector<std::int32_t> labels;  // the class labels "y", empty when the model has none
};

// Copies every param and state leaf of `step` into `leaves`, and returns the feeds "x", "y" and `target_name`
// as the step takes them.
template <class Step>
step_feeds start_from_step(const Step& step, leaf_values& leaves, std::string_view target_name) {
  const kiln::graph& g = Step::G;
  step_feeds feeds;
  for (int l = 0; l < g.num_leaves; ++l) {
    const kiln::leaf_info& info = g.leaves[l];
    auto& v = leaves[static_cast<std::size_t>(l)];
    if (info.kind == kiln::leaf_kind::param || info.kind == kiln::leaf_kind::state) {
      const auto p = step.param(info.name.view());
      v.assign(p.begin(), p.end());
    }
    const std::string_view name = info.name.view();
    if (name == "x") feeds.x.assign(v.begin(), v.end());
    if (name == target_name) feeds.target.assign(v.begin(), v.end());
    if (name == "y")
      for (double e : v) feeds.labels.push_back(static_cast<std::int32_t>(e));
  }
  return feeds;
}

}  // namespace kiln_test
