#pragma once
// The closed set of primitives. Each primitive is one struct holding everything about it:
//   kind / cls / arity / name   what it is (traits, never compared by name in passes); kind is its entry in
//                               the op list (ops/list.hpp)
//   forward<M>(x..., k)         its value, written once against a math policy M (ops/math.hpp): the reference
//                               (double), the CPU (float and SIMD vectors) and both renderers (source text)
//                               all evaluate this one definition
//   vjp(b, self, g, d)          its derivative rule written in other primitives through a graph builder b:
//                               d[i] receives the adjoint contribution to operand i (-1 for none)
//   cost                        relative cost of evaluating it again where it is used (default 1; 8 for a
//                               transcendental function or a division; 0 for a pass-through and for an
//                               immediate other than a random draw), which decides whether the fusion pass
//                               recomputes or stores it
//   uses_k                      true where the node's constant k is an argument of the op (pow's exponent, a
//                               clamp's bound), printed with it (default false)
//   simplify(b, in, k, s)       its rewrites when a node is made (x·1 → x, …), −1 for none (default none)
//   shape_of(in)                its result shape, for ops that do not broadcast (reductions, contractions);
//                               shape_of(in, window) for the window ops (ops/window.hpp)
//   window_code                 a window op's code in window_math (ops/window_math.hpp), where its arithmetic is
//                               written once for every backend
#include <kiln/ir/graph.hpp>
#include <kiln/ops/math.hpp>

namespace kiln::ops {

template <class Op>
constexpr int cost_of_op() {
  if constexpr (requires { Op::cost; }) return Op::cost;
  else if constexpr (Op::cls == op_class::immediate) return 0;  // a constant, a hyperparameter, an index: free
  else return 1;
}

template <class Op>
constexpr bool uses_k_of_op() {
  if constexpr (requires { Op::uses_k; }) return Op::uses_k;
  else return false;
}

template <class Op>
constexpr int window_code_of_op() {
  if constexpr (requires { Op::window_code; }) return Op::window_code;
  else return -1;
}

// forward<M> of an elementwise op on its operands a[0 .. arity-1].
template <class Op, class M, class V>
constexpr V forward_of(const V* a, double k) {
  if constexpr (Op::arity == 1) return Op::template forward<M>(a[0], k);
  else if constexpr (Op::arity == 2) return Op::template forward<M>(a[0], a[1], k);
  else return Op::template forward<M>(a[0], a[1], a[2], k);
}

}  // namespace kiln::ops
