"""What the curves and the table of a results folder say, in words: :func:`jaxreg.diagnose` on
every trial of the shown configs, and the sweep-level findings no single run shows (the best
config on the edge of its search space, top configs closer than the seed noise, diverged runs).
"""

from __future__ import annotations

import json
import math

import numpy as np

from jaxreg.diagnosis import LABELS, Finding, Thresholds, diagnose
from jaxreg.errors import InputError
from jaxreg.hparams import DEFAULTS
from jaxreg.report.folder import Folder
from jaxreg.report.journal import load_curves
from jaxreg.report.stats import paired_bootstrap
from jaxreg.report.summary import as_float

__all__ = ["finding_lines", "references", "scale_findings", "sweep_findings", "trial_findings"]


def references(folder: Folder) -> dict:
    """What the model can fit, for each case: the best seed-mean training accuracy of the configs
    that share its data and model (finished ones; the best training loss where there are no
    accuracies), as :func:`jaxreg.diagnose` takes it; None where nothing finished."""
    cases_raw = folder.spec.get("cases") or {}

    def setup(case) -> str:  # the cases that train the same model on the same data
        overrides = (cases_raw.get(case) or {}) if case is not None else {}
        return json.dumps([overrides.get("data"), overrides.get("model")], sort_keys=True, default=str)

    accuracy: dict[str, float] = {}
    loss: dict[str, float] = {}
    for row in folder.rows:
        if row.get("pruned"):
            continue
        key = setup(row["case"])
        a, l = as_float(row.get("train_accuracy_mean", math.nan)), as_float(row.get("train_loss_mean", math.nan))
        if math.isfinite(a):
            accuracy[key] = max(accuracy.get(key, -math.inf), a)
        if math.isfinite(l):
            loss[key] = min(loss.get(key, math.inf), l)
    return {row["case"]: accuracy.get(setup(row["case"]), loss.get(setup(row["case"])))
            for row in folder.rows}


def trial_findings(folder: Folder, record: dict, thresholds: Thresholds = Thresholds(),
                   reference: float | None | object = ...) -> list[Finding]:
    """:func:`jaxreg.diagnose` of one journaled trial (its curves file, its learning-rate schedule),
    against ``reference`` (default: :func:`references` of the folder, for the trial's case)."""
    try:
        saved = load_curves(folder.path, record["config_id"], record["seed"])
    except (FileNotFoundError, InputError):  # not written, or damaged: `plot` names it; findings skip it
        return []
    curves = {name: saved[f"curve/{name}"] for name in ("train_loss", "val_loss", "train_accuracy")
              if f"curve/{name}" in saved}
    if "train_loss" not in curves:
        return []
    if reference is ...:
        if getattr(folder, "_references", None) is None:
            folder._references = references(folder)
        reference = folder._references.get(record["case"])
    hp = record["hparams"]
    rate, decay = as_float(hp.get("learning_rate", 1.0)), as_float(hp.get("lr_decay", 0.0))
    return diagnose(curves, epochs=saved.get("epochs"), learning_rate=lambda epoch: rate * (1 - decay) ** epoch,
                    diverged_epoch=record.get("diverged_epoch", 0), reference=reference, thresholds=thresholds)


# Features whose standard deviations differ by more than this factor train badly unless scaled.
SCALE_RATIO = 100.0


def scale_findings(scales: dict | None) -> list[str]:
    """A line for each case whose raw features differ in scale by more than :data:`SCALE_RATIO`
    and were not standardized (one line for all cases that share the numbers)."""
    said: dict[tuple, list[str]] = {}
    for case, scale in (scales or {}).items():
        if not isinstance(scale, dict) or scale.get("standardized") is not False:
            continue
        low, high = (as_float(v) for v in (scale.get("feature_std") or [math.nan, math.nan]))
        if low > 0 and high / low > SCALE_RATIO:
            said.setdefault((low, high), []).append(case)
    return [f"{'the features' if cases == [''] else 'the features of ' + ', '.join(cases)} differ in scale by "
            f"{high / low:.3g}x (standard deviations {low:.3g} to {high:.3g}) and data.standardize is off: "
            f"set data.standardize = true (gradient descent on unscaled features is slow and favours the "
            f"largest)" for (low, high), cases in said.items()]


def sweep_findings(folder: Folder) -> list[str]:
    """Findings about the sweep as a whole, one line each."""
    lines = scale_findings(folder.scales)
    diverged = [r for r in folder.records if r["status"] == "diverged"]
    if diverged:
        configs = len({r["config_id"] for r in diverged})
        lines.append(f"{len(diverged)} of {len(folder.records)} trials diverged ({configs} of "
                     f"{len(folder.trials)} configs): lower the learning rate's range")
    metric, rows = folder.metric, [r for r in folder.rows if np.isfinite(r[f"{folder.metric}_mean"])]
    if not rows:
        return lines
    best = rows[0]
    for name in folder.numeric:
        tried = sorted({as_float(r[name]) for r in rows if r["case"] == best["case"] and name in r
                        and np.isfinite(as_float(r[name]))})
        value = as_float(best.get(name, math.nan))
        if len(tried) >= 3 and value == tried[0] == DEFAULTS.get(name) == 0:  # off: nothing lies below
            lines.append(f"the best config has {name} = 0 (off), the lowest tried (of 0 to {tried[-1]:g}): no "
                         f"{name} tried did better than none")
        elif len(tried) >= 3 and value in (tried[0], tried[-1]):
            side = "lowest" if value == tried[0] else "highest"
            lines.append(f"the best config sits at the {side} {name} tried ({value:g}, of {tried[0]:g} to "
                         f"{tried[-1]:g}): the best value may lie {'below' if side == 'lowest' else 'above'} it; "
                         f"search past it")
    if len(rows) >= 2:
        lines += _close_call(folder, best, rows[1])
    return lines


def _close_call(folder: Folder, best: dict, second: dict) -> list[str]:
    """A line when the seeds the top two configs share cannot tell which is better: the paired
    bootstrap that ``show`` prints (:func:`jaxreg.report.stats.paired_bootstrap`) gives the best
    a probability between 0.1 and 0.9 of beating the runner-up. Judged paired, never by the
    seed spread alone, so the finding and the printed probability agree."""
    metric = folder.metric
    values = {cid: {r["seed"]: as_float(r["metrics"].get(metric)) for r in folder.trials[cid]}
              for cid in (best["config_id"], second["config_id"])}
    p = paired_bootstrap(values[best["config_id"]], values[second["config_id"]], maximize=not folder.minimize)
    if not 0.1 < p < 0.9:  # NaN (fewer than 2 shared seeds) too: nothing to say
        return []
    gap = abs(best[f"{metric}_mean"] - second[f"{metric}_mean"])
    shared = len(values[best["config_id"]].keys() & values[second["config_id"]].keys())
    return [f"the top two configs differ by {gap:.3g} in {metric}, and the best beats the runner-up with "
            f"probability {p:.2f} (paired bootstrap over {shared} shared seeds): more seeds would tell them apart"]


# The most lines `run` and `show` print: the sweep's own findings first, then one line a label.
MAX_LINES = 8


def finding_lines(folder: Folder, thresholds: Thresholds = Thresholds(), limit: int = MAX_LINES) -> list[str]:
    """The sweep's own findings, then, for each label :func:`jaxreg.diagnose` gives the shown
    configs, one line: the best-ranked config showing it (how many of its seeds, the first
    seed's numbers) and how many other shown configs do; at most ``limit`` lines, the last
    saying how many were left out. Empty for a healthy sweep."""
    rank = {row["config_id"]: i + 1 for i, row in enumerate(folder.rows)}
    by_label: dict[str, list] = {}
    for row in folder.shown():
        trials = folder.trials[row["config_id"]]
        seen: dict[str, list[Finding]] = {}
        for record in trials:
            for finding in trial_findings(folder, record, thresholds):
                seen.setdefault(finding.label, []).append(finding)
        for label, found in seen.items():
            by_label.setdefault(label, []).append((row, len(found), len(trials), found[0]))
    lines = sweep_findings(folder)
    for label in LABELS:
        if label not in by_label:
            continue
        (row, count, seeds, example), *others = by_label[label]
        more = (f" (and {len(others)} more shown config{'s' * (len(others) > 1)}: rank"
                f"{'s' * (len(others) > 1)} {', '.join(str(rank[o[0]['config_id']]) for o in others)})"
                if others else "")
        lines.append(f"rank {rank[row['config_id']]} ({folder.config_label(row)}){more}: {count} of {seeds} seeds: "
                     f"{example.text}")
    if len(lines) > limit:
        lines = lines[:limit - 1] + [f"... and {len(lines) - limit + 1} more findings (jaxreg.report.findings."
                                     f"finding_lines with a larger limit lists them)"]
    return lines
