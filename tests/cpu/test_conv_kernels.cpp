// The CPU's convolution kernels (codegen/kiln/cpu/conv.hpp) against the element-wise definitions of
// ops/window_math.hpp evaluated in double, on random geometries: stride, padding, dilation, groups, maps smaller
// and larger than a window, and every path conv.hpp takes (a row at a time, the flat shift of a stride-1 "same"
// window, several samples per product and one sample written in place when a map has ≥ direct_columns outputs),
// with sample ranges that start inside a block and end in a partial one. Whole steps through these kernels:
// tests/core/test_conv.cpp (against the reference) and tests/torch/test_layers_torch.cpp (against PyTorch).
#include <catch2/catch.hpp>
#include <kiln/cpu/conv.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace kiln;

namespace {

std::string describe(const window& w) {
  std::ostringstream s;
  s << "C" << w.c << " " << w.h << "x" << w.w << " -> O" << w.o << " k" << w.kh << "x" << w.kw << " s" << w.sh << "," << w.sw
    << " p" << w.ph << "," << w.pw << " d" << w.dh << "," << w.dw << " g" << w.groups;
  return s.str();
}

bool valid(const window& w) {
  return w.h + 2 * w.ph >= w.dh * (w.kh - 1) + 1 && w.w + 2 * w.pw >= w.dw * (w.kw - 1) + 1;
}

// The largest |got − want| over the largest |want| (the sums run in another order than the definition's).
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 1e-30;
  for (std::size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

// Runs forward, input_adjoint and weight_adjoint on samples [n0, n1) of a batch of `batch` and checks each against
// window_math's definitions; the samples outside the range must stay untouched.
void check_geometry(const window& w, long batch, long n0, long n1, std::mt19937& rng) {
  INFO(describe(w) << ", batch " << batch << ", samples [" << n0 << ", " << n1 << ")");
  std::uniform_real_distribution<float> u(-1, 1);
  const long in = w.in_size(), out = w.out_size(), wsize = static_cast<long>(w.o) * (w.c / w.groups) * w.kh * w.kw;
  std::vector<float> x(static_cast<std::size_t>(batch * in)), wt(static_cast<std::size_t>(wsize)), gy(static_cast<std::size_t>(batch * out));
  for (auto* v : {&x, &wt, &gy})
    for (auto& e : *v) e = u(rng);
  const std::vector<double> xd(x.begin(), x.end()), wd(wt.begin(), wt.end()), gyd(gy.begin(), gy.end());
  std::size_t scratch = 0;
  for (int code : {window_math::kiln_conv2d, window_math::kiln_conv2d_dx, window_math::kiln_conv2d_dw})
    scratch = std::max(scratch, cpu::conv::scratch_floats(code, w));
  std::vector<float> ws(scratch);
  constexpr float untouched = 12345.0f;

  // samples [n0, n1) of `result` (row floats per sample) against definition(n, e); the other samples untouched
  const auto check_rows = [&](const std::vector<float>& result, long row, auto definition) {
    std::vector<double> want;
    std::vector<float> got;
    for (long n = n0; n < n1; ++n)
      for (long e = 0; e < row; ++e) {
        want.push_back(definition(n, e));
        got.push_back(result[n * row + e]);
      }
    CHECK(relative_error(got, want) < 1e-5);
    CHECK(std::all_of(result.begin(), result.begin() + n0 * row, [](float v) { return v == untouched; }));
    CHECK(std::all_of(result.begin() + n1 * row, result.end(), [](float v) { return v == untouched; }));
  };

  std::vector<float> y(gy.size(), untouched);
  cpu::conv::forward(w, x.data(), wt.data(), y.data(), n0, n1, ws.data());
  check_rows(y, out, [&](long n, long e) { return window_math::kiln_conv2d_at(w, xd.data() + n * in, wd.data(), e); });

  std::vector<float> gx(x.size(), untouched);
  cpu::conv::input_adjoint(w, gy.data(), wt.data(), gx.data(), n0, n1, ws.data());
  check_rows(gx, in, [&](long n, long e) { return window_math::kiln_conv2d_dx_at(w, gyd.data() + n * out, wd.data(), e); });

  std::vector<float> gw(wt.size(), untouched);
  cpu::conv::weight_adjoint(w, x.data(), gy.data(), gw.data(), n0, n1, ws.data());
  std::vector<double> want(wt.size());
  for (long e = 0; e < wsize; ++e)
    want[e] = window_math::kiln_conv2d_dw_at(w, xd.data() + n0 * in, gyd.data() + n0 * out, n1 - n0, e);
  CHECK(relative_error(gw, want) < 1e-5);
}

window random_window(std::mt19937& rng, bool large) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (;;) {
    window w;
    w.groups = pick(1, 3);
    w.c = w.groups * pick(1, 3);
    w.o = w.groups * pick(1, 3);
    w.h = large ? pick(16, 40) : pick(1, 9);
    w.w = large ? pick(16, 40) : pick(1, 9);
    w.kh = pick(1, 4), w.kw = pick(1, 4);
    w.sh = pick(1, 3), w.sw = pick(1, 3);
    w.dh = pick(1, 3), w.dw = pick(1, 3);
    w.ph = pick(0, 3), w.pw = pick(0, 3);
    if (pick(0, 1)) {  // half of them a stride-1 "same" window: the flat-shift path
      w.sh = w.sw = 1;
      w.kh = 2 * pick(0, 2) + 1, w.kw = 2 * pick(0, 2) + 1;
      w.ph = w.dh * (w.kh - 1) / 2, w.pw = w.dw * (w.kw - 1) / 2;
    }
    if (valid(w)) return w;
  }
}

}  // namespace

TEST_CASE("conv kernels: forward and both adjoints equal the element-wise definitions", "[conv][cpu]") {
  std::mt19937 rng(2024);
  int flat = 0, direct = 0, blocked = 0, narrow = 0;
  for (int trial = 0; trial < 240; ++trial) {
    const bool large = trial % 4 == 3;
    const window w = random_window(rng, large);
    const cpu::conv::sizes s = cpu::conv::sizes_of(w);
    const long batch = std::uniform_int_distribution<long>(1, large ? 3 : 2 * s.block + 1)(rng);
    const long n0 = std::uniform_int_distribution<long>(0, batch - 1)(rng);
    const long n1 = std::uniform_int_distribution<long>(n0 + 1, batch)(rng);
    flat += cpu::conv::is_flat_shift(w);
    direct += s.block == 1;
    blocked += n1 - n0 > 1 && s.block > 1;
    narrow += cpu::conv::narrow_patch(s);  // the weight adjoint's per-(o, k) vectors rather than the product
    check_geometry(w, batch, n0, n1, rng);
  }
  // every path was taken, many times
  CHECK(flat > 60);
  CHECK(direct > 30);
  CHECK(blocked > 30);
  INFO("windows whose weight adjoint took the narrow-patch path: " << narrow << " of 240");
  CHECK(narrow > (cpu::lanes >= 8 ? 60 : 10));
  CHECK(narrow < 230);
}

// The flat path (a stride-1 window as wide as its map) where the output is not as tall as the input, or the map not
// as wide as a vector: the input adjoint sums each element's taps in one pass (col2im_flat), masking the taps whose
// patch position falls outside the output and reading up to flat_slack floats around each row of patches.
TEST_CASE("conv kernels: the flat path with output heights other than the input's", "[conv][cpu]") {
  std::mt19937 rng(11);
  struct geometry { int c, h, w, o, kh, kw, ph, pw, dh, dw, groups; };
  for (const geometry g : {geometry{2, 7, 20, 3, 3, 1, 0, 0, 1, 1, 1},    // 5 output rows of 7
                           geometry{2, 5, 31, 2, 2, 3, 1, 1, 1, 1, 1},    // 6 of 5, an even kernel
                           geometry{4, 11, 11, 6, 3, 3, 2, 2, 2, 2, 2},   // dilated, grouped
                           geometry{3, 9, 9, 4, 5, 5, 2, 2, 1, 1, 1},     // a 5×5 "same" window
                           geometry{4, 17, 3, 4, 3, 3, 1, 1, 1, 1, 4},    // rows of 3: several to a vector
                           geometry{2, 6, 5, 2, 1, 3, 0, 1, 1, 1, 1},     // one kernel row
                           geometry{1, 12, 8, 2, 4, 1, 3, 0, 1, 1, 1}}) { // 15 output rows of 12
    window w;
    w.c = g.c, w.h = g.h, w.w = g.w, w.o = g.o, w.kh = g.kh, w.kw = g.kw, w.ph = g.ph, w.pw = g.pw, w.dh = g.dh, w.dw = g.dw;
    w.groups = g.groups;
    REQUIRE(cpu::conv::is_flat_shift(w));
    for (long batch : {1L, 3L, 2 * cpu::conv::sizes_of(w).block + 1}) check_geometry(w, batch, batch > 1 ? 1 : 0, batch, rng);
  }
}

TEST_CASE("conv kernels: the Fashion-MNIST CNN's two convolutions", "[conv][cpu]") {
  std::mt19937 rng(7);
  window conv1;  // 1 → 32 channels, 28×28, 3×3 padding 1: 784 outputs per map, one sample per product
  conv1.c = 1, conv1.h = conv1.w = 28, conv1.o = 32, conv1.kh = conv1.kw = 3, conv1.ph = conv1.pw = 1;
  window conv2 = conv1;  // 32 → 64 channels, 14×14: 196 outputs per map, several samples per product
  conv2.c = 32, conv2.h = conv2.w = 14, conv2.o = 64;
  CHECK(cpu::conv::sizes_of(conv1).block == 1);
  CHECK(cpu::conv::sizes_of(conv2).block > 1);
  check_geometry(conv1, 5, 1, 5, rng);
  check_geometry(conv2, 11, 2, 11, rng);
}

TEST_CASE("conv kernels: the forward's output channels computed in shares equal the whole", "[conv][cpu]") {
  // what threads sharing one sample's channels compute (executor::run_window): shares of any size, each building
  // the patches itself, write the rows the whole forward writes
  std::mt19937 rng(31);
  for (int trial = 0; trial < 60; ++trial) {
    const window w = random_window(rng, trial % 3 == 2);
    const cpu::conv::sizes s = cpu::conv::sizes_of(w);
    INFO(describe(w));
    const long batch = std::uniform_int_distribution<long>(1, 3)(rng);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> x(static_cast<std::size_t>(batch * w.in_size())), wt(static_cast<std::size_t>(w.o * s.K));
    for (auto* v : {&x, &wt})
      for (auto& e : *v) e = u(rng);
    std::vector<float> ws(cpu::conv::scratch_floats(window_math::kiln_conv2d, w));
    // FP32, and BF16 products where this CPU has them
    for (const cpu::bf16_path products : {cpu::bf16_path::fp32, cpu::bf16_path::avx512_bf16}) {
      if (!cpu::available(products)) continue;
      INFO(cpu::describe(products));
      std::vector<float> whole(static_cast<std::size_t>(batch * w.out_size()), 0.0f), shared(whole.size(), 12345.0f);
      cpu::conv::forward(w, x.data(), wt.data(), whole.data(), 0, batch, ws.data(), products);
      for (long o0 = 0; o0 < s.og;) {
        const long o1 = std::min(s.og, o0 + std::uniform_int_distribution<long>(1, 3)(rng));
        cpu::conv::forward(w, x.data(), wt.data(), shared.data(), 0, batch, ws.data(), products, o0, o1);
        o0 = o1;
      }
      // the same sums (bit for bit where the compiler fuses multiply-adds alike in every tile height; a build
      // without FMA lets it contract some of them)
      long differ = 0;
      for (std::size_t i = 0; i < whole.size(); ++i) differ += std::abs(shared[i] - whole[i]) > 1e-6f * (1 + std::abs(whole[i]));
      CHECK(differ == 0);
    }
  }
}
