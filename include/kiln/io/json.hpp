#pragma once
// A small strict JSON (RFC 8259) parser and string quoting, enough for file headers such as safetensors'.
//
// Strict: one value surrounded only by whitespace; no comments, trailing commas, single quotes, NaN, leading
// zeros or '+'; strings must be valid UTF-8 with no raw control characters, escapes must be the JSON ones and
// \u surrogates must pair. Objects keep their members in file order, duplicates included (the caller decides
// what a duplicate means). Numbers keep their text so that 64-bit integers survive exactly. Nesting is
// limited (json_max_depth) so hostile input cannot exhaust the stack.
#include <kiln/core/error.hpp>

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

class parser {
 public:
  parser(std::string_view s, const std::string& name, std::size_t base) : s_(s), name_(name), base_(base) {}

  json_value document() {
    skip_ws();
    json_value v = value(0);
    skip_ws();
    if (i_ != s_.size()) fail("expected the end of the JSON text");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& expected) const {
    std::string found;
    if (i_ >= s_.size()) {
      found = "the end of the text";
    } else {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c >= 0x20 && c < 0x7f) found = std::string("'") + static_cast<char>(c) + "'";
      else found = std::string("byte ") + std::to_string(c);
    }
    throw format_error("'" + name_ + "': JSON syntax error at byte " + std::to_string(base_ + i_) + ": " + expected +
                       "; found " + found);
  }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  json_value value(int depth) {
    if (depth > json_max_depth)
      fail(std::string("expected nesting no deeper than ") + std::to_string(json_max_depth) + " levels");
    json_value v;
    if (i_ >= s_.size()) fail("expected a value");
    const char c = s_[i_];
    if (c == '{') {
      v.type = json_value::kind::object;
      ++i_;
      skip_ws();
      if (peek('}')) {
        ++i_;
        return v;
      }
      for (;;) {
        skip_ws();
        if (!peek('"')) fail("expected a '\"' to start a member name");
        std::string key = string();
        skip_ws();
        expect(':');
        skip_ws();
        v.members.push_back(json_member{std::move(key), value(depth + 1)});
        skip_ws();
        if (peek(',')) {
          ++i_;
          continue;
        }
        if (peek('}')) {
          ++i_;
          return v;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.type = json_value::kind::array;
      ++i_;
      skip_ws();
      if (peek(']')) {
        ++i_;
        return v;
      }
      for (;;) {
        skip_ws();
        v.items.push_back(value(depth + 1));
        skip_ws();
        if (peek(',')) {
          ++i_;
          continue;
        }
        if (peek(']')) {
          ++i_;
          return v;
        }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.type = json_value::kind::string;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.type = json_value::kind::number;
      v.text = number();
      return v;
    }
    if (literal("true")) {
      v.type = json_value::kind::boolean;
      v.boolean = true;
      return v;
    }
    if (literal("false")) {
      v.type = json_value::kind::boolean;
      return v;
    }
    if (literal("null")) return v;
    fail("expected a value (object, array, string, number, true, false or null)");
  }

  // number = [-] (0 | [1-9][0-9]*) [. [0-9]+] [(e|E) [+|-] [0-9]+]
  std::string number() {
    const std::size_t start = i_;
    auto digits = [&] {
      const std::size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - from;
    };
    if (peek('-')) ++i_;
    if (peek('0')) {
      ++i_;
      if (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') fail("expected no leading zeros in a number");
    } else if (digits() == 0) {
      fail("expected a digit");
    }
    if (peek('.')) {
      ++i_;
      if (digits() == 0) fail("expected a digit after the decimal point");
    }
    if (peek('e') || peek('E')) {
      ++i_;
      if (peek('+') || peek('-')) ++i_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    return std::string(s_.substr(start, i_ - start));
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      if (i_ >= s_.size()) fail("expected 4 hex digits after \\u");
      const char c = s_[i_];
      unsigned d;
      if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
      else fail("expected 4 hex digits after \\u");
      v = v * 16 + d;
      ++i_;
    }
    return v;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("expected a closing '\"'");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("expected an escape sequence for a control character in a string");
      if (c >= 0x80) {
        const std::size_t len = utf8_sequence_length(s_, i_);
        if (len == 0) fail("expected valid UTF-8 in a string");
        out.append(s_.substr(i_, len));
        i_ += len;
        continue;
      }
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        ++i_;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) fail("expected an escape character after '\\'");
      const char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF)
            fail(std::string("expected a high surrogate (D800-DBFF) before the low surrogate \\u") + hex_of(cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a pair encodes 0x10000 + (hi - 0xD800) * 0x400 + (lo - 0xDC00)
            if (!literal("\\u"))
              fail(std::string("expected a \\u low surrogate after the high surrogate \\u") + hex_of(cp));
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF)
              fail(std::string("expected a low surrogate (DC00-DFFF) after \\u") + hex_of(cp));
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: --i_; fail("expected one of the escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
      }
    }
  }

  static std::string hex_of(unsigned v) {
    const char* digits = "0123456789ABCDEF";
    std::string s(4, '0');
    for (int k = 3; k >= 0; --k, v >>= 4) s[static_cast<std::size_t>(k)] = digits[v & 15];
    return s;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t base_;  // added to positions in messages (where the text starts inside its file)
  std::size_t i_ = 0;
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
  return json_detail::parser(text, name, base_offset).document();
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
