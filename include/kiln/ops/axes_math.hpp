#pragma once
// The axis ops' arithmetic, written once (like ops/window_math.hpp, which embeds this text, so the reference,
// the CPU backend, its rendered C++ and the CUDA prelude all run these very functions): permute, crop (slice),
// pad, broadcast, and the sum and max over axes, each on every row of a [rows, cols] buffer whose row is a
// row-major tensor of rank ≤ 8 (a batched tensor [batch, d1, …, dk]'s row is [d1, …, dk]; a parameter is one row).
// Plain C-like C++: no std::, no #include, no preprocessor lines inside.
//
// With `in` the operand's row shape and `out` the result's, for output coordinates o:
//   permute    y[o] = x[i] with i[perm[k]] = o[k]        (out[k] = in[perm[k]]: torch.permute)
//   crop       y[o] = x[o + begin]                       (out ≤ in: a slice of every axis)
//   pad        y[o] = x[o − begin], 0 outside x          (in ≤ out: crop's adjoint; concatenation sums pads)
//   broadcast  y[o] = x[i], i[k] = 0 where in[k] = 1    (numpy's stretching of size-1 axes)
//   sum_to     y[o] = Σ x over the axes where out[k] = 1 < in[k], in row-major order (broadcast's adjoint)
//   max_to     y[o] = the first maximum over those axes, a NaN winning (PyTorch's amax rule)
//   max_to_dx  gx[i] = gy[o(i)] where i is its group's first maximum, else 0 (result of shape in)
//   reshape    y = x element by element (a change of [rows, cols] that keeps the order: parameters)

#define KILN_AXES_SOURCE(FN)                                                                                  \
  /* The geometry of an axis op: rank, the operand's and the result's row shapes, the permutation, and the */  \
  /* per-axis offsets of a crop or pad. One aggregate, so a renderer writes it as a literal.                */  \
  struct kiln_axes {                                                                                         \
    int rank = 0;                                                                                            \
    int in[8] = {1, 1, 1, 1, 1, 1, 1, 1};                                                                    \
    int out[8] = {1, 1, 1, 1, 1, 1, 1, 1};                                                                   \
    int perm[8] = {0, 1, 2, 3, 4, 5, 6, 7};                                                                  \
    int begin[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                 \
    FN long long in_size() const { long long n = 1; for (int k = 0; k < rank; ++k) n *= in[k]; return n; }   \
    FN long long out_size() const { long long n = 1; for (int k = 0; k < rank; ++k) n *= out[k]; return n; } \
  };                                                                                                         \
  enum kiln_axes_op { kiln_permute = 16, kiln_crop, kiln_pad, kiln_broadcast, kiln_sum_to, kiln_max_to,     \
                      kiln_max_to_dx, kiln_reshape };                                                        \
                                                                                                             \
  /* The coordinates c of flat index r in shape s (row-major). */                                            \
  FN void kiln_axes_coords(const int* s, int rank, long long r, int* c) {                                    \
    for (int k = rank - 1; k >= 0; --k) { c[k] = (int)(r % s[k]); r /= s[k]; }                               \
  }                                                                                                          \
  /* The flat index of coordinates c in shape s (row-major). */                                              \
  FN long long kiln_axes_flat(const int* s, int rank, const int* c) {                                        \
    long long r = 0;                                                                                         \
    for (int k = 0; k < rank; ++k) r = r * s[k] + c[k];                                                      \
    return r;                                                                                                \
  }                                                                                                          \
  /* The group of input positions that reduce into output coordinates o (sum_to, max_to): the axes where   */ \
  /* out[k] = 1 < in[k] run over in[k], the others stay at o[k]. Visits them in row-major order: f(flat).  */  \
  /* Returns the number of positions; `next` steps c to the next one (false after the last).              */  \
  FN bool kiln_axes_next(const kiln_axes& g, int* c) {                                                       \
    for (int k = g.rank - 1; k >= 0; --k) {                                                                  \
      if (g.out[k] != 1 || g.in[k] == 1) continue;                                                           \
      if (++c[k] < g.in[k]) return true;                                                                     \
      c[k] = 0;                                                                                              \
    }                                                                                                        \
    return false;                                                                                            \
  }                                                                                                          \
  /* The flat input index (within the row) of the first maximum of output o's group, a NaN winning. */       \
  template <class T>                                                                                         \
  FN long long kiln_axes_argmax(const kiln_axes& g, const T* x, const int* o) {                              \
    int c[8];                                                                                                \
    for (int k = 0; k < g.rank; ++k) c[k] = g.out[k] == 1 && g.in[k] != 1 ? 0 : o[k];                        \
    long long best = -1;                                                                                     \
    T v = 0;                                                                                                 \
    do {                                                                                                     \
      const long long at = kiln_axes_flat(g.in, g.rank, c);                                                  \
      const T u = x[at];                                                                                     \
      if (best < 0 || u > v || u != u) { best = at; v = u; }                                                 \
      if (u != u) break;                                                                                     \
    } while (kiln_axes_next(g, c));                                                                          \
    return best;                                                                                             \
  }                                                                                                          \
  /* Element e (flat over all rows) of axis op `op` on operand buffers a (and b for max_to_dx). */           \
  template <class T>                                                                                         \
  FN T kiln_axes_at(int op, const kiln_axes& g, const T* a, const T* b, long long e) {                       \
    const long long in_row = g.in_size(), out_row = g.out_size();                                            \
    if (op == kiln_reshape) return a[e];                                                                     \
    if (op == kiln_max_to_dx) { /* e runs over the input shape */                                            \
      const long long n = e / in_row, r = e % in_row;                                                        \
      int c[8], o[8];                                                                                        \
      kiln_axes_coords(g.in, g.rank, r, c);                                                                  \
      for (int k = 0; k < g.rank; ++k) o[k] = g.out[k] == 1 ? 0 : c[k];                                      \
      if (kiln_axes_argmax(g, a + n * in_row, o) != r) return (T)0;                                          \
      return b[n * out_row + kiln_axes_flat(g.out, g.rank, o)];                                              \
    }                                                                                                        \
    const long long n = e / out_row;                                                                         \
    const T* x = a + n * in_row;                                                                             \
    int o[8], c[8];                                                                                          \
    kiln_axes_coords(g.out, g.rank, e % out_row, o);                                                         \
    switch (op) {                                                                                            \
      case kiln_permute:                                                                                     \
        for (int k = 0; k < g.rank; ++k) c[g.perm[k]] = o[k];                                                \
        return x[kiln_axes_flat(g.in, g.rank, c)];                                                           \
      case kiln_crop:                                                                                        \
        for (int k = 0; k < g.rank; ++k) c[k] = o[k] + g.begin[k];                                           \
        return x[kiln_axes_flat(g.in, g.rank, c)];                                                           \
      case kiln_pad:                                                                                         \
        for (int k = 0; k < g.rank; ++k) {                                                                   \
          c[k] = o[k] - g.begin[k];                                                                          \
          if (c[k] < 0 || c[k] >= g.in[k]) return (T)0;                                                      \
        }                                                                                                    \
        return x[kiln_axes_flat(g.in, g.rank, c)];                                                           \
      case kiln_broadcast:                                                                                   \
        for (int k = 0; k < g.rank; ++k) c[k] = g.in[k] == 1 ? 0 : o[k];                                     \
        return x[kiln_axes_flat(g.in, g.rank, c)];                                                           \
      case kiln_max_to: return x[kiln_axes_argmax(g, x, o)];                                                 \
      default: { /* kiln_sum_to */                                                                           \
        for (int k = 0; k < g.rank; ++k) c[k] = g.out[k] == 1 && g.in[k] != 1 ? 0 : o[k];                    \
        T s = 0;                                                                                             \
        do s += x[kiln_axes_flat(g.in, g.rank, c)];                                                          \
        while (kiln_axes_next(g, c));                                                                        \
        return s;                                                                                            \
      }                                                                                                      \
    }                                                                                                        \
  }
