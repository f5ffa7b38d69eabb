#pragma once
// Compile-time strings usable as template arguments: input<"x", 784>, param<"fc1.weight", 128, 784>.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

template <std::size_t N>
struct fixed_string {
  char chars[N + 1] = {};
  constexpr fixed_string() = default;
  constexpr fixed_string(const char (&s)[N + 1]) {
    for (std::size_t i = 0; i <= N; ++i) chars[i] = s[i];
  }
  constexpr std::string_view view() const { return {chars, N}; }
  constexpr std::size_t size() const { return N; }
};
template <std::size_t N>
fixed_string(const char (&)[N]) -> fixed_string<N - 1>;

// A short name held by value inside the constexpr graph (leaf names, kernel names). It keeps an FNV-1a hash of
// its characters, so comparing two different names (what finding a leaf by name does, for every leaf of a
// model) usually costs one integer comparison.
struct short_name {
  static constexpr int capacity = 96;  // PyTorch-style paths plus an optimizer suffix (".exp_avg_sq") fit
  char chars[capacity] = {};
  int length = 0;
  std::uint32_t hash = 2166136261u;  // FNV-1a offset basis: the hash of ""
  constexpr short_name() = default;
  constexpr short_name(std::string_view s) {
    if (s.size() >= capacity) throw "kiln: a leaf name (with its optimizer-state suffix) is longer than 95 characters";
    for (char c : s) {
      chars[length++] = c;
      hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    }
  }
  constexpr std::string_view view() const { return {chars, static_cast<std::size_t>(length)}; }
  constexpr bool operator==(const short_name& o) const { return hash == o.hash && view() == o.view(); }
};

}  // namespace kiln
