#pragma once
// A table of named columns with one row per sample, as the trainer consumes it: each column is either
// `width` floats per row (features, dense targets) or `width` class indices per row (labels; tokens: a context
// of several token ids). A column's name is the
// name of the model input it feeds ("x", "y", "t").
//
//   train::table t;
//   t.add_features("x", pixels, 784).add_labels("y", labels);
#include <kiln/core/error.hpp>
#include <kiln/data/csv.hpp>
#include <kiln/data/dataset.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::train {

struct column {
  std::string name;
  std::size_t width = 1;
  bool holds_labels = false;
  std::vector<float> values;         // rows × width, when !holds_labels
  std::vector<std::int32_t> labels;  // rows × width, when holds_labels

  std::size_t rows() const { return (holds_labels ? labels.size() : values.size()) / width; }
};

class table {
 public:
  table& add_features(std::string name, std::vector<float> values, std::size_t width) {
    if (width == 0 || values.size() % width != 0)
      throw shape_error("table: column '" + name + "' has " + std::to_string(values.size()) +
                        " values, not a whole number of rows of " + std::to_string(width));
    column c;
    c.name = std::move(name);
    c.width = width;
    c.values = std::move(values);
    return add(std::move(c));
  }
  // The feature columns of a CSV file; how its reader took line 1 (a header or data, and why) becomes one of the
  // table's notes, which the trainer prints when it starts, so a row taken as a header is never dropped silently.
  table& add_features(std::string name, const data::csv_table& csv) {
    note(io::quote_text(csv.source) + ": " + csv.header_note);
    return add_features(std::move(name), csv.features, csv.cols);
  }
  // A line about where the data came from, printed by the trainer before its first epoch.
  table& note(std::string text) {
    notes_.push_back(std::move(text));
    return *this;
  }
  const std::vector<std::string>& notes() const { return notes_; }
  table& add_labels(std::string name, std::vector<std::int32_t> labels, std::size_t width = 1) {
    if (width == 0 || labels.size() % width != 0)
      throw shape_error("table: column '" + name + "' has " + std::to_string(labels.size()) +
                        " labels, not a whole number of rows of " + std::to_string(width));
    column c;
    c.name = std::move(name);
    c.width = width;
    c.holds_labels = true;
    c.labels = std::move(labels);
    return add(std::move(c));
  }

  std::size_t rows() const { return columns_.empty() ? 0 : columns_.front().rows(); }
  const std::vector<column>& columns() const { return columns_; }
  const column& operator[](std::string_view name) const {
    for (const column& c : columns_)
      if (c.name == name) return c;
    throw error("table: no column named '" + std::string(name) + "'");
  }
  bool has(std::string_view name) const {
    for (const column& c : columns_)
      if (c.name == name) return true;
    return false;
  }

  // The rows at `indices`, in that order (e.g. one side of a train/validation split).
  table select(std::span<const std::size_t> indices) const {
    table out;
    for (const column& c : columns_) {
      column s;
      s.name = c.name;
      s.width = c.width;
      s.holds_labels = c.holds_labels;
      if (c.holds_labels) s.labels = data::gather_rows<std::int32_t>(c.labels, c.width, indices);
      else s.values = data::gather_rows<float>(c.values, c.width, indices);
      out.columns_.push_back(std::move(s));
    }
    out.notes_ = notes_;
    return out;
  }
  // The first n rows (all when n >= rows()).
  table head(std::size_t n) const {
    std::vector<std::size_t> idx(std::min(n, rows()));
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    return select(idx);
  }

 private:
  table& add(column c) {
    for (const column& o : columns_)
      if (o.name == c.name) throw error("table: two columns named '" + c.name + "'");
    if (!columns_.empty() && c.rows() != rows())
      throw shape_error("table: column '" + c.name + "' has " + std::to_string(c.rows()) + " rows, column '" +
                        columns_.front().name + "' has " + std::to_string(rows()));
    columns_.push_back(std::move(c));
    return *this;
  }
  std::vector<column> columns_;
  std::vector<std::string> notes_;
};

// A batch of a table: one gather buffer per column, refilled for each batch without allocating (once sized).
class batch_buffer {
 public:
  explicit batch_buffer(const table& t) : source_(&t), floats_(t.columns().size()), labels_(t.columns().size()) {}

  void gather(std::span<const std::size_t> rows) {
    views_ = false;
    const auto& cols = source_->columns();
    for (std::size_t k = 0; k < cols.size(); ++k) {
      const column& c = cols[k];
      if (c.holds_labels) {
        labels_[k].resize(rows.size() * c.width);
        data::gather_rows<std::int32_t>(c.labels, c.width, rows, labels_[k]);
      } else {
        floats_[k].resize(rows.size() * c.width);
        data::gather_rows<float>(c.values, c.width, rows, floats_[k]);
      }
    }
    size_ = static_cast<long>(rows.size());
  }
  // Points at a contiguous range of rows without copying.
  void view(std::size_t first, std::size_t count) {
    views_ = true;
    first_ = first;
    size_ = static_cast<long>(count);
  }
  long size() const { return size_; }
  std::span<const float> values(std::size_t k) const {
    const column& c = source_->columns()[k];
    if (views_) return std::span<const float>(c.values).subspan(first_ * c.width, static_cast<std::size_t>(size_) * c.width);
    return floats_[k];
  }
  std::span<const std::int32_t> labels(std::size_t k) const {
    const column& c = source_->columns()[k];
    if (views_) return std::span<const std::int32_t>(c.labels).subspan(first_ * c.width, static_cast<std::size_t>(size_) * c.width);
    return labels_[k];
  }

 private:
  const table* source_;
  std::vector<std::vector<float>> floats_;
  std::vector<std::vector<std::int32_t>> labels_;
  bool views_ = false;
  std::size_t first_ = 0;
  long size_ = 0;
};

}  // namespace kiln::train
