#pragma once
// Feeds and parameters addressed by compile-time names, checked by the compiler against the model's graph:
//
//   using namespace kiln::literals;
//   step.run(32, "x"_in = images, "y"_in = labels);   // a misspelled, missing or repeated feed does not compile
//   auto w = step.param<"fc1.weight">();              // static_matrix_view<float, 128, 784>
//
// A feed's buffer is any contiguous range (std::vector, std::array, a C array, a std::span): float for inputs,
// std::int32_t for labels and token indices. A buffer whose size is known at compile time (std::array, a C array,
// a fixed-extent span) must hold a whole number of samples. What the compiler cannot know (the batch size, a
// vector's length) is checked when the step runs, as for the string API, which stays for tools and checkpoints.
//
// Each check fails in a template whose arguments spell what is wrong: the name as characters (name_chars<'x',
// 'z'>, which g++ and clang both print readably), and the widths, e.g.
//   kiln::named_detail::no_input_named<kiln::named_detail::name_chars<'x', 'z'>, false>
// C++20 class-type template arguments make the string literal itself the template argument ("x"_in); Boost.Hana's
// compile-time strings would need the GNU string-literal-operator extension or BOOST_HANA_STRING to do the same.
#include <kiln/core/fixed_string.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/train/feed.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace kiln {

// A feed named at compile time: "x"_in = buffer.
template <fixed_string Name, class T, std::size_t Extent>
struct named_feed {
  static constexpr fixed_string name = Name;
  using element_type = T;
  static constexpr std::size_t extent = Extent;
  std::span<const T, Extent> data;
  kiln::feed to_feed() const { return kiln::feed(name.view(), std::span<const T>(data)); }
};

template <fixed_string Name>
struct feed_key {
  template <class Range>
  auto operator=(const Range& buffer) const {
    const auto s = std::span(buffer);
    using T = std::remove_const_t<typename decltype(s)::element_type>;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, std::int32_t>,
                  "kiln: a feed holds float (inputs) or std::int32_t (labels, token indices)");
    return named_feed<Name, T, decltype(s)::extent>{s};
  }
};

namespace literals {
template <fixed_string Name>
constexpr feed_key<Name> operator""_in() {
  return {};
}
}  // namespace literals

template <class T>
inline constexpr bool is_named_feed = false;
template <fixed_string Name, class T, std::size_t Extent>
inline constexpr bool is_named_feed<named_feed<Name, T, Extent>> = true;

// A parameter's values with their static shape [Rows, Cols] (row-major; a tensor of higher rank, such as a conv
// weight [O, C/groups, kh, kw], is [O, C/groups·kh·kw], PyTorch's layout with the later axes flattened).
template <class T, long Rows, long Cols>
struct static_matrix_view {
  static constexpr long rows = Rows, cols = Cols, size = Rows * Cols;
  T* data;
  constexpr T& operator()(long r, long c) const { return data[r * Cols + c]; }
  constexpr std::span<T, static_cast<std::size_t>(Rows * Cols)> values() const {
    return std::span<T, static_cast<std::size_t>(Rows * Cols)>(data, static_cast<std::size_t>(Rows * Cols));
  }
};

namespace named_detail {

// The failing checks: each names what is wrong in its template arguments.
template <char... C>
struct name_chars {};
template <class Name, bool Known>
struct no_input_named {
  static_assert(Known, "kiln: the model has no input or labels of this name (see the name_chars<...> above)");
  static constexpr bool ok = Known;
};
template <class Name, bool Fed>
struct input_not_fed {
  static_assert(Fed, "kiln: no feed given for this input of the model (see the name_chars<...> above)");
  static constexpr bool ok = Fed;
};
template <class Name, bool Once>
struct input_fed_twice {
  static_assert(Once, "kiln: this input is fed more than once (see the name_chars<...> above)");
  static constexpr bool ok = Once;
};
template <class Name, bool Labels, bool Right>
struct feed_element_type_check {
  static_assert(Right, "kiln: wrong element type for this feed: inputs take float, labels and token indices std::int32_t");
  static constexpr bool ok = Right;
};
template <class Name, std::size_t Extent, long Width, bool Whole>
struct feed_width_check {
  static_assert(Whole, "kiln: this buffer's static size is not a whole number of samples of the input's width "
                       "(feed_width_check<name, buffer size, width per sample>)");
  static constexpr bool ok = Whole;
};
template <class Name, bool Known>
struct no_parameter_named {
  static_assert(Known, "kiln: the model has no parameter or state of this name (see the name_chars<...> above)");
  static constexpr bool ok = Known;
};

template <fixed_string S, std::size_t... I>
auto spell(std::index_sequence<I...>) -> name_chars<S.chars[I]...>;
template <fixed_string S>
using spelled = decltype(spell<S>(std::make_index_sequence<S.size()>{}));

template <class Holder, int Leaf, std::size_t... I>
auto spell_leaf(std::index_sequence<I...>) -> name_chars<Holder::value.leaves[Leaf].name.chars[I]...>;
template <class Holder, int Leaf>
using spelled_leaf =
    decltype(spell_leaf<Holder, Leaf>(std::make_index_sequence<static_cast<std::size_t>(Holder::value.leaves[Leaf].name.length)>{}));

constexpr bool is_fed_leaf(const leaf_info& l) { return l.kind == leaf_kind::input || l.kind == leaf_kind::labels; }
constexpr bool is_stored_leaf(const leaf_info& l) { return l.kind == leaf_kind::param || l.kind == leaf_kind::state; }

template <class Holder>
consteval int leaf_named(std::string_view name, bool fed) {
  const graph& g = Holder::value;
  for (int l = 0; l < g.num_leaves; ++l)
    if ((fed ? is_fed_leaf(g.leaves[l]) : is_stored_leaf(g.leaves[l])) && g.leaves[l].name.view() == name) return l;
  return -1;
}

// The first input or labels leaf that none of the names feeds, or -1.
template <class Holder, class... Feeds>
consteval int first_unfed() {
  const graph& g = Holder::value;
  for (int l = 0; l < g.num_leaves; ++l)
    if (is_fed_leaf(g.leaves[l]) && ((g.leaves[l].name.view() != Feeds::name.view()) && ...)) return l;
  return -1;
}

template <class Holder, class Feed>
constexpr bool check_one() {
  constexpr int leaf = leaf_named<Holder>(Feed::name.view(), true);
  using name = spelled<Feed::name>;
  if constexpr (!no_input_named<name, (leaf >= 0)>::ok) {
    return false;
  } else {
    constexpr leaf_info info = Holder::value.leaves[leaf];
    constexpr bool labels = info.kind == leaf_kind::labels;
    constexpr bool right_type = std::is_same_v<typename Feed::element_type, std::conditional_t<labels, std::int32_t, float>>;
    constexpr bool whole = Feed::extent == std::dynamic_extent || Feed::extent % static_cast<std::size_t>(info.shape.cols) == 0;
    return feed_element_type_check<name, labels, right_type>::ok && feed_width_check<name, Feed::extent, info.shape.cols, whole>::ok;
  }
}

template <class Feed, class... Feeds>
consteval int times_named() {
  return ((Feed::name.view() == Feeds::name.view() ? 1 : 0) + ...);
}

}  // namespace named_detail

// Compile-time checks of a call's named feeds against the graph Holder::value: every feed names an input or labels
// leaf, once, with the right element type and (when static) a whole number of samples; every input is fed.
template <class Holder, class... Feeds>
constexpr void check_named_feeds() {
  static_assert((is_named_feed<Feeds> && ...), "kiln: feeds are given as \"name\"_in = buffer (using namespace kiln::literals)");
  (void)(named_detail::check_one<Holder, Feeds>() && ...);
  (void)(named_detail::input_fed_twice<named_detail::spelled<Feeds::name>, (named_detail::times_named<Feeds, Feeds...>() == 1)>::ok && ...);
  constexpr int unfed = named_detail::first_unfed<Holder, Feeds...>();
  if constexpr (unfed >= 0) (void)named_detail::input_not_fed<named_detail::spelled_leaf<Holder, unfed>, false>::ok;
}

// Whether the model (a step's or function's graph_holder) has an input or labels leaf called `name`: for code that
// picks its feeds at compile time, e.g. labels "y" or regression targets "t".
template <class Holder>
consteval bool has_feed(std::string_view name) {
  return named_detail::leaf_named<Holder>(name, true) >= 0;
}

// The input or labels leaf that a named feed binds (check_named_feeds makes sure there is one).
template <class Holder, class Feed>
inline constexpr int fed_leaf = named_detail::leaf_named<Holder>(Feed::name.view(), true);

// A call's checked named feeds, bound each to the leaf the compiler found for it: no name is compared at run
// time (kiln::cpu::detail::bind_feeds).
template <class Holder, class... Named>
struct named_feed_list {
  std::tuple<const Named&...> feeds;
};
template <class T>
inline constexpr bool is_named_feed_list = false;
template <class Holder, class... Named>
inline constexpr bool is_named_feed_list<named_feed_list<Holder, Named...>> = true;

// The leaf of the parameter or state named Name (a compile error naming it when the model has none).
template <class Holder, fixed_string Name>
consteval int named_parameter_leaf() {
  constexpr int leaf = named_detail::leaf_named<Holder>(Name.view(), false);
  static_assert(named_detail::no_parameter_named<named_detail::spelled<Name>, (leaf >= 0)>::ok);
  return leaf;
}

}  // namespace kiln
