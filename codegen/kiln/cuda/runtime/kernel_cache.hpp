#pragma once
// Compiled-kernel cache: an in-memory map in front of a directory of entry files (format: cache_entry.hpp).
// Key = fnv1a64 over (kiln version, NVRTC version, target, kernel name, options, source), each field
// length-prefixed so that no two different field lists hash the same text. A corrupt or truncated entry is
// deleted and recompiled; a cache directory that cannot be written only costs the next process a compile.
#include <kiln/core/hash.hpp>
#include <kiln/cuda/runtime/cache_entry.hpp>
#include <kiln/cuda/runtime/nvrtc.hpp>
#include <kiln/io/atomic_file.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::cuda {

// Part of every key: a new kiln version may render or compile the same source differently.
inline constexpr std::string_view cache_kiln_version = "kiln 0.1.0";

enum class cache_origin { compiled, memory, disk };

inline const char* to_string(cache_origin o) {
  switch (o) {
    case cache_origin::compiled: return "compiled";
    case cache_origin::memory: return "memory";
    default: return "disk";
  }
}

struct cache_result {
  std::shared_ptr<const compiled_kernel> kernel;
  cache_origin origin = cache_origin::compiled;
  // compiled: NVRTC time (cold compile); disk: read + verify time (cache-hit load); memory: lookup time.
  double seconds = 0;
  std::uint64_t key = 0;
};

struct cache_stats {
  std::size_t compiles = 0, memory_hits = 0, disk_hits = 0;
  std::size_t discarded_entries = 0;    // invalid entries found on disk, deleted and recompiled
  std::size_t disk_write_failures = 0;  // entries that could not be stored (the kernel was still returned)
  double compile_seconds = 0, disk_load_seconds = 0;
  std::string last_discard_reason, last_disk_error;
};

class kernel_cache {
 public:
  // `directory` == "" keeps the cache in memory only.
  explicit kernel_cache(std::string directory = default_directory()) : dir_(std::move(directory)) {}

  // $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln, else "" (memory only).
  static std::string default_directory() {
    if (std::string d = env_or_empty("KILN_CACHE_DIR"); !d.empty()) return d;
    if (std::string d = env_or_empty("XDG_CACHE_HOME"); !d.empty()) return d + "/kiln";
    if (std::string d = env_or_empty("HOME"); !d.empty()) return d + "/.cache/kiln";
    return {};
  }

  static std::uint64_t key_of(const kernel_source& src, const gpu_target& target, nvrtc_version nvrtc) {
    std::uint64_t h = fnv1a64("kiln-cuda-kernel");
    auto field = [&h](std::string_view s) { h = fnv1a64(s, fnv1a64(std::to_string(s.size()) + ":", h)); };
    field(cache_kiln_version);
    field(nvrtc.text());
    field(target.name());
    field(src.name);
    field(std::to_string(src.options.size()));
    for (const std::string& o : src.options) field(o);
    field(src.source);
    return h;
  }

  const std::string& directory() const { return dir_; }

  std::string entry_path(std::uint64_t key) const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(key));
    return dir_ + "/" + hex + ".kbin";
  }

  // The compiled kernel for (src, target) from memory, else disk, else NVRTC (then stored in both).
  // Compile errors propagate (nvrtc_compile_error) and nothing is stored.
  cache_result get_or_compile(const nvrtc_library& nvrtc, const kernel_source& src, const gpu_target& target) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const std::uint64_t key = key_of(src, target, nvrtc.version());
    auto since_start = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
    std::lock_guard lock(mutex_);
    if (auto it = memory_.find(key); it != memory_.end()) {
      ++stats_.memory_hits;
      return {it->second, cache_origin::memory, since_start(), key};
    }
    if (auto from_disk = read_entry(key)) {
      auto kernel = std::make_shared<const compiled_kernel>(std::move(*from_disk));
      memory_.emplace(key, kernel);
      const double seconds = since_start();
      ++stats_.disk_hits;
      stats_.disk_load_seconds += seconds;
      return {kernel, cache_origin::disk, seconds, key};
    }
    auto kernel = std::make_shared<const compiled_kernel>(nvrtc.compile(src, target));
    ++stats_.compiles;
    stats_.compile_seconds += kernel->compile_seconds;
    memory_.emplace(key, kernel);
    write_entry(key, *kernel);
    return {kernel, cache_origin::compiled, kernel->compile_seconds, key};
  }

  cache_stats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void clear_memory() {
    std::lock_guard lock(mutex_);
    memory_.clear();
  }

 private:
  std::optional<compiled_kernel> read_entry(std::uint64_t key) {
    if (dir_.empty()) return std::nullopt;
    const std::string path = entry_path(key);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;  // a plain miss
    std::string bytes;
    try {
      bytes = io::read_file(path);
    } catch (const io_error& e) {
      stats_.last_disk_error = e.what();
      return std::nullopt;
    }
    decoded_entry d = decode_cache_entry(bytes, key);
    if (d.kernel) return std::move(d.kernel);
    ++stats_.discarded_entries;
    stats_.last_discard_reason = "cache entry '" + path + "': " + d.problem + "; deleted and recompiled";
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      stats_.last_disk_error = "cannot delete invalid cache entry '" + path + "': " + io::errno_text();
    return std::nullopt;
  }

  void write_entry(std::uint64_t key, const compiled_kernel& kernel) {
    if (dir_.empty()) return;
    try {
      io::make_dirs(dir_);
      io::write_file_atomic(entry_path(key), encode_cache_entry(key, kernel));
    } catch (const io_error& e) {
      ++stats_.disk_write_failures;
      stats_.last_disk_error = e.what();
    }
  }

  std::string dir_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<const compiled_kernel>> memory_;
  cache_stats stats_;
};

}  // namespace kiln::cuda
