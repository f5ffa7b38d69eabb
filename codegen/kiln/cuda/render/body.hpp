#pragma once
// Pieces every CUDA kernel renderer shares: buffer names, how a kernel reads a node at a position of its
// iteration domain (broadcasting dimensions of size 1), the body of a plan kernel as one `const float vN = …;`
// per node (each op's forward written as CUDA source, ops::text_math with the math prefix km::), and the stores.
#include <kiln/core/error.hpp>
#include <kiln/cuda/schedule/layout.hpp>
#include <kiln/ops/registry.hpp>
#include <kiln/plan/kernel_view.hpp>
#include <kiln/plan/plan.hpp>
#include <kiln/plan/print.hpp>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace kiln::cuda {

inline std::string buffer_name(int buffer) {
  return is_leaf_buffer(buffer) ? std::string("L") + std::to_string(buffer) : std::string("N") + std::to_string(node_of_buffer(buffer));
}

inline std::string dim_text(int d) { return d == batch ? std::string("batch") : std::to_string(d); }

// Row-major index of (r, c) in a buffer of shape s; a dimension of size 1 is broadcast (its index is 0).
inline std::string index_text(dims s, const std::string& r, const std::string& c) {
  if (s.cols == batch) throw error("kiln cuda: a buffer with the batch in its columns cannot be indexed");
  const bool one_row = s.rows == 1, one_col = s.cols == 1;
  if (one_row && one_col) return "0";
  if (one_row) return c;
  if (one_col) return r;
  return "(long long)(" + r + ") * " + std::to_string(s.cols) + " + (" + c + ")";
}

// The value of an immediate node (folded into the kernels that use it) at row r (of the whole tensor: the
// batch row, not a tile's), column c.
inline std::string immediate_text(const node& n, const std::string& r, const std::string& c) {
  switch (n.kind) {
    case op::constant: return ops::num(n.k);
    case op::hyper: return std::string("h.v[") + std::to_string(n.leaf) + "]";
    case op::batch_size: return "(float)batch";
    case op::iota: return "(float)(" + c + ")";
    case op::random_uniform:  // the draw of element (r, c) of the node's shape (core/philox.hpp; km::uniform)
      return "km::uniform(h, " + std::to_string(static_cast<std::uint32_t>(n.k)) + "u, (unsigned long long)(" +
             index_text(n.shape, r, c) + "))";
    default: throw error(std::string("kiln cuda: '") + ops::name_of(n.kind) + "' is not an immediate");
  }
}

// How a kernel reads node `id` (materialized, or an immediate) at row r, column c of its domain. An immediate
// with a buffer (a contraction operand) is written there by its own kernel, like any materialized node.
using access_fn = std::function<std::string(int id, const std::string& r, const std::string& c)>;

// Reads straight from the node's global buffer, with batch rows indexed by r.
inline access_fn global_access(const plan& p, std::set<int>& used) {
  return [&p, &used](int id, const std::string& r, const std::string& c) {
    const node& n = p.at(id);
    if (ops::class_of(n.kind) == op_class::immediate && !p.materialized[id]) return immediate_text(n, r, c);
    const int b = buffer_of(p, id);
    used.insert(b);
    return buffer_name(b) + "[" + index_text(n.shape, r, c) + "]";
  };
}

inline std::string value_name(int id) { return std::string("v") + std::to_string(id); }

// The value of node `id` inside a body: its local if the body computes it, else a load.
inline std::string operand_text(const kernel_view& body, int id, const access_fn& load, const std::string& r,
                                const std::string& c) {
  return body.has(id) ? value_name(id) : load(id, r, c);
}

// How the ops' forward is written in CUDA source (ops::text_math): float math through the prelude's km::.
struct dialect {
  static constexpr std::string_view prefix = "km::", value_type = "float";
  static std::string constant(const std::string& literal) { return literal; }
};

// One `const float vN = …;` per body node, in topological order, at (r, c). row0: where r counts a tile's rows,
// the tile's first batch row (an immediate that depends on the row is computed at row0 + r); empty where r
// counts the whole tensor's rows.
inline std::string body_text(const plan& p, const kernel_view& body, const access_fn& load, const std::string& r,
                             const std::string& c, const std::string& indent, const std::string& row0 = "") {
  std::string out;
  for (int id : body.nodes) {
    const node& n = p.at(id);
    std::string value;
    ops::code_block locals{"", value_name(id), indent, 0};  // what the op's forward computes once (let)
    if (ops::class_of(n.kind) == op_class::immediate) {
      value = immediate_text(n, n.shape.rows == batch && !row0.empty() ? row0 + " + " + r : r, c);
    } else {
      ops::code args[3];
      for (int a = 0; a < ops::arity_of(n.kind); ++a) args[a] = {operand_text(body, n.in[a], load, r, c), &locals};
      ops::visit_op(n.kind, [&](auto o) {
        using O = decltype(o);
        if constexpr (O::cls == op_class::elementwise) value = ops::forward_of<O, ops::text_math<dialect>>(args, n.k).text;
        else throw error(std::string("kiln cuda: '") + O::name + "' inside an elementwise body");
      });
    }
    out += locals.lines + indent + "const float " + value_name(id) + " = " + value + ";  // " + node_text(p, id) + "\n";
  }
  return out;
}

// How a kernel writes node `id` at (r, c): returns the lvalue text.
using store_fn = std::function<std::string(int id, const std::string& r, const std::string& c)>;

inline store_fn global_store(const plan& p, std::set<int>& used) {
  return [&p, &used](int id, const std::string& r, const std::string& c) {
    const int b = buffer_of(p, id);
    used.insert(b);
    return buffer_name(b) + "[" + index_text(p.at(id).shape, r, c) + "]";
  };
}

// Stores every root (after the whole body is evaluated: roots assigned in place to a leaf may be read by
// other roots' bodies, which must see the old value).
inline std::string stores_text(const kernel_view& body, const store_fn& store, const std::string& r,
                               const std::string& c, const std::string& indent) {
  std::string out;
  for (int id : body.roots) out += indent + store(id, r, c) + " = " + value_name(id) + ";\n";
  return out;
}

// The plan's printed lines for kernel k, as a comment block.
inline std::string kernel_comment(const plan& p, int k, const std::string& indent) { return kernel_text(p, k, indent + "// "); }

// Element (i, j) of a contraction operand through an accessor (which takes source coordinates).
inline std::string operand_element(const matrix_operand& o, const access_fn& load, const std::string& i,
                                   const std::string& j) {
  return o.transposed ? load(o.source, j, i) : load(o.source, i, j);
}

}  // namespace kiln::cuda
