#pragma once
// Helpers for the training tests: temp_dir() (../temp_dir.hpp), a directory for pictures a person may want to look
// at (kept in the build tree), running shell commands, and checks on files.
#include "../temp_dir.hpp"

#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln_test {

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
