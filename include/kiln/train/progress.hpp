#pragma once
// Training progress on a terminal: a bar redrawn in place (batches done, iterations per second, time left in
// the epoch, running loss); elsewhere (a pipe, a log file, ctest) one plain line per epoch and nothing else.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace kiln::train {

enum class progress_style {
  automatic,  // a bar when the output is a terminal, else lines
  bar,
  lines,      // one line per epoch
  quiet       // nothing
};

// "mm:ss", or "h:mm:ss" from an hour up.
inline std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

class progress {
  using clock = std::chrono::steady_clock;

 public:
  progress(progress_style style, std::FILE* out) : out_(out) {
    if (style == progress_style::automatic) style = out && ::isatty(::fileno(out)) ? progress_style::bar : progress_style::lines;
    style_ = style;
  }
  progress_style style() const { return style_; }

  void begin_epoch(int epoch, int epochs, long batches) {
    epoch_ = epoch;
    epochs_ = epochs;
    batches_ = batches;
    start_ = clock::now();
    last_draw_ = start_ - std::chrono::seconds(1);
  }

  // After batch `done` (1-based) of the epoch; redraws at most ten times a second and at the last batch.
  void update(long done, double mean_loss) {
    if (style_ != progress_style::bar) return;
    const auto now = clock::now();
    if (done < batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(batches_ - done) / rate : -1;
    constexpr int width = 28;
    const int filled = batches_ > 0 ? static_cast<int>(width * done / batches_) : width;
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    std::fprintf(out_, "\r\033[Kepoch %d/%d [%s] %ld/%ld  %.0f it/s  ETA %s  loss %.4f", epoch_, epochs_,
                 bar.c_str(), done, batches_, rate, clock_text(eta).c_str(), mean_loss);
    std::fflush(out_);
  }

  // The epoch's summary line (replacing the bar on a terminal).
  void end_epoch(const std::string& line) {
    if (style_ == progress_style::quiet) return;
    if (style_ == progress_style::bar) std::fprintf(out_, "\r\033[K");
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }
  // A message that must not be drawn over by the bar.
  void message(const std::string& line) {
    if (style_ == progress_style::bar) std::fprintf(out_, "\r\033[K");
    if (style_ != progress_style::quiet) std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  progress_style style_ = progress_style::lines;
  int epoch_ = 0, epochs_ = 0;
  long batches_ = 0;
  clock::time_point start_{}, last_draw_{};
};

}  // namespace kiln::train
