#pragma once
// 64-bit FNV-1a: a small, deterministic, constexpr hash for cache keys and content checksums.
// Not cryptographic; collisions matter only as a cache miss-versus-hit question (keys also store the text
// they were made from where that matters).
#include <cstdint>
#include <string_view>

namespace kiln {

inline constexpr std::uint64_t fnv1a64(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace kiln
