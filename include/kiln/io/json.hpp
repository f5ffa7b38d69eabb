#pragma once
// JSON values as a small tree (for short texts such as the benchmark peers' result lines), UTF-8 checks and
// string quoting. Parsing is nlohmann-json's (RFC 8259, strict); the safetensors header does not build a tree
// at all but reads nlohmann's SAX events directly (safetensors_header.hpp).
//
// Strict: one value surrounded only by whitespace; no comments, trailing commas, single quotes, NaN, leading
// zeros or '+'; strings must be valid UTF-8 with no raw control characters, escapes must be the JSON ones and
// \u surrogates must pair. Objects keep their members in file order, duplicates included (the caller decides
// what a duplicate means). Numbers keep their text so that 64-bit integers survive exactly. Nesting is
// limited (json_max_depth) so hostile input cannot exhaust the stack.
#include <kiln/core/error.hpp>
#include <kiln/io/printable.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::io {

inline constexpr int json_max_depth = 64;

struct json_member;

struct json_value {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  std::string text;                  // string: the decoded value; number: the literal as written
  std::vector<json_value> items;     // array
  std::vector<json_member> members;  // object, in file order

  bool is(kind k) const { return type == k; }
  // The number as an unsigned 64-bit integer; false when it has a sign, fraction or exponent, or is too big.
  bool as_uint64(std::uint64_t& out) const {
    if (type != kind::number || text.empty() || text[0] == '-') return false;
    std::uint64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) return false;
      v = v * 10 + d;
    }
    out = v;
    return true;
  }
};

struct json_member {
  std::string key;
  json_value value;
};

inline const char* json_kind_name(json_value::kind k) {
  switch (k) {
    case json_value::kind::null: return "null";
    case json_value::kind::boolean: return "a boolean";
    case json_value::kind::number: return "a number";
    case json_value::kind::string: return "a string";
    case json_value::kind::array: return "an array";
    case json_value::kind::object: return "an object";
  }
  return "?";
}

namespace json_detail {

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when there is none.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u;
  };
  auto cont = [&](std::size_t k) { return byte(k) < 0x100 && (byte(k) & 0xC0) == 0x80; };
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned b1 = byte(1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // UTF-16 surrogates
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned b1 = byte(1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// nlohmann's parse error as kiln's: "'file': JSON syntax error at byte N: <what>". nlohmann's text is
// "[json.exception.parse_error.101] parse error at line L, column C: <what>"; the byte position in the file
// (`base` is where the text starts in it) says more than a line number in a one-line header. `position`
// counts the characters read, the offending one included.
[[noreturn]] inline void throw_syntax_error(const std::string& name, std::size_t base, std::size_t position,
                                            const nlohmann::detail::exception& ex) {
  std::string what = ex.what();
  if (const auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
  const std::size_t at = base + (position > 0 ? position - 1 : 0);
  throw format_error(quote_text(name) + ": JSON syntax error at byte " + std::to_string(at) + ": " + printable(what));
}

// nlohmann-json's SAX events → a json_value tree. Keeping numbers as text needs the events: nlohmann's own
// DOM would round a 64-bit integer written as a float literal and lose the literal.
class tree_builder {
  using json = nlohmann::json;

 public:
  tree_builder(const std::string& name, std::size_t base) : name_(name), base_(base) {}
  json_value take() { return std::move(root_); }

  bool null() { return add(json_value{}); }
  bool boolean(bool b) {
    json_value v;
    v.type = json_value::kind::boolean;
    v.boolean = b;
    return add(std::move(v));
  }
  bool number_integer(json::number_integer_t n) { return number(std::to_string(n)); }
  bool number_unsigned(json::number_unsigned_t n) { return number(std::to_string(n)); }
  bool number_float(json::number_float_t, const json::string_t& text) { return number(text); }
  bool string(json::string_t& s) {
    json_value v;
    v.type = json_value::kind::string;
    v.text = std::move(s);
    return add(std::move(v));
  }
  bool binary(json::binary_t&) { return false; }  // JSON text has none
  bool start_object(std::size_t) { return open(json_value::kind::object); }
  bool start_array(std::size_t) { return open(json_value::kind::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    stack_.back()->members.push_back({std::move(k), {}});
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    throw_syntax_error(name_, base_, position, ex);
  }

 private:
  bool number(std::string text) {
    json_value v;
    v.type = json_value::kind::number;
    v.text = std::move(text);
    return add(std::move(v));
  }
  // Where the next value goes: the root, the open array, or the member whose key came last.
  json_value* add(json_value v) {
    json_value* slot = &root_;
    if (!stack_.empty()) {
      json_value& top = *stack_.back();
      slot = top.is(json_value::kind::array) ? &top.items.emplace_back() : &top.members.back().value;
    }
    *slot = std::move(v);
    return slot;
  }
  bool open(json_value::kind k) {
    if (stack_.size() == json_max_depth)
      throw format_error(quote_text(name_) + ": JSON syntax error: expected nesting no deeper than " +
                         std::to_string(json_max_depth) + " levels");
    json_value v;
    v.type = k;
    stack_.push_back(add(std::move(v)));  // the parent's vectors do not grow while a child is open
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::string& name_;
  std::size_t base_;
  json_value root_;
  std::vector<json_value*> stack_;  // the open arrays and objects, innermost last
};

}  // namespace json_detail

inline bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = json_detail::utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Parses one JSON document; `name` (the file) is used in error messages, whose byte positions are counted
// from `base_offset` (where `text` starts inside the file).
inline json_value parse_json(std::string_view text, const std::string& name, std::size_t base_offset = 0) {
  json_detail::tree_builder builder(name, base_offset);
  nlohmann::json::sax_parse(text.begin(), text.end(), &builder);  // strict: one value, then only whitespace
  return builder.take();
}

// `s` as a JSON string literal (quotes included); control characters become escapes, other bytes pass as-is.
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) {
      const char* digits = "0123456789abcdef";
      out += "\\u00";
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    } else out.push_back(ch);
  }
  return out + "\"";
}

}  // namespace kiln::io
