"""Benchmark: ``jaxreg report`` on a large synthetic results folder, 10,000 configs x 5 seeds.

The folder is written directly in the real format (manifest with a spec that matches its
``spec_sha256``, one journal line per trial, a curves file per trial), as a random search over
three log-uniform axes (learning rate, L2, weight decay) and one uniform (dropout), with a
smooth metric and seed noise. It is made once under ``--folder`` and reused.

Times (median of ``--repeats``): writing the page (Python: reading the folder, every panel's
figure, the page), and, when Chromium is found, the browser drawing it in real time (asked over
the DevTools protocol, ``tests/headless.py``'s ``marks``; a virtual time budget would make the
page's clock virtual) in a 1400 x 900 window: the page marks its body with ``performance.now()``
(ms since the page started) once the figures in the first screen are drawn (``first_screen_s``: the table and the
parallel coordinates, the page is usable) and once every figure is (``draw_s``; those below
the first screen are drawn one a task after it). Both include loading plotly's inlined bundle,
measured alone too (``plotly_only_s``: plotly.js's basic bundle, which jaxreg inlines).
``write_cpu_s`` is the writing's CPU time, which other work on a shared machine disturbs less.
Targets: writing < 10 s, drawing < 2 s. Prints one JSON line; the numbers before and after the
report went SVG are in docs/benchmarks.md.

    python benchmarks/report_html.py [--configs 10000] [--seeds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # headless.py: the browser test's Chromium driver

from jaxreg.names import METRICS  # noqa: E402
from jaxreg.report.html import plotly_js, write_report  # noqa: E402
from jaxreg.report.store import spec_parts, spec_sha256  # noqa: E402

AXES = {"learning_rate": (1e-4, 1.0), "l2": (1e-6, 1e-2), "weight_decay": (1e-6, 1e-2)}
EPOCHS, EVERY = 20, 5


def _spec(configs: int, seeds: int) -> dict:
    manifest = json.loads((ROOT / "results" / "search-grid" / "manifest.json").read_text())
    spec = copy.deepcopy(manifest["spec"])
    spec["name"] = f"bench-{configs}x{seeds}"
    spec["description"] = "synthetic: random search over 3 log axes and dropout, for benchmarks/report_html.py"
    spec["hparams"] = {"momentum": 0.9, **{n: {"log_uniform": list(r)} for n, r in AXES.items()},
                       "dropout": {"uniform": [0.0, 0.5]}}
    spec["search"].update(method="random", samples=configs, seeds=list(range(seeds)))
    return spec


def _metric(point: dict, rng: np.random.Generator) -> float:
    """A smooth bowl in log learning rate and log L2, flat in weight decay, plus seed noise."""
    lr, l2 = np.log10(point["learning_rate"]), np.log10(point["l2"])
    return float(0.1 + 0.2 * (lr + 1.5) ** 2 + 0.05 * (l2 + 4) ** 2 + 0.1 * point["dropout"] + rng.normal(0, 0.02))


def make_folder(out: Path, configs: int, seeds: int) -> Path:
    """Writes the synthetic folder (once: kept if its manifest is there)."""
    if (out / "manifest.json").is_file():
        return out
    (out / "curves").mkdir(parents=True, exist_ok=True)
    spec = _spec(configs, seeds)
    rng = np.random.default_rng(0)
    epochs = np.arange(EVERY, EPOCHS + 1, EVERY)
    lines = []
    for c in range(configs):
        point = {n: float(10 ** rng.uniform(np.log10(lo), np.log10(hi))) for n, (lo, hi) in AXES.items()}
        point["dropout"] = float(rng.uniform(0, 0.5))
        cid = f"{c:010x}"
        for seed in range(seeds):
            value = _metric(point, rng)
            curve = value * (1 + 2.0 / epochs)
            metrics = {"train_loss": value * 0.8, "train_accuracy": 0.9, "val_loss": value, "val_accuracy": 0.85,
                       "test_loss": value, "test_accuracy": 0.85, "epoch_loss": value * 0.8, "epoch_accuracy": 0.9,
                       "penalty": 0.0, "weight_norm": 10.0, "zero_fraction": 0.0}
            assert set(metrics) == set(METRICS)
            lines.append(json.dumps({"config_id": cid, "seed": seed, "round": 0, "case": None, "point": point,
                                     "hparams": {"momentum": 0.9, **point}, "status": "ok", "best_epoch": EPOCHS,
                                     "stopped_epoch": 0, "diverged_epoch": 0, "metrics": metrics}))
            path = out / "curves" / f"{cid}_{seed}.npz"
            if not path.exists():  # a run cut short keeps what it wrote
                np.savez(path, epochs=epochs, **{f"curve/{n}": (curve * v / value).astype(np.float32)
                                                 for n, v in metrics.items()})
    (out / "trials.jsonl").write_text("\n".join(lines) + "\n")
    manifest = {"spec_sha256": spec_sha256(spec), "spec": spec, "spec_parts": spec_parts(spec),
                "runs": [{"started": "2026-01-01T00:00:00+00:00", "versions": {"jaxreg": "bench"}, "devices": ["cpu:0"],
                          "chunk_size": 1024, "finished": "2026-01-01T00:10:00+00:00",
                          "trials_trained": configs * seeds, "seconds": 600.0}]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _draw_times(page: Path, folder: Path, repeats: int, first: bool = True) -> tuple[dict, list[str]]:
    """Medians over ``repeats`` browser starts of the page's marks, in s: first screen, all
    figures; read in real time (:func:`headless.marks`, not under a virtual time budget)."""
    import headless

    names = {"first_screen_s": "data-first-screen", "draw_s": "data-rendered"} if first else {"draw_s": "data-rendered"}
    draws = {key: [] for key in names}
    for k in range(repeats):
        marks = headless.marks(page, folder / f"profile-{k}", tuple(names.values()))
        for key, attribute in names.items():
            draws[key].append(float(marks[attribute]) / 1000)
        console = marks["console"]
    return {key: round(statistics.median(v), 2) for key, v in draws.items()}, console


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "jaxreg-bench-report")
    args = parser.parse_args()
    folder = make_folder(args.folder / f"{args.configs}x{args.seeds}", args.configs, args.seeds)
    page = args.folder / "report.html"
    writes, cpu = [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        write_report([folder], page)
        writes.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    result = {"configs": args.configs, "seeds": args.seeds, "page_mb": round(page.stat().st_size / 2 ** 20, 2),
              "write_s": round(statistics.median(writes), 2),
              "write_cpu_s": round(statistics.median(cpu), 2), "write_target_s": 10, "machine": platform.processor()
              or platform.machine()}
    import headless

    if headless.CHROMIUM:
        times, console = _draw_times(page, args.folder, args.repeats)
        # the floor any page that inlines plotly pays: the bundle alone, in the same minutes
        floor = args.folder / "plotly-only.html"
        floor.write_text(f"<!DOCTYPE html><html><body><script>{plotly_js()}</script><script>"
                         "document.body.setAttribute('data-rendered', performance.now().toFixed(0))</script></body></html>")
        result.update(times, plotly_only_s=_draw_times(floor, args.folder, args.repeats, first=False)[0]["draw_s"],
                      draw_target_s=2, console=console[:3])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
