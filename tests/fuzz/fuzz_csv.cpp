// Fuzzes read_csv_bytes. The first input byte picks the options (header mode, label column, separator); the
// rest is the text. Properties beyond "no crash, only kiln::error": the table's sizes agree with each other,
// every value is finite, class_labels either succeeds with in-range classes or throws kiln::error, and
// reading never needs more heap than 16 bytes per input byte plus 64 KiB.
#include "heap_bound.hpp"

#include <kiln/data/csv.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  kiln::data::csv_options opt;
  opt.header = static_cast<kiln::data::csv_header>(pick % 3);
  switch ((pick / 3) % 4) {
    case 0: opt.label = kiln::data::csv_label::none(); break;
    case 1: opt.label = kiln::data::csv_label::column(0); break;
    case 2: opt.label = kiln::data::csv_label::column(-1); break;
    case 3: opt.label = kiln::data::csv_label::named("y"); break;
  }
  opt.separator = (pick / 12) % 2 ? ';' : ',';
  try {
    kiln::data::csv_table t;
    kiln_fuzz::within_heap_bound(16 * size + (64 << 10), "read_csv_bytes",
                                 [&] { t = kiln::data::read_csv_bytes(text, "fuzz-input", opt); });
    if (t.rows == 0 || t.features.size() != t.rows * t.cols || t.row_lines.size() != t.rows) __builtin_trap();
    if (t.has_labels != (opt.label.how != kiln::data::csv_label::by::none)) __builtin_trap();
    if (t.labels.size() != (t.has_labels ? t.rows : 0)) __builtin_trap();
    if (t.has_header && t.feature_names.size() != t.cols) __builtin_trap();
    for (float v : t.features)
      if (!std::isfinite(v)) __builtin_trap();
    if (t.has_labels) {
      const auto classes = kiln::data::class_labels(t, 10);
      for (auto c : classes)
        if (c < 0 || c >= 10) __builtin_trap();
    }
  } catch (const kiln::error&) {
  }
  return 0;
}
