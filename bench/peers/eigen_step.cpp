// Eigen peer: the suite's MLP training step written by hand with Eigen 3.4, the way a C++ user would
// without kiln: preallocated row-major matrices, products with noalias(), array expressions for the
// elementwise work (each its own pass over memory), Eigen's own GEMM, threaded through OpenMP.
//
//   forward  z_l = a_{l-1}·W_lᵀ + b_l,  a_l = act(z_l) (last layer: logits, or sigmoid for BCE)
//   loss     cross-entropy: mean_s (log Σ_j e^{z_sj} − z_{s,y_s});  dz_L = (softmax(z) − onehot(y)) / B
//            bce on p = σ(z):   −mean(t·log p + (1 − t)·log(1 − p)) (log clamped at −100); dz_L = (p − t) / B
//   backward dW_l = dz_lᵀ·a_{l-1},  db_l = Σ_s dz_l,  dz_{l-1} = (dz_l·W_l) ⊙ act′(z_{l-1})
//   update   Adam (PyTorch's, bias-corrected) or plain SGD
#include "cxx_peers.hpp"
#include "timing.hpp"

#include <Eigen/Dense>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace kiln_bench {
namespace {

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_vector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

// A layer's weight [out, in] and bias [out] as PyTorch's Linear initializes them: uniform in ±1/√fan_in.
void init_linear(long in, long out, std::mt19937& rng, matrix& w, row_vector& b) {
  std::uniform_real_distribution<float> u(-1.0f / std::sqrt(static_cast<float>(in)), 1.0f / std::sqrt(static_cast<float>(in)));
  w = matrix::NullaryExpr(out, in, [&] { return u(rng); });
  b = row_vector::NullaryExpr(out, [&] { return u(rng); });
}

struct dense_layer {
  matrix w, dw, w_m, w_v;          // [out, in], PyTorch's layout; gradient; Adam moments
  row_vector b, db, b_m, b_v;      // [out]
  matrix z, a, dz;                 // [batch, out]: pre-activation, activation, ∂loss/∂z
};

class eigen_mlp {
 public:
  explicit eigen_mlp(const bench_case& c) : c_(c) {
    std::mt19937 rng(1);
    for (std::size_t l = 0; l + 1 < c.layers.size(); ++l) {
      const long in = c.layers[l], out = c.layers[l + 1];
      dense_layer d;
      init_linear(in, out, rng, d.w, d.b);
      d.dw = d.w_m = d.w_v = matrix::Zero(out, in);
      d.db = d.b_m = d.b_v = row_vector::Zero(out);
      d.z = d.a = d.dz = matrix::Zero(c.batch, out);
      layers_.push_back(std::move(d));
    }
    row_max_.resize(c.batch);
    row_sum_.resize(c.batch);
  }

  float step(const float* x_data, const std::int32_t* labels, const float* targets) {
    const Eigen::Map<const matrix> x(x_data, c_.batch, c_.layers.front());
    const std::size_t n = layers_.size();
    auto input_of = [&](std::size_t l) -> Eigen::Ref<const matrix> {
      if (l == 0) return x;
      return layers_[l - 1].a;
    };
    for (std::size_t l = 0; l < n; ++l) {
      dense_layer& d = layers_[l];
      d.z.noalias() = input_of(l) * d.w.transpose();
      d.z.rowwise() += d.b;
      if (l + 1 < n) activate(d);
    }
    const float loss = loss_and_output_gradient(layers_.back(), labels, targets);
    for (std::size_t l = n; l-- > 0;) {
      dense_layer& d = layers_[l];
      d.dw.noalias() = d.dz.transpose() * input_of(l);
      d.db.noalias() = d.dz.colwise().sum();
      if (l > 0) {
        dense_layer& prev = layers_[l - 1];
        prev.dz.noalias() = d.dz * d.w;
        if (c_.act == activation::relu)
          prev.dz = (prev.z.array() > 0.0f).select(prev.dz, 0.0f);
        else
          prev.dz.array() *= prev.a.array() * (1.0f - prev.a.array());
      }
    }
    ++t_;
    for (dense_layer& d : layers_) {
      update(d.w, d.dw, d.w_m, d.w_v);
      update(d.b, d.db, d.b_m, d.b_v);
    }
    return loss;
  }

 private:
  void activate(dense_layer& d) const {
    if (c_.act == activation::relu) d.a = d.z.cwiseMax(0.0f);
    else d.a = 1.0f / (1.0f + (-d.z.array()).exp());
  }

  float loss_and_output_gradient(dense_layer& d, const std::int32_t* labels, const float* targets) {
    const float inv_b = 1.0f / static_cast<float>(c_.batch);
    if (c_.loss == loss_kind::cross_entropy) {
      row_max_ = d.z.rowwise().maxCoeff();
      d.dz = (d.z.colwise() - row_max_).array().exp();
      row_sum_ = d.dz.rowwise().sum();
      double loss = 0;
      for (long s = 0; s < c_.batch; ++s) {
        const long y = labels[s];
        loss += std::log(row_sum_(s)) + row_max_(s) - d.z(s, y);
        d.dz.row(s) /= row_sum_(s);
        d.dz(s, y) -= 1.0f;
      }
      d.dz *= inv_b;
      return static_cast<float>(loss * inv_b);
    }
    d.a = 1.0f / (1.0f + (-d.z.array()).exp());
    const Eigen::Map<const matrix> t(targets, c_.batch, 1);
    const float loss = -(t.array() * d.a.array().log().max(-100.0f) +
                         (1.0f - t.array()) * (1.0f - d.a.array()).log().max(-100.0f)).sum() * inv_b;
    d.dz = (d.a - t) * inv_b;
    return loss;
  }

  template <class P>
  void update(P& p, const P& g, P& m, P& v) const {
    const float lr = static_cast<float>(c_.lr);
    if (c_.opt == optimizer_kind::sgd) {
      p.noalias() -= lr * g;
      return;
    }
    constexpr float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    const float c1 = 1.0f / (1.0f - std::pow(beta1, static_cast<float>(t_)));
    const float c2 = 1.0f / (1.0f - std::pow(beta2, static_cast<float>(t_)));
    m = beta1 * m + (1.0f - beta1) * g;
    v.array() = beta2 * v.array() + (1.0f - beta2) * g.array().square();
    p.array() -= lr * (m.array() * c1) / ((v.array() * c2).sqrt() + eps);
  }

  bench_case c_;
  std::vector<dense_layer> layers_;
  Eigen::VectorXf row_max_, row_sum_;
  long t_ = 0;
};

// The inference cases: the forward alone, z_l = a_{l-1}·W_lᵀ + b_l with ReLU between, into preallocated
// matrices (at batch 1 each product is Eigen's matrix-vector kernel).
class eigen_mlp_forward {
 public:
  explicit eigen_mlp_forward(const bench_case& c) : c_(c) {
    std::mt19937 rng(1);
    for (std::size_t l = 0; l + 1 < c.layers.size(); ++l) {
      const long in = c.layers[l], out = c.layers[l + 1];
      init_linear(in, out, rng, w_.emplace_back(), b_.emplace_back());
      z_.push_back(matrix::Zero(c.batch, out));
    }
  }
  float run(const float* x_data) {
    const Eigen::Map<const matrix> x(x_data, c_.batch, c_.layers.front());
    for (std::size_t l = 0; l < w_.size(); ++l) {
      if (l == 0) z_[l].noalias() = x * w_[l].transpose();
      else z_[l].noalias() = z_[l - 1] * w_[l].transpose();
      z_[l].rowwise() += b_[l];
      if (l + 1 < w_.size()) z_[l] = z_[l].cwiseMax(0.0f);
    }
    return z_.back()(0, 0);
  }

 private:
  bench_case c_;
  std::vector<matrix> w_, z_;
  std::vector<row_vector> b_;
};

// A row of the Eigen peer on `threads` threads, its note naming Eigen's version.
timed_step eigen_row(const bench_case& c, int threads, const std::string& what) {
  timed_step t;
  t.r = result_for(c, "eigen", "eigen", threads);
  t.r.note = "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
             std::to_string(EIGEN_MINOR_VERSION) + what;
  t.activate = [threads] { Eigen::setNbThreads(threads); };
  return t;
}

timed_step eigen_forward_at(const bench_case& c, int threads) {
  struct state {
    explicit state(const bench_case& k) : net(k), x(make_inputs(k)) {}
    eigen_mlp_forward net;
    std::vector<float> x;
  };
  auto s = std::make_shared<state>(c);
  timed_step t = eigen_row(c, threads, " forward by hand");
  t.step = [s] { return static_cast<double>(s->net.run(s->x.data())); };
  return t;
}

timed_step eigen_at(const bench_case& c, int threads) {
  struct state {
    explicit state(const bench_case& k) : net(k), x(make_inputs(k)), targets(make_targets(k)), labels(make_labels(k)) {}
    eigen_mlp net;
    std::vector<float> x, targets;
    std::vector<std::int32_t> labels;
  };
  auto s = std::make_shared<state>(c);
  timed_step t = eigen_row(c, threads, "");
  t.step = [s] { return static_cast<double>(s->net.step(s->x.data(), s->labels.data(), s->targets.data())); };
  return t;
}

}  // namespace

std::vector<timed_step> eigen_steps(const bench_case& c, std::vector<result>& skipped) {
  if (c.is_contraction) return {};
  if (c.model != model_kind::mlp) {
    skipped.push_back(skipped_result(c, "eigen", "eigen", "the hand-written Eigen step is an MLP (no convolutions)"));
    return {};
  }
  std::vector<timed_step> out;
  for (int threads : {1, 2}) out.push_back(c.inference ? eigen_forward_at(c, threads) : eigen_at(c, threads));
  return out;
}

}  // namespace kiln_bench
