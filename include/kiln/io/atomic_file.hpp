#pragma once
// Whole-file read and atomic whole-file write.
// Atomic: write to "<path>.tmp.<pid>.<n>" in the same directory, fsync it, rename() it over the target, then
// fsync the directory (as SQLite and LevelDB do). A reader, a killed writer or a power cut then leaves either
// the old file or the complete new one: the file's fsync makes its data durable before the rename can be, and
// the directory's fsync makes the rename itself durable (without it some filesystems show an empty file or the
// old version after a crash). A writer killed mid-way leaves its temp file; the next write to the same path
// removes the temp files of writers that no longer run.
#include <kiln/core/error.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <set>
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

namespace atomic_detail {

// The temp files this process is writing now, so that cleaning never removes a sibling thread's.
struct live_temps {
  std::mutex mutex;
  std::set<std::string> paths;
  static live_temps& get() {
    static live_temps l;
    return l;
  }
};

inline std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Removes "<path>.tmp.<pid>.<n>" files whose writer is gone: a pid with no process (kill(pid, 0) fails with
// ESRCH), or this process's pid on a file it is not writing (left by an earlier process with the same pid).
// Best effort: a file that cannot be listed or removed is left for the next write.
inline void remove_stale_temps(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : path.substr(0, slash + 1);  // as the temp names have it
  const std::string prefix = path.substr(parent.size()) + ".tmp.";
  DIR* d = ::opendir(dir_of(path).c_str());
  if (!d) return;
  const long self = static_cast<long>(::getpid());
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.substr(0, prefix.size()) != prefix) continue;
    const std::string_view rest = name.substr(prefix.size());  // "<pid>.<n>"
    const auto dot = rest.find('.');
    if (dot == 0 || dot == std::string_view::npos) continue;
    long pid = 0;
    bool digits = true;
    for (char c : rest.substr(0, dot)) {
      digits = digits && c >= '0' && c <= '9' && pid < 100'000'000;
      pid = pid * 10 + (c - '0');
    }
    if (!digits || pid <= 0) continue;
    const std::string full = parent + std::string(name);
    bool stale = false;
    if (pid == self) {
      auto& live = live_temps::get();
      std::lock_guard lock(live.mutex);
      stale = !live.paths.count(full);
    } else {
      stale = ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    }
    if (stale) ::unlink(full.c_str());
  }
  ::closedir(d);
}

// fsync of a directory makes the entries renamed into it durable.
inline bool sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace atomic_detail

// Writes `bytes` to `path` atomically and durably (temp file + fsync + rename + fsync of the directory). On
// failure the target is untouched, the temp file is removed and io_error says which step failed.
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  static std::atomic<unsigned> counter{0};
  atomic_detail::remove_stale_temps(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  auto& live = atomic_detail::live_temps::get();
  {
    std::lock_guard lock(live.mutex);
    live.paths.insert(tmp);
  }
  struct unregister {  // on every way out, success or throw
    atomic_detail::live_temps& live;
    const std::string& tmp;
    ~unregister() {
      std::lock_guard lock(live.mutex);
      live.paths.erase(tmp);
    }
  } forget{live, tmp};
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
  if (!atomic_detail::sync_dir(atomic_detail::dir_of(path)))
    throw io_error("cannot fsync the directory of '" + path + "' (the new file is in place but may not survive a "
                   "power cut): " + errno_text());
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
