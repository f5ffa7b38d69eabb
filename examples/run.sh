#!/usr/bin/env bash
# The main job: bash examples/run.sh
# Installs what is missing (Debian 12, g++ only), builds the examples in build/ (Release) and runs them
# in order. Exits non-zero if a build or an example fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tests/deps.sh

# In the order they are run: the course notes' graph, its worked training step, XOR, the notes' text classifier
# on Debian's package descriptions (from the package lists, `apt-cache dumpavail`), next-character prediction on
# the wamerican word list, then the Fashion-MNIST demos, the notes' MLP and a CNN (10 epochs each on the CPU;
# data from dataset-fashion-mnist; they write ./out and ./out_cnn: checkpoint, log, curves, kernels), and between
# them the inference demo (the MLP trained briefly, reloaded, exported as a standalone header and served; ./out_inference).
examples=(graph_basics worked_step xor text_classifier next_char fashion_mnist inference fashion_mnist_cnn)

kiln_install_missing cmake ninja-build g++ libboost1.81-dev zlib1g-dev nlohmann-json3-dev dataset-fashion-mnist wamerican

# Tests and benchmarks are not needed here (and so neither is Catch2).
cmake -S . -B build -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release \
      -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=ON
cmake --build build -j "${KILN_JOBS:-2}"

missing=()
for name in "${examples[@]}"; do
  if [[ ! -f examples/$name.cpp ]]; then   # a stale binary of a removed example does not count
    missing+=("$name")
    continue
  fi
  echo; echo "==== $name"
  start=$SECONDS
  "build/examples/$name" || { status=$?; echo "==== $name FAILED (exit status $status)"; exit "$status"; }
  echo "==== $name: done in $((SECONDS - start)) s"
done

echo
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "not built yet (no examples/<name>.cpp): ${missing[*]}"
fi
echo "examples: ran $(( ${#examples[@]} - ${#missing[@]} )) of ${#examples[@]}"
