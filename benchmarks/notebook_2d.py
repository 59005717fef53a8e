"""Benchmark: the notebook's 2-D experiment, one config, jaxreg against the notebook's NumPy loop.

Network 2-64-128-1 (ReLU, sigmoid output, binary cross-entropy), batch 16, EMA momentum 0.9,
lr 0.1 decayed by 0.0005 per epoch, 2000 epochs, evaluating the whole training set after each
epoch as the notebook does. Timed side by side in one process, interleaved, best of
``--repeats``: the notebook's NumPy loop; jaxreg recording what the notebook computes, the
whole-set cost and accuracy (``metrics=("train_loss", "train_accuracy")``); jaxreg's default,
which also records the running epoch loss and accuracy, the penalty, the weight norm and the
fraction of zero weights; and the same loop written directly in JAX with nothing else (the
floor any JAX program of this loop pays on the machine). Compile times are reported apart.

    python benchmarks/notebook_2d.py [--epochs 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg

SHAPE, BATCH, ALPHA, GAMMA, BETA = (2, 64, 128, 1), 16, 0.1, 0.0005, 0.9


def numpy_notebook(x, y, epochs: int, seed: int = 1234):
    """The notebook's ``train_dec`` loop as it is written: ``forwardn`` then ``backward_mom``
    (which recomputes the forward pass), dict-of-layers params, float64, EMA momentum, lr decay,
    and the whole-set cost and accuracy after every epoch."""
    rng = np.random.RandomState(seed)
    w = {l: rng.randn(SHAPE[l - 1], SHAPE[l]) * np.sqrt(2.0 / SHAPE[l - 1]) for l in range(1, 4)}
    b = {l: np.zeros((SHAPE[l], 1)) for l in range(1, 4)}
    relu = lambda z: np.maximum(z, 0)
    drelu_dz = lambda z: (z > 0).astype(float)
    sig = lambda z: 1 / (1 + np.exp(-z))
    dsig_dz = lambda z: sig(z) * (1 - sig(z))
    J = lambda y_, yh: -(yh * np.log(y_ + 1e-6) + (1 - yh) * np.log(1 - y_ + 1e-6))
    dJ_dy = lambda y_, yh: (1 - yh) / (1 - y_ + 1e-8) - yh / (y_ + 1e-8)

    def forwardn(x0):
        x_prev = x0
        for l in range(1, len(w)):
            x_prev = relu(np.dot(x_prev, w[l]) + b[l].T)
        return sig(np.dot(x_prev, w[len(w)]) + b[len(w)].T)

    def backward_mom(x0, y_, yh, dw, db, alpha, beta):
        n_layers, batch_size = len(w), len(yh)
        z, xs, delta = {}, {0: x0}, {}
        for l in range(1, n_layers + 1):
            z[l] = np.matmul(xs[l - 1], w[l]) + b[l].T
            xs[l] = relu(z[l])
        for l in range(n_layers, 0, -1):
            if l == n_layers:
                delta[l] = (dJ_dy(y_, yh) * dsig_dz(z[n_layers])).T
            else:
                delta[l] = np.matmul(w[l + 1], delta[l + 1]) * drelu_dz(z[l]).T
            dw_new = np.matmul(delta[l], xs[l - 1]).T / batch_size
            db_new = delta[l].mean(axis=1, keepdims=True)
            dw[l] = beta * dw[l] + (1 - beta) * dw_new
            db[l] = beta * db[l] + (1 - beta) * db_new
            w[l] -= alpha * dw[l]
            b[l] -= alpha * db[l]
        return dw, db

    yhat = y.reshape(-1, 1).astype(np.float64)
    costs, accuracy = np.zeros(epochs), 0.0
    dw = {l: np.zeros_like(wl) for l, wl in w.items()}
    db = {l: np.zeros_like(bl) for l, bl in b.items()}
    alpha = ALPHA
    for epoch in range(epochs):
        for i in range(0, len(x), BATCH):
            x_batch, yh = x[i:i + BATCH], yhat[i:i + BATCH]
            y_ = forwardn(x_batch)
            dw, db = backward_mom(x_batch, y_, yh, dw, db, alpha, BETA)
        alpha *= 1 - GAMMA
        predictions = forwardn(x)
        costs[epoch] = np.mean(J(predictions, yhat))
        accuracy = np.mean(predictions.round() == yhat)
    return costs, accuracy


def plain_jax_notebook(x, y, epochs: int):
    """The same loop written directly in JAX, nothing else: the floor any JAX program pays.

    Float32 params as a list of layers, ``jax.grad`` of the mean cross-entropy, EMA momentum,
    per-epoch lr decay, the whole-set cost and accuracy after every epoch; one ``lax.scan``
    over the full mini-batches inside one over epochs. No early stopping, divergence guard,
    metrics or keys: the difference to jaxreg's time is what those cost.
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    keys = jax.random.split(jax.random.key(0), 3)
    params = [{"w": jax.random.normal(k, (m, n)) * np.sqrt(2.0 / m), "b": jnp.zeros(n)}
              for k, m, n in zip(keys, SHAPE[:-1], SHAPE[1:])]
    n_full = len(x) // BATCH

    def cost(p, xb, yb):
        h = xb
        for layer in p[:-1]:
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
        z = (h @ p[-1]["w"] + p[-1]["b"])[:, 0]
        return jnp.mean(jnp.maximum(z, 0) - z * yb + jnp.log1p(jnp.exp(-jnp.abs(z)))), z

    def step(carry, batch):
        p, v, lr = carry
        g = jax.grad(lambda p: cost(p, *batch)[0])(p)
        v = jax.tree_util.tree_map(lambda v, g: BETA * v + (1 - BETA) * g, v, g)
        p = jax.tree_util.tree_map(lambda p, v: p - lr * v, p, v)
        return (p, v, lr), None

    def epoch(carry, e):
        p, v = carry
        lr = ALPHA * (1 - GAMMA) ** e
        batches = (x[:n_full * BATCH].reshape(n_full, BATCH, -1), y[:n_full * BATCH].reshape(n_full, BATCH))
        (p, v, _), _ = jax.lax.scan(step, (p, v, lr), batches)
        if len(x) > n_full * BATCH:
            (p, v, _), _ = step((p, v, lr), (x[n_full * BATCH:], y[n_full * BATCH:]))
        loss, z = cost(p, x, y)
        return (p, v), (loss, jnp.mean((z > 0) == (y > 0.5)))

    def train(p):
        v = jax.tree_util.tree_map(jnp.zeros_like, p)
        return jax.lax.scan(epoch, (p, v), jnp.arange(epochs, dtype=jnp.float32))

    start = time.perf_counter()
    compiled = jax.jit(train).lower(params).compile()
    return functools.partial(compiled, params), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    # The notebook trains and reports on its 100 points only: no validation split to evaluate.
    ds = jaxreg.data.load("blobs", n_val=0)
    net = jaxreg.mlp(SHAPE, output="sigmoid")
    hp = jaxreg.make_hparams(net, learning_rate=ALPHA, lr_decay=GAMMA, momentum=BETA)
    key = jaxreg.member_key(0)
    x, y = np.asarray(ds.train.x, np.float64), np.asarray(ds.train.y)
    data = jaxreg.as_data(ds)

    # "jaxreg": what the notebook computes, the whole-set cost and accuracy after each epoch.
    # "jaxreg, all metrics": the default TrainConfig, which records every metric.
    runs, compile_s = {}, {}
    for name, metrics in (("jaxreg", ("train_loss", "train_accuracy")), ("jaxreg, all metrics", None)):
        config = jaxreg.TrainConfig(model=net, loss="bce", optimizer="ema_momentum",
                                    epochs=args.epochs, batch_size=BATCH, shuffle=False,
                                    dropout=False, monitor="train_loss", metrics=metrics)
        start = time.perf_counter()
        compiled = jax.jit(jaxreg.make_train(config)).lower(key, hp, data, None).compile()
        compile_s[name] = time.perf_counter() - start
        runs[name] = functools.partial(compiled, key, hp, data, None)
    runs["plain JAX"], compile_s["plain JAX"] = plain_jax_notebook(x, y, args.epochs)
    runs["numpy"] = functools.partial(numpy_notebook, x, y, args.epochs)

    # Interleaved, so all see the same machine load; the best of each is reported.
    times, outputs = {name: [] for name in runs}, {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = jax.block_until_ready(run())
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    numpy_s = best["numpy"]
    report = {
        "benchmark": "notebook_2d", "epochs": args.epochs, "repeats (best of)": args.repeats,
        "numpy_s": round(numpy_s, 3),
        **{f"{name}_run_s": round(best[name], 3) for name in compile_s},
        **{f"{name}_compile_s": round(seconds, 3) for name, seconds in compile_s.items()},
        **{f"speedup (numpy / {name})": round(numpy_s / best[name], 1) for name in compile_s},
        "final train accuracy (numpy, jaxreg)": [
            round(float(outputs["numpy"][1]), 3),
            round(float(outputs["jaxreg"].curves["train_accuracy"][-1]), 3)],
        "jaxreg / plain JAX (run time)": round(best["jaxreg"] / best["plain JAX"], 2),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "jax": jax.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
