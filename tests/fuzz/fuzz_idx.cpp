// Fuzzes read_idx_bytes (plain and gzip). Properties beyond "no crash, only kiln::error":
//  - a parsed array has data.size() == product(dims) × element size;
//  - a plain input that parses re-serializes to exactly itself (the format leaves no freedom), and
//    serialize_idx never throws for an array the reader produced;
//  - a 1-D array passes or fails the label checks of make_labelled_images cleanly;
//  - reading needs at most twice the bytes the input really holds (for gzip: what zlib inflates it to,
//    counted here independently) plus 128 KiB, whatever the header claims.
#include "heap_bound.hpp"

#include <kiln/data/idx.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <zlib.h>

namespace {
// Decompressed size of the gzip members at the start of `in` (up to the first error); the input size when
// it is not gzip.
std::size_t real_size(std::string_view in) {
  if (!kiln::io::is_gzip(in)) return in.size();
  std::size_t total = 0, pos = 0;
  unsigned char sink[1 << 14];
  while (pos < in.size() && kiln::io::is_gzip(in.substr(pos))) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) break;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + pos));
    zs.avail_in = static_cast<uInt>(in.size() - pos);
    int rc = Z_OK;
    while (rc == Z_OK) {
      zs.next_out = sink;
      zs.avail_out = sizeof sink;
      rc = inflate(&zs, Z_NO_FLUSH);
      total += sizeof sink - zs.avail_out;
    }
    pos = in.size() - zs.avail_in;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) break;
  }
  return total;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kiln::data::idx_array a;
  bool parsed = false;
  // 128 KiB: zlib's inflate state and window (about 45 KiB) and the first 64 KiB of the payload buffer
  kiln_fuzz::within_heap_bound(2 * real_size(bytes) + (128 << 10), "read_idx_bytes", [&] {
    try {
      a = kiln::data::read_idx_bytes(bytes, "fuzz-input");
      parsed = true;
    } catch (const kiln::error&) {
    }
  });
  if (!parsed) return 0;
  if (a.data.size() != a.size() * kiln::data::idx_element_size(a.type)) __builtin_trap();
  const std::string plain = kiln::data::serialize_idx(a);
  if (!kiln::io::is_gzip(bytes) && plain != bytes) __builtin_trap();
  if (a.dims.size() == 1) {
    kiln::data::idx_array images;
    images.dims = {a.dims[0], 1, 1};
    images.data.assign(a.dims[0], 255);
    try {
      const auto pair = kiln::data::make_labelled_images(images, a, 10, "images", "fuzz-input");
      if (pair.labels.size() != a.dims[0] || pair.pixels.size() != a.dims[0]) __builtin_trap();
      for (auto l : pair.labels)
        if (l < 0 || l >= 10) __builtin_trap();
    } catch (const kiln::error&) {
    }
  }
  return 0;
}
