#!/usr/bin/env bash
# Creates the virtual environment kiln-bench uses for the JAX peer, OUTSIDE the repository:
#   ${KILN_BENCH_VENV:-$HOME/.cache/kiln-bench-venv}
# with jax[cpu] from PyPI. kiln-bench looks for <venv>/bin/python and reports the JAX peer as skipped
# when it is absent. Safe to re-run.
set -euo pipefail
venv="${KILN_BENCH_VENV:-$HOME/.cache/kiln-bench-venv}"
python="${KILN_BENCH_PYTHON:-/usr/bin/python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "jax[cpu]"
"$venv/bin/python" -c 'import jax; print("jax", jax.__version__, "devices", jax.devices())'
