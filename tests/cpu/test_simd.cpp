// kiln::cpu SIMD vector type: every operation on vfloat against the same operation on float, lane by lane,
// plus the guarantees that matter to kernels (partial loads never touch memory past n, std::max semantics).
#include <kiln/cpu/simd.hpp>

#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln::cpu {
namespace {
vfloat iota(float start, float step) {
  vfloat v;
  for (int i = 0; i < lanes; ++i) v[i] = start + step * static_cast<float>(i);
  return v;
}
template <class V>
V relu(V x) {  // generic code: one definition for float, double and vfloat
  return select(gt(x, splat<V>(0.0f)), x, splat<V>(0.0f));
}
}  // namespace

TEST_CASE("vector width follows the target ISA") {
#if KILN_CPU_VECTOR_BITS == 512
  REQUIRE(lanes == 16);
#elif KILN_CPU_VECTOR_BITS == 256
  REQUIRE(lanes == 8);
#else
  REQUIRE(lanes == 4);
#endif
  REQUIRE(sizeof(vfloat) == lanes * sizeof(float));
}

TEST_CASE("lane-wise ops match the scalar overloads") {
  const vfloat a = iota(-3.5f, 0.75f), b = iota(2.0f, -0.5f);
  const vfloat c = iota(0.25f, 0.125f);
  const vfloat f = fma(a, b, c), g = gt(a, b), ge_ = ge(a, b), l = lt(a, b), le_ = le(a, b), e = eq(a, a);
  const vfloat mn = min(a, b), mx = max(a, b), sel = select(lt(a, b), a, b), r = relu(a);
  for (int i = 0; i < lanes; ++i) {
    INFO("lane " << i);
    CHECK(f[i] == fma(a[i], b[i], c[i]));
    CHECK(g[i] == gt(a[i], b[i]));
    CHECK(ge_[i] == ge(a[i], b[i]));
    CHECK(l[i] == lt(a[i], b[i]));
    CHECK(le_[i] == le(a[i], b[i]));
    CHECK(e[i] == 1.0f);
    CHECK(mn[i] == min(a[i], b[i]));
    CHECK(mx[i] == max(a[i], b[i]));
    CHECK(sel[i] == (a[i] < b[i] ? a[i] : b[i]));
    CHECK(r[i] == relu(a[i]));
    CHECK(static_cast<double>(r[i]) == relu(static_cast<double>(a[i])));
  }
  CHECK(gt(2.0, 1.0) == 1.0);
  CHECK(le(2.0, 1.0) == 0.0);
  CHECK(select(0.0, 1.0, 2.0) == 2.0);
  CHECK(fma(2.0, 3.0, 1.0) == 7.0);
}

TEST_CASE("comparisons are 0/1 and false on NaN; min/max follow std::min/std::max") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const vfloat n = splat(nan), one = splat(1.0f);
  CHECK(hsum(gt(n, one)) == 0.0f);
  CHECK(hsum(lt(n, one)) == 0.0f);
  CHECK(hsum(eq(n, n)) == 0.0f);
  CHECK(hsum(ge(one, one)) == static_cast<float>(lanes));
  // max(x, 0) keeps a NaN x (ReLU propagates NaN), max(0, NaN) is 0 -- exactly like std::max.
  CHECK(std::isnan(max(n, splat(0.0f))[0]));
  CHECK(max(splat(0.0f), n)[0] == 0.0f);
  CHECK(std::isnan(min(n, one)[0]));
  CHECK(min(one, n)[0] == 1.0f);
  CHECK(std::isnan(max(nan, 0.0f)));
  CHECK(max(0.0f, nan) == 0.0f);
}

TEST_CASE("horizontal sum and max") {
  const vfloat v = iota(1.0f, 1.0f);  // 1..lanes
  CHECK(hsum(v) == static_cast<float>(lanes * (lanes + 1) / 2));
  CHECK(hmax(v) == static_cast<float>(lanes));
  CHECK(hmax(iota(5.0f, -1.0f)) == 5.0f);
  vfloat w = splat(-7.0f);
  w[lanes - 1] = -2.0f;
  CHECK(hmax(w) == -2.0f);
  CHECK(hsum(2.5f) == 2.5f);
  CHECK(hmax(-1.0) == -1.0);
}

TEST_CASE("splat, load and store for every V") {
  float buf[lanes + 1];
  for (int i = 0; i <= lanes; ++i) buf[i] = static_cast<float>(i) * 1.5f;
  const vfloat v = load(buf + 1);
  for (int i = 0; i < lanes; ++i) CHECK(v[i] == buf[i + 1]);
  float out[lanes];
  store(out, v * 2.0f);
  for (int i = 0; i < lanes; ++i) CHECK(out[i] == 2.0f * buf[i + 1]);
  CHECK(load<float>(buf + 2) == 3.0f);
  const double d = 4.25;
  CHECK(load<double>(&d) == 4.25);
  CHECK(splat(3.0f)[lanes - 1] == 3.0f);
  CHECK(splat<float>(3.0f) == 3.0f);
  CHECK(splat<double>(0.1) == 0.1);
}

// Partial loads/stores must not touch memory past n: put the data against a page that faults on any access.
TEST_CASE("partial loads and stores never touch memory past n") {
  const long page = sysconf(_SC_PAGESIZE);
  void* mem = mmap(nullptr, static_cast<size_t>(2 * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  REQUIRE(mprotect(static_cast<char*>(mem) + page, static_cast<size_t>(page), PROT_NONE) == 0);
  float* page_end = reinterpret_cast<float*>(static_cast<char*>(mem) + page);
  for (int n = 0; n <= lanes; ++n) {
    INFO("n = " << n);
    float* p = page_end - n;  // the n floats just before the guard page
    for (int i = 0; i < n; ++i) p[i] = static_cast<float>(10 + i);
    const vfloat v = load_partial(p, n);
    for (int i = 0; i < lanes; ++i) CHECK(v[i] == (i < n ? static_cast<float>(10 + i) : 0.0f));
    store_partial(p, v + 1.0f, n);
    for (int i = 0; i < n; ++i) CHECK(p[i] == static_cast<float>(11 + i));
    CHECK(load_partial<float>(p, n) == (n > 0 ? 11.0f : 0.0f));
  }
  // store_partial leaves the lanes past n alone
  float keep[lanes];
  for (float& k : keep) k = -1.0f;
  store_partial(keep, splat(5.0f), lanes / 2);
  for (int i = 0; i < lanes; ++i) CHECK(keep[i] == (i < lanes / 2 ? 5.0f : -1.0f));
  munmap(mem, static_cast<size_t>(2 * page));
}

}  // namespace kiln::cpu
