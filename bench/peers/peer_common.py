"""Shared by the Python peers of kiln-bench: the command line, the case data (the same formulas as
bench/kiln_bench/bench_case.hpp), the timing protocol (the same as bench/kiln_bench/timing.hpp) and the JSON
lines the peers print on stdout, one per (case, mode), for kiln-bench to read.

Command line:  <peer>.py --threads N --repeats R --repeat-ms MS --cases JSON
where JSON is a list of {"name", "layers", "activation", "loss", "optimizer", "lr", "batch", "data", "model"};
"model" is "mlp" (dense layers as listed by "layers") or "fashion_cnn" (the Fashion-MNIST CNN of
examples/fashion_mnist_cnn_model.hpp, "layers" being [784, 10]: its flattened 1×28×28 input and classes);
"inference" true makes the case the model's forward in evaluation mode (no loss, no update), timed per call.
"""
import os
import argparse
import json
import math
import sys
import time

import numpy as np

GOLDEN = 0.6180339887498949


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--repeat-ms", type=float, default=20.0)
    ap.add_argument("--cases", required=True, help="JSON list of case specifications")
    ap.add_argument("--modes", default="", help="comma-separated modes to report (default: all of the script's)")
    args = ap.parse_args()
    args.cases = json.loads(args.cases)
    args.modes = [m for m in args.modes.split(",") if m]
    return args


def pin_to_cpus(threads):
    """Restricts the process to `threads` of the CPUs it may run on, so that a thread setting holds even where
    a library starts more threads than asked (XLA's CPU runtime does, whatever XLA_FLAGS say: before this, its
    "1 thread" wide-net step measured 112 % of one core's FMA peak)."""
    if not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])


def make_inputs(case):
    """x[i] = frac((i + 1)·φ⁻¹) (row-major [batch, features]), or the XOR table."""
    if case["data"] == "xor":
        return np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    n = case["batch"] * case["layers"][0]
    x = np.fmod((np.arange(n, dtype=np.float64) + 1.0) * GOLDEN, 1.0).astype(np.float32)
    return x.reshape(case["batch"], case["layers"][0])


def make_labels(case):
    """y[s] = (7·s + 3) mod classes."""
    return ((7 * np.arange(case["batch"], dtype=np.int64) + 3) % case["layers"][-1]).astype(np.int64)


def make_targets(case):
    """BCE targets [batch, 1]: the XOR column, else alternating 0/1."""
    if case["data"] == "xor":
        return np.array([[0], [1], [1], [0]], dtype=np.float32)
    return (np.arange(case["batch"]) % 2).astype(np.float32).reshape(-1, 1)


def measure(step, sync, repeats, repeat_ms):
    """step() runs one training step and returns the loss (possibly not yet computed); sync(loss) waits for it
    and returns it as a float. Returns the fields of one result line."""
    loss_first = sync(step())
    loss_second = sync(step())

    def seconds_for(n):
        t0 = time.perf_counter()
        loss = None
        for _ in range(n):
            loss = step()
        sync(loss)
        return time.perf_counter() - t0

    n = 1
    s = seconds_for(n)
    while s < 2e-3 and n < (1 << 24):
        n *= 2
        s = seconds_for(n)
    iters = max(1, round(repeat_ms * 1e-3 / (s / n)))
    us = sorted(seconds_for(iters) * 1e6 / iters for _ in range(max(1, repeats)))
    m = len(us)
    median = us[m // 2] if m % 2 else 0.5 * (us[m // 2 - 1] + us[m // 2])
    return {"median_us": median, "min_us": us[0], "max_us": us[-1], "iters": iters, "repeats": m,
            "loss_first": loss_first, "loss_second": loss_second}


def emit(case, backend, mode, threads, fields=None, skipped=None, note=""):
    line = {"case": case["name"], "backend": backend, "mode": mode, "batch": case["batch"], "threads": threads,
            "note": note}
    if skipped is not None:
        line["skipped"] = skipped
    else:
        line.update(fields)
        for key in ("loss_first", "loss_second"):
            if not math.isfinite(line[key]):
                line[key] = None
    print(json.dumps(line), flush=True)


def describe(e):
    """An exception as one short line."""
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def fail_all(cases, backend, modes, reason):
    for case in cases:
        for mode in modes:
            emit(case, backend, mode, 0, skipped=reason)
    sys.exit(0)
