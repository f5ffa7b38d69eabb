#pragma once
// In-memory dataset helpers: scaling, one-hot targets, seeded shuffles, mini-batches, train/validation split.
//
// Shuffles are reproducible on every platform: std::mt19937_64's output sequence is fixed by the standard, and
// the bounded draw and Fisher-Yates below are ours (std::shuffle and std::uniform_int_distribution are not
// specified exactly, so libstdc++ and libc++ give different permutations for one seed).
#include <kiln/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kiln::data {

// ---- scaling

// Bytes 0..255 to floats in [0,1]: x / 255.
inline std::vector<float> scale_bytes(std::span<const std::uint8_t> bytes) {
  std::vector<float> out(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) out[i] = static_cast<float>(bytes[i]) / 255.0f;
  return out;
}

// Per-column min-max scaling x' = (x - lo) / (hi - lo), fitted on one set (the training rows) and applied to
// any other: values outside the fitted range land outside [0,1] (no clamping). A constant column maps to 0.
struct min_max_scaler {
  std::vector<float> lo, hi;

  static min_max_scaler fit(std::span<const float> rows, std::size_t cols) {
    if (cols == 0 || rows.size() % cols != 0 || rows.empty())
      throw shape_error(std::string("min_max_scaler::fit: ") + std::to_string(rows.size()) +
                        " values do not form rows of " + std::to_string(cols) + " columns (need at least one row)");
    min_max_scaler s{std::vector<float>(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(cols)),
                     std::vector<float>(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(cols))};
    for (std::size_t i = cols; i < rows.size(); ++i) {
      const std::size_t c = i % cols;
      s.lo[c] = std::min(s.lo[c], rows[i]);
      s.hi[c] = std::max(s.hi[c], rows[i]);
    }
    return s;
  }

  void apply(std::span<float> rows) const {
    const std::size_t cols = lo.size();
    if (cols == 0 || rows.size() % cols != 0)
      throw shape_error(std::string("min_max_scaler::apply: ") + std::to_string(rows.size()) +
                        " values do not form rows of the " + std::to_string(cols) + " fitted columns");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::size_t c = i % cols;
      const float range = hi[c] - lo[c];
      rows[i] = range > 0 ? (rows[i] - lo[c]) / range : 0.0f;
    }
  }
};

// ---- targets

// Row-major [labels.size()][num_classes] with a 1 at each label's column; throws shape_error for a label
// outside [0, num_classes).
inline std::vector<float> one_hot(std::span<const std::int32_t> labels, int num_classes) {
  if (num_classes < 1)
    throw shape_error(std::string("one_hot: num_classes must be at least 1, got ") + std::to_string(num_classes));
  const auto k = static_cast<std::size_t>(num_classes);
  std::vector<float> out(labels.size() * k, 0.0f);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw shape_error(std::string("one_hot: label ") + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                        " is outside [0, " + std::to_string(num_classes) + ")");
    out[i * k + static_cast<std::size_t>(labels[i])] = 1.0f;
  }
  return out;
}

// ---- reproducible randomness

// An engine whose every call yields 64 uniform bits (std::mt19937_64 is the one kiln uses).
template <class E>
concept full_64_bit_engine = requires(E& e) {
  { e() } -> std::same_as<std::uint64_t>;
}
&&E::min() == 0 && E::max() == UINT64_MAX;

// Uniform integer in [0, n), unbiased: outputs below 2^64 mod n are rejected, so the remaining ones split into
// equally many per residue mod n. Expected draws < 2.
template <full_64_bit_engine Engine>
std::uint64_t bounded_draw(Engine& rng, std::uint64_t n) {
  if (n == 0) throw error("bounded_draw: the range [0, 0) is empty");
  const std::uint64_t reject_below = (0 - n) % n;  // (2^64 - n) mod n == 2^64 mod n
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= reject_below) return x % n;
  }
}

// Fisher-Yates: position i takes a uniform pick among items [0, i], for i from the end down.
template <class T, full_64_bit_engine Engine>
void shuffle(std::span<T> items, Engine& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(bounded_draw(rng, i));
    std::swap(items[i - 1], items[j]);
  }
}

template <full_64_bit_engine Engine>
std::vector<std::size_t> permutation(std::size_t n, Engine& rng) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  shuffle(std::span<std::size_t>(order), rng);
  return order;
}

inline std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return permutation(n, rng);
}

// ---- mini-batches

// The consecutive slices of `order` of `batch_size` indices; the last one is shorter when batch_size does not
// divide order.size(). Holds a view: `order` must outlive it.
class batches {
 public:
  batches(std::span<const std::size_t> order, std::size_t batch_size) : order_(order), batch_(batch_size) {
    if (batch_size == 0) throw shape_error("batches: batch size must be at least 1");
  }

  std::size_t size() const { return (order_.size() + batch_ - 1) / batch_; }  // ceil(n / batch)
  std::span<const std::size_t> operator[](std::size_t k) const {
    const std::size_t begin = k * batch_;
    return order_.subspan(begin, std::min(batch_, order_.size() - begin));
  }

  class iterator {
   public:
    using value_type = std::span<const std::size_t>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const batches* b, std::size_t k) : b_(b), k_(k) {}
    value_type operator*() const { return (*b_)[k_]; }
    iterator& operator++() {
      ++k_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++k_;
      return old;
    }
    bool operator==(const iterator& o) const { return k_ == o.k_; }

   private:
    const batches* b_ = nullptr;
    std::size_t k_ = 0;
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, size()}; }

 private:
  std::span<const std::size_t> order_;
  std::size_t batch_;
};

// Copies rows `rows` of a row-major table (row_width values per row) into dst, in that order.
template <class T>
void gather_rows(std::span<const T> table, std::size_t row_width, std::span<const std::size_t> rows, std::span<T> dst) {
  if (row_width == 0 || table.size() % row_width != 0)
    throw shape_error(std::string("gather_rows: table of ") + std::to_string(table.size()) +
                      " values is not made of rows of " + std::to_string(row_width));
  if (dst.size() != rows.size() * row_width)
    throw shape_error(std::string("gather_rows: destination holds ") + std::to_string(dst.size()) + " values, " +
                      std::to_string(rows.size()) + " rows of " + std::to_string(row_width) + " need " +
                      std::to_string(rows.size() * row_width));
  const std::size_t n_rows = table.size() / row_width;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] >= n_rows)
      throw shape_error(std::string("gather_rows: row index ") + std::to_string(rows[r]) + " but the table has " +
                        std::to_string(n_rows) + " rows");
    std::copy_n(table.begin() + static_cast<std::ptrdiff_t>(rows[r] * row_width), row_width,
                dst.begin() + static_cast<std::ptrdiff_t>(r * row_width));
  }
}

template <class T>
std::vector<T> gather_rows(std::span<const T> table, std::size_t row_width, std::span<const std::size_t> rows) {
  std::vector<T> out(rows.size() * row_width);
  gather_rows(table, row_width, rows, std::span<T>(out));
  return out;
}

// ---- train / validation split

struct index_split {
  std::vector<std::size_t> train, validation;  // disjoint, together 0..n-1, each in ascending order
};

// Draws round(n * validation_fraction) indices for validation from a seeded permutation; the rest train.
inline index_split train_validation_split(std::size_t n, double validation_fraction, std::uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction <= 1.0))
    throw error("train_validation_split: validation fraction must be in [0, 1], got " +
                std::to_string(validation_fraction));
  const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(n) * validation_fraction));
  std::vector<std::size_t> order = permutation(n, seed);
  index_split s;
  s.validation.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  s.train.assign(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

}  // namespace kiln::data
