"""Checks the learning-rate probe (`jaxreg lr-find`) against a fine grid search, and its spread
over seed draws against the classic single ramp's, on sweeps/lr-find.toml (digits, momentum SGD).

Run `jaxreg run sweeps/lr-find.toml` first (the grid: results/lr-find), then
`python experiments/lr_find_check.py`: it prints, for 10 draws of seeds, each method's
suggestions, whether the probe's range holds the grid's best learning rate, and the spread
(largest / smallest suggestion over the draws) of every rule, for the probe and the ramp.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from jaxreg.report import load_manifest, read_journal, summarize
from jaxreg.sweeps import load_spec
from jaxreg.sweeps.lr_find import lr_find, ramp

ROOT = Path(__file__).resolve().parent.parent
DRAWS, SEEDS_PER_DRAW = 10, 3


def main() -> int:
    folder = ROOT / "results" / "lr-find"
    manifest = load_manifest(folder)
    rows = summarize(read_journal(folder), manifest["spec"]["search"], manifest.get("chance"))
    best = float(rows[0]["learning_rate"])
    spec = load_spec(ROOT / "sweeps" / "lr-find.toml")
    print(f"grid search (results/lr-find, 17 rates x 3 seeds, 30 epochs): best learning rate {best:.3g} "
          f"(val loss {rows[0]['val_loss_mean']:.4f})")
    rules = ("largest_stable", "minimum", "steep", "valley")
    found = {"probe": {r: [] for r in rules}, "ramp": {r: [] for r in rules}}
    held, start = 0, time.perf_counter()
    for draw in range(DRAWS):
        seeds = tuple(range(draw * SEEDS_PER_DRAW, (draw + 1) * SEEDS_PER_DRAW))
        probe = lr_find(spec, seeds=seeds)
        ramped = ramp(spec, seed=draw)
        low, high = probe.suggestions["range"]
        held += low <= best <= high
        for rule in rules:
            found["probe"][rule].append(probe.suggestions[rule])
            found["ramp"][rule].append(ramped.suggestions[rule])
        print(f"draw {draw} (seeds {seeds[0]}-{seeds[-1]}): probe range [{low:.3g}, {high:.3g}] "
              f"{'holds' if low <= best <= high else 'MISSES'} {best:.3g}; probe "
              + ", ".join(f"{r} {probe.suggestions[r]:.3g}" for r in rules) + "; ramp "
              + ", ".join(f"{r} {ramped.suggestions[r]:.3g}" for r in rules))
    print(f"the probe's range held the grid's best learning rate in {held} of {DRAWS} draws "
          f"({time.perf_counter() - start:.0f} s for all draws)")
    for method in ("probe", "ramp"):
        spreads = ", ".join(f"{r} x{max(v) / min(v):.2f}" for r, v in found[method].items()
                            if all(np.isfinite(v)) and min(v) > 0)
        print(f"{method}: spread over the {DRAWS} draws (largest / smallest suggestion): {spreads}")
    return 0 if held == DRAWS else 1


if __name__ == "__main__":
    sys.exit(main())
