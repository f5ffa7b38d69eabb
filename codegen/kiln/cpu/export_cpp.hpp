#pragma once
// kiln::cpu::export_cpp(f, "model.hpp", "my_model"): a function's forward pass written as a standalone C++17
// header that needs nothing but the standard library. It holds the parameters as constant arrays and defines
//
//   namespace my_model {
//   void predict(const float* x, float* out, int batch);   // one pointer per input, in the model's order
//   }
//
// (an input of class indices, an embedding's, is a `const std::int32_t*`). The header runs the function's
// compiled plan kernel by kernel as plain loops that a compiler vectorizes: elementwise bodies through the same
// op definitions every backend uses (ops::text_math, here with <cmath>'s functions), GEMMs and convolutions as
// register tiles of rows × columns over weights the exporter stores in the layout the tiles read (a dense
// layer's weight transposed, a convolution's tap-major), max pooling map by map, and the other window and axis
// ops through the very text of ops/window_math.hpp. Scratch memory is per thread and grows to the largest batch
// a thread has seen, so concurrent callers need nothing else.
//
// Deterministic: the same model and parameters give byte-identical headers (floats are written with 9
// significant digits, which round-trip exactly). Ops with no meaning in a trained model's forward (random draws,
// optimizer hyperparameters) are refused with the op's name.
#include <kiln/cpu/function.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/ops/window_math.hpp>
#include <kiln/plan/kernel_view.hpp>
#include <kiln/plan/print.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln::cpu {

namespace export_detail {

// The ops' forward as scalar float code: kx:: is the header's math namespace (<cmath> and PyTorch's NaN rules).
struct scalar_dialect {
  static constexpr std::string_view prefix = "kx::", value_type = "float";
  static std::string constant(const std::string& literal) { return literal; }
};

inline const char* math_prelude = R"(namespace kx {  // the math the ops' forward is written against (kiln/ops/math.hpp)
inline float exp(float x) { return std::exp(x); }
inline float expm1(float x) { return std::expm1(x); }
inline float log(float x) { return std::log(x); }
inline float log1p(float x) { return std::log1p(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float abs(float x) { return std::fabs(x); }
inline float tanh(float x) { return std::tanh(x); }
inline float erf(float x) { return std::erf(x); }
inline float pow(float x, float p) { return std::pow(x, p); }
inline float max(float a, float b) { return a != a ? a : (a > b ? a : b); }  // a NaN in a propagates
inline float min(float a, float b) { return a != a ? a : (a < b ? a : b); }
inline float gt(float a, float b) { return a > b ? 1.0f : 0.0f; }
inline float ge(float a, float b) { return a >= b ? 1.0f : 0.0f; }
inline float eq(float a, float b) { return a == b ? 1.0f : 0.0f; }
inline float select(float c, float a, float b) { return c != 0.0f ? a : b; }
}  // namespace kx
)";

// Products as register tiles: P rows × V vectors of 16 floats whose sums stay in registers for the whole k loop,
// per k each row's value broadcast times V vectors of a row-major panel (GCC/clang vector types; a struct of 16
// floats for another compiler). The tile is sized to the target's vector registers. One tile serves the dense
// layers (rows of A times a panel of B) and the convolutions (pixels times the tap-major weight).
// 16 floats are one vector type with AVX-512 and otherwise an array of the target's own vectors (two of 8 with AVX,
// four of 4): GCC lowers a 64-byte vector type on a narrower target through the stack, every accumulator stored
// and reloaded per k step (3.5-9 times slower; bench/RESULTS.md, "The exported header's vectors").
inline const char* tile_prelude = R"(#if defined(__GNUC__) && defined(__AVX512F__)
typedef float kx_v16 __attribute__((vector_size(64)));
#define KX_UNROLL _Pragma("GCC unroll 16")
#elif defined(__GNUC__)
#if defined(__AVX__)
#define KX_PIECE 8
#else
#define KX_PIECE 4
#endif
#define KX_UNROLL _Pragma("GCC unroll 16")
typedef float kx_piece __attribute__((vector_size(4 * KX_PIECE)));
struct kx_v16 {  // 16 floats as 16 / KX_PIECE vectors of the target's width
  kx_piece p[16 / KX_PIECE];
};
inline kx_v16& operator+=(kx_v16& a, const kx_v16& b) {
  KX_UNROLL for (int i = 0; i < 16 / KX_PIECE; ++i) a.p[i] += b.p[i];
  return a;
}
inline kx_v16 operator*(float s, const kx_v16& v) {
  kx_v16 r;
  KX_UNROLL for (int i = 0; i < 16 / KX_PIECE; ++i) r.p[i] = s * v.p[i];
  return r;
}
#else
struct kx_v16 {  // 16 floats, for a compiler without vector types
  float f[16];
  kx_v16& operator+=(const kx_v16& o) {
    for (int l = 0; l < 16; ++l) f[l] += o.f[l];
    return *this;
  }
};
inline kx_v16 operator*(float s, const kx_v16& v) {
  kx_v16 r;
  for (int l = 0; l < 16; ++l) r.f[l] = s * v.f[l];
  return r;
}
#define KX_UNROLL
#endif
#if defined(__GNUC__) && defined(__AVX512F__)
#define KX_TILE_ROWS 6
#define KX_TILE_VECTORS 2
#elif defined(__GNUC__) && defined(__AVX__)
#define KX_TILE_ROWS 6
#define KX_TILE_VECTORS 1
#else
#define KX_TILE_ROWS 3
#define KX_TILE_VECTORS 1
#endif

// y[out[p] + c·ys] = Σ_k x[in[p] + t_k]·w[k·ldw + c] for P rows p and 16·V columns c, of which the first `count`
// are stored; t_k = tap[k] (a convolution's taps) when Taps, else k·xs (along a row of A).
template <int P, int V, bool Taps>
inline void kx_tile(const float* x, const long* in, const long* tap, long xs, long K, const float* w, long ldw, float* y,
                    const long* out, long ys, int count) {
  kx_v16 acc[P][V];
  const float* xp[P];
  KX_UNROLL for (int p = 0; p < P; ++p) {
    xp[p] = x + in[p];
    KX_UNROLL for (int v = 0; v < V; ++v) acc[p][v] = kx_v16{};
  }
  for (long k = 0; k < K; ++k) {
    kx_v16 wv[V];
    KX_UNROLL for (int v = 0; v < V; ++v) std::memcpy(&wv[v], w + k * ldw + 16 * v, 64);
    const long t = Taps ? tap[k] : k * xs;
    KX_UNROLL for (int p = 0; p < P; ++p) {
      const float s = xp[p][t];
      KX_UNROLL for (int v = 0; v < V; ++v) acc[p][v] += s * wv[v];
    }
  }
  float lanes[16 * V];
  for (int p = 0; p < P; ++p) {
    std::memcpy(lanes, acc[p], sizeof lanes);
    for (int c = 0; c < count; ++c) y[out[p] + c * ys] = lanes[c];
  }
}

// kx_tile over `vectors` vectors of columns, V at a time (the last tile 1 to V).
template <int P, int V, bool Taps>
inline void kx_tiles(int vectors, const float* x, const long* in, const long* tap, long xs, long K, const float* w, long ldw,
                     float* y, const long* out, long ys, int count) {
  for (int v0 = 0; v0 < vectors; v0 += V) {
    const int n = vectors - v0 < V ? vectors - v0 : V, stored = count - 16 * v0 < 16 * n ? count - 16 * v0 : 16 * n;
    const float* wv = w + 16 * v0;
    float* yv = y + 16L * v0 * ys;
    if (V >= 4 && n == 4) kx_tile<P, (V >= 4 ? 4 : 1), Taps>(x, in, tap, xs, K, wv, ldw, yv, out, ys, stored);
    else if (V >= 3 && n == 3) kx_tile<P, (V >= 3 ? 3 : 1), Taps>(x, in, tap, xs, K, wv, ldw, yv, out, ys, stored);
    else if (V >= 2 && n == 2) kx_tile<P, (V >= 2 ? 2 : 1), Taps>(x, in, tap, xs, K, wv, ldw, yv, out, ys, stored);
    else kx_tile<P, 1, Taps>(x, in, tap, xs, K, wv, ldw, yv, out, ys, stored);
  }
}

// y[i·ldy + j] = Σ_k a[i·ars + k·acs]·w[k·ldw + j] for rows i < M and columns j < n (B row-major): tiles of
// KX_TILE_ROWS rows (a last tile more than half full repeating its last row), the rows left one at a time (four
// vectors: enough sums in flight for one row), and the columns past the last whole vector as plain loops.
inline void rows_times_panel(const float* a, long ars, long acs, const float* w, long ldw, long K, long n, float* y,
                             long ldy, long M) {
  constexpr int P = KX_TILE_ROWS;
  const int vectors = static_cast<int>(n / 16);
  long in[P], out[P], i = 0;
  for (; i + P <= M || 2 * (M - i) > P; i += P) {
    for (int p = 0; p < P; ++p) {
      const long r = i + p < M ? i + p : M - 1;
      in[p] = r * ars, out[p] = r * ldy;
    }
    kx_tiles<P, KX_TILE_VECTORS, false>(vectors, a, in, nullptr, acs, K, w, ldw, y, out, 1, 16 * vectors);
  }
  for (; i < M; ++i) {
    in[0] = i * ars, out[0] = i * ldy;
    kx_tiles<1, 4, false>(vectors, a, in, nullptr, acs, K, w, ldw, y, out, 1, 16 * vectors);
  }
  for (long r = 0; r < M; ++r)
    for (long j = 16L * vectors; j < n; ++j) {
      float s = 0.0f;
      for (long k = 0; k < K; ++k) s += a[r * ars + k * acs] * w[k * ldw + j];
      y[r * ldy + j] = s;
    }
}

// y = conv2d(x, w) of one sample (the geometry as PyTorch's Conv2d), from the weight stored tap-major, wt [groups,
// C/groups·kh·kw, OGP]: the O/groups output channels of a tap innermost, padded with zeros to OGP (a multiple of
// 16). The sample is first copied into a zero-padded map, so a tap reads the input at (pixel's offset + tap's
// offset) with no bounds test; then the output is the product [pixels, taps]·[taps, channels] in tiles.
template <int OGP>
inline void conv2d_sample_taps(const float* x, const float* wt, float* y, const kiln_window& g) {
  constexpr int P = KX_TILE_ROWS;
  const int oh = g.oh(), ow = g.ow(), cg = g.c / g.groups, og = g.o / g.groups;
  const long hp = g.h + 2L * g.ph, wp = g.w + 2L * g.pw, plane = static_cast<long>(oh) * ow, map = hp * wp;
  const long taps = static_cast<long>(cg) * g.kh * g.kw, tiles = (plane + P - 1) / P;
  thread_local std::vector<float> padded;
  thread_local std::vector<long> offsets;
  if (g.ph != 0 || g.pw != 0) {
    padded.assign(static_cast<std::size_t>(g.c * map), 0.0f);
    for (long c = 0; c < g.c; ++c)
      for (long r = 0; r < g.h; ++r)
        std::copy_n(x + (c * g.h + r) * g.w, g.w, padded.data() + (c * hp + r + g.ph) * wp + g.pw);
    x = padded.data();
  }
  // per tap (ci, a, b): its input offset; per pixel (tiles of P, the last one's unused places repeating its last
  // pixel): its input offset and its output index
  offsets.resize(static_cast<std::size_t>(taps + 2 * tiles * P));
  long* tap = offsets.data();
  long* in = tap + taps;
  long* out = in + tiles * P;
  for (long ci = 0, k = 0; ci < cg; ++ci)
    for (long a = 0; a < g.kh; ++a)
      for (long b = 0; b < g.kw; ++b) tap[k++] = (ci * hp + a * g.dh) * wp + b * g.dw;
  for (long q = 0; q < tiles * P; ++q) {
    const long e = q < plane ? q : plane - 1;
    in[q] = e / ow * g.sh * wp + e % ow * g.sw;
    out[q] = e;
  }
  for (int grp = 0; grp < g.groups; ++grp)
    for (long t = 0; t < tiles; ++t)
      kx_tiles<P, KX_TILE_VECTORS, true>((og + 15) / 16, x + grp * cg * map, in + t * P, tap, 0, taps, wt + grp * taps * OGP,
                                         OGP, y + static_cast<long>(grp) * og * plane, out + t * P, plane, og);
}
#undef KX_TILE_ROWS
#undef KX_TILE_VECTORS
#undef KX_UNROLL
#undef KX_PIECE

// y = max_pool2d(x) of one map: the maximum of each window's taps inside the map, a NaN winning (kx::max), 0 for a
// window wholly in the padding: kiln_max_pool2d_at's value, with the data compared without branches.
inline void max_pool2d_map(const float* x, float* y, const kiln_window& g) {
  const int oh = g.oh(), ow = g.ow();
  for (int i = 0; i < oh; ++i)
    for (int j = 0; j < ow; ++j) {
      float m = -INFINITY;
      bool any = false;
      for (int a = 0; a < g.kh; ++a) {
        const int yy = i * g.sh - g.ph + a * g.dh;
        if (yy < 0 || yy >= g.h) continue;
        for (int b = 0; b < g.kw; ++b) {
          const int xx = j * g.sw - g.pw + b * g.dw;
          if (xx < 0 || xx >= g.w) continue;
          m = kx::max(x[yy * g.w + xx], m);
          any = true;
        }
      }
      y[i * ow + j] = any ? m : 0.0f;
    }
}

// y = conv2d(x, w) of one sample (the geometry as PyTorch's Conv2d; w [O, C/groups, kh, kw]), for a weight that is
// not a constant of the header
inline void conv2d_sample(const float* x, const float* w, float* y, const kiln_window& g) {
  const int oh = g.oh(), ow = g.ow(), cg = g.c / g.groups, og = g.o / g.groups;
  std::fill(y, y + static_cast<long>(g.o) * oh * ow, 0.0f);
  for (int o = 0; o < g.o; ++o) {
    float* yo = y + static_cast<long>(o) * oh * ow;
    const float* xg = x + static_cast<long>(o / og) * cg * g.h * g.w;
    for (int ci = 0; ci < cg; ++ci)
      for (int a = 0; a < g.kh; ++a)
        for (int b = 0; b < g.kw; ++b) {
          const float wv = w[((static_cast<long>(o) * cg + ci) * g.kh + a) * g.kw + b];
          const int off = b * g.dw - g.pw;  // input column of output column j: j·sw + off
          const int j0 = off < 0 ? (-off + g.sw - 1) / g.sw : 0;
          const int j1 = g.w - 1 - off < 0 ? 0 : std::min(ow, (g.w - 1 - off) / g.sw + 1);
          for (int i = 0; i < oh; ++i) {
            const int yy = i * g.sh - g.ph + a * g.dh;
            if (yy < 0 || yy >= g.h) continue;
            const float* xr = xg + (static_cast<long>(ci) * g.h + yy) * g.w;
            float* yr = yo + static_cast<long>(i) * ow;
            if (g.sw == 1)
              for (int j = j0; j < j1; ++j) yr[j] += wv * xr[j + off];
            else
              for (int j = j0; j < j1; ++j) yr[j] += wv * xr[j * g.sw + off];
          }
        }
  }
}
)";

inline std::string var(int id) { return "v" + std::to_string(id); }
inline std::string buf(int id) { return "b[" + std::to_string(id) + "]"; }
inline std::string extent(int n) { return n == batch ? std::string("batch") : std::to_string(n) + "L"; }

// A leaf name's characters as an identifier's (fc1.weight → fc1_weight; 0.weight → 0_weight, for after a prefix).
inline std::string sanitized(std::string_view name) {
  std::string s;
  for (char ch : name) s += (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch : '_';
  return s;
}
// A C++ identifier from a leaf name (an input's: x, context; in_0 for a name that starts with a digit).
inline std::string identifier(std::string_view name) {
  const std::string s = sanitized(name);
  return s.empty() || (s[0] >= '0' && s[0] <= '9') ? "in_" + s : s;
}

inline std::string float_text(float v) {
  if (v != v) return "NAN";
  if (v == __builtin_inff()) return "INFINITY";
  if (v == -__builtin_inff()) return "-INFINITY";
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
  std::string s = b;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

// `values` as the body of a brace initializer, 8 a line.
inline std::string array_text(const float* values, long count) {
  std::string s;
  for (long i = 0; i < count; ++i) s += (i % 8 == 0 ? "\n    " : " ") + float_text(values[i]) + (i + 1 < count ? "," : "");
  return s;
}

// The window math (ops/window_math.hpp) as text, one statement a line: a line ends after `;`, `{` or `}` outside
// parentheses, except in brace initializers (a `{` after `=`, `,` or `{`, and its `}`).
inline std::string window_math_text() {
  const std::string flat = KILN_WINDOW_TEXT(KILN_WINDOW_SOURCE(inline));
  std::string out;
  int parens = 0;
  std::vector<bool> initializer;  // per open brace
  char last = ' ';                // the last non-blank character before this one
  for (char ch : flat) {
    if (ch == ' ' && !out.empty() && out.back() == '\n') continue;  // no blank at the start of a line
    out += ch;
    bool line_end = false;
    if (ch == '(') ++parens;
    else if (ch == ')') --parens;
    else if (ch == '{') {
      initializer.push_back(last == '=' || last == ',' || last == '{' || (!initializer.empty() && initializer.back() && last != ')'));
      line_end = parens == 0 && !initializer.back();
    } else if (ch == '}') {
      const bool init = !initializer.empty() && initializer.back();
      if (!initializer.empty()) initializer.pop_back();
      line_end = parens == 0 && !init;
    } else if (ch == ';') {
      line_end = parens == 0;
    }
    if (ch != ' ') last = ch;
    if (line_end) out += '\n';
  }
  return out;
}

class writer {
 public:
  writer(const plan& p, std::string ns) : p_(p), ns_(std::move(ns)) {
    for (int i = 0; i < p.g.size; ++i) {
      const node& n = p.g.nodes[i];
      if (p.assign[i] >= 0) throw error("kiln::export_cpp: the plan assigns to a leaf (a training step, not a function)");
      if (n.kind == op::random_uniform || n.kind == op::hyper)
        throw error(std::string("kiln::export_cpp: op '") + ops::name_of(n.kind) +
                    "' has no place in an exported forward (random draws and hyperparameters belong to training)");
    }
    // a value varies with the inputs if it reads one (or the batch size); kernels whose results do not are run
    // once here (folded into constants: a batch norm's scale, a bias repeated over a map)
    varying_.assign(static_cast<std::size_t>(p.g.size), 0);
    for (int i = 0; i < p.g.size; ++i) {
      const node& n = p.g.nodes[i];
      char v = n.kind == op::input || n.kind == op::batch_size || n.shape.rows == batch || n.shape.cols == batch;
      for (int a = 0; a < 3; ++a) v = v || (n.in[a] >= 0 && varying_[static_cast<std::size_t>(n.in[a])]);
      varying_[static_cast<std::size_t>(i)] = v;
    }
    hoisted_.assign(static_cast<std::size_t>(p.num_kernels), 0);
    for (int k = 0; k < p.num_kernels; ++k) {
      const kernel& kr = p.kernels[k];
      bool fixed = !varying_[static_cast<std::size_t>(kr.anchor)];
      for (int s = kr.store_begin; s < kr.store_end; ++s) fixed = fixed && !varying_[static_cast<std::size_t>(p.stores[s])];
      hoisted_[static_cast<std::size_t>(k)] = fixed;
    }
    // weights read transposed by a GEMM are stored transposed, so the GEMM's inner loop runs along a row
    for (int k = 0; k < p.num_kernels; ++k)
      if (p.kernels[k].kind == kernel_kind::contraction) {
        const node& mm = p.g.nodes[p.kernels[k].anchor];
        const node& b = p.g.nodes[mm.in[1]];
        if (b.kind == op::transpose && is_constant_leaf(b.in[0])) transposed_.insert(b.in[0]);
      }
    // convolutions' constant weights get a tap-major copy (see conv2d_sample_taps)
    for (int k = 0; k < p.num_kernels; ++k) {
      const node& a = p.g.nodes[p.kernels[k].anchor];
      if (a.kind == op::conv2d && !hoisted_[static_cast<std::size_t>(k)] && is_constant_leaf(a.in[1]))
        conv_weights_.emplace(a.in[1], p.g.windows[a.leaf]);
    }
  }

  // values_of_leaf(leaf): a parameter's values; value_of_node(id): a materialized node's value after a run.
  template <class Values, class NodeValues>
  std::string source(Values&& values_of_leaf, NodeValues&& value_of_node) const {
    std::string out;
    out += "// Generated by kiln::export_cpp: the forward pass of a trained model, standalone C++17.\n";
    out += "// Its plan (kiln's kernels, which the functions below run in order):\n";
    const std::string text = to_string(p_);
    for (std::size_t b = 0; b < text.size();) {
      std::size_t e = text.find('\n', b);
      if (e == std::string::npos) e = text.size();
      out += "//   " + text.substr(b, e - b) + "\n";
      b = e + 1;
    }
    out += "#pragma once\n#include <algorithm>\n#include <cmath>\n#include <cstddef>\n#include <cstdint>\n#include <stdexcept>\n"
           "#include <cstring>\n#include <string>\n#include <vector>\n\n";
    out += "namespace " + ns_ + " {\n\n";
    out += signature_comment();
    out += "namespace detail {\n\n";
    out += math_prelude;
    out += "\n// the window and axis ops' arithmetic (kiln/ops/window_math.hpp)\n" + window_math_text() + "\n";
    out += tile_prelude;
    out += "\n";
    out += parameters(values_of_leaf);
    out += folded(value_of_node);
    for (int k = 0; k < p_.num_kernels; ++k)
      if (!hoisted_[static_cast<std::size_t>(k)]) out += kernel_source(k);
    out += scratch_function();
    out += "}  // namespace detail\n\n";
    out += predict_function();
    out += "\n}  // namespace " + ns_ + "\n";
    return out;
  }

 private:
  bool is_constant_leaf(int id) const {
    const node& n = p_.g.nodes[id];
    return (n.kind == op::param || n.kind == op::state);
  }
  bool is_input(int id) const { return p_.g.nodes[id].kind == op::input; }
  std::vector<int> input_nodes() const {  // in leaf order: the order of predict's pointers
    std::vector<int> ids;
    for (int l = 0; l < p_.g.num_leaves; ++l)
      for (int i = 0; i < p_.g.size; ++i)
        if (is_input(i) && p_.g.nodes[i].leaf == l) ids.push_back(i);
    return ids;
  }
  const leaf_info& leaf_of(int id) const { return p_.g.leaves[p_.g.nodes[id].leaf]; }
  int output_node() const { return p_.g.outputs[0].node; }

  std::string signature_comment() const {
    std::string s = "// predict(";
    for (int id : input_nodes()) {
      const leaf_info& l = leaf_of(id);
      s += std::string(l.kind == leaf_kind::labels ? "const std::int32_t* " : "const float* ") + identifier(l.name.view()) + ", ";
    }
    const dims o = p_.g.nodes[output_node()].shape;
    s += "float* out, int batch): the model's output for `batch` samples.\n";
    for (int id : input_nodes()) {
      const leaf_info& l = leaf_of(id);
      s += "//   " + identifier(l.name.view()) + ": input '" + std::string(l.name.view()) + "', [batch, " + std::to_string(l.shape.cols) +
           "] row-major" + (l.kind == leaf_kind::labels ? " class indices in [0, " + std::to_string(l.num_classes) + ")" : "") + "\n";
    }
    s += "//   out: [" + std::string(o.rows == batch ? "batch" : std::to_string(o.rows)) + ", " + std::to_string(o.cols) + "] row-major\n";
    s += "// Thread-safe; each thread's scratch memory grows to the largest batch it has run.\n";
    for (int id : input_nodes())
      s += "inline constexpr int " + identifier(leaf_of(id).name.view()) + "_width = " + std::to_string(leaf_of(id).shape.cols) + ";\n";
    s += "inline constexpr int output_width = " + std::to_string(o.cols) + ";\n\n";
    return s;
  }

  template <class Values>
  std::string parameters(Values&& values_of_leaf) const {
    std::string out = "// parameters and state, by PyTorch name\n";
    for (int i = 0; i < p_.g.size; ++i) {
      if (!is_constant_leaf(i)) continue;
      const leaf_info& l = leaf_of(i);
      const std::span<const float> v = values_of_leaf(p_.g.nodes[i].leaf);
      const dims s = l.shape;
      std::vector<float> t;
      const float* data = v.data();
      std::string layout = "[" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "]";
      if (transposed_.count(i)) {  // stored as its transpose [cols, rows]
        t.resize(v.size());
        for (long r = 0; r < s.rows; ++r)
          for (long c = 0; c < s.cols; ++c) t[static_cast<std::size_t>(c * s.rows + r)] = v[static_cast<std::size_t>(r * s.cols + c)];
        data = t.data();
        layout = "transposed: [" + std::to_string(s.cols) + ", " + std::to_string(s.rows) + "]";
      }
      out += "// " + std::string(l.name.view()) + " " + layout + "\nalignas(64) inline constexpr float " + constant_name(i) + "[" +
             std::to_string(v.size()) + "] = {" + array_text(data, static_cast<long>(v.size())) + "};\n";
      if (const auto c = conv_weights_.find(i); c != conv_weights_.end()) out += tap_major(i, c->second, v);
    }
    return out + "\n";
  }
  // A convolution's constant weight [O, C/g, kh, kw] again, tap-major [g, C/g·kh·kw, OGP] with O/g channels padded
  // by zeros to OGP, a multiple of 16 (see conv2d_sample_taps).
  static long padded_channels(const window& w) { return (w.o / w.groups + 15) / 16 * 16; }
  std::string tap_major(int id, const window& w, std::span<const float> v) const {
    const long og = w.o / w.groups, ogp = padded_channels(w), cg = w.c / w.groups, taps = static_cast<long>(w.kh) * w.kw;
    std::vector<float> t(static_cast<std::size_t>(w.groups * cg * taps * ogp), 0.0f);
    for (long grp = 0; grp < w.groups; ++grp)
      for (long oo = 0; oo < og; ++oo)
        for (long ci = 0; ci < cg; ++ci)
          for (long tap = 0; tap < taps; ++tap)
            t[static_cast<std::size_t>(((grp * cg + ci) * taps + tap) * ogp + oo)] =
                v[static_cast<std::size_t>(((grp * og + oo) * cg + ci) * taps + tap)];
    return "// " + std::string(leaf_of(id).name.view()) + " tap-major: [" + std::to_string(w.groups) + ", " + std::to_string(cg * taps) +
           ", " + std::to_string(ogp) + "] (" + std::to_string(og) + " channels and zeros)\nalignas(64) inline constexpr float " +
           taps_name(id) + "[" + std::to_string(t.size()) + "] = {" + array_text(t.data(), static_cast<long>(t.size())) + "};\n";
  }
  std::string taps_name(int id) const { return constant_name(id) + "_taps"; }
  std::string constant_name(int id) const {
    return is_constant_leaf(id) ? "w_" + sanitized(leaf_of(id).name.view()) : "c" + std::to_string(id);
  }
  // A node computed by a hoisted kernel: a constant of the header.
  bool is_folded(int id) const {
    const int k = p_.kernel_of[id];
    return p_.materialized[id] && k >= 0 && hoisted_[static_cast<std::size_t>(k)];
  }
  template <class NodeValues>
  std::string folded(NodeValues&& value_of_node) const {
    std::string out;
    for (int i = 0; i < p_.g.size; ++i) {
      if (!is_folded(i)) continue;
      const std::span<const float> v = value_of_node(i);
      out += "// " + node_text(p_, i) + ", computed from the parameters alone\nalignas(64) inline constexpr float " +
             constant_name(i) + "[" + std::to_string(v.size()) + "] = {" + array_text(v.data(), static_cast<long>(v.size())) + "};\n";
    }
    return out.empty() ? out : out + "\n";
  }

  // How a body names node id's buffer: the kernel's b[id], or rows_loop's __restrict parameter p<id>.
  enum class buffer_names { array, parameters };
  static std::string buffer(int id, buffer_names names) { return names == buffer_names::parameters ? "p" + std::to_string(id) : buf(id); }

  // operand a at (r, c) of a body over `domain` (a buffer read, a dimension of 1 broadcast)
  std::string operand(const kernel_view& v, int a, buffer_names names = buffer_names::array) const {
    if (v.has(a)) return var(a);
    const dims s = p_.g.nodes[a].shape;
    const std::string b = buffer(a, names);
    if (s.rows == 1 && s.cols == 1) return b + "[0]";
    if (s.cols == 1) return b + "[r]";
    if (s.rows == 1) return b + "[c]";
    return b + "[r * " + std::to_string(s.cols) + " + c]";
  }

  std::string body(const kernel_view& v, const std::string& indent, buffer_names names = buffer_names::array) const {
    std::string out;
    for (int id : v.nodes) {
      const node& n = p_.g.nodes[id];
      std::string e;
      ops::code_block locals{"", var(id), indent, 0};
      switch (n.kind) {
        case op::constant: e = ops::num(n.k); break;
        case op::batch_size: e = "static_cast<float>(batch)"; break;
        case op::iota: e = "static_cast<float>(c)"; break;
        default: {
          ops::code args[3];
          for (int i = 0; i < ops::arity_of(n.kind); ++i) args[i] = {operand(v, n.in[i], names), &locals};
          ops::visit_op(n.kind, [&](auto o) {
            using O = decltype(o);
            if constexpr (O::cls == op_class::elementwise) e = ops::forward_of<O, ops::text_math<scalar_dialect>>(args, n.k).text;
          });
          if (e.empty()) throw error(std::string("kiln::export_cpp: no scalar form for op '") + ops::name_of(n.kind) + "'");
        }
      }
      out += locals.lines + indent + "const float " + var(id) + " = " + e + ";  // " + node_text(p_, id) + "\n";
    }
    return out;
  }

  // The loop runs in a lambda that takes its buffers as __restrict parameters: every materialized node has a
  // buffer of its own, so what it writes overlaps nothing it reads, and a compiler vectorizes it without overlap
  // checks (GCC's -O2 adds none, and honours __restrict on parameters, not on local pointers: through b[] and
  // through restrict locals its loops stayed scalar).
  std::string rows_loop(const kernel& k, const kernel_view& v, const std::string& r0, const std::string& r1) const {
    const std::string C = std::to_string(k.domain.cols);
    std::string out = "    for (long r = " + r0 + "; r < " + r1 + "; ++r)\n      for (long c = 0; c < " + C + "; ++c) {\n";
    out += body(v, "        ", buffer_names::parameters);
    for (int id : v.roots) out += "        " + buffer(id, buffer_names::parameters) + "[r * " + C + " + c] = " + var(id) + ";\n";
    out += "      }\n";
    // the buffers: the operands computed outside the kernel, and its roots (written)
    std::set<int> used(v.roots.begin(), v.roots.end());
    for (int id : v.nodes)
      for (int i = 0; i < ops::arity_of(p_.g.nodes[id].kind); ++i)
        if (!v.has(p_.g.nodes[id].in[i])) used.insert(p_.g.nodes[id].in[i]);
    const std::set<int> written(v.roots.begin(), v.roots.end());
    std::string params, args;
    for (int id : used) {
      params += std::string(params.empty() ? "" : ", ") + (written.count(id) ? "float" : "const float") + "* __restrict " +
                buffer(id, buffer_names::parameters);
      args += (args.empty() ? "" : ", ") + buf(id);
    }
    return "  [&](" + params + ") {\n" + out + "  }(" + args + ");\n";
  }

  std::string kernel_source(int ki) const {
    const kernel& k = p_.kernels[ki];
    const kernel_view v = view_of(p_, k);
    const node& a = p_.g.nodes[k.anchor];
    std::string out = "// k" + std::to_string(ki) + " " + kernel_name(p_, ki) + " " + dims_text(k.domain) + "\n";
    out += "inline void k" + std::to_string(ki) + "(float* const* b, [[maybe_unused]] long batch) {\n";
    const std::string R = extent(k.domain.rows), C = std::to_string(k.domain.cols);
    if (k.kind == kernel_kind::elementwise) {
      out += rows_loop(k, v, "0", R);
    } else if (k.kind == kernel_kind::reduction) {
      const std::string in = operand(v, a.in[0]), o = buf(k.anchor);
      if (a.kind == op::sum_rows) {
        out += "  std::fill(" + o + ", " + o + " + " + C + ", 0.0f);\n";
        out += "  for (long r = 0; r < " + R + "; ++r)\n    for (long c = 0; c < " + C + "; ++c) {\n";
        out += body(v, "      ") + "      " + o + "[c] += " + in + ";\n    }\n";
      } else {
        const bool is_max = a.kind == op::max_cols;
        out += "  for (long r = 0; r < " + R + "; ++r) {\n";
        out += std::string("    float acc = ") + (is_max ? "-INFINITY" : "0.0f") + ";\n";
        out += "    for (long c = 0; c < " + C + "; ++c) {\n" + body(v, "      ");
        out += std::string("      acc = ") + (is_max ? "kx::max(" + in + ", acc)" : "acc + " + in) + ";\n    }\n";
        out += "    " + o + "[r] = acc;\n  }\n";
      }
    } else if (k.kind == kernel_kind::contraction) {
      out += contraction(k, v);
    } else if (a.kind == op::conv2d) {
      const window& w = p_.g.windows[a.leaf];
      out += "  // " + node_text(p_, k.anchor) + "\n";
      out += "  const kiln_window w" + window_initializer(w) + ";\n";
      out += "  for (long n = 0; n < " + extent(p_.g.nodes[a.in[0]].shape.rows) + "; ++n)\n";
      const std::string args = buf(a.in[0]) + " + n * " + std::to_string(w.in_size()) + "L, ";
      const std::string rest = buf(k.anchor) + " + n * " + std::to_string(w.out_size()) + "L, w);\n";
      const auto taps = conv_weights_.find(a.in[1]);
      const bool same_layout = taps != conv_weights_.end() && taps->second.o == w.o && taps->second.c == w.c &&
                               taps->second.groups == w.groups && taps->second.kh == w.kh && taps->second.kw == w.kw;
      if (same_layout)
        out += "    conv2d_sample_taps<" + std::to_string(padded_channels(w)) + ">(" + args + taps_name(a.in[1]) + ", " + rest;
      else
        out += "    conv2d_sample(" + args + buf(a.in[1]) + ", " + rest;
    } else if (a.kind == op::channel_repeat) {  // y[e] = x[e / L]: runs of L copies of one value
      const window& w = p_.g.windows[a.leaf];
      const dims x = p_.g.nodes[a.in[0]].shape;
      const std::string L = std::to_string(static_cast<long>(w.h) * w.w) + "L";
      out += "  // " + node_text(p_, k.anchor) + "\n";
      out += "  for (long q = 0; q < " + extent(x.rows) + " * " + std::to_string(x.cols) + "; ++q) std::fill_n(" + buf(k.anchor) +
             " + q * " + L + ", " + L + ", " + buf(a.in[0]) + "[q]);\n";
    } else if (a.kind == op::max_pool2d || a.kind == op::avg_pool2d) {  // map by map, the window a constant
      const window& w = p_.g.windows[a.leaf];
      const std::string L = std::to_string(static_cast<long>(w.oh()) * w.ow()) + "L";
      const std::string x = buf(a.in[0]) + " + m * " + std::to_string(static_cast<long>(w.h) * w.w) + "L";
      out += "  // " + node_text(p_, k.anchor) + "\n";
      out += "  constexpr kiln_window w" + window_initializer(w) + ";\n";
      out += "  for (long m = 0; m < " + extent(p_.g.nodes[a.in[0]].shape.rows) + " * " + std::to_string(w.c) + "; ++m)\n";
      if (a.kind == op::max_pool2d)
        out += "    max_pool2d_map(" + x + ", " + buf(k.anchor) + " + m * " + L + ", w);\n";
      else
        out += "    for (long q = 0; q < " + L + "; ++q) " + buf(k.anchor) + "[m * " + L + " + q] = kiln_avg_pool2d_at<float>(w, " + x + ", q);\n";
    } else if (ops::is_window_op(a.kind)) {
      out += "  // " + node_text(p_, k.anchor) + "\n";
      out += "  const kiln_window w" + window_initializer(p_.g.windows[a.leaf]) + ";\n";
      const std::string rows = extent(p_.g.nodes[a.in[0]].shape.rows);
      out += "  const long total = " + extent(a.shape.rows) + " * " + std::to_string(a.shape.cols) + ";\n";
      out += "  for (long e = 0; e < total; ++e) " + buf(k.anchor) + "[e] = kiln_window_at<float>(" +
             std::to_string(ops::window_code_of(a.kind)) + ", w, " + buf(a.in[0]) + ", " +
             (a.in[1] >= 0 ? buf(a.in[1]) : std::string("nullptr")) + ", " + rows + ", e);\n";
    } else if (a.kind == op::gather) {
      const dims ix = p_.g.nodes[a.in[1]].shape;
      const std::string D = std::to_string(p_.g.nodes[a.in[0]].shape.cols);
      out += "  // " + node_text(p_, k.anchor) + ": row idx[i] of the table to position i\n";
      out += "  for (long i = 0; i < " + extent(ix.rows) + " * " + std::to_string(ix.cols) + "; ++i) std::copy_n(" + buf(a.in[0]) +
             " + static_cast<long>(" + buf(a.in[1]) + "[i]) * " + D + ", " + D + ", " + buf(k.anchor) + " + i * " + D + ");\n";
    } else {
      throw error(std::string("kiln::export_cpp: no exported form for op '") + ops::name_of(a.kind) + "'");
    }
    return out + "}\n\n";
  }

  // C = A·B as rows times panels: C[i, :] = Σ_k A[i, k]·B[k, :], the inner loop along a row of B (a weight read
  // transposed is stored transposed), then the kernel's epilogue on the finished rows.
  std::string contraction(const kernel& k, const kernel_view& v) const {
    const node& mm = p_.g.nodes[k.anchor];
    struct view_text { std::string base, row_stride, col_stride; };
    const auto view = [&](int id) -> view_text {
      const node& n = p_.g.nodes[id];
      if (n.kind == op::transpose) {
        const int src = n.in[0];
        if (transposed_.count(src)) return {constant_name(src), std::to_string(p_.g.nodes[src].shape.rows), "1"};
        return {buf(src), "1", extent(p_.g.nodes[src].shape.cols)};
      }
      return {buf(id), extent(n.shape.cols), "1"};
    };
    const view_text A = view(mm.in[0]), B = view(mm.in[1]);
    const std::string M = extent(mm.shape.rows), N = std::to_string(mm.shape.cols), K = extent(p_.g.nodes[mm.in[0]].shape.cols);
    const std::string o = buf(k.anchor);
    std::string out = "  // " + node_text(p_, k.anchor) + "\n";
    if (B.col_stride == "1") {  // a row-major B (a weight stored transposed, or an activation)
      out += "  rows_times_panel(" + A.base + ", " + A.row_stride + ", " + A.col_stride + ", " + B.base + ", " + B.row_stride + ", " + K +
             ", " + N + ", " + o + ", " + N + ", " + M + ");\n";
    } else {
      out += "  for (long i = 0; i < " + M + "; ++i)\n";
      out += "    for (long j = 0; j < " + N + "; ++j) {\n      float s = 0.0f;\n";
      out += "      for (long k = 0; k < " + K + "; ++k) s += " + A.base + "[i * " + A.row_stride + " + k * " + A.col_stride + "] * " + B.base +
             "[k * " + B.row_stride + " + j * " + B.col_stride + "];\n";
      out += "      " + o + "[i * " + N + " + j] = s;\n    }\n";
    }
    if (k.store_end > k.store_begin) out += rows_loop(k, v, "0", M);
    return out;
  }

  // Scratch layout: every materialized value that is not a leaf, 16-float aligned, in node order.
  std::string scratch_function() const {
    std::string out = "// floats of scratch for a batch (every materialized value but the inputs and parameters)\n";
    out += "inline std::size_t scratch_floats(long batch) {\n  std::size_t n = 0;\n";
    for (int i = 0; i < p_.g.size; ++i)
      if (needs_scratch(i)) out += "  n += static_cast<std::size_t>((" + size_text(i) + " + 15) / 16 * 16);\n";
    out += "  return n;\n}\n\n";
    return out;
  }
  bool needs_scratch(int i) const {
    return p_.materialized[i] && ops::class_of(p_.g.nodes[i].kind) != op_class::leaf && !is_folded(i);
  }
  std::string size_text(int i) const {
    const dims s = p_.g.nodes[i].shape;
    return extent(s.rows) + " * " + std::to_string(s.cols);
  }

  std::string predict_function() const {
    std::string params;
    for (int id : input_nodes()) {
      const leaf_info& l = leaf_of(id);
      params += std::string(l.kind == leaf_kind::labels ? "const std::int32_t* " : "const float* ") + identifier(l.name.view()) + ", ";
    }
    std::string out = "inline void predict(" + params + "float* out, int batch_size) {\n";
    out += "  using namespace detail;\n";
    out += "  if (batch_size < 1)\n    throw std::invalid_argument(\"" + ns_ +
           "::predict: batch must be at least 1, got \" + std::to_string(batch_size));\n";
    out += "  const long batch = batch_size;\n";
    out += "  thread_local std::vector<float> scratch;\n";
    out += "  const std::size_t need = scratch_floats(batch)";
    for (int id : input_nodes())
      if (leaf_of(id).kind == leaf_kind::labels) out += " + static_cast<std::size_t>(batch) * " + std::to_string(leaf_of(id).shape.cols);
    out += " + 16;\n";
    out += "  if (scratch.size() < need) scratch.resize(need);\n";
    out += "  float* s = scratch.data();\n";
    out += "  float* b[" + std::to_string(p_.g.size) + "] = {};\n";
    for (int i = 0; i < p_.g.size; ++i) {
      if (is_constant_leaf(i) || is_folded(i)) {
        out += "  b[" + std::to_string(i) + "] = const_cast<float*>(" + constant_name(i) + ");\n";
      } else if (is_input(i)) {
        const leaf_info& l = leaf_of(i);
        const std::string name = identifier(l.name.view()), count = "batch * " + std::to_string(l.shape.cols);
        if (l.kind == leaf_kind::labels) {  // class indices, checked, as floats (how kiln's kernels read them)
          out += "  b[" + std::to_string(i) + "] = s;\n";
          out += "  for (long j = 0; j < " + count + "; ++j) {\n";
          out += "    if (" + name + "[j] < 0 || " + name + "[j] >= " + std::to_string(l.num_classes) + ") throw std::out_of_range(\"" + ns_ +
                 "::predict: index \" + std::to_string(" + name + "[j]) + \" of '" + std::string(l.name.view()) + "' is outside [0, " +
                 std::to_string(l.num_classes) + ")\");\n";
          out += "    s[j] = static_cast<float>(" + name + "[j]);\n  }\n";
          out += "  s += " + count + ";\n";
        } else {
          out += "  b[" + std::to_string(i) + "] = const_cast<float*>(" + name + ");\n";
        }
      } else if (needs_scratch(i)) {
        out += "  b[" + std::to_string(i) + "] = s;\n  s += (" + size_text(i) + " + 15) / 16 * 16;\n";
      }
    }
    for (int k = 0; k < p_.num_kernels; ++k)
      if (!hoisted_[static_cast<std::size_t>(k)]) out += "  k" + std::to_string(k) + "(b, batch);\n";
    const int o = output_node();
    out += "  std::copy(b[" + std::to_string(o) + "], b[" + std::to_string(o) + "] + " + size_text(o) + ", out);\n";
    out += "}\n";
    return out;
  }

  const plan& p_;
  std::string ns_;
  std::set<int> transposed_;   // constant leaves stored transposed
  std::map<int, window> conv_weights_;  // constant leaves that are convolution weights: their windows
  std::vector<char> varying_;  // by node: depends on an input or the batch size
  std::vector<char> hoisted_;  // by kernel: computes only values that do not vary (folded into constants)
};

}  // namespace export_detail

// The header's text for function f (its current parameters) in namespace `ns`.
template <class Model, fusion Mode>
std::string export_cpp_source(const function<Model, Mode>& f, const std::string& ns) {
  using F = function<Model, Mode>;
  const plan& p = F::compiled_plan();
  const graph& g = p.g;
  // One run at batch 1 on zero inputs gives the values of the kernels that read no input (folded into constants).
  std::vector<std::vector<float>> zeros(static_cast<std::size_t>(g.num_leaves));
  std::vector<std::vector<std::int32_t>> zero_indices(static_cast<std::size_t>(g.num_leaves));
  std::vector<feed> feeds;
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    const auto width = static_cast<std::size_t>(info.shape.cols);
    if (info.kind == leaf_kind::input) feeds.emplace_back(info.name.view(), std::span<const float>(zeros[l] = std::vector<float>(width)));
    if (info.kind == leaf_kind::labels)
      feeds.emplace_back(info.name.view(), std::span<const std::int32_t>(zero_indices[l] = std::vector<std::int32_t>(width)));
  }
  auto ws = f.make_workspace();
  std::vector<float> out(static_cast<std::size_t>(resolve(F::out_shape.rows, 1) * F::out_shape.cols));
  f.run(ws, 1, std::span<const feed>(feeds), out);
  const auto& prog = ws.compiled_program();
  return export_detail::writer(p, ns).source(
      [&](int leaf) { return f.param(g.leaves[leaf].name.view()); },
      [&](int id) {
        const dims s = g.nodes[id].shape;
        return std::span<const float>(prog.node_value(id), static_cast<std::size_t>(s.rows) * static_cast<std::size_t>(s.cols));
      });
}

// Writes the header (atomically: a reader never sees half of it).
template <class Model, fusion Mode>
void export_cpp(const function<Model, Mode>& f, const std::string& path, const std::string& ns) {
  io::write_file_atomic(path, export_cpp_source(f, ns));
}

}  // namespace kiln::cpu
