"""What the curves and the table of a results folder say, in words: :func:`jaxreg.diagnose` on
every trial of the shown configs, and the sweep-level findings no single run shows (the best
config on the edge of its search space, top configs closer than the seed noise, diverged runs).
"""

from __future__ import annotations

import math

import numpy as np

from jaxreg.diagnosis import LABELS, Finding, Thresholds, diagnose
from jaxreg.errors import InputError
from jaxreg.hparams import DEFAULTS
from jaxreg.report.folder import Folder
from jaxreg.report.store import load_curves
from jaxreg.report.summary import as_float

__all__ = ["sweep_findings", "trial_findings", "finding_lines"]


def trial_findings(folder: Folder, record: dict, thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """:func:`jaxreg.diagnose` of one journaled trial (its curves file, its learning-rate schedule)."""
    try:
        saved = load_curves(folder.path, record["config_id"], record["seed"])
    except (FileNotFoundError, InputError):  # not written, or damaged: `plot` names it; findings skip it
        return []
    curves = {name: saved[f"curve/{name}"] for name in ("train_loss", "val_loss", "train_accuracy")
              if f"curve/{name}" in saved}
    if "train_loss" not in curves:
        return []
    hp = record["hparams"]
    rate, decay = as_float(hp.get("learning_rate", 1.0)), as_float(hp.get("lr_decay", 0.0))
    return diagnose(curves, epochs=saved.get("epochs"), learning_rate=lambda epoch: rate * (1 - decay) ** epoch,
                    diverged_epoch=record.get("diverged_epoch", 0), thresholds=thresholds)


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
    if len(rows) >= 2 and len(folder.trials[best["config_id"]]) >= 2:
        second = rows[1]
        gap = abs(best[f"{metric}_mean"] - second[f"{metric}_mean"])
        noise = best[f"{metric}_std"]
        if np.isfinite(noise) and gap < noise:
            lines.append(f"the top two configs differ by {gap:.3g} in {metric}, less than the seed spread of the best "
                         f"({noise:.3g}): more seeds would tell them apart")
    return lines


def finding_lines(folder: Folder, thresholds: Thresholds = Thresholds()) -> list[str]:
    """The findings of the shown configs (each label with how many seeds show it and the first
    seed's numbers), then the sweep's own, one line each; empty for a healthy sweep."""
    lines = []
    rank = {row["config_id"]: i + 1 for i, row in enumerate(folder.rows)}
    for row in folder.shown():
        trials = folder.trials[row["config_id"]]
        seen: dict[str, list[Finding]] = {}
        for record in trials:
            for finding in trial_findings(folder, record, thresholds):
                seen.setdefault(finding.label, []).append(finding)
        for label in LABELS:
            if label in seen:
                example = seen[label][0]
                lines.append(f"rank {rank[row['config_id']]} ({folder.config_label(row)}): {len(seen[label])} of "
                             f"{len(trials)} seeds: {example.text}")
    return lines + sweep_findings(folder)
