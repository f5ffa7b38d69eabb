#pragma once
// Data handed to a step for one batch, by leaf name: features as floats, labels as class indices. Every
// backend checks its feeds with bind_checked_feeds, so a bad batch is rejected with the same message whichever
// backend runs it.
#include <kiln/core/error.hpp>
#include <kiln/ir/graph.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

namespace kiln {

struct feed {
  std::string_view name;
  std::span<const float> values{};
  std::span<const std::int32_t> labels{};
  feed(std::string_view n, std::span<const float> v) : name(n), values(v) {}
  feed(std::string_view n, std::span<const std::int32_t> l) : name(n), labels(l) {}
};

// The feed named `name` (the last one given, if several are), or null. Feeds is a range (an initializer list, a
// span) of kiln::feed or of a backend's own kind (the CUDA step's device_feed).
template <class Feeds>
auto find_feed(const Feeds& feeds, std::string_view name) -> decltype(&*std::begin(feeds)) {
  decltype(&*std::begin(feeds)) f = nullptr;
  for (const auto& x : feeds)
    if (x.name == name) f = &x;
  return f;
}

// Checks feed f for input or labels leaf l of `g`: that it holds batch_size · cols values, and calls
// bind(leaf, data, count) with `count` floats. Labels are range-checked against the leaf's class count and
// converted to float class indices, written to label_buffer(leaf, count), which returns room for `count` floats.
// Runs every step, so it builds no string unless it throws.
template <class Feed, class LabelBuffer, class Bind>
void bind_checked_feed(const graph& g, int l, long batch_size, const Feed& f, LabelBuffer&& label_buffer, Bind&& bind) {
  const leaf_info& info = g.leaves[l];
  const auto name = [&] { return std::string(info.name.view()); };
  const long per_sample = info.shape.cols;
  const long expected = batch_size * per_sample;
  const auto count = static_cast<std::size_t>(expected);
  const auto want = [&] { return "[" + std::to_string(batch_size) + ", " + std::to_string(per_sample) + "]"; };
  if (info.kind == leaf_kind::labels) {
    if (f.labels.size() != count)
      throw shape_error("kiln: labels '" + name() + "' have " + std::to_string(f.labels.size()) +
                        " values but the batch needs shape " + want());
    float* indices = label_buffer(l, count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::int32_t y = f.labels[i];
      if (y < 0 || y >= info.num_classes)
        throw error("kiln: label " + std::to_string(y) + " at index " + std::to_string(i) + " of '" + name() +
                    "' is outside [0, " + std::to_string(info.num_classes) + ")");
      indices[i] = static_cast<float>(y);
    }
    bind(l, static_cast<const float*>(indices), count);
  } else {
    if (f.values.size() != count)
      throw shape_error("kiln: input '" + name() + "' has " + std::to_string(f.values.size()) +
                        " values but the batch needs shape " + want() + " = " + std::to_string(expected));
    bind(l, f.values.data(), count);
  }
}

// For every input and label leaf of `g`: finds its feed by name and checks and binds it (bind_checked_feed).
template <class Feeds, class LabelBuffer, class Bind>
void bind_checked_feeds(const graph& g, long batch_size, const Feeds& feeds, LabelBuffer&& label_buffer,
                        Bind&& bind) {
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    if (info.kind != leaf_kind::input && info.kind != leaf_kind::labels) continue;
    const auto* f = find_feed(feeds, info.name.view());
    if (!f) throw error("kiln: no data given for input '" + std::string(info.name.view()) + "'");
    bind_checked_feed(g, l, batch_size, *f, label_buffer, bind);
  }
}

}  // namespace kiln
