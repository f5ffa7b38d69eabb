"""PyTorch side of tests/torch/test_bf16_step_torch.cpp.

    /usr/bin/python3 bf16_step_torch.py FILE.jsonl

Each line of FILE is one run of kiln's BF16 mixed-precision training steps on one BF16 path: an MLP
fc1 -> sigmoid -> fc2 -> tanh -> fc3 -> cross_entropy (the widths from the parameters' shapes), trained with SGD (lr from the
line), its initial parameters by name ("init"), the batches, kiln's
loss at each step ("losses", before that step's update) and its parameters after each step ("after").

This script trains the same model in float64 twice, from the same start on the same batches:
- "bf16": every matrix product's operands rounded to bfloat16 (round to nearest even) in the forward products
  x W^T, the input gradients dY W and the weight gradients dY^T x, everything else (bias, activations, softmax,
  loss, SGD) in float64: the semantics kiln's set_precision(precision::bf16) promises (PyTorch autocast's, with
  the products' results kept in float rather than rounded to bf16);
- "exact": no rounding at all.
It compares kiln's losses and its parameters' changes (after - init, after each step) with both. Let d_bf16 and
d_exact be the largest relative differences: a loss relative to the loss, a change in norm relative to its norm
(an isolated element may differ more: where kiln's float activation falls on the other side of a bf16 rounding
boundary from float64's, that operand differs by 2^-8; a norm weighs such flips by their size). kiln computes in
float, so it is not equal to "bf16", but it must be near it: d_bf16 <= TOL, and at least FACTOR times nearer than
to "exact". Measured on an Intel Xeon, seeds 81 and 82 (40 inputs, 1 thread) and 81 (420 and 200 inputs, 3
threads): d_bf16 2.2e-5, 1.8e-5, 1.7e-5, 5.0e-5 on both paths; d_exact 0.0041, 0.0047, 0.0043, 0.0042. A kiln step
run in FP32 instead fails (it is as far from "bf16" as "exact" is). TOL = 3e-4 leaves a margin of 6 over the worst;
FACTOR = 10 against measured ratios of 83 or more.
It writes one verdict per line to FILE.verdicts (PASS, or FAIL with the figures) and exits 1 when any run fails.
"""
import sys

import torch

from layers_torch import judge_lines  # (same directory)

torch.set_default_dtype(torch.float64)
TOL = 3e-4
FACTOR = 10.0


def bf(t):
    return t.to(torch.bfloat16).to(torch.float64)


class RoundedLinear(torch.autograd.Function):
    """y = bf(x) bf(W)^T + b, whose backward products also round their operands: dx = bf(dy) bf(W),
    dW = bf(dy)^T bf(x)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return bf(x) @ bf(w).T + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return bf(dy) @ bf(w), bf(dy).T @ bf(x), dy.sum(0)


class Net(torch.nn.Module):
    def __init__(self, rounded, init):
        super().__init__()
        self.rounded = rounded
        for name in ("fc1", "fc2", "fc3"):
            out_features, in_features = len(init[name + ".bias"]), len(init[name + ".weight"]) // len(init[name + ".bias"])
            setattr(self, name, torch.nn.Linear(in_features, out_features))

    def linear(self, layer, x):
        if self.rounded:
            return RoundedLinear.apply(x, layer.weight, layer.bias)
        return layer(x)

    def forward(self, x):
        h = torch.sigmoid(self.linear(self.fc1, x))
        h = torch.tanh(self.linear(self.fc2, h))
        return self.linear(self.fc3, h)


def train(record, rounded):
    model = Net(rounded, record["init"])
    state = {k: torch.tensor(v).reshape(model.state_dict()[k].shape) for k, v in record["init"].items()}
    model.load_state_dict(state, strict=True)
    opt = torch.optim.SGD(model.parameters(), lr=record["lr"])
    losses, changes = [], []
    for b in record["batches"]:
        x = torch.tensor(b["x"]).reshape(len(b["y"]), -1)
        y = torch.tensor(b["y"], dtype=torch.long)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        changes.append({k: v.detach().flatten() - torch.tensor(record["init"][k]) for k, v in model.state_dict().items()})
    return losses, changes


def distance(record, losses, changes):
    """The largest relative difference of kiln's run from this one: losses relative to the loss, each step's
    parameter change in norm relative to the change's norm."""
    worst = 0.0
    for mine, theirs in zip(record["losses"], losses):
        worst = max(worst, abs(mine - theirs) / abs(theirs))
    for after, change in zip(record["after"], changes):
        for k, ref in change.items():
            kiln_change = torch.tensor(after[k]) - torch.tensor(record["init"][k])
            worst = max(worst, ((kiln_change - ref).norm() / ref.norm()).item())
    return worst


def check(record):
    d_bf16 = distance(record, *train(record, True))
    d_exact = distance(record, *train(record, False))
    ok = d_bf16 <= TOL and d_bf16 * FACTOR <= d_exact
    return ok, f"{len(record['init']['fc1.weight']) // len(record['init']['fc1.bias'])} inputs, {record['threads']} threads: difference from bf16-rounded float64 {d_bf16:.3g} (<= {TOL}), from exact float64 {d_exact:.3g} (>= {FACTOR}x)"


if __name__ == "__main__":
    judge_lines(sys.argv[1], check, lambda r: f"seed {r['seed']} {r['path']}")
