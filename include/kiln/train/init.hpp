#pragma once
// Initial parameter values: PyTorch's Linear default (uniform in ±1/√fan_in) and Embedding default (normal, mean
// 0, deviation 1) from a seeded, portable generator (std::mt19937_64 bits mapped to [0, 1) by hand, and normal
// values by Box–Muller, since std's distributions differ between libraries).
#include <kiln/ir/graph.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>

namespace kiln {

inline void initialize(const leaf_info& info, std::span<float> out, std::mt19937_64& rng) {
  switch (info.init) {
    case init_kind::zeros:
      for (float& v : out) v = 0;
      break;
    case init_kind::constant:
      for (float& v : out) v = static_cast<float>(info.init_value);
      break;
    case init_kind::normal: {
      auto unit = [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };  // [0, 1)
      for (float& v : out) {
        const double u1 = unit(), u2 = unit();
        v = static_cast<float>(info.init_value * std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * 3.141592653589793 * u2));
      }
      break;
    }
    case init_kind::uniform_fan_in: {
      const double bound = 1.0 / std::sqrt(static_cast<double>(info.fan_in));
      for (float& v : out) {
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
        v = static_cast<float>((2 * u - 1) * bound);
      }
      break;
    }
  }
}

}  // namespace kiln
