#!/usr/bin/env python3
"""ONNX Runtime peer of kiln-bench on the CPU, for the inference cases only: the ONNX files kiln::cpu::export_onnx
wrote at build time from the same models and parameters the kiln rows time (KILN_BENCH_ONNX_DIR/exported_<model>.onnx,
made by bench/export/export_bench_models.cpp), run by onnxruntime's CPU execution provider. Run by kiln-bench once
per thread setting with the Python of the ONNX venv (tests/setup_onnx_venv.sh); prints one JSON line per case. See
peer_common.py for the command line.

Settings, the fastest ONNX Runtime offers a caller of its Python API: every graph optimization
(ORT_ENABLE_ALL), sequential execution, intra-op threads = the thread setting, and I/O binding with the input
and output buffers bound once, so that a call allocates nothing and copies nothing. The per-call cost of the Python
API itself is measured on a one-node model (Identity on the same input) and given in the note.
"""
import os
import sys

import peer_common as pc

MODELS = {"mlp": "exported_classifier.onnx", "fashion_cnn": "exported_cnn.onnx"}


def session(ort, path, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def bound_call(ort, np, sess, x, out_shape):
    """The session's run with input and output bound once; returns (step, sync) for pc.measure."""
    binding = sess.io_binding()
    x_value = ort.OrtValue.ortvalue_from_numpy(x)
    y = np.zeros(out_shape, dtype=np.float32)
    y_value = ort.OrtValue.ortvalue_from_numpy(y)
    binding.bind_ortvalue_input(sess.get_inputs()[0].name, x_value)
    binding.bind_ortvalue_output(sess.get_outputs()[0].name, y_value)

    def step():
        sess.run_with_iobinding(binding)
        return y

    return step, lambda out: float(out.flat[0])


def identity_model(onnx, shape):
    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list(shape))
    graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()


def main():
    args = pc.parse_args("kiln-bench ONNX Runtime peer")
    pc.pin_to_cpus(args.threads)
    modes = args.modes or ["onnxruntime"]
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
    except Exception as e:  # noqa: BLE001 - any import failure means this peer cannot run
        pc.fail_all(args.cases, "onnxruntime", modes, "onnxruntime not importable: " + pc.describe(e))
    onnx_dir = os.environ.get("KILN_BENCH_ONNX_DIR", "")
    for case in args.cases:
        if not case.get("inference", False):
            continue
        path = os.path.join(onnx_dir, MODELS.get(case.get("model", "mlp"), ""))
        if case.get("model", "mlp") == "mlp" and case["layers"] != [784, 128, 64, 10]:
            pc.emit(case, "onnxruntime", modes[0], args.threads, skipped="no exported ONNX file for this model")
            continue
        if not os.path.isfile(path):
            pc.emit(case, "onnxruntime", modes[0], args.threads, skipped=f"{path} not found (built by export_bench_models)")
            continue
        try:
            x = pc.make_inputs(case)
            out_shape = (case["batch"], case["layers"][-1])
            step, sync = bound_call(ort, np, session(ort, path, args.threads), x, out_shape)
            fields = pc.measure(step, sync, args.repeats, args.repeat_ms)
            id_step, id_sync = bound_call(ort, np, session(ort, identity_model(onnx, x.shape), args.threads), x, x.shape)
            floor = pc.measure(id_step, id_sync, args.repeats, args.repeat_ms)["median_us"]
            note = (f"onnxruntime {ort.__version__}, ORT_ENABLE_ALL, I/O binding; a one-node model's call costs "
                    f"{floor:.1f} us through the Python API")
            pc.emit(case, "onnxruntime", modes[0], args.threads, fields, note=note)
        except Exception as e:  # noqa: BLE001 - reported as a skipped row with the reason
            pc.emit(case, "onnxruntime", modes[0], args.threads, skipped=pc.describe(e))


if __name__ == "__main__":
    sys.exit(main())
