#!/usr/bin/env bash
# The CUDA backend on a real GPU, for a GPU machine that has the driver, NVRTC and nvcc but none of kiln's
# build dependencies (the device tool's machines): build here, run there.
#
#   tests/cuda/gpu_check.sh pack          (here) builds the GPU tests, bench_gpu and the Fashion-MNIST demo in
#                                         build-gpu/ for any x86-64-v2 CPU, without MPI, and copies the programs
#                                         and the Fashion-MNIST files into build-gpu-run/ (ignored by git)
#   tests/cuda/gpu_check.sh run [PHASE…]  (there, from the repository root, with build-gpu-run/ carried) runs the
#                                         phases: tests (the programs that launch kernels), compile-tests (NVRTC
#                                         and nvcc on every kernel), demo, bench, torch (PyTorch's eager steps),
#                                         compile (torch.compile too); default: tests demo bench torch
#
# The programs name the directories they were built in (KILN_SOURCE_DIR, KILN_BINARY_DIR): `run` links
# /work/main to the checkout when the two differ. Logs go to $OUT (or /tmp/kiln-gpu-check): env.txt, tests.log
# (every test program's output, failures first), demo.log, bench.log; a table of pass/fail per program is printed
# last.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
# the programs with cases that launch kernels (test_cuda_codegen_layers: its [device] cases only there)
device_tests=(test_cuda_device test_cuda_nvrtc test_cuda_cache test_cuda_target test_cuda_unavailable
              test_cuda_codegen_device test_cuda_codegen_device_activations test_cuda_codegen_device_losses
              test_cuda_codegen_layers)
# NVRTC and nvcc compiling every generated kernel: they need no GPU (CI runs them where NVRTC is installed)
compile_tests=(test_cuda_codegen_nvrtc_fused test_cuda_codegen_nvrtc_unfused test_cuda_codegen_nvcc)
gpu_tests=("${device_tests[@]}" "${compile_tests[@]}")

pack() {
  set -e
  cmake -S . -B build-gpu -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Release -DKILN_NATIVE=OFF \
        -DCMAKE_CXX_FLAGS="-march=x86-64-v2" -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DKILN_TEST_SWEEP=OFF > /dev/null
  ninja -C build-gpu "${gpu_tests[@]}" bench_gpu fashion_mnist
  rm -rf build-gpu-run
  mkdir -p build-gpu-run/data
  for t in "${gpu_tests[@]}"; do cp build-gpu/tests/$t build-gpu-run/; done
  cp build-gpu/bench/bench_gpu build-gpu/examples/fashion_mnist build-gpu-run/
  strip build-gpu-run/test_* build-gpu-run/bench_gpu build-gpu-run/fashion_mnist
  cp /usr/share/datasets/fashion-mnist/*.gz build-gpu-run/data/
  du -sh build-gpu-run
}

run() {
  local out=${OUT:-/tmp/kiln-gpu-check}
  local phases=("$@")
  [ ${#phases[@]} -eq 0 ] && phases=(tests demo bench torch)
  mkdir -p "$out"
  if [ "$here" != /work/main ] && [ ! -e /work/main ]; then mkdir -p /work && ln -s "$here" /work/main; fi
  mkdir -p build-gpu
  { nvidia-smi; nvcc --version; ls -l /usr/local/cuda/lib64/libnvrtc* ; lscpu | sed -n 1,15p; } > "$out/env.txt" 2>&1
  local bin=$here/build-gpu-run summary=()
  for phase in "${phases[@]}"; do
    case $phase in
      tests|compile-tests)
        local list=("${device_tests[@]}"); [ $phase = compile-tests ] && list=("${compile_tests[@]}")
        local logs=/tmp/kiln-gpu-logs
        rm -rf $logs && mkdir -p $logs
        # the emulated cases of test_cuda_codegen_layers run in CI; here only its NVRTC and device cases
        printf '%s\n' "${list[@]}" | xargs -P 6 -I{} bash -c \
          'f=""; [ {} = test_cuda_codegen_layers ] && f="[device]"; s=$(date +%s);
           timeout 150 '"$bin"'/{} $f > '"$logs"'/{}.log 2>&1; rc=$?;
           echo "rc=$rc seconds=$(( $(date +%s) - s ))" >> '"$logs"'/{}.log'
        : > "$out/$phase.log"
        for t in "${list[@]}"; do
          local status; status=$(tail -1 $logs/$t.log)
          summary+=("$t: $status $(grep -E '^(test cases|All tests passed)' $logs/$t.log | tail -1)")
          case $status in rc=0*) ;; *) { echo "=== $t ($status)"; cat $logs/$t.log; } >> "$out/$phase.log";; esac
        done
        for t in "${list[@]}"; do
          case $(tail -1 $logs/$t.log) in rc=0*) { echo "=== $t"; cat $logs/$t.log; } >> "$out/$phase.log";; esac
        done ;;
      demo)  # the same training in FP32 and with BF16 products: the accuracies should agree within about 0.005
        : > "$out/demo.log"
        for precision in fp32 bf16; do
          timeout 90 "$bin"/fashion_mnist --device cuda --precision $precision --epochs 3 --data "$bin"/data \
            --out /tmp/kiln-fm-$precision >> "$out/demo.log" 2>&1
          summary+=("demo $precision: rc=$? $(grep -E 'test accuracy' "$out/demo.log" | tail -1)")
        done ;;
      bench)
        timeout 150 "$bin"/bench_gpu --quick --repeats 5 > "$out/bench.log" 2>&1
        summary+=("bench: rc=$?") ;;
      torch|compile)
        local flag=--no-compile; [ $phase = compile ] && flag=
        PYTHONUNBUFFERED=1 timeout 120 python3 bench/pytorch_gpu.py --repeats 5 --batches 16384,131072,1048576 $flag \
          >> "$out/bench.log" 2>&1
        summary+=("$phase: rc=$?") ;;
      *) echo "unknown phase $phase"; return 2 ;;
    esac
  done
  cat "$out/bench.log" 2>/dev/null | tail -60
  printf '%s\n' "${summary[@]}"
}

case ${1:-} in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) sed -n 2,16p "$0"; exit 2 ;;
esac
