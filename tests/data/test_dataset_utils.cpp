// Dataset helpers: scaling, one-hot, the reproducible shuffle, mini-batches and the train/validation split.
#include <kiln/data/dataset.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

using namespace kiln::data;

TEST_CASE("dataset: scale_bytes maps 0..255 onto [0,1]") {
  const std::vector<std::uint8_t> bytes{0, 51, 255};
  const auto v = scale_bytes(bytes);
  REQUIRE(v.size() == 3);
  CHECK(v[0] == 0.0f);
  CHECK(v[1] == Approx(0.2f));
  CHECK(v[2] == 1.0f);
}

TEST_CASE("dataset: min_max_scaler fits per column and applies to other rows unclamped") {
  // Columns: [1, 3, 5] -> lo 1 hi 5; [10, 10, 10] constant; [-2, 0, 2] -> lo -2 hi 2.
  std::vector<float> train{1, 10, -2, 3, 10, 0, 5, 10, 2};
  const auto s = min_max_scaler::fit(train, 3);
  CHECK(s.lo == std::vector<float>{1, 10, -2});
  CHECK(s.hi == std::vector<float>{5, 10, 2});
  s.apply(train);
  CHECK(train == std::vector<float>{0, 0, 0, 0.5f, 0, 0.5f, 1, 0, 1});
  std::vector<float> other{9, 11, -4};
  s.apply(other);
  CHECK(other == std::vector<float>{2, 0, -0.5f});
  CHECK_THROWS_AS(min_max_scaler::fit(std::vector<float>{1, 2, 3}, 2), kiln::shape_error);
  std::vector<float> wrong(4);
  CHECK_THROWS_AS(s.apply(wrong), kiln::shape_error);
}

TEST_CASE("dataset: one_hot puts a single 1 per row and rejects out-of-range labels") {
  const std::vector<std::int32_t> labels{2, 0, 1};
  const auto y = one_hot(labels, 3);
  CHECK(y == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0});
  CHECK_THROWS_WITH(one_hot(std::vector<std::int32_t>{0, 3}, 3),
                    Catch::Contains("label 3 at index 1 is outside [0, 3)"));
  CHECK_THROWS_AS(one_hot(std::vector<std::int32_t>{-1}, 3), kiln::shape_error);
}

namespace {
// An engine that replays a script of outputs, to test the rejection rule exactly.
struct scripted_engine {
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return UINT64_MAX; }
  std::vector<std::uint64_t> outputs;
  std::size_t next = 0;
  result_type operator()() { return outputs.at(next++); }
};
}  // namespace

TEST_CASE("dataset: bounded_draw rejects exactly the outputs below 2^64 mod n") {
  // 2^64 mod 3 = 1 (2^64 = (2^2)^32 ≡ 1 mod 3): output 0 is rejected, 1 maps to 1, UINT64_MAX maps to 0.
  scripted_engine e{{0, 1, UINT64_MAX}};
  CHECK(bounded_draw(e, 3) == 1);
  CHECK(e.next == 2);
  CHECK(bounded_draw(e, 3) == UINT64_MAX % 3);
  // n = 2^63 + 1: 2^64 mod n = 2^63 - 1, so everything below 2^63 - 1 is rejected.
  const std::uint64_t n = (1ull << 63) + 1;
  scripted_engine big{{5, (1ull << 63) - 2, (1ull << 63) - 1}};
  CHECK(bounded_draw(big, n) == ((1ull << 63) - 1) % n);
  CHECK(big.next == 3);
  // Powers of two reject nothing.
  scripted_engine pow2{{0}};
  CHECK(bounded_draw(pow2, 8) == 0);
  std::mt19937_64 g(1);
  CHECK_THROWS_AS(bounded_draw(g, 0), kiln::error);
}

TEST_CASE("dataset: the engine and the permutation are the same on every platform") {
  // The standard fixes mt19937_64's 10000th output for the default seed ([rand.predef]).
  std::mt19937_64 g;
  g.discard(9999);
  CHECK(g() == 9981545732273789042ull);
  // Expected values computed by an independent Python implementation of mt19937_64 (checked against the
  // value above) running the same rule: j = bounded draw in [0, i], swap(a[i-1], a[j]) for i = n..2.
  CHECK(permutation(10, 42) == std::vector<std::size_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});
  CHECK(permutation(16, 2024) == std::vector<std::size_t>{3, 7, 10, 13, 1, 9, 0, 12, 8, 15, 5, 14, 2, 11, 4, 6});
}

TEST_CASE("dataset: permutations are permutations, reproducible per seed and different across seeds") {
  for (std::uint64_t seed : {0ull, 1ull, 12345ull}) {
    const auto p = permutation(1000, seed);
    auto sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> iota(1000);
    std::iota(iota.begin(), iota.end(), 0);
    CHECK(sorted == iota);
    CHECK(permutation(1000, seed) == p);
    CHECK(permutation(1000, seed + 1) != p);
  }
  CHECK(permutation(0, 7).empty());
  CHECK(permutation(1, 7) == std::vector<std::size_t>{0});
}

TEST_CASE("dataset: Fisher-Yates makes all 6 orders of 3 items equally likely") {
  // 60000 shuffles: each order expects 10000, standard deviation sqrt(60000 · 1/6 · 5/6) ≈ 91; allow 5σ.
  std::mt19937_64 g(99);
  std::map<std::array<int, 3>, int> counts;
  for (int trial = 0; trial < 60000; ++trial) {
    std::array<int, 3> a{0, 1, 2};
    shuffle(std::span<int>(a), g);
    ++counts[a];
  }
  REQUIRE(counts.size() == 6);
  for (const auto& [order, n] : counts) CHECK(std::abs(n - 10000) < 456);
}

TEST_CASE("dataset: batches cover the order in slices with a shorter last one") {
  std::vector<std::size_t> order(10);
  std::iota(order.begin(), order.end(), 100);
  const batches b(order, 4);
  REQUIRE(b.size() == 3);
  std::vector<std::size_t> sizes, joined;
  for (std::span<const std::size_t> batch : b) {
    sizes.push_back(batch.size());
    joined.insert(joined.end(), batch.begin(), batch.end());
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(joined == order);
  CHECK(b[2][1] == 109);
  CHECK(batches(std::span<const std::size_t>(order).first(8), 4).size() == 2);
  CHECK(batches(order, 64).size() == 1);
  CHECK(batches(std::span<const std::size_t>(), 4).size() == 0);
  CHECK(batches(std::span<const std::size_t>(), 4).begin() == batches(std::span<const std::size_t>(), 4).end());
  CHECK_THROWS_AS(batches(order, 0), kiln::shape_error);
}

TEST_CASE("dataset: gather_rows copies the chosen rows in order") {
  const std::vector<float> table{0, 1, 10, 11, 20, 21};  // 3 rows of 2
  const std::vector<std::size_t> rows{2, 0, 2};
  CHECK(gather_rows<float>(table, 2, rows) == std::vector<float>{20, 21, 0, 1, 20, 21});
  const std::vector<std::int32_t> labels{7, 8, 9};
  CHECK(gather_rows<std::int32_t>(labels, 1, rows) == std::vector<std::int32_t>{9, 7, 9});
  CHECK_THROWS_WITH(gather_rows<float>(table, 2, std::vector<std::size_t>{3}),
                    Catch::Contains("row index 3 but the table has 3 rows"));
  std::vector<float> small(3);
  CHECK_THROWS_AS(gather_rows<float>(table, 2, rows, small), kiln::shape_error);
  CHECK_THROWS_AS(gather_rows<float>(table, 4, rows), kiln::shape_error);
}

TEST_CASE("dataset: train_validation_split partitions the indices reproducibly") {
  const auto s = train_validation_split(10, 0.2, 5);
  CHECK(s.validation.size() == 2);
  CHECK(s.train.size() == 8);
  std::set<std::size_t> all(s.train.begin(), s.train.end());
  all.insert(s.validation.begin(), s.validation.end());
  CHECK(all.size() == 10);
  CHECK(*all.rbegin() == 9);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  CHECK(std::is_sorted(s.validation.begin(), s.validation.end()));
  // Validation is the head of permutation(n, seed).
  auto head = permutation(10, 5);
  head.resize(2);
  std::sort(head.begin(), head.end());
  CHECK(s.validation == head);
  CHECK(train_validation_split(10, 0.2, 5).validation == s.validation);
  CHECK(train_validation_split(1000, 0.2, 6).validation != train_validation_split(1000, 0.2, 5).validation);
  CHECK(train_validation_split(7, 0.0, 1).validation.empty());
  CHECK(train_validation_split(7, 1.0, 1).train.empty());
  CHECK(train_validation_split(60000, 1.0 / 6, 1).validation.size() == 10000);
  CHECK_THROWS_AS(train_validation_split(10, 1.5, 1), kiln::error);
  CHECK_THROWS_AS(train_validation_split(10, -0.1, 1), kiln::error);
}
