#pragma once
// The op list: one entry per primitive, in id order. X(name) names the primitive; its struct is ops::name_op
// (ops/*.hpp), which holds everything else about it. Both the enum `op` (ir/graph.hpp) and the type list
// ops::all (ops/registry.hpp) are generated from this list, so adding a primitive adds one entry here.
#define KILN_OPS(X)                                                                                    \
  /* leaves and immediates */                                                                          \
  X(input) X(param) X(state) X(hyper) X(constant) X(batch_size) X(iota) X(random_uniform)               \
  /* elementwise unary */                                                                              \
  X(neg) X(exp) X(expm1) X(log) X(log1p) X(sqrt) X(abs) X(tanh) X(sigmoid) X(erf) X(softplus) X(recip) X(pow_c) \
  X(max_c) X(min_c) X(stop_gradient) X(broadcast_to)                                                   \
  /* elementwise binary and ternary */                                                                 \
  X(add) X(sub) X(mul) X(div) X(gt) X(ge) X(eq) X(where)                                               \
  /* reductions (the reduced dimension kept as 1) */                                                   \
  X(sum_rows) X(sum_cols) X(max_cols)                                                                  \
  /* layout and contraction */                                                                         \
  X(transpose) X(matmul)                                                                               \
  /* indexing: embeddings, and the window ops of feature maps (ops/window.hpp) */                      \
  X(gather) X(scatter_add) X(conv2d) X(conv2d_dx) X(conv2d_dw) X(max_pool2d) X(max_pool2d_dx) X(avg_pool2d)     \
  X(avg_pool2d_dx) X(channel_sum) X(channel_repeat)                                                    \
  /* indexing: the axis ops of tensors of any rank (ops/axes.hpp) */                                   \
  X(permute) X(crop) X(pad) X(broadcast_axes) X(sum_to) X(max_to) X(max_to_dx) X(reshape)  \
  /* collectives: a value summed over the ranks of a data-parallel run (ops/collective.hpp) */         \
  X(all_reduce)
