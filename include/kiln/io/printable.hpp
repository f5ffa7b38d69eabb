#pragma once
// Text from a file, made safe to put inside an error message: what() is a C string and a terminal interprets
// control bytes, so a name holding "\0" or "\x1b[2J" would cut the message short or garble the screen.
#include <string>
#include <string_view>

namespace kiln::io {

// `s` with every control byte (0x00-0x1F, 0x7F) written as \xNN; all other bytes are kept as they are.
inline std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7F) {
      out.push_back(ch);
      continue;
    }
    constexpr const char* digits = "0123456789abcdef";
    out += "\\x";
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// 'text' quoted for a message, control bytes escaped.
inline std::string quote_text(std::string_view s) { return "'" + printable(s) + "'"; }

}  // namespace kiln::io
