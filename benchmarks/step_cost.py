"""Benchmark: where a member-step of the notebook's network goes, at one chunk size.

The 2-64-128-1 network (batch 16, EMA momentum, L2, a fixed data order, 100 training and 100
validation points), ``--members`` members trained for ``--epochs`` epochs by ``train_batch``,
in microseconds per member-step (min of ``--repeats``), each variant leaving out one more part:

* every metric every epoch (the sweep default); only the validation metrics; one evaluation
  at the end (the step alone); the flat params layout with every penalty compiled;
* a bare JAX loop of the same training with the validation loss every epoch (the floor);
* the member axis of the middle layer's forward product, member-major (what ``vmap`` makes)
  against member-minor (members last), as bare kernels.

    python benchmarks/step_cost.py [--members 64] [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg


def per_member_step(run, members: int, steps: int, repeats: int) -> float:
    jax.block_until_ready(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    return round(min(times) / members / steps * 1e6, 2)


def bare_jax(ds, epochs: int):
    """The same training written directly in JAX: per-layer params, EMA momentum, L2, lr decay,
    the validation loss after every epoch."""
    x, y = jnp.asarray(ds.train.x), jnp.asarray(ds.train.y, jnp.float32)
    xv, yv = jnp.asarray(ds.val.x), jnp.asarray(ds.val.y, jnp.float32)
    sizes = (2, 64, 128, 1)

    def loss(p, xb, yb):
        h = xb
        for i, layer in enumerate(p):
            h = h @ layer["w"] + layer["b"]
            if i < 2:
                h = jax.nn.relu(h)
        z = h[:, 0]
        return jnp.mean(jnp.maximum(z, 0) - z * yb + jnp.log1p(jnp.exp(-jnp.abs(z))))

    def train(key, lr, l2):
        keys = jax.random.split(key, 3)
        p = [{"w": jax.random.normal(k, (a, b)) * jnp.sqrt(2 / a), "b": jnp.zeros(b)}
             for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
        v = jax.tree_util.tree_map(jnp.zeros_like, p)
        n_full = len(x) // 16

        def step(carry, batch):
            p, v, lr_e = carry
            g = jax.grad(loss)(p, *batch)
            g = [{"w": gl["w"] + l2 * pl["w"], "b": gl["b"]} for gl, pl in zip(g, p)]
            v = jax.tree_util.tree_map(lambda v, g: 0.9 * v + 0.1 * g, v, g)
            return (jax.tree_util.tree_map(lambda p, v: p - lr_e * v, p, v), v, lr_e), None

        def epoch(carry, e):
            p, v = carry
            lr_e = lr * (1 - 0.0005) ** e
            batches = (x[:n_full * 16].reshape(n_full, 16, -1), y[:n_full * 16].reshape(n_full, 16))
            (p, v, _), _ = jax.lax.scan(step, (p, v, lr_e), batches)
            (p, v, _), _ = step((p, v, lr_e), (x[n_full * 16:], y[n_full * 16:]))
            return (p, v), loss(p, xv, yv)

        return jax.lax.scan(epoch, (p, v), jnp.arange(epochs, dtype=jnp.float32))[1]

    return jax.jit(jax.vmap(train))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    m, epochs = args.members, args.epochs
    ds = jaxreg.data.load("blobs", n_val=100, n_test=10)
    data = jaxreg.as_data(ds)
    net = jaxreg.mlp((2, 64, 128, 1), output="sigmoid")
    steps = epochs * -(-len(ds.train.y) // 16)
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(net, learning_rate=0.1, lr_decay=0.0005, momentum=0.9, l2=1e-3)
                                for _ in range(m)])
    base = jaxreg.TrainConfig(model=net, loss="bce", optimizer="ema_momentum", epochs=epochs, batch_size=16,
                              shuffle=False, dropout=False, monitor="val_loss", penalties=("l2",))
    variants = {
        "every metric every epoch": {},
        "validation metrics every epoch": {"metrics": ("val_loss", "val_accuracy")},
        "the step alone (one evaluation at the end)": {"eval_every": epochs, "metrics": ("val_loss",)},
        "flat layout, every penalty compiled, every metric": {"layout": "flat", "penalties": ("l2", "l1", "weight_decay")},
    }
    report = {"benchmark": "step_cost", "members": m, "epochs": epochs, "us per member-step": {}}
    for name, changes in variants.items():
        import dataclasses
        batch = jaxreg.train_batch(dataclasses.replace(base, **changes), data, chunk_size=m)
        report["us per member-step"][name] = per_member_step(lambda: batch(np.arange(m), hps), m, steps, args.repeats)
    bare = bare_jax(ds, epochs)
    keys = jax.random.split(jax.random.key(0), m)
    lrs, l2s = jnp.full(m, 0.1), jnp.full(m, 1e-3)
    report["us per member-step"]["bare JAX, validation loss every epoch"] = per_member_step(
        lambda: bare(keys, lrs, l2s), m, steps, args.repeats)
    rng = np.random.RandomState(0)
    h, w = rng.randn(m, 16, 64).astype(np.float32), rng.randn(m, 64, 128).astype(np.float32)
    flops = 2 * m * 16 * 64 * 128
    for name, (spec, a, b) in {"member-major (m,b,i) @ (m,i,j)": ("mbi,mij->mbj", h, w),
                               "member-minor (b,i,m) @ (i,j,m)": ("bim,ijm->bjm", h.transpose(1, 2, 0),
                                                                  w.transpose(1, 2, 0))}.items():
        f = jax.jit(lambda a, b, spec=spec: jnp.einsum(spec, a, b))
        a, b = jnp.asarray(a), jnp.asarray(b)
        seconds = per_member_step(lambda: f(a, b), 1, 1, 20) / 1e6
        report[f"forward product GFLOP/s, {name}"] = round(flops / seconds / 1e9, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
