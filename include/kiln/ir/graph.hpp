#pragma once
// The one IR: a constexpr, append-only DAG of primitive nodes. Every tensor is rank 2, [rows, cols]; a dimension
// is a static size or `batch` (the run-time batch size, only ever in rows). Vectors are [1, n], scalars [1, 1],
// per-sample scalars [batch, 1]. Elementwise ops broadcast numpy-style (a dimension of 1 stretches).
// Nodes are appended after their operands, so node order is a topological order.
// Sizes come from the model: passes build a `graph_data` (growing arrays, core/ct_vector.hpp, within one constant
// evaluation), and ir/frozen.hpp copies the finished graph into static arrays of exactly its size, which a `graph`
// views. No count of nodes, leaves or outputs is fixed anywhere.
#include <kiln/core/ct_vector.hpp>
#include <kiln/core/fixed_string.hpp>
#include <kiln/ops/list.hpp>
#include <kiln/ops/window_math.hpp>

#include <cstdint>
#include <vector>

namespace kiln {

inline constexpr int batch = -1;  // the run-time batch dimension

struct dims {
  int rows = 1, cols = 1;
  constexpr bool operator==(const dims&) const = default;
  constexpr bool batched() const { return rows == batch; }
};

// One enumerator per entry of the op list (ops/list.hpp), in its order.
#define KILN_OP_ENUMERATOR(name) name,
enum class op : std::uint8_t { KILN_OPS(KILN_OP_ENUMERATOR) count_ };
#undef KILN_OP_ENUMERATOR
inline constexpr int op_count = static_cast<int>(op::count_);

// How a pass or a backend treats a node; decided by the op's traits, never by its name.
enum class op_class : std::uint8_t { leaf, immediate, elementwise, reduction, layout, contraction, indexing };

struct node {
  op kind = op::constant;
  int in[3] = {-1, -1, -1};
  dims shape{};
  double k = 0;  // constant value, exponent, clamp bound
  int leaf = -1; // index into the leaf table (input/param/state), hyperparameter slot, window (window ops), or -1
  constexpr bool same_as(const node& o) const {
    return kind == o.kind && in[0] == o.in[0] && in[1] == o.in[1] && in[2] == o.in[2] && shape == o.shape &&
           k == o.k && leaf == o.leaf;
  }
};

enum class leaf_kind : std::uint8_t { input, labels, param, state };
enum class init_kind : std::uint8_t { zeros, uniform_fan_in, constant, normal };

// A named leaf: what the user binds (inputs, labels) or what the step owns (parameters, optimizer state).
struct leaf_info {
  leaf_kind kind = leaf_kind::input;
  short_name name{};
  dims shape{};
  init_kind init = init_kind::zeros;
  int fan_in = 0;       // for uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's Linear default
  double init_value = 0;  // constant: the value; normal: the standard deviation
  int owner = -1;       // for optimizer state: the parameter leaf it belongs to
  int num_classes = 0;  // for labels
  int rank = 2;         // declared rank (0 scalar, 1 vector, 2 matrix, up to 8), for checkpoints
  int torch_dims[8] = {};  // rank > 2: PyTorch's shape (a conv weight [O, C/groups, kh, kw] held as [O, C/groups·kh·kw])
};

// An output of the graph: either a value the caller reads (the loss) or a new value assigned to a leaf
// (a parameter or optimizer state), which the backend writes in place once nothing else reads the old one.
struct output {
  int node = -1;
  int assign_to = -1;  // leaf index, or -1 for a plain result
};

// A finished graph, read-only: a view of arrays that live elsewhere (static storage for a compiled model, a
// graph_data for one built at run time).
struct graph {
  const node* nodes = nullptr;
  int size = 0;
  const leaf_info* leaves = nullptr;
  int num_leaves = 0;
  const output* outputs = nullptr;
  int num_outputs = 0;
  int num_hypers = 0;
  const window* windows = nullptr;  // the geometries of the window ops (conv, pooling), by node.leaf
  int num_windows = 0;

  constexpr const node& operator[](int i) const { return nodes[i]; }
};

// A graph while it is built: every array grows as needed.
struct graph_data {
  ct_vector<node> nodes;
  ct_vector<leaf_info> leaves;
  ct_vector<output> outputs;
  ct_vector<window> windows;
  int num_hypers = 0;

  constexpr int size() const { return static_cast<int>(nodes.size()); }
  constexpr int num_leaves() const { return static_cast<int>(leaves.size()); }
  constexpr int num_outputs() const { return static_cast<int>(outputs.size()); }
  constexpr int num_windows() const { return static_cast<int>(windows.size()); }
  // Valid while this graph_data lives and grows no further.
  constexpr graph view() const {
    return graph{nodes.data(), size(), leaves.data(), num_leaves(), outputs.data(), num_outputs(), num_hypers, windows.data(), num_windows()};
  }
};

// Nodes the loss (output 0) depends on: the forward pass (printers colour it, the NaN guard searches it first).
inline std::vector<bool> forward_nodes(const graph& g) {
  std::vector<bool> fwd(static_cast<std::size_t>(g.size), false);
  if (g.num_outputs == 0) return fwd;
  fwd[static_cast<std::size_t>(g.outputs[0].node)] = true;
  for (int i = g.size - 1; i >= 0; --i)
    if (fwd[static_cast<std::size_t>(i)])
      for (int k = 0; k < 3; ++k)
        if (g.nodes[i].in[k] >= 0) fwd[static_cast<std::size_t>(g.nodes[i].in[k])] = true;
  return fwd;
}

}  // namespace kiln
