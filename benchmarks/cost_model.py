"""Benchmark: ``jaxreg plan``'s cost estimate against the measured training time of the same sweeps.

For each spec: the estimate (:mod:`jaxreg.sweeps.cost`, what ``plan`` prints), then the sweep run
twice into fresh folders in this process; the second run finds its program compiled (the
memo), so its wall time is training plus the sweep's bookkeeping, which is what the estimate
predicts. Prints one line per spec with the ratio estimate / measured.

    python benchmarks/cost_model.py [SPEC ...]   # default: the specs below
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from jaxreg.sweeps import build_spec, choose_chunk_size, load_spec, run_sweep
from jaxreg.sweeps.cost import estimate

SPECS = {
    "demo (digits MLP, adam, 35 trials)": "sweeps/demo.toml",
    "blobs MLP 2-96-96-1, batch 1, 16 trials": {
        "name": "blobs-96", "data": {"dataset": "blobs"}, "model": {"hidden": [96, 96]},
        "train": {"loss": "bce", "epochs": 200, "eval_every": 5, "batch_size": 1},
        "hparams": {"learning_rate": {"values": [0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 4.0]}},
        "search": {"seeds": 2, "chunk_size": 8}, "output": {"plots": False}},
    "blobs MLP 2-256-256-1, batch 1, 16 trials": {
        "name": "blobs-256", "data": {"dataset": "blobs"}, "model": {"hidden": [256, 256]},
        "train": {"loss": "bce", "epochs": 100, "eval_every": 5, "batch_size": 1},
        "hparams": {"learning_rate": {"values": [0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 4.0]}},
        "search": {"seeds": 2, "chunk_size": 8}, "output": {"plots": False}},
    "digits CNN, batch 32, 8 trials": {
        "name": "digits-cnn", "data": {"dataset": "digits", "n_train": 500},
        "model": {"kind": "cnn", "channels": [8, 16]},
        "train": {"loss": "cross_entropy", "epochs": 20, "batch_size": 32},
        "hparams": {"learning_rate": {"values": [0.01, 0.03, 0.1, 0.3]}},
        "search": {"seeds": 2}, "output": {"plots": False}},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("specs", nargs="*", help="spec files (default: a built-in set)")
    args = parser.parse_args()
    specs = {path: path for path in args.specs} or SPECS
    rows = []
    for label, source in specs.items():
        spec = load_spec(source) if isinstance(source, str) else build_spec(source)
        costs = []
        for variant in spec.variants:
            members = len(variant.space.configs(0)) * len(spec.seeds)
            costs.append(estimate(variant, members, choose_chunk_size(spec, members, variant)))
        estimated = sum(c.seconds for c in costs) * spec.search["rounds"]
        times = []
        for _ in range(2):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                run_sweep(spec, Path(out) / "run", progress=False)
                times.append(time.perf_counter() - started)
        rows.append({"spec": label, "estimated_s": round(estimated, 2), "first_run_s": round(times[0], 2),
                     "measured_s": round(times[1], 2), "ratio": round(estimated / times[1], 2)})
        print(f"{label}: estimated {estimated:.1f} s, measured {times[1]:.1f} s (first run, compiling: "
              f"{times[0]:.1f} s), ratio {estimated / times[1]:.2f}", flush=True)
    json.dump(rows, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
