#pragma once
// Dropout (PyTorch's nn.Dropout): in a training graph, each element is kept with probability 1 − p and scaled
// by 1/(1 − p), or set to 0; in a forward graph (predictions, evaluation) it is the identity. So one model gives
// both: cpu::train_step trains with dropout, cpu::function and the trainer's evaluation run without it.
//
// The mask is where(u ≥ p, ·, 0) with u a uniform draw per element from a counter-based generator
// (core/philox.hpp) keyed by the step's seed and step number and by the element's index, so the reference
// evaluator, the CPU and the CUDA backends drop exactly the same elements, and a step run again with the same
// key draws the same mask. Each dropout has its own stream, a hash of its input node and p: two dropouts of
// the same tensor with the same p share their mask (apply it once and reuse the result instead).
#include <kiln/core/hash.hpp>
#include <kiln/expr/operators.hpp>

#include <bit>
#include <cstdint>
#include <string_view>

namespace kiln {

struct dropout {
  double p = 0.5;  // the probability of dropping an element

  template <expression X>
  constexpr auto operator()(X x) const { return make_expr<dropout_tag, X::shape, X::kind == value_kind::logits ? value_kind::logits : value_kind::any>(p, x); }

 private:
  struct dropout_tag {
    static constexpr int emit(builder& b, double p, int x) {
      if (!(p >= 0 && p <= 1)) throw "kiln: dropout's p (the probability of dropping an element) must be in [0, 1]";
      if (!b.training || p == 0) return x;
      const int u = b.random_uniform(b.shape(x), stream_of(x, p));
      const double scale = p < 1 ? 1 / (1 - p) : 0;  // p = 1 drops everything (u < 1 always)
      // The threshold is p rounded to float, so that float and double backends compare u (a float) alike.
      const double threshold = static_cast<double>(static_cast<float>(p));
      return b.where(b.ge(u, b.scalar(threshold)), b.mul(x, b.scalar(scale)), b.scalar(0.0));
    }
    // A stream per (input node, p): FNV-1a over both, each as 8 little-endian bytes.
    static constexpr std::uint32_t stream_of(int node, double p) {
      const std::uint64_t h = fnv1a64(bytes_of(std::bit_cast<std::uint64_t>(p)).view(),
                                      fnv1a64(bytes_of(static_cast<std::uint64_t>(node)).view()));
      return static_cast<std::uint32_t>(h ^ (h >> 32));
    }
    struct word_bytes {
      char b[8];
      constexpr std::string_view view() const { return {b, 8}; }
    };
    static constexpr word_bytes bytes_of(std::uint64_t w) {
      word_bytes out{};
      for (int i = 0; i < 8; ++i) out.b[i] = static_cast<char>((w >> (8 * i)) & 0xff);
      return out;
    }
  };
};

}  // namespace kiln
