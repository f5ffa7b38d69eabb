// IDX reader: round trips, every element type's big-endian decoding, gzip, and one crafted bad file per rule.
#include "data_test_util.hpp"

#include <kiln/data/idx.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <sys/stat.h>
#include <vector>

using kiln::data::idx_array;
using kiln::data::idx_type;
using kiln_test::idx_header;
using kiln_test::require_format_error;
using kiln_test::write_temp;

namespace {

std::string bytes_0_to(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i * 7 % 256));
  return s;
}

}  // namespace

TEST_CASE("idx: a plain u8 file reads back its dimensions and bytes") {
  const std::string payload = bytes_0_to(2 * 3 * 4);
  const std::string path = write_temp("plain.idx", idx_header(0x08, {2, 3, 4}) + payload);
  const idx_array a = kiln::data::read_idx(path);
  CHECK(a.type == idx_type::u8);
  REQUIRE(a.dims == std::vector<std::uint32_t>{2, 3, 4});
  REQUIRE(a.size() == 24);
  REQUIRE(a.data.size() == 24);
  for (std::size_t i = 0; i < 24; ++i) CHECK(a.data[i] == static_cast<std::uint8_t>(payload[i]));
  CHECK(a.at(5) == static_cast<std::uint8_t>(payload[5]));
}

TEST_CASE("idx: gzip and plain encodings of one file give the same array") {
  const std::string plain = idx_header(0x08, {5, 7}) + bytes_0_to(35);
  const idx_array from_plain = kiln::data::read_idx(write_temp("same.idx", plain));
  const idx_array from_gz = kiln::data::read_idx(write_temp("same.idx.gz", kiln_test::gzip(plain)));
  CHECK(from_gz.dims == from_plain.dims);
  CHECK(from_gz.data == from_plain.data);
}

TEST_CASE("idx: concatenated gzip members are one stream") {
  const std::string plain = idx_header(0x08, {100}) + bytes_0_to(100);
  const std::string two = kiln_test::gzip(plain.substr(0, 37)) + kiln_test::gzip(plain.substr(37));
  const idx_array a = kiln::data::read_idx_bytes(two, "two-members");
  REQUIRE(a.dims == std::vector<std::uint32_t>{100});
  CHECK(kiln::data::serialize_idx(a) == plain);
}

TEST_CASE("idx: a zero dimension makes a valid empty array, plain or gzip") {
  // Found by fuzz_idx: reading an empty payload once passed a null pointer to memcpy.
  const std::string plain = idx_header(0x0B, {3, 0});
  for (const auto& file : {plain, kiln_test::gzip(plain)}) {
    const idx_array a = kiln::data::read_idx_bytes(file, "empty");
    CHECK(a.dims == std::vector<std::uint32_t>{3, 0});
    CHECK(a.size() == 0);
    CHECK(a.data.empty());
  }
  require_format_error([&] { kiln::data::read_idx_bytes(plain + "x", "empty+1"); }, {"1 trailing bytes"});
}

TEST_CASE("idx: multi-byte element types are decoded from big-endian") {
  // i16 -2 = FF FE; i32 -2 = FF FF FF FE and 0x01020304; f32 1.5 = 3F C0 00 00; f64 -0.25 = BF D0 00..00
  std::string i16 = idx_header(0x0B, {2}) + std::string("\xFF\xFE\x01\x02", 4);
  std::string i32 = idx_header(0x0C, {2}) + std::string("\xFF\xFF\xFF\xFE\x01\x02\x03\x04", 8);
  std::string f32 = idx_header(0x0D, {1}) + std::string("\x3F\xC0\x00\x00", 4);
  std::string f64 = idx_header(0x0E, {1}) + std::string("\xBF\xD0\x00\x00\x00\x00\x00\x00", 8);
  std::string i8 = idx_header(0x09, {2}) + std::string("\xFF\x7F", 2);
  auto a = kiln::data::read_idx_bytes(i16, "i16");
  CHECK(a.at(0) == -2);
  CHECK(a.at(1) == 0x0102);
  a = kiln::data::read_idx_bytes(i32, "i32");
  CHECK(a.at(0) == -2);
  CHECK(a.at(1) == 0x01020304);
  CHECK(kiln::data::read_idx_bytes(f32, "f32").at(0) == 1.5);
  CHECK(kiln::data::read_idx_bytes(f64, "f64").at(0) == -0.25);
  a = kiln::data::read_idx_bytes(i8, "i8");
  CHECK(a.at(0) == -1);
  CHECK(a.at(1) == 127);
  // serialize_idx restores the file byte for byte, so the decoding is a bijection on these.
  for (const auto& file : {i16, i32, f32, f64, i8})
    CHECK(kiln::data::serialize_idx(kiln::data::read_idx_bytes(file, "x")) == file);
}

TEST_CASE("idx: write_idx then read_idx round-trips a 4-D array") {
  idx_array a;
  a.type = idx_type::u8;
  a.dims = {2, 1, 3, 2};
  for (std::size_t i = 0; i < 12; ++i) a.data.push_back(static_cast<std::uint8_t>(250 - i));
  const std::string path = kiln_test::temp_dir() + "/roundtrip.idx";
  kiln::data::write_idx(path, a);
  const idx_array b = kiln::data::read_idx(path);
  CHECK(b.dims == a.dims);
  CHECK(b.data == a.data);
}

TEST_CASE("idx: each malformed file gets its own message naming the file and the numbers") {
  using kiln::data::read_idx;
  SECTION("empty file") {
    const auto p = write_temp("empty.idx", "");
    require_format_error([&] { read_idx(p); }, {p, "too short for an IDX header", "4 magic bytes expected, 0 found"});
  }
  SECTION("magic does not start with two zero bytes") {
    const auto p = write_temp("magic.idx", std::string("\x01\x00\x08\x01", 4) + std::string(4, '\0'));
    require_format_error([&] { read_idx(p); }, {p, "not an IDX file", "found 0x01 0x00"});
  }
  SECTION("unknown element type") {
    const auto p = write_temp("type.idx", idx_header(0x07, {1}) + "x");
    require_format_error([&] { read_idx(p); }, {p, "unknown IDX element type 0x07"});
  }
  SECTION("zero dimensions") {
    const auto p = write_temp("dims0.idx", idx_header(0x08, {}));
    require_format_error([&] { read_idx(p); }, {p, "declares 0 dimensions", "1 to 4"});
  }
  SECTION("five dimensions") {
    const auto p = write_temp("dims5.idx", idx_header(0x08, {1, 1, 1, 1, 1}) + "x");
    require_format_error([&] { read_idx(p); }, {p, "declares 5 dimensions", "1 to 4"});
  }
  SECTION("header truncated inside the dimensions") {
    const auto p = write_temp("header.idx", idx_header(0x08, {3}, 3) + "\x01");
    require_format_error([&] { read_idx(p); }, {p, "IDX header truncated", "3 dimensions need 12 bytes", "found 5"});
  }
  SECTION("payload one byte short") {
    const auto p = write_temp("short.idx", idx_header(0x08, {2, 2, 3}) + bytes_0_to(11));
    require_format_error([&] { read_idx(p); },
                         {p, "payload truncated", "expected 12 payload bytes", "dimensions 2x2x3", "found 11"});
  }
  SECTION("payload short for a 4-byte type") {
    const auto p = write_temp("short32.idx", idx_header(0x0D, {3}) + bytes_0_to(8));
    require_format_error([&] { read_idx(p); },
                         {p, "expected 12 payload bytes", "dimensions 3 of float32 (0x0D), 4 bytes each", "found 8"});
  }
  SECTION("trailing bytes after the payload") {
    const auto p = write_temp("trailing.idx", idx_header(0x08, {4}) + bytes_0_to(7));
    require_format_error([&] { read_idx(p); }, {p, "3 trailing bytes after the IDX payload of 4 payload bytes"});
  }
  SECTION("dimensions too large to address") {
    const auto p = write_temp("huge.idx", idx_header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 2}));
    require_format_error([&] { read_idx(p); },
                         {p, "4294967295x4294967295x4294967295x2", "more data than can be addressed"});
  }
  SECTION("gzip: corrupt deflate data") {
    std::string gz = kiln_test::gzip(idx_header(0x08, {64}) + bytes_0_to(64));
    gz[10] = static_cast<char>(0xFF);  // first byte after the 10-byte gzip header: block type 11 is invalid
    gz[11] = static_cast<char>(0xFF);
    const auto p = write_temp("corrupt.idx.gz", gz);
    require_format_error([&] { read_idx(p); }, {p, "corrupt gzip stream"});
  }
  SECTION("gzip: CRC-32 mismatch") {
    std::string gz = kiln_test::gzip(idx_header(0x08, {64}) + bytes_0_to(64));
    gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0x01);  // the trailer is CRC-32 then ISIZE
    const auto p = write_temp("crc.idx.gz", gz);
    require_format_error([&] { read_idx(p); }, {p, "corrupt gzip stream", "incorrect data check"});
  }
  SECTION("gzip: stream cut short") {
    std::string gz = kiln_test::gzip(idx_header(0x08, {64}) + bytes_0_to(64));
    const auto p = write_temp("cut.idx.gz", gz.substr(0, gz.size() - 5));
    require_format_error([&] { read_idx(p); }, {p, "gzip stream truncated"});
  }
  SECTION("gzip: garbage after the stream") {
    const std::string gz = kiln_test::gzip(idx_header(0x08, {4}) + bytes_0_to(4)) + "junk";
    const auto p = write_temp("junk.idx.gz", gz);
    require_format_error([&] { read_idx(p); }, {p, "4 bytes of trailing garbage after the gzip stream"});
  }
  SECTION("gzip: well-formed stream of a truncated IDX payload") {
    const auto p = write_temp("gzshort.idx.gz", kiln_test::gzip(idx_header(0x08, {10}) + bytes_0_to(6)));
    require_format_error([&] { read_idx(p); },
                         {p, "payload truncated", "expected 10 payload bytes", "found 6", "after gzip decompression"});
  }
  SECTION("gzip: well-formed stream with bytes after the IDX payload") {
    const auto p = write_temp("gzlong.idx.gz", kiln_test::gzip(idx_header(0x08, {10}) + bytes_0_to(15)));
    require_format_error([&] { read_idx(p); }, {p, "5 trailing bytes", "after gzip decompression"});
  }
  SECTION("gzip: header cut inside the stream's content") {
    const auto p = write_temp("gzhead.idx.gz", kiln_test::gzip(std::string("\0\0\x08", 3)));
    require_format_error([&] { read_idx(p); }, {p, "4 magic bytes expected, 3 found", "after gzip decompression"});
  }
}

TEST_CASE("idx: a missing file is an io_error naming it") {
  const std::string p = kiln_test::temp_dir() + "/does-not-exist.idx";
  REQUIRE_THROWS_AS(kiln::data::read_idx(p), kiln::io_error);
  REQUIRE_THROWS_WITH(kiln::data::read_idx(p), Catch::Contains(p));
}

TEST_CASE("idx pair: pixels scale to [0,1] and labels are kept") {
  const auto images = write_temp("img.idx", idx_header(0x08, {3, 1, 2}) + std::string("\x00\xFF\x33\x66\x99\xCC", 6));
  const auto labels = write_temp("lab.idx.gz", kiln_test::gzip(idx_header(0x08, {3}) + std::string("\x02\x00\x09", 3)));
  const auto pair = kiln::data::load_idx_pair(images, labels, 10);
  CHECK(pair.count == 3);
  CHECK(pair.rows == 1);
  CHECK(pair.cols == 2);
  CHECK(pair.pixels_per_image() == 2);
  REQUIRE(pair.pixels.size() == 6);
  const float expected[] = {0.0f, 1.0f, 0.2f, 0.4f, 0.6f, 0.8f};  // 0x33 = 51 = 0.2 × 255
  for (std::size_t i = 0; i < 6; ++i) CHECK(pair.pixels[i] == Approx(expected[i]).epsilon(1e-7));
  CHECK(pair.labels == std::vector<std::int32_t>{2, 0, 9});
  // Labels of a wider integer type are accepted too.
  const auto labels32 = write_temp("lab32.idx", idx_header(0x0C, {3}) + std::string("\0\0\0\1\0\0\0\2\0\0\0\3", 12));
  CHECK(kiln::data::load_idx_pair(images, labels32, 4).labels == std::vector<std::int32_t>{1, 2, 3});
}

TEST_CASE("idx pair: mismatched or out-of-range pairs are rejected with both names and the numbers") {
  using kiln::data::load_idx_pair;
  const auto images3 = write_temp("p_img3.idx", idx_header(0x08, {3, 2, 2}) + bytes_0_to(12));
  SECTION("count mismatch") {
    const auto labels2 = write_temp("p_lab2.idx", idx_header(0x08, {2}) + std::string("\1\1", 2));
    require_format_error([&] { load_idx_pair(images3, labels2, 10); },
                         {images3, labels2, "holds 3 images but", "holds 2 labels"});
  }
  SECTION("label too large") {
    const auto labels = write_temp("p_big.idx", idx_header(0x08, {3}) + std::string("\1\12\1", 3));
    require_format_error([&] { load_idx_pair(images3, labels, 10); },
                         {labels, "label 10 at index 1 is outside [0, 10)"});
  }
  SECTION("negative label") {
    const auto labels = write_temp("p_neg.idx", idx_header(0x09, {3}) + std::string("\1\1\xFF", 3));
    require_format_error([&] { load_idx_pair(images3, labels, 10); }, {labels, "label -1 at index 2"});
  }
  SECTION("images not 3-D") {
    const auto images2d = write_temp("p_img2d.idx", idx_header(0x08, {3, 4}) + bytes_0_to(12));
    const auto labels = write_temp("p_ok.idx", idx_header(0x08, {3}) + std::string("\1\1\1", 3));
    require_format_error([&] { load_idx_pair(images2d, labels, 10); },
                         {images2d, "images must have 3 dimensions", "found 2 (3x4)"});
  }
  SECTION("labels not 1-D") {
    const auto labels = write_temp("p_lab2d.idx", idx_header(0x08, {3, 1}) + std::string("\1\1\1", 3));
    require_format_error([&] { load_idx_pair(images3, labels, 10); },
                         {labels, "labels must have 1 dimension", "found 2 (3x1)"});
  }
  SECTION("float images") {
    const auto images = write_temp("p_imgf.idx", idx_header(0x0D, {1, 1, 1}) + std::string(4, '\0'));
    const auto labels = write_temp("p_one.idx", idx_header(0x08, {1}) + std::string("\0", 1));
    require_format_error([&] { load_idx_pair(images, labels, 10); },
                         {images, "images must be unsigned byte (0x08), found float32 (0x0D)"});
  }
  SECTION("float labels") {
    const auto labels = write_temp("p_labf.idx", idx_header(0x0D, {3}) + std::string(12, '\0'));
    require_format_error([&] { load_idx_pair(images3, labels, 10); },
                         {labels, "labels must be an integer type, found float32 (0x0D)"});
  }
}

// The real data set, when the Debian package dataset-fashion-mnist is installed.
TEST_CASE("idx: Fashion-MNIST from /usr/share/datasets/fashion-mnist") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  struct stat st {};
  if (::stat((dir + "/train-images-idx3-ubyte.gz").c_str(), &st) != 0) {
    WARN("skipped: " << dir << "/train-images-idx3-ubyte.gz is missing (apt-get install dataset-fashion-mnist)");
    return;
  }
  // Published facts: 60,000 training and 10,000 test images of 28x28, 10 classes of equal size.
  struct part {
    const char* prefix;
    std::size_t count;
  };
  for (const part& p : {part{"train", 60000}, part{"t10k", 10000}}) {
    INFO(p.prefix);
    const auto d = kiln::data::load_idx_pair(dir + "/" + p.prefix + "-images-idx3-ubyte.gz",
                                             dir + "/" + p.prefix + "-labels-idx1-ubyte.gz", 10);
    CHECK(d.count == p.count);
    CHECK(d.rows == 28);
    CHECK(d.cols == 28);
    REQUIRE(d.pixels.size() == p.count * 784);
    std::array<std::size_t, 10> per_class{};
    for (auto l : d.labels) ++per_class[static_cast<std::size_t>(l)];
    for (auto n : per_class) CHECK(n == p.count / 10);
    float lo = 1, hi = 0;
    for (float v : d.pixels) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo == 0.0f);
    CHECK(hi == 1.0f);
  }
}
