"""PyTorch side of tests/torch/test_layers_torch.cpp.

    /usr/bin/python3 layers_torch.py FILE.jsonl

Each line of FILE is one case: the layer ("case") and its configuration, the values of its input x, of its
parameters (by kiln's names) and of r, and from kiln's float64 reference evaluator the layer's output in
evaluation mode ("out") and, in training mode, the gradients of sum(y * r) with respect to x, every parameter
and r (the last is the training-mode y). This script builds the layer from torch.nn in float64, loads kiln's
parameters with load_state_dict(strict=True), computes the same, and compares element by element: an element may
differ by REL times the largest magnitude in its tensor (both sides are float64; they differ in the order of
sums). Convolution and pooling cases view kiln's rows of C*H*W values (NCHW) as [batch, C, H, W] and its conv
weights [Out, In/Groups*K*K] as [Out, In/Groups, K, K]. It writes one verdict per case to FILE.verdicts (PASS or
FAIL with the worst element) and exits 1 when any case differs.
"""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)
REL = 1e-10


def tensor(values, shape):
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


class Holder(torch.nn.Module):
    """A module whose submodules carry kiln's layer names (norm, …), so state_dict keys are kiln's names."""


def layer_norm(case):
    c = case["config"]
    shape = (c["batch"], c["features"])
    values = case["values"]
    model = Holder()
    model.norm = torch.nn.LayerNorm(c["features"], eps=c["eps"])
    params = {k: tensor(v, (c["features"],)) for k, v in values.items() if k.startswith("norm.")}
    model.load_state_dict(params, strict=True)
    x = tensor(values["x"], shape).requires_grad_()
    r = tensor(values["r"], shape).requires_grad_()
    y = model.norm(x)
    (y * r).sum().backward()
    grads = {"x": x.grad, "r": r.grad, "norm.weight": model.norm.weight.grad, "norm.bias": model.norm.bias.grad}
    return y, grads


def dropout(case):
    """torch draws its own masks, so kiln's is read off its training output (the zeros of d/dr = y); with it,
    torch gives the training output and the gradient, nn.Dropout's own scale checked on a draw of its own."""
    c = case["config"]
    shape = (c["batch"], c["features"])
    p = c["p"]
    layer = torch.nn.Dropout(p)
    probe = layer.train()(torch.ones(100000))
    scale = probe[probe != 0].unique()
    if scale.numel() != 1:
        raise ValueError(f"nn.Dropout({p}) scaled kept elements by {scale.tolist()}")
    x = tensor(case["values"]["x"], shape).requires_grad_()
    r = tensor(case["values"]["r"], shape).requires_grad_()
    kept = tensor(case["grads"]["r"], shape) != 0
    n, k = kept.numel(), int(kept.sum())
    sigma = (n * p * (1 - p)) ** 0.5
    if abs(k - (1 - p) * n) > 5 * sigma + 1:
        raise ValueError(f"kiln kept {k} of {n} elements at p = {p}: more than 5 sigma from {(1 - p) * n:.1f}")
    y = x * kept * scale
    (y * r).sum().backward()
    with torch.no_grad():
        evaluation = layer.eval()(x)
    return evaluation, {"x": x.grad, "r": r.grad}


def embedding(case):
    """nn.Embedding(V, D) with kiln's table (emb.weight), its output viewed as [batch, C·D]: the gradient of
    sum(y * r) with respect to the table (the indices are integers and r an input: neither has one)."""
    c = case["config"]
    values = case["values"]
    model = Holder()
    model.emb = torch.nn.Embedding(c["vocabulary"], c["dim"])
    model.load_state_dict({"emb.weight": tensor(values["emb.weight"], (c["vocabulary"], c["dim"]))}, strict=True)
    idx = torch.tensor([int(v) for v in values["x"]], dtype=torch.long).reshape(c["batch"], c["context"])
    r = tensor(values["r"], (c["batch"], c["context"] * c["dim"]))
    y = model.emb(idx).reshape(c["batch"], c["context"] * c["dim"])
    (y * r).sum().backward()
    return y, {"emb.weight": model.emb.weight.grad}


def on_maps(case, channels, h, w, model, forward):
    """x as maps [batch, C, H, W] (kiln's rows are NCHW flattened), y = forward(x) flattened to kiln's rows, the
    gradients of sum(y * r) with respect to x, r and every parameter of model (by its state_dict name)."""
    return on_tensor(case, (case["config"]["batch"], channels, h, w), model, forward)


def on_sequences(case, channels, model, forward):
    """x as sequences [batch, C, L] (L: the config's w), as on_maps."""
    return on_tensor(case, (case["config"]["batch"], channels, case["config"]["w"]), model, forward)


def on_tensor(case, shape, model, forward):
    c = case["config"]
    values = case["values"]
    model.load_state_dict({k: tensor(v, model.state_dict()[k].shape) for k, v in values.items() if k not in ("x", "r")},
                          strict=True)
    x = tensor(values["x"], shape).requires_grad_()
    y = forward(x).reshape(c["batch"], -1)
    r = tensor(values["r"], y.shape).requires_grad_()
    (y * r).sum().backward()
    grads = {"x": x.grad, "r": r.grad}
    grads.update({name: p.grad for name, p in model.named_parameters()})
    return y, grads


def conv2d(case):
    """nn.Conv2d with kiln's conv.weight ([Out, In/Groups·K·K] row-major) viewed as [Out, In/Groups, K, K]."""
    c = case["config"]
    model = Holder()
    model.conv = torch.nn.Conv2d(c["channels"], c["out"], c["kernel"], stride=c["stride"], padding=c["padding"],
                                 dilation=c["dilation"], groups=c["groups"], bias=bool(c["bias"]))
    return on_maps(case, c["channels"], c["h"], c["w"], model, model.conv)


def max_pool2d(case):
    c = case["config"]
    pool = torch.nn.MaxPool2d(c["kernel"], stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
    return on_maps(case, c["channels"], c["h"], c["w"], Holder(), pool)


def avg_pool2d(case):
    c = case["config"]
    if c["dilation"] != 1:
        raise ValueError("nn.AvgPool2d has no dilation")
    pool = torch.nn.AvgPool2d(c["kernel"], stride=c["stride"], padding=c["padding"], count_include_pad=True)
    return on_maps(case, c["channels"], c["h"], c["w"], Holder(), pool)


def conv1d(case):
    """nn.Conv1d with kiln's conv.weight ([Out, In/Groups·K] row-major) viewed as [Out, In/Groups, K]."""
    c = case["config"]
    model = Holder()
    model.conv = torch.nn.Conv1d(c["channels"], c["out"], c["kernel"], stride=c["stride"], padding=c["padding"],
                                 dilation=c["dilation"], groups=c["groups"], bias=bool(c["bias"]))
    return on_sequences(case, c["channels"], model, model.conv)


def max_pool1d(case):
    c = case["config"]
    pool = torch.nn.MaxPool1d(c["kernel"], stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
    return on_sequences(case, c["channels"], Holder(), pool)


def avg_pool1d(case):
    c = case["config"]
    pool = torch.nn.AvgPool1d(c["kernel"], stride=c["stride"], padding=c["padding"], count_include_pad=True)
    return on_sequences(case, c["channels"], Holder(), pool)


def global_avg_pool(case):
    c = case["config"]
    pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return on_maps(case, c["channels"], c["h"], c["w"], Holder(), pool)


def cnn(case):
    """nn::sequential(conv2d<In, Out, K, 1, P>{}, relu, max_pool2d<2>{}, flatten, dense<N>{}): conv1 and fc1."""
    c = case["config"]
    model = Holder()
    model.conv1 = torch.nn.Conv2d(c["in"], c["out"], c["kernel"], padding=c["padding"])
    oh, ow = c["h"] + 2 * c["padding"] - c["kernel"] + 1, c["w"] + 2 * c["padding"] - c["kernel"] + 1
    model.fc1 = torch.nn.Linear(c["out"] * (oh // 2) * (ow // 2), c["classes"])

    def forward(x):
        return model.fc1(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(model.conv1(x)), 2), 1))

    return on_maps(case, c["in"], c["h"], c["w"], model, forward)


def batch_norm(case):
    """nn.BatchNorm2d (maps: h, w > 0) or nn.BatchNorm1d (vectors) with kiln's weight, bias, running_mean,
    running_var and num_batches_tracked (a long here, a float in kiln): the output in eval(), then in train() the
    output, the gradients and the module's state after that one forward (its running-statistics update)."""
    c = case["config"]
    values = case["values"]
    maps = c["h"] > 0
    shape = (c["batch"], c["channels"], c["h"], c["w"]) if maps else (c["batch"], c["channels"])
    model = Holder()
    model.bn = (torch.nn.BatchNorm2d if maps else torch.nn.BatchNorm1d)(c["channels"], eps=c["eps"], momentum=c["momentum"])
    state = {f"bn.{k}": tensor(values[f"bn.{k}"], (c["channels"],)) for k in ("weight", "bias", "running_mean", "running_var")}
    tracked = values["bn.num_batches_tracked"]
    if len(tracked) != 1 or tracked[0] != int(tracked[0]):
        raise ValueError(f"num_batches_tracked {tracked} is not one integer")
    state["bn.num_batches_tracked"] = torch.tensor(int(tracked[0]), dtype=torch.long)
    model.load_state_dict(state, strict=True)
    x = tensor(values["x"], shape)
    with torch.no_grad():
        evaluation = model.eval().bn(x).reshape(c["batch"], -1)
    x.requires_grad_()
    y = model.train().bn(x).reshape(c["batch"], -1)
    r = tensor(values["r"], y.shape).requires_grad_()
    (y * r).sum().backward()
    grads = {"x": x.grad, "r": r.grad, "bn.weight": model.bn.weight.grad, "bn.bias": model.bn.bias.grad}
    after = {"bn.running_mean": model.bn.running_mean, "bn.running_var": model.bn.running_var,
             "bn.num_batches_tracked": model.bn.num_batches_tracked.to(torch.float64)}
    return evaluation, grads, after


CASES = {"layer_norm": layer_norm, "dropout": dropout, "embedding": embedding, "conv2d": conv2d,
         "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d, "global_avg_pool": global_avg_pool, "cnn": cnn,
         "batch_norm2d": batch_norm, "batch_norm1d": batch_norm, "conv1d": conv1d, "max_pool1d": max_pool1d,
         "avg_pool1d": avg_pool1d}


def worst(name, kiln, torch_values):
    """(ratio of the worst difference to its tolerance, a description of it)."""
    k = torch.tensor(kiln, dtype=torch.float64).flatten()
    t = torch_values.detach().flatten()
    if k.numel() != t.numel():
        return float("inf"), f"{name}: kiln has {k.numel()} elements, torch {t.numel()}"
    tol = REL * max(1.0, t.abs().max().item()) if t.numel() else REL
    diff = (k - t).abs()
    i = int(diff.argmax()) if diff.numel() else 0
    ratio = diff[i].item() / tol if diff.numel() else 0.0
    return ratio, f"{name}[{i}]: kiln {k[i].item() if k.numel() else 0:.17g}, torch {t[i].item() if t.numel() else 0:.17g}"


def check(case):
    """A case function returns (output, gradients) or, for a layer with state, (output, gradients, the state after
    one training-mode forward), the last compared with kiln's state after one step (case["state"])."""
    y, grads, *state = CASES[case["case"]](case)
    results = [worst("output", case["out"], y)]
    if set(case["grads"]) != set(grads):
        return False, f"gradients of {sorted(case['grads'])} in kiln, of {sorted(grads)} in torch"
    results += [worst("d/d" + name, case["grads"][name], grads[name]) for name in sorted(grads)]
    after = state[0] if state else {}
    if set(case.get("state", {})) != set(after):
        return False, f"state {sorted(case.get('state', {}))} in kiln, {sorted(after)} in torch"
    results += [worst("after a step, " + name, case["state"][name], after[name]) for name in sorted(after)]
    ratio, where = max(results, key=lambda r: r[0])
    return ratio <= 1.0, f"worst {where} ({ratio:.3g} of the tolerance)"


def judge_lines(path, check, describe):
    """Runs check(record) on each JSON line of path, writes one verdict per line to path.verdicts (describe(record)
    names it), and exits 1 when any record fails (an exception while checking is a failure, with the reason)."""
    failed = 0
    with open(path) as f, open(path + ".verdicts", "w") as out:
        for line in f:
            record = json.loads(line)
            try:
                ok, detail = check(record)
            except Exception as e:
                ok, detail = False, f"{type(e).__name__}: {e}"
            verdict = f"{'PASS' if ok else 'FAIL'} {describe(record)}: {detail}"
            print(verdict)
            out.write(verdict + "\n")
            failed += not ok
    sys.exit(1 if failed else 0)


def main():
    judge_lines(sys.argv[1], check, lambda case: f"{case['case']} seed {case['seed']} {json.dumps(case['config'])}")


if __name__ == "__main__":
    main()
