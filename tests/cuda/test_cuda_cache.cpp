// The kernel cache with the real NVRTC (compile-only, no GPU): cold compile, memory hit, disk hit in a fresh
// cache object, damaged entries deleted and recompiled, keys that follow options and architecture, and the
// cold-compile versus cache-hit timing. Skips (WARN "skipped: ...") when NVRTC cannot be loaded.
#include "cuda_test_support.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>

using namespace kiln::cuda;
using kiln_test_cuda::nvrtc_or_skip;
using kiln_test_cuda::temp_dir;

namespace {

std::string read_bytes(const std::string& path) { return kiln::io::read_file(path); }
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
bool exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace

TEST_CASE("cold compile, then memory hit, then disk hit from a fresh cache object") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  temp_dir dir;
  const kernel_source src = kiln_test_cuda::row_sum_kernel();
  const gpu_target sm90 = gpu_target::parse("sm_90");

  kernel_cache first(dir.path() + "/nested/cache");  // created on first write
  const cache_result cold = first.get_or_compile(*nvrtc, src, sm90);
  CHECK(cold.origin == cache_origin::compiled);
  CHECK(cold.seconds > 0);
  CHECK(cold.key == kernel_cache::key_of(src, sm90, nvrtc->version()));
  REQUIRE(exists(first.entry_path(cold.key)));

  const cache_result again = first.get_or_compile(*nvrtc, src, sm90);
  CHECK(again.origin == cache_origin::memory);
  CHECK(again.kernel == cold.kernel);  // the very same object, not a copy

  kernel_cache second(dir.path() + "/nested/cache");
  const cache_result warm = second.get_or_compile(*nvrtc, src, sm90);
  CHECK(warm.origin == cache_origin::disk);
  CHECK(warm.kernel->image == cold.kernel->image);
  CHECK(warm.kernel->lowered_name == cold.kernel->lowered_name);
  CHECK(warm.kernel->target == "sm_90");
  CHECK(warm.kernel->kind == binary_kind::cubin);
  CHECK(second.get_or_compile(*nvrtc, src, sm90).origin == cache_origin::memory);

  const cache_stats s1 = first.stats(), s2 = second.stats();
  CHECK(s1.compiles == 1);
  CHECK(s1.memory_hits == 1);
  CHECK(s1.disk_hits == 0);
  CHECK(s2.compiles == 0);
  CHECK(s2.disk_hits == 1);
  CHECK(s2.memory_hits == 1);
  CHECK(s2.disk_load_seconds > 0);
}

TEST_CASE("a different option, architecture or source is a different entry") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  temp_dir dir;
  kernel_cache cache(dir.path());
  kernel_source src = kiln_test_cuda::axpby_kernel();
  const cache_result base = cache.get_or_compile(*nvrtc, src, gpu_target::parse("sm_90"));
  const cache_result other_arch = cache.get_or_compile(*nvrtc, src, gpu_target::parse("sm_80"));
  src.options.push_back("-DUNUSED_FLAG=1");
  const cache_result other_options = cache.get_or_compile(*nvrtc, src, gpu_target::parse("sm_90"));
  src.options.clear();
  src.source += "\n// a comment changes the key\n";
  const cache_result other_source = cache.get_or_compile(*nvrtc, src, gpu_target::parse("sm_90"));
  for (const cache_result* r : {&other_arch, &other_options, &other_source}) {
    CHECK(r->origin == cache_origin::compiled);
    CHECK(r->key != base.key);
  }
  CHECK(other_arch.kernel->image != base.kernel->image);
  CHECK(cache.stats().compiles == 4);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 4);
}

TEST_CASE("damaged disk entries are detected, deleted and recompiled") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  temp_dir dir;
  const kernel_source src = kiln_test_cuda::axpby_kernel();
  const gpu_target sm90 = gpu_target::parse("sm_90");
  std::string path, good;
  {
    kernel_cache seed(dir.path());
    const cache_result r = seed.get_or_compile(*nvrtc, src, sm90);
    path = seed.entry_path(r.key);
    good = read_bytes(path);
  }
  REQUIRE(good.size() > cache_header_bytes + 100);

  struct damage {
    const char* what;
    std::function<std::string(std::string)> apply;
    const char* reason;
  };
  const std::vector<damage> damages = {
      {"empty file", [](std::string) { return std::string(); }, "truncated header"},
      {"truncated inside the header", [](std::string b) { return b.substr(0, 30); }, "truncated header"},
      {"truncated payload", [](std::string b) { return b.substr(0, b.size() / 2); }, "length mismatch"},
      {"flipped payload byte",
       [](std::string b) {
         b[b.size() - 10] = static_cast<char>(b[b.size() - 10] ^ 0x01);
         return b;
       },
       "checksum mismatch"},
      {"wrong magic",
       [](std::string b) {
         b.replace(0, 8, "NOTKILN!");
         return b;
       },
       "wrong magic"},
  };
  for (const damage& d : damages) {
    SECTION(d.what) {
      write_bytes(path, d.apply(good));
      kernel_cache fresh(dir.path());
      const cache_result r = fresh.get_or_compile(*nvrtc, src, sm90);
      CHECK(r.origin == cache_origin::compiled);
      const cache_stats s = fresh.stats();
      CHECK(s.discarded_entries == 1);
      CHECK_THAT(s.last_discard_reason, Catch::Contains(d.reason) && Catch::Contains(path));
      // The entry was rewritten whole and is trusted again by the next process.
      CHECK(read_bytes(path) == good);
      kernel_cache next(dir.path());
      CHECK(next.get_or_compile(*nvrtc, src, sm90).origin == cache_origin::disk);
      CHECK(next.stats().discarded_entries == 0);
    }
  }
}

TEST_CASE("an unwritable cache directory costs a compile, not a failure") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  kernel_cache cache("/proc/kiln-cannot-create-this");
  const cache_result r = cache.get_or_compile(*nvrtc, kiln_test_cuda::axpby_kernel(), gpu_target::parse("sm_90"));
  CHECK(r.origin == cache_origin::compiled);
  CHECK(cache.stats().disk_write_failures == 1);
  CHECK_THAT(cache.stats().last_disk_error, Catch::Contains("/proc/kiln-cannot-create-this"));
  CHECK(cache.get_or_compile(*nvrtc, kiln_test_cuda::axpby_kernel(), gpu_target::parse("sm_90")).origin ==
        cache_origin::memory);
}

TEST_CASE("memory-only cache writes nothing and a compile error stores nothing") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  temp_dir dir;
  kernel_cache memory_only("");
  CHECK(memory_only.get_or_compile(*nvrtc, kiln_test_cuda::axpby_kernel(), gpu_target::parse("sm_90")).origin ==
        cache_origin::compiled);
  CHECK(memory_only.stats().disk_write_failures == 0);

  kernel_cache cache(dir.path());
  const kernel_source broken{"extern \"C\" __global__ void k() { syntax error }", "k", {}};
  CHECK_THROWS_AS(cache.get_or_compile(*nvrtc, broken, gpu_target::parse("sm_90")), nvrtc_compile_error);
  CHECK(cache.stats().compiles == 0);
  CHECK(std::filesystem::is_empty(dir.path()));
}

// Prints the numbers reported for this layer: cold NVRTC compile versus cache-hit load (median of 5 each).
TEST_CASE("timing: cold compile versus cache-hit load of the tiled matmul for sm_90", "[timing]") {
  auto nvrtc = nvrtc_or_skip();
  if (!nvrtc) return;
  temp_dir dir;
  const kernel_source src = kiln_test_cuda::matmul_tiled_kernel();
  const gpu_target sm90 = gpu_target::parse("sm_90");
  std::vector<double> cold, disk, memory;
  for (int rep = 0; rep < 5; ++rep) {
    kernel_source unique = src;  // a fresh key each time so every cold compile really compiles
    unique.source += "\n// rep " + std::to_string(rep) + "\n";
    kernel_cache writer(dir.path());
    const cache_result c = writer.get_or_compile(*nvrtc, unique, sm90);
    REQUIRE(c.origin == cache_origin::compiled);
    cold.push_back(c.seconds);
    kernel_cache reader(dir.path());
    const cache_result d = reader.get_or_compile(*nvrtc, unique, sm90);
    REQUIRE(d.origin == cache_origin::disk);
    disk.push_back(d.seconds);
    const cache_result m = reader.get_or_compile(*nvrtc, unique, sm90);
    REQUIRE(m.origin == cache_origin::memory);
    memory.push_back(m.seconds);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  // A disk hit skips NVRTC entirely: it must be far cheaper than compiling.
  CHECK(median(disk) < median(cold) / 5);
  // cold[0] may include NVRTC's one-time start-up when this test runs alone (as under ctest).
  std::printf("kiln cuda cache timing (%s, NVRTC %s, sm_90, median of 5): cold compile %.2f ms (first %.2f ms), "
              "disk hit %.3f ms, memory hit %.4f ms\n",
              src.name.c_str(), nvrtc->version().text().c_str(), 1e3 * median(cold), 1e3 * cold[0],
              1e3 * median(disk), 1e3 * median(memory));
}
