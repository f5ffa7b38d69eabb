// Learning-rate schedules (kiln/train/schedules.hpp) against torch.optim.lr_scheduler: each schedule's rate at
// every period, past its end, from kiln's lr_scheduler and from PyTorch's scheduler driving an SGD optimizer
// (schedules_torch.py); reduce_on_plateau on a metric sequence that improves, stalls, improves by less than the
// threshold and stalls again. Both sides compute in double, PyTorch's chainable forms recursively and kiln's in
// closed form, so they agree to rounding: the script allows 1e-12 relative.
#include "random_models_record.hpp"

#include <kiln/train/schedules.hpp>

#include <cmath>

namespace {

using namespace kiln;

// A JSON object's fields from name/value pairs.
std::string fields(std::initializer_list<std::pair<const char*, double>> values) {
  std::string s;
  for (const auto& [name, v] : values) {
    s += std::string(",\"") + name + "\":";
    kiln_torch::append(s, v, 17);
  }
  return s;
}

std::string line(const char* kind, const std::string& params, lr_schedule schedule, double base, int periods,
                 const std::vector<double>& metrics = {}) {
  lr_scheduler s(schedule, base);
  std::vector<double> lrs;
  for (int t = 0; t < periods; ++t) {
    lrs.push_back(s.lr());
    if (s.needs_metric()) s.step(metrics[static_cast<std::size_t>(t)]);
    else s.step();
  }
  std::string out = std::string("{\"kind\":\"") + kind + "\"" + params + fields({{"base", base}}) + ",\"lrs\":";
  kiln_torch::append_array(out, lrs, 17);
  out += ",\"metrics\":";
  kiln_torch::append_array(out, metrics, 17);
  return out + "}";
}

std::vector<std::string> cases() {
  std::vector<std::string> l;
  l.push_back(line("constant", fields({{"factor", 0.25}, {"total", 4}}), constant_lr{.factor = 0.25, .total = 4}, 0.1, 10));
  l.push_back(line("step", fields({{"step_size", 3}, {"gamma", 0.5}}), step_lr{.step_size = 3, .gamma = 0.5}, 0.2, 14));
  l.push_back(line("linear", fields({{"start", 0.1}, {"end", 0.7}, {"total", 6}}), linear_lr{.start = 0.1, .end = 0.7, .total = 6}, 0.05, 12));
  l.push_back(line("cosine", fields({{"t_max", 7}, {"eta_min", 1e-4}}), cosine_lr{.t_max = 7, .eta_min = 1e-4}, 0.1, 20));
  l.push_back(line("warmup_linear", fields({{"warmup", 5}, {"total", 20}, {"start", 0.01}, {"end", 0}}),
                   warmup_linear{.warmup = 5, .total = 20, .start = 0.01, .end = 0}, 3e-3, 26));
  l.push_back(line("warmup_cosine", fields({{"warmup", 4}, {"total", 16}, {"start", 0.1}, {"eta_min", 1e-5}}),
                   warmup_cosine{.warmup = 4, .total = 16, .start = 0.1, .eta_min = 1e-5}, 1e-3, 20));
  // improves, stalls for 4, improves by less than the threshold (no improvement), stalls: reductions with and
  // without cooldown, down to min_lr
  std::vector<double> metrics = {1.0, 0.9, 0.8, 0.8, 0.85, 0.81, 0.8, 0.79995, 0.9, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7,
                                 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7};
  l.push_back(line("plateau", fields({{"factor", 0.5}, {"patience", 2}, {"threshold", 1e-3}, {"cooldown", 0}, {"min_lr", 0}}),
                   reduce_on_plateau{.factor = 0.5, .patience = 2, .threshold = 1e-3}, 0.1, 24, metrics));
  l.push_back(line("plateau", fields({{"factor", 0.3}, {"patience", 1}, {"threshold", 1e-4}, {"cooldown", 2}, {"min_lr", 0.004}}),
                   reduce_on_plateau{.factor = 0.3, .patience = 1, .threshold = 1e-4, .cooldown = 2, .min_lr = 0.004}, 0.1, 24, metrics));
  return l;
}

}  // namespace

TEST_CASE("torch: learning-rate schedules equal torch.optim.lr_scheduler's", "[torch][schedule]") {
  kiln_torch::check_against_torch(cases(), "schedules", "schedules_torch.py");
}

TEST_CASE("schedules: bad settings are refused, saying which", "[schedule]") {
  REQUIRE_THROWS_WITH(lr_scheduler(step_lr{.step_size = 0}, 0.1), Catch::Matchers::Contains("step_lr.step_size"));
  REQUIRE_THROWS_WITH(lr_scheduler(warmup_cosine{.warmup = 5, .total = 5}, 0.1), Catch::Matchers::Contains("warmup < total"));
  lr_scheduler plateau(reduce_on_plateau{}, 0.1);
  REQUIRE_THROWS_WITH(plateau.step(), Catch::Matchers::Contains("needs the period's metric"));
}
