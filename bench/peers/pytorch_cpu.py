#!/usr/bin/env python3
"""PyTorch peer of kiln-bench on the CPU: the same training steps (shapes, loss, optimizer, batch, data) in
eager mode ("pytorch"; "pytorch2_eager" is the same step, named apart for the PyPI PyTorch 2 run), through
torch.compile ("torch_compile") when this torch has it, and in eager mode under
torch.autocast("cpu", dtype=torch.bfloat16) ("pytorch_bf16": BF16 matmuls and convolutions, which oneDNN runs on
AMX or AVX512-BF16 where the CPU has them; FP32 weights and optimizer). Run by kiln-bench, once per thread
setting and interpreter: Debian's torch for eager mode, the PyPI torch of setup_torch_venv.sh for eager mode
(pytorch2_eager), torch.compile and autocast (--modes picks; default all but pytorch2_eager); prints one JSON line
per (case, mode). See peer_common.py for the
command line.

Thread setting N means torch.set_num_threads(N) plus OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = N, set before
torch loads so that OpenBLAS's own pool (used by Debian's torch for its products) has that size too, and the
process pinned to N CPUs (peer_common.pin_to_cpus).
Step: zero_grad(set_to_none=True); loss = loss_fn(model(x), y); loss.backward(); optimizer.step(). torch.compile
mode compiles the forward with the loss, and the optimizer step.
Inference cases ("inference": true): model.eval() under torch.inference_mode(), the forward alone; torch.compile
mode compiles that forward.
CNN cases (model "fashion_cnn"): the Fashion-MNIST CNN of examples/fashion_mnist_cnn_model.hpp in train mode
(dropout on, batch statistics), timed in both memory formats (contiguous NCHW and channels-last); the faster is
reported, the other in the note.
"""
import os
import sys

import peer_common as pc


def build_cnn(torch, case, channels_last):
    """conv 1→32 3×3 pad 1 no bias, BatchNorm2d(32), ReLU, max-pool 2; conv 32→64 likewise; flatten, 3136→128,
    ReLU, dropout 0.3, 128→10; cross-entropy; Adam. x: [batch, 1, 28, 28] (the flattened rows reshaped)."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
    model.train()
    x = torch.from_numpy(pc.make_inputs(case)).reshape(case["batch"], 1, 28, 28)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=case["lr"])
    return model, nn.CrossEntropyLoss(), opt, x, torch.from_numpy(pc.make_labels(case))


def layouts(case):
    """The memory formats to time: both for a CNN (the faster is reported), none to choose for an MLP."""
    return (False, True) if case.get("model") == "fashion_cnn" else (False,)


def build(torch, case, channels_last=False):
    if case.get("model") == "fashion_cnn":
        return build_cnn(torch, case, channels_last)
    nn = torch.nn
    layers = case["layers"]
    act = nn.ReLU if case["activation"] == "relu" else nn.Sigmoid
    modules = []
    for i in range(len(layers) - 1):
        modules.append(nn.Linear(layers[i], layers[i + 1]))
        if i + 2 < len(layers):
            modules.append(act())
    if case["loss"] == "bce":
        modules.append(nn.Sigmoid())
        loss_fn = nn.BCELoss()
        target = torch.from_numpy(pc.make_targets(case))
    else:
        loss_fn = nn.CrossEntropyLoss()
        target = torch.from_numpy(pc.make_labels(case))
    model = nn.Sequential(*modules)
    if case["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=case["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=case["lr"])
    x = torch.from_numpy(pc.make_inputs(case))
    return model, loss_fn, opt, x, target


def openblas_core():
    """', OpenBLAS <kernel family>' when torch's BLAS is OpenBLAS (loaded with it), else ''."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD)  # only if torch already loaded it
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return ", OpenBLAS " + lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return ""


def main():
    args = pc.parse_args(__doc__)
    pc.pin_to_cpus(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    modes = tuple(args.modes) or ("pytorch", "torch_compile", "pytorch_bf16")
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means the peer is absent
        pc.fail_all(args.cases, "pytorch", modes, f"torch cannot be imported by {sys.executable}: {pc.describe(e)}")
    torch.set_num_threads(args.threads)
    version = f"torch {torch.__version__}"
    blas = openblas_core()
    compile_fn = getattr(torch, "compile", None)

    def first_value(out):
        """Waits for a step's result: the loss, or an inference case's first output."""
        return float(out.detach().reshape(-1)[0])
    for case in args.cases:
        inference = case.get("inference", False)

        def make_step(forward, opt, loss_fn, x, target, bf16=False):
            def autocast():
                return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
            if inference:
                def forward_only():
                    with torch.inference_mode(), autocast():
                        return forward(x)
                return forward_only

            def step():
                opt.zero_grad(set_to_none=True)
                with autocast():  # the backward runs in the forward's precisions, as autocast prescribes
                    loss = loss_fn(forward(x), target)
                loss.backward()
                opt.step()
                return loss
            return step

        def fastest(measure_layout, mode, note):
            """Times each memory format of the case; emits the fastest (others in the note) or why none ran."""
            timed, failure = [], None
            for channels_last in layouts(case):
                try:
                    timed.append((measure_layout(channels_last), channels_last))
                except Exception as e:  # noqa: BLE001 - report why, never drop the row
                    failure = pc.describe(e)
            if not timed:
                pc.emit(case, "pytorch", mode, args.threads, skipped=f"{mode} failed: {failure}")
                return
            fields, channels_last = min(timed, key=lambda t: t[0]["median_us"])
            if len(layouts(case)) > 1:
                note += ", channels-last" if channels_last else ", contiguous NCHW"
                others = [f"{'channels-last' if cl else 'NCHW'} {f['median_us']:.1f} us" for f, cl in timed
                          if cl != channels_last]
                if failure:
                    others.append(f"other layout failed: {failure}")
                if others:
                    note += " (faster than " + ", ".join(others) + ")"
            pc.emit(case, "pytorch", mode, args.threads, fields, note=note)

        def eager(channels_last, bf16=False):
            torch.manual_seed(1)
            model, loss_fn, opt, x, target = build(torch, case, channels_last)
            if inference:
                model.eval()
            return pc.measure(make_step(model, opt, loss_fn, x, target, bf16), first_value, args.repeats,
                              args.repeat_ms)
        if "pytorch" in modes:
            fastest(eager, "pytorch", f"{version} eager{blas}")
        if "pytorch2_eager" in modes:  # the same eager step, named apart: kiln-bench runs it on PyPI's PyTorch 2
            fastest(eager, "pytorch2_eager", f"{version} eager{blas}")
        if "pytorch_bf16" in modes and inference:
            pc.emit(case, "pytorch", "pytorch_bf16", args.threads,
                    skipped="training cases only (kiln's BF16 is a training-step option)")
        elif "pytorch_bf16" in modes:
            fastest(lambda channels_last: eager(channels_last, bf16=True), "pytorch_bf16",
                    f"{version} eager, autocast bfloat16{blas}")
        if "torch_compile" not in modes:
            continue
        if compile_fn is None:
            pc.emit(case, "pytorch", "torch_compile", args.threads,
                    skipped=f"{version} has no torch.compile (it arrived in PyTorch 2.0)")
            continue

        def compiled(channels_last):
            # the compiler's best shot: forward and loss as one compiled graph (backward compiled by
            # AOTAutograd with it), and the optimizer's update compiled too, as PyTorch's docs recommend
            torch.manual_seed(1)
            model, loss_fn, opt, x, target = build(torch, case, channels_last)
            if inference:
                model.eval()
                return pc.measure(make_step(compile_fn(model), opt, loss_fn, x, target), first_value, args.repeats,
                                  args.repeat_ms)
            forward_loss = compile_fn(lambda inputs, targets: loss_fn(model(inputs), targets))
            update = compile_fn(opt.step)

            def compiled_step():
                opt.zero_grad(set_to_none=True)
                loss = forward_loss(x, target)
                loss.backward()
                update()
                return loss

            return pc.measure(compiled_step, first_value, args.repeats, args.repeat_ms)
        what = "forward" if inference else "forward + loss, optimizer step"
        fastest(compiled, "torch_compile", f"{version} torch.compile ({what}){blas}")

if __name__ == "__main__":
    main()
