#pragma once
// A private temporary directory for the tests that write files (data readers, checkpoints, the trainer).
#include <kiln/core/error.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln_test {

// A fresh directory under $TMPDIR (or /tmp), made once per test executable and removed when it exits.
inline const std::string& temp_dir() {
  struct owned_dir {
    std::string path;
    owned_dir() {
      const char* base = std::getenv("TMPDIR");
      path = std::string(base && *base ? base : "/tmp") + "/kiln-test-XXXXXX";
      if (!::mkdtemp(path.data())) throw kiln::io_error("mkdtemp failed for " + path);
    }
    ~owned_dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const owned_dir dir;
  return dir.path;
}

}  // namespace kiln_test
