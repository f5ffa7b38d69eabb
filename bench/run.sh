#!/usr/bin/env bash
# Builds and runs kiln's benchmark suite (never part of ctest: timings do not belong in tests).
#   bash bench/run.sh [kiln-bench options…]      e.g. bash bench/run.sh --filter classifier --repeats 31
# 1. installs what is missing with apt-get (the build's packages, then OpenBLAS, Eigen, dlib, Debian's PyTorch),
# 2. creates the JAX virtual environment outside the repository unless KILN_BENCH_NO_JAX=1, ONNX Runtime's (for the
#    infer_* cases) unless KILN_BENCH_NO_ONNX=1, and PyTorch 2's
#    (for torch.compile; PyPI's wheel with its CUDA libraries, about 4 GB) unless KILN_BENCH_NO_TORCH_COMPILE=1,
# 3. configures a Release build in build-bench/ and builds kiln-bench,
# 4. runs it, writing one JSON line per result to bench/out.json (not committed); add
#    --markdown bench/RESULTS.md to append this run's dated tables to the results file.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

source tests/deps.sh  # kiln_install_missing: apt-get only what is missing
kiln_install_missing cmake ninja-build g++ libboost1.81-dev zlib1g-dev nlohmann-json3-dev
# The peers are optional: what cannot be installed is reported by kiln-bench as skipped, with the reason.
kiln_install_missing libopenblas-dev libopenblas0-pthread libeigen3-dev libdlib-dev python3-torch python3-venv ||
  echo "bench/run.sh: some peer packages could not be installed; kiln-bench reports them as skipped" >&2

if [[ "${KILN_BENCH_NO_JAX:-0}" != 1 ]]; then
  bash bench/peers/setup_jax_venv.sh || echo "bench/run.sh: JAX could not be installed; kiln-bench reports it as skipped" >&2
fi
if [[ "${KILN_BENCH_NO_ONNX:-0}" != 1 ]]; then
  bash tests/setup_onnx_venv.sh || echo "bench/run.sh: onnxruntime could not be installed; kiln-bench reports it as skipped" >&2
fi
if [[ "${KILN_BENCH_NO_TORCH_COMPILE:-0}" != 1 ]]; then
  bash bench/peers/setup_torch_venv.sh ||
    echo "bench/run.sh: PyTorch 2 could not be installed; kiln-bench reports torch.compile as skipped" >&2
fi

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_EXAMPLES=OFF
ninja -C build-bench ${KILN_BENCH_JOBS:+-j"$KILN_BENCH_JOBS"} kiln-bench

export KILN_BENCH_COMMAND="bash bench/run.sh${*:+ $*}"
exec build-bench/bench/kiln-bench --json bench/out.json "$@"
