// Fuzzes read_idx_bytes (plain and gzip). Properties beyond "no crash, only kiln::error":
//  - a parsed array has data.size() == product(dims) × element size;
//  - a plain input that parses re-serializes to exactly itself (the format leaves no freedom), and
//    serialize_idx never throws for an array the reader produced;
//  - a 1-D array passes or fails the label checks of make_labelled_images cleanly.
#include <kiln/data/idx.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kiln::data::idx_array a;
  try {
    a = kiln::data::read_idx_bytes(bytes, "fuzz-input");
  } catch (const kiln::error&) {
    return 0;
  }
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
