// Readers under hostile content rather than hostile sizes: no silent guess about a CSV header, numbers that
// underflow round as floats do, messages that survive any byte in a name, and wrong file types named as such.
#include "data_test_util.hpp"

#include <kiln/data/csv.hpp>
#include <kiln/data/idx.hpp>
#include <kiln/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

using kiln::data::read_csv_bytes;
using kiln_test::require_format_error;

using kiln_test::safetensors_file;

TEST_CASE("csv: a first row with nan or an empty cell is data, not a header that drops the row") {
  // The row is kept and its bad cell reported, instead of the row vanishing as a "header".
  require_format_error([] { read_csv_bytes("1,nan,3\n4,5,6\n", "n.csv"); },
                       {"'n.csv' line 1, column 2: expected a finite number, found 'nan'"});
  require_format_error([] { read_csv_bytes("1,,3\n4,5,6\n", "e.csv"); },
                       {"'e.csv' line 1, column 2: expected a number, found an empty cell"});
  require_format_error([] { read_csv_bytes("1,-inf,1e50\n4,5,6\n", "i.csv"); }, {"line 1, column 2"});
  const auto t = read_csv_bytes("x,,z\n1,2,3\n", "h.csv");  // one named cell is enough for a header
  CHECK(t.has_header);
  CHECK(t.rows == 1);
  CHECK(t.header_note == "line 1 read as a header (automatic: cell 1 'x' is not a number)");
  const auto d = read_csv_bytes("\n1,2\n", "d.csv");
  CHECK_FALSE(d.has_header);
  CHECK(d.header_note.find("line 2 read as data") == 0);
}

TEST_CASE("csv: numbers below the float range round to zero, numbers above it stay an error") {
  const auto t = read_csv_bytes("1e-50,-1e-50,1e-40,1e-400,0.000000000000000000000000000000000000000000000000001\n",
                                "u.csv", {kiln::data::csv_header::absent});
  REQUIRE(t.features.size() == 5);
  CHECK(t.features[0] == 0.0f);
  CHECK(std::signbit(t.features[1]));
  CHECK(t.features[2] == static_cast<float>(1e-40));  // a float subnormal, kept
  CHECK(t.features[2] > 0.0f);
  CHECK(t.features[3] == 0.0f);
  CHECK(t.features[4] == 0.0f);
  require_format_error([] { read_csv_bytes("1e50\n", "o.csv"); }, {"number '1e50' is outside the float range"});
  require_format_error([] { read_csv_bytes("-1e400\n", "o.csv"); }, {"number '-1e400' is outside the float range"});
  require_format_error([] { read_csv_bytes("1e39\n", "o.csv"); }, {"number '1e39' is outside the float range"});
}

TEST_CASE("messages escape control bytes in every quoted name or value") {
  using namespace std::string_literals;
  SECTION("a tensor name holding a NUL") {
    const auto bytes = safetensors_file(
        "{\"fc1.weight\\u0000.evil\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "abcd");
    require_format_error([&] { kiln::io::read_safetensors_bytes(bytes, "m.safetensors"); },
                         {"tensor 'fc1.weight\\x00.evil': F32 shape [2] needs 8 bytes"});
  }
  SECTION("metadata keys and unknown keys") {
    const auto escape = safetensors_file("{\"a\":{\"x\\u001b[2J\":1}}", "");
    require_format_error([&] { kiln::io::read_safetensors_bytes(escape, "k"); }, {"unknown key 'x\\x1b[2J'"});
    require_format_error(
        [] { kiln::io::read_safetensors_bytes(safetensors_file("{\"__metadata__\":{\"k\\n\":1}}", ""), "k"); },
        {"value of 'k\\x0a' must be a string"});
  }
  SECTION("a CSV cell holding a NUL, and a header name holding a control byte") {
    require_format_error([] { read_csv_bytes("a,b\n1,x\0y\n"s, "c.csv"); },
                         {"line 2, column 2 (b): expected a number, found 'x\\x00y'"});
    require_format_error([] { read_csv_bytes("a,\"b\x01\"\n1,z\n"s, "c.csv"); }, {"column 2 (b\\x01)"});
  }
  SECTION("a file name holding an escape byte") {
    require_format_error([] { read_csv_bytes("a\n", "out\x1b[2J.csv"); }, {"'out\\x1b[2J.csv': CSV file has a header"});
    require_format_error([] { kiln::data::read_idx_bytes("", "x\ty.idx"); }, {"'x\\x09y.idx': too short"});
  }
  SECTION("a checkpoint writer refusing a name") {
    std::map<std::string, kiln::io::tensor> m{{"x\0y"s, {"Q8"s, {}, {}}}};
    try {
      kiln::io::serialize_safetensors(m);
      FAIL("no error");
    } catch (const kiln::error& e) {
      CHECK(std::string(e.what()).find("tensor 'x\\x00y': unknown dtype 'Q8'") != std::string::npos);
    }
  }
}

TEST_CASE("wrong file types are named, with how to convert") {
  using namespace std::string_literals;
  const std::string zip = "PK\x03\x04\x14\x00\x00\x00\x08\x00"s + std::string(100, 'z');
  require_format_error([&] { kiln::io::read_safetensors_bytes(zip, "model.pt"); },
                       {"'model.pt': this is a zip archive (PyTorch", "not a safetensors file",
                        "from safetensors.torch import save_file"});
  require_format_error([] { kiln::io::read_safetensors_bytes("\x80\x02}q\x00(X\x06\x00\x00\x00"s, "old.pt"); },
                       {"this is a Python pickle"});
  require_format_error([] { kiln::io::read_safetensors_bytes("\x89HDF\r\n\x1a\n\0\0\0\0"s, "w.h5"); },
                       {"this is an HDF5 file"});
  require_format_error([] { kiln::io::read_safetensors_bytes("\x93NUMPY\x01\x00v\x00{'descr'"s, "a.npy"); },
                       {"this is a NumPy .npy array, not a safetensors file"});
  const std::string gz = kiln_test::gzip("a,b\n1,2\n");
  require_format_error([&] { kiln::io::read_safetensors_bytes(gz, "m.gz"); }, {"this is a gzip-compressed file"});
  require_format_error([&] { read_csv_bytes(gz, "t.csv.gz"); },
                       {"'t.csv.gz': this is a gzip-compressed file, not CSV text; decompress it first"});
  require_format_error([] { read_csv_bytes("\x01\x02\0\x05garbage\n"s, "b.csv"); },
                       {"'b.csv': binary data, not CSV text (a NUL byte at byte 2 of line 1)"});
  require_format_error([&] { kiln::data::read_idx_bytes(zip, "x.idx"); }, {"this is a zip archive", "not an IDX file"});
  // exactly the 8 length bytes (a zero-length header): the type check must not read past them
  const std::vector<char> eight(8, '\0');
  require_format_error([&] { kiln::io::read_safetensors_bytes({eight.data(), eight.size()}, "8.st"); },
                       {"the JSON header must start with '{' (it is empty)"});
  // a valid safetensors file whose length bytes spell a magic is still read: sniffing follows a failed check
  const std::string ok = safetensors_file("{}", "");
  CHECK(kiln::io::read_safetensors_bytes(ok, "ok").empty());
}
