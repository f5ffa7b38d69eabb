"""PyTorch side of tests/torch/test_schedules_torch.cpp.

    /usr/bin/python3 schedules_torch.py FILE.jsonl

Each line is one schedule as kiln ran it: its kind and settings, the base learning rate, kiln's rate at every
period ("lrs", before that period's scheduler step) and, for reduce_on_plateau, the metric each period ended
with. This script builds torch.optim.lr_scheduler's equivalent around an SGD optimizer, reads
optimizer.param_groups[0]["lr"] at each period and steps the scheduler, and compares: both are double; torch's
chainable schedulers compute recursively and kiln in closed form, so they agree to rounding (REL = 1e-12).
"""
import sys

import torch

from layers_torch import judge_lines  # (same directory)

REL = 1e-12
S = torch.optim.lr_scheduler


def scheduler(run, opt):
    k = run["kind"]
    if k == "constant":
        return S.ConstantLR(opt, factor=run["factor"], total_iters=int(run["total"]))
    if k == "step":
        return S.StepLR(opt, step_size=int(run["step_size"]), gamma=run["gamma"])
    if k == "linear":
        return S.LinearLR(opt, start_factor=run["start"], end_factor=run["end"], total_iters=int(run["total"]))
    if k == "cosine":
        return S.CosineAnnealingLR(opt, T_max=int(run["t_max"]), eta_min=run["eta_min"])
    if k in ("warmup_linear", "warmup_cosine"):
        warmup, rest = int(run["warmup"]), int(run["total"]) - int(run["warmup"])
        first = S.LinearLR(opt, start_factor=run["start"], end_factor=1.0, total_iters=warmup)
        if k == "warmup_linear":
            second = S.LinearLR(opt, start_factor=1.0, end_factor=run["end"], total_iters=rest)
        else:
            second = S.CosineAnnealingLR(opt, T_max=rest, eta_min=run["eta_min"])
        return S.SequentialLR(opt, [first, second], milestones=[warmup])
    if k == "plateau":
        return S.ReduceLROnPlateau(opt, mode="min", factor=run["factor"], patience=int(run["patience"]),
                                   threshold=run["threshold"], threshold_mode="rel", cooldown=int(run["cooldown"]),
                                   min_lr=run["min_lr"])
    raise ValueError(f"unknown schedule {k}")


def check(run):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=run["base"])
    sched = scheduler(run, opt)
    worst, where = 0.0, ""
    for t, kiln_lr in enumerate(run["lrs"]):
        lr = opt.param_groups[0]["lr"]
        ratio = abs(kiln_lr - lr) / (REL * max(abs(lr), 1e-300))
        if ratio > worst:
            worst, where = ratio, f"period {t}: kiln {kiln_lr!r}, torch {lr!r}"
        opt.step()  # (torch warns when a scheduler steps before its optimizer)
        if run["kind"] == "plateau":
            sched.step(run["metrics"][t])
        else:
            sched.step()
    return worst <= 1.0, f"worst {where or 'none'} ({worst:.3g} of the tolerance)"


def main():
    judge_lines(sys.argv[1], check, lambda run: f"schedule {run['kind']}")


if __name__ == "__main__":
    main()
