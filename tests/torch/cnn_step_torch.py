"""PyTorch side of tests/torch/test_cnn_step_torch.cpp.

    /usr/bin/python3 cnn_step_torch.py FILE.jsonl

Each line of FILE is one run of a CNN's training steps by kiln: the layers (torch.nn kinds in order, with kiln's
names conv1, bn1, ..., fc1), the Adam hyperparameters, the initial parameters and batch-norm state by name
("init"), the batches (x as [batch, C*H*W] rows, NCHW, and class labels), and kiln's loss at each step ("losses",
before that step's update, as torch's), its parameters, batch-norm state and Adam moments (<param>.exp_avg,
<param>.exp_avg_sq) after each step ("after"), and the evaluation-mode logits of a held-out batch after the last
step ("eval_logits"). The backend is "reference" (kiln's float64 evaluator) or "cpu" (kiln's float CPU backend).

This script builds the same model from torch.nn in float64, loads "init" with load_state_dict(strict=True) (so
kiln's names, shapes and layouts are PyTorch's; num_batches_tracked as a long), trains it with torch.optim.Adam on
the same batches in train() mode, evaluates the held-out batch in eval() mode, and compares every recorded tensor
element by element. It writes one verdict per line to FILE.verdicts (PASS, or FAIL with the worst element) and
exits 1 when any run differs.

Tolerances, per tensor, relative to the largest magnitude in torch's tensor (for a loss, to the loss):
- reference: REL_REFERENCE = 1e-9. Both sides are float64 and differ only in the order of their sums (and in how
  Adam's bias corrections are grouped), about 1e-16 per operation, so 1e-9 is 1e-7 times looser than the
  rounding; seeds 71 and 72 differ by at most 5e-15 (losses 4e-16, parameters 1.3e-15, moments 5e-15).
- cpu: CPU_REL = 1e-4. The backend computes in float (rounding 6e-8 relative) from the same float inputs and
  initial values. The longest sums are the batch norms' statistics (16 samples x 64 positions) and the
  convolutions' weight gradients (over the same), whose rounding grows as about sqrt(n) ulps, ~2e-6; Adam divides
  each gradient by the root of its running square, which keeps a relative error relative (its step lr*m/(sqrt(v) +
  eps) moves by lr times the gradient's relative error, far below lr*steps). Measured on seeds 71 and 72: losses
  1.1e-7, parameters 2.2e-7, running statistics 2.5e-7, moments 1.4e-6, logits 2.4e-7, so 1e-4 leaves a margin
  of 70 while still catching an update that is off by 0.1% of lr (a wrong beta, eps or bias correction).
  Adam's amplification of noise does bite where a gradient is small against its own rounding error: a gradient
  that is 0 in exact arithmetic (a bias right before a batch norm) becomes a step of +-lr from noise in float.
  The model has no such parameter (its convolutions have no bias), and no element of these seeds comes near.
"""
import json
import sys

import torch

from layers_torch import judge_lines  # (same directory)

torch.set_default_dtype(torch.float64)
REL_REFERENCE = 1e-9
CPU_REL = 1e-4


class Net(torch.nn.Module):
    """The layers in order; those with parameters or state carry kiln's names (conv1, bn1, ...), the others have
    no state, so their attribute names (layer3, ...) never appear in state_dict()."""

    def __init__(self, layers):
        super().__init__()
        self.order = []
        for i, spec in enumerate(layers):
            kind = spec["kind"]
            if kind == "conv2d":
                m = torch.nn.Conv2d(spec["in"], spec["out"], spec["kernel"], padding=spec["padding"], bias=spec["bias"])
            elif kind == "batch_norm2d":
                m = torch.nn.BatchNorm2d(spec["channels"], eps=spec["eps"], momentum=spec["momentum"])
            elif kind == "batch_norm1d":
                m = torch.nn.BatchNorm1d(spec["channels"], eps=spec["eps"], momentum=spec["momentum"])
            elif kind == "linear":
                m = torch.nn.Linear(spec["in"], spec["out"])
            elif kind == "relu":
                m = torch.nn.ReLU()
            elif kind == "max_pool2d":
                m = torch.nn.MaxPool2d(spec["kernel"])
            elif kind == "flatten":
                m = torch.nn.Flatten()
            elif kind == "dropout":
                m = torch.nn.Dropout(spec["p"])
            else:
                raise ValueError(f"unknown layer kind {kind}")
            name = spec.get("name", f"layer{i}")
            setattr(self, name, m)
            self.order.append(m)

    def forward(self, x):
        for m in self.order:
            x = m(x)
        return x


def load(model, init):
    shapes = model.state_dict()
    state = {}
    for name, values in init.items():
        if name not in shapes:
            raise ValueError(f"kiln's {name} is not in the torch model's state_dict ({sorted(shapes)})")
        if name.endswith("num_batches_tracked"):
            if len(values) != 1 or values[0] != int(values[0]):
                raise ValueError(f"{name} = {values} is not one integer")
            state[name] = torch.tensor(int(values[0]), dtype=torch.long)
        else:
            state[name] = torch.tensor(values, dtype=torch.float64).reshape(shapes[name].shape)
    model.load_state_dict(state, strict=True)


def train(run):
    """torch's losses, its state after each step (as kiln names it) and its evaluation-mode logits."""
    model = Net(run["layers"])
    load(model, run["init"])
    o = run["optimizer"]
    if o["kind"] != "adam":
        raise ValueError(f"unknown optimizer {o['kind']}")
    opt = torch.optim.Adam(model.parameters(), lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                           weight_decay=o["weight_decay"])
    shape = (run["batch"], run["layers"][0]["in"], -1)
    losses, after = [], []
    for b in run["batches"]:
        x = torch.tensor(b["x"], dtype=torch.float64).reshape(shape)
        side = int(round(x.shape[2] ** 0.5))
        x = x.reshape(run["batch"], x.shape[1], side, side)
        y = torch.tensor([int(v) for v in b["y"]], dtype=torch.long)
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        state = {k: v.detach().to(torch.float64).clone() for k, v in model.state_dict().items()}
        for name, p in model.named_parameters():
            for moment in ("exp_avg", "exp_avg_sq"):
                state[f"{name}.{moment}"] = opt.state[p][moment].detach().clone()
        after.append(state)
    model.eval()
    with torch.no_grad():
        x = torch.tensor(run["held_out"]["x"], dtype=torch.float64)
        side = int(round((x.numel() / run["batch"] / run["layers"][0]["in"]) ** 0.5))
        logits = model(x.reshape(run["batch"], run["layers"][0]["in"], side, side))
    return torch.stack(losses), after, logits


def worst(name, kiln, reference, tolerance):
    """(ratio of the worst difference to the tolerance, a description of it); tolerance(t) for torch's tensor t."""
    k = torch.tensor(kiln, dtype=torch.float64).flatten()
    t = reference.detach().to(torch.float64).flatten()
    if k.numel() != t.numel():
        return float("inf"), f"{name}: kiln has {k.numel()} elements, torch {t.numel()}"
    diff = (k - t).abs()
    i = int(diff.argmax())
    tol = tolerance(name, t)
    ratio = diff[i].item() / tol if tol > 0 else (0.0 if diff[i].item() == 0 else float("inf"))
    return ratio, f"{name}[{i}]: kiln {k[i].item():.17g}, torch {t[i].item():.17g}"


def check(run):
    losses, after, logits = train(run)
    steps = len(run["batches"])
    if len(run["losses"]) != steps or len(run["after"]) != steps:
        return False, f"kiln recorded {len(run['losses'])} losses and {len(run['after'])} states for {steps} steps"
    rel = REL_REFERENCE if run["backend"] == "reference" else CPU_REL

    def tolerance(name, t):
        return rel * (t.abs().max().item() if t.numel() else 0.0)

    results = [worst(f"loss at step {i + 1}", [run["losses"][i]], losses[i], tolerance) for i in range(steps)]
    for i in range(steps):
        kiln_state, torch_state = run["after"][i], after[i]
        if set(kiln_state) != set(torch_state):
            return False, f"after step {i + 1}: kiln has {sorted(kiln_state)}, torch {sorted(torch_state)}"
        results += [worst(f"step {i + 1} {name}", kiln_state[name], torch_state[name], tolerance) for name in sorted(kiln_state)]
    results.append(worst("evaluation-mode logits", run["eval_logits"], logits, tolerance))
    ratio, where = max(results, key=lambda r: r[0])
    return ratio <= 1.0, f"worst {where} ({ratio:.3g} of the tolerance)"


def main():
    judge_lines(sys.argv[1], check, lambda run: f"cnn_step seed {run['seed']} {run['backend']}")


if __name__ == "__main__":
    main()
