"""Benchmark: cost per member of a vmapped sweep, against the member count of one compiled batch.

The notebook's 2-D problem (2-64-128-1, batch 16, EMA momentum, shuffled per member), trained
for a few epochs by ``train_batch`` with 1 (plain ``jit``), 2, 4, ... members. Reports
microseconds per member-step for each size, so a sweep's chunk size can be chosen, and so any
change to the engine shows whether batching members pays.

    python benchmarks/sweep_scaling.py [--epochs 50] [--sizes 1 2 4 8 16 32 64]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

import jaxreg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ds = jaxreg.data.load("blobs", n_val=0)
    net = jaxreg.mlp((2, 64, 128, 1), output="sigmoid")
    data = jaxreg.as_data(ds)
    config = jaxreg.TrainConfig(model=net, loss="bce", optimizer="ema_momentum",
                                epochs=args.epochs, batch_size=16, shuffle=True, dropout=False,
                                monitor="train_loss")
    steps = args.epochs * -(-len(ds.train.y) // 16)
    report = {"benchmark": "sweep_scaling", "epochs": args.epochs, "steps per member": steps,
              "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "jax": jax.__version__,
              "cpus": os.cpu_count(), "us per member-step": {}}
    for size in args.sizes:
        hps = [jaxreg.make_hparams(net, learning_rate=0.1, lr_decay=0.0005, momentum=0.9,
                                   l2=0.003 * (i % 2)) for i in range(size)]
        if size == 1:
            train = jax.jit(jaxreg.make_train(config))
            run = lambda: train(jaxreg.member_key(0), hps[0], data, None)
        else:
            batch = jaxreg.train_batch(config, data)
            stacked = jaxreg.stack_hparams(hps)
            run = lambda: batch(np.arange(size), stacked)
        jax.block_until_ready(run())  # compile
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(run())
            times.append(time.perf_counter() - start)
        report["us per member-step"][size] = round(min(times) / size / steps * 1e6, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
