#pragma once
// The op table: maps an op id to its struct. Passes dispatch through visit_op and read traits.
#include <kiln/ops/axes.hpp>
#include <kiln/ops/binary.hpp>
#include <kiln/ops/collective.hpp>
#include <kiln/ops/indexing.hpp>
#include <kiln/ops/leaves.hpp>
#include <kiln/ops/reduce.hpp>
#include <kiln/ops/unary.hpp>
#include <kiln/ops/window.hpp>

#include <array>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

namespace kiln::ops {

// The op structs, generated from the op list in the enum's order (ops/list.hpp).
#define KILN_OP_STRUCT(name) , name##_op
using all = boost::mp11::mp_pop_front<boost::mp11::mp_list<void KILN_OPS(KILN_OP_STRUCT)>>;
#undef KILN_OP_STRUCT
static_assert(boost::mp11::mp_size<all>::value == op_count, "kiln: ops::all must list every op of the enum");

template <op K>
using of = boost::mp11::mp_at_c<all, static_cast<std::size_t>(K)>;

namespace detail {
template <std::size_t... I>
constexpr bool ids_in_order(std::index_sequence<I...>) {
  return ((static_cast<std::size_t>(boost::mp11::mp_at_c<all, I>::kind) == I) && ...);
}
}  // namespace detail
static_assert(detail::ids_in_order(std::make_index_sequence<op_count>{}), "kiln: ops::all is out of enum order");

// Calls f(Op{}) with the struct of op k (constexpr-friendly).
template <class F>
constexpr decltype(auto) visit_op(op k, F&& f) {
  return boost::mp11::mp_with_index<op_count>(static_cast<std::size_t>(k),
      [&](auto i) -> decltype(auto) { return f(boost::mp11::mp_at_c<all, decltype(i)::value>{}); });
}

// Traits by op id, as tables generated from the op list: the passes ask for them at every node, and a table
// lookup is one step of constant evaluation where a dispatch through visit_op is dozens.
namespace detail {
template <class... Op>
struct trait_tables {
  static constexpr std::array<op_class, sizeof...(Op)> cls{Op::cls...};
  static constexpr std::array<int, sizeof...(Op)> arity{Op::arity...};
  static constexpr std::array<const char*, sizeof...(Op)> name{Op::name...};
  static constexpr std::array<int, sizeof...(Op)> cost{cost_of_op<Op>()...};
  static constexpr std::array<bool, sizeof...(Op)> uses_k{uses_k_of_op<Op>()...};
  static constexpr std::array<int, sizeof...(Op)> window_code{window_code_of_op<Op>()...};
};
using tables = boost::mp11::mp_apply<trait_tables, all>;
}  // namespace detail

constexpr op_class class_of(op k) { return detail::tables::cls[static_cast<std::size_t>(k)]; }
constexpr int arity_of(op k) { return detail::tables::arity[static_cast<std::size_t>(k)]; }
constexpr const char* name_of(op k) { return detail::tables::name[static_cast<std::size_t>(k)]; }
constexpr int cost_of(op k) { return detail::tables::cost[static_cast<std::size_t>(k)]; }
constexpr bool uses_k(op k) { return detail::tables::uses_k[static_cast<std::size_t>(k)]; }
// The window op's code in window_math (kiln_conv2d, …), −1 for an op that is not a window op.
constexpr int window_code_of(op k) { return detail::tables::window_code[static_cast<std::size_t>(k)]; }
constexpr bool is_window_op(op k) { return window_code_of(k) >= 0; }

}  // namespace kiln::ops
