#pragma once
// ct_vector<T>: a growing array for the compile-time passes (graph building, autodiff, lowering). std::vector
// would do, but libstdc++ 12's constexpr std::vector cannot be evaluated by clang 14 (its fill and copy paths
// write to storage before an object lives there, and vector<bool> packs bits the same way); this one constructs
// every element with std::construct_at, which every C++20 compiler evaluates. It lives only during one constant
// evaluation (frozen.hpp copies results into static arrays) or at run time in tests that build graphs.
#include <cstddef>
#include <memory>
#include <utility>

namespace kiln {

template <class T>
class ct_vector {
 public:
  constexpr ct_vector() = default;
  constexpr ct_vector(int n, const T& value) { assign(n, value); }
  constexpr ct_vector(const ct_vector& o) { append_all(o); }
  constexpr ct_vector(ct_vector&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), capacity_(std::exchange(o.capacity_, 0)) {}
  constexpr ct_vector& operator=(const ct_vector& o) {
    if (this != &o) { clear(); append_all(o); }
    return *this;
  }
  constexpr ct_vector& operator=(ct_vector&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  constexpr ~ct_vector() { release(); }

  constexpr void push_back(const T& v) {
    if (size_ == capacity_) grow(capacity_ == 0 ? 16 : 2 * capacity_);
    std::construct_at(data_ + size_, v);
    ++size_;
  }
  constexpr void assign(int n, const T& value) {
    clear();
    if (n > capacity_) grow(n);
    for (int i = 0; i < n; ++i) push_back(value);
  }
  constexpr void clear() {
    for (int i = 0; i < size_; ++i) std::destroy_at(data_ + i);
    size_ = 0;
  }

  constexpr int size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr T& operator[](int i) { return data_[i]; }
  constexpr const T& operator[](int i) const { return data_[i]; }
  constexpr T& back() { return data_[size_ - 1]; }
  constexpr T* data() { return data_; }
  constexpr const T* data() const { return data_; }
  constexpr T* begin() { return data_; }
  constexpr T* end() { return data_ + size_; }
  constexpr const T* begin() const { return data_; }
  constexpr const T* end() const { return data_ + size_; }

 private:
  constexpr void append_all(const ct_vector& o) {
    if (o.size_ > capacity_) grow(o.size_);
    for (const T& v : o) push_back(v);
  }
  constexpr void grow(int capacity) {
    std::allocator<T> alloc;
    T* fresh = alloc.allocate(static_cast<std::size_t>(capacity));
    for (int i = 0; i < size_; ++i) {
      std::construct_at(fresh + i, std::move(data_[i]));
      std::destroy_at(data_ + i);
    }
    if (data_) alloc.deallocate(data_, static_cast<std::size_t>(capacity_));
    data_ = fresh;
    capacity_ = capacity;
  }
  constexpr void release() {
    clear();
    if (data_) std::allocator<T>{}.deallocate(data_, static_cast<std::size_t>(capacity_));
    data_ = nullptr;
    capacity_ = 0;
  }

  T* data_ = nullptr;
  int size_ = 0;
  int capacity_ = 0;
};

}  // namespace kiln
