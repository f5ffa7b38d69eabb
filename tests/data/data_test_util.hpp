#pragma once
// Helpers shared by the data/io tests: temp_dir() (../temp_dir.hpp), byte-exact file writes, gzip compression,
// and a check that a call throws exactly kiln::format_error with a message containing given fragments.
#include "../temp_dir.hpp"

#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <zlib.h>

namespace kiln_test {

// Writes `bytes` to temp_dir()/name and returns the path.
inline std::string write_temp(const std::string& name, std::string_view bytes) {
  const std::string path = temp_dir() + "/" + name;
  kiln::io::write_file_atomic(path, bytes);
  return path;
}

// One gzip member holding `plain` (zlib deflate with a gzip wrapper).
inline std::string gzip(std::string_view plain) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(plain.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Little-endian u64, as safetensors stores its header length.
inline std::string le64(std::uint64_t n) {
  std::string s;
  for (int k = 0; k < 8; ++k) s.push_back(static_cast<char>((n >> (8 * k)) & 0xFF));
  return s;
}

// A safetensors file from a header text and a data section, with the header length computed from the text.
inline std::string safetensors_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// IDX header bytes: 00 00 type ndims, then each dimension as big-endian u32 (ndims < 0: the count of dims).
inline std::string idx_header(std::uint8_t type, std::initializer_list<std::uint32_t> dims, int ndims = -1) {
  std::string s = {'\0', '\0', static_cast<char>(type),
                   static_cast<char>(ndims < 0 ? static_cast<int>(dims.size()) : ndims)};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((d >> shift) & 0xFF));
  return s;
}

// Runs f; passes only if it throws kiln::format_error whose message contains every fragment.
template <class F>
void require_format_error(F&& f, std::initializer_list<std::string_view> fragments) {
  try {
    f();
  } catch (const kiln::format_error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (auto frag : fragments) {
      INFO("expected fragment: " << frag);
      CHECK(msg.find(frag) != std::string::npos);
    }
    return;
  } catch (const std::exception& e) {
    FAIL("expected kiln::format_error, got another exception: " << e.what());
  }
  FAIL("expected kiln::format_error, nothing was thrown");
}

}  // namespace kiln_test
