#pragma once
// Every run-time failure kiln reports is a kiln::error (a std::runtime_error) whose message says what was
// expected and what was found. Sub-kinds let callers distinguish the cause without parsing text.
#include <stdexcept>
#include <string>

namespace kiln {

struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Run-time shape mismatch (batch sizes, buffer sizes): the message names both shapes.
struct shape_error : error {
  using error::error;
};
// A file that is not what it claims to be (corrupt, truncated, wrong format): the message names the file.
struct format_error : error {
  using error::error;
};
// An I/O failure (open, read, write, rename): the message names the file and the OS reason.
struct io_error : error {
  using error::error;
};
// A backend that cannot run here (no driver, no compiler, no device): the message says what is missing.
struct backend_unavailable : error {
  using error::error;
};

}  // namespace kiln
