#pragma once
// Data handed to a step for one batch, by leaf name: features as floats, labels as class indices.
#include <cstdint>
#include <span>
#include <string_view>

namespace kiln {

struct feed {
  std::string_view name;
  std::span<const float> values{};
  std::span<const std::int32_t> labels{};
  feed(std::string_view n, std::span<const float> v) : name(n), values(v) {}
  feed(std::string_view n, std::span<const std::int32_t> l) : name(n), labels(l) {}
};

}  // namespace kiln
