"""Checks kiln's tensor ops (permute, slice, concat, reshape, sum / mean / max over axes, numpy broadcasting) against
torch in float64: for each JSON line written by test_tensor_torch.cpp, builds x (a parameter, or an input times a
parameter s when batched), applies the op with torch, and compares the output and the gradients of sum(y * r) with
kiln's. Verdicts as layers_torch.py's."""
import sys

import torch

from layers_torch import judge_lines, worst


def leaf(case, name, shape, grad=True):
    return torch.tensor(case["values"][name], dtype=torch.float64).reshape(shape).requires_grad_(grad)


def row_shape(shape, rows):
    """A kiln shape with the batch (-1) replaced by the number of rows."""
    return [rows if d == -1 else d for d in shape]


def x_of(case, shape, param, inp):
    c = case["config"]
    if c["batched"]:
        p = leaf(case, param, shape[1:])
        return leaf(case, inp, row_shape(shape, c["rows"]), False) * p, {param: p}
    p = leaf(case, param, shape)
    return p, {param: p}


def forward(case):
    c = case["config"]
    kind, shape = c["kind"], c["shape"]
    if kind == "concat":
        parts, params = [], {}
        for i, extent in enumerate(c["extents"]):
            s = list(shape)
            s[c["axis"]] = extent
            x, p = x_of(case, s, f"p{i}", f"q{i}")
            parts.append(x)
            params.update(p)
        return torch.cat(parts, dim=c["axis"]), params
    x, params = x_of(case, shape, "s" if c["batched"] else "x", "xin")
    if kind == "permute":
        return x.permute(*c["perm"]), params
    if kind == "slice":
        return x.narrow(c["axis"], c["begin"], c["end"] - c["begin"]), params
    if kind == "reshape":
        rows = [c["rows"]] if c["batched"] else []
        rest = shape[1:] if c["batched"] else shape
        return x.reshape(rows + list(reversed(rest))), params
    if kind in ("sum", "mean", "max"):
        f = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}[kind]
        return f(x, dim=tuple(c["axes"]), keepdim=c["keep"]), params
    if kind == "broadcast":
        o = leaf(case, "other", c["other"])
        params["other"] = o
        a, b = (o, x) if c["swap"] else (x, o)
        return [a + b, a - b, a * b][c["op"]], params
    raise ValueError(f"unknown kind {kind}")


def check(case):
    y, params = forward(case)
    rows = case["config"]["rows"]
    r_shape = row_shape(case["y_shape"], rows)
    r = torch.tensor(case["values"]["r"], dtype=torch.float64).reshape(r_shape)
    (y * r).sum().backward()
    results = [worst("output", case["out"], y)]
    if set(case["grads"]) != set(params):
        return False, f"gradients of {sorted(case['grads'])} in kiln, of {sorted(params)} in torch"
    results += [worst("d/d" + name, case["grads"][name], params[name].grad) for name in sorted(params)]
    ratio, where = max(results, key=lambda t: t[0])
    return ratio <= 1.0, f"worst {where} ({ratio:.3g} of the tolerance)"


if __name__ == "__main__":
    judge_lines(sys.argv[1], check, lambda case: f"{case['case']} seed {case['seed']} {case['config']}")
