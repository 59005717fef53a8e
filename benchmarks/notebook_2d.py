"""Benchmark: the notebook's 2-D experiment, one config, jaxreg against the notebook's NumPy loop.

Network 2-64-128-1 (ReLU, sigmoid output, binary cross-entropy), batch 16, EMA momentum 0.9,
lr 0.1 decayed by 0.0005 per epoch, 2000 epochs, evaluating the whole training set after each
epoch as the notebook does. Both run in this one process, side by side; the report gives
seconds and the ratio. jaxreg's compile time is reported separately from its run time.

    python benchmarks/notebook_2d.py [--epochs 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

import jaxreg

SHAPE, BATCH, ALPHA, GAMMA, BETA = (2, 64, 128, 1), 16, 0.1, 0.0005, 0.9


def numpy_notebook(x, y, epochs: int, seed: int = 1234):
    """The notebook's ``train_dec`` loop: mini-batch GD with EMA momentum, float64."""
    rng = np.random.RandomState(seed)
    w = {l: rng.randn(SHAPE[l - 1], SHAPE[l]) * np.sqrt(2.0 / SHAPE[l - 1]) for l in range(1, 4)}
    b = {l: np.zeros((SHAPE[l], 1)) for l in range(1, 4)}
    dw = {l: np.zeros_like(w[l]) for l in w}
    db = {l: np.zeros_like(b[l]) for l in b}
    relu = lambda z: np.maximum(z, 0)
    sig = lambda z: 1 / (1 + np.exp(-z))

    def forward(x0):
        h = x0
        for l in (1, 2):
            h = relu(h @ w[l] + b[l].T)
        return sig(h @ w[3] + b[3].T)

    costs = np.zeros(epochs)
    alpha = ALPHA
    yhat = y.reshape(-1, 1).astype(np.float64)
    for epoch in range(epochs):
        for i in range(0, len(x), BATCH):
            x0, yb = x[i:i + BATCH], yhat[i:i + BATCH]
            xs, zs = {0: x0}, {}
            for l in (1, 2, 3):
                zs[l] = xs[l - 1] @ w[l] + b[l].T
                xs[l] = relu(zs[l]) if l < 3 else sig(zs[l])
            n = len(yb)
            delta = (xs[3] - yb).T  # dJ/dy * dsig/dz for cross-entropy, as the notebook's product
            for l in (3, 2, 1):
                if l < 3:
                    delta = (w[l + 1] @ delta) * (zs[l] > 0).T
                dw[l] = BETA * dw[l] + (1 - BETA) * (delta @ xs[l - 1]).T / n
                db[l] = BETA * db[l] + (1 - BETA) * delta.mean(axis=1, keepdims=True)
            for l in (1, 2, 3):
                w[l] -= alpha * dw[l]
                b[l] -= alpha * db[l]
        alpha *= 1 - GAMMA
        p = forward(x)
        costs[epoch] = np.mean(-(yhat * np.log(p + 1e-6) + (1 - yhat) * np.log(1 - p + 1e-6)))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ds = jaxreg.data.load("blobs")
    net = jaxreg.mlp(SHAPE, output="sigmoid")
    config = jaxreg.TrainConfig(model=net, data=ds, loss="bce", optimizer="ema_momentum",
                                epochs=args.epochs, batch_size=BATCH, shuffle=False,
                                dropout=False, monitor="train_loss")
    hp = jaxreg.make_hparams(net, learning_rate=ALPHA, lr_decay=GAMMA, momentum=BETA)
    train = jax.jit(jaxreg.make_train(config))
    key = jaxreg.member_key(0)

    start = time.perf_counter()
    compiled = train.lower(key, hp, config.data, None).compile()
    compile_s = time.perf_counter() - start

    def best_of(fn):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    jax_s = best_of(lambda: jax.block_until_ready(compiled(key, hp, config.data, None)))
    x, y = np.asarray(ds.train.x, np.float64), np.asarray(ds.train.y)
    numpy_s = best_of(lambda: numpy_notebook(x, y, args.epochs))
    report = {
        "benchmark": "notebook_2d", "epochs": args.epochs, "repeats (best of)": args.repeats,
        "numpy_s": round(numpy_s, 3), "jaxreg_run_s": round(jax_s, 3),
        "jaxreg_compile_s": round(compile_s, 3), "speedup (numpy / jaxreg)": round(numpy_s / jax_s, 1),
        "jax": jax.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "devices": [str(d) for d in jax.devices()],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
