#!/usr/bin/env python3
"""PyTorch peer of kiln-bench on the CPU: the same training steps (shapes, loss, optimizer, batch, data) in
eager mode ("pytorch"), and through torch.compile ("torch_compile") when this torch has it. Run by kiln-bench,
once per thread setting and interpreter: Debian's torch for eager mode, the PyPI torch of
setup_torch_venv.sh for torch.compile (--modes picks; default both); prints one JSON line per (case, mode). See
peer_common.py for the command line.

Thread setting N means torch.set_num_threads(N) plus OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = N, set before
torch loads so that OpenBLAS's own pool (used by Debian's torch for its products) has that size too, and the
process pinned to N CPUs (peer_common.pin_to_cpus).
Step: zero_grad(set_to_none=True); loss = loss_fn(model(x), y); loss.backward(); optimizer.step(). torch.compile
mode compiles the forward with the loss, and the optimizer step.
"""
import os
import sys

import peer_common as pc


def build(torch, case):
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
    modes = tuple(args.modes) or ("pytorch", "torch_compile")
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means the peer is absent
        pc.fail_all(args.cases, "pytorch", modes, f"torch cannot be imported by {sys.executable}: {pc.describe(e)}")
    torch.set_num_threads(args.threads)
    version = f"torch {torch.__version__}"
    blas = openblas_core()
    compile_fn = getattr(torch, "compile", None)
    for case in args.cases:
        torch.manual_seed(1)
        model, loss_fn, opt, x, target = build(torch, case)

        def make_step(forward):
            def step():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(forward(x), target)
                loss.backward()
                opt.step()
                return loss
            return step

        if "pytorch" in modes:
            fields = pc.measure(make_step(model), lambda loss: float(loss.detach()), args.repeats, args.repeat_ms)
            pc.emit(case, "pytorch", "pytorch", args.threads, fields, note=f"{version} eager{blas}")
        if "torch_compile" not in modes:
            continue
        if compile_fn is None:
            pc.emit(case, "pytorch", "torch_compile", args.threads,
                    skipped=f"{version} has no torch.compile (it arrived in PyTorch 2.0)")
            continue
        try:
            # the compiler's best shot: forward and loss as one compiled graph (backward compiled by
            # AOTAutograd with it), and the optimizer's update compiled too, as PyTorch's docs recommend
            torch.manual_seed(1)
            model, loss_fn, opt, x, target = build(torch, case)
            forward_loss = compile_fn(lambda inputs, targets: loss_fn(model(inputs), targets))
            update = compile_fn(opt.step)

            def compiled_step():
                opt.zero_grad(set_to_none=True)
                loss = forward_loss(x, target)
                loss.backward()
                update()
                return loss

            fields = pc.measure(compiled_step, lambda loss: float(loss.detach()), args.repeats, args.repeat_ms)
            pc.emit(case, "pytorch", "torch_compile", args.threads, fields,
                    note=f"{version} torch.compile (forward + loss, optimizer step){blas}")
        except Exception as e:  # noqa: BLE001 - report why, never drop the row
            pc.emit(case, "pytorch", "torch_compile", args.threads, skipped=f"torch.compile failed: {pc.describe(e)}")


if __name__ == "__main__":
    main()
