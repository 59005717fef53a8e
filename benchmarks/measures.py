"""Benchmark: what ``train.measures`` adds to a sweep's training, side by side in one run.

One digits config (120 training images, MLP 64-256-10, adam, 40 epochs, batch 20, evaluation
every 4 epochs) trained as a chunk of ``--members`` members by ``jaxreg.train_batch``, three ways:
no measures; every measure but the Hessian's (norm product, path norm, margin, sharpness and
magnitude-aware sharpness: 16 perturbed forward passes of the training split); and the Hessian's
top eigenvalue alone (20 power iterations: forward and backward passes over the training split).
Each program is compiled first (its compile time reported apart), then run ``--repeats`` times,
the three alternated so that load on a shared machine hits them alike; the medians and the ratios
to the run without measures are printed as one JSON line. The issue's target: measures on (the
Hessian excepted) add at most 10% to the wall time.

    python benchmarks/measures.py [--members 16] [--repeats 3] [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np

import jaxreg
from jaxreg.data import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    data = jaxreg.as_data(load("digits", key=jax.random.key(0), n_train=120))
    net = jaxreg.mlp((64, 256, 10))
    base = jaxreg.TrainConfig(net, optimizer="adam", epochs=args.epochs, batch_size=20, eval_every=4, eval_test=True)
    variants = {"none": (), "all_but_hessian": ("norm_product", "path_norm", "margin", "sharpness", "mag_sharpness"),
                "hessian": ("hessian",)}
    l2 = np.geomspace(1e-5, 1e-2, args.members)
    hparams = jaxreg.stack_hparams([jaxreg.make_hparams(net, learning_rate=0.003, l2=float(v)) for v in l2])
    seeds = np.arange(args.members)
    runs, compile_s = {}, {}
    for name, measures in variants.items():
        run = jaxreg.train_batch(base.__class__(**{**base.__dict__, "measures": measures}), data,
                                 chunk_size=args.members)
        start = time.perf_counter()
        jax.block_until_ready(run(seeds, hparams).final)  # compiles, then trains once
        compile_s[name] = time.perf_counter() - start
        runs[name] = run
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(run(seeds, hparams).final)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(json.dumps({"members": args.members, "epochs": args.epochs, "repeats": args.repeats,
                      "train_s": {n: round(v, 3) for n, v in median.items()},
                      "first_call_s (compile + train)": {n: round(v, 2) for n, v in compile_s.items()},
                      "ratio_to_none": {n: round(v / median["none"], 3) for n, v in median.items()},
                      "target": "all_but_hessian <= 1.10"}))


if __name__ == "__main__":
    main()
