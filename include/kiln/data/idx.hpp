#pragma once
// IDX files (the MNIST / Fashion-MNIST container), plain or gzip-compressed.
//
// Layout (all integers big-endian):
//   byte 0-1   0x00 0x00
//   byte 2     element type: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64
//   byte 3     number of dimensions d (kiln accepts 1..4)
//   d × u32    the dimensions
//   payload    product(dims) × sizeof(element) bytes, row-major, nothing after it
// Every violation is a kiln::format_error that names the file and the numbers involved.
#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/io/file_type.hpp>
#include <kiln/io/gzip.hpp>
#include <kiln/io/mapped_file.hpp>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

enum class idx_type : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

inline constexpr bool is_idx_type(std::uint8_t code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

inline constexpr std::size_t idx_element_size(idx_type t) {
  switch (t) {
    case idx_type::u8:
    case idx_type::i8: return 1;
    case idx_type::i16: return 2;
    case idx_type::i32:
    case idx_type::f32: return 4;
    case idx_type::f64: return 8;
  }
  return 0;
}

inline constexpr const char* idx_type_name(idx_type t) {
  switch (t) {
    case idx_type::u8: return "unsigned byte (0x08)";
    case idx_type::i8: return "signed byte (0x09)";
    case idx_type::i16: return "int16 (0x0B)";
    case idx_type::i32: return "int32 (0x0C)";
    case idx_type::f32: return "float32 (0x0D)";
    case idx_type::f64: return "float64 (0x0E)";
  }
  return "unknown";
}

inline constexpr std::size_t idx_max_dims = 4;

struct idx_array {
  idx_type type = idx_type::u8;
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;  // element bytes in host byte order (the file stores them big-endian)

  std::size_t size() const {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
  // Element i (row-major) converted to double; exact for every IDX type.
  double at(std::size_t i) const {
    const std::uint8_t* p = data.data() + i * idx_element_size(type);
    switch (type) {
      case idx_type::u8: return p[0];
      case idx_type::i8: return static_cast<std::int8_t>(p[0]);
      case idx_type::i16: return load<std::int16_t>(p);
      case idx_type::i32: return load<std::int32_t>(p);
      case idx_type::f32: return load<float>(p);
      case idx_type::f64: return load<double>(p);
    }
    return 0;
  }

 private:
  template <class T>
  static T load(const std::uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
};

namespace idx_detail {

inline std::string hex2(std::uint8_t b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

inline std::string dims_text(const std::vector<std::uint32_t>& dims) {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(dims[i]);
  }
  return s;
}

// Reverses each element's bytes in place when the host is little-endian (IDX is big-endian).
inline void big_endian_to_host(std::vector<std::uint8_t>& bytes, std::size_t element_size) {
  if constexpr (std::endian::native == std::endian::little) {
    if (element_size > 1)
      for (std::size_t i = 0; i + element_size <= bytes.size(); i += element_size)
        std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(i),
                     bytes.begin() + static_cast<std::ptrdiff_t>(i + element_size));
  }
}

// One interface over plain and gzip bytes: read(n) returns fewer than n only at the end of the data.
class source {
 public:
  source(std::string_view bytes, const std::string& name) : plain_(bytes) {
    if (io::is_gzip(bytes)) gz_.emplace(bytes, name);
  }
  bool compressed() const { return gz_.has_value(); }
  std::size_t read(void* dst, std::size_t n) {
    if (gz_) return gz_->read(dst, n);
    const std::size_t got = std::min(n, plain_.size() - pos_);
    if (got == 0) return 0;  // dst may be null (an empty payload): memcpy's pointers must not be
    std::memcpy(dst, plain_.data() + pos_, got);
    pos_ += got;
    return got;
  }
  // Plain: the next n bytes where they lie (no copy). Only for plain sources.
  std::string_view take_plain(std::size_t n) {
    const std::string_view out = plain_.substr(pos_, n);
    pos_ += out.size();
    return out;
  }
  // Plain: exact count of the bytes not yet read. Gzip: unknown until inflated (returns SIZE_MAX).
  std::size_t remaining_if_known() const { return gz_ ? SIZE_MAX : plain_.size() - pos_; }
  // How many bytes follow, counting at most `limit` of them: a gzip stream is inflated no further than that,
  // so a small file that inflates to gigabytes of trailing data costs no more than a valid one.
  std::uint64_t count_rest(std::size_t limit) {
    if (!gz_) return plain_.size() - pos_;
    char sink[4096];
    std::uint64_t total = 0;
    for (std::size_t got; total < limit && (got = read(sink, std::min(sizeof sink, limit - total))) > 0;) total += got;
    return total;
  }

 private:
  std::string_view plain_;
  std::size_t pos_ = 0;
  std::optional<io::gzip_reader> gz_;
};

}  // namespace idx_detail

// Parses IDX bytes (plain, or gzip detected by the magic 1f 8b); `name` is used in error messages.
inline idx_array read_idx_bytes(std::string_view bytes, const std::string& name) {
  using namespace idx_detail;
  const std::string where = io::quote_text(name);
  source in(bytes, name);
  const std::string form = in.compressed() ? " (after gzip decompression)" : "";

  std::uint8_t magic[4];
  const std::size_t got_magic = in.read(magic, 4);
  if (got_magic < 4)
    throw format_error(where + ": too short for an IDX header: 4 magic bytes expected, " + std::to_string(got_magic) +
                       " found" + form);
  if (magic[0] != 0 || magic[1] != 0) {
    const std::string_view head = in.compressed() ? std::string_view(reinterpret_cast<const char*>(magic), 4) : bytes;
    if (auto msg = io::wrong_type_message(head, where, "an IDX file"); !msg.empty()) throw format_error(msg);
    throw format_error(where + ": not an IDX file: the magic must start with 0x00 0x00, found " + hex2(magic[0]) + " " +
                       hex2(magic[1]));
  }
  if (!is_idx_type(magic[2]))
    throw format_error(where + ": unknown IDX element type " + hex2(magic[2]) +
                       " (expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32 or 0x0E f64)");
  const std::size_t ndims = magic[3];
  if (ndims < 1 || ndims > idx_max_dims)
    throw format_error(where + ": IDX file declares " + std::to_string(ndims) + " dimensions; kiln reads 1 to " +
                       std::to_string(idx_max_dims));

  idx_array out;
  out.type = static_cast<idx_type>(magic[2]);
  std::uint8_t dim_bytes[4 * idx_max_dims];
  const std::size_t got_dims = in.read(dim_bytes, 4 * ndims);
  if (got_dims < 4 * ndims)
    throw format_error(where + ": IDX header truncated: " + std::to_string(ndims) + " dimensions need " +
                       std::to_string(4 * ndims) + " bytes after the magic, found " + std::to_string(got_dims) + form);
  // Payload size = product(dims) × element size, checked against overflow (4 × 32 bits can exceed 64 bits).
  const std::uint64_t esize = idx_element_size(out.type);
  std::uint64_t payload = esize;
  bool overflow = false;
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint8_t* p = dim_bytes + 4 * i;
    const std::uint32_t d =
        (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
    out.dims.push_back(d);
    if (d != 0 && payload > UINT64_MAX / d) overflow = true;
    payload *= d;
  }
  if (overflow || payload > SIZE_MAX / 2)
    throw format_error(where + ": IDX dimensions " + dims_text(out.dims) + " of " + idx_type_name(out.type) +
                       " describe more data than can be addressed");

  const std::string expected = std::to_string(payload) + " payload bytes (dimensions " + dims_text(out.dims) + " of " +
                               idx_type_name(out.type) + ", " + std::to_string(esize) +
                               (esize == 1 ? " byte each)" : " bytes each)");
  if (!in.compressed()) {  // the size is known: check it before allocating, then copy from where the bytes lie
    const std::size_t known = in.remaining_if_known();
    if (known < payload)
      throw format_error(where + ": IDX payload truncated: expected " + expected + ", found " + std::to_string(known));
    if (known > payload)
      throw format_error(where + ": " + std::to_string(known - payload) + " trailing bytes after the IDX payload of " +
                         expected);
    const std::string_view body = in.take_plain(static_cast<std::size_t>(payload));
    out.data.assign(body.begin(), body.end());
  } else {
    // A gzip header can claim any size: the buffer grows with the data that actually arrives (doubling, capped
    // at the claim), so memory stays within twice what the stream really holds, never what it claims.
    std::size_t have = 0;
    for (;;) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(payload, std::max<std::uint64_t>(2 * static_cast<std::uint64_t>(have), 1 << 16)));
      out.data.resize(want);
      const std::size_t got = in.read(out.data.data() + have, want - have);
      have += got;
      if (have < want || have == payload) break;
    }
    out.data.resize(have);
    if (have < payload)
      throw format_error(where + ": IDX payload truncated: expected " + expected + ", found " + std::to_string(have) +
                         form);
    // Trailing data is an error whatever its size: count a bounded amount of it, never inflate it all.
    constexpr std::size_t counted = 1 << 16;
    if (const std::uint64_t extra = in.count_rest(counted); extra != 0)
      throw format_error(where + ": " +
                         (extra >= counted ? "more than " + std::to_string(counted - 1) : std::to_string(extra)) +
                         " trailing bytes after the IDX payload of " + expected + form);
  }
  big_endian_to_host(out.data, esize);
  return out;
}

inline idx_array read_idx(const std::string& path) {
  const io::mapped_file file(path);
  return read_idx_bytes(file.bytes(), path);
}

// Plain (uncompressed) IDX bytes for `a`; read_idx_bytes(serialize_idx(a)) reproduces `a`.
inline std::string serialize_idx(const idx_array& a) {
  const std::size_t esize = idx_element_size(a.type);
  if (a.dims.empty() || a.dims.size() > idx_max_dims)
    throw shape_error(std::string("serialize_idx: ") + std::to_string(a.dims.size()) + " dimensions; IDX holds 1 to " +
                      std::to_string(idx_max_dims));
  if (a.data.size() != a.size() * esize)
    throw shape_error("serialize_idx: dimensions " + idx_detail::dims_text(a.dims) + " need " +
                      std::to_string(a.size() * esize) + " bytes, data has " + std::to_string(a.data.size()));
  std::string s = {'\0', '\0', static_cast<char>(a.type), static_cast<char>(a.dims.size())};
  for (auto d : a.dims)
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((d >> shift) & 0xFF));
  std::vector<std::uint8_t> payload = a.data;
  idx_detail::big_endian_to_host(payload, esize);  // the same byte reversal maps host order back to big-endian
  s.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return s;
}

inline void write_idx(const std::string& path, const idx_array& a) { io::write_file_atomic(path, serialize_idx(a)); }

// Images as float pixels in [0,1] (u8 / 255), row-major [count][rows][cols], with one class index per image.
struct labelled_images {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<float> pixels;
  std::vector<std::int32_t> labels;
  std::size_t pixels_per_image() const { return rows * cols; }
};

// Checks that `images` (u8, 3-D) and `labels` (integer type, 1-D) form a pair: same count, every label in
// [0, num_classes). The names are the files, for the messages.
inline labelled_images make_labelled_images(const idx_array& images, const idx_array& labels, int num_classes,
                                            const std::string& images_name, const std::string& labels_name) {
  using idx_detail::dims_text;
  const std::string wi = "'" + images_name + "'", wl = "'" + labels_name + "'";
  if (num_classes < 1)
    throw shape_error(std::string("load_idx_pair: num_classes must be at least 1, got ") + std::to_string(num_classes));
  if (images.type != idx_type::u8)
    throw format_error(wi + ": images must be " + std::string(idx_type_name(idx_type::u8)) + ", found " +
                       idx_type_name(images.type));
  if (images.dims.size() != 3)
    throw format_error(wi + ": images must have 3 dimensions (count x rows x cols), found " +
                       std::to_string(images.dims.size()) + " (" + dims_text(images.dims) + ")");
  if (labels.type == idx_type::f32 || labels.type == idx_type::f64)
    throw format_error(wl + ": labels must be an integer type, found " + idx_type_name(labels.type));
  if (labels.dims.size() != 1)
    throw format_error(wl + ": labels must have 1 dimension (count), found " + std::to_string(labels.dims.size()) +
                       " (" + dims_text(labels.dims) + ")");
  if (images.dims[0] != labels.dims[0])
    throw format_error(wi + " holds " + std::to_string(images.dims[0]) + " images but " + wl + " holds " +
                       std::to_string(labels.dims[0]) + " labels");
  labelled_images out;
  out.count = images.dims[0];
  out.rows = images.dims[1];
  out.cols = images.dims[2];
  out.labels.resize(out.count);
  for (std::size_t i = 0; i < out.count; ++i) {
    const double v = labels.at(i);
    if (v < 0 || v >= num_classes)
      throw format_error(wl + ": label " + std::to_string(static_cast<long long>(v)) + " at index " +
                         std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
    out.labels[i] = static_cast<std::int32_t>(v);
  }
  out.pixels.resize(images.data.size());
  for (std::size_t i = 0; i < images.data.size(); ++i) out.pixels[i] = static_cast<float>(images.data[i]) / 255.0f;
  return out;
}

inline labelled_images load_idx_pair(const std::string& images_path, const std::string& labels_path, int num_classes) {
  return make_labelled_images(read_idx(images_path), read_idx(labels_path), num_classes, images_path, labels_path);
}

}  // namespace kiln::data
