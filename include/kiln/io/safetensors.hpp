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
#include <kiln/io/json.hpp>

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

struct tensor {
  std::string dtype;                // "F32", "I64", ... (see safetensors_dtype_size)
  std::vector<std::int64_t> shape;  // empty = scalar (one element)
  std::vector<std::byte> bytes;     // little-endian elements, row-major

  // product(shape); 1 for a scalar. Assumes a valid shape (see checked_byte_count).
  std::uint64_t element_count() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }
  friend bool operator==(const tensor&, const tensor&) = default;
};

struct safetensors_content {
  std::map<std::string, tensor> tensors;
  std::map<std::string, std::string> metadata;
};

inline constexpr std::uint64_t safetensors_max_header = 100ull << 20;  // 100 MiB, as the reference reader

// Bytes per element of a safetensors dtype, 0 when the dtype is unknown.
inline std::size_t safetensors_dtype_size(std::string_view dtype) {
  static constexpr std::pair<std::string_view, std::size_t> sizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"I16", 2}, {"F16", 2},
      {"BF16", 2}, {"U32", 4}, {"I32", 4}, {"F32", 4},     {"U64", 8},     {"I64", 8}, {"F64", 8}};
  for (const auto& [name, size] : sizes)
    if (name == dtype) return size;
  return 0;
}

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

// product(shape) × element_size into `bytes`; false when a dimension is negative or the product exceeds 2^64
// (any zero dimension makes the product 0, however large the others are).
inline bool checked_byte_count(const std::vector<std::int64_t>& shape, std::uint64_t element_size,
                               std::uint64_t& bytes) {
  std::uint64_t n = element_size;
  bool overflow = false;
  for (auto d : shape) {
    if (d < 0) return false;
    const auto u = static_cast<std::uint64_t>(d);
    if (u == 0) {
      bytes = 0;
      return true;
    }
    if (n > UINT64_MAX / u) overflow = true;
    n *= u;
  }
  bytes = n;
  return !overflow;
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Copies elements between host order and little-endian (a no-op reorder on little-endian hosts).
inline void copy_little_endian(std::byte* dst, const std::byte* src, std::size_t count, std::size_t esize) {
  if (count == 0) return;  // empty vectors may hand out null pointers, which memcpy must not get
  std::memcpy(dst, src, count * esize);
  if constexpr (std::endian::native == std::endian::big)
    for (std::size_t i = 0; i < count; ++i) std::reverse(dst + i * esize, dst + (i + 1) * esize);
}

struct entry {
  std::string name;
  tensor t;
  std::uint64_t begin = 0, end = 0;
};

// Parses one tensor description {"dtype", "shape", "data_offsets"} of the header.
inline entry parse_entry(const std::string& file, const std::string& name, const json_value& v) {
  const std::string where = "'" + file + "': tensor '" + name + "'";
  if (!v.is(json_value::kind::object))
    throw format_error(where + ": expected an object {dtype, shape, data_offsets}, found " + json_kind_name(v.type));
  const json_value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
  for (const auto& [key, val] : v.members) {
    const json_value** slot = key == "dtype"          ? &dtype
                              : key == "shape"        ? &shape
                              : key == "data_offsets" ? &offsets
                                                      : nullptr;
    if (!slot) throw format_error(where + ": unknown key '" + key + "' (expected dtype, shape, data_offsets)");
    if (*slot) throw format_error(where + ": key '" + key + "' appears twice");
    *slot = &val;
  }
  if (!dtype) throw format_error(where + ": missing key 'dtype'");
  if (!shape) throw format_error(where + ": missing key 'shape'");
  if (!offsets) throw format_error(where + ": missing key 'data_offsets'");

  entry e;
  e.name = name;
  if (!dtype->is(json_value::kind::string))
    throw format_error(where + ": dtype must be a string, found " + json_kind_name(dtype->type));
  const std::size_t esize = safetensors_dtype_size(dtype->text);
  if (esize == 0)
    throw format_error(where + ": unknown dtype '" + dtype->text +
                       "' (known: BOOL U8 I8 F8_E4M3 F8_E5M2 U16 I16 F16 BF16 U32 I32 F32 U64 I64 F64)");
  e.t.dtype = dtype->text;

  if (!shape->is(json_value::kind::array))
    throw format_error(where + ": shape must be an array, found " + json_kind_name(shape->type));
  for (const auto& d : shape->items) {
    std::uint64_t n;
    if (!d.as_uint64(n) || n > static_cast<std::uint64_t>(INT64_MAX))
      throw format_error(where + ": shape entries must be non-negative integers below 2^63, found " +
                         (d.is(json_value::kind::number) ? d.text : std::string(json_kind_name(d.type))));
    e.t.shape.push_back(static_cast<std::int64_t>(n));
  }
  std::uint64_t bytes;
  if (!checked_byte_count(e.t.shape, esize, bytes))
    throw format_error(where + ": shape " + shape_text(e.t.shape) + " has more than 2^64 bytes");

  if (!offsets->is(json_value::kind::array) || offsets->items.size() != 2 || !offsets->items[0].as_uint64(e.begin) ||
      !offsets->items[1].as_uint64(e.end))
    throw format_error(where + ": data_offsets must be [begin, end] with non-negative integers");
  if (e.begin > e.end)
    throw format_error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                       "] end before they begin");
  if (e.end - e.begin != bytes)
    throw format_error(where + ": " + e.t.dtype + " shape " + shape_text(e.t.shape) + " needs " +
                       std::to_string(bytes) + " bytes but data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + "] hold " + std::to_string(e.end - e.begin));
  return e;
}

inline std::map<std::string, std::string> parse_metadata(const std::string& file, const json_value& v) {
  const std::string where = "'" + file + "': __metadata__";
  if (!v.is(json_value::kind::object))
    throw format_error(where + " must be an object of strings, found " + json_kind_name(v.type));
  std::map<std::string, std::string> out;
  for (const auto& [key, val] : v.members) {
    if (!val.is(json_value::kind::string))
      throw format_error(where + " value of '" + key + "' must be a string, found " + json_kind_name(val.type));
    if (!out.emplace(key, val.text).second) throw format_error(where + " key '" + key + "' appears twice");
  }
  return out;
}

}  // namespace safetensors_detail

// Parses a whole safetensors file held in memory; `name` (the file) is used in error messages.
inline safetensors_content parse_safetensors(std::string_view bytes, const std::string& name) {
  using namespace safetensors_detail;
  const std::string where = "'" + name + "'";
  if (bytes.size() < 8)
    throw format_error(where + ": too short for a safetensors file: 8 header-length bytes expected, " +
                       std::to_string(bytes.size()) + " found");
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
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
  const json_value root = parse_json(header, name, 8);  // error positions counted from the file start

  safetensors_content out;
  std::vector<entry> entries;
  bool seen_metadata = false;
  for (const auto& [key, val] : root.members) {
    if (key == "__metadata__") {
      if (seen_metadata) throw format_error(where + ": __metadata__ appears twice");
      seen_metadata = true;
      out.metadata = parse_metadata(name, val);
      continue;
    }
    if (out.tensors.count(key)) throw format_error(where + ": tensor '" + key + "' appears twice in the header");
    entries.push_back(parse_entry(name, key, val));
    out.tensors[key];  // reserve the name for the duplicate check; filled below
  }

  // The tensors, sorted by position, must tile [0, data_size): each begins where the previous one ended.
  const std::uint64_t data_size = bytes.size() - 8 - n;
  std::sort(entries.begin(), entries.end(),
            [](const entry& a, const entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t covered = 0;
  const entry* previous = nullptr;
  for (const auto& e : entries) {
    const std::string range = std::string("[") + std::to_string(e.begin) + ", " + std::to_string(e.end) + ")";
    if (e.end > data_size)
      throw format_error(where + ": tensor '" + e.name + "' data_offsets " + range + " run past the data section of " +
                         std::to_string(data_size) + " bytes");
    if (e.begin < covered)
      throw format_error(where + ": tensor '" + e.name + "' bytes " + range + " overlap tensor '" + previous->name +
                         "' which ends at " + std::to_string(covered));
    if (e.begin > covered)
      throw format_error(where + ": gap of " + std::to_string(e.begin - covered) + " unused bytes at data offset " +
                         std::to_string(covered) + ", before tensor '" + e.name + "'");
    covered = e.end;
    if (e.end > e.begin) previous = &e;
  }
  if (covered != data_size)
    throw format_error(where + ": " + std::to_string(data_size - covered) +
                       " trailing bytes after the last tensor (the data section has " + std::to_string(data_size) +
                       " bytes, the tensors cover " + std::to_string(covered) + ")");

  const std::byte* data = reinterpret_cast<const std::byte*>(bytes.data()) + 8 + n;
  for (auto& e : entries) {
    e.t.bytes.assign(data + e.begin, data + e.end);
    out.tensors[e.name] = std::move(e.t);
  }
  return out;
}

inline std::map<std::string, tensor> read_safetensors_bytes(std::string_view bytes, const std::string& name) {
  return parse_safetensors(bytes, name).tensors;
}
inline safetensors_content read_safetensors_content(const std::string& path) {
  return parse_safetensors(read_file(path), path);
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
        throw error("write_safetensors: metadata entry '" + k + "' is not valid UTF-8");
      if (!first_meta) header += ',';
      header += json_quote(k) + ":" + json_quote(v);
      first_meta = false;
    }
    header += "}";
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string what = "write_safetensors: tensor '" + name + "'";
    if (name == "__metadata__") throw error(what + ": the name is reserved for the metadata");
    if (!is_valid_utf8(name)) throw error(what + ": the name is not valid UTF-8");
    const std::size_t esize = safetensors_dtype_size(t.dtype);
    if (esize == 0) throw error(what + ": unknown dtype '" + t.dtype + "'");
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
