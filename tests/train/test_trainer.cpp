// The trainer: epochs / iterations / partial last batch, sample-weighted training loss, validation loss and
// accuracy against direct evaluation, bit-identical reproducibility per seed, early stopping with restoration
// of the best epoch, the CSV log, the plot, the checkpoint, and plain per-epoch output when not on a terminal.
#include "small_classifier.hpp"
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/cpu/trainer.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {
using loss_model = kiln_test::small_loss_model;
using logits_model = kiln_test::small_logits_model;
using trainer_type = kiln_test::small_trainer;
// The trainer drives any backend through these concepts; the CPU's step and evaluation satisfy them.
static_assert(kiln::training_step<kiln::cpu::train_step<loss_model, kiln::adam>>);
static_assert(kiln::training_step<kiln::cpu::train_step<loss_model, kiln::sgd, kiln::fusion::unfused>>);
static_assert(kiln::forward_function<kiln::cpu::function<logits_model>>);

// n samples in [-1, 1]^4; the class is the largest of three fixed linear scores, flipped to (c + 1) % 3 when
// `flip` (a validation set that disagrees with training, so its loss rises as training proceeds).
kiln::train::table make_data(int n, std::uint64_t seed, bool flip = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (int i = 0; i < n; ++i) {
    float v[4];
    for (float& e : v) {
      e = u(rng);
      x.push_back(e);
    }
    const float s[3] = {v[0] + v[1], v[2] - v[0], v[3] - v[1]};
    int c = s[1] > s[0] ? 1 : 0;
    if (s[2] > s[c]) c = 2;
    y.push_back(flip ? (c + 1) % 3 : c);
  }
  kiln::train::table t;
  t.add_features("x", x, 4).add_labels("y", y);
  return t;
}

// Everything written to a temporary file given as the trainer's `out`; closes it.
std::string read_and_close(std::FILE* out) {
  std::rewind(out);
  std::string printed;
  char buf[512];
  while (std::fgets(buf, sizeof buf, out)) printed += buf;
  std::fclose(out);
  return printed;
}

kiln::train::options quiet(int epochs, long batch, std::uint64_t seed = 5) {
  kiln::train::options o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.seed = seed;
  o.progress = kiln::train::progress_style::quiet;
  return o;
}

template <class Step>
std::vector<float> all_parameters(const Step& step) {
  std::vector<float> out;
  const kiln::graph& g = Step::step_graph();
  for (int l = 0; l < g.num_leaves; ++l)
    if (kiln::train::is_stored(g.leaves[l])) {
      const auto p = step.param(g.leaves[l].name.view());
      out.insert(out.end(), p.begin(), p.end());
    }
  return out;
}
}  // namespace

TEST_CASE("trainer: ceil(N/B) iterations per epoch, the last batch partial, loss weighted by samples") {
  const auto train = make_data(50, 1);
  auto opt = quiet(2, 16);
  opt.shuffle = false;
  trainer_type t(kiln::adam{.lr = 0.01}, opt);
  t.fit(train);
  REQUIRE(t.history().size() == 2);
  CHECK(t.history()[0].iterations == 4);  // 16 + 16 + 16 + 2
  CHECK(t.step().step_count() == 8);
  CHECK(std::isnan(t.history()[0].val_loss));  // no validation set

  // The same steps by hand: batches [0,16) [16,32) [32,48) [48,50), loss weighted by the batch's size.
  kiln::cpu::train_step<loss_model, kiln::adam> step(kiln::adam{.lr = 0.01}, opt.seed);
  const auto& x = train["x"].values;
  const auto& y = train["y"].labels;
  for (int epoch = 0; epoch < 2; ++epoch) {
    double sum = 0;
    for (std::size_t first = 0; first < 50; first += 16) {
      const std::size_t n = std::min<std::size_t>(16, 50 - first);
      const float l = step.run(static_cast<long>(n), {{"x", std::span<const float>(x).subspan(first * 4, n * 4)},
                                                      {"y", std::span<const std::int32_t>(y).subspan(first, n)}});
      sum += static_cast<double>(l) * static_cast<double>(n);
    }
    CHECK(t.history()[static_cast<std::size_t>(epoch)].train_loss == sum / 50);
  }
  CHECK(all_parameters(step) == all_parameters(t.step()));
}

TEST_CASE("trainer: validation loss and accuracy equal a direct evaluation of the whole set") {
  const auto train = make_data(300, 2), validation = make_data(120, 3);
  auto opt = quiet(3, 32);
  opt.eval_batch = 50;  // evaluated in chunks of 50, 50, 20
  trainer_type t(kiln::adam{.lr = 0.01}, opt);
  t.fit(train, validation);
  const auto& last = t.history().back();

  kiln::cpu::function<loss_model> loss(t.step());
  kiln::cpu::function<logits_model> logits(t.step());
  float l = 0;
  std::vector<float> out(120 * 3);
  loss.run(120, {{"x", validation["x"].values}, {"y", validation["y"].labels}}, std::span<float>(&l, 1));
  logits.run(120, {{"x", validation["x"].values}}, out);
  int correct = 0;
  for (int i = 0; i < 120; ++i) {
    const float* o = &out[static_cast<std::size_t>(3 * i)];
    const int predicted = static_cast<int>(std::max_element(o, o + 3) - o);
    correct += predicted == validation["y"].labels[static_cast<std::size_t>(i)];
  }
  CHECK(last.val_loss == Approx(l).epsilon(1e-5));
  CHECK(last.val_accuracy == static_cast<double>(correct) / 120);
  CHECK(last.val_accuracy > 0.7);  // it learned something (chance is 1/3)
  const auto e = t.evaluate(validation);
  CHECK(e.loss == last.val_loss);
  CHECK(e.samples == 120);
}

TEST_CASE("trainer: the same seed gives bit-identical weights after an epoch, another seed does not") {
  const auto train = make_data(200, 4);
  trainer_type a(kiln::adam{.lr = 0.01}, quiet(1, 24, 11));
  trainer_type b(kiln::adam{.lr = 0.01}, quiet(1, 24, 11));
  trainer_type c(kiln::adam{.lr = 0.01}, quiet(1, 24, 12));
  a.fit(train);
  b.fit(train);
  c.fit(train);
  const auto pa = all_parameters(a.step()), pb = all_parameters(b.step()), pc = all_parameters(c.step());
  REQUIRE(pa.size() == pb.size());
  CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
  CHECK(pa != pc);
  // shuffling matters: the same seed without shuffling ends elsewhere
  auto unshuffled = quiet(1, 24, 11);
  unshuffled.shuffle = false;
  trainer_type d(kiln::adam{.lr = 0.01}, unshuffled);
  d.fit(train);
  CHECK(all_parameters(d.step()) != pa);
}

TEST_CASE("trainer: early stopping after `patience` epochs without improvement restores the best epoch") {
  const auto train = make_data(200, 5), against = make_data(100, 6, /*flip=*/true);
  auto opt = quiet(30, 20);
  opt.patience = 2;
  opt.out_dir = kiln_test::temp_dir() + "/early";
  trainer_type t(kiln::adam{.lr = 0.02}, opt);
  const auto result = t.fit(train, against);
  REQUIRE(result.reason == kiln::train::stop_reason::early_stopping);
  CHECK(result.epochs_run == result.best_epoch + 2);
  CHECK(static_cast<int>(t.history().size()) == result.epochs_run);
  double best = 1e30;
  for (const auto& r : t.history()) best = std::min(best, r.val_loss);
  CHECK(result.best_val_loss == best);
  // the restored weights are those after the best epoch: train that many epochs with the same seed
  auto again = quiet(result.best_epoch, 20);
  trainer_type u(kiln::adam{.lr = 0.02}, again);
  u.fit(train);
  CHECK(all_parameters(u.step()) == all_parameters(t.step()));
  // and the checkpoint holds them
  const auto file = kiln::io::read_safetensors_content(opt.out_dir + "/model.safetensors");
  CHECK(file.metadata.at("kiln.epoch") == std::to_string(result.best_epoch));
  trainer_type loaded(kiln::adam{}, quiet(1, 20, 77));
  kiln::train::load_checkpoint(loaded.step(), opt.out_dir + "/model.safetensors");
  CHECK(all_parameters(loaded.step()) == all_parameters(t.step()));
}

TEST_CASE("trainer: keep_best ends on the epoch with the lowest validation loss") {
  const auto train = make_data(200, 5), against = make_data(100, 6, /*flip=*/true);
  auto opt = quiet(5, 20);
  opt.keep_best = true;
  trainer_type t(kiln::adam{.lr = 0.02}, opt);
  const auto result = t.fit(train, against);
  CHECK(result.reason == kiln::train::stop_reason::completed);
  CHECK(t.history().size() == 5);
  REQUIRE(result.best_epoch < 5);  // the flipped validation set gets worse as training proceeds
  trainer_type u(kiln::adam{.lr = 0.02}, quiet(result.best_epoch, 20));
  u.fit(train);
  CHECK(all_parameters(u.step()) == all_parameters(t.step()));
}

TEST_CASE("trainer: writes log.csv, curves.svg and a checkpoint; prints one line per epoch off a terminal") {
  const std::string dir = kiln_test::temp_dir() + "/run";
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  auto opt = quiet(3, 32);
  opt.out_dir = dir;
  opt.progress = kiln::train::progress_style::automatic;  // a file is not a terminal: lines
  opt.out = out;
  trainer_type t(kiln::adam{.lr = 0.01}, opt);
  t.fit(make_data(100, 7), make_data(40, 8));

  const std::string printed = read_and_close(out);
  CHECK(std::count(printed.begin(), printed.end(), '\n') == 3);
  CHECK(printed.find("epoch 1/3  train loss ") != std::string::npos);
  CHECK(printed.find("val accuracy") != std::string::npos);
  CHECK(printed.find('\r') == std::string::npos);  // no bar redraws

  const std::string csv = kiln::io::read_file(dir + "/log.csv");
  CHECK(csv.rfind("epoch,train_loss,val_loss,val_accuracy,seconds,lr\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);
  CHECK(csv.find("\n3,") != std::string::npos);
  const std::string svg = kiln::io::read_file(dir + "/curves.svg");
  CHECK(svg.find("validation accuracy") != std::string::npos);
  CHECK(svg.find("<polyline") != std::string::npos);

  trainer_type fresh(kiln::adam{.lr = 0.01}, quiet(1, 32, 99));
  const auto loaded = kiln::train::load_checkpoint(fresh.step(), dir + "/model.safetensors");
  CHECK(loaded.optimizer_state);
  CHECK(loaded.step_count == 12);  // 3 epochs of ceil(100/32) = 4 iterations
  CHECK(all_parameters(fresh.step()) == all_parameters(t.step()));
}

TEST_CASE("trainer: a bar with rate and ETA when asked for one") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  auto opt = quiet(1, 10);
  opt.progress = kiln::train::progress_style::bar;
  opt.out = out;
  trainer_type t(kiln::adam{}, opt);
  t.fit(make_data(100, 9));
  const std::string printed = read_and_close(out);
  CHECK(printed.find("\r\033[Kepoch 1/1 [") != std::string::npos);
  CHECK(printed.find("10/10") != std::string::npos);  // the last redraw shows every batch done
  CHECK(printed.find(" it/s  ETA ") != std::string::npos);
  CHECK(printed.find("epoch 1/1  train loss") != std::string::npos);  // the summary line replaces the bar
}

namespace {
// A step whose parameters live apart from the host, as on a GPU: param() hands out copies, set_param() writes
// (the interface of kiln::cuda::train_step). It computes on the CPU, so results must match bit for bit.
struct separate_memory_step {
  kiln::cpu::train_step<loss_model, kiln::adam> inner;
  int uploads = 0;
  explicit separate_memory_step(std::uint64_t seed) : inner(kiln::adam{.lr = 0.01}, seed) {}
  float run(long b, std::initializer_list<kiln::feed> f) { return inner.run(b, f); }
  std::vector<float> param(std::string_view name) {
    const auto p = inner.param(name);
    return {p.begin(), p.end()};
  }
  void set_param(std::string_view name, std::span<const float> v) {
    ++uploads;
    std::copy(v.begin(), v.end(), inner.param(name).begin());
  }
  long step_count() const { return inner.step_count(); }
  void set_step_count(long t) { inner.set_step_count(t); }
};
}  // namespace

TEST_CASE("trainer: fit_on runs the steps on a step with its own memory and mirrors it on the host") {
  const auto train = make_data(150, 12), validation = make_data(60, 13);
  trainer_type host(kiln::adam{.lr = 0.01}, quiet(3, 16, 21));
  host.fit(train, validation);

  trainer_type mirrored(kiln::adam{.lr = 0.01}, quiet(3, 16, 21));
  separate_memory_step device(/*seed=*/999);  // other initial values: the trainer's must be uploaded first
  mirrored.fit_on(device, train, validation);
  CHECK(device.uploads > 0);
  CHECK(all_parameters(device.inner) == all_parameters(host.step()));    // the same training
  CHECK(all_parameters(mirrored.step()) == all_parameters(host.step()));  // copied back to the host
  CHECK(mirrored.step().step_count() == host.step().step_count());
  REQUIRE(mirrored.history().size() == 3);
  CHECK(mirrored.history()[2].val_loss == host.history()[2].val_loss);  // evaluated on the mirror
  CHECK(mirrored.history()[2].val_accuracy == host.history()[2].val_accuracy);
}

TEST_CASE("progress: clock text") {
  CHECK(kiln::train::clock_text(0) == "00:00");
  CHECK(kiln::train::clock_text(75.4) == "01:15");
  CHECK(kiln::train::clock_text(3725) == "1:02:05");
  CHECK(kiln::train::clock_text(-1) == "--:--");
}

TEST_CASE("trainer: the summary says how each CSV file's first line was taken (a header or data)") {
  const std::string dir = kiln_test::temp_dir();
  const auto write = [&](const std::string& name, const std::string& text) {
    kiln::io::write_file_atomic(dir + "/" + name, text);
    return kiln::data::read_csv(dir + "/" + name, {.label = kiln::data::csv_label::column(-1)});
  };
  // no header: every cell of line 1 is a number, so line 1 is the first sample, not a header to drop
  const auto train_csv = write("train.csv", "0.5,1,-1,2,0\n1,0.25,3,-2,1\n-1,2,0.5,1,2\n");
  const auto val_csv = write("val.csv", "a,b,c,d,label\n1,2,3,4,2\n");
  REQUIRE(train_csv.rows == 3);
  kiln::train::table train, validation;
  train.add_features("x", train_csv).add_labels("y", kiln::data::class_labels(train_csv, 3));
  validation.add_features("x", val_csv).add_labels("y", kiln::data::class_labels(val_csv, 3));

  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  auto opt = quiet(1, 2);
  opt.progress = kiln::train::progress_style::automatic;
  opt.out = out;
  trainer_type t(kiln::adam{}, opt);
  t.fit(train, validation);
  const std::string printed = read_and_close(out);
  INFO(printed);
  CHECK(printed.find("training data: '" + dir + "/train.csv': line 1 read as data") != std::string::npos);
  CHECK(printed.find("validation data: '" + dir + "/val.csv': line 1 read as a header (automatic: cell 1 'a' is not a number)") !=
        std::string::npos);
  CHECK(printed.find("training data:") < printed.find("epoch 1/1"));
}

TEST_CASE("trainer: a learning-rate schedule sets each epoch's (or iteration's) rate, as stepping it by hand does") {
  const auto train = make_data(48, 3);
  SECTION("step_lr per epoch") {
    auto opt = quiet(5, 16);
    opt.schedule = kiln::step_lr{.step_size = 2, .gamma = 0.5};
    trainer_type t(kiln::adam{.lr = 0.02}, opt);
    t.fit(train);
    const double expected[] = {0.02, 0.02, 0.01, 0.01, 0.005};
    for (int e = 0; e < 5; ++e) CHECK(t.history()[static_cast<std::size_t>(e)].lr == Approx(expected[e]).epsilon(1e-15));
    CHECK(t.step().optimizer().lr == Approx(0.005).epsilon(1e-15));  // epoch 6 would start at period 5: 0.02·0.5²
    // a second fit continues the schedule where the first ended
    t.fit(train);
    CHECK(t.history()[5].lr == Approx(0.005).epsilon(1e-15));   // period 5
    CHECK(t.history()[6].lr == Approx(0.0025).epsilon(1e-15));  // period 6
  }
  SECTION("warm-up per iteration equals the same steps by hand") {
    auto opt = quiet(2, 16);
    opt.shuffle = false;
    opt.schedule = kiln::warmup_cosine{.warmup = 2, .total = 6, .start = 0.1};
    opt.schedule_per_iteration = true;
    kiln::train::trainer<loss_model, kiln::sgd, logits_model> t(kiln::sgd{.lr = 0.5}, opt);
    t.fit(train);
    kiln::cpu::train_step<loss_model, kiln::sgd> step(kiln::sgd{.lr = 0.5}, opt.seed);
    kiln::lr_scheduler s(*opt.schedule, 0.5);
    const auto& x = train["x"].values;
    const auto& y = train["y"].labels;
    for (int i = 0; i < 6; ++i) {
      const std::size_t first = static_cast<std::size_t>(i % 3) * 16;
      step.optimizer().lr = s.lr();
      step.run(16, {{"x", std::span<const float>(x).subspan(first * 4, 64)}, {"y", std::span<const std::int32_t>(y).subspan(first, 16)}});
      s.step();
    }
    CHECK(all_parameters(step) == all_parameters(t.step()));
    CHECK(t.history()[0].lr == Approx(0.5).epsilon(1e-15));  // iteration 3: the warm-up's end
    CHECK(t.history()[1].lr == Approx(0.5 * (1 + std::cos(M_PI * 3 / 4)) / 2).epsilon(1e-12));  // iteration 6
  }
  SECTION("reduce_on_plateau on the validation loss") {
    auto opt = quiet(6, 16);
    opt.schedule = kiln::reduce_on_plateau{.factor = 0.5, .patience = 0};
    trainer_type t(kiln::adam{.lr = 0.05}, opt);
    t.fit(train, make_data(30, 4, true));  // a validation set that disagrees: its loss rises, the rate halves
    int reductions = 0;
    for (std::size_t e = 1; e < t.history().size(); ++e) reductions += t.history()[e].lr < t.history()[e - 1].lr;
    CHECK(reductions >= 2);
  }
}

TEST_CASE("trainer: resuming from the last checkpoint after a stop gives the uninterrupted run's losses and weights") {
  const auto train = make_data(40, 6), validation = make_data(20, 7);
  auto opt = quiet(3, 8);
  opt.schedule = kiln::warmup_cosine{.warmup = 4, .total = 15, .start = 0.2};
  opt.schedule_per_iteration = true;
  opt.out_dir = kiln_test::temp_dir() + "/resume_whole";
  trainer_type whole(kiln::adam{.lr = 0.02}, opt);
  whole.fit(train, validation);

  opt.epochs = 2;  // the run that "is killed" after epoch 2 (its checkpoint is the end of epoch 2)
  opt.out_dir = kiln_test::temp_dir() + "/resume_first";
  trainer_type first(kiln::adam{.lr = 0.02}, opt);
  first.fit(train, validation);

  opt.epochs = 1;
  trainer_type resumed(kiln::adam{.lr = 0.02}, opt);
  CHECK(resumed.resume(first.checkpoint_path()) == 2);
  resumed.fit(train, validation);
  REQUIRE(resumed.history().size() == 1);
  CHECK(resumed.history()[0].epoch == 3);
  CHECK(resumed.history()[0].train_loss == whole.history()[2].train_loss);
  CHECK(resumed.history()[0].val_loss == whole.history()[2].val_loss);
  CHECK(resumed.history()[0].lr == whole.history()[2].lr);
  CHECK(all_parameters(resumed.step()) == all_parameters(whole.step()));
}

TEST_CASE("trainer: a resumed reduce_on_plateau goes on with its history (best loss, bad epochs, reduced rate)") {
  const auto train = make_data(40, 6), validation = make_data(30, 4, true);  // its loss rises: the rate halves
  auto opt = quiet(6, 16);
  opt.schedule = kiln::reduce_on_plateau{.factor = 0.5, .patience = 1, .cooldown = 1};
  opt.out_dir = kiln_test::temp_dir() + "/plateau_whole";
  trainer_type whole(kiln::adam{.lr = 0.05}, opt);
  whole.fit(train, validation);
  opt.epochs = 3;
  opt.out_dir = kiln_test::temp_dir() + "/plateau_first";
  trainer_type first(kiln::adam{.lr = 0.05}, opt);
  first.fit(train, validation);
  opt.epochs = 3;
  trainer_type resumed(kiln::adam{.lr = 0.05}, opt);
  CHECK(resumed.resume(first.checkpoint_path()) == 3);
  resumed.fit(train, validation);
  REQUIRE(resumed.history().size() == 3);
  int reductions = 0;
  for (std::size_t e = 0; e < 3; ++e) {
    INFO("epoch " << e + 4);
    CHECK(resumed.history()[e].lr == whole.history()[e + 3].lr);
    CHECK(resumed.history()[e].train_loss == whole.history()[e + 3].train_loss);
    reductions += whole.history()[e + 3].lr < whole.history()[e + 2].lr;
  }
  CHECK(reductions >= 1);  // the history mattered: the rate fell after the stop
  CHECK(resumed.scheduler()->state_text() == whole.scheduler()->state_text());

  kiln::lr_scheduler s(kiln::reduce_on_plateau{}, 0.1);
  REQUIRE_THROWS_WITH(s.restore_state("3 0.5 x 0 0"), Catch::Matchers::Contains("expected 'period best lr bad_periods cooldown_left'"));
  s.restore_state("4 0.25 0.015625 1 0");
  CHECK(s.lr() == 0.015625);
  CHECK(s.state_text() == "4 0.25 0.015625 1 0");
}
