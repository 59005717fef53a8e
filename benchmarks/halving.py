"""Benchmark: successive halving with compaction against the same halving with pruned members
kept in their chunk (frozen by the mask, still computed), side by side in one process.

The experiment-8 network (digits, MLP 64-64-10, momentum), ``--configs`` random configs x 2 seeds,
``--epochs`` epochs, ``eta = 4`` from ``--epochs / 8``: 3/4 of the configs are pruned at the first
rung (an eighth of training), 3/4 of the rest at the second. Both variants are compiled first (one
program per chunk size), then timed ``--repeats`` times each, interleaved; prints min/median/max
and one JSON line with the ratio compacted / in place and whether it meets the target (<= 0.40),
next to the ideal ratio (member-epochs computed, compacted over in place), and the largest relative
change of a journaled loss between the two, next to the change a chunk size alone makes today (the
survivors trained from the start in chunks of their last bucket size and of the first).

Then the same for early stopping: a grid sweep whose members diverge in 3 of 4 configs (the
divergence guard stops them in their first epochs), with ``search.compact = true`` and without,
as whole ``run_sweep`` calls.

    python benchmarks/halving.py [--configs 64] [--epochs 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxreg.batch import train_batch
from jaxreg.report.store import Store
from jaxreg.sweeps import build_spec, config_id, run_sweep
from jaxreg.sweeps.executor import Executor, Progress
from jaxreg.sweeps.halving import Halving, Race, bucket, rung_epochs
from jaxreg.sweeps.run import choose_chunk_size, study
from jaxreg.sweeps.strategies import make_search


def spec(configs: int, epochs: int) -> dict:
    return {"name": "halving-bench", "data": {"dataset": "digits", "seed": 0}, "model": {"hidden": [64]},
            "train": {"loss": "cross_entropy", "optimizer": "momentum", "epochs": epochs, "batch_size": 32,
                      "eval_every": epochs // 8},
            "hparams": {"momentum": 0.9, "learning_rate": {"log_uniform": [1e-4, 1.0]},
                        "l2": {"uniform": [0.0, 1e-3]}},
            "search": {"method": "halving", "samples": configs, "seeds": 2, "eta": 4, "min_epochs": epochs // 8},
            "output": {"plots": False}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    built = build_spec(spec(args.configs, args.epochs))
    (variant,) = built.variants
    trials = [(config_id(c), c, seed) for c in variant.space.configs(0) for seed in built.seeds]
    size = choose_chunk_size(built, len(trials), variant)
    runner = train_batch(variant.config, variant.dataset, size)
    rungs = rung_epochs(args.epochs, args.epochs // 8, 4)

    def once(compact: bool) -> tuple[float, dict]:
        with tempfile.TemporaryDirectory() as out:
            store = Store(Path(out))
            store.curves_dir.mkdir(parents=True)
            records = {}
            start = time.perf_counter()  # the state kept at rungs only: no file written within them
            strategy = Halving(make_search(variant.space), built.seeds, Race(lambda r: rungs, 4, "val_loss", compact=compact),
                               chunk_size=size, every=variant.config.eval_every, label=lambda r: "halving")
            executor = Executor(checkpoint_seconds=float("inf"))
            executor.open(store, records, Progress(bars=False), digest=built.digest, save_params=False)
            executor.begin(0, variant, runner, strategy)
            study(executor, records, {})
            return time.perf_counter() - start, records

    _, compacted = once(True)   # compiles one program per chunk size
    _, in_place = once(False)   # compiles nothing new: one chunk size
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for compact in (True, False):
            times[compact].append(once(compact)[0])
    left = [len(trials)] + [sum(1 for r in compacted.values() if r["trained_epochs"] > e) for e in rungs[:-1]]
    computed = sum(bucket(n, size) * (b - a) for n, a, b in zip(left, [0, *rungs[:-1]], rungs))
    ideal = computed / (size * args.epochs * -(-len(trials) // size))
    relative = lambda a, b: abs(a - b) / max(abs(b), 1e-30)
    drift = [relative(a["metrics"][k], in_place[key]["metrics"][k]) for key, a in compacted.items()
             if a["pruned_epoch"] is None for k in ("val_loss", "train_loss")]
    # Today's drift from a chunk size alone: the survivors trained from the start in chunks of
    # their last bucket and of the first.
    survivors = sorted({(r["hparams"]["learning_rate"], r["hparams"]["l2"]) for r in compacted.values()
                        if r["pruned_epoch"] is None})
    grid = spec(args.configs, args.epochs)
    grid["hparams"] = {"momentum": 0.9}
    grid["cases"] = {f"c{i}": {"learning_rate": lr, "l2": l2} for i, (lr, l2) in enumerate(survivors)}
    by_chunk = []
    for chunk in (left[-1], size):
        grid["search"] = {"method": "grid", "seeds": 2, "chunk_size": chunk}
        with tempfile.TemporaryDirectory() as out:
            got = run_sweep(build_spec(grid), Path(out) / "grid", progress=False, log=lambda line: None)
        by_chunk.append({(r["hparams"]["learning_rate"], r["seed"]): r["metrics"] for r in got})
    chunk_drift = [relative(m[k], by_chunk[1][key][k]) for key, m in by_chunk[0].items() for k in ("val_loss", "train_loss")]
    stats = {c: (min(t), float(np.median(t)), max(t)) for c, t in times.items()}
    for compact, label in ((True, "compacted"), (False, "in place")):
        lo, mid, hi = stats[compact]
        print(f"{label:>9}: min {lo:.2f} s, median {mid:.2f} s, max {hi:.2f} s", file=sys.stderr)
    ratio = stats[True][1] / stats[False][1]
    stopping = early_stopping(args.configs, args.epochs, args.repeats)
    print(json.dumps({"benchmark": "halving", "members": len(trials), "chunk_size": size, "epochs": args.epochs,
                      "rungs": rungs, "members_per_rung": left, "ratio_median": round(ratio, 3),
                      "ratio_ideal": round(ideal, 3), "target": 0.40, "met": ratio <= 0.40,
                      "survivors_drift_median_max": [float(np.median(drift)), max(drift)],
                      "chunk_size_drift_median_max": [float(np.median(chunk_drift)), max(chunk_drift)], "machine": platform.processor() or platform.machine(),
                      "jax": jax.__version__}))
    print(json.dumps(stopping))
    return 0


def early_stopping(configs: int, epochs: int, repeats: int) -> dict:
    """A grid sweep where 3/4 of the members diverge in their first epochs (the divergence guard
    stops them), with ``search.compact`` against without: whole ``run_sweep`` calls, warm."""
    raw = spec(configs, epochs)
    good = configs // 4
    rates = np.geomspace(0.01, 0.3, good).tolist() + np.geomspace(1e20, 1e30, configs - good).tolist()
    raw["hparams"] = {"momentum": 0.9, "learning_rate": {"values": rates}}
    raw["search"] = {"method": "grid", "seeds": 2}
    times, journals = {True: [], False: []}, {}
    for compact in (True, False, *[c for _ in range(repeats) for c in (True, False)]):
        raw["search"]["compact"] = compact
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            journals[compact] = run_sweep(build_spec(raw), Path(out) / "run", progress=False)
            times[compact].append(time.perf_counter() - start)
    for compact in (True, False):
        times[compact] = times[compact][1:]  # the first call of each compiled its programs
    diverged = sum(r["status"] == "diverged" for r in journals[False])
    medians = {c: float(np.median(t)) for c, t in times.items()}
    for compact, label in ((True, "compact"), (False, "plain")):
        t = times[compact]
        print(f"early stopping, {label:>7}: min {min(t):.2f} s, median {medians[compact]:.2f} s, max {max(t):.2f} s",
              file=sys.stderr)
    ratio = medians[True] / medians[False]
    return {"benchmark": "early stopping compaction", "members": len(journals[False]), "diverged": diverged,
            "ratio_median": round(ratio, 3), "target": 0.40, "met": ratio <= 0.40}


if __name__ == "__main__":
    sys.exit(main())
