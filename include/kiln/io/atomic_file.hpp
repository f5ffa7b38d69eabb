#pragma once
// Whole-file read and atomic whole-file write.
// Atomic: write to "<path>.tmp.<pid>.<n>" in the same directory, fsync, then rename() over the target, so a
// reader (or a crash) sees either the old file or the complete new one, never a half-written file.
#include <kiln/core/error.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::io {

inline std::string errno_text() { return std::strerror(errno); }

// Reads the whole file; throws io_error naming the file when it cannot.
inline std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error("cannot open '" + path + "': " + errno_text());
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = errno_text();
      ::close(fd);
      throw io_error("cannot read '" + path + "': " + why);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

// Writes `bytes` to `path` atomically (temp file + fsync + rename). On failure the target is untouched,
// the temp file is removed and io_error says which step failed.
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("cannot create '" + tmp + "' (to write '" + path + "'): " + errno_text());
  auto fail = [&](const char* step) {
    std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw io_error(std::string("cannot ") + step + " '" + path + "': " + why);
  };
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw io_error("cannot close '" + tmp + "': " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw io_error("cannot rename '" + tmp + "' to '" + path + "': " + why);
  }
}

// mkdir -p; throws io_error naming the directory that could not be made.
inline void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  std::string part;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!part.empty() && ::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
        throw io_error("cannot create directory '" + part + "': " + errno_text());
    }
    if (i < dir.size()) part.push_back(dir[i]);
  }
}

}  // namespace kiln::io
