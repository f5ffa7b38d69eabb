#pragma once
// On-disk format of one cached kernel. All integers little-endian:
//   offset  0  8 bytes  magic "KILNKBIN"
//           8  u32      format version (cache_format_version)
//          12  u32      kind: 0 = CUBIN, 1 = PTX
//          16  u64      cache key (must equal the key the file is named for)
//          24  u32      target name length T     28  u32  lowered name length L
//          32  u64      payload length P
//          40  u64      checksum = fnv1a64(target ‖ lowered name ‖ payload)
//          48  T + L + P bytes; the file ends exactly there.
// Any mismatch (short file, extra bytes, magic, version, key, kind, checksum) makes the entry invalid.
#include <kiln/core/hash.hpp>
#include <kiln/cuda/runtime/nvrtc.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::cuda {

inline constexpr std::string_view cache_magic = "KILNKBIN";
inline constexpr std::uint32_t cache_format_version = 1;
inline constexpr std::size_t cache_header_bytes = 48;

namespace detail {
inline void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline std::uint64_t get_le(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}
inline std::uint64_t entry_checksum(std::string_view target, std::string_view lowered, std::string_view payload) {
  return fnv1a64(payload, fnv1a64(lowered, fnv1a64(target)));
}
}  // namespace detail

inline std::string encode_cache_entry(std::uint64_t key, const compiled_kernel& k) {
  std::string out(cache_magic);
  detail::put_le(out, cache_format_version, 4);
  detail::put_le(out, k.kind == binary_kind::ptx ? 1 : 0, 4);
  detail::put_le(out, key, 8);
  detail::put_le(out, k.target.size(), 4);
  detail::put_le(out, k.lowered_name.size(), 4);
  detail::put_le(out, k.image.size(), 8);
  detail::put_le(out, detail::entry_checksum(k.target, k.lowered_name, k.image), 8);
  out += k.target;
  out += k.lowered_name;
  out += k.image;
  return out;
}

// The decoded kernel, or the reason the bytes are not a valid entry for `key` (problem non-empty).
struct decoded_entry {
  std::optional<compiled_kernel> kernel;
  std::string problem;
};

inline decoded_entry decode_cache_entry(std::string_view bytes, std::uint64_t key) {
  auto bad = [](std::string why) { return decoded_entry{std::nullopt, std::move(why)}; };
  if (bytes.size() < cache_header_bytes)
    return bad("truncated header: " + std::to_string(bytes.size()) + " bytes, expected at least " +
               std::to_string(cache_header_bytes));
  if (bytes.substr(0, cache_magic.size()) != cache_magic) return bad("wrong magic (not a kiln kernel cache entry)");
  const auto version = detail::get_le(bytes, 8, 4);
  if (version != cache_format_version)
    return bad("format version " + std::to_string(version) + ", expected " + std::to_string(cache_format_version));
  const auto kind = detail::get_le(bytes, 12, 4);
  if (kind > 1) return bad("unknown binary kind " + std::to_string(kind));
  if (detail::get_le(bytes, 16, 8) != key) return bad("key in header does not match the file's key");
  const std::uint64_t target_len = detail::get_le(bytes, 24, 4);
  const std::uint64_t name_len = detail::get_le(bytes, 28, 4);
  const std::uint64_t payload_len = detail::get_le(bytes, 32, 8);
  const std::uint64_t body = bytes.size() - cache_header_bytes;
  // Compared one term at a time so huge corrupt lengths cannot overflow the sum.
  if (payload_len > body || target_len + name_len != body - payload_len)
    return bad("length mismatch (truncated or padded): header announces " + std::to_string(target_len) + "+" +
               std::to_string(name_len) + "+" + std::to_string(payload_len) + " bytes, file holds " +
               std::to_string(body));
  const std::string_view target = bytes.substr(cache_header_bytes, target_len);
  const std::string_view lowered = bytes.substr(cache_header_bytes + target_len, name_len);
  const std::string_view payload = bytes.substr(cache_header_bytes + target_len + name_len);
  const std::uint64_t stored = detail::get_le(bytes, 40, 8);
  const std::uint64_t computed = detail::entry_checksum(target, lowered, payload);
  if (stored != computed) return bad("checksum mismatch (payload corrupted)");
  compiled_kernel k;
  k.kind = kind == 1 ? binary_kind::ptx : binary_kind::cubin;
  k.target = std::string(target);
  k.lowered_name = std::string(lowered);
  k.image = std::string(payload);
  return decoded_entry{std::move(k), {}};
}

}  // namespace kiln::cuda
