#!/usr/bin/env bash
# By-hand sweep of the PyTorch random-model comparison (tests/torch/test_random_models_torch_a.cpp):
#
#   bash tests/torch/run_random_models.sh [COUNT] [FIRST_BASE]      (defaults 300 and 1000)
#
# builds test_random_models_torch_a.cpp ceil(COUNT/CHUNK) times, with base seeds FIRST_BASE, FIRST_BASE+1, …
# and CHUNK configurations each (KILN_TORCH_CHUNK, default 10: a TU's compile memory grows with it), runs them,
# and prints one verdict per configuration and the totals. Environment:
#   KILN_BUILD_DIR     a configured build tree holding tests/libkiln_catch_main.a (default build)
#   KILN_JOBS          parallel compiles (default 2)
#   KILN_TORCH_OUT     where binaries, JSONL records and verdicts go (default $KILN_BUILD_DIR/torch-sweep)
#   KILN_INCLUDE_FIRST a directory searched before codegen/ and include/: e.g. one holding kiln/cpu/execute.hpp
#                      from an older commit, to run the same configurations against it
#   CXX, CXXFLAGS      compiler and flags (default g++, -O2 -march=native)
# Exit status 1 when any configuration differs.
set -euo pipefail
count=${1:-300}
first=${2:-1000}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${KILN_BUILD_DIR:-$root/build}
out=${KILN_TORCH_OUT:-$build/torch-sweep}
chunk=${KILN_TORCH_CHUNK:-10}
jobs=${KILN_JOBS:-2}
cxx=${CXX:-g++}
flags=${CXXFLAGS:--O2 -march=native}
main_lib=$build/tests/libkiln_catch_main.a
[[ -f $main_lib ]] || cmake --build "$build" --target kiln_catch_main
mkdir -p "$out"
include_first=()
[[ -n ${KILN_INCLUDE_FIRST:-} ]] && include_first=(-I "$KILN_INCLUDE_FIRST")

bases=()
for ((i = 0; i * chunk < count; ++i)); do bases+=($((first + i))); done

build_one() {  # base seed → $out/test_<base>
  local base=$1 n=$chunk
  (( (base - first + 1) * chunk > count )) && n=$((count - (base - first) * chunk))
  # shellcheck disable=SC2086
  "$cxx" -std=c++20 $flags "${include_first[@]}" -I "$root/include" -I "$root/codegen" \
    -DKILN_SOURCE_DIR="\"$root\"" -DKILN_BINARY_DIR="\"$build\"" -DKILN_TORCH_BASE_SEED="${base}ULL" \
    -DKILN_TORCH_CONFIGS="$n" "$root/tests/torch/test_random_models_torch_a.cpp" "$main_lib" -lz -ldl -pthread \
    -o "$out/test_$base"
}
export -f build_one
export first count chunk out cxx flags root build main_lib
export include_first_str="${include_first[*]:-}"

printf '%s\n' "${bases[@]}" | xargs -P "$jobs" -I{} bash -c 'include_first=($include_first_str); build_one {}'
: > "$out/verdicts.txt"
for base in "${bases[@]}"; do
  KILN_TORCH_KEEP=$out "$out/test_$base" > "$out/test_$base.log" 2>&1 || true
  mv "$out/a.jsonl" "$out/$base.jsonl"
  rm -f "$out/$base.jsonl.verdicts"
  /usr/bin/python3 "$root/tests/torch/random_models_torch.py" "$out/$base.jsonl" > "$out/$base.torch.log" 2>&1 || true
  [[ -f $out/$base.jsonl.verdicts ]] || echo "FAIL base $base: the script stopped, see $out/$base.torch.log" > "$out/$base.jsonl.verdicts"
  cat "$out/$base.jsonl.verdicts" >> "$out/verdicts.txt"
done
grep -E '^FAIL' "$out/verdicts.txt" || true
pass=$(grep -c '^PASS' "$out/verdicts.txt" || true)
fail=$(grep -c '^FAIL' "$out/verdicts.txt" || true)
echo "$pass passed, $fail failed of $((pass + fail)) configurations (base seeds ${bases[0]}..${bases[-1]}, verdicts in $out/verdicts.txt)"
[[ $fail == 0 ]]
