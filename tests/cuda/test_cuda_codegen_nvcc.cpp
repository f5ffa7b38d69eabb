// KILN_DUMP_DIR: building a CUDA step writes its printed plan and every generated kernel as a .cu file named
// after the model and the kernel; each file compiles with nvcc on its own (-c --gpu-architecture sm_90).
// The nvcc part is skipped with the reason when no nvcc is found ($KILN_NVCC, /usr/local/cuda/bin/nvcc, PATH).
#include "cuda_test_support.hpp"
#include "test_cuda_codegen_common.hpp"

#include <cstdlib>
#include <filesystem>
#include <set>

using namespace kiln;
using namespace kiln_cuda_test;

namespace {

// A device that keeps memory on the host and never runs a kernel: enough to build a step (and dump it).
class no_launch_device final : public cuda::device {
 public:
  std::string describe() const override { return "no-launch test device"; }
  int multiprocessors() const override { return 132; }
  int max_shared_bytes() const override { return 232448; }
  cuda::cu_deviceptr allocate(std::size_t bytes) override {
    memory_.emplace_back(bytes / 4 + 1);
    return reinterpret_cast<cuda::cu_deviceptr>(memory_.back().data());
  }
  void release(cuda::cu_deviceptr) override {}
  void upload(cuda::cu_deviceptr dst, const void* src, std::size_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(dst), src, bytes);
  }
  void download(void* dst, cuda::cu_deviceptr src, std::size_t bytes) override {
    std::memcpy(dst, reinterpret_cast<const void*>(src), bytes);
  }
  void zero(cuda::cu_deviceptr dst, std::size_t bytes) override { std::memset(reinterpret_cast<void*>(dst), 0, bytes); }
  std::unique_ptr<cuda::device_module> load(const std::string&, const std::vector<cuda::kernel_entry>&) override {
    struct none final : cuda::device_module {
      void launch(std::size_t, cuda::dims3, cuda::dims3, unsigned, void**) override {
        throw error("no_launch_device: launches are not supported");
      }
      const cuda::module_report& report() const override { return r; }
      cuda::module_report r;
    };
    return std::make_unique<none>();
  }
  void synchronize() override {}

 private:
  std::vector<std::vector<float>> memory_;
};

struct tiny_model {  // one dense layer: the smallest unfused step
  constexpr auto operator()() const { return mse(nn::sequential(dense<3>{})(x), t); }
};

template <class Model, class Opt, fusion Mode>
cuda::rendered_program dump_step(const std::string& dir) {
  kiln_test_cuda::scoped_env dump("KILN_DUMP_DIR", dir.c_str());
  cuda::step_options so;
  so.on = std::make_shared<no_launch_device>();
  cuda::train_step<Model, Opt, Mode> step(Opt{}, 0, so);
  const std::string stem = dir + "/" + step.name() + (Mode == fusion::fused ? "-fused" : "-unfused");
  CHECK(io::read_file(stem + ".plan.txt").rfind(step.plan_text(), 0) == 0);
  for (std::size_t i = 0; i < step.program().launches.size(); ++i)
    CHECK(io::read_file(stem + "." + step.program().launches[i].name + ".cu") == step.program().kernel_file(i));
  return step.program();
}

std::string find_nvcc() {
  if (const char* env = std::getenv("KILN_NVCC"); env && *env) return env;
  if (std::filesystem::exists("/usr/local/cuda/bin/nvcc")) return "/usr/local/cuda/bin/nvcc";
  if (std::system("command -v nvcc > /dev/null 2>&1") == 0) return "nvcc";
  return {};
}

// Compiles every .cu file in dir with nvcc; each must compile without errors or warnings.
void compile_all_with_nvcc(const std::string& nvcc, const std::string& dir) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".cu") continue;
    const std::string cu = entry.path().string(), log = cu + ".log";
    const std::string command = nvcc + " -c --gpu-architecture sm_90 -o " + cu + ".o " + cu + " > " + log + " 2>&1";
    const int rc = std::system(command.c_str());
    const std::string output = io::read_file(log);
    INFO(command << "\n" << output);
    CHECK(rc == 0);
    CHECK(output.find("warning") == std::string::npos);
    ++files;
  }
  CHECK(files > 0);
  WARN(nvcc << " compiled the " << files << " dumped kernel files in " << dir << " for sm_90");
}

}  // namespace

TEST_CASE("KILN_DUMP_DIR writes the printed plan and every kernel, named after the model", "[cuda][dump]") {
  kiln_test_cuda::temp_dir dir;
  const cuda::rendered_program fused = dump_step<mse_model<relu_fn>, sgd, fusion::fused>(dir.path());
  const cuda::rendered_program unfused = dump_step<mse_model<relu_fn>, sgd, fusion::unfused>(dir.path());
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files.insert(e.path().filename().string());
  CHECK(files.count("kiln_cuda_test_mse_model_relu_fn-fused.plan.txt"));
  CHECK(files.count("kiln_cuda_test_mse_model_relu_fn-fused.fused_rows.cu"));
  CHECK(files.count("kiln_cuda_test_mse_model_relu_fn-unfused.k0_" + cuda::render(step_plan<mse_model<relu_fn>, sgd, fusion::unfused>::p).launches[0].name.substr(3) + ".cu"));
  CHECK(files.size() == 2 + fused.launches.size() + unfused.launches.size());
}

TEST_CASE("dumped fused kernels compile with nvcc on their own", "[cuda][dump][nvcc]") {
  const std::string nvcc = find_nvcc();
  if (nvcc.empty()) {
    WARN("skipped: no nvcc ($KILN_NVCC, /usr/local/cuda/bin/nvcc or PATH)");
    return;
  }
  kiln_test_cuda::temp_dir dir;
  dump_step<mse_model<relu_fn>, adam, fusion::fused>(dir.path());
  dump_step<losses_model, momentum, fusion::fused>(dir.path());
  compile_all_with_nvcc(nvcc, dir.path());
}

TEST_CASE("dumped unfused kernels compile with nvcc on their own", "[cuda][dump][nvcc]") {
  const std::string nvcc = find_nvcc();
  if (nvcc.empty()) {
    WARN("skipped: no nvcc ($KILN_NVCC, /usr/local/cuda/bin/nvcc or PATH)");
    return;
  }
  kiln_test_cuda::temp_dir dir;
  dump_step<tiny_model, sgd, fusion::unfused>(dir.path());
  compile_all_with_nvcc(nvcc, dir.path());
}
