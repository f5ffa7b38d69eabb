// The JSON tree reader (nlohmann-json underneath): values, escapes, exact integers, strictness, bounded depth.
#include "data_test_util.hpp"

#include <kiln/io/json.hpp>

#include <catch2/catch.hpp>

#include <string>

using kiln::io::json_value;
using kiln::io::parse_json;
using kind = kiln::io::json_value::kind;
using kiln_test::require_format_error;

TEST_CASE("json: values of every kind, nested, in file order") {
  const auto v = parse_json(R"( {"a": [1, -2.5e3, 0, true, false, null], "b": {"c": "x"}, "a": {}} )", "t");
  REQUIRE(v.is(kind::object));
  REQUIRE(v.members.size() == 3);  // duplicates kept; the caller decides
  CHECK(v.members[0].key == "a");
  CHECK(v.members[2].key == "a");
  const auto& arr = v.members[0].value;
  REQUIRE(arr.is(kind::array));
  REQUIRE(arr.items.size() == 6);
  CHECK(arr.items[0].text == "1");
  CHECK(arr.items[1].text == "-2.5e3");
  CHECK(arr.items[3].boolean);
  CHECK(arr.items[4].is(kind::boolean));
  CHECK_FALSE(arr.items[4].boolean);
  CHECK(arr.items[5].is(kind::null));
  CHECK(v.members[1].value.members[0].value.text == "x");
}

TEST_CASE("json: string escapes decode to UTF-8") {
  const auto v = parse_json(R"("q\" b\\ s\/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 é")", "t");
  CHECK(v.text == "q\" b\\ s/ \b\f\n\r\t \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9");
}

TEST_CASE("json: as_uint64 accepts exactly the non-negative integers that fit") {
  auto num = [](const char* s) { return parse_json(s, "t"); };
  std::uint64_t u = 0;
  CHECK(num("18446744073709551615").as_uint64(u));
  CHECK(u == UINT64_MAX);
  CHECK(num("0").as_uint64(u));
  CHECK(u == 0);
  CHECK_FALSE(num("18446744073709551616").as_uint64(u));
  CHECK_FALSE(num("-1").as_uint64(u));
  CHECK_FALSE(num("1.0").as_uint64(u));
  CHECK_FALSE(num("1e3").as_uint64(u));
  CHECK_FALSE(num("\"1\"").as_uint64(u));
}

TEST_CASE("json: syntax errors say where and what was expected") {
  struct bad {
    const char* text;
    const char* where;     // "at byte N:", counted from 0
    const char* fragment;  // nlohmann-json's words for what was expected
  };
  const bad cases[] = {
      {"", "at byte 0:", "unexpected end of input; expected '[', '{', or a literal"},
      {"{\"a\":1,}", "at byte 7:", "unexpected '}'; expected string literal"},
      {"[1,]", "at byte 3:", "unexpected ']'; expected '[', '{', or a literal"},
      {"[1 2]", "at byte 3:", "unexpected number literal; expected ']'"},
      {"{\"a\" 1}", "at byte 5:", "unexpected number literal; expected ':'"},
      {"{\"a\":1 \"b\":2}", "at byte 9:", "unexpected string literal; expected '}'"},
      {"01", "at byte 1:", "unexpected number literal; expected end of input"},
      {"-", "at byte 1:", "invalid number; expected digit after '-'"},
      {"1.", "at byte 2:", "invalid number; expected digit after '.'"},
      {"1e+", "at byte 3:", "invalid number; expected digit after exponent sign"},
      {"+1", "at byte 0:", "invalid literal"},
      {"nul", "at byte 3:", "invalid literal"},
      {"NaN", "at byte 0:", "invalid literal"},
      {"'a'", "at byte 0:", "invalid literal"},
      {"\"abc", "at byte 4:", "invalid string: missing closing quote"},
      {"\"a\tb\"", "at byte 2:", "invalid string: control character U+0009 (HT) must be escaped to \\u0009 or \\t"},
      {"\"\\x\"", "at byte 2:", "invalid string: forbidden character after backslash"},
      {"\"\\u12G4\"", "at byte 5:", "invalid string: '\\u' must be followed by 4 hex digits"},
      {"\"\\udc00\"", "at byte 6:", "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\\ud800x\"", "at byte 7:", "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\\ud800\\u0041\"", "at byte 12:", "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\xC3\"", "at byte 2:", "invalid string: ill-formed UTF-8 byte"},
      {"\"\xC0\xAF\"", "at byte 1:", "invalid string: ill-formed UTF-8 byte"},          // overlong '/'
      {"\"\xED\xA0\x80\"", "at byte 2:", "invalid string: ill-formed UTF-8 byte"},      // encoded surrogate
      {"\"\xF4\x90\x80\x80\"", "at byte 2:", "invalid string: ill-formed UTF-8 byte"},  // above U+10FFFF
      {"{} x", "at byte 3:", "invalid literal"},
      {"/* c */ 1", "at byte 0:", "invalid literal"},
  };
  for (const auto& c : cases) {
    INFO("input: " << c.text);
    require_format_error([&] { parse_json(c.text, "h.json"); }, {"'h.json': JSON syntax error", c.where, c.fragment});
  }
}

TEST_CASE("json: nesting depth is bounded so hostile input cannot exhaust the stack") {
  const int limit = kiln::io::json_max_depth;
  const std::string ok =
      std::string(static_cast<std::size_t>(limit), '[') + std::string(static_cast<std::size_t>(limit), ']');
  CHECK(parse_json(ok, "t").is(kind::array));
  const std::string deep(100000, '[');
  require_format_error([&] { parse_json(deep, "t"); }, {"expected nesting no deeper than 64 levels"});
}

TEST_CASE("json: byte positions can be offset to where the text sits in its file") {
  require_format_error([] { parse_json("[1,,2]", "f", 8); }, {"at byte 11:"});
}

TEST_CASE("json: json_quote output parses back to the same string") {
  const std::string s = std::string("a\"b\\c\n\t\x01\x1f ") + "\xE2\x82\xAC";
  const std::string q = kiln::io::json_quote(s);
  CHECK(q == "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f \xE2\x82\xAC\"");
  CHECK(parse_json(q, "t").text == s);
  CHECK(kiln::io::is_valid_utf8(s));
  CHECK_FALSE(kiln::io::is_valid_utf8("\xFF"));
}
