#pragma once
// The safetensors JSON header read as a stream of SAX events (nlohmann-json's parser): every rule is checked
// when its value arrives and only the tensor table is kept, so memory follows the table, not the JSON text,
// and a hostile header (12 M numbers where an object belongs) is rejected at its first wrong value.
#include <kiln/core/error.hpp>
#include <kiln/io/json.hpp>
#include <kiln/io/printable.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
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

// More dimensions than any framework makes (PyTorch stops at 64); without a bound a shape of millions of
// zeros would be a valid empty tensor whose shape vector alone costs 8 bytes per digit of the header.
inline constexpr std::size_t safetensors_max_rank = 64;

// Bytes per element of a safetensors dtype, 0 when the dtype is unknown.
inline std::size_t safetensors_dtype_size(std::string_view dtype) {
  static constexpr std::pair<std::string_view, std::size_t> sizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"U16", 2}, {"I16", 2}, {"F16", 2},
      {"BF16", 2}, {"U32", 4}, {"I32", 4}, {"F32", 4},     {"U64", 8},     {"I64", 8}, {"F64", 8}};
  for (const auto& [name, size] : sizes)
    if (name == dtype) return size;
  return 0;
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

struct entry {
  std::string name;
  tensor t;
  std::uint64_t begin = 0, end = 0;
};

struct header_table {
  std::vector<entry> entries;  // in file order
  std::map<std::string, std::string> metadata;
};

// The SAX handler nlohmann::json::sax_parse calls; throws format_error at the first rule broken.
class header_reader {
  using json = nlohmann::json;

 public:
  header_reader(const std::string& file, std::size_t base_offset) : file_(file), base_(base_offset) {}
  header_table take() { return std::move(table_); }

  bool null() { return other("null"); }
  bool boolean(bool) { return other("a boolean"); }
  bool number_integer(json::number_integer_t v) { return number(std::to_string(v), false, 0); }
  bool number_unsigned(json::number_unsigned_t v) { return number(std::to_string(v), true, v); }
  bool number_float(json::number_float_t, const json::string_t& text) { return number(text, false, 0); }
  bool binary(json::binary_t&) { return other("binary data"); }  // never produced by JSON text
  bool string(json::string_t& s) {
    if (state_ == at::meta_value) {
      if (!table_.metadata.emplace(key_, s).second)
        throw format_error(meta_where() + " key " + quote_text(key_) + " appears twice");
      state_ = at::meta_key;
      return true;
    }
    if (state_ == at::dtype) {
      if (safetensors_dtype_size(s) == 0)
        throw format_error(tensor_where() + ": unknown dtype " + quote_text(s) +
                           " (known: BOOL U8 I8 F8_E4M3 F8_E5M2 U16 I16 F16 BF16 U32 I32 F32 U64 I64 F64)");
      cur_.t.dtype = std::move(s);
      state_ = at::entry_key;
      return true;
    }
    return other("a string");
  }
  bool start_object(std::size_t) {
    switch (state_) {
      case at::root: state_ = at::root_key; return true;
      case at::meta_start: state_ = at::meta_key; return true;
      case at::entry_start: state_ = at::entry_key; return true;
      default: return other("an object");
    }
  }
  bool start_array(std::size_t) {
    if (state_ == at::shape_start) state_ = at::shape_item;
    else if (state_ == at::offsets_start) state_ = at::offsets_item, offsets_seen_ = 0;
    else return other("an array");
    return true;
  }
  bool end_array() {
    if (state_ == at::offsets_item && offsets_seen_ != 2) bad_offsets();
    state_ = at::entry_key;  // only shape and data_offsets arrays are ever opened
    return true;
  }
  bool key(json::string_t& k) {
    if (state_ == at::meta_key) {
      key_ = std::move(k);
      state_ = at::meta_value;
    } else if (state_ == at::entry_key) {
      entry_key(k);
    } else if (k == "__metadata__") {
      if (seen_metadata_) throw format_error(quote_text(file_) + ": __metadata__ appears twice");
      seen_metadata_ = true;
      state_ = at::meta_start;
    } else {
      cur_ = entry{};
      cur_.name = std::move(k);
      have_dtype_ = have_shape_ = have_offsets_ = false;
      state_ = at::entry_start;
    }
    return true;
  }
  bool end_object() {
    if (state_ == at::meta_key) state_ = at::root_key;
    else if (state_ == at::entry_key) finish_entry();
    else state_ = at::done;  // the root
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    json_detail::throw_syntax_error(file_, base_, position, ex);
  }

 private:
  enum class at {
    root, root_key, meta_start, meta_key, meta_value, entry_start, entry_key,
    dtype, shape_start, shape_item, offsets_start, offsets_item, done
  };

  std::string tensor_where() const { return quote_text(file_) + ": tensor " + quote_text(cur_.name); }
  std::string meta_where() const { return quote_text(file_) + ": __metadata__"; }

  // A value where the state wants something else: the message says what was expected there.
  bool other(const char* found) {
    switch (state_) {
      case at::meta_start:
        throw format_error(meta_where() + " must be an object of strings, found " + found);
      case at::meta_value:
        throw format_error(meta_where() + " value of " + quote_text(key_) + " must be a string, found " + found);
      case at::entry_start:
        throw format_error(tensor_where() + ": expected an object {dtype, shape, data_offsets}, found " + found);
      case at::dtype: throw format_error(tensor_where() + ": dtype must be a string, found " + found);
      case at::shape_start: throw format_error(tensor_where() + ": shape must be an array, found " + found);
      case at::shape_item: bad_shape_entry(found);
      case at::offsets_start:
      case at::offsets_item: bad_offsets();
      default: throw format_error(quote_text(file_) + ": the JSON header must be an object, found " + found);
    }
  }
  bool number(const std::string& text, bool is_unsigned, std::uint64_t v) {
    if (state_ == at::shape_item) {
      if (!is_unsigned || v > static_cast<std::uint64_t>(INT64_MAX)) bad_shape_entry(text);
      if (cur_.t.shape.size() == safetensors_max_rank)
        throw format_error(tensor_where() + ": shape has more than " + std::to_string(safetensors_max_rank) +
                           " dimensions");
      cur_.t.shape.push_back(static_cast<std::int64_t>(v));
      return true;
    }
    if (state_ == at::offsets_item) {
      if (!is_unsigned || offsets_seen_ == 2) bad_offsets();
      (offsets_seen_++ == 0 ? cur_.begin : cur_.end) = v;
      return true;
    }
    return other("a number");
  }
  [[noreturn]] void bad_shape_entry(const std::string& found) const {
    throw format_error(tensor_where() + ": shape entries must be non-negative integers below 2^63, found " + found);
  }
  [[noreturn]] void bad_offsets() const {
    throw format_error(tensor_where() + ": data_offsets must be [begin, end] with non-negative integers");
  }
  void entry_key(const std::string& k) {
    bool* seen = k == "dtype" ? &have_dtype_ : k == "shape" ? &have_shape_ : k == "data_offsets" ? &have_offsets_
                                                                                               : nullptr;
    if (!seen)
      throw format_error(tensor_where() + ": unknown key " + quote_text(k) + " (expected dtype, shape, data_offsets)");
    if (*seen) throw format_error(tensor_where() + ": key " + quote_text(k) + " appears twice");
    *seen = true;
    state_ = k == "dtype" ? at::dtype : k == "shape" ? at::shape_start : at::offsets_start;
  }
  void finish_entry() {
    const std::string where = tensor_where();
    if (!have_dtype_) throw format_error(where + ": missing key 'dtype'");
    if (!have_shape_) throw format_error(where + ": missing key 'shape'");
    if (!have_offsets_) throw format_error(where + ": missing key 'data_offsets'");
    std::uint64_t bytes;
    if (!checked_byte_count(cur_.t.shape, safetensors_dtype_size(cur_.t.dtype), bytes))
      throw format_error(where + ": shape " + shape_text(cur_.t.shape) + " has more than 2^64 bytes");
    const std::string offsets = "[" + std::to_string(cur_.begin) + ", " + std::to_string(cur_.end) + "]";
    if (cur_.begin > cur_.end) throw format_error(where + ": data_offsets " + offsets + " end before they begin");
    if (cur_.end - cur_.begin != bytes)
      throw format_error(where + ": " + cur_.t.dtype + " shape " + shape_text(cur_.t.shape) + " needs " +
                         std::to_string(bytes) + " bytes but data_offsets " + offsets + " hold " +
                         std::to_string(cur_.end - cur_.begin));
    table_.entries.push_back(std::move(cur_));
    state_ = at::root_key;
  }

  const std::string& file_;
  std::size_t base_;
  at state_ = at::root;
  header_table table_;
  entry cur_;
  std::string key_;
  bool have_dtype_ = false, have_shape_ = false, have_offsets_ = false, seen_metadata_ = false;
  int offsets_seen_ = 0;
};

// Parses the header text (which starts at byte `base_offset` of the file `file`, for positions in messages).
inline header_table read_header(std::string_view header, const std::string& file, std::size_t base_offset) {
  header_reader reader(file, base_offset);
  nlohmann::json::sax_parse(header.begin(), header.end(), &reader);  // strict: nothing may follow the object
  header_table table = reader.take();
  // Duplicate names, found by sorting pointers rather than keeping a set of names while parsing: a header of
  // millions of small tensors then costs 8 bytes more per tensor, not a second copy of every name.
  std::vector<const entry*> by_name;
  by_name.reserve(table.entries.size());
  for (const auto& e : table.entries) by_name.push_back(&e);
  std::sort(by_name.begin(), by_name.end(), [](const entry* a, const entry* b) { return a->name < b->name; });
  const auto twice = std::adjacent_find(by_name.begin(), by_name.end(),
                                        [](const entry* a, const entry* b) { return a->name == b->name; });
  if (twice != by_name.end())
    throw format_error(quote_text(file) + ": tensor " + quote_text((*twice)->name) + " appears twice in the header");
  return table;
}

}  // namespace safetensors_detail
}  // namespace kiln::io
