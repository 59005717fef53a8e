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
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402

SHAPE, BATCH, ALPHA, GAMMA, BETA = (2, 64, 128, 1), 16, 0.1, 0.0005, 0.9


def numpy_notebook(x, y, epochs: int, seed: int = 1234):
    """The notebook's ``train_dec`` loop as it is written (``benchmarks/peers.py``), with the
    whole-set cost and accuracy after every epoch, as the notebook evaluates its training set."""
    return peers.numpy_notebook(x, y, x, y, epochs, seed)


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
