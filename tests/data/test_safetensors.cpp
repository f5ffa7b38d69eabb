// safetensors: round trips, a hand-made file, one crafted bad file per rule, and a cross-check against the
// reference implementation (Python package safetensors) when it is importable.
#include "data_test_util.hpp"

#include <kiln/io/json.hpp>
#include <kiln/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

using kiln::io::tensor;
using kiln_test::require_format_error;
using kiln_test::le64;
using kiln_test::safetensors_file;
using kiln_test::write_temp;

namespace {

tensor raw(std::string dtype, std::vector<std::int64_t> shape, const std::string& bytes) {
  tensor t{std::move(dtype), std::move(shape), {}};
  for (char c : bytes) t.bytes.push_back(static_cast<std::byte>(c));
  return t;
}

std::map<std::string, tensor> sample_tensors() {
  const std::vector<float> w{1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
  const std::vector<std::int64_t> steps{1234567890123ll};
  const std::vector<std::int32_t> ids{-1, 0, 7, 2147483647};
  std::map<std::string, tensor> m;
  m["layer1.weight"] = kiln::io::make_f32({2, 3}, w);
  m["step"] = kiln::io::make_i64({}, steps);
  m["ids"] = kiln::io::make_i32({4}, ids);
  m["empty"] = kiln::io::make_f32({0, 5}, std::vector<float>{});
  return m;
}

}  // namespace

TEST_CASE("safetensors: write then read gives back the tensors and the metadata") {
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"epoch", "3"}, {"note", "caf\xC3\xA9 \"q\""}};
  const std::string path = kiln_test::temp_dir() + "/model.safetensors";
  kiln::io::write_safetensors(path, tensors, meta);
  const auto back = kiln::io::read_safetensors_content(path);
  CHECK(back.tensors == tensors);
  CHECK(back.metadata == meta);
  CHECK(kiln::io::read_safetensors(path) == tensors);
  CHECK(kiln::io::values_f32(back.tensors.at("layer1.weight")) ==
        std::vector<float>{1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f});
  CHECK(kiln::io::values_i64(back.tensors.at("step")) == std::vector<std::int64_t>{1234567890123ll});
  CHECK(kiln::io::values_i32(back.tensors.at("ids")) == std::vector<std::int32_t>{-1, 0, 7, 2147483647});
  CHECK(back.tensors.at("empty").shape == std::vector<std::int64_t>{0, 5});
}

TEST_CASE("safetensors: the writer's layout is deterministic, sorted, aligned and space-padded") {
  const auto bytes = kiln::io::serialize_safetensors(sample_tensors());
  std::uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  CHECK(n % 8 == 0);
  const std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  // Data in name order: empty (0 B), ids (16 B), layer1.weight (24 B), step (8 B).
  CHECK(header.find("\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}") != std::string::npos);
  CHECK(header.find("\"ids\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}") != std::string::npos);
  CHECK(header.find("\"layer1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]}") !=
        std::string::npos);
  CHECK(header.find("\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[40,48]}") != std::string::npos);
  CHECK(bytes.size() == 8 + n + 48);
  CHECK(header.find("__metadata__") == std::string::npos);  // omitted when empty
  // Same content, built in another order: identical bytes.
  std::map<std::string, tensor> again;
  for (const char* name : {"step", "empty", "layer1.weight", "ids"}) again[name] = sample_tensors().at(name);
  CHECK(kiln::io::serialize_safetensors(again) == bytes);
}

TEST_CASE("safetensors: a hand-written file with unsorted data and free whitespace reads correctly") {
  // b's data comes first in the data section; keys appear in another order; the header has newlines.
  const std::string header =
      "{\n \"b\": {\"shape\": [2], \"data_offsets\": [0, 2], \"dtype\": \"U8\"},\n"
      " \"__metadata__\": {},\n \"a\": {\"dtype\": \"I16\", \"data_offsets\": [2, 6], \"shape\": [1, 2]}\n}";
  const auto m = kiln::io::read_safetensors_bytes(safetensors_file(header, std::string("\x07\x08\x01\x00\xFF\xFF", 6)), "hand");
  REQUIRE(m.size() == 2);
  CHECK(m.at("b") == raw("U8", {2}, "\x07\x08"));
  CHECK(kiln::io::tensor_values<std::int16_t>(m.at("a")) == std::vector<std::int16_t>{1, -1});
  // An empty header object is a valid file with no tensors.
  CHECK(kiln::io::read_safetensors_bytes(safetensors_file("{}", ""), "empty").empty());
}

TEST_CASE("safetensors: each malformed file gets its own message naming the file and the tensor") {
  using kiln::io::read_safetensors;
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');
  SECTION("shorter than the length field") {
    const auto p = write_temp("tiny.safetensors", "abc");
    require_format_error([&] { read_safetensors(p); }, {p, "8 header-length bytes expected, 3 found"});
  }
  SECTION("header length above the limit") {
    const auto p = write_temp("limit.safetensors", le64(200ull << 20) + "{}");
    require_format_error([&] { read_safetensors(p); }, {p, "header length 209715200 exceeds the limit of 104857600"});
  }
  SECTION("header length past the end of the file") {
    const auto p = write_temp("long.safetensors", le64(100) + "{}");
    require_format_error([&] { read_safetensors(p); }, {p, "header length 100 but only 2 bytes follow"});
  }
  SECTION("header not starting with '{'") {
    const auto p = write_temp("brace.safetensors", safetensors_file(" {}", ""));
    require_format_error([&] { read_safetensors(p); }, {p, "the JSON header must start with '{'"});
  }
  SECTION("JSON syntax error, positioned in the file") {
    const auto p = write_temp("syntax.safetensors", safetensors_file("{" + ok_entry + ",}", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "JSON syntax error at byte 62", "object key"});
  }
  SECTION("unknown dtype") {
    const auto p =
        write_temp("dtype.safetensors", safetensors_file(R"({"w":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': unknown dtype 'F31'"});
  }
  SECTION("negative dimension") {
    const auto p =
        write_temp("neg.safetensors", safetensors_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': shape entries must be non-negative", "-2"});
  }
  SECTION("shape and offsets disagree") {
    const auto p =
        write_temp("size.safetensors", safetensors_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8));
    require_format_error([&] { read_safetensors(p); },
                         {p, "tensor 'w': F32 shape [3] needs 12 bytes but data_offsets [0, 8] hold 8"});
  }
  SECTION("shape too large") {
    const auto p =
        write_temp("huge.safetensors",
                   safetensors_file(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8));
    require_format_error([&] { read_safetensors(p); },
                         {p, "tensor 'w': shape [4294967296, 4294967296] has more than 2^64 bytes"});
  }
  SECTION("offsets past the data section") {
    const auto p = write_temp("past.safetensors", safetensors_file("{" + ok_entry + "}", std::string(4, '\0')));
    require_format_error([&] { read_safetensors(p); },
                         {p, "tensor 'w' data_offsets [0, 8) run past the data section of 4 bytes"});
  }
  SECTION("begin after end") {
    const auto p =
        write_temp("order.safetensors", safetensors_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': data_offsets [8, 0] end before they begin"});
  }
  SECTION("overlapping tensors") {
    const auto p =
        write_temp("overlap.safetensors", safetensors_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                                  std::string(12, '\0')));
    require_format_error([&] { read_safetensors(p); },
                         {p, "tensor 'b' bytes [4, 12) overlap tensor 'a' which ends at 8"});
  }
  SECTION("gap between tensors") {
    const auto p = write_temp("gap.safetensors", safetensors_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                                         std::string(12, '\0')));
    require_format_error([&] { read_safetensors(p); },
                         {p, "gap of 4 unused bytes at data offset 4, before tensor 'b'"});
  }
  SECTION("trailing bytes after the last tensor") {
    const auto p = write_temp("trail.safetensors", safetensors_file("{" + ok_entry + "}", std::string(11, '\0')));
    require_format_error(
        [&] { read_safetensors(p); },
        {p, "3 trailing bytes after the last tensor (the data section has 11 bytes, the tensors cover 8)"});
  }
  SECTION("duplicate tensor name") {
    const auto p = write_temp("dup.safetensors", safetensors_file("{" + ok_entry + "," + ok_entry + "}", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w' appears twice in the header"});
  }
  SECTION("missing key") {
    const auto p = write_temp("missing.safetensors", safetensors_file(R"({"w":{"dtype":"F32","shape":[2]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': missing key 'data_offsets'"});
  }
  SECTION("unknown key") {
    const auto p = write_temp("extra.safetensors",
                              safetensors_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"stride":[1]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': unknown key 'stride'"});
  }
  SECTION("tensor entry not an object") {
    const auto p = write_temp("notobj.safetensors", safetensors_file(R"({"w":[0,8]})", ""));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': expected an object", "found an array"});
  }
  SECTION("offsets not a pair of integers") {
    const auto p =
        write_temp("offs.safetensors", safetensors_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", data8));
    require_format_error([&] { read_safetensors(p); }, {p, "tensor 'w': data_offsets must be [begin, end]"});
  }
  SECTION("metadata value not a string") {
    const auto p = write_temp("meta.safetensors", safetensors_file(R"({"__metadata__":{"epoch":3}})", ""));
    require_format_error([&] { read_safetensors(p); },
                         {p, "__metadata__ value of 'epoch' must be a string, found a number"});
  }
  SECTION("invalid UTF-8 in a tensor name") {
    const auto p = write_temp("utf8.safetensors", safetensors_file("{\"w\xFF\":{}}", ""));
    require_format_error([&] { read_safetensors(p); }, {p, "ill-formed UTF-8"});
  }
}

TEST_CASE("safetensors: the writer refuses tensors the format cannot hold") {
  auto one = [](tensor t) { return std::map<std::string, tensor>{{"x", std::move(t)}}; };
  CHECK_THROWS_WITH(kiln::io::serialize_safetensors(one(raw("F32", {3}, "12345678"))),
                    Catch::Contains("tensor 'x': F32 shape [3] needs 12 bytes, found 8"));
  CHECK_THROWS_AS(kiln::io::serialize_safetensors(one(raw("F32", {3}, "12345678"))), kiln::shape_error);
  CHECK_THROWS_WITH(kiln::io::serialize_safetensors(one(raw("Q8", {1}, "1"))), Catch::Contains("unknown dtype 'Q8'"));
  CHECK_THROWS_WITH(kiln::io::serialize_safetensors(one(raw("U8", {-1}, ""))), Catch::Contains("negative dimension"));
  CHECK_THROWS_WITH(kiln::io::serialize_safetensors({{"__metadata__", raw("U8", {1}, "1")}}),
                    Catch::Contains("reserved"));
  CHECK_THROWS_WITH(kiln::io::serialize_safetensors({{"bad\xFF", raw("U8", {1}, "1")}}), Catch::Contains("UTF-8"));
  CHECK_THROWS_AS(kiln::io::make_f32({2, 2}, std::vector<float>{1, 2, 3}), kiln::shape_error);
  // A failed write leaves no file behind.
  const std::string path = kiln_test::temp_dir() + "/refused.safetensors";
  CHECK_THROWS(kiln::io::write_safetensors(path, one(raw("F32", {3}, "1"))));
  CHECK_THROWS_AS(kiln::io::read_file(path), kiln::io_error);
}

TEST_CASE("safetensors: typed accessors check the dtype") {
  const auto t = kiln::io::make_i64({2}, std::vector<std::int64_t>{5, -6});
  CHECK_THROWS_WITH(kiln::io::values_f32(t, "tensor 'steps'"),
                    Catch::Contains("tensor 'steps': dtype is I64, expected F32"));
  CHECK(kiln::io::values_i64(t) == std::vector<std::int64_t>{5, -6});
  // Stored little-endian: 5 = 05 00 .. 00.
  CHECK(t.bytes[0] == std::byte{5});
  CHECK(t.bytes[7] == std::byte{0});
}

// ---- cross-check against the reference implementation

namespace {

const char* cross_check_script = R"PY(
import sys, json, struct, ctypes
import safetensors

def write(path):
    specs, keep = {}, []
    def add(name, dtype, shape, raw):
        buf = ctypes.create_string_buffer(raw, len(raw))
        keep.append(buf)
        if hasattr(safetensors, "TensorSpec"):
            specs[name] = safetensors.TensorSpec(dtype=dtype, shape=shape,
                                                 data_ptr=ctypes.addressof(buf), data_len=len(raw))
        else:
            specs[name] = {"dtype": dtype, "shape": shape, "data": raw}
    add("weight", "float32", [2, 3], struct.pack("<6f", *[0.5 * i - 1 for i in range(6)]))
    add("steps", "int64", [], struct.pack("<q", 123456789012))
    add("ids", "int32", [4], struct.pack("<4i", -1, 0, 1, 2**31 - 1))
    add("half", "float16", [2], struct.pack("<2H", 0x3C00, 0xC000))
    add("empty", "float32", [0, 3], b"")
    open(path, "wb").write(safetensors.serialize(specs, {"epoch": "3", "note": "caf\u00e9"}))

def read(path, out):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    result = {"metadata": header.get("__metadata__", {}), "tensors": {}}
    for name, t in safetensors.deserialize(data):
        result["tensors"][name] = {"dtype": t["dtype"], "shape": list(t["shape"]), "hex": bytes(t["data"]).hex()}
    open(out, "w").write(json.dumps(result))

if sys.argv[1] == "write":
    write(sys.argv[2])
else:
    read(sys.argv[2], sys.argv[3])
)PY";

std::string python() {
  const char* env = std::getenv("KILN_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

bool run(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

std::string hex_of(const std::vector<std::byte>& bytes) {
  const char* digits = "0123456789abcdef";
  std::string s;
  for (auto b : bytes) {
    s.push_back(digits[std::to_integer<unsigned>(b) >> 4]);
    s.push_back(digits[std::to_integer<unsigned>(b) & 15]);
  }
  return s;
}

// What the reference reader saw: {"metadata": {k: v}, "tensors": {name: {"dtype", "shape", "hex"}}}.
struct seen_file {
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> tensors;  // name -> "dtype [shape] hex"
};

seen_file read_seen(const std::string& path) {
  const auto root = kiln::io::parse_json(kiln::io::read_file(path), path);
  seen_file out;
  for (const auto& part : root.members) {
    for (const auto& m : part.value.members) {
      if (part.key == "metadata") {
        out.metadata[m.key] = m.value.text;
        continue;
      }
      std::string dtype, shape = "[", hex;
      for (const auto& field : m.value.members) {
        if (field.key == "dtype") dtype = field.value.text;
        if (field.key == "hex") hex = field.value.text;
        if (field.key == "shape")
          for (const auto& d : field.value.items) shape += d.text + ",";
      }
      out.tensors[m.key] = dtype + " " + shape + "] " + hex;
    }
  }
  return out;
}

std::string describe(const tensor& t) {
  std::string shape = "[";
  for (auto d : t.shape) shape += std::to_string(d) + ",";
  return t.dtype + " " + shape + "] " + hex_of(t.bytes);
}

}  // namespace

TEST_CASE("safetensors: files agree with the reference implementation both ways") {
  const std::string py = python();
  if (!run(py + " -c 'import safetensors' > /dev/null 2>&1")) {
    WARN("skipped: " << py << " cannot import safetensors (set KILN_PYTHON to an interpreter that can)");
    return;
  }
  const std::string dir = kiln_test::temp_dir();
  const std::string script = write_temp("cross_check.py", cross_check_script);

  SECTION("kiln writes, the reference reads") {
    const auto tensors = sample_tensors();
    const std::map<std::string, std::string> meta{{"epoch", "3"}, {"note", "caf\xC3\xA9"}};
    kiln::io::write_safetensors(dir + "/kiln.safetensors", tensors, meta);
    REQUIRE(run(py + " " + script + " read " + dir + "/kiln.safetensors " + dir + "/seen.json"));
    const seen_file seen = read_seen(dir + "/seen.json");
    CHECK(seen.metadata == meta);
    std::map<std::string, std::string> expected;
    for (const auto& [name, t] : tensors) expected[name] = describe(t);
    CHECK(seen.tensors == expected);
  }
  SECTION("the reference writes, kiln reads") {
    const std::string path = dir + "/reference.safetensors";
    REQUIRE(run(py + " " + script + " write " + path));
    const auto got = kiln::io::read_safetensors_content(path);
    CHECK(got.metadata == std::map<std::string, std::string>{{"epoch", "3"}, {"note", "caf\xC3\xA9"}});
    REQUIRE(got.tensors.size() == 5);
    CHECK(got.tensors.at("weight").shape == std::vector<std::int64_t>{2, 3});
    CHECK(kiln::io::values_f32(got.tensors.at("weight")) == std::vector<float>{-1, -0.5f, 0, 0.5f, 1, 1.5f});
    CHECK(got.tensors.at("steps").shape.empty());
    CHECK(kiln::io::values_i64(got.tensors.at("steps")) == std::vector<std::int64_t>{123456789012ll});
    CHECK(kiln::io::values_i32(got.tensors.at("ids")) == std::vector<std::int32_t>{-1, 0, 1, 2147483647});
    CHECK(got.tensors.at("half") == raw("F16", {2}, std::string("\x00\x3C\x00\xC0", 4)));
    CHECK(got.tensors.at("empty").shape == std::vector<std::int64_t>{0, 3});
    CHECK(got.tensors.at("empty").bytes.empty());
    // What kiln read is what the reference reads from the same file.
    REQUIRE(run(py + " " + script + " read " + path + " " + dir + "/reference.json"));
    const seen_file ref = read_seen(dir + "/reference.json");
    std::map<std::string, std::string> mine;
    for (const auto& [name, t] : got.tensors) mine[name] = describe(t);
    CHECK(ref.tensors == mine);
    CHECK(ref.metadata == got.metadata);
  }
}
