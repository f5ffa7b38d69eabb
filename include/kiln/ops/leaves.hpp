#pragma once
// Leaves: values that enter the graph. Buffers (input, param, state) are bound by the backend; immediates
// (constant, hyper, batch_size, iota, random_uniform) are folded into the kernels that use them.
#include <kiln/ops/op_base.hpp>

namespace kiln::ops {

struct input_op { static constexpr op kind = op::input; static constexpr op_class cls = op_class::leaf; static constexpr int arity = 0; static constexpr const char* name = "input"; };
struct param_op { static constexpr op kind = op::param; static constexpr op_class cls = op_class::leaf; static constexpr int arity = 0; static constexpr const char* name = "param"; };
struct state_op { static constexpr op kind = op::state; static constexpr op_class cls = op_class::leaf; static constexpr int arity = 0; static constexpr const char* name = "state"; };
// A run-time scalar hyperparameter (learning rate, bias corrections): slot `leaf` of the step's hyper array.
struct hyper_op { static constexpr op kind = op::hyper; static constexpr op_class cls = op_class::immediate; static constexpr int arity = 0; static constexpr const char* name = "hyper"; };
// A compile-time constant `k`, broadcast to its shape.
struct constant_op { static constexpr op kind = op::constant; static constexpr op_class cls = op_class::immediate; static constexpr int arity = 0; static constexpr const char* name = "const"; };
// The run-time batch size as a scalar (for means over the batch).
struct batch_size_op { static constexpr op kind = op::batch_size; static constexpr op_class cls = op_class::immediate; static constexpr int arity = 0; static constexpr const char* name = "batch_size"; };
// iota[0, j] = j: the column index, used to build one-hot encodings as eq(labels, iota).
struct iota_op { static constexpr op kind = op::iota; static constexpr op_class cls = op_class::immediate; static constexpr int arity = 0; static constexpr const char* name = "iota"; };
// rand[r, c] = random::uniform(step key, stream k, random::element_index(key, rows, cols, r, c)): a uniform draw in
// [0, 1) per element, the same on every backend (core/philox.hpp). A row per sample draws at its row of the whole
// batch (random::sample_row: a data-parallel rank's share draws what one process would); a row or column of
// size 1 is one draw broadcast. Only a training graph has these (dropout).
// Its cost (ten Philox rounds per four elements) makes a mask computed from it stored, not drawn again, when
// several kernels read it (the forward pass and the backward pass).
struct random_uniform_op { static constexpr op kind = op::random_uniform; static constexpr op_class cls = op_class::immediate; static constexpr int arity = 0; static constexpr const char* name = "rand"; static constexpr int cost = 8; };

}  // namespace kiln::ops
