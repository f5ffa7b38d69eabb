#pragma once
// Helpers for the training tests: a private temp directory, a directory for pictures a person may want to look
// at (kept in the build tree), running shell commands, and checks on files.
#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>

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
      path = std::string(base && *base ? base : "/tmp") + "/kiln-train-test-XXXXXX";
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

// <build>/test-artifacts/train: rendered pictures stay there after the test, for a person to inspect.
inline std::string artifact_dir() {
  const std::string dir = std::string(KILN_BINARY_DIR) + "/test-artifacts/train";
  kiln::io::make_dirs(dir);
  return dir;
}

inline bool run(const std::string& command) { return std::system(command.c_str()) == 0; }
inline bool have(const std::string& program) { return run("command -v " + program + " > /dev/null 2>&1"); }

inline bool is_png(const std::string& path) {
  const std::string bytes = kiln::io::read_file(path);
  return bytes.size() > 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

}  // namespace kiln_test
