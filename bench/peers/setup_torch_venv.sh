#!/usr/bin/env bash
# Creates the virtual environment kiln-bench uses for the torch.compile peer, OUTSIDE the repository:
#   ${KILN_BENCH_TORCH_VENV:-$HOME/.cache/kiln-bench-torch-venv}
# with PyTorch 2 from PyPI (Debian's python3-torch is 1.13, which predates torch.compile). PyPI's Linux wheel
# brings the CUDA libraries with it, about 4 GB on disk; kiln-bench uses it on the CPU only. The eager PyTorch
# peer stays Debian's torch with OpenBLAS. kiln-bench looks for <venv>/bin/python and, when it is absent,
# reports torch.compile from Debian's torch (skipped, with the reason). Does nothing when torch 2 already
# imports there, unless given --upgrade.
set -euo pipefail
venv="${KILN_BENCH_TORCH_VENV:-$HOME/.cache/kiln-bench-torch-venv}"
python="${KILN_BENCH_PYTHON:-/usr/bin/python3}"
if [[ "${1:-}" != --upgrade && -x "$venv/bin/python" ]] &&
   "$venv/bin/python" -c 'import torch, sys; sys.exit(0 if hasattr(torch, "compile") else 1)' 2>/dev/null; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --upgrade torch numpy
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "installed in '"$venv"'")'
