#pragma once
// Checkpoints: a step's parameters and optimizer state in a safetensors file, with PyTorch's names and
// shapes (fc1.weight [128, 784], fc1.bias [128], fc1.weight.exp_avg [128, 784], prelu1.weight [1]), dtype F32,
// and the step count in __metadata__ ("kiln.step_count"). Written atomically and durably (io/atomic_file.hpp).
//
// Loading checks the whole file against the step before changing anything: every parameter present with the
// step's shape and dtype F32; optimizer state all present or all absent (absent: a weights-only file such as
// a PyTorch state_dict; the state is then reset to zeros and the step count to 0); no tensor the step does
// not have; every value finite (NaN or inf weights are refused, naming the tensor and how many, unless
// load_options::allow_non_finite, which loads them and warns). Every mismatch is a kiln::format_error naming the
// file, the tensor and both shapes or dtypes.
//
// `snapshot` holds the same values in memory (the trainer's last good state).
#include <kiln/core/error.hpp>
#include <kiln/io/safetensors.hpp>
#include <kiln/ir/graph.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::train {

inline constexpr const char* step_count_key = "kiln.step_count";

inline bool is_stored(const leaf_info& l) { return l.kind == leaf_kind::param || l.kind == leaf_kind::state; }

// PyTorch's shape of a leaf from its declared rank: 2 → [rows, cols], 1 → [cols], 0 → [] (a scalar); 3 or 4:
// its torch_dims (a conv weight).
inline std::vector<std::int64_t> torch_shape(const leaf_info& l) {
  if (l.rank > 2) return std::vector<std::int64_t>(l.torch_dims, l.torch_dims + l.rank);
  if (l.rank == 0) return {};
  if (l.rank == 1) return {l.shape.cols};
  return {l.shape.rows, l.shape.cols};
}

// Whether `step` holds all the values of parameter or state `name`: a step whose optimizer state is sharded over
// data-parallel ranks (ZeRO-1) holds only its rows of the state.
template <class Step>
bool holds(const Step& step, std::string_view name) {
  if constexpr (requires { step.holds(name); }) return step.holds(name);
  else return true;
}
// The values of `name` that `step` holds (all of them, or a sharded state's rows), and where they start in the
// whole (row-major, in values).
template <class Step>
auto held_part(Step& step, std::string_view name) {
  if constexpr (requires { step.held_part(name); }) return step.held_part(name);
  else return step.param(name);
}
template <class Step>
std::size_t held_offset(const Step& step, std::string_view name) {
  if constexpr (requires { step.held_offset(name); }) return step.held_offset(name);
  else return 0;
}

// Values of a step's leaves held elsewhere (another rank's share of a sharded optimizer state), by name.
using held_elsewhere = std::map<std::string, std::vector<float>, std::less<>>;

// The tensors a checkpoint of `step` holds, by name; what the step does not hold comes from `others`.
template <class Step>
std::map<std::string, io::tensor> checkpoint_tensors(const Step& step, const held_elsewhere& others = {}) {
  const graph& g = Step::step_graph();
  std::map<std::string, io::tensor> out;
  for (int l = 0; l < g.num_leaves; ++l)
    if (is_stored(g.leaves[l])) {
      const std::string name(g.leaves[l].name.view());
      if (holds(step, name)) {
        out.emplace(name, io::make_f32(torch_shape(g.leaves[l]), step.param(name)));
      } else if (const auto it = others.find(name); it != others.end()) {
        out.emplace(name, io::make_f32(torch_shape(g.leaves[l]), it->second));
      } else {
        throw error("kiln: a checkpoint of a sharded step needs '" + name + "', which another rank holds");
      }
    }
  return out;
}

template <class Step>
void save_checkpoint(const Step& step, const std::string& path, std::map<std::string, std::string> metadata = {},
                     const held_elsewhere& others = {}) {
  metadata[step_count_key] = std::to_string(step.step_count());
  io::write_safetensors(path, checkpoint_tensors(step, others), metadata);
}

struct load_options {
  // NaN or inf in a checkpoint means the run that wrote it had already diverged; training from it only
  // spreads them. true loads such a file anyway (to inspect it), with a warning per tensor.
  bool allow_non_finite = false;
};

struct load_result {
  bool optimizer_state = false;  // the file held the optimizer state (else it was reset to zeros)
  long step_count = 0;
  std::vector<std::string> warnings;  // one per tensor with non-finite values (when allowed); also on stderr
};

namespace checkpoint_detail {

inline std::string names_of(const graph& g, leaf_kind kind) {
  std::string s;
  for (int l = 0; l < g.num_leaves; ++l)
    if (g.leaves[l].kind == kind) s += (s.empty() ? "" : ", ") + std::string(g.leaves[l].name.view());
  return s.empty() ? "none" : s;
}

inline long parse_step_count(const std::map<std::string, std::string>& meta, const std::string& where) {
  const auto it = meta.find(step_count_key);
  if (it == meta.end()) return 0;
  long t = -1;
  const std::string& s = it->second;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), t);
  if (ec != std::errc{} || end != s.data() + s.size() || t < 0)
    throw format_error(where + ": __metadata__ " + step_count_key + " is '" + s + "', expected a non-negative integer");
  return t;
}

// How many of an F32 tensor's values are NaN or inf (read in place: nothing is converted yet).
inline std::size_t count_non_finite(const io::tensor& t) {
  std::size_t n = 0;
  for (std::size_t i = 0; i + 4 <= t.bytes.size(); i += 4) {
    std::uint32_t bits = 0;
    for (std::size_t k = 4; k-- > 0;) bits = (bits << 8) | static_cast<std::uint32_t>(t.bytes[i + k]);
    n += (bits & 0x7F800000u) == 0x7F800000u;  // exponent all ones: inf or NaN (the file is little-endian)
  }
  return n;
}

// Checks tensor `name` of a file against what `who` (the step, the function) expects: dtype F32, the expected
// shape, finite values (unless allowed: then a warning is added).
inline void check_tensor(const std::string& where, std::string_view who, const std::string& name,
                         const std::vector<std::int64_t>& expected, const io::tensor& t, const load_options& options,
                         std::vector<std::string>& warnings) {
  using io::safetensors_detail::shape_text;
  if (t.dtype != "F32")
    throw format_error(where + ": tensor '" + name + "' has dtype " + t.dtype + ", " + std::string(who) + " expects F32");
  if (t.shape != expected)
    throw format_error(where + ": tensor '" + name + "' has shape " + shape_text(t.shape) + ", " + std::string(who) +
                       " expects " + shape_text(expected));
  if (const std::size_t bad = count_non_finite(t); bad != 0) {
    const std::string msg = where + ": tensor '" + name + "' holds " + std::to_string(bad) + " non-finite value" +
                            (bad == 1 ? "" : "s") + " (NaN or inf) of " + std::to_string(t.element_count());
    if (!options.allow_non_finite) throw format_error(msg + "; load_options{.allow_non_finite = true} loads it anyway");
    warnings.push_back(msg);
  }
}

inline bool stores_name(const graph& g, std::string_view name) {
  for (int l = 0; l < g.num_leaves; ++l)
    if (is_stored(g.leaves[l]) && g.leaves[l].name.view() == name) return true;
  return false;
}

// Whether tensor `name` of a file is something a forward graph g does not read and may be left out: a training
// checkpoint's optimizer state of one of g's parameters (fc1.weight.exp_avg: the parameter's name, a dot, a
// suffix), or a batch-norm step counter (bn1.num_batches_tracked, PyTorch's and kiln's, next to a
// bn1.running_mean that g reads; evaluation uses only the running statistics).
inline bool unused_by_forward(const graph& g, std::string_view name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view stem = name.substr(0, dot), last = name.substr(dot + 1);
  if (last == "num_batches_tracked") return stores_name(g, std::string(stem) + ".running_mean");
  for (std::size_t d = name.find('.'); d != std::string_view::npos; d = name.find('.', d + 1))
    if (stores_name(g, name.substr(0, d))) return true;
  return false;
}

}  // namespace checkpoint_detail

// Loads the parameters and state (batch norm's running statistics) that forward graph g reads from parsed
// safetensors content: into(leaf) is the leaf's storage (a span of its element count). The file may be a kiln
// checkpoint of the training step (its optimizer state is skipped) or a PyTorch state_dict saved as
// safetensors (num_batches_tracked skipped); any other tensor, a missing one, a wrong shape or dtype, or a
// non-finite value (unless allowed) is a format_error naming the file and the tensor, thrown before anything
// is copied. `name` (the file) is used in messages.
template <class Into>
load_result load_forward_parameters(const graph& g, const io::safetensors_content& content, const std::string& name,
                                    Into&& into, const load_options& options = {}) {
  using io::safetensors_detail::shape_text;
  const std::string where = "parameters " + io::quote_text(name);
  for (const auto& entry : content.tensors) {
    const std::string& tname = entry.first;
    if (!checkpoint_detail::stores_name(g, tname) && !checkpoint_detail::unused_by_forward(g, tname))
      throw format_error(where + ": tensor " + io::quote_text(tname) + " is not a parameter of this model (parameters: " +
                         checkpoint_detail::names_of(g, leaf_kind::param) + ")");
  }
  load_result result;
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    if (!is_stored(info)) continue;
    const std::string lname(info.name.view());
    const auto it = content.tensors.find(lname);
    if (it == content.tensors.end())
      throw format_error(where + ": " + (info.kind == leaf_kind::state ? "state" : "parameter") + " '" + lname + "' " +
                         shape_text(torch_shape(info)) + " is missing");
    checkpoint_detail::check_tensor(where, "the model", lname, torch_shape(info), it->second, options, result.warnings);
  }
  for (int l = 0; l < g.num_leaves; ++l) {  // everything checked: now copy
    const leaf_info& info = g.leaves[l];
    if (!is_stored(info)) continue;
    const std::string lname(info.name.view());
    const std::vector<float> v = io::values_f32(content.tensors.at(lname), where + ": tensor '" + lname + "'");
    std::span<float> dst = into(l);
    std::copy(v.begin(), v.end(), dst.begin());
  }
  for (const auto& w : result.warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  return result;
}

// Loads parsed safetensors content into the step; `name` (the file) is used in messages.
template <class Step>
load_result load_checkpoint_content(Step& step, const io::safetensors_content& content, const std::string& name,
                                    const load_options& options = {}) {
  using io::safetensors_detail::shape_text;
  const graph& g = Step::step_graph();
  const std::string where = "checkpoint " + io::quote_text(name);
  for (const auto& [tname, t] : content.tensors) {
    bool known = false;
    for (int l = 0; l < g.num_leaves; ++l) known = known || (is_stored(g.leaves[l]) && g.leaves[l].name.view() == tname);
    if (!known)
      throw format_error(where + ": tensor " + io::quote_text(tname) +
                         " is not a parameter or optimizer state of this step (parameters: " +
                         checkpoint_detail::names_of(g, leaf_kind::param) + ")");
  }
  load_result result;
  int state_present = 0, state_total = 0;
  std::string first_missing_state;
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    if (!is_stored(info)) continue;
    const std::string lname(info.name.view());
    const auto expected = torch_shape(info);
    const auto it = content.tensors.find(lname);
    if (info.kind == leaf_kind::state) {
      ++state_total;
      if (it == content.tensors.end()) {
        if (first_missing_state.empty()) first_missing_state = lname;
        continue;
      }
      ++state_present;
    } else if (it == content.tensors.end()) {
      throw format_error(where + ": parameter '" + lname + "' " + shape_text(expected) + " is missing");
    }
    checkpoint_detail::check_tensor(where, "the step", lname, expected, it->second, options, result.warnings);
  }
  if (state_present != 0 && state_present != state_total)
    throw format_error(where + ": holds " + std::to_string(state_present) + " of the optimizer's " +
                       std::to_string(state_total) + " state tensors; '" + first_missing_state +
                       "' is missing (a checkpoint holds all of the optimizer state or none)");
  const long t = state_present ? checkpoint_detail::parse_step_count(content.metadata, where) : 0;

  // everything checked: now copy
  for (int l = 0; l < g.num_leaves; ++l) {
    const leaf_info& info = g.leaves[l];
    if (!is_stored(info)) continue;
    const std::string lname(info.name.view());
    auto dst = held_part(step, lname);  // (a sharded optimizer state: this rank's rows; the other ranks load theirs)
    const auto it = content.tensors.find(lname);
    if (it == content.tensors.end()) {
      std::fill(dst.begin(), dst.end(), 0.0f);
      continue;
    }
    const std::vector<float> v = io::values_f32(it->second, where + ": tensor '" + lname + "'");
    const auto from = v.begin() + static_cast<std::ptrdiff_t>(held_offset(step, lname));
    std::copy(from, from + static_cast<std::ptrdiff_t>(dst.size()), dst.begin());
  }
  step.set_step_count(t);
  for (const auto& w : result.warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  result.optimizer_state = state_present != 0;
  result.step_count = t;
  return result;
}

template <class Step>
load_result load_checkpoint(Step& step, const std::string& path, const load_options& options = {}) {
  return load_checkpoint_content(step, io::read_safetensors_content(path), path, options);
}

// Parameters, optimizer state and step count held in memory, copied by name (so a snapshot of a fused step
// restores into the unfused step of the same model).
struct snapshot {
  std::map<std::string, std::vector<float>> values;
  long step_count = 0;

  template <class Step>
  static snapshot capture(const Step& step) {
    const graph& g = Step::step_graph();
    snapshot s;
    for (int l = 0; l < g.num_leaves; ++l)
      if (is_stored(g.leaves[l])) {
        const std::string name(g.leaves[l].name.view());
        const auto p = held_part(step, name);  // (a sharded optimizer state: this rank's rows)
        s.values[name].assign(p.begin(), p.end());
      }
    s.step_count = step.step_count();
    return s;
  }
  // Copies the values into an existing snapshot of the same step without allocating.
  template <class Step>
  void update_from(const Step& step) {
    for (auto& [name, v] : values) {
      const auto p = held_part(step, name);
      std::copy(p.begin(), p.end(), v.begin());
    }
    step_count = step.step_count();
  }
  template <class Step>
  void restore(Step& step) const {
    for (const auto& [name, v] : values) {
      auto p = held_part(step, name);
      if (p.size() != v.size())
        throw shape_error("snapshot: '" + name + "' holds " + std::to_string(v.size()) + " values, the step has " +
                          std::to_string(p.size()));
      std::copy(v.begin(), v.end(), p.begin());
    }
    step.set_step_count(step_count);
  }
  bool empty() const { return values.empty(); }
};

}  // namespace kiln::train
