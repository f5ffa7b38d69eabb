#!/usr/bin/env bash
# The test command: bash tests/ci.sh
# Installs what is missing (Debian 12), then builds and runs every test twice:
#   gcc   Release build with g++                                     (build-ci-gcc)
#   asan  clang++ with AddressSanitizer + UBSan and libFuzzer targets (build-ci-asan)
# Re-running reuses both build directories. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tests/deps.sh

jobs=${KILN_JOBS:-2}

# ---- phase timing: every phase's wall time is printed at the end, also when one fails.
phase_names=() phase_secs=() current_phase="" phase_start=0 ci_start=$SECONDS
begin_phase() {
  current_phase=$1 phase_start=$SECONDS
  echo; echo "==== $1"
}
end_phase() {
  phase_names+=("$current_phase") phase_secs+=($((SECONDS - phase_start)))
  current_phase=""
}
print_times() {
  local status=$? i
  echo; echo "==== wall time per phase"
  for i in "${!phase_names[@]}"; do
    printf '  %-14s %5d s\n' "${phase_names[$i]}" "${phase_secs[$i]}"
  done
  [[ -n "$current_phase" ]] && printf '  %-14s %5d s  (FAILED here)\n' "$current_phase" $((SECONDS - phase_start))
  printf '  %-14s %5d s\n' total $((SECONDS - ci_start))
  [[ $status -eq 0 ]] && echo "ci: all passed" || echo "ci: FAILED (exit $status)"
}
trap print_times EXIT

# ---- one build: configure (reusing the directory if present), build, run ctest
configure_and_build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@"
  cmake --build "$dir" -j "$jobs"
}
run_tests() {
  ctest --test-dir "$1" --output-on-failure --no-tests=error -j "$jobs"
}

begin_phase deps
# libclang-rt-14-dev holds the sanitizer and libFuzzer runtimes; llvm-14 holds llvm-symbolizer, without
# which sanitizer stack traces are bare addresses.
# dataset-fashion-mnist and wamerican feed the demos' short ctest runs; the extras (PyTorch, Graphviz, rsvg) let the
# interoperability and rendering tests run instead of skipping; Open MPI runs the data-parallel tests (tests/dist/).
kiln_install_missing cmake ninja-build g++ clang libclang-rt-14-dev llvm-14 \
                     libboost1.81-dev catch2 zlib1g-dev nlohmann-json3-dev dataset-fashion-mnist wamerican \
                     libopenmpi-dev openmpi-bin "${kiln_test_extras[@]}"
g++ --version | head -n1; clang++ --version | head -n1; cmake --version | head -n1
# onnx and onnxruntime (PyPI, in a venv outside the repository) let the ONNX export tests run; without PyPI they say
# skipped, so a failure here does not fail CI.
kiln_install_missing python3-venv
bash tests/setup_onnx_venv.sh || echo "deps: no ONNX venv (PyPI unreachable?); the ONNX export tests will say skipped"
end_phase

begin_phase "gcc build"
# The benchmarks are not built: no test runs them (bench/run.sh builds kiln-bench in build-bench/; a developer's
# build, where KILN_BUILD_BENCH is on by default, has bench_distributed), and they took about 4 of the build's
# minutes on a 2-core machine.
configure_and_build build-ci-gcc -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=OFF
end_phase
begin_phase "gcc test"
run_tests build-ci-gcc
end_phase

# Any sanitizer report stops the process with a non-zero status and a symbolized stack trace.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
begin_phase "asan build"
# -O0: clang compiles the template-instantiated kernels about 6 times faster than at -O1 (test_dropout.cpp with
# ASan and UBSan: 29 s against 179 s), and the tests run at most a few times slower (0.9 s against 0.4 s); the
# sanitizers check the same loads and stores at every level.
# Benchmarks never run in tests (neither build compiles them). The CPU backend's width sweep and its builds at
# other SIMD widths and the random models against PyTorch are numerical checks that the gcc build runs; clang
# with the sanitizers takes 5 minutes for each sweep part. The examples (their library code is the tests') and
# the GPU launch tests (on a machine without a GPU they only say 'skipped') are built and run by the gcc build, and
# so are the NVRTC and nvcc compiles of every generated kernel (their output does not depend on the host compiler, and
# the host code around NVRTC runs under the sanitizers in test_cuda_nvrtc and the CUDA step tests).
configure_and_build build-ci-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g" -DKILN_SANITIZE=ON -DKILN_FUZZ=ON \
                    -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF -DKILN_TEST_GPU=OFF \
                    -DKILN_TEST_NVRTC_KERNELS=OFF -DKILN_TEST_SWEEP=OFF "-DKILN_TEST_VECTOR_WIDTHS=" \
                    "-DKILN_TEST_SWEEP_VECTOR_WIDTHS="
end_phase
begin_phase "asan test"
run_tests build-ci-asan
end_phase
