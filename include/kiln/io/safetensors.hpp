#pragma once
// safetensors files (the Hugging Face tensor container), read and written with full validation.
//
// Layout: u64 little-endian N | N bytes of JSON header | data section.
// Header: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//          "__metadata__": {"<key>": "<value>", ...}}   (metadata optional, string values only)
// Offsets are relative to the data section. A valid file's tensors tile the data section exactly: no overlap,
// no gap, no trailing bytes; each tensor's byte count is product(shape) × dtype size; data is little-endian.
// The writer sorts tensors by name, lays the data out in that order, puts __metadata__ first and pads the header
// with spaces to a multiple of 8 bytes (so the data section is 8-byte aligned), and writes atomically.
#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/io/file_type.hpp>
#include <kiln/io/json.hpp>
#include <kiln/io/mapped_file.hpp>
#include <kiln/io/printable.hpp>
#include <kiln/io/safetensors_header.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::io {

struct safetensors_content {
  std::map<std::string, tensor> tensors;
  std::map<std::string, std::string> metadata;
};

inline constexpr std::uint64_t safetensors_max_header = 100ull << 20;  // 100 MiB, as the reference reader

// The dtype string for a C++ element type.
template <class T>
constexpr std::string_view safetensors_dtype_of() {
  if constexpr (std::is_same_v<T, float>) return "F32";
  else if constexpr (std::is_same_v<T, double>) return "F64";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "I64";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "I32";
  else if constexpr (std::is_same_v<T, std::int16_t>) return "I16";
  else if constexpr (std::is_same_v<T, std::int8_t>) return "I8";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "U64";
  else if constexpr (std::is_same_v<T, std::uint32_t>) return "U32";
  else if constexpr (std::is_same_v<T, std::uint16_t>) return "U16";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "U8";
  else static_assert(sizeof(T) == 0, "safetensors_dtype_of: no safetensors dtype for this C++ type");
}

namespace safetensors_detail {

// Copies elements between host order and little-endian (a no-op reorder on little-endian hosts).
inline void copy_little_endian(std::byte* dst, const std::byte* src, std::size_t count, std::size_t esize) {
  if (count == 0) return;  // empty vectors may hand out null pointers, which memcpy must not get
  std::memcpy(dst, src, count * esize);
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i < count; ++i) std::reverse(dst + i * esize, dst + (i + 1) * esize);
}

}  // namespace safetensors_detail

// Parses a whole safetensors file held in memory (or mapped); `name` (the file) is used in error messages.
// Reads only what it keeps: the 8 length bytes are checked before the header is looked at, the header before
// any tensor, and each tensor's bytes are copied once from where they lie.
inline safetensors_content parse_safetensors(std::string_view bytes, const std::string& name) {
  using namespace safetensors_detail;
  const std::string where = quote_text(name);
  // A file of another kind fails one of the first checks below; sniffing only then keeps a valid file whose
  // length bytes happen to look like a magic (e.g. "PK\3\4" is a 67 MB header length) readable.
  auto wrong_type = [&] { return wrong_type_message(bytes, where, "a safetensors file"); };
  if (bytes.size() < 8) {
    if (auto msg = wrong_type(); !msg.empty()) throw format_error(msg);
    throw format_error(where + ": too short for a safetensors file: 8 header-length bytes expected, " +
                       std::to_string(bytes.size()) + " found");
  }
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  if (n > safetensors_max_header || n > bytes.size() - 8 || bytes.size() == 8 || bytes[8] != '{')
    if (auto msg = wrong_type(); !msg.empty()) throw format_error(msg);
  if (n > safetensors_max_header)
    throw format_error(where + ": header length " + std::to_string(n) + " exceeds the limit of " +
                       std::to_string(safetensors_max_header) + " bytes");
  if (n > bytes.size() - 8)
    throw format_error(where + ": header length " + std::to_string(n) + " but only " +
                       std::to_string(bytes.size() - 8) + " bytes follow the length field");
  const std::string_view header = bytes.substr(8, n);
  if (header.empty() || header[0] != '{')
    throw format_error(where + ": the JSON header must start with '{'" +
                       (header.empty() ? std::string(" (it is empty)") : ""));
  header_table table = read_header(header, name, 8);  // error positions counted from the file start
  std::vector<entry>& entries = table.entries;

  // The tensors, sorted by position, must tile [0, data_size): each begins where the previous one ended.
  const std::uint64_t data_size = bytes.size() - 8 - n;
  std::sort(entries.begin(), entries.end(),
            [](const entry& a, const entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t covered = 0;
  const entry* previous = nullptr;
  for (const auto& e : entries) {
    const std::string range = std::string("[") + std::to_string(e.begin) + ", " + std::to_string(e.end) + ")";
    if (e.end > data_size)
      throw format_error(where + ": tensor " + quote_text(e.name) + " data_offsets " + range +
                         " run past the data section of " + std::to_string(data_size) + " bytes");
    if (e.begin < covered)
      throw format_error(where + ": tensor " + quote_text(e.name) + " bytes " + range + " overlap tensor " +
                         quote_text(previous->name) + " which ends at " + std::to_string(covered));
    if (e.begin > covered)
      throw format_error(where + ": gap of " + std::to_string(e.begin - covered) + " unused bytes at data offset " +
                         std::to_string(covered) + ", before tensor " + quote_text(e.name));
    covered = e.end;
    if (e.end > e.begin) previous = &e;
  }
  if (covered != data_size)
    throw format_error(where + ": " + std::to_string(data_size - covered) +
                       " trailing bytes after the last tensor (the data section has " + std::to_string(data_size) +
                       " bytes, the tensors cover " + std::to_string(covered) + ")");

  safetensors_content out;
  out.metadata = std::move(table.metadata);
  const std::byte* data = reinterpret_cast<const std::byte*>(bytes.data()) + 8 + n;
  for (auto& e : entries) {
    e.t.bytes.assign(data + e.begin, data + e.end);
    out.tensors.emplace(std::move(e.name), std::move(e.t));
  }
  return out;
}

inline std::map<std::string, tensor> read_safetensors_bytes(std::string_view bytes, const std::string& name) {
  return parse_safetensors(bytes, name).tensors;
}
inline safetensors_content read_safetensors_content(const std::string& path) {
  const mapped_file file(path);
  return parse_safetensors(file.bytes(), path);
}
inline std::map<std::string, tensor> read_safetensors(const std::string& path) {
  return read_safetensors_content(path).tensors;
}

// The bytes of a safetensors file. Throws kiln::error for a tensor the format cannot hold (unknown dtype,
// reserved or non-UTF-8 name) and shape_error when a tensor's byte count does not match its shape.
inline std::string serialize_safetensors(const std::map<std::string, tensor>& tensors,
                                         const std::map<std::string, std::string>& metadata = {}) {
  using safetensors_detail::shape_text;
  std::string header = "{";
  bool first = true;
  auto comma = [&] {
    if (!first) header += ",";
    first = false;
  };
  if (!metadata.empty()) {
    comma();
    header += "\"__metadata__\":{";
    bool first_meta = true;
    for (const auto& [k, v] : metadata) {
      if (!is_valid_utf8(k) || !is_valid_utf8(v))
        throw error("write_safetensors: metadata entry " + quote_text(k) + " is not valid UTF-8");
      if (!first_meta) header += ',';
      header += json_quote(k) + ":" + json_quote(v);
      first_meta = false;
    }
    header += "}";
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string what = "write_safetensors: tensor " + quote_text(name);
    if (name == "__metadata__") throw error(what + ": the name is reserved for the metadata");
    if (!is_valid_utf8(name)) throw error(what + ": the name is not valid UTF-8");
    const std::size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) throw error(what + ": unknown dtype " + quote_text(t.dtype));
    std::uint64_t need;
    if (!safetensors_detail::checked_byte_count(t.shape, esize, need))
      throw shape_error(what + ": shape " + shape_text(t.shape) + " has a negative dimension or more than 2^64 bytes");
    if (need != t.bytes.size())
      throw shape_error(what + ": " + t.dtype + " shape " + shape_text(t.shape) + " needs " + std::to_string(need) +
                        " bytes, found " + std::to_string(t.bytes.size()));
    comma();
    header += json_quote(name) + ":{\"dtype\":" + json_quote(t.dtype) + ",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += std::string("],\"data_offsets\":[") + std::to_string(offset) + "," +
              std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // data section starts 8-byte aligned

  std::string out;
  out.reserve(8 + header.size() + offset);
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((header.size() >> (8 * k)) & 0xFF));
  out += header;
  for (const auto& [name, t] : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

inline void write_safetensors(const std::string& path, const std::map<std::string, tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

// ---- typed convenience

// A tensor of `shape` holding `values` (host order in, little-endian stored).
template <class T>
tensor make_tensor(std::vector<std::int64_t> shape, std::span<const T> values) {
  tensor t{std::string(safetensors_dtype_of<T>()), std::move(shape), {}};
  std::uint64_t need;
  if (!safetensors_detail::checked_byte_count(t.shape, sizeof(T), need))
    throw shape_error("make_tensor: shape " + safetensors_detail::shape_text(t.shape) +
                      " has a negative dimension or more than 2^64 bytes");
  if (need != values.size() * sizeof(T))
    throw shape_error("make_tensor: shape " + safetensors_detail::shape_text(t.shape) + " holds " +
                      std::to_string(t.element_count()) + " elements, " + std::to_string(values.size()) + " given");
  t.bytes.resize(values.size() * sizeof(T));
  safetensors_detail::copy_little_endian(t.bytes.data(), reinterpret_cast<const std::byte*>(values.data()),
                                         values.size(), sizeof(T));
  return t;
}
inline tensor make_f32(std::vector<std::int64_t> shape, std::span<const float> values) {
  return make_tensor<float>(std::move(shape), values);
}
inline tensor make_i64(std::vector<std::int64_t> shape, std::span<const std::int64_t> values) {
  return make_tensor<std::int64_t>(std::move(shape), values);
}
inline tensor make_i32(std::vector<std::int64_t> shape, std::span<const std::int32_t> values) {
  return make_tensor<std::int32_t>(std::move(shape), values);
}

// The elements of `t` as T; format_error when t's dtype is not T's (`what` names the tensor in the message).
template <class T>
std::vector<T> tensor_values(const tensor& t, std::string_view what = "tensor") {
  constexpr std::string_view want = safetensors_dtype_of<T>();
  if (t.dtype != want)
    throw format_error(std::string(what) + ": dtype is " + t.dtype + ", expected " + std::string(want));
  std::uint64_t need;
  if (!safetensors_detail::checked_byte_count(t.shape, sizeof(T), need) || need != t.bytes.size())
    throw format_error(std::string(what) + ": " + std::to_string(t.bytes.size()) + " bytes do not match shape " +
                       safetensors_detail::shape_text(t.shape));
  std::vector<T> out(t.bytes.size() / sizeof(T));
  safetensors_detail::copy_little_endian(reinterpret_cast<std::byte*>(out.data()), t.bytes.data(), out.size(),
                                         sizeof(T));
  return out;
}
inline std::vector<float> values_f32(const tensor& t, std::string_view what = "tensor") {
  return tensor_values<float>(t, what);
}
inline std::vector<std::int64_t> values_i64(const tensor& t, std::string_view what = "tensor") {
  return tensor_values<std::int64_t>(t, what);
}
inline std::vector<std::int32_t> values_i32(const tensor& t, std::string_view what = "tensor") {
  return tensor_values<std::int32_t>(t, what);
}

}  // namespace kiln::io
