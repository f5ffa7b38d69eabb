#pragma once
// An ONNX model (ModelProto, IR version 8, opset 17) built node by node and serialized with io/protobuf.hpp.
// Field numbers are those of onnx/onnx.proto; only what an exported forward pass uses is here: nodes with int,
// ints and float attributes, float and int64 initializers, and graph inputs and outputs with static dimensions
// or the symbolic "batch".
#include <kiln/io/protobuf.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::io::onnx {

inline constexpr std::int64_t ir_version = 8;  // the IR of opset 17
inline constexpr std::int64_t opset = 17;
inline constexpr std::int64_t batch_dim = -1;  // a dimension written as the symbol "batch"

enum element_type : std::int64_t { float32 = 1, int64 = 7, boolean = 9 };

struct attribute {
  enum kind_t { int_kind, ints_kind, float_kind } kind = int_kind;
  std::string name;
  std::int64_t i = 0;
  std::vector<std::int64_t> ints;
  float f = 0;
  static attribute integer(std::string n, std::int64_t v) { return {int_kind, std::move(n), v, {}, 0}; }
  static attribute integers(std::string n, std::vector<std::int64_t> v) { return {ints_kind, std::move(n), 0, std::move(v), 0}; }
  static attribute real(std::string n, float v) { return {float_kind, std::move(n), 0, {}, v}; }
};

class model_builder {
 public:
  // Adds a node; returns the name of its (single) output, `output` or a fresh name.
  std::string node(const std::string& op_type, const std::vector<std::string>& inputs, const std::vector<attribute>& attributes = {},
                   std::string output = {}) {
    if (output.empty()) output = "t" + std::to_string(fresh_++);
    proto_writer n;
    for (const std::string& in : inputs) n.string(1, in);
    n.string(2, output);
    n.string(3, op_type + "_" + std::to_string(nodes_count_++));
    n.string(4, op_type);
    for (const attribute& a : attributes) {
      proto_writer w;
      w.string(1, a.name);
      if (a.kind == attribute::float_kind) w.float32(2, a.f).int64(20, 1);         // FLOAT
      else if (a.kind == attribute::int_kind) w.int64(3, a.i).int64(20, 2);        // INT
      else {
        for (std::int64_t v : a.ints) w.int64(8, v);                                // ints, unpacked (proto2)
        w.int64(20, 7);                                                             // INTS
      }
      n.message(5, w);
    }
    graph_.message(1, n);
    return output;
  }
  void initializer(const std::string& name, const std::vector<std::int64_t>& dims, std::span<const float> values) {
    proto_writer t;
    for (std::int64_t d : dims) t.int64(1, d);
    t.int64(2, float32).string(8, name).bytes(9, proto_writer::raw_floats(values));
    initializers_.message(5, t);
  }
  void initializer(const std::string& name, const std::vector<std::int64_t>& dims, std::span<const std::int64_t> values) {
    proto_writer t;
    for (std::int64_t d : dims) t.int64(1, d);
    t.int64(2, int64).string(8, name);
    for (std::int64_t v : values) t.int64(7, v);
    initializers_.message(5, t);
  }
  void input(const std::string& name, element_type type, const std::vector<std::int64_t>& dims) { inputs_.message(11, value_info(name, type, dims)); }
  void output(const std::string& name, element_type type, const std::vector<std::int64_t>& dims) { outputs_.message(12, value_info(name, type, dims)); }

  // The serialized ModelProto.
  std::string model(const std::string& graph_name, const std::string& doc) const {
    // GraphProto: nodes (1), name (2), initializers (5), doc (10), inputs (11), outputs (12)
    std::string body = graph_.str();
    proto_writer name;
    name.string(2, graph_name);
    body += name.str() + initializers_.str();
    proto_writer d;
    d.string(10, doc);
    body += d.str() + inputs_.str() + outputs_.str();
    proto_writer m;
    proto_writer opset_id;
    opset_id.string(1, "").int64(2, opset);
    m.int64(1, ir_version).string(2, "kiln").string(3, "1").message(8, opset_id);
    m.bytes(7, body);
    return m.str();
  }

 private:
  static proto_writer value_info(const std::string& name, element_type type, const std::vector<std::int64_t>& dims) {
    proto_writer shape;
    for (std::int64_t d : dims) {
      proto_writer dim;
      if (d == batch_dim) dim.string(2, "batch");
      else dim.int64(1, d);
      shape.message(1, dim);
    }
    proto_writer tensor;
    tensor.int64(1, type).message(2, shape);
    proto_writer type_proto;
    type_proto.message(1, tensor);
    proto_writer v;
    v.string(1, name).message(2, type_proto);
    return v;
  }

  proto_writer graph_, initializers_, inputs_, outputs_;
  int fresh_ = 0, nodes_count_ = 0;
};

}  // namespace kiln::io::onnx
