// Fuzzes parse_safetensors (and through it the JSON parser). Properties beyond "no crash, only kiln::error":
// every tensor's byte count matches its dtype and shape, and whatever parses can be serialized (no throw) and
// survives the round trip through serialize_safetensors unchanged (tensors and metadata); and parsing never
// needs more heap than 16 bytes per input byte plus 64 KiB (the tensor table and copies of the data).
#include "heap_bound.hpp"

#include <kiln/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kiln::io::safetensors_content content;
  bool parsed = false;
  kiln_fuzz::within_heap_bound(16 * size + (64 << 10), "parse_safetensors", [&] {
    try {
      content = kiln::io::parse_safetensors(bytes, "fuzz-input");
      parsed = true;
    } catch (const kiln::error&) {
    }
  });
  if (!parsed) return 0;
  for (const auto& [name, t] : content.tensors)
    if (t.element_count() * kiln::io::safetensors_dtype_size(t.dtype) != t.bytes.size()) __builtin_trap();
  const std::string again = kiln::io::serialize_safetensors(content.tensors, content.metadata);
  const auto reread = kiln::io::parse_safetensors(again, "round-trip");
  if (reread.tensors != content.tensors || reread.metadata != content.metadata) __builtin_trap();
  return 0;
}
