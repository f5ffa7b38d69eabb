#!/usr/bin/env bash
# Creates the virtual environment kiln-bench uses for the JAX peer, OUTSIDE the repository:
#   ${KILN_BENCH_VENV:-$HOME/.cache/kiln-bench-venv}
# with jax[cpu] from PyPI (and nothing else). kiln-bench looks for <venv>/bin/python and reports the JAX peer
# as skipped when it is absent. Does nothing when jax already imports there, unless given --upgrade.
set -euo pipefail
venv="${KILN_BENCH_VENV:-$HOME/.cache/kiln-bench-venv}"
python="${KILN_BENCH_PYTHON:-/usr/bin/python3}"
if [[ "${1:-}" != --upgrade && -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import jax' 2>/dev/null; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --upgrade "jax[cpu]"
"$venv/bin/python" -c 'import jax; print("jax", jax.__version__, "installed in '"$venv"'")'
