// The 2×2 stride-2 max pooling on SIMD vectors (cpu/pool.hpp, pair_detail) against the element-wise definition
// (ops/window_math.hpp), bit for bit: each input element lies in one window at most, so both forms compute the same
// values. Map widths from 2 to 6·lanes + 5 (output rows of one partial vector up to three full ones and a partial),
// odd heights and widths (an uncovered last row and column), ties (small integers) and NaNs (which win). The
// _v128 variant runs the same at 4 lanes (tests/CMakeLists.txt). The forward that also keeps each window's maximum's
// corner and the adjoint that scatters by those corners (executor argmax pooling) give the same bits.
#include <kiln/cpu/pool.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace {

using kiln::window;
namespace wm = kiln::window_math;
using kiln::cpu::lanes;

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

template <int H, int W>
void check_map(std::mt19937& rng) {
  constexpr window w{.c = 3, .h = H, .w = W, .o = 3, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
  static_assert(kiln::cpu::pool::pair_window<w>);
  constexpr long N = 2, in = w.in_size(), out = w.out_size();
  std::vector<float> x(N * in), gy(N * out);
  std::uniform_int_distribution<int> small(0, 3), percent(0, 99);
  for (float& v : x) v = percent(rng) < 3 ? std::nanf("") : percent(rng) < 3 ? -0.0f : static_cast<float>(small(rng));
  for (float& v : gy) v = static_cast<float>(small(rng)) + 0.5f;
  // garbage in the outputs: every element must be written
  std::vector<float> y(N * out, 7.0f), gx(N * in, 7.0f);
  kiln::cpu::pool::max_forward<w>(x.data(), y.data(), 0, N);
  kiln::cpu::pool::max_adjoint<w>(x.data(), gy.data(), gx.data(), 0, N);
  INFO("map " << H << "x" << W << ", " << lanes << " lanes");
  long wrong = 0;
  for (long e = 0; e < N * out; ++e)
    wrong += !same_bits(y[e], wm::kiln_window_at<float>(wm::kiln_max_pool2d, w, x.data(), nullptr, N, e));
  CHECK(wrong == 0);
  wrong = 0;
  for (long e = 0; e < N * in; ++e)
    wrong += !same_bits(gx[e], wm::kiln_window_at<float>(wm::kiln_max_pool2d_dx, w, x.data(), gy.data(), N, e));
  CHECK(wrong == 0);
  // the same through the corners the forward keeps (executor argmax pooling): pooled values, corners 0 to 3 and the
  // adjoint scattered by them, bit for bit
  std::vector<float> y2(N * out, 7.0f), gx2(N * in, 7.0f);
  std::vector<std::uint8_t> corners(N * kiln::cpu::pool::argmax_bytes_per_sample<w>, 9);
  kiln::cpu::pool::max_forward_argmax<w>(x.data(), y2.data(), corners.data(), N);
  kiln::cpu::pool::max_adjoint_argmax<w>(corners.data(), gy.data(), gx2.data(), N);
  CHECK(std::equal(y.begin(), y.end(), y2.begin(), same_bits));
  CHECK(std::all_of(corners.begin(), corners.end(), [](std::uint8_t k) { return k < 4; }));
  CHECK(std::equal(gx.begin(), gx.end(), gx2.begin(), same_bits));
}

template <int H, int... W>
void check_widths(std::mt19937& rng, std::integer_sequence<int, W...>) {
  (check_map<H, W + 2>(rng), ...);
}

}  // namespace

TEST_CASE("max_pool2d 2x2 stride 2: the vector loops equal the element-wise definition bit for bit", "[pool]") {
  std::mt19937 rng(20261205);
  constexpr int widths = 6 * lanes + 4;  // 2 … 6·lanes + 5
  check_widths<2>(rng, std::make_integer_sequence<int, widths>{});
  check_widths<5>(rng, std::make_integer_sequence<int, widths>{});
  check_map<28, 28>(rng);  // the Fashion-MNIST CNN's maps
  check_map<14, 14>(rng);
}
