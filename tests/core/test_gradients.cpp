// Every primitive, activation and loss: symbolic gradients (double reference evaluator) against central finite
// differences at random points of the domain and at edge points; kinks follow PyTorch's conventions.
#include "gradcheck.hpp"

using namespace kiln;
using kiln_test::check_against_finite_differences;
using kiln_test::leaf_values;

namespace {

constexpr auto p4 = param<4>("p");  // a [1, 4] parameter

#define KILN_UNARY_MODEL(model_name, expr)                                  \
  struct model_name {                                                      \
    constexpr auto operator()() const { auto p = p4; (void)p; return sum(expr); } \
  };
KILN_UNARY_MODEL(m_exp, exp(p))
KILN_UNARY_MODEL(m_expm1, expm1(p))
KILN_UNARY_MODEL(m_log, log(p))
KILN_UNARY_MODEL(m_log1p, log1p(p))
KILN_UNARY_MODEL(m_sqrt, sqrt(p))
KILN_UNARY_MODEL(m_abs, abs(p))
KILN_UNARY_MODEL(m_neg, -p)
KILN_UNARY_MODEL(m_pow3, pow(p, 3.0))
KILN_UNARY_MODEL(m_pow_half, pow(p, 0.5))
KILN_UNARY_MODEL(m_max, maximum(p, 0.25))
KILN_UNARY_MODEL(m_min, minimum(p, 0.25))
KILN_UNARY_MODEL(m_recip, 1.0 / p)
KILN_UNARY_MODEL(m_erf, erf(p))
KILN_UNARY_MODEL(m_sigmoid, sigmoid(p))
KILN_UNARY_MODEL(m_tanh, kiln::tanh(p))
KILN_UNARY_MODEL(m_relu, relu(p))
KILN_UNARY_MODEL(m_leaky, leaky_relu(p))
KILN_UNARY_MODEL(m_elu, elu(p))
KILN_UNARY_MODEL(m_gelu, gelu(p))
KILN_UNARY_MODEL(m_gelu_tanh, gelu_tanh(p))
KILN_UNARY_MODEL(m_swish, swish(p))
KILN_UNARY_MODEL(m_softplus, softplus(p))
KILN_UNARY_MODEL(m_identity, identity(p))
KILN_UNARY_MODEL(m_softmax, softmax(p) * p)
KILN_UNARY_MODEL(m_log_softmax, log_softmax(p) * p)
KILN_UNARY_MODEL(m_where_log, where(greater(p, 0.0), log(where(greater(p, 0.0), p, 1.0)), 0.0))
#undef KILN_UNARY_MODEL

// Gradient of a scalar function at the given points (one point per element of p).
template <class M>
std::vector<double> gradient_at(const std::vector<double>& points) {
  constexpr const graph& G = gradient_graph<M>::value;
  leaf_values v(static_cast<std::size_t>(G.num_leaves));
  v[0] = points;
  auto val = reference::evaluate(G, 1, v);
  return val[static_cast<std::size_t>(G.outputs[1].node)].v;
}

template <class M>
void check_points(std::vector<double> points, double tol = 1e-6) {
  constexpr const graph& G = gradient_graph<M>::value;
  for (std::size_t i = 0; i + 4 <= points.size() || i == 0; i += 4) {
    std::vector<double> chunk(points.begin() + static_cast<long>(i), points.begin() + static_cast<long>(std::min(points.size(), i + 4)));
    chunk.resize(4, 0.5);
    leaf_values v{chunk};
    if (!std::isfinite(kiln_test::loss_of(G, 1, v))) continue;
    check_against_finite_differences(G, 1, v, tol);
    if (i + 4 >= points.size()) break;
  }
}

std::vector<double> random_points(double lo, double hi, std::uint64_t seed, int n = 16) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

}  // namespace

TEST_CASE("smooth unary functions: gradients equal finite differences on their domain", "[gradients]") {
  const auto any = random_points(-3, 3, 1);
  const auto positive = random_points(0.05, 4, 2);
  const std::vector<double> edges = {-20, -1, 1, 20, 1e-3, -1e-3, 3, -3};
  check_points<m_exp>(any);
  check_points<m_exp>({-100, -20, -1, 1, 20, 0.5, -0.5, 2});
  check_points<m_expm1>(any);
  check_points<m_expm1>({-100, -20, -1, 1, 20, 1e-3, -1e-3, 1e-9});
  check_points<m_log>(positive);
  check_points<m_log>({1e-3, 1, 20, 100, 1e4, 0.5, 2, 7});
  check_points<m_log1p>(random_points(-0.9, 5, 3));
  check_points<m_sqrt>(positive);
  check_points<m_sqrt>({1e-3, 1, 20, 100, 1e4, 0.5, 2, 7});
  check_points<m_neg>(any);
  check_points<m_pow3>(any);
  check_points<m_pow_half>(positive);
  check_points<m_recip>(positive);
  check_points<m_erf>(any);
  check_points<m_erf>(edges);
  check_points<m_sigmoid>(any);
  check_points<m_sigmoid>({-100, -20, -1, 1, 20, 100, 1e-3, -1e-3});
  check_points<m_tanh>(any);
  check_points<m_tanh>({-20, -1, 1, 20, 1e-3, -1e-3, 5, -5});
  check_points<m_gelu>(any);
  check_points<m_gelu>(edges);
  check_points<m_gelu_tanh>(any);
  check_points<m_swish>(any);
  check_points<m_swish>({-100, -20, -1, 1, 20, 100, 1e-3, -1e-3});
  check_points<m_softplus>(any);
  check_points<m_softplus>({-100, -20, -1, 1, 19.5, 25, 100, 1e4});
  check_points<m_softmax>(any);
  check_points<m_log_softmax>(any);
  check_points<m_log_softmax>({-100, 100, 1e4, -1e4, 0, 1, -1, 20});
  check_points<m_identity>(any);
}

TEST_CASE("piecewise functions: finite differences away from kinks, PyTorch's convention at them", "[gradients]") {
  // away from the kinks
  check_points<m_abs>({-3, -1, -1e-3, 1e-3, 1, 3, 1e4, -1e4});
  check_points<m_max>({-3, -1, 0.1, 0.5, 1, 3, 1e4, -1e4});
  check_points<m_min>({-3, -1, 0.1, 0.5, 1, 3, 1e4, -1e4});
  check_points<m_relu>({-3, -1, -1e-3, 1e-3, 1, 3, 1e4, -1e4});
  check_points<m_leaky>({-3, -1, -1e-3, 1e-3, 1, 3, 1e4, -1e4});
  check_points<m_elu>({-3, -1, -1e-3, 1e-3, 1, 3, 20, -20});
  // at the kinks: relu′(0) = 0, |x|′(0) = 0, leaky_relu′(0) = slope, max(x, c)′ = 0 at x = c, ±1e-30 on the right side
  CHECK(gradient_at<m_relu>({0, 1e-30, -1e-30, 1}) == std::vector<double>{0, 1, 0, 1});
  CHECK(gradient_at<m_abs>({0, 1e-30, -1e-30, -2}) == std::vector<double>{0, 1, -1, -1});
  CHECK(gradient_at<m_leaky>({0, 1e-30, -1e-30, 2}) == std::vector<double>{0.01, 1, 0.01, 1});
  CHECK(gradient_at<m_max>({0.25, 0.3, 0.2, 0}) == std::vector<double>{0, 1, 0, 0});
  CHECK(gradient_at<m_elu>({0, 1e-30, -1e-30, 2}) == std::vector<double>{1, 1, std::exp(-1e-30), 1});
}

TEST_CASE("where never leaks NaN from the unselected branch", "[gradients]") {
  // d/dp where(p > 0, log p, 0) = 1/p for p > 0 and exactly 0 for p <= 0 (log of a negative number is NaN there)
  const auto g = gradient_at<m_where_log>({-2, 0, 4, -1e-30});
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.0);
  CHECK(g[2] == Approx(0.25));
  CHECK(g[3] == 0.0);
  CHECK(!std::signbit(g[0]));
}

namespace {
constexpr auto x = input<3>("x");
constexpr auto t = target<3>("target");
constexpr auto pt = probability_target<3>("target");
constexpr auto y = labels<3>("y");
constexpr auto w = param<3, 3>("w");
constexpr auto pred() { return matmul(x, transpose(w)); }

struct l_mse { constexpr auto operator()() const { return mse(pred(), t); } };
struct l_mse_sum { constexpr auto operator()() const { return mse<reduction::sum>(pred(), t); } };
struct l_mae { constexpr auto operator()() const { return mae(pred(), t); } };
struct l_bce { constexpr auto operator()() const { return bce(sigmoid(pred()), t); } };
struct l_bce_sum { constexpr auto operator()() const { return bce<reduction::sum>(sigmoid(pred()), t); } };
struct l_bce_logits { constexpr auto operator()() const { return bce_with_logits(pred(), t); } };
struct l_ce { constexpr auto operator()() const { return cross_entropy(pred(), y); } };
struct l_ce_sum { constexpr auto operator()() const { return cross_entropy<reduction::sum>(pred(), y); } };
struct l_nll { constexpr auto operator()() const { return nll(log_softmax(pred()), y); } };
struct l_cce { constexpr auto operator()() const { return categorical_cross_entropy(softmax(pred()), one_hot(y)); } };
struct l_kl { constexpr auto operator()() const { return kl_div(log_softmax(pred()), pt); } };
struct l_prelu {
  constexpr auto operator()() const { return mse(prelu(pred(), param<>("a")), t); }
};
// dense<1> on one feature (the transposed weight is a [1, 1] scalar) and tied weights (Wᵀ in two contractions
// plus W elementwise): transposes in the backward graph must fold into contractions or vanish
struct l_dense1 { constexpr auto operator()() const { return mse(nn::sequential(dense<1>{})(input<1>("x")), target<1>("target")); } };
struct l_tied {
  constexpr auto operator()() const {
    auto W = param<3, 3>("w");
    return sum(matmul(x, transpose(W)) * matmul(t, transpose(W))) + 0.1 * sum(W * W);
  }
};
struct l_mean_batch { constexpr auto operator()() const { return sum(mean_batch(pred() * pred()) + mean_features(pred())); } };

template <class M>
void check_loss(std::uint64_t seed, long batch = 5) {
  constexpr const graph& G = gradient_graph<M>::value;
  INFO("seed " << seed << ", batch " << batch);
  check_against_finite_differences(G, batch, kiln_test::random_leaves(G, batch, seed), 1e-6);
}
}  // namespace

TEST_CASE("losses: gradients equal finite differences", "[gradients]") {
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    check_loss<l_mse>(seed);
    check_loss<l_mse_sum>(seed);
    check_loss<l_mae>(seed);
    check_loss<l_bce>(seed);
    check_loss<l_bce_sum>(seed);
    check_loss<l_bce_logits>(seed);
    check_loss<l_ce>(seed);
    check_loss<l_ce_sum>(seed);
    check_loss<l_nll>(seed);
    check_loss<l_cce>(seed);
    check_loss<l_kl>(seed);
    check_loss<l_prelu>(seed);
    check_loss<l_dense1>(seed);
    check_loss<l_tied>(seed);
    check_loss<l_mean_batch>(seed, 1);
    check_loss<l_mean_batch>(seed, 7);
  }
}

namespace {
constexpr auto s = param<>("s");
struct d2_exp { constexpr auto operator()() const { return grad(grad(exp(s * 2.0), s), s); } };
struct d2_sin_like { constexpr auto operator()() const { return grad(grad(kiln::tanh(s), s), s); } };
struct d2_pow { constexpr auto operator()() const { return grad(grad(pow(s, 4.0), s), s); } };
struct d2_sigmoid { constexpr auto operator()() const { return grad(grad(sigmoid(s), s), s); } };
struct d2_log { constexpr auto operator()() const { return grad(grad(log(s) * s, s), s); } };
template <class M>
double eval_at(double v) {
  constexpr const graph& G = forward_graph<M>::value;
  return reference::evaluate(G, 1, {{v}})[static_cast<std::size_t>(G.outputs[0].node)].v[0];
}
}  // namespace

TEST_CASE("second derivatives through grad(grad(f))", "[gradients]") {
  for (double v : {-1.5, -0.3, 0.7, 2.0}) {
    INFO("at " << v);
    CHECK(eval_at<d2_exp>(v) == Approx(4 * std::exp(2 * v)).epsilon(1e-12));
    const double th = std::tanh(v);
    CHECK(eval_at<d2_sin_like>(v) == Approx(-2 * th * (1 - th * th)).epsilon(1e-12));
    CHECK(eval_at<d2_pow>(v) == Approx(12 * v * v).epsilon(1e-12));
    const double sg = 1 / (1 + std::exp(-v));
    CHECK(eval_at<d2_sigmoid>(v) == Approx(sg * (1 - sg) * (1 - 2 * sg)).epsilon(1e-12));
    if (v > 0) CHECK(eval_at<d2_log>(v) == Approx(1 / v).epsilon(1e-12));
  }
}

namespace {
// Each edge point on its own (the other elements sit at 0.5), skipping points outside the function's domain
// (non-finite forward value).
template <class M>
void check_each(const std::vector<double>& points) {
  for (double x : points) {
    INFO("edge point " << x);
    check_points<M>({x, 0.5, 0.5, 0.5});
  }
}
}  // namespace

TEST_CASE("every smooth primitive and activation at the edge points 0, ±1e-30, ±1, ±20, ±100, ±1e4", "[gradients]") {
  const std::vector<double> e = {0, 1e-30, -1e-30, 1, -1, 20, -20, 100, -100, 1e4, -1e4};
  check_each<m_exp>(e);
  check_each<m_expm1>(e);
  check_each<m_log>(e);
  check_each<m_log1p>(e);
  check_each<m_sqrt>({1e-30, 1, 20, 100, 1e4});  // sqrt′(0) is infinite: its own domain edge
  check_each<m_neg>(e);
  check_each<m_pow3>(e);
  check_each<m_recip>({1e-3, -1e-3, 1, -1, 20, -20, 100, -100, 1e4, -1e4});
  check_each<m_erf>(e);
  check_each<m_sigmoid>(e);
  check_each<m_tanh>(e);
  check_each<m_gelu>(e);
  check_each<m_gelu_tanh>(e);
  check_each<m_swish>(e);
  // softplus switches to x above 20 (PyTorch's threshold): a 2e-9 step there, so differences straddling 20
  // measure the switch, not the slope; check either side of it
  check_each<m_softplus>({0, 1e-30, -1e-30, 1, -1, 19.9, 20.1, -20, 100, -100, 1e4, -1e4});
  check_each<m_softmax>(e);
  check_each<m_log_softmax>(e);
  check_each<m_identity>(e);
  // piecewise functions: away from their kink at 0 (the kink itself is tested against PyTorch's convention)
  const std::vector<double> off_kink = {1, -1, 20, -20, 100, -100, 1e4, -1e4};
  check_each<m_abs>(off_kink);
  check_each<m_relu>(off_kink);
  check_each<m_leaky>(off_kink);
  check_each<m_elu>(off_kink);
}
