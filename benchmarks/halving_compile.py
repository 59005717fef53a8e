"""Benchmark: what successive halving's compilations cost, cold, against a grid sweep of the same
member-epochs, with three rules for a rung's chunk size, each run as its own process with
``JAXREG_CACHE_DIR=off`` (no persistent compilation cache: every program compiles).

- ``per-size``: a chunk of the next power of two of the members left at every rung (the rule
  before ``halving.rung_size``): one compilation per size;
- ``one-size``: the round's first chunk size at every rung, padded with copies: one compilation;
- ``rule``: what ``jaxreg run`` does (``rung_size`` with ``cost.padding_budget``): the size of the
  rung before while its padded copies cost less than a compilation, else the next power of two;
- ``grid``: a grid sweep of 3 configs x 54 epochs, the 162 member-epochs the halving trains
  (27 configs trained 2 epochs, 9 on to 6, 3 on to 18, 1 on to 54);
- ``main`` (with ``--base``, a checkout of the code before): the halving as it ran there, once
  per case, to check that ``per-size`` gives its journal byte for byte.

Two cases: ``small``, digits with 240 training rows and an MLP 64-64-10 (a member-epoch costs
about a millisecond, a compilation tens of seconds), and ``large``, all of digits (1079 rows)
and an MLP 64-512-512-10 (a member-epoch costs about 0.2 s). Halving: 27 random configs x 1
seed, eta 3, rungs at epochs 2, 6, 18, 54. Prints one JSON line per run (wall time of the
process, segment programs compiled, the chunk size of each rung, member-epochs trained and
computed with the padding), then per case the median wall times, the ratios halving / grid
and rule / per-size, whether each rule kept the same configs at each rung as ``per-size``, and
the largest absolute change of each journaled metric against ``per-size``.

    python benchmarks/halving_compile.py [--base /tmp/base] [--repeats 2] [--cases small large]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs one sweep in this process (the child): argv = spec JSON, out folder, pad rule.
DRIVER = r"""
import json, math, sys
import jax
seen = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **_: seen.append(duration) if event == "/jax/core/compile/backend_compile_duration" else None)
from jaxreg import batch
from jaxreg.sweeps import build_spec, run_sweep
from jaxreg.sweeps import halving
from jaxreg.sweeps.run import default_strategy

spec, out, rule = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
asks = []
ask = halving.Halving._ask

def recorded(self):
    made = ask(self)
    asks.append([len(made.trials), made.chunk_size, made.epochs])
    return made

halving.Halving._ask = recorded

def strategy(spec, variant, size):
    made = default_strategy(spec, variant, size)
    if rule in ("per-size", "one-size"):
        made.pad_epochs = {"per-size": 0.0, "one-size": math.inf}[rule]
    return made

run_sweep(build_spec(spec), out, progress=False, strategy=strategy)
print(json.dumps({"programs": len(batch._EXECUTABLES), "asks": asks,
                  "compile_s": round(sum(d for d in seen if d > 1.0), 1)}))
"""


def spec(case: str, method: str) -> dict:
    data = {"dataset": "digits", "seed": 0, **({"n_train": 240} if case == "small" else {})}
    hidden = [64] if case == "small" else [512, 512]
    raw = {"name": f"{case}-{method}", "data": data, "model": {"hidden": hidden},
           "train": {"loss": "cross_entropy", "optimizer": "momentum", "epochs": 54, "batch_size": 32,
                     "eval_every": 2},
           "hparams": {"momentum": 0.9, "learning_rate": {"log_uniform": [1e-3, 1.0]},
                       "l2": {"uniform": [0.0, 1e-3]}},
           "search": {"method": "halving", "samples": 27, "seeds": 1, "eta": 3, "min_epochs": 2},
           "output": {"plots": False}}
    if method == "grid":  # 3 configs x 54 epochs: the halving's 162 member-epochs
        raw["hparams"] = {"momentum": 0.9, "learning_rate": {"values": [0.01, 0.03, 0.1]}}
        raw["search"] = {"method": "grid", "seeds": 1}
    return raw


def once(case: str, rule: str, code: Path, out: Path) -> dict:
    method = "grid" if rule == "grid" else "halving"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec(case, method)), str(out),
                           "per-size" if rule == "main" else rule],
                          capture_output=True, text=True,
                          env={**os.environ, "JAXREG_CACHE_DIR": "off", "PYTHONPATH": str(code)})
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{case} {rule}: exit {done.returncode}\n{done.stderr[-3000:]}")
    row = {"case": case, "rule": rule, "wall_s": round(wall, 1), **json.loads(done.stdout.splitlines()[-1]),
           "load": round(os.getloadavg()[0], 1)}
    journal = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    row["member_epochs"] = sum(r.get("trained_epochs", 54) for r in journal)
    epochs = [b - a for a, b in zip([0] + [e for _, _, e in row["asks"]], [e for _, _, e in row["asks"]])]
    row["computed_member_epochs"] = (sum(-(-n // size) * size * e for (n, size, _), e in zip(row["asks"], epochs))
                                     if row["asks"] else row["member_epochs"])
    row["sizes"] = [size for _, size, _ in row["asks"]]
    return row


def journal(out: Path) -> dict:
    return {(r["config_id"], r["seed"]): r for r in map(json.loads, (out / "trials.jsonl").read_text().splitlines())}


def compared(a: dict, b: dict) -> dict:
    """Whether the same configs left at the same rungs, and the largest change of each metric."""
    same = a.keys() == b.keys() and all(a[k]["pruned_epoch"] == b[k]["pruned_epoch"] for k in a)
    moved = {}
    for key in a.keys() & b.keys():
        for name, value in a[key]["metrics"].items():
            other = b[key]["metrics"][name]
            if isinstance(value, float) and isinstance(other, float):
                moved[name] = max(moved.get(name, 0.0), abs(value - other))
    changed = {name: float(f"{d:.3g}") for name, d in sorted(moved.items()) if d > 0}
    return {"same_configs_kept": same, "max_abs_diff": changed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="a checkout of the code before (its halving run once per case)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=["small", "large"])
    parser.add_argument("--rules", nargs="*", default=["per-size", "one-size", "rule", "grid"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jaxreg-halving-compile-"))
    rows = []
    for case in args.cases:
        for repeat in range(args.repeats):
            rules = args.rules + (["main"] if args.base and repeat == 0 else [])
            for rule in (rules if repeat % 2 == 0 else rules[::-1]):  # alternated: load drifts
                code = args.base.resolve() if rule == "main" else ROOT
                row = once(case, rule, code, work / f"{case}-{rule}-{repeat}")
                rows.append({**row, "repeat": repeat})
                print(json.dumps(rows[-1]), flush=True)
        wall = {rule: statistics.median(r["wall_s"] for r in rows if r["case"] == case and r["rule"] == rule)
                for rule in args.rules if any(r["case"] == case and r["rule"] == rule for r in rows)}
        summary = {"case": case, "median_wall_s": wall,
                   "programs": {rule: next(r["programs"] for r in rows if r["case"] == case and r["rule"] == rule)
                                for rule in wall}}
        if "grid" in wall:
            summary["halving_over_grid"] = {rule: round(w / wall["grid"], 2) for rule, w in wall.items() if rule != "grid"}
        if "per-size" in wall:
            summary["over_per_size"] = {rule: round(w / wall["per-size"], 2) for rule, w in wall.items()
                                        if rule not in ("grid", "per-size")}
            reference = journal(work / f"{case}-per-size-0")
            for rule in ("one-size", "rule", "main"):
                if (work / f"{case}-{rule}-0").exists():
                    summary[f"journal_{rule}_vs_per_size"] = {
                        "bytes_identical": (work / f"{case}-{rule}-0" / "trials.jsonl").read_bytes()
                        == (work / f"{case}-per-size-0" / "trials.jsonl").read_bytes(),
                        **compared(journal(work / f"{case}-{rule}-0"), reference)}
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
