#pragma once
// kiln::cuda::train_step<Model, Optimizer, Mode>: the CUDA counterpart of kiln::cpu::train_step. The same
// constexpr plan, rendered as CUDA C++ (render.hpp), compiled by NVRTC through the kernel cache, launched on
// the device. Parameters, their gradients and the optimizer state live in device memory across steps; a
// batch goes up once per run() (or stays on the device: run_on_device); parameters are read and written by
// name on demand. Semantics are the CPU backend's: every materialized node has a buffer (a fused rows kernel
// keeps some in shared memory instead), optimizer outputs are written in place into their parameter / state
// leaf, hyperparameters are run-time scalars refreshed before every step, labels are float class indices.
//
//   kiln::cuda::train_step<decltype(model), kiln::adam> step({.lr = 1e-3});   // throws backend_unavailable
//   float loss = step.run(batch, {{"x", xs}, {"y", labels}});                  // without a usable GPU
//
// KILN_DUMP_DIR=dir writes every generated kernel as <model>-<mode>.<kernel>.cu (each compiles on its own
// with nvcc) and the printed plan as <model>-<mode>.plan.txt.
#include <kiln/core/hash.hpp>
#include <kiln/core/philox.hpp>
#include <kiln/cuda/device.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/train/feed.hpp>
#include <kiln/train/init.hpp>
#include <kiln/train/step_graph.hpp>

#include <cstdlib>
#include <initializer_list>
#include <random>
#include <span>
#include <string_view>
#include <utility>

namespace kiln::cuda {

struct step_options {
  std::shared_ptr<device> on;  // null: the CUDA device of runtime::open()
  render_options render{.shared_bytes = 0};  // shared_bytes 0: the device's opt-in maximum
  std::string name;            // names dumped files; empty: from the Model type
};

// A batch already in device memory (labels as float class indices), by leaf name.
struct device_feed {
  std::string_view name;
  cu_deviceptr data = 0;
};

namespace detail {

// "ce_model_relu_fn" from the type's name as the compiler prints it: namespaces dropped, anything that is not
// a letter or digit made '_'.
template <class T>
std::string type_label() {
  std::string f = __PRETTY_FUNCTION__;
  const std::size_t at = f.find("T = ");
  std::string t = at == std::string::npos ? f : f.substr(at + 4);
  if (const std::size_t end = t.find_first_of(";]"); end != std::string::npos) t.resize(end);
  for (const char* drop : {"(anonymous namespace)::", "{anonymous}::", "kiln::"})
    for (std::size_t p; (p = t.find(drop)) != std::string::npos;) t.erase(p, std::string_view(drop).size());
  std::string out;
  for (char c : t) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (word) out.push_back(c);
    else if (!out.empty() && out.back() != '_') out.push_back('_');
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.size() > 80) out = out.substr(0, 64) + "_" + std::to_string(fnv1a64(out) % 1000000);
  return out.empty() ? "model" : out;
}

// Device memory freed with its owner.
class allocation {
 public:
  allocation() = default;
  allocation(device& d, std::size_t bytes) : dev_(&d), bytes_(bytes), ptr_(d.allocate(bytes)) {}
  ~allocation() { reset(); }
  allocation(allocation&& o) noexcept : dev_(o.dev_), bytes_(std::exchange(o.bytes_, 0)), ptr_(std::exchange(o.ptr_, 0)) {}
  allocation& operator=(allocation&& o) noexcept {
    if (this != &o) {
      reset();
      dev_ = o.dev_;
      bytes_ = std::exchange(o.bytes_, 0);
      ptr_ = std::exchange(o.ptr_, 0);
    }
    return *this;
  }
  void reset() {
    if (ptr_) dev_->release(ptr_);
    ptr_ = 0;
    bytes_ = 0;
  }
  cu_deviceptr ptr() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

 private:
  device* dev_ = nullptr;
  std::size_t bytes_ = 0;
  cu_deviceptr ptr_ = 0;
};

// The kernels' kiln_hypers (render/prelude.hpp), byte for byte.
struct host_hypers {
  float v[max_hypers] = {};
  std::uint32_t rng[4] = {};
};

}  // namespace detail

// Everything a compiled step does at run time, for any plan: one copy of this code serves every model.
class step_runtime {
 public:
  // Renders `p`, dumps it when KILN_DUMP_DIR is set, loads the module on the device (compiling through the
  // kernel cache) and initializes parameters and state as the CPU backend does for the same seed.
  step_runtime(const plan& p, std::string name, std::uint64_t seed, step_options options)
      : P_(p), G_(p.g), dev_(options.on ? options.on : std::make_shared<cuda_device>()), name_(std::move(name)) {
    render_options ro = options.render;
    if (ro.precision != matmul_precision::fp32 && dev_->arch() != 0 && dev_->arch() < 80)
      throw backend_unavailable(std::string("kiln cuda: ") + (ro.precision == matmul_precision::tf32 ? "TF32" : "BF16") +
                                " tensor-core products (render_options::precision) need sm_80 or newer; " +
                                dev_->describe() + " is sm_" + std::to_string(dev_->arch()));
    if (ro.shared_bytes <= 0 || ro.shared_bytes > dev_->max_shared_bytes()) ro.shared_bytes = dev_->max_shared_bytes();
    threads_ = ro.threads;
    program_ = render(P_, ro);
    dump();
    std::vector<kernel_entry> entries;
    for (const launch_spec& l : program_.launches) entries.push_back({l.name, static_cast<int>(l.buffers.size())});
    module_ = dev_->load(program_.module_source(), entries);
    std::mt19937_64 rng(seed);
    for (int l = 0; l < G_.num_leaves; ++l) {
      const leaf_info& info = G_.leaves[l];
      if (info.kind != leaf_kind::param && info.kind != leaf_kind::state) continue;
      std::vector<float> host(leaf_floats(l));
      initialize(info, host, rng);
      leaf_memory_[l] = detail::allocation(*dev_, host.size() * sizeof(float));
      dev_->upload(leaf_memory_[l].ptr(), host.data(), host.size() * sizeof(float));
      leaf_ptr_[l] = leaf_memory_[l].ptr();
    }
  }
  step_runtime(const step_runtime&) = delete;
  step_runtime& operator=(const step_runtime&) = delete;

  // Checks (bind_checked_feeds) and uploads each input; labels go through a host staging buffer.
  void upload_feeds(long batch_size, std::initializer_list<feed> feeds) {
    check_batch(batch_size);
    bind_checked_feeds(
        G_, batch_size, feeds,
        [&](int, std::size_t count) {
          staging_.resize(count);
          return staging_.data();
        },
        [&](int leaf, const float* data, std::size_t count) {
          const std::size_t bytes = count * sizeof(float);
          dev_->upload(input_buffer(leaf, bytes), data, bytes);
        });
  }

  // Binds inputs to data already in device memory.
  void bind_device_feeds(std::initializer_list<device_feed> feeds) {
    for (int l = 0; l < G_.num_leaves; ++l) {
      const leaf_info& info = G_.leaves[l];
      if (info.kind != leaf_kind::input && info.kind != leaf_kind::labels) continue;
      const device_feed* f = find_feed(feeds, info.name.view());
      if (!f || !f->data) throw error("kiln cuda: no device data given for input '" + std::string(info.name.view()) + "'");
      leaf_ptr_[l] = f->data;
    }
  }

  // Launches every kernel of the step for this batch (no synchronization).
  void launch(long batch_size, const float* hypers, const random::key& rng = {}) {
    check_batch(batch_size);
    prepare(batch_size);
    detail::host_hypers h;
    for (int i = 0; i < max_hypers; ++i) h.v[i] = hypers[i];
    if (rng.row_first != 0 || rng.row_stride != 1)  // the kernels draw at their own rows (data-parallel is CPU-only)
      throw error("kiln::cuda: a random key placing the batch in a larger one (row_first " + std::to_string(rng.row_first) +
                  ", row_stride " + std::to_string(rng.row_stride) + ") is not supported on the GPU");
    h.rng[0] = static_cast<std::uint32_t>(rng.seed);
    h.rng[1] = static_cast<std::uint32_t>(rng.seed >> 32);
    h.rng[2] = static_cast<std::uint32_t>(rng.step);
    h.rng[3] = static_cast<std::uint32_t>(rng.step >> 32);
    long long batch_arg = batch_size;
    cu_deviceptr ws = arena_.ptr() + ws_offset_ * sizeof(float), tickets = tickets_.ptr();
    std::vector<cu_deviceptr> buffers;
    std::vector<void*> args;
    for (std::size_t i = 0; i < program_.launches.size(); ++i) {
      const launch_spec& l = program_.launches[i];
      const launch_geometry& g = geometry_[i];
      int ws_blocks = g.ws_blocks;
      buffers.clear();
      for (int b : l.buffers) buffers.push_back(buffer_address(b));
      args = {&batch_arg, &h, &ws, &tickets, &ws_blocks};
      for (cu_deviceptr& p : buffers) args.push_back(&p);
      module_->launch(i, g.grid, g.block, g.shared_bytes, args.data());
    }
  }

  // The loss of the last step (output 0), copied from the device.
  float loss() {
    float l = 0;
    dev_->download(&l, buffer_address(buffer_of(P_, G_.outputs[0].node)), sizeof l);
    return l;
  }

  std::vector<float> param(std::string_view name) {
    const int l = leaf_index(name);
    std::vector<float> host(leaf_floats(l));
    dev_->download(host.data(), leaf_ptr_[l], host.size() * sizeof(float));
    return host;
  }
  void set_param(std::string_view name, std::span<const float> values) {
    const int l = leaf_index(name);
    if (values.size() != leaf_floats(l))
      throw shape_error("kiln cuda: '" + std::string(name) + "' holds " + std::to_string(leaf_floats(l)) +
                        " values, " + std::to_string(values.size()) + " were given");
    dev_->upload(leaf_ptr_[l], values.data(), values.size_bytes());
  }
  int leaf_index(std::string_view name) const {
    for (int l = 0; l < G_.num_leaves; ++l)
      if (G_.leaves[l].name.view() == name &&
          (G_.leaves[l].kind == leaf_kind::param || G_.leaves[l].kind == leaf_kind::state))
        return l;
    throw error("kiln: no parameter or optimizer state named '" + std::string(name) + "'");
  }

  const rendered_program& program() const { return program_; }
  const module_report& compile_report() const { return module_->report(); }
  const std::string& name() const { return name_; }
  device& on() { return *dev_; }

 private:
  static void check_batch(long batch_size) {
    if (batch_size < 1) throw shape_error("batch size must be at least 1, got " + std::to_string(batch_size));
  }
  std::size_t leaf_floats(int l) const {
    return static_cast<std::size_t>(G_.leaves[l].shape.rows) * static_cast<std::size_t>(G_.leaves[l].shape.cols);
  }
  // The step's own buffer for input leaf l, grown to `bytes`.
  cu_deviceptr input_buffer(int l, std::size_t bytes) {
    if (leaf_memory_[l].bytes() < bytes) leaf_memory_[l] = detail::allocation(*dev_, bytes);
    return leaf_ptr_[l] = leaf_memory_[l].ptr();
  }

  void dump() const {
    const char* dir = std::getenv("KILN_DUMP_DIR");
    if (!dir || !*dir) return;
    const std::string stem = std::string(dir) + "/" + name_ + "-" + (P_.mode == fusion::fused ? "fused" : "unfused");
    io::make_dirs(dir);
    std::string plan = to_string(P_);
    if (!program_.note.empty()) plan += "cuda: " + program_.note + "\n";
    if (program_.whole_step) plan += "cuda: whole-step lowering, tiles of " + std::to_string(program_.tile_rows) + " rows\n";
    io::write_file_atomic(stem + ".plan.txt", plan);
    for (std::size_t i = 0; i < program_.launches.size(); ++i)
      io::write_file_atomic(stem + "." + program_.launches[i].name + ".cu", program_.kernel_file(i));
  }

  // Lays out node buffers and the workspace for this batch size; memory grows only when the batch grows.
  void prepare(long batch_size) {
    if (batch_size == prepared_batch_) return;
    geometry_ = program_geometry(program_, batch_size, dev_->multiprocessors(), threads_, dev_->max_shared_bytes());
    std::set<int> nodes;
    for (const launch_spec& l : program_.launches)
      for (int b : l.buffers)
        if (!is_leaf_buffer(b)) nodes.insert(b);
    nodes.insert(buffer_of(P_, G_.outputs[0].node));
    std::size_t total = 0;
    for (int b : nodes) {
      const dims s = P_.at(node_of_buffer(b)).shape;
      node_offset_[node_of_buffer(b)] = total;
      total += static_cast<std::size_t>((resolve_dim(s.rows, batch_size) * resolve_dim(s.cols, batch_size) + 63) / 64 * 64);
    }
    long long ws = 0;
    unsigned tickets = 0;
    for (const launch_geometry& g : geometry_) {
      ws = std::max(ws, g.ws_floats);
      tickets = std::max(tickets, g.tickets);
    }
    ws_offset_ = total;
    total += static_cast<std::size_t>(ws) + 64;
    if (arena_.bytes() < total * sizeof(float)) arena_ = detail::allocation(*dev_, total * sizeof(float));
    if (tickets_.bytes() < (tickets + 1) * sizeof(unsigned)) {
      tickets_ = detail::allocation(*dev_, (tickets + 1) * sizeof(unsigned));
      dev_->zero(tickets_.ptr(), tickets_.bytes());
    }
    prepared_batch_ = batch_size;
  }

  cu_deviceptr buffer_address(int b) const {
    if (is_leaf_buffer(b)) return leaf_ptr_[b];
    return arena_.ptr() + node_offset_[node_of_buffer(b)] * sizeof(float);
  }

  const plan& P_;
  const graph& G_;
  std::shared_ptr<device> dev_;
  std::string name_;
  int threads_ = 256;
  rendered_program program_;
  std::unique_ptr<device_module> module_;
  std::vector<detail::allocation> leaf_memory_ = std::vector<detail::allocation>(G_.num_leaves);
  std::vector<cu_deviceptr> leaf_ptr_ = std::vector<cu_deviceptr>(G_.num_leaves, cu_deviceptr{});
  detail::allocation arena_, tickets_;
  std::vector<std::size_t> node_offset_ = std::vector<std::size_t>(G_.size, 0);
  std::size_t ws_offset_ = 0;
  long prepared_batch_ = 0;
  std::vector<launch_geometry> geometry_;
  std::vector<float> staging_;
};

template <class Model, class Optimizer, fusion Mode = fusion::fused>
class train_step {
 public:
  using optimizer_type = Optimizer;
  using graph_holder = kiln::step_graph<Model, Optimizer>;
  using plan_holder = frozen_plan<graph_holder, Mode>;
  static constexpr const graph& G = graph_holder::value;
  static constexpr const kiln::plan& P = plan_holder::value;
  static_assert(Optimizer::num_hypers <= max_hypers, "kiln cuda: the optimizer has more hyperparameters than kiln_hypers holds");

  // Compiles (or loads from the kernel cache) and initializes the parameters as the CPU backend does for the
  // same seed. Throws backend_unavailable, with runtime::open()'s reason, when CUDA cannot run here.
  explicit train_step(Optimizer opt = {}, std::uint64_t seed = 0, step_options options = {})
      : rt_(P, options.name.empty() ? detail::type_label<Model>() : options.name, seed, std::move(options)), opt_(opt), seed_(seed) {}

  // One training step on a batch uploaded from the host; returns the loss before the update (synchronizes).
  float run(long batch_size, std::initializer_list<feed> feeds) {
    rt_.upload_feeds(batch_size, feeds);
    launch(batch_size);
    return rt_.loss();
  }
  // One step on data already in device memory: no copy, no synchronization (read loss() when needed).
  void run_on_device(long batch_size, std::initializer_list<device_feed> feeds) {
    rt_.bind_device_feeds(feeds);
    launch(batch_size);
  }
  float loss() { return rt_.loss(); }

  // Parameters and optimizer state by name (PyTorch names: fc1.weight, fc1.weight.exp_avg, …), row-major.
  std::vector<float> param(std::string_view name) { return rt_.param(name); }
  void set_param(std::string_view name, std::span<const float> values) { rt_.set_param(name, values); }
  int leaf_index(std::string_view name) const { return rt_.leaf_index(name); }

  static const graph& step_graph() { return G; }
  static const kiln::plan& compiled_plan() { return P; }
  static std::string plan_text() { return to_string(P); }
  std::string source() const { return rt_.program().module_source(); }
  const rendered_program& program() const { return rt_.program(); }
  std::size_t launches_per_step() const { return rt_.program().launches.size(); }
  const module_report& compile_report() const { return rt_.compile_report(); }
  const std::string& name() const { return rt_.name(); }
  device& on() { return rt_.on(); }
  Optimizer& optimizer() { return opt_; }
  long step_count() const { return t_; }
  void set_step_count(long t) { t_ = t; }
  // The key of the last step's random draws (dropout): {seed, step count}, as the CPU step's.
  random::key random_key() const { return {seed_, static_cast<std::uint64_t>(t_)}; }
  std::uint64_t seed() const { return seed_; }

 private:
  void launch(long batch_size) {
    if (batch_size < 1) throw shape_error("batch size must be at least 1, got " + std::to_string(batch_size));
    ++t_;
    double h[max_hypers] = {};
    opt_.hypers(t_, h);
    float hf[max_hypers] = {};
    for (int i = 0; i < Optimizer::num_hypers; ++i) hf[i] = static_cast<float>(h[i]);
    rt_.launch(batch_size, hf, random_key());
  }

  step_runtime rt_;
  Optimizer opt_;
  std::uint64_t seed_ = 0;
  long t_ = 0;
};

}  // namespace kiln::cuda
