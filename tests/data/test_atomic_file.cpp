// write_file_atomic: a writer killed mid-way leaves debris that the next write removes (only that of writers
// that no longer run), and the new file is made durable: fsync of the file before the rename, of the directory
// after it (observed with strace when it is installed).
#include "data_test_util.hpp"

#include <kiln/io/atomic_file.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::vector<std::string> temps_of(const std::string& dir, const std::string& base) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(base + ".tmp.", 0) == 0) out.push_back(name);
  }
  return out;
}

pid_t dead_pid() {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);  // reaped: no process has this pid now (until it is reused)
  return pid;
}

void touch(const std::string& path) { std::ofstream(path) << "debris"; }

}  // namespace

TEST_CASE("atomic write: temp files of dead writers are removed, live ones kept") {
  const std::string dir = kiln_test::temp_dir() + "/stale";
  fs::create_directories(dir);
  const std::string target = dir + "/model.safetensors";
  const std::string dead = std::to_string(dead_pid());
  touch(target + ".tmp." + dead + ".0");
  touch(target + ".tmp." + dead + ".17");
  touch(target + ".tmp." + std::to_string(::getpid()) + ".999");  // our pid, but not a write of ours: stale
  const std::string live = target + ".tmp." + std::to_string(::getppid()) + ".0";  // a running process's
  touch(live);
  touch(dir + "/other.safetensors.tmp." + dead + ".0");  // another target's: not ours to judge
  kiln::io::write_file_atomic(target, "new");
  const auto left = temps_of(dir, "model.safetensors");
  CHECK(left == std::vector<std::string>{fs::path(live).filename().string()});
  CHECK(fs::exists(dir + "/other.safetensors.tmp." + dead + ".0"));
  CHECK(kiln::io::read_file(target) == "new");
}

TEST_CASE("atomic write: writers killed mid-way leave nothing behind after the next write") {
  const std::string dir = kiln_test::temp_dir() + "/killed";
  fs::create_directories(dir);
  const std::string target = dir + "/model.safetensors";
  const std::string big(8u << 20, 'w');
  // Each writer is killed at a random point of its loop; those killed inside a write leave a temp file. The
  // next writer removes it, so however many writers die there is never more than the one left by the last.
  int kills_with_debris = 0;
  for (int attempt = 0; attempt < 60 && kills_with_debris < 3; ++attempt) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (;;) kiln::io::write_file_atomic(target, big);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(15 + 3 * (attempt % 7)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    const std::size_t debris = temps_of(dir, "model.safetensors").size();
    INFO("after killed writer " << attempt + 1);
    CHECK(debris <= 1);
    kills_with_debris += debris > 0;
  }
  REQUIRE(kills_with_debris > 0);  // else every kill fell between writes and nothing was tested
  kiln::io::write_file_atomic(target, "final");
  CHECK(temps_of(dir, "model.safetensors").empty());
  CHECK(kiln::io::read_file(target) == "final");
}

// Run by the next test under strace: one atomic write to $KILN_ATOMIC_TARGET.
TEST_CASE("atomic write helper", "[.]") {
  const char* target = std::getenv("KILN_ATOMIC_TARGET");
  REQUIRE(target);
  kiln::io::write_file_atomic(target, "durable");
}

TEST_CASE("atomic write: fsync of the file before the rename, of the directory after it") {
  if (std::system("strace -o /dev/null true > /dev/null 2>&1") != 0) {
    WARN("skipped: strace is not installed or cannot trace here");
    return;
  }
  const std::string dir = kiln_test::temp_dir() + "/durable";
  fs::create_directories(dir);
  const std::string target = dir + "/m.bin", log = dir + "/strace.log";
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  // LeakSanitizer cannot run under ptrace: the traced helper does without it (ASan and UBSan stay on)
  const std::string cmd = "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" KILN_ATOMIC_TARGET='" +
                          target + "' strace -qq -e trace=openat,fsync,rename -o '" + log +
                          "' '" + self + "' 'atomic write helper' > /dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  INFO("strace log:\n" << text.str());
  // the calls touching our files, in order: open tmp = A, fsync(A), rename(tmp, target), open dir = B, fsync(B)
  std::map<std::string, std::string> opened;  // fd -> what its latest open was (fds are reused)
  std::vector<std::string> order;
  std::smatch m;
  for (std::string line; std::getline(text, line);) {
    if (std::regex_search(line, m, std::regex("openat\\(AT_FDCWD, \"" + target + "\\.tmp\\.[0-9.]+\".* = ([0-9]+)")))
      opened[m[1]] = "tmp", order.push_back("open tmp");
    else if (std::regex_search(line, m, std::regex("openat\\(AT_FDCWD, \"" + dir + "\", .*O_DIRECTORY.* = ([0-9]+)")))
      opened[m[1]] = "dir", order.push_back("open dir");
    else if (std::regex_search(line, m, std::regex("fsync\\(([0-9]+)\\)")))
      order.push_back("fsync " + (opened.count(m[1]) ? opened[m[1]] : std::string("other")));
    else if (line.find("rename(\"" + target + ".tmp.") != std::string::npos)
      order.push_back("rename");
  }
  // (the directory is also listed before the write, for stale temp files: that open is not part of this order)
  const auto first = std::find(order.begin(), order.end(), "open tmp");
  order.erase(order.begin(), first);
  CHECK(order == std::vector<std::string>{"open tmp", "fsync tmp", "rename", "open dir", "fsync dir"});
}
