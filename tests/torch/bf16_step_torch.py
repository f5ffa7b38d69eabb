"""PyTorch side of tests/torch/test_bf16_step_torch.cpp.

    /usr/bin/python3 bf16_step_torch.py FILE.jsonl

Each line of FILE is one run of kiln's BF16 mixed-precision training steps on one BF16 path ("kind"):
- "mlp": fc1 -> sigmoid -> fc2 -> tanh -> fc3 -> cross_entropy, the widths from the parameters' shapes;
- {"cnn": [...]}: for each listed convolution (3x3, padding 1, with bias) conv -> tanh, then flatten -> fc1 ->
  cross_entropy, on images of "channels" x "size" x "size" (x holds NCHW rows);
trained with SGD (lr from the line); its initial parameters by name ("init"), the batches, kiln's loss at each
step ("losses", before that step's update) and its parameters after each step ("after").

This script trains the same model in float64 twice, from the same start on the same batches:
- "bf16": every matrix product's operands rounded to bfloat16 (round to nearest even) in the forward products
  x W^T, the input gradients dY W and the weight gradients dY^T x, and likewise in the convolutions (forward,
  input gradient, weight gradient: torch.nn.grad with rounded operands), everything else (bias, activations, softmax,
  loss, SGD) in float64: the semantics kiln's set_precision(precision::bf16) promises (PyTorch autocast's, with
  the products' results kept in float rather than rounded to bf16);
- "exact": no rounding at all.
It compares kiln's losses and its parameters' changes (after - init, after each step) with both. Let d_bf16 and
d_exact be the largest relative differences: a loss relative to the loss, a change in norm relative to its norm
(an isolated element may differ more: where kiln's float activation falls on the other side of a bf16 rounding
boundary from float64's, that operand differs by 2^-8; a norm weighs such flips by their size). kiln computes in
float, so it is not equal to "bf16", but it must be near it: d_bf16 <= TOL, and at least FACTOR times nearer than
to "exact". Measured on an Intel Xeon (both paths alike): the MLP of 40 inputs, seeds 81 and 82, d_bf16 2.2e-5
and 1.8e-5, d_exact 0.0041 and 0.0047; of 420 and 200 inputs (3 threads) 1.7e-5 and 5.0e-5 against 0.0043 and
0.0042; the CNN (seed 81 on 1 thread, 82 on 3) 3.1e-6 and 1.3e-5 against 0.0050 and 0.0165. A kiln step run in
FP32 instead fails (it is as far from "bf16" as "exact" is), and so does one whose convolutions alone skip the
rounding (CNN d_bf16 0.0043 and 0.010). TOL = 3e-4 leaves a margin of 6 over the worst; FACTOR = 10 against
measured ratios of 83 or more.
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


class RoundedConv(torch.autograd.Function):
    """y = conv2d(bf(x), bf(W)) (no bias), whose input and weight gradients also round their operands."""

    @staticmethod
    def forward(ctx, x, w, stride, padding):
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = stride, padding
        return torch.nn.functional.conv2d(bf(x), bf(w), None, stride, padding)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        gx = torch.nn.grad.conv2d_input(x.shape, bf(w), bf(dy), ctx.stride, ctx.padding)
        gw = torch.nn.grad.conv2d_weight(bf(x), w.shape, bf(dy), ctx.stride, ctx.padding)
        return gx, gw, None, None


class Cnn(torch.nn.Module):
    """conv (3x3, padding 1) -> tanh, for each conv in the record, then flatten -> fc1."""

    def __init__(self, rounded, record):
        super().__init__()
        self.rounded = rounded
        self.record = record
        for c in record["kind"]["cnn"]:
            setattr(self, c["name"], torch.nn.Conv2d(c["in"], c["out"], 3, c["stride"], 1))
        init = record["init"]
        out_features = len(init["fc1.bias"])
        self.fc1 = torch.nn.Linear(len(init["fc1.weight"]) // out_features, out_features)

    def forward(self, x):
        k = self.record["kind"]
        h = x.reshape(x.shape[0], k["channels"], k["size"], k["size"])
        for c in k["cnn"]:
            conv = getattr(self, c["name"])
            if self.rounded:
                h = RoundedConv.apply(h, conv.weight, conv.stride, conv.padding) + conv.bias.reshape(1, -1, 1, 1)
            else:
                h = conv(h)
            h = torch.tanh(h)
        h = h.flatten(1)
        return RoundedLinear.apply(h, self.fc1.weight, self.fc1.bias) if self.rounded else self.fc1(h)


class Mlp(torch.nn.Module):
    """fc1 -> sigmoid -> fc2 -> tanh -> fc3, the widths from the parameters' shapes."""

    def __init__(self, rounded, record):
        super().__init__()
        init = record["init"]
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
    model = Mlp(rounded, record) if record["kind"] == "mlp" else Cnn(rounded, record)
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
    what = "cnn" if record["kind"] != "mlp" else f"mlp of {len(record['init']['fc1.weight']) // len(record['init']['fc1.bias'])} inputs"
    return ok, f"{what}, {record['threads']} threads: difference from bf16-rounded float64 {d_bf16:.3g} (<= {TOL}), from exact float64 {d_exact:.3g} (>= {FACTOR}x)"


if __name__ == "__main__":
    judge_lines(sys.argv[1], check, lambda r: f"seed {r['seed']} {r['path']}")
