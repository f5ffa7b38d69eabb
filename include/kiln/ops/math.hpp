#pragma once
// The math an op's forward is written against, once for every backend. A math policy M supplies, for its
// values V (double in the reference, float or a SIMD vector on the CPU, source text for the renderers):
//   M::constant<V>(k)                      k as a V
//   exp expm1 log log1p sqrt abs tanh erf  the library functions (each backend's own, to its stated accuracy)
//   pow(x, p)                              x^p for a constant p (std::pow's special cases)
//   max(a, b)  min(a, b)                   a NaN in a propagates, as PyTorch's clamp
//   gt ge eq                               1 or 0
//   select(c, a, b)                        c ≠ 0 ? a : b
//   let(v)                                 v, computed once where the forward uses it several times
// and V's +, −, ×, ÷ and unary −. Anything more an op needs is composed from these in the op's struct, so a
// composite (sigmoid, softplus) is written in one place and every backend computes it the same way.
#include <concepts>
#include <cstdio>
#include <string>
#include <string_view>

namespace kiln::ops {

// True, or a static_assert naming the first function M lacks for V. Each backend asserts it for its policy.
template <class M, class V>
constexpr bool check_math_policy() {
  static_assert(requires { { M::template constant<V>(1.0) } -> std::convertible_to<V>; },
                "kiln: this math policy lacks constant<V>(k)");
  static_assert(requires(V x) { { M::exp(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks exp(x)");
  static_assert(requires(V x) { { M::expm1(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks expm1(x)");
  static_assert(requires(V x) { { M::log(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks log(x)");
  static_assert(requires(V x) { { M::log1p(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks log1p(x)");
  static_assert(requires(V x) { { M::sqrt(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks sqrt(x)");
  static_assert(requires(V x) { { M::abs(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks abs(x)");
  static_assert(requires(V x) { { M::tanh(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks tanh(x)");
  static_assert(requires(V x) { { M::erf(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks erf(x)");
  static_assert(requires(V x) { { M::pow(x, 2.0) } -> std::convertible_to<V>; }, "kiln: this math policy lacks pow(x, p)");
  static_assert(requires(V x) { { M::max(x, x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks max(a, b)");
  static_assert(requires(V x) { { M::min(x, x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks min(a, b)");
  static_assert(requires(V x) { { M::gt(x, x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks gt(a, b)");
  static_assert(requires(V x) { { M::ge(x, x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks ge(a, b)");
  static_assert(requires(V x) { { M::eq(x, x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks eq(a, b)");
  static_assert(requires(V x) { { M::select(x, x, x) } -> std::convertible_to<V>; },
                "kiln: this math policy lacks select(c, a, b)");
  static_assert(requires(V x) { { M::let(x) } -> std::convertible_to<V>; }, "kiln: this math policy lacks let(v)");
  static_assert(requires(V x) { { x + x } -> std::convertible_to<V>; { x - x } -> std::convertible_to<V>;
                                { x * x } -> std::convertible_to<V>; { x / x } -> std::convertible_to<V>;
                                { -x } -> std::convertible_to<V>; },
                "kiln: this math policy's values lack +, -, *, / or unary -");
  return true;
}

// The policy of constant folding (ir/builder.hpp): exact double arithmetic at compile time. It has none of the
// library functions (std::exp and the rest are not constexpr in C++20), so only arithmetic ops fold.
struct fold_math {
  template <class V> static constexpr double constant(double k) { return k; }
  static constexpr double let(double v) { return v; }
  static constexpr double abs(double x) { return x < 0 ? -x : x == 0 ? 0.0 : x; }  // |−0| = +0
  static constexpr double max(double a, double b) { return a != a ? a : (a > b ? a : b); }
  static constexpr double min(double a, double b) { return a != a ? a : (a < b ? a : b); }
  static constexpr double gt(double a, double b) { return a > b ? 1 : 0; }
  static constexpr double ge(double a, double b) { return a >= b ? 1 : 0; }
  static constexpr double eq(double a, double b) { return a == b ? 1 : 0; }
  static constexpr double select(double c, double a, double b) { return c != 0 ? a : b; }
};

// Shortest round-trip text of a double, written as a float literal for the float backends.
inline std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  if (s == "inf") return "INFINITY";
  if (s == "-inf") return "(-INFINITY)";
  return s + "f";
}

// ---- source text as math values: an op's forward evaluated on `code` writes the op's source for a renderer.
// Values the forward binds with let() become named locals, written to the block the operands share.
struct code_block {
  std::string lines;   // `const <type> <name>_<i> = …;` statements, in order
  std::string name;    // the locals' stem (the node's variable)
  std::string indent;
  int locals = 0;
};
struct code {
  std::string text;
  code_block* block = nullptr;
};
namespace detail {
inline code_block* shared_block(const code& a, const code& b) { return a.block ? a.block : b.block; }
inline code infix(const code& a, std::string_view o, const code& b) {
  return {"(" + a.text + " " + std::string(o) + " " + b.text + ")", shared_block(a, b)};
}
}  // namespace detail
inline code operator+(const code& a, const code& b) { return detail::infix(a, "+", b); }
inline code operator-(const code& a, const code& b) { return detail::infix(a, "-", b); }
inline code operator*(const code& a, const code& b) { return detail::infix(a, "*", b); }
inline code operator/(const code& a, const code& b) { return detail::infix(a, "/", b); }
inline code operator-(const code& a) { return {"(-" + a.text + ")", a.block}; }

// A renderer's dialect D gives: prefix (its math namespace, e.g. "m::"), value_type (of a local) and
// constant(literal) (a float literal as a value).
template <class D>
struct text_math {
  template <class V> static code constant(double k) { return {D::constant(num(k)), nullptr}; }
  static code call(std::string_view f, std::initializer_list<code> a) {
    std::string s = std::string(D::prefix) + std::string(f) + "(";
    code_block* block = nullptr;
    bool first = true;
    for (const code& x : a) {
      s += (first ? "" : ", ") + x.text;
      if (!block) block = x.block;
      first = false;
    }
    return {s + ")", block};
  }
  static code exp(const code& x) { return call("exp", {x}); }
  static code expm1(const code& x) { return call("expm1", {x}); }
  static code log(const code& x) { return call("log", {x}); }
  static code log1p(const code& x) { return call("log1p", {x}); }
  static code sqrt(const code& x) { return call("sqrt", {x}); }
  static code abs(const code& x) { return call("abs", {x}); }
  static code tanh(const code& x) { return call("tanh", {x}); }
  static code erf(const code& x) { return call("erf", {x}); }
  static code pow(const code& x, double p) { return {std::string(D::prefix) + "pow(" + x.text + ", " + num(p) + ")", x.block}; }
  static code max(const code& a, const code& b) { return call("max", {a, b}); }
  static code min(const code& a, const code& b) { return call("min", {a, b}); }
  static code gt(const code& a, const code& b) { return call("gt", {a, b}); }
  static code ge(const code& a, const code& b) { return call("ge", {a, b}); }
  static code eq(const code& a, const code& b) { return call("eq", {a, b}); }
  static code select(const code& c, const code& a, const code& b) { return call("select", {c, a, b}); }
  static code let(const code& v) {
    if (!v.block) return v;  // a constant: nothing to compute once
    code_block& b = *v.block;
    const std::string local = b.name + "_" + std::to_string(b.locals++);
    b.lines += b.indent + "const " + std::string(D::value_type) + " " + local + " = " + v.text + ";\n";
    return {local, v.block};
  }
};

}  // namespace kiln::ops
