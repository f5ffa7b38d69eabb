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
"""
import os
import sys

import peer_common as pc


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
