"""Benchmark: an L2 path against a cold grid of the same strengths, on the notebook's 2-D problem.

The problem, network and schedule of ``sweeps/notebook-2d.toml`` (100 blobs points, MLP
2-64-128-1, EMA momentum, lr 0.1 decayed by 0.0005 per epoch, batches of 16 in a fixed order),
evaluated every ``--eval-every`` epochs. ``--points`` L2 strengths from ``--max`` down by
``--ratio``, ``--seeds`` seeds each:

- cold: a grid, every strength trained from the init for ``--epochs`` (the notebook's 2000:
  trained to convergence);
- path: ``search.method = "path"``, the first (largest) strength trained as the cold one, every
  later one for ``--point-epochs`` from the params the point before returned.

Both run in this process, one after the other, through ``run_sweep``. For every strength it
prints the validation loss of each (mean over seeds), the cold run's seed standard error and
whether the path's mean is within one of them (``|path - cold| <= SE``); then the epochs each
trained in all (per seed: the sum over strengths of the epochs trained) and their ratio, and
one JSON line. Targets: every strength within one SE, and path epochs <= cold epochs / 5.

    python benchmarks/path.py [--points 30] [--max 0.03] [--ratio 0.87] [--epochs 2000] [--point-epochs 340]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxreg.report.stats import mean_se
from jaxreg.sweeps import build_spec, read_spec, run_sweep
from jaxreg.sweeps.path import strengths

SPEC = Path(__file__).resolve().parents[1] / "sweeps" / "notebook-2d.toml"


def specs(args) -> tuple[dict, dict]:
    """The cold grid's spec and the path's, from the notebook's."""
    raw = read_spec(SPEC)
    raw.pop("cases")
    raw["train"] = {**raw["train"], "epochs": args.epochs, "eval_every": args.eval_every}
    raw["output"] = {"params": False, "plots": False}
    path_keys = {"path_max": args.max, "path_ratio": args.ratio, "path_points": args.points,
                 "path_epochs": args.point_epochs}
    values = strengths(path_keys)
    cold = {**raw, "name": "cold", "hparams": {**raw["hparams"], "l2": {"values": values}},
            "search": {"method": "grid", "seeds": args.seeds, "metric": "val_loss"}}
    path = {**raw, "name": "path",
            "search": {"method": "path", "seeds": args.seeds, "metric": "val_loss", **path_keys}}
    return cold, path


def trained_epochs(record: dict, epochs: int) -> int:
    """Epochs a trial trained: its path budget, or where early stopping or divergence ended it."""
    if "trained_epochs" in record:
        return record["trained_epochs"]
    return record["stopped_epoch"] or record["diverged_epoch"] or epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--max", type=float, default=0.03)
    parser.add_argument("--ratio", type=float, default=0.87)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--point-epochs", type=int, default=340)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    cold_raw, path_raw = specs(args)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = {}
        for name, raw in (("cold", cold_raw), ("path", path_raw)):
            started = time.perf_counter()
            records = run_sweep(build_spec(raw), Path(tmp) / name, progress=False)
            seconds[name] = time.perf_counter() - started
            if name == "cold":
                cold = records
            else:
                path = records
    by_strength = {}
    for kind, records in (("cold", cold), ("path", path)):
        for r in records:
            by_strength.setdefault(r["hparams"]["l2"], {}).setdefault(kind, []).append(r)
    rows, within, not_worse = [], [], []
    print(f"{'l2':>10} {'cold val_loss':>14} {'SE':>8} {'path val_loss':>14} {'path - cold':>12} {'in 1 SE':>8}")
    for l2 in sorted(by_strength, reverse=True):
        c = [r["metrics"]["val_loss"] for r in sorted(by_strength[l2]["cold"], key=lambda r: r["seed"])]
        p = [r["metrics"]["val_loss"] for r in sorted(by_strength[l2]["path"], key=lambda r: r["seed"])]
        cold_mean, se, _ = mean_se(c)
        path_mean = float(np.mean(p))
        ok = abs(path_mean - cold_mean) <= se
        within.append(ok)
        not_worse.append(path_mean - cold_mean <= se)
        rows.append({"l2": l2, "cold": cold_mean, "se": se, "path": path_mean, "within": ok})
        print(f"{l2:10.3g} {cold_mean:14.5f} {se:8.5f} {path_mean:14.5f} {path_mean - cold_mean:+12.5f} "
              f"{'yes' if ok else 'NO':>8}")
    cold_epochs = sum(trained_epochs(r, args.epochs) for r in cold) / args.seeds
    path_epochs = sum(trained_epochs(r, args.epochs) for r in path) / args.seeds
    ratio = path_epochs / cold_epochs
    print(f"within one SE of the cold run at {sum(within)} of {len(within)} strengths; not worse than it by more "
          f"than one SE (path - cold <= SE) at {sum(not_worse)}")
    print(f"epochs per seed: cold {cold_epochs:.0f}, path {path_epochs:.0f}: ratio {ratio:.4f} (target <= 0.2)")
    print(f"wall time: cold {seconds['cold']:.1f} s, path {seconds['path']:.1f} s (compilation included)")
    print(json.dumps({"benchmark": "path", "points": args.points, "l2_max": args.max, "ratio": args.ratio,
                      "cold_epochs": args.epochs, "point_epochs": args.point_epochs, "seeds": args.seeds,
                      "within_one_se": int(sum(within)), "not_worse_by_one_se": int(sum(not_worse)),
                      "epoch_ratio": round(ratio, 4),
                      "meets_target": bool(all(within) and ratio <= 0.2),
                      "seconds": {k: round(v, 1) for k, v in seconds.items()}, "machine": platform.machine()}))


if __name__ == "__main__":
    main()
