#pragma once
// The protocol-buffers wire format, writing only: enough to emit a message whose schema is known at the call site
// (ONNX's ModelProto, io/onnx.hpp). A message is its fields in the order written: a key (field number << 3 | wire
// type) as a varint, then a varint (integers), 4 little-endian bytes (float), or a length-delimited payload
// (strings, bytes, nested messages, packed repeated numbers). Writing it ourselves keeps the export free of a
// protobuf library and of generated code; the ONNX checker and ONNX Runtime read the result in the tests.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace kiln::io {

class proto_writer {
 public:
  enum wire : std::uint32_t { varint_type = 0, fixed64_type = 1, length_type = 2, fixed32_type = 5 };

  proto_writer& int64(int field, std::int64_t v) {
    key(field, varint_type);
    varint(static_cast<std::uint64_t>(v));  // negative values take 10 bytes, as protobuf's int64
    return *this;
  }
  proto_writer& float32(int field, float v) {
    key(field, fixed32_type);
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 4; ++i) bytes_ += static_cast<char>((bits >> (8 * i)) & 0xFF);
    return *this;
  }
  proto_writer& bytes(int field, std::string_view b) {
    key(field, length_type);
    varint(b.size());
    bytes_.append(b.data(), b.size());
    return *this;
  }
  proto_writer& string(int field, std::string_view s) { return bytes(field, s); }
  proto_writer& message(int field, const proto_writer& m) { return bytes(field, m.bytes_); }
  proto_writer& packed_int64(int field, std::span<const std::int64_t> values) {
    proto_writer p;
    for (std::int64_t v : values) p.varint(static_cast<std::uint64_t>(v));
    return bytes(field, p.bytes_);
  }
  // floats as little-endian bytes (ONNX's raw_data)
  static std::string raw_floats(std::span<const float> values) {
    std::string s;
    s.reserve(values.size() * 4);
    for (float v : values) {
      std::uint32_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      for (int i = 0; i < 4; ++i) s += static_cast<char>((bits >> (8 * i)) & 0xFF);
    }
    return s;
  }
  const std::string& str() const { return bytes_; }

 private:
  void key(int field, wire w) { varint((static_cast<std::uint64_t>(field) << 3) | w); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      bytes_ += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    bytes_ += static_cast<char>(v);
  }
  std::string bytes_;
};

}  // namespace kiln::io
