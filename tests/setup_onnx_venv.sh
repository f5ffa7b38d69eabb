#!/usr/bin/env bash
# Creates the virtual environment the ONNX export tests use, OUTSIDE the repository:
#   ${KILN_ONNX_VENV:-$HOME/.cache/kiln-onnx-venv}
# with onnx (its checker and shape inference) and onnxruntime from PyPI. tests/train/test_export_onnx.cpp looks for
# <venv>/bin/python (or KILN_ONNX_PYTHON) and says skipped when it cannot import both. Does nothing when both
# already import there, unless given --upgrade. Needs python3-venv.
set -euo pipefail
venv="${KILN_ONNX_VENV:-$HOME/.cache/kiln-onnx-venv}"
python="${KILN_ONNX_BASE_PYTHON:-/usr/bin/python3}"
if [[ "${1:-}" != --upgrade && -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import onnx, onnxruntime' 2>/dev/null; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade onnx onnxruntime
"$venv/bin/python" -c 'import onnx, onnxruntime; print("onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "in '"$venv"'")'
