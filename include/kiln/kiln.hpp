#pragma once
// The one header users include.
#include <kiln/core/error.hpp>
#include <kiln/autodiff/grad.hpp>
#include <kiln/expr/operators.hpp>
#include <kiln/expr/tensor.hpp>
#include <kiln/nn/activations.hpp>
#include <kiln/nn/layers.hpp>
#include <kiln/nn/losses.hpp>
#include <kiln/nn/normalization.hpp>
#include <kiln/nn/dropout.hpp>
#include <kiln/nn/embedding.hpp>
#include <kiln/nn/conv.hpp>
#include <kiln/nn/batch_norm.hpp>
