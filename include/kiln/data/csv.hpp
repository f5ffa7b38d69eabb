#pragma once
// Numeric CSV tables: every cell a finite number, one optional header line, one optional label column.
// Numbers round to the nearest float: below the smallest subnormal that is (signed) zero, as in any float
// arithmetic; beyond the largest float it is an error. Binary input (a known magic such as gzip's, or a NUL on
// line 1) is refused as not CSV text.
//
// Accepted: separator ',' (configurable), LF or CRLF line ends, a final line with or without a newline, blank
// lines anywhere (skipped), spaces/tabs around cells, cells wrapped in double quotes ("" inside quotes is a
// literal quote; quoted cells do not span lines), a UTF-8 byte-order mark at the start.
// Errors are kiln::format_error of the form  'file' line L, column C (name): what was expected, what was found
// (line and column are 1-based; the column counts cells, not characters).
#include <kiln/core/error.hpp>
#include <kiln/io/file_type.hpp>
#include <kiln/io/mapped_file.hpp>
#include <kiln/io/printable.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::data {

// automatic: the first row is a header when one of its cells holds a name (non-empty and not a number; nan and
// inf count as numbers), so a data row with a missing value is reported, never dropped as a header.
enum class csv_header { automatic, present, absent };

// Which column holds the label (removed from the features).
struct csv_label {
  enum class by { none, index, name };
  by how = by::none;
  long index = 0;    // by::index: 0-based; negative counts from the end (-1 = last column)
  std::string name;  // by::name: matched exactly against the header

  static csv_label none() { return {}; }
  static csv_label column(long i) { return {by::index, i, {}}; }
  static csv_label named(std::string n) { return {by::name, 0, std::move(n)}; }
};

struct csv_options {
  csv_header header = csv_header::automatic;
  csv_label label = csv_label::none();
  char separator = ',';
};

struct csv_table {
  std::string source;  // file name, for messages
  bool has_header = false;
  std::size_t rows = 0, cols = 0;          // cols counts feature columns (the label column excluded)
  std::vector<std::string> feature_names;  // from the header; empty without one
  std::vector<float> features;             // row-major rows × cols
  bool has_labels = false;
  std::size_t label_column = 0;        // 0-based position of the label column in the file
  std::string label_name;              // from the header; empty without one
  std::vector<float> labels;           // one per row when has_labels
  std::vector<std::size_t> row_lines;  // 1-based line number of each row, for later messages
  std::string header_note;             // whether line 1 was taken as a header and why, for a run's summary
};

namespace csv_detail {

inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// A cell for a message: quoted, control bytes escaped (a NUL would end what() early), long cells cut.
inline std::string shown(std::string_view cell) {
  constexpr std::size_t max_shown = 40;
  if (cell.size() <= max_shown) return io::quote_text(cell);
  return "'" + io::printable(cell.substr(0, max_shown)) + "...' (" + std::to_string(cell.size()) + " characters)";
}

struct cursor {
  const std::string& file;
  std::size_t line;
  std::string at(std::size_t column, std::string_view column_name = {}) const {
    std::string s = io::quote_text(file) + " line " + std::to_string(line) + ", column " + std::to_string(column);
    if (!column_name.empty()) s += " (" + io::printable(column_name) + ")";
    return s + ": ";
  }
};

// Splits one line (without its '\n') into trimmed cells, unquoting quoted ones.
inline std::vector<std::string> split(std::string_view line, char sep, const cursor& where) {
  std::vector<std::string> cells;
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && line[i] != sep && is_blank(line[i])) ++i;
    std::string cell;
    if (i < line.size() && line[i] == '"') {
      const std::size_t column = cells.size() + 1;
      ++i;
      for (;;) {
        if (i >= line.size())
          throw format_error(where.at(column) + "quoted cell has no closing '\"' before the end of the line");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cell.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cell.push_back(line[i++]);
      }
      while (i < line.size() && line[i] != sep && is_blank(line[i])) ++i;
      if (i < line.size() && line[i] != sep)
        throw format_error(where.at(column) + "expected '" + std::string(1, sep) +
                           "' or the end of the line after a quoted cell, found '" + std::string(1, line[i]) + "'");
    } else {
      const std::size_t start = i;
      while (i < line.size() && line[i] != sep) ++i;
      cell = std::string(trim(line.substr(start, i - start)));
    }
    cells.push_back(std::move(cell));
    if (i >= line.size()) break;
    ++i;  // the separator
  }
  return cells;
}

// For a decimal literal that from_chars found out of range even as a double: true when it is tiny (its leading
// significant digit sits below the decimal point), false when it is huge. Only the digits' positions matter.
inline bool is_tiny_literal(std::string_view s) {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  long long lead = 0;  // decimal order of the first non-zero digit, before the exponent
  bool found = false;
  std::size_t i = 0;
  for (long long significant = 0; digit(i); ++i)
    if (found || s[i] != '0') found = true, lead = significant++;
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (long long k = 1; digit(i); ++i, ++k)
      if (!found && s[i] != '0') found = true, lead = -k;
  }
  long long exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    const bool negative = i + 1 < s.size() && s[i + 1] == '-';
    i += i + 1 < s.size() && (s[i + 1] == '-' || s[i + 1] == '+') ? 2 : 1;
    for (; digit(i); ++i) exp = std::min<long long>(exp * 10 + (s[i] - '0'), 1'000'000'000);  // only its sign matters
    if (negative) exp = -exp;
  }
  return lead + exp < 0;
}

// Parses a whole cell as a float, rounding to the nearest float: values below the smallest subnormal round to
// (signed) zero as in any float arithmetic, values beyond the largest float fail. `finite` = false also
// fails on nan and inf. False when it is not a number (the caller words the message).
inline bool parse_float(std::string_view cell, float& out, bool finite = true) {
  if (!cell.empty() && cell.front() == '+') {  // from_chars rejects '+'; accept one, not "++1" or "+-1"
    cell.remove_prefix(1);
    if (!cell.empty() && (cell.front() == '+' || cell.front() == '-')) return false;
  }
  if (cell.empty()) return false;
  const char* end = cell.data() + cell.size();
  auto [ptr, ec] = std::from_chars(cell.data(), end, out, std::chars_format::general);
  if (ec == std::errc::result_out_of_range && ptr == end) {
    // Out of float range: a double may still hold it (1e-40 rounds to a float subnormal, 1e39 to inf);
    // below even a double's range only the sign of the order of magnitude is left to decide.
    double d;
    const auto [dptr, dec] = std::from_chars(cell.data(), end, d, std::chars_format::general);
    if (dec == std::errc()) out = static_cast<float>(d);
    else if (is_tiny_literal(cell)) out = cell.front() == '-' ? -0.0f : 0.0f;
    else return false;
    ec = std::errc();
  }
  return ec == std::errc() && ptr == end && (!finite || std::isfinite(out));
}
inline bool parse_number(std::string_view cell, float& out) { return parse_float(cell, out); }

// For guessing a header: nan, inf and numbers beyond the float range are numbers too (a data row may hold them,
// and the error is then reported on that row instead of the row vanishing into a header).
inline bool looks_numeric(std::string_view cell) {
  float ignored;
  if (parse_float(cell, ignored, false)) return true;
  if (!cell.empty() && (cell.front() == '+' || cell.front() == '-')) cell.remove_prefix(1);
  if (cell.empty()) return false;
  double d;
  const auto [ptr, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), d, std::chars_format::general);
  return ptr == cell.data() + cell.size() && ec == std::errc::result_out_of_range;
}

inline std::string why_not_number(std::string_view cell) {
  if (cell.empty()) return "expected a number, found an empty cell";
  float v;
  const std::string_view body = cell.front() == '+' ? cell.substr(1) : cell;
  const auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), v, std::chars_format::general);
  if (ec == std::errc() && ptr == body.data() + body.size() && !std::isfinite(v))  // nan, inf as written
    return std::string("expected a finite number, found ") + shown(cell);
  if (looks_numeric(cell)) return std::string("number ") + shown(cell) + " is outside the float range";
  return std::string("expected a number, found ") + shown(cell);
}

}  // namespace csv_detail

// Parses CSV text; `name` is used in error messages.
inline csv_table read_csv_bytes(std::string_view text, const std::string& name, const csv_options& opt = {}) {
  using namespace csv_detail;
  if (opt.separator == '"' || opt.separator == '\n' || is_blank(opt.separator))
    throw error(std::string("read_csv: separator '") + std::string(1, opt.separator) +
                "' cannot be used (it is a quote or blank)");
  // Binary input would otherwise fail on some later symptom ("a header but no data rows" for a gzip file).
  if (auto msg = io::wrong_type_message(text, io::quote_text(name), "CSV text"); !msg.empty()) throw format_error(msg);
  const std::string_view head = text.substr(0, 4096);  // bounded: a file of NULs has no line end to find
  const std::string_view first_line_text = head.substr(0, head.find('\n'));
  if (const auto nul = first_line_text.find('\0'); nul != std::string_view::npos)
    throw format_error(io::quote_text(name) + ": binary data, not CSV text (a NUL byte at byte " + std::to_string(nul) +
                       " of line 1)");
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  csv_table t;
  t.source = name;
  std::size_t expected_columns = 0, first_line = 0;
  std::vector<float> row_values;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (trim(line).empty()) continue;
    const cursor where{name, line_no};
    std::vector<std::string> cells = split(line, opt.separator, where);

    if (first_line == 0) {  // the first non-blank line fixes the column count and may be the header
      first_line = line_no;
      expected_columns = cells.size();
      bool header = opt.header == csv_header::present;
      if (opt.header == csv_header::automatic) {
        // A header needs a cell that is there and is not a number: an empty cell or a nan is a data row's
        // missing value, which the row check below reports, not a reason to drop the row as a header.
        std::size_t named = 0;
        while (named < cells.size() && (cells[named].empty() || looks_numeric(cells[named]))) ++named;
        header = named < cells.size();
        t.header_note = header ? "line " + std::to_string(line_no) + " read as a header (automatic: cell " +
                                     std::to_string(named + 1) + " " + shown(cells[named]) + " is not a number)"
                               : "line " + std::to_string(line_no) +
                                     " read as data (automatic: no cell holds a name, so there is no header)";
      } else {
        t.header_note = header ? "line " + std::to_string(line_no) + " read as a header (csv_header::present)"
                               : "no header (csv_header::absent)";
      }
      std::size_t label = expected_columns;  // "none"
      const auto& lab = opt.label;
      if (lab.how == csv_label::by::index) {
        const long n = static_cast<long>(expected_columns);
        if (lab.index >= n || lab.index < -n)
          throw format_error(io::quote_text(name) + " line " + std::to_string(line_no) + ": label column index " +
                             std::to_string(lab.index) + " requested, but the table has " + std::to_string(n) +
                             " columns");
        label = static_cast<std::size_t>(lab.index < 0 ? lab.index + n : lab.index);
      } else if (lab.how == csv_label::by::name) {
        if (!header)
          throw format_error(io::quote_text(name) + ": label column " + io::quote_text(lab.name) +
                             " requested by name, but the file has no header (line " + std::to_string(line_no) +
                             " is all numbers)");
        std::string all;
        for (std::size_t c = 0; c < cells.size(); ++c) {
          if (c) all += ", ";
          all += io::printable(cells[c]);
          if (cells[c] != lab.name) continue;
          if (label != expected_columns)
            throw format_error(io::quote_text(name) + " line " + std::to_string(line_no) + ": label column name " +
                               io::quote_text(lab.name) + " is ambiguous: columns " + std::to_string(label + 1) +
                               " and " + std::to_string(c + 1) + " both have it");
          label = c;
        }
        if (label == expected_columns)
          throw format_error(io::quote_text(name) + " line " + std::to_string(line_no) + ": no column named " +
                             io::quote_text(lab.name) + " for the label; the header has: " + all);
      }
      t.has_labels = label != expected_columns;
      t.label_column = label;
      t.cols = expected_columns - (t.has_labels ? 1 : 0);
      t.has_header = header;
      if (header) {
        for (std::size_t c = 0; c < cells.size(); ++c) {
          if (c == label) t.label_name = cells[c];
          else t.feature_names.push_back(cells[c]);
        }
        continue;
      }
    }

    if (cells.size() != expected_columns)  // the column named is the first missing or the first extra one
      throw format_error(where.at(std::min(cells.size(), expected_columns) + 1) +
                         "ragged row: " + std::to_string(cells.size()) + " columns, expected " +
                         std::to_string(expected_columns) + " (as on line " + std::to_string(first_line) + ")");
    for (std::size_t c = 0; c < cells.size(); ++c) {
      float v;
      if (!parse_number(cells[c], v)) {
        const bool is_label = t.has_labels && c == t.label_column;
        std::string col_name;
        if (t.has_header) {
          const std::size_t feature = t.has_labels && c > t.label_column ? c - 1 : c;
          col_name = is_label ? t.label_name : t.feature_names[feature];
        }
        throw format_error(where.at(c + 1, col_name) + why_not_number(cells[c]));
      }
      if (t.has_labels && c == t.label_column) t.labels.push_back(v);
      else t.features.push_back(v);
    }
    t.row_lines.push_back(line_no);
    ++t.rows;
  }
  if (first_line == 0) throw format_error(io::quote_text(name) + ": empty CSV file: no header and no data rows");
  if (t.rows == 0)
    throw format_error(io::quote_text(name) + ": CSV file has a header on line " + std::to_string(first_line) +
                       " but no data rows");
  return t;
}

inline csv_table read_csv(const std::string& path, const csv_options& opt = {}) {
  const io::mapped_file file(path);
  return read_csv_bytes(file.bytes(), path, opt);
}

// The label column as class indices: every label must be an integer in [0, num_classes).
inline std::vector<std::int32_t> class_labels(const csv_table& t, int num_classes) {
  if (!t.has_labels)
    throw error(io::quote_text(t.source) + ": class_labels: the table was read without a label column");
  if (num_classes < 1)
    throw error(std::string("class_labels: num_classes must be at least 1, got ") + std::to_string(num_classes));
  std::vector<std::int32_t> out(t.labels.size());
  for (std::size_t r = 0; r < t.labels.size(); ++r) {
    const float v = t.labels[r];
    if (v != std::floor(v) || v < 0 || v >= static_cast<float>(num_classes)) {
      const csv_detail::cursor where{t.source, t.row_lines[r]};
      throw format_error(where.at(t.label_column + 1, t.label_name) + "expected a class index in [0, " +
                         std::to_string(num_classes) + "), found " + std::to_string(v));
    }
    out[r] = static_cast<std::int32_t>(v);
  }
  return out;
}

}  // namespace kiln::data
