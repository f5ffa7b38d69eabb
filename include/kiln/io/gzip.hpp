#pragma once
// Streaming gzip decompression of an in-memory buffer (zlib inflate), for readers that want to validate a
// header before deciding how many bytes to accept. Concatenated gzip members are read as one stream (as gzip(1)
// does); bytes after the last member that do not start a new member are reported as trailing garbage.
#include <kiln/core/error.hpp>
#include <kiln/io/printable.hpp>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <zlib.h>

namespace kiln::io {

// gzip members start with the two magic bytes 1f 8b (RFC 1952, section 2.3.1).
inline bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Pulls decompressed bytes on demand. Errors are format_error naming `name` (the file).
class gzip_reader {
 public:
  gzip_reader(std::string_view compressed, std::string name) : input_(compressed), name_(std::move(name)) {
    zs_.zalloc = Z_NULL;
    zs_.zfree = Z_NULL;
    zs_.opaque = Z_NULL;
    // windowBits 15 + 16: accept only a gzip wrapper (no zlib or raw deflate), check its CRC-32 and length.
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) throw error(quote_text(name_) + ": zlib inflateInit2 failed");
  }
  gzip_reader(const gzip_reader&) = delete;
  gzip_reader& operator=(const gzip_reader&) = delete;
  ~gzip_reader() { inflateEnd(&zs_); }

  // Fills up to `n` bytes of `dst`; returns fewer only at the end of the (last) gzip member.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t produced = 0;
    while (produced < n && !finished_) {
      if (zs_.avail_in == 0 && consumed_ < input_.size()) feed();
      const std::size_t want = std::min<std::size_t>(n - produced, UINT_MAX);
      zs_.next_out = out + produced;
      zs_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      produced += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        next_member();
      } else if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR) {
        throw format_error(quote_text(name_) + ": corrupt gzip stream at compressed byte " +
                           std::to_string(consumed_ - zs_.avail_in) + ": " + (zs_.msg ? zs_.msg : "invalid data"));
      } else if (rc == Z_MEM_ERROR) {
        throw error(quote_text(name_) + ": out of memory while inflating the gzip stream");
      } else if (rc == Z_BUF_ERROR ||
                 (rc == Z_OK && zs_.avail_in == 0 && consumed_ == input_.size() && zs_.avail_out != 0)) {
        // No progress possible: the input ended inside a member (its end marker and CRC never came).
        throw format_error(quote_text(name_) + ": gzip stream truncated: the " + std::to_string(input_.size()) +
                           " compressed bytes end before the end of the gzip member");
      }
    }
    total_out_ += produced;
    return produced;
  }

  std::uint64_t bytes_out() const { return total_out_; }

 private:
  void feed() {
    const std::size_t chunk = std::min<std::size_t>(input_.size() - consumed_, UINT_MAX);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input_.data() + consumed_));
    zs_.avail_in = static_cast<uInt>(chunk);
    consumed_ += chunk;
  }

  // At the end of a member: either another member follows (continue), or nothing does (done), or junk does.
  void next_member() {
    const std::size_t pos = consumed_ - zs_.avail_in;
    const std::string_view rest = input_.substr(pos);
    if (rest.empty()) {
      finished_ = true;
    } else if (is_gzip(rest)) {
      inflateReset(&zs_);
    } else {
      throw format_error(quote_text(name_) + ": " + std::to_string(rest.size()) +
                         " bytes of trailing garbage after the gzip stream (at compressed byte " + std::to_string(pos) +
                         ")");
    }
  }

  std::string_view input_;
  std::string name_;
  z_stream zs_{};
  std::size_t consumed_ = 0;  // input bytes handed to zlib so far
  std::uint64_t total_out_ = 0;
  bool finished_ = false;
};

}  // namespace kiln::io
