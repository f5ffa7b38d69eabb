#!/usr/bin/env python3
"""PyTorch peer of bench/bench_gpu.cpp: the same training steps on the GPU, in eager mode and under
torch.compile, for a side-by-side ratio with kiln's fused and unfused CUDA steps.

  mlp64 / mlp128   64 -> 4 hidden layers of width 64 / 128 (ReLU) -> 16, MSE, Adam
  classifier       784 -> 128 -> 64 -> 10 (ReLU), cross-entropy, Adam
  init             PyTorch's Linear default; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8
  data             on the device, uploaded once per batch size (as kiln's run_on_device)
  timing           median over repeats of the mean of k steps, synchronized at the end (about 50 ms each)

One step = zero_grad, forward, loss, backward, optimizer step. torch.compile compiles that whole function
(optimizer step included). Each variant runs in FP32 (allow_tf32 off), as "+tf32" (matrix products on TF32
tensor cores) and as "+bf16" (forward and loss under torch.autocast("cuda", dtype=torch.bfloat16): BF16 matrix
products with FP32 sums, FP32 master weights and Adam state), to compare with kiln's FP32, TF32 and BF16 steps. Prints a table, or with --json one line per measurement:
  {"model": "mlp64", "variant": "eager", "batch": 16384, "ms": 0.42}
Without torch or a CUDA device it prints "skipped: <reason>" and exits 0.
Usage: pytorch_gpu.py [--json] [--repeats N] [--batches 16384,32768,...] [--no-compile]
"""
import argparse
import json
import statistics
import sys
import time


def build(model, torch):
    nn = torch.nn
    if model == "classifier":
        net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
        return net, nn.CrossEntropyLoss(), 784, 10, True
    width = 64 if model == "mlp64" else 128
    layers, previous = [], 64
    for _ in range(4):
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, 16))
    return nn.Sequential(*layers), nn.MSELoss(), 64, 16, False


def measure(step, torch, repeats):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    step()
    torch.cuda.synchronize()
    one = time.perf_counter() - t0
    k = max(1, min(200, int(0.05 / max(one, 1e-6))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3 / k)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default=",".join(str(1 << e) for e in range(14, 21)))
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means the peer is absent
        print(f"skipped: torch cannot be imported by {sys.executable}: {e}")
        return 0
    if not torch.cuda.is_available():
        print(f"skipped: torch {torch.__version__} sees no CUDA device")
        return 0
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    if not args.json:
        print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    batches = [int(b) for b in args.batches.split(",") if b]
    # "+tf32" / "+bf16": matrix products on TF32 / BF16 tensor cores, as kiln's render_options::precision = tf32 /
    # bf16; otherwise FP32 FFMA
    variants = [v + p for p in ("", "+tf32", "+bf16") for v in ["eager"] + ([] if args.no_compile else ["compile"])]
    for model in ("mlp64", "mlp128", "classifier"):
        for variant in variants:
            torch.backends.cuda.matmul.allow_tf32 = variant.endswith("+tf32")
            torch.manual_seed(1)
            net, loss_fn, inputs, outputs, labels = build(model, torch)
            net = net.to(device)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)

            autocast = variant.endswith("+bf16")

            def step_fn(x, t):
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    loss = loss_fn(net(x), t)
                loss.backward()
                opt.step()
                return loss

            step_impl = step_fn
            if variant.startswith("compile"):
                try:
                    step_impl = torch.compile(step_fn)
                except Exception as e:  # noqa: BLE001
                    print(f"skipped: torch.compile unavailable: {e}")
                    continue
            for batch in batches:
                x = torch.rand(batch, inputs, device=device) * 2 - 1
                if labels:
                    t = torch.randint(0, outputs, (batch,), device=device)
                else:
                    t = torch.rand(batch, outputs, device=device) * 2 - 1
                ms = measure(lambda: step_impl(x, t), torch, args.repeats)
                if args.json:
                    print(json.dumps({"model": model, "variant": variant, "batch": batch, "ms": ms}), flush=True)
                else:
                    print(f"{model:10} {variant:12} batch {batch:8}  {ms:9.3f} ms  {batch / (ms * 1e-3):12.0f} samples/s",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
