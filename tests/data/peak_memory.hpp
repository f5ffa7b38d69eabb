#pragma once
// Runs a reader in a forked child and measures what that one call cost: the rise of the child's peak resident
// set (getrusage ru_maxrss, which counts mapped file pages it touched too) and its CPU time. A child per
// measurement keeps one case's peak from hiding another's, and a reader that would exhaust memory takes down
// only the child.
#include "../sanitizer_build.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln_test {

struct cost {
  double peak_mib = 0;     // rise of ru_maxrss during the call
  double cpu_ms = 0;       // user + system CPU time of the call
  std::string outcome;     // "ok", or the exception's what() (the first 400 bytes)
};

// Slack for the allocator and the test's own pages; AddressSanitizer's redzones and quarantine add more.
inline constexpr double rss_slack_mib = KILN_TEST_SANITIZED ? 48 : 8;

template <class F>
cost measure_in_child(F&& f) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto usage = [] {
      rusage r{};
      ::getrusage(RUSAGE_SELF, &r);
      return r;
    };
    auto cpu = [](const rusage& r) {
      return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
    };
    const rusage before = usage();
    std::string outcome = "ok";
    try {
      f();
    } catch (const std::exception& e) {
      outcome = e.what();
    }
    const rusage after = usage();
    char line[512];
    const int n = std::snprintf(line, sizeof line, "%.3f %.3f %.400s", (after.ru_maxrss - before.ru_maxrss) / 1024.0,
                                cpu(after) - cpu(before), outcome.c_str());
    [[maybe_unused]] auto w = ::write(fds[1], line, static_cast<std::size_t>(n));
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO("child status " << status << ", report: " << text);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  cost c;
  int used = 0;
  REQUIRE(std::sscanf(text.c_str(), "%lf %lf %n", &c.peak_mib, &c.cpu_ms, &used) == 2);
  c.outcome = text.substr(static_cast<std::size_t>(used));
  return c;
}

}  // namespace kiln_test
