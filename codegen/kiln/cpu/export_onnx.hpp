#pragma once
// kiln::cpu::export_onnx(f, "model.onnx"): a function's forward graph as an ONNX model (IR 8, opset 17) with its
// parameters as initializers under their PyTorch names and shapes (fc1.weight [128, 784], conv1.weight
// [32, 1, 3, 3]). Inputs are named as the model's ("x": float [batch, width]; a tokens input: int64 [batch, count]);
// the output is "output", [batch, width].
//
// Every kiln value is a 2-D tensor [rows, cols] in ONNX too (rows the symbolic batch or fixed); a convolution or a
// pooling reshapes its operand to NCHW around the ONNX op, an axis op to the row's tensor shape. One kiln node
// becomes one ONNX node where ONNX has the op (Gemm-free: MatMul, then the bias Add), a few otherwise
// (expm1 = Exp − 1, a comparison = Greater then Cast to float). An op with no forward meaning in a trained model
// (the backward-only window ops, random draws, hyperparameters) is refused at export with its name.
#include <kiln/cpu/function.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/io/onnx_builder.hpp>
#include <kiln/ops/window_math.hpp>
#include <kiln/train/checkpoint.hpp>

#include <map>
#include <span>
#include <string>
#include <vector>

namespace kiln::cpu {

namespace onnx_detail {

using io::onnx::attribute;
using ints = std::vector<std::int64_t>;

template <class Values>
class translator {
 public:
  translator(const graph& g, Values values) : g_(g), values_(std::move(values)), value_(static_cast<std::size_t>(g.size)) {}

  std::string model(const std::string& doc) {
    for (int i = 0; i < g_.size; ++i) value_[static_cast<std::size_t>(i)] = translate(i);
    const int out = g_.outputs[0].node;
    m_.node("Identity", {value_[static_cast<std::size_t>(out)]}, {}, "output");
    m_.output("output", io::onnx::float32, dims_of(g_.nodes[out].shape));
    return m_.model("kiln", doc);
  }

 private:
  static std::int64_t extent(int n) { return n == batch ? io::onnx::batch_dim : n; }
  static ints dims_of(dims s) { return {extent(s.rows), extent(s.cols)}; }
  // a Reshape target: the batch as -1 (one unknown dimension at most)
  static ints target(dims s) { return {s.rows == batch ? -1 : s.rows, s.cols}; }

  std::string constant(const ints& v) {
    const auto it = int_constants_.find(v);
    if (it != int_constants_.end()) return it->second;
    const std::string name = "shape" + std::to_string(int_constants_.size());
    m_.initializer(name, {static_cast<std::int64_t>(v.size())}, std::span<const std::int64_t>(v));
    return int_constants_[v] = name;
  }
  std::string scalar(float v) {
    const std::string name = "scalar" + std::to_string(scalars_++);
    m_.initializer(name, {1, 1}, std::span<const float>(&v, 1));
    return name;
  }
  std::string reshape(const std::string& x, const ints& shape) { return m_.node("Reshape", {x, constant(shape)}); }
  std::string cast(const std::string& x, io::onnx::element_type to) { return m_.node("Cast", {x}, {attribute::integer("to", to)}); }

  // int64 [1]: the batch size, read off the first batched input
  std::string batch_size() {
    if (!batch_.empty()) return batch_;
    for (int i = 0; i < g_.size; ++i)
      if (g_.nodes[i].kind == op::input && g_.nodes[i].shape.rows == batch) {
        const std::string shape = m_.node("Shape", {input_name(i)});
        return batch_ = m_.node("Slice", {shape, constant({0}), constant({1})});
      }
    throw error("kiln::export_onnx: the model's batch size is used but no input has a batch dimension");
  }
  // x stretched to shape s (numpy broadcasting; the batch from the inputs)
  std::string expand(const std::string& x, dims s) {
    const std::string shape =
        s.rows == batch ? m_.node("Concat", {batch_size(), constant({s.cols})}, {attribute::integer("axis", 0)}) : constant({s.rows, s.cols});
    return m_.node("Expand", {x, shape});
  }

  std::string input_name(int id) const { return std::string(g_.leaves[g_.nodes[id].leaf].name.view()); }
  const std::string& value(int id) const { return value_[static_cast<std::size_t>(id)]; }
  // an operand as int64 indices (a tokens input as given, anything else cast)
  std::string indices(int id) {
    const node& n = g_.nodes[id];
    if (n.kind == op::input && g_.leaves[n.leaf].kind == leaf_kind::labels) return input_name(id);
    return cast(value(id), io::onnx::int64);
  }
  // an operand reshaped to NCHW, [-1, c, h, w]
  std::string nchw(int id, int c, int h, int w) { return reshape(value(id), {-1, c, h, w}); }
  // a window op's weight as [O, C/groups, kh, kw]: a parameter under its own 4-D name, anything else reshaped
  std::string conv_weight(int id, const window& w) {
    const node& n = g_.nodes[id];
    if ((n.kind == op::param || n.kind == op::state) && g_.leaves[n.leaf].rank == 4) return input_name(id);
    return reshape(value(id), {w.o, w.c / w.groups, w.kh, w.kw});
  }
  std::vector<attribute> window_attributes(const window& w, bool dilations) {
    std::vector<attribute> a{attribute::integers("kernel_shape", {w.kh, w.kw}), attribute::integers("strides", {w.sh, w.sw}),
                             attribute::integers("pads", {w.ph, w.pw, w.ph, w.pw})};
    if (dilations) a.push_back(attribute::integers("dilations", {w.dh, w.dw}));
    return a;
  }
  // [-1, in…] for an axis op's operand
  ints row_tensor(const int* d, int rank) const {
    ints s{-1};
    for (int k = 0; k < rank; ++k) s.push_back(d[k]);
    return s;
  }

  [[noreturn]] void unsupported(const node& n) const {
    throw error(std::string("kiln::export_onnx: op '") + ops::name_of(n.kind) +
                "' has no ONNX form here (backward-only window ops, random draws and hyperparameters are not exported)");
  }

  std::string unary(const char* op_type, int id) { return m_.node(op_type, {value(g_.nodes[id].in[0])}); }
  std::string binary(const char* op_type, int id) { return m_.node(op_type, {value(g_.nodes[id].in[0]), value(g_.nodes[id].in[1])}); }
  std::string comparison(const char* op_type, int id) { return cast(binary(op_type, id), io::onnx::float32); }

  std::string translate(int id) {
    const node& n = g_.nodes[id];
    const auto in = [&](int k) { return value(n.in[k]); };
    switch (n.kind) {
      case op::input: {
        const leaf_info& l = g_.leaves[n.leaf];
        if (l.kind == leaf_kind::labels) {
          m_.input(input_name(id), io::onnx::int64, dims_of(n.shape));
          return cast(input_name(id), io::onnx::float32);
        }
        m_.input(input_name(id), io::onnx::float32, dims_of(n.shape));
        return input_name(id);
      }
      case op::param:
      case op::state: {
        const leaf_info& l = g_.leaves[n.leaf];
        const std::span<const float> v = values_(n.leaf);
        const auto shape = train::torch_shape(l);
        m_.initializer(input_name(id), shape, v);
        if (shape == ints{n.shape.rows, n.shape.cols}) return input_name(id);
        return reshape(input_name(id), target(n.shape));
      }
      case op::constant: {
        const std::string c = scalar(static_cast<float>(n.k));
        return n.shape.rows == 1 && n.shape.cols == 1 ? c : expand(c, n.shape);
      }
      case op::batch_size: return reshape(cast(batch_size(), io::onnx::float32), {1, 1});
      case op::iota: {
        std::vector<float> cols(static_cast<std::size_t>(n.shape.cols));
        for (std::size_t c = 0; c < cols.size(); ++c) cols[c] = static_cast<float>(c);
        const std::string name = "iota" + std::to_string(id);
        m_.initializer(name, {1, n.shape.cols}, std::span<const float>(cols));
        return n.shape.rows == 1 ? name : expand(name, n.shape);
      }
      case op::neg: return unary("Neg", id);
      case op::exp: return unary("Exp", id);
      case op::expm1: return m_.node("Sub", {unary("Exp", id), scalar(1.0f)});
      case op::log: return unary("Log", id);
      case op::log1p: return m_.node("Log", {m_.node("Add", {in(0), scalar(1.0f)})});
      case op::sqrt: return unary("Sqrt", id);
      case op::abs: return unary("Abs", id);
      case op::tanh: return unary("Tanh", id);
      case op::sigmoid: return unary("Sigmoid", id);
      case op::erf: return unary("Erf", id);
      case op::softplus: return unary("Softplus", id);
      case op::recip: return unary("Reciprocal", id);
      case op::pow_c: return m_.node("Pow", {in(0), scalar(static_cast<float>(n.k))});
      case op::max_c: return m_.node("Max", {in(0), scalar(static_cast<float>(n.k))});
      case op::min_c: return m_.node("Min", {in(0), scalar(static_cast<float>(n.k))});
      case op::stop_gradient: return unary("Identity", id);
      case op::broadcast_to: return expand(in(0), n.shape);
      case op::add: return binary("Add", id);
      case op::sub: return binary("Sub", id);
      case op::mul: return binary("Mul", id);
      case op::div: return binary("Div", id);
      case op::gt: return comparison("Greater", id);
      case op::ge: return comparison("GreaterOrEqual", id);
      case op::eq: return comparison("Equal", id);
      case op::where: return m_.node("Where", {cast(in(0), io::onnx::boolean), in(1), in(2)});
      case op::sum_rows: return m_.node("ReduceSum", {in(0), constant({0})}, {attribute::integer("keepdims", 1)});
      case op::sum_cols: return m_.node("ReduceSum", {in(0), constant({1})}, {attribute::integer("keepdims", 1)});
      case op::max_cols: return m_.node("ReduceMax", {in(0)}, {attribute::integers("axes", {1}), attribute::integer("keepdims", 1)});
      case op::transpose: return m_.node("Transpose", {in(0)}, {attribute::integers("perm", {1, 0})});
      case op::matmul: return binary("MatMul", id);
      case op::gather: {  // rows idx of the table, side by side: [R, C] indices → [R, C, D] → [R, C·D]
        const std::string rows = m_.node("Gather", {in(0), indices(n.in[1])}, {attribute::integer("axis", 0)});
        return reshape(rows, target(n.shape));
      }
      default: break;
    }
    if (!ops::is_window_op(n.kind)) unsupported(n);
    const window& w = g_.windows[n.leaf];
    const ax_shape ax{w.ax};
    switch (n.kind) {
      case op::conv2d: {
        const std::string y = m_.node("Conv", {nchw(n.in[0], w.c, w.h, w.w), conv_weight(n.in[1], w)},
                                      [&] {
                                        auto a = window_attributes(w, true);
                                        a.push_back(attribute::integer("group", w.groups));
                                        return a;
                                      }());
        return reshape(y, target(n.shape));
      }
      case op::max_pool2d:
        return reshape(m_.node("MaxPool", {nchw(n.in[0], w.c, w.h, w.w)}, window_attributes(w, true)), target(n.shape));
      case op::avg_pool2d: {
        if (w.dh != 1 || w.dw != 1) unsupported(n);
        auto a = window_attributes(w, false);
        a.push_back(attribute::integer("count_include_pad", 1));  // PyTorch's default: padding counts as zeros
        return reshape(m_.node("AveragePool", {nchw(n.in[0], w.c, w.h, w.w)}, a), target(n.shape));
      }
      case op::channel_sum: {  // [R, C·L] → [R, C, L] → Σ_L → [R, C]
        const std::string x = reshape(in(0), {-1, w.c, static_cast<std::int64_t>(w.h) * w.w});
        return m_.node("ReduceSum", {x, constant({2})}, {attribute::integer("keepdims", 0)});
      }
      case op::channel_repeat: {  // [R, C] → [R, C, 1] → [R, C, L] → [R, C·L]
        const std::string x = reshape(in(0), {-1, w.c, 1});
        return reshape(m_.node("Expand", {x, constant({1, w.c, static_cast<std::int64_t>(w.h) * w.w})}), target(n.shape));
      }
      case op::permute: {
        ints perm{0};
        for (int k = 0; k < ax.g.rank; ++k) perm.push_back(1 + ax.g.perm[k]);
        const std::string x = reshape(in(0), row_tensor(ax.g.in, ax.g.rank));
        return reshape(m_.node("Transpose", {x}, {attribute::integers("perm", perm)}), target(n.shape));
      }
      case op::crop: {
        ints starts, ends, axes;
        for (int k = 0; k < ax.g.rank; ++k) {
          starts.push_back(ax.g.begin[k]);
          ends.push_back(ax.g.begin[k] + ax.g.out[k]);
          axes.push_back(1 + k);
        }
        const std::string x = reshape(in(0), row_tensor(ax.g.in, ax.g.rank));
        return reshape(m_.node("Slice", {x, constant(starts), constant(ends), constant(axes)}), target(n.shape));
      }
      case op::pad: {
        ints pads(static_cast<std::size_t>(2 * (ax.g.rank + 1)), 0);
        for (int k = 0; k < ax.g.rank; ++k) {
          pads[static_cast<std::size_t>(1 + k)] = ax.g.begin[k];
          pads[static_cast<std::size_t>(ax.g.rank + 2 + k)] = ax.g.out[k] - ax.g.in[k] - ax.g.begin[k];
        }
        const std::string x = reshape(in(0), row_tensor(ax.g.in, ax.g.rank));
        return reshape(m_.node("Pad", {x, constant(pads)}), target(n.shape));
      }
      case op::broadcast_axes: {
        ints shape{1};
        for (int k = 0; k < ax.g.rank; ++k) shape.push_back(ax.g.out[k]);
        const std::string x = reshape(in(0), row_tensor(ax.g.in, ax.g.rank));
        return reshape(m_.node("Expand", {x, constant(shape)}), target(n.shape));
      }
      case op::sum_to:
      case op::max_to: {
        ints axes;
        for (int k = 0; k < ax.g.rank; ++k)
          if (ax.g.out[k] == 1 && ax.g.in[k] > 1) axes.push_back(1 + k);
        const std::string x = reshape(in(0), row_tensor(ax.g.in, ax.g.rank));
        const std::string r = n.kind == op::sum_to
                                  ? m_.node("ReduceSum", {x, constant(axes)}, {attribute::integer("keepdims", 1)})
                                  : m_.node("ReduceMax", {x}, {attribute::integers("axes", axes), attribute::integer("keepdims", 1)});
        return reshape(r, target(n.shape));
      }
      case op::reshape: return reshape(in(0), target(n.shape));
      default: unsupported(n);
    }
  }
  struct ax_shape { axes_geometry g; };

  const graph& g_;
  Values values_;
  io::onnx::model_builder m_;
  std::vector<std::string> value_;  // by node: the ONNX name of its [rows, cols] value
  std::map<ints, std::string> int_constants_;
  int scalars_ = 0;
  std::string batch_;
};

}  // namespace onnx_detail

// The ONNX model's bytes for function f (its current parameters).
template <class Model, fusion Mode>
std::string export_onnx_bytes(const function<Model, Mode>& f) {
  using F = function<Model, Mode>;
  const graph& g = F::function_graph();
  auto values = [&](int leaf) { return f.param(g.leaves[leaf].name.view()); };
  return onnx_detail::translator<decltype(values)>(g, values).model("exported by kiln::cpu::export_onnx");
}

// Writes the model (atomically).
template <class Model, fusion Mode>
void export_onnx(const function<Model, Mode>& f, const std::string& path) {
  io::write_file_atomic(path, export_onnx_bytes(f));
}

}  // namespace kiln::cpu
