#pragma once
// A graph built at compile time, kept in static arrays of exactly its size. A constant evaluation may allocate
// (ct_vector), but nothing it allocates may outlive it; so a graph is built twice: once to count its nodes,
// leaves, outputs and windows, once more to copy it into arrays of those sizes. `frozen_graph<Build>::value` is the
// finished graph (a view of those arrays), for any Build whose constexpr operator() returns a graph_data.
#include <kiln/ir/graph.hpp>

#include <array>

namespace kiln {

template <int Nodes, int Leaves, int Outputs, int Windows>
struct graph_storage {
  std::array<node, Nodes> nodes{};
  std::array<leaf_info, Leaves> leaves{};
  std::array<output, Outputs> outputs{};
  std::array<window, Windows> windows{};
  int num_hypers = 0;

  constexpr explicit graph_storage(const graph_data& g) : num_hypers(g.num_hypers) {
    for (int i = 0; i < Nodes; ++i) nodes[i] = g.nodes[i];
    for (int i = 0; i < Leaves; ++i) leaves[i] = g.leaves[i];
    for (int i = 0; i < Outputs; ++i) outputs[i] = g.outputs[i];
    for (int i = 0; i < Windows; ++i) windows[i] = g.windows[i];
  }
  constexpr graph view() const {
    return graph{nodes.data(), Nodes, leaves.data(), Leaves, outputs.data(), Outputs, num_hypers, windows.data(), Windows};
  }
};

template <class Build>
struct frozen_graph {
 private:
  struct extent { int nodes, leaves, outputs, windows; };
  static constexpr extent size = [] {
    const graph_data g = Build{}();
    return extent{g.size(), g.num_leaves(), g.num_outputs(), g.num_windows()};
  }();
  static constexpr graph_storage<size.nodes, size.leaves, size.outputs, size.windows> storage{Build{}()};

 public:
  static constexpr graph value = storage.view();
};

}  // namespace kiln
