// The CPU backend, fused and unfused, against the double reference evaluator over every optimizer and its
// options (weight decay, momentum, Nesterov, decoupled decay), several batch sizes and steps.
#include "backend_compare.hpp"

TEST_CASE("fused == unfused == reference across optimizers", "[backend]") {
  for (long batch : {1L, 5L, 100L}) {
    compare<mse_model<relu_fn>>(sgd{.lr = 0.05, .weight_decay = 0.1}, batch, 22);
    compare<mse_model<tanh_fn>>(momentum{.lr = 0.05, .momentum = 0.9}, batch, 23);
    compare<mse_model<tanh_fn>>(nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}, batch, 24);
    compare<mse_model<gelu_fn>>(adamw{.lr = 1e-2, .weight_decay = 0.1}, batch, 25);
    compare<mse_model<gelu_fn>>(adam{.lr = 1e-2, .weight_decay = 0.1}, batch, 26);
  }
}

TEST_CASE("in-place updates wait for every read, also through a transpose (factored weight A·B)", "[backend]") {
  for (long batch : {3L, 40L}) compare<factored_model>(adam{.lr = 1e-1}, batch, 41);
}
