#!/usr/bin/env bash
# Data-parallel training against one process on this machine, side by side: 2 ranks x 1 thread (MPI) and
# 1 process x 2 threads, on the classifier and the CNN at global batch 256 (bench/distributed/bench_distributed.cpp).
# Each configuration runs `rounds` times, alternating, and every line is printed (take the medians).
#   bash bench/run_distributed.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
program=$build/bench/bench_distributed
[[ -x $program ]] || { echo "no $program: configure with MPI (libopenmpi-dev openmpi-bin) and build bench_distributed" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
grep -m1 "model name" /proc/cpuinfo || true
echo "cores: $(nproc)"
for ((r = 1; r <= rounds; ++r)); do
  echo "-- round $r"
  mpirun -np 2 --bind-to core "$program" --threads 1
  "$program" --threads 2
done
