#pragma once
// kiln::train::basic_trainer<Backend, …>: the training loop around a backend's compiled step (any
// kiln::training_step). The CPU's is kiln::train::trainer<Model, Optimizer, Predict>, declared in
// <kiln/cpu/trainer.hpp>; this header includes no backend.
//
// Backend names the step and evaluation types:
//   template <class Model, class Optimizer, fusion Mode> using step = …;   a training_step
//   template <class Model> using function = …;                            a forward_function built from a step
//
// Terms (as in the course notes): an *epoch* is one pass over the training set; an *iteration* is one step
// (forward, backward, update) on one batch; an epoch has ceil(N / B) iterations, the last batch holding the
// N mod B remaining samples when B does not divide N.
//
// Each epoch the training rows are shuffled with a seeded generator (same seed ⇒ same batches ⇒ bit-identical
// weights), trained on batch by batch, and then evaluated: training loss = the sample-weighted mean of the
// batch losses (each batch loss is a mean over its samples), validation loss and accuracy by forward
// evaluation (Backend::function) of the loss and of an optional prediction model. Progress is a bar on a
// terminal and one line per epoch elsewhere. Optional: early stopping on the validation loss (patience), a CSV
// log, an SVG plot of the curves, and a checkpoint after every good epoch.
//
// fit_on(device_step, ...) runs the steps on another backend (kiln::cuda::train_step) and keeps the trainer's
// CPU step as the host mirror used for evaluation, checkpoints and the NaN guard.
//
// NaN guard: when a batch's loss is not finite, training stops with kiln::train::nonfinite_loss (epoch, step,
// the last good checkpoint, which is also restored into the step). With options.debug_nonfinite the failing
// step is re-run unfused from the parameters it started with, and the message names the first node that
// produced a non-finite value from finite inputs (see nan_guard.hpp).
//
//   struct loss  { constexpr auto operator()() const { return kiln::cross_entropy(net(x), y); } };
//   struct logits { constexpr auto operator()() const { return net(x); } };
//   kiln::train::trainer<loss, kiln::adam, logits> t(kiln::adam{.lr = 1e-3}, {.epochs = 10, .batch_size = 64});
//   t.fit(train, validation);
#include <kiln/data/dataset.hpp>
#include <kiln/dist/communicator.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/plot/training_curves.hpp>
#include <kiln/train/checkpoint.hpp>
#include <kiln/train/nan_guard.hpp>
#include <kiln/train/progress.hpp>
#include <kiln/train/schedules.hpp>
#include <kiln/train/step_concept.hpp>
#include <kiln/train/table.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace kiln::train {

struct options {
  int epochs = 10;
  long batch_size = 32;
  std::uint64_t seed = 0;        // parameter initialization and shuffling
  bool shuffle = true;
  int patience = 0;              // early stopping after this many epochs without improvement; 0 = off
  double min_delta = 0;          // an improvement lowers the validation loss by more than this
  bool restore_best = true;      // on early stopping, return to the best epoch's parameters
  bool keep_best = false;        // at the end, keep the epoch with the lowest validation loss (model selection)
  std::string out_dir;           // if set: log.csv, curves.svg and the checkpoint are written there
  std::string checkpoint_name = "model.safetensors";
  std::string title;             // the plot's title
  progress_style progress = progress_style::automatic;
  std::FILE* out = stdout;
  bool debug_nonfinite = false;  // re-run a failing step unfused to find the first non-finite node
  long eval_batch = 1000;        // batch size of the forward evaluations
  // A learning-rate schedule (kiln/train/schedules.hpp) from the optimizer's lr as its base: stepped after every
  // epoch (PyTorch's usual scheduler.step()) or, with schedule_per_iteration, after every iteration (warm-ups).
  // reduce_on_plateau is stepped with the epoch's validation loss (the training loss without a validation set).
  std::optional<lr_schedule> schedule;
  bool schedule_per_iteration = false;
};

struct epoch_record {
  int epoch = 0;
  double train_loss = 0, val_loss = NAN, val_accuracy = NAN, seconds = 0;
  long iterations = 0;
  double lr = NAN;  // the learning rate of the epoch's last iteration
};

enum class stop_reason { completed, early_stopping };

struct fit_result {
  stop_reason reason = stop_reason::completed;
  int epochs_run = 0;
  int best_epoch = 0;  // the epoch with the lowest validation loss (0 when there is no validation set)
  double best_val_loss = NAN;
};

struct evaluation {
  double loss = NAN, accuracy = NAN;
  long samples = 0;
};

// Training stopped because a batch's loss was not finite.
struct nonfinite_loss : error {
  int epoch = 0;
  long step = 0;        // 1-based iteration within the epoch
  long iteration = 0;   // 1-based iteration of the run
  float loss = 0;
  std::string checkpoint;  // where the last good parameters are ("" when kept in memory only)
  nonfinite_origin origin;  // found only with options.debug_nonfinite
  nonfinite_loss(const std::string& what) : error(what) {}
};

// The absence of a prediction model (no accuracy is measured).
struct no_prediction {};

// The log as CSV: epoch,train_loss,val_loss,val_accuracy,seconds (an empty cell where not measured).
inline std::string log_csv(const std::vector<epoch_record>& history) {
  std::string s = "epoch,train_loss,val_loss,val_accuracy,seconds,lr\n";
  auto cell = [](double v) {
    if (!std::isfinite(v)) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return std::string(buf);
  };
  for (const epoch_record& r : history)
    s += std::to_string(r.epoch) + "," + cell(r.train_loss) + "," + cell(r.val_loss) + "," + cell(r.val_accuracy) +
         "," + cell(r.seconds) + "," + cell(r.lr) + "\n";
  return s;
}

inline plot::training_curves curves_of(const std::vector<epoch_record>& history) {
  plot::training_curves c;
  for (const epoch_record& r : history) {
    c.epoch.push_back(r.epoch);
    c.train_loss.push_back(r.train_loss);
    c.val_loss.push_back(r.val_loss);
    c.val_accuracy.push_back(r.val_accuracy);
  }
  return c;
}

namespace trainer_detail {

// Calls f(std::initializer_list<feed>) with one feed per column of the table, from the batch buffer.
template <class F>
decltype(auto) with_feeds(const table& t, const batch_buffer& b, F&& f) {
  const auto& cols = t.columns();
  auto fd = [&](std::size_t k) {
    return cols[k].holds_labels ? feed(cols[k].name, b.labels(k)) : feed(cols[k].name, b.values(k));
  };
  switch (cols.size()) {
    case 1: return f({fd(0)});
    case 2: return f({fd(0), fd(1)});
    case 3: return f({fd(0), fd(1), fd(2)});
    case 4: return f({fd(0), fd(1), fd(2), fd(3)});
    default: throw error("trainer: a table may have 1 to 4 columns, this one has " + std::to_string(cols.size()));
  }
}

inline bool all_finite(std::span<const float> v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

inline std::string metric(const char* name, double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %s %.4f", name, v);
  return buf;
}

// Input leaves (inputs and labels) of a graph, by name.
inline bool reads_input(const graph& g, std::string_view name) {
  for (int l = 0; l < g.num_leaves; ++l)
    if ((g.leaves[l].kind == leaf_kind::input || g.leaves[l].kind == leaf_kind::labels) && g.leaves[l].name.view() == name)
      return true;
  return false;
}

// The trainer's own CPU step runs the steps: nothing to copy.
template <class Step>
struct host_runner {
  Step& step;
  float run(long batch_size, std::initializer_list<feed> feeds) { return step.run(batch_size, feeds); }
  void to_host() {}
  void to_device() {}
  void set_lr(double lr) { learning_rate(step.optimizer()) = lr; }
};

// Another backend's step runs them; `host` mirrors its parameters, optimizer state and step count.
template <class Host, class Device>
struct device_runner {
  Host& host;
  Device& device;
  float run(long batch_size, std::initializer_list<feed> feeds) { return device.run(batch_size, feeds); }
  void set_lr(double lr) {
    learning_rate(host.optimizer()) = lr;
    if constexpr (requires { device.optimizer(); }) learning_rate(device.optimizer()) = lr;
    else throw error("trainer: a learning-rate schedule needs the device step's optimizer() to set its lr");
  }
  void to_host() {
    const graph& g = Host::step_graph();
    for (int l = 0; l < g.num_leaves; ++l)
      if (is_stored(g.leaves[l])) {
        const auto v = device.param(g.leaves[l].name.view());
        auto h = host.param(g.leaves[l].name.view());
        if (v.size() != h.size())
          throw shape_error("trainer: the device's '" + std::string(g.leaves[l].name.view()) + "' has " +
                            std::to_string(v.size()) + " values, the host's " + std::to_string(h.size()));
        std::copy(v.begin(), v.end(), h.begin());
      }
    host.set_step_count(device.step_count());
  }
  void to_device() {
    const graph& g = Host::step_graph();
    for (int l = 0; l < g.num_leaves; ++l)
      if (is_stored(g.leaves[l])) {
        const auto h = host.param(g.leaves[l].name.view());
        device.set_param(g.leaves[l].name.view(), std::span<const float>(h.data(), h.size()));
      }
    device.set_step_count(host.step_count());
  }
};

}  // namespace trainer_detail

template <class Backend, class Model, class Optimizer, class Predict = no_prediction>
class basic_trainer {
  static constexpr bool has_prediction = !std::is_same_v<Predict, no_prediction>;
  struct unused {
    template <class S> explicit unused(S&) {}
  };
  using predict_function = std::conditional_t<has_prediction, typename Backend::template function<Predict>, unused>;

 public:
  using step_type = typename Backend::template step<Model, Optimizer, fusion::fused>;
  using unfused_step_type = typename Backend::template step<Model, Optimizer, fusion::unfused>;
  static_assert(training_step<step_type>, "kiln: Backend::step is not a kiln::training_step");
  static_assert(forward_function<typename Backend::template function<Model>>,
                "kiln: Backend::function is not a kiln::forward_function");

  explicit basic_trainer(Optimizer opt = {}, options o = {})
      : options_(std::move(o)), step_(opt, options_.seed), loss_(step_), predict_(step_), base_lr_(learning_rate(opt)) {}

  step_type& step() { return step_; }

  // Data-parallel training (Optimizer = kiln::data_parallel<…>) over comm's ranks, each running this trainer
  // with the same model, options and data. Every rank shuffles alike (same seed) and takes its share of each
  // batch, the rows at positions rank, rank + ranks, … (DistributedSampler's split), so options.batch_size is the
  // global batch B and each rank computes about B/ranks rows; the step sums the gradients, weighted by each
  // rank's share. Losses and metrics are reduced over ranks; validation and evaluate() split the rows between
  // ranks. Only rank 0 prints and writes the log, plot and checkpoints (a checkpoint holds no rank count, so it
  // resumes on any number of ranks). A batch with fewer rows than ranks is skipped on every rank. comm must
  // outlive the trainer; every rank must call fit and evaluate alike. `step_options` go to the step's
  // set_communicator (the CPU step's data_parallel_options: bucket size, ZeRO-1's sharded optimizer state, whose
  // checkpoints rank 0 writes whole after fetching the other ranks' shares).
  template <class... StepOptions>
  void set_communicator(dist::communicator& comm, const StepOptions&... step_options)
    requires requires { Optimizer::is_data_parallel; }
  {
    step_.set_communicator(comm, step_options...);
    comm_ = &comm;
    if (!comm.is_root()) {
      options_.out = nullptr;
      options_.progress = progress_style::quiet;
    }
  }
  const dist::communicator* communicator() const { return comm_; }

  // Continues a run from a checkpoint this trainer wrote (options.out_dir): its parameters, optimizer state and
  // step count, and the epoch it ended ("kiln.epoch"), so that fit goes on with the next epoch, the same
  // shuffles, dropout draws and schedule as the uninterrupted run: the same losses. Returns that epoch. With
  // several ranks every rank reads the file (any rank count resumes any checkpoint).
  int resume(const std::string& checkpoint) {
    const io::safetensors_content content = io::read_safetensors_content(checkpoint);
    load_checkpoint_content(step_, content, checkpoint);
    int epoch = 0;
    if (const auto it = content.metadata.find("kiln.epoch"); it != content.metadata.end()) {
      const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), epoch);
      if (ec != std::errc{} || end != it->second.data() + it->second.size() || epoch < 0)
        throw format_error("checkpoint " + io::quote_text(checkpoint) + ": __metadata__ kiln.epoch is '" + it->second +
                           "', expected a non-negative integer");
    }
    history_.clear();
    resumed_epoch_ = epoch;
    iteration_ = step_.step_count();
    scheduler_.reset();
    resumed_scheduler_.reset();  // the schedule's state (a plateau's history), restored when fit makes the scheduler
    if (const auto it = content.metadata.find(scheduler_key); it != content.metadata.end()) resumed_scheduler_ = it->second;
    return epoch;
  }
  // The learning-rate schedule's state (options.schedule), once fit has started.
  const std::optional<lr_scheduler>& scheduler() const { return scheduler_; }
  const options& settings() const { return options_; }
  const std::vector<epoch_record>& history() const { return history_; }

  // Trains for options.epochs epochs (fewer with early stopping). Throws nonfinite_loss if the loss stops
  // being finite.
  fit_result fit(const table& train, const table& validation = {}) {
    trainer_detail::host_runner<step_type> runner{step_};
    return fit_with(runner, train, validation);
  }

  // The same, with the steps run by another backend's train_step for the same Model and Optimizer (e.g.
  // kiln::cuda::train_step), whose parameters live in its own memory: param(name) returns a copy and
  // set_param(name, values) writes. The trainer's CPU step is the host mirror: the device starts from its
  // parameters, and they are copied back after every epoch for evaluation, checkpoints and plots.
  template <device_step DeviceStep>
  fit_result fit_on(DeviceStep& device, const table& train, const table& validation = {}) {
    trainer_detail::device_runner<step_type, DeviceStep> runner{step_, device};
    runner.to_device();
    return fit_with(runner, train, validation);
  }

 private:
  template <class Runner>
  fit_result fit_with(Runner& runner, const table& train, const table& validation) {
    if (train.rows() == 0) throw error("trainer: the training set is empty");
    if (options_.batch_size < 1) throw error("trainer: batch size must be at least 1, got " + std::to_string(options_.batch_size));
    if (!options_.out_dir.empty()) io::make_dirs(options_.out_dir);
    progress bar(options_.progress, options_.out);
    if (history_.empty() && options_.out) {  // the run's summary starts with where its data came from
      for (const std::string& n : train.notes()) std::fprintf(options_.out, "training data: %s\n", n.c_str());
      for (const std::string& n : validation.notes()) std::fprintf(options_.out, "validation data: %s\n", n.c_str());
    }
    fit_result result;
    last_good_ = snapshot::capture(step_);
    if (options_.debug_nonfinite) before_step_ = last_good_;  // sized once; refreshed before every step
    last_good_epoch_ = history_.empty() ? resumed_epoch_ : history_.back().epoch;
    save_checkpoint_file();
    snapshot best = last_good_;
    int epochs_without_improvement = 0;

    std::vector<std::size_t> order(train.rows());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    batch_buffer buffer(train);
    const data::batches batches(order, static_cast<std::size_t>(options_.batch_size));
    const int first_epoch = last_good_epoch_ + 1;
    if (options_.schedule && !scheduler_) {
      scheduler_.emplace(*options_.schedule, base_lr_);
      if (scheduler_->needs_metric() && resumed_scheduler_) {  // resuming a plateau's history from the checkpoint
        try {
          scheduler_->restore_state(*resumed_scheduler_);
        } catch (const format_error& e) {
          throw format_error("checkpoint's __metadata__ " + std::string(scheduler_key) + ": " + e.what());
        }
      } else if (!scheduler_->needs_metric()) {  // resuming: the period reached so far (from the checkpoint's epoch)
        scheduler_->set_period(options_.schedule_per_iteration ? iteration_ : last_good_epoch_);
      }
    }
    for (int epoch = first_epoch; epoch < first_epoch + options_.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      if (scheduler_) runner.set_lr(scheduler_->lr());
      if (options_.shuffle) {  // epoch e's order depends on the seed and e alone, so a resumed run shuffles alike
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::mt19937_64 rng(shuffle_seed() + 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(epoch));
        data::shuffle(std::span<std::size_t>(order), rng);
      }
      bar.begin_epoch(epoch, first_epoch + options_.epochs - 1, static_cast<long>(batches.size()));
      double loss_sum = 0, rows_trained = 0, r_lr = NAN;
      for (std::size_t k = 0; k < batches.size(); ++k) {
        const std::span<const std::size_t> rows = batches[k];
        if (comm_) {  // this rank's share of the batch
          if (rows.size() < static_cast<std::size_t>(comm_->size())) continue;
          share_.clear();
          for (std::size_t j = static_cast<std::size_t>(comm_->rank()); j < rows.size(); j += static_cast<std::size_t>(comm_->size()))
            share_.push_back(rows[j]);
          if constexpr (requires { step_.optimizer().share; })
            step_.optimizer().share = static_cast<double>(share_.size()) / static_cast<double>(rows.size());
          buffer.gather(share_);
        } else {
          buffer.gather(rows);
        }
        if (options_.debug_nonfinite) {
          runner.to_host();
          before_step_.update_from(step_);
        }
        float loss = trainer_detail::with_feeds(train, buffer, [&](std::initializer_list<feed> feeds) {
          return runner.run(buffer.size(), feeds);
        });
        if (comm_) {  // the batch's loss: the ranks' losses weighted by their rows (every rank sees the same)
          double sums[2] = {static_cast<double>(loss) * static_cast<double>(buffer.size()), static_cast<double>(buffer.size())};
          comm_->all_reduce_sum(std::span<double>(sums, 2));
          loss = static_cast<float>(sums[0] / sums[1]);
        }
        ++iteration_;
        rows_trained += static_cast<double>(rows.size());
        if (!std::isfinite(loss)) stop_nonfinite(runner, bar, train, buffer, epoch, static_cast<long>(k) + 1, loss);
        r_lr = learning_rate(step_.optimizer());
        if (scheduler_ && options_.schedule_per_iteration && !scheduler_->needs_metric()) {
          scheduler_->step();
          runner.set_lr(scheduler_->lr());
        }
        loss_sum += static_cast<double>(loss) * static_cast<double>(rows.size());
        bar.update(static_cast<long>(k) + 1, loss_sum / rows_trained);
      }
      runner.to_host();
      epoch_record r;
      r.epoch = epoch;
      r.iterations = static_cast<long>(batches.size());
      r.train_loss = loss_sum / rows_trained;
      if (validation.rows() > 0) {
        const evaluation e = evaluate(validation);
        r.val_loss = e.loss;
        r.val_accuracy = e.accuracy;
      }
      check_parameters_finite(runner, bar, epoch);
      r.lr = r_lr;
      if (scheduler_ && scheduler_->needs_metric()) scheduler_->step(std::isfinite(r.val_loss) ? r.val_loss : r.train_loss);
      else if (scheduler_ && !options_.schedule_per_iteration) scheduler_->step();
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      history_.push_back(r);
      result.epochs_run = epoch - first_epoch + 1;
      bar.end_epoch(epoch_line(r, first_epoch + options_.epochs - 1));
      last_good_.update_from(step_);
      last_good_epoch_ = epoch;
      save_checkpoint_file();
      write_outputs();

      if (std::isfinite(r.val_loss)) {
        if (!std::isfinite(result.best_val_loss) || r.val_loss < result.best_val_loss - options_.min_delta) {
          result.best_val_loss = r.val_loss;
          result.best_epoch = epoch;
          epochs_without_improvement = 0;
          if ((options_.patience > 0 && options_.restore_best) || options_.keep_best) best.update_from(step_);
        } else if (options_.patience > 0 && ++epochs_without_improvement >= options_.patience) {
          result.reason = stop_reason::early_stopping;
          std::string line = "early stopping: no validation-loss improvement for " + std::to_string(options_.patience) +
                             " epochs (best " + std::to_string(result.best_val_loss) + " at epoch " +
                             std::to_string(result.best_epoch) + ")";
          if (options_.restore_best) {
            best.restore(step_);
            runner.to_device();
            last_good_.update_from(step_);
            last_good_epoch_ = result.best_epoch;
            save_checkpoint_file();
            line += "; parameters restored to epoch " + std::to_string(result.best_epoch);
          }
          bar.message(line);
          break;
        }
      }
    }
    if (options_.keep_best && result.reason == stop_reason::completed && result.best_epoch > 0 &&
        result.best_epoch != last_good_epoch_) {
      best.restore(step_);
      runner.to_device();
      last_good_.update_from(step_);
      last_good_epoch_ = result.best_epoch;
      save_checkpoint_file();
      char line[160];
      std::snprintf(line, sizeof line, "kept the parameters of epoch %d (lowest validation loss, %.4f)", result.best_epoch,
                    result.best_val_loss);
      bar.message(line);
    }
    return result;
  }

 public:
  // Mean loss (and accuracy, with a prediction model) over a table, by forward evaluation in chunks.
  evaluation evaluate(const table& data) {
    evaluation e;
    e.samples = static_cast<long>(data.rows());
    if (data.rows() == 0) return e;
    batch_buffer buffer(data);
    double loss_sum = 0;
    long correct = 0;
    std::vector<float> out;
    const std::size_t chunk = static_cast<std::size_t>(std::max(1L, options_.eval_batch));
    // with several ranks, each evaluates its contiguous part of the rows and the sums are reduced
    const std::size_t ranks = comm_ ? static_cast<std::size_t>(comm_->size()) : 1, rank = comm_ ? static_cast<std::size_t>(comm_->rank()) : 0;
    const std::size_t begin = data.rows() * rank / ranks, end = data.rows() * (rank + 1) / ranks;
    for (std::size_t first = begin; first < end; first += chunk) {
      const std::size_t n = std::min(chunk, end - first);
      buffer.view(first, n);
      float l = 0;
      trainer_detail::with_feeds(data, buffer, [&](std::initializer_list<feed> feeds) {
        loss_.run(static_cast<long>(n), feeds, std::span<float>(&l, 1));
        if constexpr (has_prediction) {
          out.resize(n * static_cast<std::size_t>(predict_function::out_shape.cols));
          predict_.run(static_cast<long>(n), feeds, out);
        }
        return 0;
      });
      loss_sum += static_cast<double>(l) * static_cast<double>(n);
      if constexpr (has_prediction) correct += count_correct(data, first, n, out);
    }
    if (comm_) {
      double sums[2] = {loss_sum, static_cast<double>(correct)};
      comm_->all_reduce_sum(std::span<double>(sums, 2));
      loss_sum = sums[0];
      correct = static_cast<long>(sums[1]);
    }
    e.loss = loss_sum / static_cast<double>(data.rows());
    if constexpr (has_prediction) e.accuracy = static_cast<double>(correct) / static_cast<double>(data.rows());
    return e;
  }

  // Writes log.csv and curves.svg into options.out_dir (done after every epoch by fit).
  void write_outputs() const {
    if (options_.out_dir.empty() || (comm_ && !comm_->is_root())) return;
    io::write_file_atomic(options_.out_dir + "/log.csv", log_csv(history_));
    plot::render_training_curves(curves_of(history_), options_.title).save(options_.out_dir + "/curves.svg");
  }
  std::string checkpoint_path() const {
    return options_.out_dir.empty() ? std::string() : options_.out_dir + "/" + options_.checkpoint_name;
  }

 private:
  std::uint64_t shuffle_seed() const { return options_.seed ^ 0x9e3779b97f4a7c15ull; }  // a stream apart from init

  // Correct predictions among rows [first, first + n): argmax against a class label (or a one-hot / soft target
  // row); for a single output column, the output above the threshold (0 for logits, ½ for probabilities)
  // against a target above ½.
  long count_correct(const table& data, std::size_t first, std::size_t n, const std::vector<float>& out) const {
    const graph& pg = predict_function::G;
    const graph& lg = step_type::step_graph();
    const column* target = nullptr;
    for (const column& c : data.columns())
      if (!target && trainer_detail::reads_input(lg, c.name) && !trainer_detail::reads_input(pg, c.name)) target = &c;
    if (!target) throw error("trainer: cannot measure accuracy: no column feeds the loss but not the prediction");
    constexpr int classes = predict_function::out_shape.cols;
    constexpr double threshold = decltype(Predict{}())::kind == value_kind::logits ? 0.0 : 0.5;
    auto argmax = [](const float* v, std::size_t m) {
      std::size_t best = 0;
      for (std::size_t j = 1; j < m; ++j)
        if (v[j] > v[best]) best = j;
      return static_cast<long>(best);
    };
    long correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float* o = out.data() + i * classes;
      const std::size_t row = first + i;
      long predicted, actual;
      if (classes == 1) {
        predicted = o[0] > threshold;
        actual = target->holds_labels ? target->labels[row] : target->values[row * target->width] > 0.5f;
      } else {
        predicted = argmax(o, classes);
        actual = target->holds_labels ? target->labels[row] : argmax(target->values.data() + row * target->width, target->width);
      }
      correct += predicted == actual;
    }
    return correct;
  }

  std::string epoch_line(const epoch_record& r, int last_epoch) const {
    char head[96];
    const int digits = static_cast<int>(std::to_string(last_epoch).size());
    std::snprintf(head, sizeof head, "epoch %*d/%d", digits, r.epoch, last_epoch);
    char tail[96];
    std::snprintf(tail, sizeof tail, "  (%ld iterations, %.2f s)", r.iterations, r.seconds);
    return head + trainer_detail::metric("train loss", r.train_loss) + trainer_detail::metric("val loss", r.val_loss) +
           trainer_detail::metric("val accuracy", r.val_accuracy) + tail;
  }

  void save_checkpoint_file() {
    if (options_.out_dir.empty()) return;
    held_elsewhere others;  // a sharded optimizer state's shares that rank 0 does not hold: every rank takes part
    if constexpr (requires { step_.shards(); })
      if (step_.shards()) {
        const graph& g = step_type::step_graph();
        for (int l = 0; l < g.num_leaves; ++l)
          if (g.leaves[l].kind == leaf_kind::state && step_.shards()->sharded(l)) {
            const std::string name(g.leaves[l].name.view());
            std::vector<float> v = step_.gather(name);  // a broadcast from the rank that holds it
            if (!step_.holds(name)) others.emplace(name, std::move(v));
          }
      }
    if (comm_ && !comm_->is_root()) return;
    std::map<std::string, std::string> metadata{{"kiln.epoch", std::to_string(last_good_epoch_)}};
    if (scheduler_) metadata[scheduler_key] = scheduler_->state_text();
    else if (resumed_scheduler_) metadata[scheduler_key] = *resumed_scheduler_;  // (rewritten before fit makes one)
    save_checkpoint(step_, checkpoint_path(), metadata, others);
  }

  std::string last_good_text() const {
    const std::string when = last_good_epoch_ == 0 ? "the initial parameters" : "the end of epoch " + std::to_string(last_good_epoch_);
    if (options_.out_dir.empty()) return "the last good parameters (" + when + ") are kept in memory only (no out_dir)";
    return "the last good checkpoint is '" + checkpoint_path() + "' (" + when + ")";
  }

  template <class Runner>
  [[noreturn]] void stop_nonfinite(Runner& runner, progress& bar, const table& train, const batch_buffer& buffer, int epoch,
                                   long step, float loss) {
    nonfinite_origin origin;
    if (options_.debug_nonfinite) {
      unfused_step_type unfused(step_.optimizer());
      before_step_.restore(unfused);
      origin = trainer_detail::with_feeds(train, buffer, [&](std::initializer_list<feed> feeds) {
        return trace_nonfinite(unfused, buffer.size(), feeds);
      });
    }
    last_good_.restore(step_);
    runner.to_device();
    std::string what = "kiln: training stopped: the loss is " + std::to_string(loss) + " at epoch " +
                       std::to_string(epoch) + ", step " + std::to_string(step) + " (iteration " +
                       std::to_string(iteration_) + "); " + last_good_text() + ", and the step holds those parameters again.";
    what += options_.debug_nonfinite ? "\n  first non-finite value: " + origin.description
                                     : "\n  (set options.debug_nonfinite to re-run the step unfused and find the first non-finite node)";
    bar.message("");
    nonfinite_loss e(what);
    e.epoch = epoch;
    e.step = step;
    e.iteration = iteration_;
    e.loss = loss;
    e.checkpoint = checkpoint_path();
    e.origin = origin;
    throw e;
  }

  template <class Runner>
  void check_parameters_finite(Runner& runner, progress& bar, int epoch) {
    const graph& g = step_type::step_graph();
    for (int l = 0; l < g.num_leaves; ++l)
      if (g.leaves[l].kind == leaf_kind::param && !trainer_detail::all_finite(step_.param(g.leaves[l].name.view()))) {
        const std::string name(g.leaves[l].name.view());
        last_good_.restore(step_);
        runner.to_device();
        bar.message("");
        nonfinite_loss e("kiln: training stopped: parameter '" + name + "' is not finite after epoch " +
                         std::to_string(epoch) + " although every batch loss was; " + last_good_text() +
                         ", and the step holds those parameters again.");
        e.epoch = epoch;
        e.checkpoint = checkpoint_path();
        throw e;
      }
  }

  options options_;
  step_type step_;
  typename Backend::template function<Model> loss_;
  predict_function predict_;
  std::vector<epoch_record> history_;
  snapshot last_good_, before_step_;
  int last_good_epoch_ = 0;
  long iteration_ = 0;
  int resumed_epoch_ = 0;
  double base_lr_ = 0;  // the optimizer's lr as constructed: a schedule's base
  std::optional<lr_scheduler> scheduler_;
  std::optional<std::string> resumed_scheduler_;  // the state a resumed checkpoint held (lr_scheduler::state_text)
  static constexpr const char* scheduler_key = "kiln.lr_scheduler";
  dist::communicator* comm_ = nullptr;
  std::vector<std::size_t> share_;  // this rank's rows of the current batch
};

}  // namespace kiln::train
