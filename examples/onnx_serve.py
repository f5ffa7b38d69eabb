#!/usr/bin/env python3
"""The ONNX route of examples/inference.cpp: loads the model kiln::cpu::export_onnx wrote into ONNX Runtime (CPU, one
intra-op thread, every graph optimization) and serves the same stream of single-sample requests, timing each
session.run with perf_counter (the Python API's own per-call cost included, as a Python server would pay it).

    onnx_serve.py MODEL.onnx REQUESTS.bin N

REQUESTS.bin holds N·784 float32 pixels then N int32 labels. Prints "p50_us p99_us correct" and then one predicted
class per line, as the exported header's server does.
"""
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, requests, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = np.fromfile(requests, dtype=np.uint8)
    x = raw[: n * 784 * 4].view(np.float32).reshape(n, 784)
    y = raw[n * 784 * 4: n * 784 * 4 + n * 4].view(np.int32)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    us = np.empty(n)
    predicted = np.empty(n, dtype=np.int64)
    for i in range(n):
        xi = x[i: i + 1]
        t0 = time.perf_counter()
        out = sess.run(None, {name: xi})[0]
        us[i] = (time.perf_counter() - t0) * 1e6
        predicted[i] = int(np.argmax(out[0]))
    us.sort()
    print(f"{us[int(0.50 * (n - 1))]:.3f} {us[int(0.99 * (n - 1))]:.3f} {int((predicted == y).sum())}")
    print("\n".join(str(p) for p in predicted))


if __name__ == "__main__":
    main()
