#pragma once
// Learning-rate schedules, as torch.optim.lr_scheduler defines them. The learning rate is a run-time
// hyperparameter of every optimizer (a slot of the step's hyper array), so changing it between steps
// recompiles nothing: a schedule only computes the value that is written into `optimizer.lr` before a step.
//
// A schedule is counted in *periods*: epochs (PyTorch's usual scheduler.step() per epoch) or iterations
// (warm-up schedules of large models), chosen by whoever steps it (train::options::schedule_per_iteration).
// With base learning rate η₀ and period t = 0, 1, …:
//   constant_lr{factor, total}        η₀·factor for t < total, then η₀                          (ConstantLR)
//   step_lr{step_size, gamma}         η₀·γ^⌊t / step_size⌋                                       (StepLR)
//   linear_lr{start, end, total}      η₀·(start + (end − start)·min(t, total)/total)             (LinearLR)
//   cosine_lr{t_max, eta_min}         η_min + (η₀ − η_min)·(1 + cos(π·t/t_max))/2                 (CosineAnnealingLR)
//   warmup_linear{warmup, total, start, end}
//       LinearLR(start, 1, warmup) for t < warmup, then LinearLR(1, end, total − warmup)       (SequentialLR of both)
//   warmup_cosine{warmup, total, start, eta_min}
//       LinearLR(start, 1, warmup) for t < warmup, then CosineAnnealingLR(total − warmup, η_min) (SequentialLR)
//   reduce_on_plateau{factor, patience, threshold, cooldown, min_lr}
//       η ← max(η·factor, min_lr) after more than `patience` periods whose metric is not below best·(1 − threshold)
//       (ReduceLROnPlateau, mode "min", threshold_mode "rel"); the only one that needs a metric.
#include <kiln/core/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <variant>

namespace kiln {

struct constant_lr { double factor = 1.0; long total = 0; };
struct step_lr { long step_size = 1; double gamma = 0.1; };
struct linear_lr { double start = 1.0 / 3; double end = 1.0; long total = 5; };
struct cosine_lr { long t_max = 1; double eta_min = 0; };
struct warmup_linear { long warmup = 0; long total = 1; double start = 1e-3; double end = 0; };
struct warmup_cosine { long warmup = 0; long total = 1; double start = 1e-3; double eta_min = 0; };
struct reduce_on_plateau {
  double factor = 0.1;
  long patience = 10;
  double threshold = 1e-4;
  long cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;  // a reduction smaller than this is not made (PyTorch's eps)
};

using lr_schedule = std::variant<constant_lr, step_lr, linear_lr, cosine_lr, warmup_linear, warmup_cosine, reduce_on_plateau>;

namespace detail {
// LinearLR's multiplier at period t.
inline double linear_factor(double start, double end, long total, long t) {
  if (total <= 0) return end;
  return start + (end - start) * static_cast<double>(std::min(t, total)) / static_cast<double>(total);
}
inline double cosine_value(double base, double eta_min, long t_max, long t) {
  return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(t_max))) / 2;
}
}  // namespace detail

// The learning rate of a schedule that depends only on the period (every kind but reduce_on_plateau).
inline double scheduled_lr(const lr_schedule& s, double base, long t) {
  return std::visit(
      [&](const auto& k) -> double {
        using K = std::decay_t<decltype(k)>;
        if constexpr (std::is_same_v<K, constant_lr>) return t < k.total ? base * k.factor : base;
        else if constexpr (std::is_same_v<K, step_lr>) return base * std::pow(k.gamma, static_cast<double>(t / k.step_size));
        else if constexpr (std::is_same_v<K, linear_lr>) return base * detail::linear_factor(k.start, k.end, k.total, t);
        else if constexpr (std::is_same_v<K, cosine_lr>) return detail::cosine_value(base, k.eta_min, k.t_max, t);
        else if constexpr (std::is_same_v<K, warmup_linear>) {
          if (t < k.warmup) return base * detail::linear_factor(k.start, 1.0, k.warmup, t);
          return base * detail::linear_factor(1.0, k.end, k.total - k.warmup, t - k.warmup);
        } else if constexpr (std::is_same_v<K, warmup_cosine>) {
          if (t < k.warmup) return base * detail::linear_factor(k.start, 1.0, k.warmup, t);
          return detail::cosine_value(base, k.eta_min, k.total - k.warmup, t - k.warmup);
        } else {
          throw error("kiln: reduce_on_plateau depends on a metric: use lr_scheduler::step(metric)");
        }
      },
      s);
}

// A schedule's state: the base rate, the period reached and, for reduce_on_plateau, the best metric so far.
// lr() is the rate of the current period; step() moves to the next one (step(metric) for reduce_on_plateau).
class lr_scheduler {
 public:
  lr_scheduler(lr_schedule s, double base_lr) : schedule_(s), base_(base_lr), plateau_lr_(base_lr) { validate(); }

  double lr() const { return needs_metric() ? plateau_lr_ : scheduled_lr(schedule_, base_, t_); }
  long period() const { return t_; }
  bool needs_metric() const { return std::holds_alternative<reduce_on_plateau>(schedule_); }
  const lr_schedule& schedule() const { return schedule_; }
  double base_lr() const { return base_; }

  void step() {
    if (needs_metric()) throw error("kiln: reduce_on_plateau needs the period's metric: call step(metric)");
    ++t_;
  }
  // Ends a period whose metric (lower is better, e.g. the validation loss) was `metric`.
  void step(double metric) {
    ++t_;
    const auto* p = std::get_if<reduce_on_plateau>(&schedule_);
    if (!p) return;
    if (metric < best_ * (1 - p->threshold)) {
      best_ = metric;
      bad_periods_ = 0;
    } else {
      ++bad_periods_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_periods_ = 0;  // periods in cooldown do not count
    }
    if (bad_periods_ > p->patience) {
      const double reduced = std::max(plateau_lr_ * p->factor, p->min_lr);
      if (plateau_lr_ - reduced > p->eps) plateau_lr_ = reduced;
      cooldown_left_ = p->cooldown;
      bad_periods_ = 0;
    }
  }
  // Resumes at period t (a stateless schedule only: a plateau's history is not recoverable from t).
  void set_period(long t) { t_ = t; }

  // The whole state as text, for a checkpoint: "period best lr bad_periods cooldown_left" (doubles to 17
  // significant digits, so they read back exactly), and its inverse, which resumes a plateau's history too.
  std::string state_text() const {
    char text[160];
    std::snprintf(text, sizeof text, "%ld %.17g %.17g %ld %ld", t_, best_, plateau_lr_, bad_periods_, cooldown_left_);
    return text;
  }
  void restore_state(std::string_view text) {
    long t = 0, bad = 0, cooldown = 0;
    double best = 0, lr = 0;
    const char* at = text.data();
    const char* const end = text.data() + text.size();
    bool ok = true;
    auto field = [&](auto& v) {
      while (at < end && *at == ' ') ++at;
      const auto [next, ec] = std::from_chars(at, end, v);
      ok = ok && ec == std::errc{} && next != at;
      at = next;
    };
    field(t), field(best), field(lr), field(bad), field(cooldown);
    if (!ok || at != end || t < 0 || bad < 0 || cooldown < 0 || !(lr >= 0) || std::isnan(best))
      throw format_error("learning-rate scheduler state '" + std::string(text) +
                         "': expected 'period best lr bad_periods cooldown_left' (as state_text() writes it)");
    t_ = t, best_ = best, plateau_lr_ = lr, bad_periods_ = bad, cooldown_left_ = cooldown;
  }

 private:
  void validate() const {
    std::visit(
        [](const auto& k) {
          using K = std::decay_t<decltype(k)>;
          auto need = [](bool ok, const char* what) {
            if (!ok) throw error(std::string("kiln: learning-rate schedule: ") + what);
          };
          if constexpr (std::is_same_v<K, step_lr>) need(k.step_size >= 1, "step_lr.step_size must be at least 1");
          if constexpr (std::is_same_v<K, linear_lr>) need(k.total >= 1, "linear_lr.total must be at least 1");
          if constexpr (std::is_same_v<K, cosine_lr>) need(k.t_max >= 1, "cosine_lr.t_max must be at least 1");
          if constexpr (std::is_same_v<K, warmup_linear> || std::is_same_v<K, warmup_cosine>)
            need(k.warmup >= 0 && k.total > k.warmup, "warm-up schedules need 0 <= warmup < total");
          if constexpr (std::is_same_v<K, reduce_on_plateau>)
            need(k.factor > 0 && k.factor < 1, "reduce_on_plateau.factor must be in (0, 1)");
        },
        schedule_);
  }

  lr_schedule schedule_;
  double base_ = 0;
  long t_ = 0;
  double plateau_lr_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
  long bad_periods_ = 0;
  long cooldown_left_ = 0;
};

// The learning rate of an optimizer, through any wrappers (clip_grad_norm, data_parallel): each wrapper
// keeps the optimizer it wraps as `inner`.
template <class Optimizer>
constexpr double& learning_rate(Optimizer& opt) {
  if constexpr (requires { opt.inner; }) return learning_rate(opt.inner);
  else return opt.lr;
}

}  // namespace kiln
