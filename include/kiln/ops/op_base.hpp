#pragma once
// The closed set of primitives. Each primitive is one struct holding, in one place:
//   kind / cls / arity / name   what it is (traits, never compared by name in passes)
//   eval<M>(x...)               scalar or SIMD forward, written against a math policy M
//                               (M = std double math for the reference, SIMD float math for the CPU backend)
//   vjp(b, self, g, d)          its derivative rule written in other primitives through a graph builder b:
//                               d[i] receives the adjoint contribution to operand i (-1 for none)
//   render(m, a)                its source text for the C++ and CUDA renderers (m = math namespace prefix)
#include <kiln/ir/graph.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace kiln::ops {

inline std::string call(std::string_view m, std::string_view f, const std::string* a, int n) {
  std::string s = std::string(m) + std::string(f) + "(";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + a[i];
  return s + ")";
}
inline std::string infix(std::string_view o, const std::string* a) { return "(" + a[0] + " " + std::string(o) + " " + a[1] + ")"; }
inline std::string num(double v) {
  // Shortest round-trip text of a double, written as a float literal for the float backends.
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  if (s == "inf") return "INFINITY";
  if (s == "-inf") return "(-INFINITY)";
  return s + "f";
}

}  // namespace kiln::ops
