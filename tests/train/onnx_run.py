"""ONNX side of tests/train/test_export_onnx.cpp: checks an exported model with onnx.checker (full_check: shape
inference included) and runs it in ONNX Runtime on the CPU.

  python onnx_run.py MODEL OUT NAME DTYPE ROWS COLS PATH [NAME DTYPE ROWS COLS PATH ...]

Each input is a raw little-endian file of ROWS x COLS values of DTYPE (float32 or int64) fed as NAME; the model's
single output is written to OUT as raw float32. Any failure exits non-zero with a message.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main(argv):
    model_path, out = argv[1], argv[2]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    feeds = {}
    rest = argv[3:]
    if len(rest) % 5:
        sys.exit("onnx_run.py: inputs come as NAME DTYPE ROWS COLS PATH")
    for i in range(0, len(rest), 5):
        name, dtype, rows, cols, path = rest[i:i + 5]
        feeds[name] = np.fromfile(path, dtype=np.dtype(dtype)).reshape(int(rows), int(cols))
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (result,) = session.run(["output"], feeds)
    np.asarray(result, dtype=np.float32).tofile(out)


if __name__ == "__main__":
    main(sys.argv)
