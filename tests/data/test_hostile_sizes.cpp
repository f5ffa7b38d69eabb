// Files whose headers claim far more than they hold, or that are not the expected kind at all: each reader must
// reject them (or read a valid one) with memory bounded by what the file really holds and, for a bad header, in
// at most 50 ms of CPU whatever the file's size. Each case runs in its own child (peak_memory.hpp).
#include "data_test_util.hpp"
#include "peak_memory.hpp"

#include <kiln/data/csv.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <random>
#include <string>
#include <unistd.h>

using kiln_test::cost;
using kiln_test::idx_header;
using kiln_test::le64;
using kiln_test::measure_in_child;
using kiln_test::rss_slack_mib;

namespace {

constexpr double max_reject_cpu_ms = 50;

// `head` followed by zeros up to `size` bytes, as a sparse file: a large claimed size costs no disk.
std::string sparse_file(const std::string& name, const std::string& head, off_t size) {
  const std::string path = kiln_test::temp_dir() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, head.data(), head.size()) == static_cast<ssize_t>(head.size()));
  REQUIRE(::ftruncate(fd, size) == 0);
  ::close(fd);
  return path;
}

// A safetensors file whose 4 MiB header is `open` 0,0,0,...,0 `close` (2 M numbers): enough that a reader
// which builds every value (250 MB as 88-byte DOM nodes) fails the bound, small enough for a quick test.
std::string header_of_zeros(const std::string& name, const std::string& open, const std::string& close) {
  std::string header = open;
  header.reserve(4u << 20);
  while (header.size() < (4u << 20) - close.size() - 1) header += "0,";
  header += "0" + close;
  return kiln_test::write_temp(name, le64(header.size()) + header);
}

void report(const char* what, const cost& c) {
  WARN(what << ": peak +" << c.peak_mib << " MiB, " << c.cpu_ms << " ms CPU; " << c.outcome.substr(0, 160));
}

// Runs `read` in a child; it must fail with `message`, with no more memory than the slack (a valid file of
// such a header would hold next to nothing) and within the CPU budget of a rejection.
template <class F>
void require_rejected_cheaply(const char* what, F&& read, const std::string& message) {
  const cost c = measure_in_child(read);
  report(what, c);
  CHECK(c.outcome.find(message) != std::string::npos);
  CHECK(c.peak_mib <= rss_slack_mib);
  CHECK(c.cpu_ms <= max_reject_cpu_ms);
}

}  // namespace

TEST_CASE("hostile sizes: a 4 MiB safetensors header of numbers is rejected at its first wrong value") {
  // {"w":[0,0,0,...]}: numbers where a tensor's object belongs. A DOM parser built every one of them
  // (88 bytes per node: 1.5 GB for the 12 M of a 24 MiB header) before looking.
  const std::string path = header_of_zeros("numbers.safetensors", "{\"w\":[", "]}");
  require_rejected_cheaply("4 MiB header of numbers", [&] { kiln::io::read_safetensors(path); },
                           "tensor 'w': expected an object {dtype, shape, data_offsets}, found an array");
}

TEST_CASE("hostile sizes: a shape of millions of dimensions is refused past the 64th") {
  const std::string path = header_of_zeros("rank.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[", "]}}");
  require_rejected_cheaply("4 MiB shape", [&] { kiln::io::read_safetensors(path); },
                           "tensor 'w': shape has more than 64 dimensions");
}

TEST_CASE("hostile sizes: a valid safetensors file costs at most twice its data") {
  constexpr std::size_t n = 2u << 20;  // 2 M floats = 8 MiB
  const std::string header = R"({"w":{"dtype":"F32","shape":[2097152],"data_offsets":[0,8388608]}})";
  std::string file = le64(header.size()) + header;
  file.resize(file.size() + 4 * n, '\x01');
  const std::string path = kiln_test::write_temp("valid.safetensors", file);
  file = {};
  const cost c = measure_in_child([&] {
    const auto t = kiln::io::read_safetensors(path);
    if (t.at("w").bytes.size() != 4 * n) throw std::runtime_error("wrong size");
  });
  report("valid 8 MiB safetensors", c);
  CHECK(c.outcome == "ok");
  CHECK(c.peak_mib <= 2 * 8 + rss_slack_mib);
}

TEST_CASE("hostile sizes: a gzip IDX file with gigabytes of trailing data stops at the first byte past the payload") {
  // 16 payload bytes, then 1 GiB of zeros as 16 concatenated gzip members of 64 MiB each (about 1 MB on disk).
  const std::string zeros_member = kiln_test::gzip(std::string(64u << 20, '\0'));
  std::string file = kiln_test::gzip(idx_header(0x08, {16}) + std::string(16, '\x07'));
  for (int i = 0; i < 16; ++i) file += zeros_member;
  const std::string path = kiln_test::write_temp("bomb.idx.gz", file);
  require_rejected_cheaply("gzip IDX, 1 GiB trailing", [&] { kiln::data::read_idx(path); },
                           "more than 65535 trailing bytes after the IDX payload of 16 payload bytes");
}

TEST_CASE("hostile sizes: a gzip IDX header claiming 4 GiB reserves only what arrives") {
  // 65536 x 65536 bytes claimed; 2 MiB of incompressible bytes follow, so the compressed file is 2 MiB too and
  // a reservation of 1032 x the compressed size would be 2 GB.
  std::string payload(2u << 20, '\0');
  std::mt19937 rng(7);
  for (auto& ch : payload) ch = static_cast<char>(rng());
  const std::string path =
      kiln_test::write_temp("claims.idx.gz", kiln_test::gzip(idx_header(0x08, {65536, 65536}) + payload));
  payload = {};
  const cost c = measure_in_child([&] { kiln::data::read_idx(path); });
  report("gzip IDX claiming 65536x65536", c);
  CHECK(c.outcome.find("IDX payload truncated: expected 4294967296 payload bytes") != std::string::npos);
  CHECK(c.peak_mib <= 2 * 2 + 2 + rss_slack_mib);  // twice the 2 MiB that arrived, plus the 2 MiB file
}

TEST_CASE("hostile sizes: a 2.5 GB file of the wrong kind is rejected from its first bytes") {
  const off_t big = 2500ll << 20;  // sparse: no disk, but a reader that reads it whole pays 2.5 GB
  SECTION("a zip archive passed as a checkpoint") {
    const std::string path = sparse_file("model.pt", std::string("PK\x03\x04", 4), big);
    require_rejected_cheaply("2.5 GB zip as safetensors", [&] { kiln::io::read_safetensors(path); },
                           "this is a zip archive (PyTorch");
  }
  SECTION("a plain IDX file with a small payload and gigabytes after it") {
    const std::string path = sparse_file("trailing.idx", idx_header(0x08, {16}), big);
    require_rejected_cheaply("2.5 GB plain IDX", [&] { kiln::data::read_idx(path); },
                           "trailing bytes after the IDX payload of 16 payload bytes");
  }
  SECTION("binary zeros read as CSV") {
    const std::string path = sparse_file("zeros.csv", "", big);
    require_rejected_cheaply("2.5 GB of zeros as CSV", [&] { kiln::data::read_csv(path); },
                           "binary data, not CSV text");
  }
}
