#!/usr/bin/env python3
"""JAX peer of kiln-bench on the CPU: the same training steps (shapes, loss, optimizer, batch, data), the whole
step (forward, loss, gradient, optimizer update) under one jax.jit, so XLA fuses it as kiln does. Run by
kiln-bench with the Python of the virtual environment made by setup_jax_venv.sh, once per thread setting;
prints one JSON line per case. See peer_common.py for the command line.

Thread setting 1 sets XLA_FLAGS to run XLA's CPU code on one thread (before jax loads) and pins the process to
one CPU (peer_common.pin_to_cpus: the flags alone no longer hold XLA to one core); other settings leave XLA's
default pool (all cores).

  init     PyTorch's Linear default: W [out, in], b [out] uniform in ±1/√in
  forward  z = a·Wᵀ + b, ReLU or sigmoid between layers
  loss     cross-entropy on logits (log_softmax, mean NLL) or BCE on sigmoid outputs (log clamped at −100)
  update   Adam (PyTorch's, bias-corrected, eps 1e-8) or plain SGD
CNN cases (model "fashion_cnn"): the Fashion-MNIST CNN of examples/fashion_mnist_cnn_model.hpp in NHWC (XLA's
CPU layout for convolutions; with one input channel the flattened NCHW rows are NHWC already), train mode:
batch statistics (running statistics updated as PyTorch does), dropout 0.3 with a fresh key each step.
"""
import os
import sys

import peer_common as pc


def run_cnn(jax, jnp, case, args, note):
    """One Fashion-MNIST CNN case: conv 1→32 3×3 pad 1 no bias, batch norm, ReLU, max-pool 2; conv 32→64 likewise;
    flatten, 3136→128 ReLU, dropout 0.3, 128→10; cross-entropy; Adam; the whole step under one jit."""
    lax = jax.lax
    batch = case["batch"]
    key = jax.random.PRNGKey(1)

    def uniform(k, shape, fan_in):
        bound = 1.0 / (fan_in ** 0.5)
        return jax.random.uniform(k, shape, jnp.float32, -bound, bound)

    ks = jax.random.split(key, 7)
    params = {
        "conv1": uniform(ks[0], (3, 3, 1, 32), 9), "bn1_g": jnp.ones(32), "bn1_b": jnp.zeros(32),
        "conv2": uniform(ks[1], (3, 3, 32, 64), 32 * 9), "bn2_g": jnp.ones(64), "bn2_b": jnp.zeros(64),
        "fc1_w": uniform(ks[2], (128, 3136), 3136), "fc1_b": uniform(ks[3], (128,), 3136),
        "fc2_w": uniform(ks[4], (10, 128), 128), "fc2_b": uniform(ks[5], (10,), 128),
    }
    running = {"m1": jnp.zeros(32), "v1": jnp.ones(32), "m2": jnp.zeros(64), "v2": jnp.ones(64)}

    def block(a, w, g, b):
        a = lax.conv_general_dilated(a, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        mean = jnp.mean(a, axis=(0, 1, 2))
        var = jnp.var(a, axis=(0, 1, 2))
        a = (a - mean) * lax.rsqrt(var + 1e-5) * g + b
        a = jax.nn.relu(a)
        a = lax.reduce_window(a, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return a, (mean, var)

    def loss_fn(ps, x, y, k):
        a = x.reshape(batch, 28, 28, 1)
        a, s1 = block(a, ps["conv1"], ps["bn1_g"], ps["bn1_b"])
        a, s2 = block(a, ps["conv2"], ps["bn2_g"], ps["bn2_b"])
        a = a.reshape(batch, -1)
        a = jax.nn.relu(a @ ps["fc1_w"].T + ps["fc1_b"])
        keep = jax.random.bernoulli(k, 0.7, a.shape)
        a = jnp.where(keep, a / 0.7, 0.0)
        logp = jax.nn.log_softmax(a @ ps["fc2_w"].T + ps["fc2_b"])
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), (s1, s2)

    lr, b1, b2, eps = case["lr"], 0.9, 0.999, 1e-8

    def zeros():  # separate buffers for m and v: donated arguments must not alias
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def train_step(ps, state, x, y):
        step, m, v, run, k = state
        k, kd = jax.random.split(k)
        (loss, (s1, s2)), g = jax.value_and_grad(loss_fn, has_aux=True)(ps, x, y, kd)
        n1, n2 = batch * 28 * 28, batch * 14 * 14  # unbiased running variance, as PyTorch keeps it
        run = {"m1": 0.9 * run["m1"] + 0.1 * s1[0], "v1": 0.9 * run["v1"] + 0.1 * s1[1] * n1 / (n1 - 1),
               "m2": 0.9 * run["m2"] + 0.1 * s2[0], "v2": 0.9 * run["v2"] + 0.1 * s2[1] * n2 / (n2 - 1)}
        step = step + 1
        m = jax.tree_util.tree_map(lambda mi, gi: b1 * mi + (1 - b1) * gi, m, g)
        v = jax.tree_util.tree_map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, g)
        c1 = 1 / (1 - b1 ** step)
        c2 = 1 / (1 - b2 ** step)
        ps = jax.tree_util.tree_map(lambda p, mi, vi: p - lr * (mi * c1) / (jnp.sqrt(vi * c2) + eps), ps, m, v)
        return ps, (step, m, v, run, k), loss

    if case.get("inference"):  # evaluation mode: running statistics, no dropout
        def eval_block(a, w, g, b, mean, var):
            a = lax.conv_general_dilated(a, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
            a = jax.nn.relu((a - mean) * lax.rsqrt(var + 1e-5) * g + b)
            return lax.reduce_window(a, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def logits(ps, run, x):
            a = x.reshape(batch, 28, 28, 1)
            a = eval_block(a, ps["conv1"], ps["bn1_g"], ps["bn1_b"], run["m1"], run["v1"])
            a = eval_block(a, ps["conv2"], ps["bn2_g"], ps["bn2_b"], run["m2"], run["v2"])
            a = jax.nn.relu(a.reshape(batch, -1) @ ps["fc1_w"].T + ps["fc1_b"])
            return a @ ps["fc2_w"].T + ps["fc2_b"]

        forward = jax.jit(logits)
        x = jnp.asarray(pc.make_inputs(case))
        fields = pc.measure(lambda: forward(params, running, x), lambda out: float(out.block_until_ready()[0, 0]),
                            args.repeats, args.repeat_ms)
        pc.emit(case, "jax", "jax_jit", args.threads, fields, note=note + ", NHWC, forward")
        return

    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    x = jnp.asarray(pc.make_inputs(case))
    y = jnp.asarray(pc.make_labels(case).astype("int32"))
    holder = {"params": params, "state": (jnp.zeros((), jnp.float32), zeros(), zeros(), running, ks[6])}

    def step():
        holder["params"], holder["state"], loss = jitted(holder["params"], holder["state"], x, y)
        return loss

    fields = pc.measure(step, lambda loss: float(loss.block_until_ready()), args.repeats, args.repeat_ms)
    pc.emit(case, "jax", "jax_jit", args.threads, fields, note=note + ", NHWC")


def main():
    args = pc.parse_args(__doc__)
    pc.pin_to_cpus(args.threads)
    if args.threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    try:
        import jax
        import jax.numpy as jnp
    except Exception as e:  # noqa: BLE001 - any import failure means the peer is absent
        pc.fail_all(args.cases, "jax", ("jax_jit",), f"jax cannot be imported by {sys.executable}: {pc.describe(e)}")
    version = f"jax {jax.__version__}"
    note = version + (" XLA on 1 thread" if args.threads == 1 else " XLA default threads")

    for case in args.cases:
        if case.get("model") == "fashion_cnn":
            try:
                run_cnn(jax, jnp, case, args, note)
            except Exception as e:  # noqa: BLE001 - report why, never drop the row
                pc.emit(case, "jax", "jax_jit", args.threads, skipped=f"jax step failed: {pc.describe(e)}")
            continue
        layers = case["layers"]
        relu_between = case["activation"] == "relu"
        key = jax.random.PRNGKey(1)
        params = []
        for i in range(len(layers) - 1):
            key, kw, kb = jax.random.split(key, 3)
            bound = 1.0 / (layers[i] ** 0.5)
            params.append((jax.random.uniform(kw, (layers[i + 1], layers[i]), jnp.float32, -bound, bound),
                           jax.random.uniform(kb, (layers[i + 1],), jnp.float32, -bound, bound)))

        def forward(ps, x):
            a = x
            for i, (w, b) in enumerate(ps):
                a = a @ w.T + b
                if i + 1 < len(ps):
                    a = jax.nn.relu(a) if relu_between else jax.nn.sigmoid(a)
            return a

        if case.get("inference"):
            jitted_forward = jax.jit(forward)
            x = jnp.asarray(pc.make_inputs(case))
            try:
                fields = pc.measure(lambda: jitted_forward(params, x), lambda out: float(out.block_until_ready()[0, 0]),
                                    args.repeats, args.repeat_ms)
                pc.emit(case, "jax", "jax_jit", args.threads, fields, note=note + ", forward")
            except Exception as e:  # noqa: BLE001 - report why, never drop the row
                pc.emit(case, "jax", "jax_jit", args.threads, skipped=f"jax forward failed: {pc.describe(e)}")
            continue

        if case["loss"] == "bce":
            target = jnp.asarray(pc.make_targets(case))

            def loss_fn(ps, x, t):
                p = jax.nn.sigmoid(forward(ps, x))
                return -jnp.mean(t * jnp.maximum(jnp.log(p), -100.0) + (1 - t) * jnp.maximum(jnp.log1p(-p), -100.0))
        else:
            target = jnp.asarray(pc.make_labels(case).astype("int32"))

            def loss_fn(ps, x, y):
                logp = jax.nn.log_softmax(forward(ps, x))
                return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        lr = case["lr"]
        adam = case["optimizer"] == "adam"
        b1, b2, eps = 0.9, 0.999, 1e-8
        def zeros():  # separate buffers for m and v: donated arguments must not alias
            return jax.tree_util.tree_map(jnp.zeros_like, params)

        opt_state = (jnp.zeros((), jnp.float32), zeros(), zeros()) if adam else ()

        def train_step(ps, state, x, t):
            loss, g = jax.value_and_grad(loss_fn)(ps, x, t)
            if not adam:
                return jax.tree_util.tree_map(lambda p, gi: p - lr * gi, ps, g), state, loss
            step, m, v = state
            step = step + 1
            m = jax.tree_util.tree_map(lambda mi, gi: b1 * mi + (1 - b1) * gi, m, g)
            v = jax.tree_util.tree_map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, g)
            c1 = 1 / (1 - b1 ** step)
            c2 = 1 / (1 - b2 ** step)
            ps = jax.tree_util.tree_map(lambda p, mi, vi: p - lr * (mi * c1) / (jnp.sqrt(vi * c2) + eps), ps, m, v)
            return ps, (step, m, v), loss

        jitted = jax.jit(train_step, donate_argnums=(0, 1))
        x = jnp.asarray(pc.make_inputs(case))
        holder = {"params": params, "state": opt_state}

        def step():
            holder["params"], holder["state"], loss = jitted(holder["params"], holder["state"], x, target)
            return loss

        try:
            fields = pc.measure(step, lambda loss: float(loss.block_until_ready()), args.repeats, args.repeat_ms)
            pc.emit(case, "jax", "jax_jit", args.threads, fields, note=note)
        except Exception as e:  # noqa: BLE001 - report why, never drop the row
            pc.emit(case, "jax", "jax_jit", args.threads, skipped=f"jax step failed: {pc.describe(e)}")


if __name__ == "__main__":
    main()
