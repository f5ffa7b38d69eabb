#pragma once
// Which GPU code to generate, and whether this driver can run what this NVRTC produces.
// Pure logic (no library calls) so every rule is tested on machines without a GPU.
#include <kiln/core/error.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cuda {

// A compilation target. arch = 10·major + minor of the compute capability (sm_90 → 90).
// ptx == false: machine code (SASS in a CUBIN) for sm_<arch>, which runs on devices of the same major
// capability and minor ≥ arch's. ptx == true: PTX for the virtual compute_<arch>, which the driver JIT-compiles
// for any device with capability ≥ arch. suffix is "", "a" (architecture-specific features, e.g. sm_90a) or
// "f" (family-specific).
struct gpu_target {
  int arch = 0;
  bool ptx = false;
  std::string suffix;

  std::string name() const { return (ptx ? "compute_" : "sm_") + std::to_string(arch) + suffix; }

  // Accepts "sm_<digits>[a|f]" or "compute_<digits>[a|f]"; throws kiln::error naming the expected form.
  static gpu_target parse(std::string_view text) {
    gpu_target t;
    std::string_view rest;
    if (text.substr(0, 3) == "sm_") {
      rest = text.substr(3);
    } else if (text.substr(0, 8) == "compute_") {
      rest = text.substr(8);
      t.ptx = true;
    } else {
      throw error("GPU target '" + std::string(text) + "': expected sm_<NN> or compute_<NN>, e.g. sm_90");
    }
    if (!rest.empty() && (rest.back() == 'a' || rest.back() == 'f')) {
      t.suffix = std::string(1, rest.back());
      rest.remove_suffix(1);
    }
    if (rest.size() < 2 || rest.size() > 3 || !std::all_of(rest.begin(), rest.end(), [](char c) {
          return c >= '0' && c <= '9';
        }))
      throw error("GPU target '" + std::string(text) + "': expected two or three digits after the prefix, e.g. sm_90");
    for (char c : rest) t.arch = t.arch * 10 + (c - '0');
    return t;
  }

  friend bool operator==(const gpu_target&, const gpu_target&) = default;
};

struct nvrtc_version {
  int major = 0, minor = 0;
  std::string text() const { return std::to_string(major) + "." + std::to_string(minor); }
};

// cuDriverGetVersion encodes 1000·major + 10·minor (13000 = 13.0).
inline std::string driver_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// How this driver relates to this NVRTC. CUDA's minor-version compatibility lets a driver run CUBINs from a
// newer toolkit of the same major version, but it cannot JIT PTX whose ISA is newer than itself; a driver of
// an older major version runs neither.
enum class driver_compatibility { full, cubin_only };

inline driver_compatibility check_driver_version(int driver_version, nvrtc_version nvrtc) {
  const int driver_major = driver_version / 1000;
  const int driver_minor = (driver_version % 1000) / 10;
  if (driver_major < nvrtc.major)
    throw backend_unavailable("CUDA backend unavailable: driver older than the toolkit: the driver supports CUDA " +
                              driver_version_text(driver_version) + " (cuDriverGetVersion = " +
                              std::to_string(driver_version) + ") but NVRTC is version " + nvrtc.text() +
                              "; install a driver for CUDA " + std::to_string(nvrtc.major) +
                              ".x or newer, or point KILN_NVRTC_PATH at an older NVRTC");
  if (driver_major == nvrtc.major && driver_minor < nvrtc.minor) return driver_compatibility::cubin_only;
  return driver_compatibility::full;
}

// Picks the target for a device of capability `device_arch` given NVRTC's supported real architectures:
// - CUBIN for the newest supported arch ≤ device_arch of the same major (SASS compatibility rule);
// - otherwise (device newer than every same-major arch NVRTC knows) PTX for the newest supported arch
//   ≤ device_arch, JIT-compiled by the driver — only possible when the driver can JIT this NVRTC's PTX.
// Throws backend_unavailable when the device is older than every supported arch, or when neither works.
inline gpu_target choose_target(int device_arch, const std::vector<int>& supported, driver_compatibility driver,
                                const std::string& nvrtc_text) {
  auto list = [&] {
    std::string s;
    for (int a : supported) s += (s.empty() ? "sm_" : ", sm_") + std::to_string(a);
    return s;
  };
  int best = -1;
  for (int a : supported)
    if (a <= device_arch) best = std::max(best, a);
  if (best < 0)
    throw backend_unavailable("CUDA backend unavailable: the device is sm_" + std::to_string(device_arch) +
                              ", older than every architecture NVRTC " + nvrtc_text + " supports (" + list() + ")");
  if (best / 10 == device_arch / 10) return gpu_target{best, false, ""};
  if (driver == driver_compatibility::cubin_only)
    throw backend_unavailable("CUDA backend unavailable: NVRTC " + nvrtc_text + " has no CUBIN target for sm_" +
                              std::to_string(device_arch) + " (supports " + list() +
                              ") and the driver is older than NVRTC, so it cannot JIT NVRTC's PTX either");
  return gpu_target{best, true, ""};
}

}  // namespace kiln::cuda
