"""PyTorch side of tests/torch/test_random_models_torch_*.cpp (the tolerance derivation is at the top of
test_random_models_torch_a.cpp).

    /usr/bin/python3 random_models_torch.py FILE.jsonl

Each line of FILE is one configuration written by random_models_run.hpp: the model (layers with kiln's parameter
names), kiln's initial parameters, the data of every step, and kiln's per-step losses and final parameters and
optimizer state, from a float32 CPU step ("fused" or "unfused") and from the float64 reference evaluator
("reference"). This script builds the same model from torch.nn modules in float64, loads the initial parameters
with load_state_dict(strict=True) (so kiln's names and layouts must be PyTorch's), trains it with torch.optim
for the same steps on the same data, and compares. It prints one verdict per configuration (also written to
FILE.verdicts), PASS or FAIL with the seed, the full configuration and the worst differences, and exits 1 when
any configuration differs.
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

# Relative error allowed per step, per unit of the magnitude a value is computed from (see the derivation in
# test_random_models_torch_a.cpp): float32 kiln against float64 torch, and the float64 reference against it.
REL = {"fused": 1e-5, "unfused": 1e-5, "reference": 1e-12}
# |m̂/√v̂| ≤ sqrt(t·Σ w_k²/w'_k), about 1.1 for t ≤ 5 and the β ranges drawn, so an Adam step whose sign
# rounding decides moves an element by at most about 2.2·lr.
ADAM_FLIP = 2.5


def real(values):
    """float64 values from a JSON list (whose numbers may all have been written as integers)."""
    return torch.tensor(values, dtype=torch.float64)


def activation(kind, cfg):
    return {
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "leaky_relu": lambda x: F.leaky_relu(x, cfg["leaky_slope"]),
        "elu": lambda x: F.elu(x, cfg["elu_alpha"]),
        "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "swish": F.silu,
        "softplus": F.softplus,
        "identity": lambda x: x,
    }[kind]


def build(rec):
    """The torch.nn modules (a ModuleDict, so state_dict names are fc1.weight, prelu1.weight, …) and forward."""
    cfg, modules, chain = rec["config"], torch.nn.ModuleDict(), []
    for layer in rec["layers"]:
        if layer["kind"] in ("linear", "prelu"):
            m = torch.nn.Linear(layer["in"], layer["out"]) if layer["kind"] == "linear" else torch.nn.PReLU(layer["n"])
            modules[layer["name"]] = m
            chain.append(m)
        else:
            chain.append(activation(layer["kind"], cfg))
    initial = {k: real(v["values"]).reshape(v["shape"]) for k, v in rec["initial"].items()}
    modules.load_state_dict(initial, strict=True)

    def forward(x):
        for f in chain:
            x = f(x)
        return x

    return modules, forward


def loss_and_scale(cfg, z, t, y):
    """PyTorch's loss, and the same reduction of its terms' absolute values (the scale of its rounding error)."""
    kind, red = cfg["loss"], cfg["reduction"]
    reduce = (lambda v: v.sum()) if red == "sum" else (lambda v: v.mean())
    if kind == "mse":
        return F.mse_loss(z, t, reduction=red), reduce((z - t) ** 2)
    if kind == "mae":
        return F.l1_loss(z, t, reduction=red), reduce((z - t).abs())
    if kind == "bce":
        p = torch.sigmoid(z)
        return F.binary_cross_entropy(p, t, reduction=red), reduce(F.binary_cross_entropy(p, t, reduction="none"))
    if kind == "bce_with_logits":
        terms = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        return F.binary_cross_entropy_with_logits(z, t, reduction=red), reduce(terms.abs())
    if kind == "cross_entropy":
        return F.cross_entropy(z, y, reduction=red), reduce(F.cross_entropy(z, y, reduction="none"))
    if kind == "nll":
        logp = F.log_softmax(z, dim=1)
        return F.nll_loss(logp, y, reduction=red), reduce(F.nll_loss(logp, y, reduction="none").abs())
    if kind == "categorical_cross_entropy":  # no torch function takes probabilities: its definition
        per_sample = -(F.one_hot(y, z.shape[1]) * torch.log(F.softmax(z, dim=1)).clamp(min=-100)).sum(dim=1)
        return reduce(per_sample), reduce(per_sample)
    if kind == "kl_div":
        logq = F.log_softmax(z, dim=1)
        terms = F.kl_div(logq, t, reduction="none")
        return F.kl_div(logq, t, reduction="batchmean"), terms.abs().sum() / z.shape[0]
    if kind == "mean":
        return z.mean(), z.abs().mean()
    return z.sum(), z.abs().sum()


def optimizer(cfg, params):
    kind, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if kind in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd, nesterov=kind == "nesterov")
    betas = (cfg["beta1"], cfg["beta2"])
    opt = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return opt(params, lr=lr, betas=betas, eps=cfg["eps"], weight_decay=wd)


STATE_NAMES = ("momentum_buffer", "exp_avg", "exp_avg_sq")  # kiln names state <param>.<torch's state key>


def train(rec):
    """Trains in torch; returns per-step (loss, scale), the final values by kiln's names, and for each value the
    magnitudes its tolerance is built from."""
    cfg = rec["config"]
    modules, forward = build(rec)
    named = dict(modules.named_parameters())
    opt = optimizer(cfg, list(named.values()))
    adam_like = cfg["optimizer"] in ("adam", "adamw")
    initial = {k: p.detach().clone() for k, p in named.items()}
    n, width = cfg["batch"], cfg["out"]
    losses = []
    adam_slack = {k: torch.zeros_like(p) for k, p in named.items()}  # Σ_t lr·G_t/(√v̂_t+ε); compare() scales and caps it
    for step, d in enumerate(rec["data"], start=1):
        x = real(d["x"]).reshape(n, cfg["in"])
        t = real(d["t"]).reshape(n, width)
        y = torch.tensor(d["y"], dtype=torch.int64)
        opt.zero_grad()
        loss, scale = loss_and_scale(cfg, forward(x), t, y)
        loss.backward()
        if cfg.get("max_norm", 0) > 0:
            torch.nn.utils.clip_grad_norm_(list(named.values()), cfg["max_norm"])
        grads = {}
        for k, p in named.items():
            g = p.grad.detach().clone()
            if cfg["optimizer"] == "adam":
                g += cfg["weight_decay"] * p.detach()  # Adam's L2 term is part of the gradient it normalizes
            grads[k] = g
        opt.step()
        losses.append((loss.item(), scale.item()))
        if adam_like:
            for k, p in named.items():
                v_hat = opt.state[p]["exp_avg_sq"] / (1 - cfg["beta2"] ** step)
                big = grads[k].abs().max()
                adam_slack[k] += cfg["lr"] * big / (v_hat.sqrt() + cfg["eps"])
    final, scale = {}, {}
    for k, p in named.items():
        final[k] = p.detach()
        moved = (p.detach() - initial[k]).abs().max()
        scale[k] = (p.detach().abs() + moved, adam_slack[k] if adam_like else None)
        for name in STATE_NAMES:
            if opt.state.get(p, {}).get(name) is not None:
                s = opt.state[p][name]
                final[k + "." + name] = s
                scale[k + "." + name] = (s.abs() + (2 if name == "exp_avg_sq" else 1) * s.abs().max(), None)
    return losses, final, scale


def compare(rec, losses, final, scale, run_name):
    """Worst |kiln − torch| / tolerance over losses and values (≤ 1 passes), and where it is."""
    run, rel, steps = rec["runs"][run_name], REL[run_name], rec["config"]["steps"]
    lr = rec["config"]["lr"]
    worst = (0.0, "")
    if len(run["losses"]) != len(losses):
        return float("inf"), f"{len(run['losses'])} losses for {len(losses)} steps"
    for i, ((want, s), got) in enumerate(zip(losses, run["losses"]), start=1):
        tol = rel * i * s + 1e-300
        worst = max(worst, (abs(got - want) / tol if got == got else float("inf"), f"loss[step {i}] {got} vs {want}"))
    names = set(run["final"])
    if names != set(final):
        return float("inf"), f"names differ: kiln {sorted(names)} torch {sorted(final)}"
    for k, want in final.items():
        if run["final"][k]["shape"] != list(want.shape):
            return float("inf"), f"{k} has shape {run['final'][k]['shape']} in kiln, {list(want.shape)} in torch"
        got = real(run["final"][k]["values"]).reshape(want.shape)
        mag, slack = scale[k]
        tol = rel * steps * mag + 1e-300
        if slack is not None:  # an Adam parameter: each step's rounding of m̂/√v̂, capped at a flipped sign
            tol = tol + torch.minimum(rel * slack, torch.full_like(slack, ADAM_FLIP * lr * steps))
        ratio = (got - want).abs() / tol
        ratio[got != got] = float("inf")
        j = int(ratio.argmax())
        r = ratio.flatten()[j].item()
        if r > worst[0]:
            worst = (r, f"{k}[{j}] {got.flatten()[j].item()} vs {want.flatten()[j].item()} (tol {tol.flatten()[j].item():.3g})")
    return worst


def describe(rec):
    c = rec["config"]
    return f"seed {rec['seed']} " + json.dumps(c, separators=(",", ":"))


def main(path):
    verdicts, failed = [], 0
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for rec in records:
        losses, final, scale = train(rec)
        results = {name: compare(rec, losses, final, scale, name) for name in rec["runs"]}
        ok = all(r[0] <= 1 for r in results.values())
        failed += not ok
        detail = "; ".join(f"{name}: worst {r[0]:.3g} at {r[1]}" for name, r in results.items())
        verdicts.append(f"{'PASS' if ok else 'FAIL'} {describe(rec)} {detail}")
        print(verdicts[-1], flush=True)
    with open(path + ".verdicts", "w") as f:
        f.write("".join(v + "\n" for v in verdicts))
    print(f"{len(records) - failed} of {len(records)} configurations match torch")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
