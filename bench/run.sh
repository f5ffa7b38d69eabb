#!/usr/bin/env bash
# Builds and runs kiln's benchmark suite (never part of ctest: timings do not belong in tests).
#   bash bench/run.sh [kiln-bench options…]      e.g. bash bench/run.sh --filter classifier --repeats 31
# 1. installs what is missing with apt-get (OpenBLAS, Eigen, dlib, Debian's PyTorch; skipped without root),
# 2. creates the JAX virtual environment outside the repository unless KILN_BENCH_NO_JAX=1,
# 3. configures a Release build in build-bench/ and builds kiln-bench,
# 4. runs it, writing one JSON line per result to bench/out.json (ignored: copy rows into bench/RESULTS.md).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

packages=(cmake ninja-build g++ libboost-dev zlib1g-dev libopenblas-dev libopenblas0-pthread libeigen3-dev libdlib-dev
          python3-torch python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "bench/run.sh: installing ${missing[*]}"
    apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "bench/run.sh: not root, not installing ${missing[*]}; kiln-bench reports what it lacks as skipped" >&2
  fi
fi

if [[ "${KILN_BENCH_NO_JAX:-0}" != 1 ]]; then
  bash bench/peers/setup_jax_venv.sh || echo "bench/run.sh: JAX could not be installed; kiln-bench reports it as skipped" >&2
fi

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_EXAMPLES=OFF
ninja -C build-bench ${KILN_BENCH_JOBS:+-j"$KILN_BENCH_JOBS"} kiln-bench

exec build-bench/bench/kiln-bench --json bench/out.json "$@"
