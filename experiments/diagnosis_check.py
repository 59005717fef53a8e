"""How often `jaxreg.diagnose` names the failure mode a run really has: precision and recall per
label on a labelled set of real curves.

The set: runs on scikit-learn's digits configured to show one failure mode each (the label is
the cause put there: a learning rate of 5, an init scale of 0.01, 512 units on 100 images, a
learning rate halved every epoch, one hidden unit, ...), two or three settings per mode and
three seeds each, beside healthy runs that should get no label. Each run is read against the
reference a sweep gives `jaxreg show`: the best training accuracy reached on the same data
(here, by the healthy runs). Run `python experiments/diagnosis_check.py`; it prints the table
(a few minutes on a 2-core CPU) and writes it to results/diagnosis/README.md with `--write`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from jaxreg import TrainConfig, make_hparams, stack_hparams, train_batch
from jaxreg import data as data_lib
from jaxreg.diagnosis import LABELS, diagnose
from jaxreg.models import mlp

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 3

# (run, the failure mode put there or None, data, layer sizes, model options, epochs, optimizer, hparams)
RUNS = [
    ("healthy, sgd lr 0.05", None, "full", (64, 64, 10), {}, 60, "sgd", {"learning_rate": 0.05}),
    ("healthy, sgd lr 0.1", None, "full", (64, 128, 10), {}, 40, "sgd", {"learning_rate": 0.1}),
    ("healthy, adam lr 0.003", None, "full", (64, 64, 10), {}, 30, "adam", {"learning_rate": 0.003, "momentum": 0.9}),
    ("healthy, l2 1e-3", None, "full", (64, 64, 10), {}, 60, "sgd", {"learning_rate": 0.05, "l2": 1e-3}),
    ("lr 5", "lr_too_big", "full", (64, 64, 10), {}, 60, "sgd", {"learning_rate": 5.0}),
    ("lr 2, momentum 0.9", "lr_too_big", "full", (64, 64, 10), {}, 60, "momentum",
     {"learning_rate": 2.0, "momentum": 0.9}),
    ("init scale 0.01", "slow_start", "full", (64, 64, 64, 10), {"init": "uniform", "init_scale": 0.01}, 60, "sgd",
     {"learning_rate": 0.05}),
    ("init scale 0.02, 4 layers", "slow_start", "full", (64, 64, 64, 64, 10), {"init": "uniform", "init_scale": 0.02},
     80, "sgd", {"learning_rate": 0.05}),
    ("512 units on 100 images, adam", "overfitting", "small", (64, 512, 10), {}, 150, "adam",
     {"learning_rate": 0.003, "momentum": 0.9}),
    ("1024 units on 100 images, adam lr 0.01", "overfitting", "small", (64, 1024, 10), {}, 150, "adam",
     {"learning_rate": 0.01, "momentum": 0.9}),
    ("lr decay 0.5 per epoch", "decayed_too_soon", "full", (64, 64, 10), {}, 60, "sgd",
     {"learning_rate": 0.01, "lr_decay": 0.5}),
    ("lr decay 0.3 per epoch", "decayed_too_soon", "full", (64, 64, 10), {}, 60, "sgd",
     {"learning_rate": 0.02, "lr_decay": 0.3}),
    ("one hidden unit", "underfitting", "full", (64, 1, 10), {}, 60, "sgd", {"learning_rate": 0.05}),
    ("two hidden units", "underfitting", "full", (64, 2, 10), {}, 60, "sgd", {"learning_rate": 0.05}),
    ("l2 = 1", "underfitting", "full", (64, 64, 10), {}, 60, "sgd", {"learning_rate": 0.05, "l2": 1.0}),
    ("lr 3e38", "diverged", "full", (64, 64, 10), {}, 5, "sgd", {"learning_rate": 3e38}),
]


def curves_of(run, datasets):
    name, truth, data, sizes, options, epochs, optimizer, hp = run
    net = mlp(sizes, **options)
    config = TrainConfig(model=net, epochs=epochs, batch_size=20, optimizer=optimizer)
    result = train_batch(config, datasets[data])(np.arange(SEEDS), stack_hparams([make_hparams(net, **hp)] * SEEDS))
    return [({k: np.asarray(v[s]) for k, v in result.curves.items()}, int(result.diverged_epoch[s]))
            for s in range(SEEDS)]


def main(argv: list[str]) -> int:
    datasets = {"full": data_lib.load("digits", key=0), "small": data_lib.load("digits", key=0, n_train=100)}
    start = time.perf_counter()
    trained = {run[0]: curves_of(run, datasets) for run in RUNS}
    # The reference a sweep would give: the best final training accuracy on the same data.
    reference = {}
    for run in RUNS:
        for curves, _ in trained[run[0]]:
            accuracy = curves["train_accuracy"][np.isfinite(curves["train_accuracy"])]
            if accuracy.size:
                reference[run[2]] = max(reference.get(run[2], 0.0), float(accuracy[-1]))
    counts = {label: {"tp": 0, "fp": 0, "fn": 0} for label in LABELS}
    rows, rises = [], {}
    for run in RUNS:
        name, truth, data, *_, hp = run
        rate, decay = hp["learning_rate"], hp.get("lr_decay", 0.0)
        found = []
        for curves, diverged in trained[name]:
            labels = {f.label for f in diagnose(curves, diverged_epoch=diverged, reference=reference[data],
                                                learning_rate=lambda e: rate * (1 - decay) ** e)}
            found.append(labels)
            val = curves["val_loss"][np.isfinite(curves["val_loss"])]
            rises.setdefault(name, []).append(f"{val.min():.3g} -> {val[-1]:.3g}" if val.size else "-")
            for label in LABELS:
                said, real = label in labels, label == truth
                counts[label]["tp"] += said and real
                counts[label]["fp"] += said and not real
                counts[label]["fn"] += real and not said
        rows.append((name, truth or "none", ["+".join(sorted(f)) or "none" for f in found]))
    seconds = time.perf_counter() - start
    lines = [f"{len(RUNS)} runs x {SEEDS} seeds on digits ({seconds:.0f} s); reference training accuracy: "
             + ", ".join(f"{data} {value:.1%}" for data, value in reference.items()), "",
             "| run | put there | found (seed 0, 1, 2) | validation loss, lowest -> last |", "|---|---|---|---|"]
    lines += [f"| {name} | {truth} | {', '.join(found)} | {', '.join(rises[name])} |" for name, truth, found in rows]
    lines += ["", "| label | runs with it | found | precision | recall |", "|---|---|---|---|---|"]
    for label in LABELS:
        c = counts[label]
        real, said = c["tp"] + c["fn"], c["tp"] + c["fp"]
        precision = f"{c['tp'] / said:.2f}" if said else "-"
        recall = f"{c['tp'] / real:.2f}" if real else "-"
        lines.append(f"| {label} | {real} | {said} | {precision} | {recall} |")
    healthy = sum(SEEDS for run in RUNS if run[1] is None)
    quiet = sum(found == "none" for name, truth, seeds in rows if truth == "none" for found in seeds)
    lines += ["", f"healthy runs with no finding: {quiet} of {healthy}"]
    text = "\n".join(lines)
    print(text)
    if "--write" in argv:
        out = ROOT / "results" / "diagnosis"
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(
            "# How often jaxreg.diagnose is right\n\n"
            "`python experiments/diagnosis_check.py --write` (the runs, each put in one failure mode on\n"
            "purpose, and why the set is labelled so: its docstring). A label is counted per run (one\n"
            "seed); precision: of the runs given the label, the share that have it; recall: of the runs\n"
            "that have it, the share given it.\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
