// Typed names (kiln/train/named.hpp): a step and a function fed with "name"_in = buffer compute what the string API
// computes, from every kind of buffer; param<"name">() views the same memory as param("name") with its static shape.
// The compile errors (misspelled, missing or repeated feeds, wrong element type or static width, unknown
// parameter) are in tests/compile_fail.
#include "export_models.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace {
using namespace kiln_test::export_models;
using namespace kiln::literals;
using step_type = kiln::cpu::train_step<mlp_loss, kiln::adam>;
}  // namespace

TEST_CASE("named feeds: a step fed by compile-time names trains as the string API does") {
  step_type by_string(kiln::adam{.lr = 1e-2}, 3), by_name(kiln::adam{.lr = 1e-2}, 3);
  const std::vector<float> x = normal(4 * 7, 1);
  const std::vector<std::int32_t> y = classes(4, 5, 2);
  std::array<float, 4 * 7> x_array{};
  std::copy(x.begin(), x.end(), x_array.begin());
  std::int32_t y_c[4];
  std::copy(y.begin(), y.end(), y_c);
  for (int i = 0; i < 3; ++i) {
    const float expected = by_string.run(4, {{"x", x}, {"y", y}});
    // a vector, a std::array, a C array and a fixed-extent span, in any order
    const float got = i == 0 ? by_name.run(4, "x"_in = x, "y"_in = y)
                    : i == 1 ? by_name.run(4, "y"_in = y_c, "x"_in = x_array)
                             : by_name.run(4, "x"_in = std::span<const float, 28>(x), "y"_in = std::span(y));
    CHECK(got == expected);
  }
  const auto w = by_name.param<"fc1.weight">();
  STATIC_REQUIRE(decltype(w)::rows == 16);
  STATIC_REQUIRE(decltype(w)::cols == 7);
  CHECK(w.data == by_name.param("fc1.weight").data());
  CHECK(w(3, 5) == by_name.param("fc1.weight")[3 * 7 + 5]);
  CHECK(by_name.param<"fc1.weight.exp_avg">().data == by_name.param("fc1.weight.exp_avg").data());
  const step_type& as_const = by_name;
  STATIC_REQUIRE(std::is_same_v<decltype(as_const.param<"fc4.bias">().values()), std::span<const float, 5>>);
  // feeds known at compile time: inputs and labels, not parameters
  STATIC_REQUIRE(kiln::has_feed<step_type::graph_holder>("x"));
  STATIC_REQUIRE(kiln::has_feed<step_type::graph_holder>("y"));
  STATIC_REQUIRE_FALSE(kiln::has_feed<step_type::graph_holder>("t"));
  STATIC_REQUIRE_FALSE(kiln::has_feed<step_type::graph_holder>("fc1.weight"));
}

TEST_CASE("named feeds: run-time sizes are still checked, naming the feed and both shapes") {
  step_type step(kiln::adam{}, 1);
  const std::vector<float> x = normal(3 * 7, 1);
  const std::vector<std::int32_t> y = classes(4, 5, 2);
  CHECK_THROWS_WITH(step.run(4, "x"_in = x, "y"_in = y), Catch::Contains("'x'") && Catch::Contains("21") && Catch::Contains("[4, 7]"));
  // the leaves are found by the compiler, the values still checked at run time: labels, their count and range
  const std::vector<float> x4 = normal(4 * 7, 1);
  const std::vector<std::int32_t> y3 = classes(3, 5, 2);
  CHECK_THROWS_WITH(step.run(4, "x"_in = x4, "y"_in = y3), Catch::Contains("'y'") && Catch::Contains("3 values") && Catch::Contains("[4, 1]"));
  std::vector<std::int32_t> y_out = y;
  y_out[2] = 5;
  CHECK_THROWS_WITH(step.run(4, "y"_in = y_out, "x"_in = x4), Catch::Contains("label 5 at index 2 of 'y'") && Catch::Contains("[0, 5)"));
  CHECK_NOTHROW(step.run(4, "y"_in = y, "x"_in = x4));
}

TEST_CASE("named feeds: a function runs on named feeds and exposes typed parameters") {
  step_type step(kiln::adam{}, 5);
  auto f = kiln::cpu::function<mlp_probabilities>::copy_of(step);
  auto ws = f.make_workspace();
  const std::vector<float> x = normal(2 * 7, 4);
  std::vector<float> by_string(2 * 5), by_name(2 * 5);
  f.run(ws, 2, {{"x", x}}, by_string);
  f.run(ws, 2, by_name, "x"_in = x);
  CHECK(by_name == by_string);
  const auto w = f.param<"fc2.weight">();
  STATIC_REQUIRE(decltype(w)::rows == 12);
  STATIC_REQUIRE(decltype(w)::cols == 16);
  CHECK(w.data == f.param("fc2.weight").data());
}
