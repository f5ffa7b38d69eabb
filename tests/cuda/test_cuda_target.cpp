// Pure rules of the CUDA layer, checked without NVRTC, driver or GPU: target names, target choice,
// driver/NVRTC version policy, numbered sources, cache keys and the cache entry format.
#include "cuda_test_support.hpp"

using namespace kiln::cuda;

TEST_CASE("gpu_target parses and prints sm_, compute_ and suffixed names") {
  CHECK(gpu_target::parse("sm_90") == gpu_target{90, false, ""});
  CHECK(gpu_target::parse("compute_80") == gpu_target{80, true, ""});
  CHECK(gpu_target::parse("sm_90a") == gpu_target{90, false, "a"});
  CHECK(gpu_target::parse("sm_100f").arch == 100);
  for (const char* name : {"sm_75", "compute_120", "sm_90a", "compute_100f"})
    CHECK(gpu_target::parse(name).name() == name);
  for (const char* bad : {"", "sm_", "sm_9", "sm_9000", "sm90", "compute_x0", "gfx90a", "sm_a"})
    CHECK_THROWS_WITH(gpu_target::parse(bad), Catch::Contains("expected"));
}

TEST_CASE("choose_target: CUBIN for the newest same-major arch, PTX only when needed") {
  const std::vector<int> nvrtc13 = {75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121};
  const auto full = driver_compatibility::full;
  CHECK(choose_target(90, nvrtc13, full, "13.0") == gpu_target{90, false, ""});
  CHECK(choose_target(86, nvrtc13, full, "13.0") == gpu_target{86, false, ""});
  // sm_89 device, NVRTC without 89: sm_86 SASS runs on 8.9 (same major, lower minor).
  CHECK(choose_target(89, {75, 80, 86, 90}, full, "12.0") == gpu_target{86, false, ""});
  // Device newer than every arch NVRTC knows (sm_130): PTX for the newest, JIT-compiled by the driver.
  CHECK(choose_target(130, nvrtc13, full, "13.0") == gpu_target{121, true, ""});
  // ... which a driver older than NVRTC cannot JIT.
  CHECK_THROWS_AS(choose_target(130, nvrtc13, driver_compatibility::cubin_only, "13.0"), kiln::backend_unavailable);
  CHECK(choose_target(90, nvrtc13, driver_compatibility::cubin_only, "13.0") == gpu_target{90, false, ""});
  // Device older than everything NVRTC supports (a Pascal sm_61 with NVRTC 13).
  CHECK_THROWS_WITH(choose_target(61, nvrtc13, full, "13.0"),
                    Catch::Contains("sm_61") && Catch::Contains("older than every architecture") &&
                        Catch::Contains("sm_75"));
}

TEST_CASE("check_driver_version: older major refused with both versions, older minor means CUBIN only") {
  const nvrtc_version v13_0{13, 0}, v13_1{13, 1};
  CHECK(check_driver_version(13000, v13_0) == driver_compatibility::full);
  CHECK(check_driver_version(13020, v13_1) == driver_compatibility::full);
  CHECK(check_driver_version(13000, v13_1) == driver_compatibility::cubin_only);
  CHECK_THROWS_AS(check_driver_version(12040, v13_0), kiln::backend_unavailable);
  CHECK_THROWS_WITH(check_driver_version(12040, v13_0), Catch::Contains("driver older than the toolkit") &&
                                                            Catch::Contains("12.4") && Catch::Contains("12040") &&
                                                            Catch::Contains("NVRTC is version 13.0"));
}

TEST_CASE("number_lines pads line numbers to the widest") {
  CHECK(number_lines("a\nb\n") == "  1 | a\n  2 | b\n");
  CHECK(number_lines("x") == "  1 | x\n");
  CHECK(number_lines("") == "");
  std::string ten;
  for (int i = 1; i <= 10; ++i) ten.append("l").append(std::to_string(i)).append("\n");
  const std::string numbered = number_lines(ten);
  CHECK(numbered.find("   1 | l1\n") == 0);
  CHECK(numbered.find("  10 | l10\n") != std::string::npos);
}

TEST_CASE("cache key changes with every input and only with them") {
  const kernel_source src = kiln_test_cuda::axpby_kernel();
  const gpu_target sm90 = gpu_target::parse("sm_90");
  const nvrtc_version v{13, 0};
  const auto base = kernel_cache::key_of(src, sm90, v);
  CHECK(kernel_cache::key_of(src, sm90, v) == base);

  kernel_source other_source = src;
  other_source.source += " ";
  kernel_source other_options = src;
  other_options.options.push_back("-DSCALE=2");
  kernel_source other_name = src;
  other_name.name = "axpby2";
  // Moving text between fields must not collide: {"ab"} and {"a","b"} are different option lists.
  kernel_source joined = src, split = src;
  joined.options = {"-DAB"};
  split.options = {"-DA", "B"};
  CHECK(kernel_cache::key_of(other_source, sm90, v) != base);
  CHECK(kernel_cache::key_of(other_options, sm90, v) != base);
  CHECK(kernel_cache::key_of(other_name, sm90, v) != base);
  CHECK(kernel_cache::key_of(joined, sm90, v) != kernel_cache::key_of(split, sm90, v));
  CHECK(kernel_cache::key_of(src, gpu_target::parse("sm_80"), v) != base);
  CHECK(kernel_cache::key_of(src, gpu_target::parse("compute_90"), v) != base);
  CHECK(kernel_cache::key_of(src, sm90, nvrtc_version{13, 1}) != base);
}

TEST_CASE("kernel_cache::default_directory follows KILN_CACHE_DIR, XDG_CACHE_HOME, HOME") {
  using kiln_test_cuda::scoped_env;
  scoped_env home("HOME", "/home/someone");
  {
    scoped_env kiln("KILN_CACHE_DIR", "/tmp/kiln-explicit");
    scoped_env xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(kernel_cache::default_directory() == "/tmp/kiln-explicit");
  }
  {
    scoped_env kiln("KILN_CACHE_DIR", nullptr);
    scoped_env xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(kernel_cache::default_directory() == "/xdg/kiln");
  }
  {
    scoped_env kiln("KILN_CACHE_DIR", nullptr);
    scoped_env xdg("XDG_CACHE_HOME", nullptr);
    CHECK(kernel_cache::default_directory() == "/home/someone/.cache/kiln");
  }
}

namespace {
compiled_kernel sample_compiled() {
  compiled_kernel k;
  k.kind = binary_kind::cubin;
  k.target = "sm_90";
  k.lowered_name = "_ZN4kiln1kILi3EEEvPf";
  for (int i = 0; i < 300; ++i) k.image.push_back(static_cast<char>(i * 7));
  return k;
}
}  // namespace

TEST_CASE("cache entry round-trips and rejects every kind of damage") {
  const std::uint64_t key = 0x0123456789abcdefull;
  const compiled_kernel k = sample_compiled();
  const std::string good = encode_cache_entry(key, k);
  REQUIRE(good.size() == cache_header_bytes + k.target.size() + k.lowered_name.size() + k.image.size());

  const decoded_entry ok = decode_cache_entry(good, key);
  REQUIRE(ok.kernel);
  CHECK(ok.problem.empty());
  CHECK(ok.kernel->image == k.image);
  CHECK(ok.kernel->lowered_name == k.lowered_name);
  CHECK(ok.kernel->target == "sm_90");
  CHECK(ok.kernel->kind == binary_kind::cubin);

  auto problem = [&](const std::string& bytes, std::uint64_t with_key = 0x0123456789abcdefull) {
    decoded_entry d = decode_cache_entry(bytes, with_key);
    CHECK_FALSE(d.kernel);
    return d.problem;
  };
  CHECK_THAT(problem(""), Catch::Contains("truncated header"));
  CHECK_THAT(problem(good.substr(0, 20)), Catch::Contains("truncated header"));
  CHECK_THAT(problem(good.substr(0, good.size() - 1)), Catch::Contains("length mismatch"));
  CHECK_THAT(problem(good.substr(0, cache_header_bytes)), Catch::Contains("length mismatch"));
  CHECK_THAT(problem(good + "x"), Catch::Contains("length mismatch"));
  std::string magic = good;
  magic[0] = 'X';
  CHECK_THAT(problem(magic), Catch::Contains("wrong magic"));
  std::string version = good;
  version[8] = 2;
  CHECK_THAT(problem(version), Catch::Contains("format version 2"));
  CHECK_THAT(problem(good, key + 1), Catch::Contains("key"));
  // One flipped bit anywhere in the body (target, name or payload) is caught by the checksum.
  for (std::size_t at : {cache_header_bytes, cache_header_bytes + 7, good.size() / 2, good.size() - 1}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    CHECK_THAT(problem(flipped), Catch::Contains("checksum mismatch"));
  }
  // A length field inflated to near 2^64 must not wrap around the size check.
  std::string huge = good;
  for (int i = 0; i < 8; ++i) huge[32 + i] = static_cast<char>(0xff);
  CHECK_THAT(problem(huge), Catch::Contains("length mismatch"));
}

TEST_CASE("dynamic_library lists every candidate it could not open") {
  const auto lib = dynamic_library::open_first({"/nonexistent/libalpha.so", "libkiln-no-such-beta.so"});
  CHECK_FALSE(lib.ok());
  CHECK_THAT(lib.failure(), Catch::Contains("/nonexistent/libalpha.so") && Catch::Contains("libkiln-no-such-beta.so"));
}
