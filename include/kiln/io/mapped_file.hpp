#pragma once
// A whole file made readable in place (mmap), so that a reader can look at its first bytes and reject a wrong
// or lying header before anything else is read, and copy out only the parts it keeps: memory then follows
// what the reader touches, not the file's size. Files that cannot be mapped (pipes, /proc) are read whole.
// The mapping is private and read-only; a file truncated by another process while mapped can raise SIGBUS,
// as with any mmap reader.
#include <kiln/core/error.hpp>
#include <kiln/io/atomic_file.hpp>

#include <cstddef>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::io {

class mapped_file {
 public:
  explicit mapped_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw io_error("cannot open '" + path + "': " + errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
      ::close(fd);
      fallback_ = read_file(path);  // not a regular file (or empty): no size to map
      return;
    }
    size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const std::string why = p == MAP_FAILED ? errno_text() : std::string();
    ::close(fd);  // the mapping stays valid without the descriptor
    if (p == MAP_FAILED) throw io_error("cannot map '" + path + "': " + why);
    addr_ = p;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (addr_) ::munmap(addr_, size_);
  }

  std::string_view bytes() const {
    return addr_ ? std::string_view(static_cast<const char*>(addr_), size_) : std::string_view(fallback_);
  }

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
  std::string fallback_;
};

}  // namespace kiln::io
