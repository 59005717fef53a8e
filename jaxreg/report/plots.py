"""Plots of a results folder: cost curves, the metric against each swept axis, search progress.

``plot_dir(out)`` reads a results folder through :mod:`jaxreg.report.folder` and adds the PNG
files that apply:

- ``curves.png``: train and validation loss and accuracy per epoch of the best configs (the best
  of each case when the spec has cases), mean over seeds with a min-max band.
- ``metric_vs_<axis>.png``: the search metric against each numeric swept axis, and
  ``<metric>_vs_<axis>.png`` the same for each metric of ``output.plot_metrics``.
- ``search_space.png``: config means over every pair of numeric swept axes (one panel a pair),
  coloured by the metric.
- ``best_so_far.png``: the best config mean against the number of configs evaluated.
- ``generalization_gap.png``: train against validation accuracy of the best configs.
- ``measures.png`` (when the sweep trained with ``train.measures``): each generalization measure
  against the generalization gap over configs, with Kendall's tau (``jaxreg show --measures``).
- ``weights_hist.png`` (when params were saved): histograms of the learned weights of the best
  configs, all layers pooled and layer by layer.
- ``decision_boundary.png`` (when params were saved and the inputs are 2-D): the predicted
  probability over the plane, its 0.5 contour and the training points, one panel per case.

Reading the folder and drawing loads no JAX: only the plots that apply the model
(``decision_boundary.png``, ``augmentation.png``) use it, on the spec that ``build`` rebuilt
(which loads it).

Figures are built with matplotlib's object API (``Figure``), never pyplot: no global figure
registry to leak into, and no GUI backend, so it works headless and in threads. The axis
helpers here (``scale_axis``, ``plain_log_labels``, ``metric_axis``, ``scatter_configs``,
``metric_colorbar``) are the ones :mod:`jaxreg.report.compare` draws with too.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator, MaxNLocator, PercentFormatter, SymmetricalLogLocator

from jaxreg.diagnosis import LABELS
from jaxreg.hparams import AUGMENTATIONS
from jaxreg.names import MEASURES
from jaxreg.report.files import atomic_write
from jaxreg.report.findings import trial_findings
from jaxreg.report.folder import Folder, distinct, load_folder
from jaxreg.report.journal import load_curves
from jaxreg.report.manifest import record_files
from jaxreg.report.summary import as_float, best_row, finished, measured_configs
from jaxreg.trust import foreign

CURVE_PANELS = (("train_loss", "val_loss"), ("train_accuracy", "val_accuracy"))
TEST_PANELS = (("test_loss",), ("test_accuracy",))  # test_curves.png: how the book reads a run
# A regression's (its journal has RMSE; it has no accuracy): RMSE where accuracy would be.
REGRESSION_CURVE_PANELS = (("train_loss", "val_loss"), ("train_rmse", "val_rmse"))
REGRESSION_TEST_PANELS = (("test_loss",), ("test_rmse",))
DPI = 120
MARKERS = "osD^vP"  # one per coarse-to-fine round
MAX_LAYER_PANELS = 6  # weights_hist.png: one panel per layer up to this many layers
GRID_POINTS = 250  # decision_boundary.png: the plane is drawn from GRID_POINTS^2 predictions
_LAYER_NAME = re.compile(r"\['?([^'\]]+)'?\]")  # ['dense_0'] or [0] in a key path


# Why a plot that was considered drew nothing (its builder returned None).
_NOTHING_TO_DRAW = {
    "curves.png": "no curves file of a shown config could be read",
    "test_curves.png": "no test metric in the curves (an empty test split, or train.metrics leaves them out)",
    "generalization_gap.png": "no train and validation accuracies (regression targets, or train.metrics leaves them out)",
    "search_space.png": "fewer than two configs with a finite metric",
    "weights_hist.png": "no saved weights could be read",
    "decision_boundary.png": "the inputs are not 2-D, or the model could not be rebuilt here",
    "augmentation.png": "the spec could not be rebuilt here (its data or pretrained model is missing)",
    "histograms.png": "the best config's curves file holds no histograms",
    "measures.png": "fewer than 3 configs with every seed finished and measured",
}
_NEEDS_MODEL = ("decision_boundary.png", "augmentation.png")  # drawn from the rebuilt spec
HISTOGRAM_EVALUATIONS = 5  # histograms.png: evaluations drawn per panel, first to last
AUGMENT_EXAMPLES = 6  # augmentation.png: training images per row
AUGMENT_ROWS = 8  # augmentation.png: at most this many strength settings


def plot_dir(out, *, build: Callable[[dict], object] | None = None,
             on_skip: Callable[[str, str], None] | None = None, trust_code: bool = False) -> list[Path]:
    """Writes the plots of a results folder as PNG files into it.

    Args:
        out: a results folder written by :func:`jaxreg.sweeps.run_sweep`.
        build: rebuilds the spec from the manifest (:func:`jaxreg.sweeps.build_spec`), for the
            plot that applies the model (``decision_boundary.png``); without it, that one is left out.
        on_skip: called with ``(file name, reason)`` for each plot that does not apply.
        trust_code: let ``build`` import the code the folder's spec names (a ``module:function``
            model or penalty mask): only for a folder whose author you trust. Without it the
            plots that need such a model are skipped, saying so.

    Returns:
        The paths written, sorted; empty while the journal holds no finished trial.
    """
    out = Path(out)
    with foreign(str(out), trust_code):
        return _plot_dir(out, build, on_skip or (lambda name, why: None))


def _plot_dir(out: Path, build, skip) -> list[Path]:
    sweep = load_folder(out, build=build)
    records = sweep.records
    if not records:
        return []
    plots = [("curves.png", _curves), ("generalization_gap.png", _gap)]
    if sweep.spec.get("train", {}).get("eval_test", True):
        plots.insert(1, ("test_curves.png", _test_curves))
    else:
        skip("test_curves.png", "the test split was not evaluated during training (train.eval_test = false)")
    if any(r["metrics"][sweep.metric] is not None for r in records):  # else nothing to plot against
        if sweep.has_case and sweep.search["method"] == "grid":
            skip("best_so_far.png", "a grid of named cases has no search order to follow")
        elif len(sweep.rows) < 4:
            skip("best_so_far.png", "fewer than 4 configs")
        else:
            plots.append(("best_so_far.png", _best_so_far))
        if len(sweep.numeric) >= 2:
            plots.append(("search_space.png", _search_space))
        else:
            skip("search_space.png", "fewer than two numeric swept axes")
        plots += [(f"metric_vs_{n}.png", functools.partial(_metric_vs, name=n)) for n in sweep.numeric]
        if not sweep.numeric:
            skip("metric_vs_AXIS.png", "no numeric swept axis")
    else:
        skip("best_so_far.png, search_space.png, metric_vs_AXIS.png", f"no trial has a {sweep.metric}")
    plots += [(f"{m}_vs_{n}.png", functools.partial(_metric_vs, name=n, metric=m))
              for m in sweep.plot_metrics for n in sweep.numeric]
    if any("rungs" in r for r in records):
        plots.append(("rungs.png", _rungs))
    if any(name in r["metrics"] for r in records for name in MEASURES):
        plots.append(("measures.png", _measures))
    if any("path_point" in r for r in records):
        plots.append(("path.png", _path))
    if any(r["hparams"].get(name, 0) for r in records for name in AUGMENTATIONS):
        if build is not None:
            plots.append(("augmentation.png", _augmentation))
        else:
            skip("augmentation.png", "the spec is not rebuilt (plot_dir was given no build)")
    if sweep.spec.get("train", {}).get("histograms"):
        plots.append(("histograms.png", _histograms))
    if sweep.has_params:
        plots += [("weights_hist.png", _weights_hist), ("decision_boundary.png", _decision_boundary)]
    else:
        skip("weights_hist.png, decision_boundary.png", "no params saved: output.params is false")
    written = []
    for filename, build_figure in plots:  # one figure at a time: each is garbage once saved
        fig = build_figure(sweep)
        if fig is not None:
            save_figure(fig, out / filename)
            written.append(out / filename)
        else:
            why = _NOTHING_TO_DRAW.get(filename, "no trial has that metric")
            if filename in _NEEDS_MODEL and sweep.build_error:
                why += f" ({sweep.build_error})"
            skip(filename, why)
    return sorted(written)


def save_figure(fig: Figure, path: Path) -> None:
    """Saves a PNG atomically: a kill mid-write never leaves a 0-byte or half-drawn file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    record_files(path.parent, [path.name])  # jaxreg's, in a results folder's record of its files
    atomic_write(path, buffer.getvalue())


def _group(sweep: Folder, item: dict):
    """What colours a trial or config: its case, else its round when there are several."""
    return item["case"] if sweep.has_case else item["round"] if sweep.has_rounds else None


def _group_label(sweep: Folder, key) -> str:
    return str(key) if sweep.has_case else f"round {key + 1}" if sweep.has_rounds else "config"


def _regression(sweep: Folder) -> bool:
    """Whether the journal holds regression metrics (a squared-error loss on float targets)."""
    return any("val_rmse" in r["metrics"] for r in sweep.records)


def curve_panels(sweep: Folder, test: bool = False) -> tuple[tuple[str, ...], ...]:
    """The panels of ``curves.png`` (``test``: ``test_curves.png``), one tuple of metrics per row
    of panels: the losses, then RMSE for a regression, accuracy for a classification, and
    nothing more for a regression recorded without RMSE (no accuracy panel left empty)."""
    if _regression(sweep):
        return REGRESSION_TEST_PANELS if test else REGRESSION_CURVE_PANELS
    panels = TEST_PANELS if test else CURVE_PANELS
    accuracy = any(r["metrics"].get(name) is not None for r in sweep.records for name in panels[1])
    return panels if accuracy else panels[:1]


def _curves_of(sweep: Folder, config_id: str) -> dict[str, np.ndarray] | None:
    names = [name for test in (False, True) for panel in curve_panels(sweep, test) for name in panel]
    return sweep.curves(config_id, names)


def _mean(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where every entry is (np.nanmean would warn)."""
    count = np.isfinite(a).sum(0)
    return np.where(count > 0, np.nansum(a, 0) / np.maximum(count, 1), np.nan)


def scale_axis(ax, which: str, values, log_form: bool = False, factor: float = 20) -> None:
    """Log scale when positive values span more than ``factor`` (or the axis was sampled on
    one); symlog when zero is among them, as in ``l2 = [0, 1e-4, 1e-3]``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    positive = v[v > 0]
    if not len(positive) or v.min() < 0 or not (log_form or positive.max() / positive.min() > factor):
        return
    # Limits set here (first: no autoscale then), 5% of the decades beyond the values: matplotlib's
    # own margin overflows past 1e308 for values near it (a learning rate of 1e300) and falls back
    # to [1, 10], every value off the plot.
    low, high = math.log10(positive.min()), math.log10(positive.max())
    pad, edge = 0.05 * (high - low) if high > low else 0.5, math.log10(np.finfo(float).max) - 0.5
    limits = (10 ** max(low - pad, -edge) if v.min() > 0 else -0.3 * positive.min(),  # 0: no negative values
              10 ** min(high + pad, edge))
    (ax.set_xlim if which == "x" else ax.set_ylim)(*limits)
    setter, axis = (ax.set_xscale, ax.xaxis) if which == "x" else (ax.set_yscale, ax.yaxis)
    if v.min() > 0:
        setter("log")
        axis.set_major_locator(_FiniteLogLocator())
        axis.set_minor_locator(_FiniteLogLocator(subs="auto"))
        plain_log_labels(axis)
    else:
        setter("symlog", linthresh=positive.min(), linscale=0.5)
        axis.set_major_locator(_FiniteSymLogLocator(linthresh=positive.min(), base=10))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


class _FiniteLogLocator(LogLocator):
    """matplotlib's ticks less those past the float range: on an axis up to 1e300 its decades
    run a stride beyond the limits, to inf (or 0 below 1e-300), which no formatter can label."""

    def tick_values(self, vmin, vmax):
        with np.errstate(over="ignore", under="ignore"):
            ticks = np.asarray(super().tick_values(vmin, vmax))
        return ticks[np.isfinite(ticks) & (ticks >= np.finfo(float).tiny)]


class _FiniteSymLogLocator(SymmetricalLogLocator):
    def tick_values(self, vmin, vmax):
        with np.errstate(over="ignore"):
            ticks = np.asarray(super().tick_values(vmin, vmax))
        return ticks[np.isfinite(ticks)]


class _PlainLogFormatter(LogFormatter):
    """0.2 and 3 rather than 2x10^-1 and 3x10^0: a loss or a rate reads as a number. The parent
    still decides which ticks get a label (all minor ones on a short axis, none on a long one)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_labels(axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.7)))


def metric_axis(ax, name: str, values, factor: float = 20) -> None:
    """Labels the y axis that shows metric ``name``: accuracies in %, losses on a log scale when
    they span more than ``factor`` (see :func:`scale_axis`)."""
    if name.endswith("accuracy"):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        scale_axis(ax, "y", values, factor=factor)
    ax.set_ylabel(name)


def scatter_configs(ax, rows: list[dict], x: str, y: str, *, metric: str, minimize: bool, norm: Normalize):
    """Configs (summary rows, best first) at ``(row[x], row[y])``, coloured by their mean of
    ``metric`` under ``norm``, one marker per round (labelled when there are several); configs
    without a mean as grey crosses (unless ``y`` is that mean); configs successive halving pruned
    small and faded (their mean is from the rung they stopped at); the best config starred.

    Returns:
        The last scatter coloured by the metric, for a colour bar (None if no config has a mean).
    """
    key = f"{metric}_mean"
    done = [r for r in rows if math.isfinite(r[key])]
    rounds = sorted({r["round"] for r in done})
    mappable = None
    for k in rounds:
        for ended in (True, False):
            mine = [r for r in done if r["round"] == k and finished(r) == ended]
            if not mine:
                continue
            round_label = f"round {k + 1}" if len(rounds) > 1 else None
            label = round_label if ended else ", ".join(filter(None, ("pruned (mean at its rung)", round_label)))
            points = ax.scatter([r[x] for r in mine], [r[y] for r in mine], c=[r[key] for r in mine], norm=norm,
                                cmap="viridis_r" if minimize else "viridis", s=60 if ended else 22,
                                alpha=1.0 if ended else 0.5, marker=MARKERS[k % len(MARKERS)],
                                edgecolor="black", lw=0.5, label=label)
            mappable = points if ended or mappable is None else mappable
    failed = [r for r in rows if not math.isfinite(r[key])]
    if failed and y != key:
        ax.scatter([r[x] for r in failed], [r[y] for r in failed], marker="x", color="grey", label="diverged")
    if rows and math.isfinite(best_row(rows)[key]):
        best = best_row(rows)
        ax.scatter([best[x]], [best[y]], marker="*", s=400, facecolor="none", edgecolor="red", lw=1.5,
                   label="best", zorder=3)
    return mappable


def metric_colorbar(fig, mappable, ax, metric: str, minimize: bool, label: str, **kwargs):
    """A colour bar for ``metric``: accuracies in %, a log norm with plain labels, better on top."""
    bar = fig.colorbar(mappable, ax=ax, label=label, **kwargs)
    if metric.endswith("accuracy"):
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    elif isinstance(mappable.norm, LogNorm):
        plain_log_labels(bar.ax.yaxis)
    if minimize:
        bar.ax.invert_yaxis()
    return bar


def _test_curves(sweep: Folder) -> Figure | None:
    """Test loss and accuracy (RMSE) per evaluation: what the book plots, never used for selection."""
    shown = [(row, c) for row in sweep.shown() if (c := _curves_of(sweep, row["config_id"])) is not None]
    panels = curve_panels(sweep, test=True)
    if not any(np.isfinite(c[name]).any() for _, c in shown for panel in panels for name in panel):
        return None
    return _curves(sweep, panels, "test curves")


def _draw_config(panels, axes, curves: dict, color: str, label: str, best_epoch) -> tuple:
    """One config's mean curves (and min-max band over seeds) on every panel; a dot at its mean
    best epoch when early stopping fired (``best_epoch``), else a triangle where a validation
    loss was lowest before it rose. Returns (a line for the legend, whether a triangle was drawn)."""
    epochs, lowest_marked = curves["epochs"], False
    for panel_names, panel_axes in zip(panels, axes):
        for name, ax in zip(panel_names, panel_axes):
            seeds = curves[name]
            mean = _mean(seeds)
            line, = ax.plot(epochs, mean, color=color, lw=1.6, label=label)
            if len(seeds) > 1:
                # fmin/fmax skip NaN without the warnings of nanmin on all-NaN columns.
                ax.fill_between(epochs, np.fmin.reduce(seeds), np.fmax.reduce(seeds),
                                color=color, alpha=0.15, lw=0)
            if best_epoch is not None and not name.startswith("train"):
                at = int(np.argmin(np.abs(epochs - best_epoch)))
                ax.plot(epochs[at], mean[at], "o", color=color, ms=7, mec="black", zorder=3)
            elif name.endswith("loss") and not name.startswith("train") and np.isfinite(mean).any():
                lowest = int(np.nanargmin(np.where(np.isfinite(mean), mean, np.inf)))
                if lowest < len(mean) - 1:  # it rose after its minimum: mark where
                    ax.plot(epochs[lowest], mean[lowest], "v", color=color, ms=7, mec="black", zorder=3)
                    lowest_marked = True
    return line, lowest_marked


def _style_panels(panels, axes, shown: list) -> None:
    """Titles, grids and scales: accuracies in percent, train losses on a log scale, validation
    losses zoomed on their late values."""
    for panel_names, panel_axes in zip(panels, axes):
        row_values = np.concatenate([c[n].ravel() for _, c in shown for n in panel_names])
        for name, ax in zip(panel_names, panel_axes):
            ax.set_title(name.replace("_", " "))
            ax.grid(alpha=0.3)
            if not np.isfinite(np.concatenate([c[name].ravel() for _, c in shown])).any():
                ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes)
        if np.isfinite(row_values).any():
            if panel_names[0].endswith("accuracy"):
                panel_axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
            else:
                for name, ax in zip(panel_names, panel_axes):
                    values = np.concatenate([_mean(c[name]) for _, c in shown])
                    if name.startswith("train"):  # log: the late, small decreases stay visible
                        scale_axis(ax, "y", values, factor=5)
                    else:
                        _zoom_on_late_values(ax, [_mean(c[name]) for _, c in shown])
        panel_axes[0].set_ylabel(panel_names[0].split("_")[1])


def _legend(fig, handles: list, any_stopped: bool, any_lowest: bool, any_finding: bool) -> None:
    if any_stopped:
        handles.append(Line2D([], [], ls="none", marker="o", color="grey", mec="black",
                              label="mean best epoch (early-stopped)"))
    if any_lowest:
        handles.append(Line2D([], [], ls="none", marker="v", color="grey", mec="black",
                              label="lowest mean loss, before it rose (overfitting)"))
    if any_finding:
        handles.append(Line2D([], [], ls="none", label="[jaxreg.diagnose: failure modes, seeds showing them]"))
    longest = max(len(h.get_label()) for h in handles)
    fig.legend(handles=handles, loc="outside lower center", ncols=1 if longest > 45 else 2 if longest > 28 else 3)


def _curves(sweep: Folder, panels=None, what: str = "learning curves") -> Figure | None:
    learning = panels is None
    panels = curve_panels(sweep) if learning else panels
    shown = [(row, c) for row in sweep.shown() if (c := _curves_of(sweep, row["config_id"])) is not None]
    if not shown:
        return None
    columns = len(panels[0])
    fig = Figure(figsize=(5.5 * columns + 0.5 * (columns == 1), 4 * len(panels)), layout="constrained")
    # Accuracies share one axis; losses do not: train loss spans decades (log), while the
    # validation loss's rise after its minimum (overfitting) shows only on its own linear scale.
    axes = fig.subplots(len(panels), columns, sharex=True, squeeze=False)
    for row_names, row_axes in zip(panels, axes):
        if row_names[0].endswith("accuracy"):
            for ax in row_axes[1:]:
                ax.sharey(row_axes[0])
    handles, any_stopped, any_lowest, any_finding = [], False, False, False
    for i, (row, curves) in enumerate(shown):
        stopped = sum(r["stopped_epoch"] > 0 for r in sweep.trials[row["config_id"]])
        label = sweep.config_label(row)
        if learning:  # what jaxreg.diagnose reads in these curves, with its seed count
            said = _diagnosis(sweep, row)
            label, any_finding = (f"{label} [{said}]", True) if said else (label, any_finding)
        line, lowest = _draw_config(panels, axes, curves, f"C{i}", label, row["best_epoch_mean"] if stopped else None)
        handles.append(line)
        any_stopped, any_lowest = any_stopped or bool(stopped), any_lowest or lowest
    _style_panels(panels, axes, shown)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(fig, handles, any_stopped, any_lowest, any_finding)
    which = "the best config of each case" if sweep.has_case else f"the best {len(shown)} configs"
    seeds = len(sweep.trials[shown[0][0]["config_id"]])
    band = f"mean over {seeds} seeds, band: min-max" if seeds > 1 else "one seed"
    title = f"{sweep.spec['name']}: {what} of {which} ({band})"
    fig.suptitle(title.replace(" of ", "\nof ", 1) if columns == 1 else title)  # fit one column
    return fig


def _diagnosis(sweep: Folder, row: dict) -> str:
    """``"overfitting 5/5, plateau 1/5"``: the labels jaxreg.diagnose gives the config's seeds."""
    trials = sweep.trials[row["config_id"]]
    counts = {}
    for record in trials:
        for finding in trial_findings(sweep, record):
            counts[finding.label] = counts.get(finding.label, 0) + 1
    return ", ".join(f"{label.replace('_', ' ')} {counts[label]}/{len(trials)}" for label in LABELS if label in counts)


def _zoom_on_late_values(ax, means: list[np.ndarray], skip: float = 0.1) -> None:
    """A linear axis on the range the mean curves take after their first ``skip`` of evaluations:
    the early, high losses would flatten the later rise that overfitting is."""
    late = np.concatenate([m[int(skip * len(m)):] for m in means])
    late = late[np.isfinite(late)]
    if len(late):
        low, high = late.min(), late.max()
        pad = 0.08 * (high - low) or 0.05 * abs(high) or 0.05
        ax.set_ylim(low - pad, high + pad)


def _baselines(ax, sweep: Folder, name: str, metric: str, colors_used: int, handles: list) -> list[float]:
    """Cases without axis ``name`` (a "none" baseline) as dashed lines at their best config's
    mean; returns their values."""
    baselines = {}
    for row in sweep.rows:
        if sweep.has_case and name not in row and row["case"] not in baselines:
            baselines[row["case"]] = row
    levels = []
    for j, (case, row) in enumerate(baselines.items()):
        value = sweep.mean_of(row["config_id"], metric)
        if math.isfinite(value):
            levels.append(value)
            handles.append(ax.axhline(value, color=f"C{colors_used + j}", ls="--", lw=1.2,
                                      label=f"{case} (no {name}): {_short_value(value, metric)}"))
    return levels


def _metric_vs(sweep: Folder, name: str, metric: str | None = None) -> Figure | None:
    """``metric`` (default: the search metric) against swept axis ``name``: every trial, the
    mean over seeds of every config, lines through configs that differ only in ``name``."""
    metric = metric or sweep.metric
    records = [r for r in sweep.records if name in r["point"]]
    if all(r["metrics"][metric] is None for r in records):
        return None
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    rows = [r for r in sweep.rows if name in r]
    means = {r["config_id"]: sweep.mean_of(r["config_id"], metric) for r in rows}
    groups = list(dict.fromkeys(_group(sweep, r) for r in rows))
    for i, key in enumerate(groups):
        ok = [r for r in records if _group(sweep, r) == key and r["metrics"][metric] is not None]
        ax.scatter([r["point"][name] for r in ok], [r["metrics"][metric] for r in ok],
                   s=14, color=f"C{i}", alpha=0.4, lw=0)
        mine = [r for r in rows if _group(sweep, r) == key]
        ax.scatter([r[name] for r in mine], [means[r["config_id"]] for r in mine], s=45,
                   color=f"C{i}", edgecolor="black", lw=0.6, label=_group_label(sweep, key) + " mean")
    # In a grid, configs that differ only in this axis form a line: the axis' effect at fixed others.
    others = [n for n in sweep.varying if n != name and len(distinct(r.get(n) for r in rows)) > 1]
    lines: dict[str, list[dict]] = {}
    for row in rows:
        lines.setdefault(json.dumps([_group(sweep, row), *[row.get(n) for n in others]]), []).append(row)
    handles = ax.get_legend_handles_labels()[0]
    if any(len(line) > 1 for line in lines.values()):
        for line in lines.values():
            line.sort(key=lambda r: r[name])
            ax.plot([r[name] for r in line], [means[r["config_id"]] for r in line], color="grey", lw=0.8,
                    alpha=0.5, zorder=0)
        if others:
            handles.append(Line2D([], [], color="grey", lw=0.8, label=f"same {', '.join(others)}"))
    handles.append(Line2D([], [], ls="none", marker="o", ms=4, color="grey", alpha=0.5, label="one seed"))
    levels = _baselines(ax, sweep, name, metric, len(groups), handles)
    best = best_row(rows)  # by the search metric, whichever metric is shown
    searched = metric == sweep.metric
    if not math.isnan(means[best["config_id"]]):
        label = "best config" if searched else f"best config (by {sweep.metric})"
        handles.append(ax.scatter([best[name]], [means[best["config_id"]]], marker="*", s=300,
                                  facecolor="none", edgecolor="red", lw=1.5, zorder=3, label=label))
    diverged = [r["point"][name] for r in records if r["metrics"][metric] is None]
    if diverged:
        # No value to place them at: pin them to the worst edge of the plot.
        worst_on_top = sweep.minimize if searched else not metric.endswith("accuracy")
        handles.append(_pin_to_worst(ax, worst_on_top, diverged, f"diverged ({len(diverged)}, no {metric})"))
    scale_axis(ax, "x", [r["point"][name] for r in records], sweep.log_form(name))
    metric_axis(ax, metric, [r["metrics"][metric] for r in records] + levels)
    ax.set_xlabel(name)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="best")
    if searched:
        goal = "lower" if sweep.minimize else "higher"
        ax.set_title(f"{sweep.spec['name']}: {metric} against {name} ({goal} is better)")
    else:
        ax.set_title(f"{sweep.spec['name']}: {metric} against {name}")
    return fig


def _short_value(value: float, metric: str) -> str:
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.4g}"


def _pin_to_worst(ax, top: bool, x, label: str):
    """Marks trials without a metric at x, on the worst edge of the plot (the top one if ``top``):
    there is no value to place them at."""
    marks = ax.scatter(x, [0.97 if top else 0.03] * len(x), marker="x", color="black",
                       transform=ax.get_xaxis_transform(), label=label)
    ax.dataLim.update_from_data_x(np.asarray(x, dtype=float), ignore=False)  # keep them in view
    ax.autoscale_view()
    return marks


def search_space_pairs(sweep: Folder) -> list[tuple[str, str]]:
    """The panels of ``search_space.png``: every pair of numeric swept axes, so that every axis
    is shown (three axes: three panels)."""
    return list(itertools.combinations(sweep.numeric, 2))


def _search_space(sweep: Folder) -> Figure | None:
    metric, pairs = sweep.metric, search_space_pairs(sweep)
    means = [r[f"{metric}_mean"] for r in sweep.rows if math.isfinite(r[f"{metric}_mean"])]
    if len(means) < 2 or not pairs:
        return None
    ncols = min(len(pairs), 3)
    nrows = math.ceil(len(pairs) / ncols)
    fig = Figure(figsize=(8, 6) if len(pairs) == 1 else (4.6 * ncols + 1.2, 4.2 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    norm, mappable = Normalize(min(means), max(means)), None
    for ax, (xname, yname) in zip(axes, pairs):
        rows = [r for r in sweep.rows if xname in r and yname in r]
        points = scatter_configs(ax, rows, xname, yname, metric=metric, minimize=sweep.minimize, norm=norm)
        mappable = points if mappable is None else mappable
        scale_axis(ax, "x", [r[xname] for r in rows], sweep.log_form(xname))
        scale_axis(ax, "y", [r[yname] for r in rows], sweep.log_form(yname))
        ax.set(xlabel=xname, ylabel=yname)
        ax.grid(alpha=0.3)
    if mappable is None:  # no config with a finite metric has the axes of any pair (cases)
        return None
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    metric_colorbar(fig, mappable, list(axes[:len(pairs)]), metric, sweep.minimize,
                    f"{metric} (mean over seeds), better on top")
    names = " x ".join(sweep.numeric)
    if len(pairs) == 1:
        axes[0].set_title(f"{sweep.spec['name']}: configs over {names}")
    else:
        fig.suptitle(f"{sweep.spec['name']}: configs over {names}, one panel per pair of axes")
    return fig


def _best_so_far(sweep: Folder) -> Figure:
    metric = sweep.metric
    order = sweep.in_journal_order()
    values = np.array([r[f"{metric}_mean"] for r in order])
    best = sweep.best_so_far()  # skips diverged and pruned configs
    n = np.arange(1, len(values) + 1)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    ended = np.array([finished(r) for r in order])
    ax.scatter(n[ended], values[ended], s=18, color="grey", alpha=0.6, label="config (mean over seeds)")
    if not ended.all():
        ax.scatter(n[~ended], values[~ended], s=18, facecolor="none", edgecolor="grey", alpha=0.8,
                   label="pruned config (mean at its rung: not in the best)")
    ax.step(n, best, where="post", color="C0", lw=2, label="best so far")
    if np.isnan(values).any():
        _pin_to_worst(ax, sweep.minimize, n[np.isnan(values)], "diverged (no mean)")
    for i in range(1, len(order)):
        if order[i]["round"] != order[i - 1]["round"]:
            ax.axvline(i + 0.5, color="black", ls=":", lw=1)
            ax.text(i + 0.7, 0.98, f"round {order[i]['round'] + 1}", transform=ax.get_xaxis_transform(),
                    va="top", fontsize="small")
    metric_axis(ax, metric, values)
    ax.set_xlabel("configs evaluated (journal order)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"{sweep.spec['name']}: best {metric} so far ({len(order)} configs)")
    return fig


def _rungs(sweep: Folder) -> Figure | None:
    """Successive halving: each config's seed mean at each rung it reached, the configs pruned in
    grey (their line ends where they were pruned), those trained to the end in colour; one panel
    per round (a hyperband bracket)."""
    metric = sweep.metric
    by_round: dict[int, dict[str, dict[int, list]]] = {}
    finished: set[str] = set()
    for r in sweep.records:
        if "rungs" not in r:
            continue
        configs = by_round.setdefault(r["round"], {})
        for rung in r["rungs"]:
            configs.setdefault(r["config_id"], {}).setdefault(rung["epoch"], []).append(as_float(rung.get(metric)))
        if r.get("pruned_epoch") is None:
            finished.add(r["config_id"])
    if not by_round:
        return None
    rounds = sorted(by_round)
    fig = Figure(figsize=(min(5 * len(rounds), 16), 4.5), layout="constrained")
    axes = fig.subplots(1, len(rounds), sharex=True, sharey=True, squeeze=False)[0]
    last = max(e for configs in by_round.values() for rungs in configs.values() for e in rungs)
    unit = "bracket" if sweep.search["method"] == "hyperband" else "round"
    every = []
    for ax, rnd in zip(axes, rounds):
        for i, (cid, rungs) in enumerate(sorted(by_round[rnd].items())):
            epochs = sorted(rungs)
            means = [float(np.mean(rungs[e])) for e in epochs]
            every.extend(m for m in means if math.isfinite(m))
            done = cid in finished
            ax.plot(epochs, means, marker="o", ms=3, lw=1.5 if done else 0.8, alpha=0.9 if done else 0.5,
                    color=f"C{i % 10}" if done else "grey", zorder=3 if done else 2)
        ax.set_xlabel("epoch (rungs)")
        ax.grid(alpha=0.3)
        n = len(by_round[rnd])
        ax.set_xlim(0, last * 1.04)
        ax.set_title(f"{unit} {rnd + 1}: {n} configs, {sum(c in finished for c in by_round[rnd])} trained to the end"
                     if len(rounds) > 1 else f"{n} configs, {sum(c in finished for c in by_round[rnd])} trained to the end",
                     fontsize="small")
    if every:
        metric_axis(axes[0], metric, every)
    axes[0].set_ylabel(f"{metric} (mean over seeds) at the rung")
    fig.suptitle(f"{sweep.spec['name']}: successive halving, pruned configs in grey")
    return fig


def _path_lines(sweep: Folder) -> dict:
    """A path's trials by line (the other swept axes and the elastic-net mix, in words), then by
    strength: ``{line: {strength: [records, one per seed]}}``."""
    penalties = {"l1", "l2", "weight_decay"}
    lines: dict[str, dict[float, list]] = {}
    for r in sweep.records:
        if "path_point" not in r:
            continue
        parts = [f"{n}={v:.4g}" if isinstance(v, (int, float)) else f"{n}={v}"
                 for n, v in r["point"].items() if n not in penalties and n in sweep.varying]
        if "path_mix" in r:
            parts.append(f"mix {r['path_mix']:g}")
        lines.setdefault(", ".join(parts) or "path", {}).setdefault(r["path_strength"], []).append(r)
    return lines


def _layer_measures(sweep: Folder, record: dict) -> dict[str, tuple[float, float]] | None:
    """Each layer's weight norm and fraction of exact zeros, from a trial's saved params."""
    params = sweep.params(record["config_id"], record["seed"])
    if not params:
        return None
    return {".".join(_LAYER_NAME.findall(name)) or name: (float(np.sqrt(np.sum(w.astype(float) ** 2))),
                                                          float(np.mean(w == 0)))
            for name, w in _weight_layers(params).items()}


def _band(ax, x, values: np.ndarray, color, label: str, style: str = "-") -> None:
    """The mean over seeds (rows of ``values``) as a line, mean +- one std as a band."""
    mean = _mean(values)
    ax.plot(x, mean, style, color=color, lw=1.4, marker="o", ms=2.5, label=label)
    if values.shape[0] > 1:
        std = np.nanstd(values, axis=0)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, lw=0)


def _path_line(sweep: Folder, by_strength: dict, color: str, label: str, losses: tuple, weights: tuple,
               layer_names: list | None) -> None:
    """One path's panels: ``losses`` (axes, metric names), ``weights`` (weight norm axes, zero
    fraction axes), per layer from the saved params (``layer_names``) or, None, of all weights."""
    x = np.array(sorted(by_strength))
    seeds = [sorted(by_strength[v], key=lambda r: r["seed"]) for v in x]
    journaled = lambda name: np.array([[as_float(r["metrics"].get(name)) for r in trials] for trials in seeds]).T
    for ax, name in zip(*losses):
        _band(ax, x, journaled(name), color, label)
    if layer_names is None:
        for ax, name in ((weights[0][0], "weight_norm"), (weights[1][0], "zero_fraction")):
            _band(ax, x, journaled(name), color, label)
        return
    measured = [[_layer_measures(sweep, r) or {} for r in trials] for trials in seeds]
    for j, name in enumerate(layer_names):
        for axes, index in zip(weights, (0, 1)):
            values = np.array([[m.get(name, (np.nan, np.nan))[index] for m in trials] for trials in measured]).T
            _band(axes[j], x, values, color, label)


def _path(sweep: Folder) -> Figure | None:
    """A regularization path: train, validation and test loss, and each layer's weight norm and
    fraction of exact zeros, against the penalty's strength (log axis), one line per path (the
    other swept axes), mean over seeds with a +-1 std band; the best strength (by the search
    metric's mean) and the one-standard-error strength (the strongest whose mean is within one
    SE of the best's: :func:`jaxreg.report.stats.one_se_choice`) marked on every panel."""
    from jaxreg.report.stats import one_se_choice

    lines = _path_lines(sweep)
    if not lines:
        return None
    strength_of = {r["config_id"]: r["path_strength"] for r in sweep.records if "path_strength" in r}
    rows = [row for row in sweep.rows if row["config_id"] in strength_of]
    best = rows[0]
    chosen = one_se_choice(rows, maximize=not sweep.minimize, metric=sweep.metric,
                           regularization=lambda row: (strength_of[row["config_id"]],))
    layers = None
    first = next(iter(next(iter(lines.values())).values()))[0]
    if sweep.has_params:
        layers = _layer_measures(sweep, first)
    layer_names = list(layers) if layers else ["all weights"]
    losses = [n for n in ("train_loss", "val_loss", "test_loss") if first["metrics"].get(n) is not None]
    columns = max(len(losses), len(layer_names))
    fig = Figure(figsize=(3.6 * columns + 1, 9.5), layout="constrained")
    grid = fig.add_gridspec(3, columns)
    loss_axes = [fig.add_subplot(grid[0, j]) for j in range(len(losses))]
    norm_axes = [fig.add_subplot(grid[1, j]) for j in range(len(layer_names))]
    zero_axes = [fig.add_subplot(grid[2, j], sharex=norm_axes[j]) for j in range(len(layer_names))]
    for i, (line, by_strength) in enumerate(sorted(lines.items())):
        _path_line(sweep, by_strength, f"C{i % 10}", line, (loss_axes, losses), (norm_axes, zero_axes),
                   layer_names if layers else None)
    penalty = sweep.search.get("path_penalty", "penalty")
    marks = [(strength_of[best["config_id"]], "k", "-", f"best {sweep.metric}"),
             (strength_of[chosen["config_id"]], "C3", "--", "one standard error rule")]
    for ax in (*loss_axes, *norm_axes, *zero_axes):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter("")  # a decade or two: the minor ticks' labels would collide
        ax.grid(alpha=0.3)
        for value, color, style, _ in marks:
            ax.axvline(value, color=color, ls=style, lw=1, alpha=0.8)
    for ax, name in zip(loss_axes, losses):
        ax.set_title(name.replace("_", " "), fontsize="medium")
    for ax, name in zip(norm_axes, layer_names):
        ax.set_title(f"{'layer ' * name.isdigit()}{name}: weight norm", fontsize="medium")
    for ax, name in zip(zero_axes, layer_names):
        ax.set_title(f"{'layer ' * name.isdigit()}{name}: fraction of zero weights", fontsize="medium")
        ax.set_xlabel(f"{penalty} strength")
        ax.set_ylim(-0.03, 1.03)
    handles, labels = loss_axes[0].get_legend_handles_labels() if loss_axes else ([], [])
    handles += [Line2D([], [], color=c, ls=st) for _, c, st, _ in marks]
    labels += [f"{text}: {value:.3g}" for value, _, _, text in marks]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize="small")
    fig.suptitle(f"{sweep.spec['name']}: {penalty} path (mean over seeds, band +-1 std), each point warm-started "
                 f"from the one to its right")
    return fig


def _gap(sweep: Folder) -> Figure | None:
    shown = sweep.shown()
    if not any(np.isfinite([r["train_accuracy_mean"], r["val_accuracy_mean"]]).all() for r in shown):
        return None
    fig = Figure(figsize=(9, 1.6 + 0.6 * len(shown)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(shown))
    for offset, name, color in ((-0.2, "train_accuracy", "C1"), (0.2, "val_accuracy", "C0")):
        ax.barh(y + offset, [r[f"{name}_mean"] for r in shown], height=0.38, color=color,
                xerr=[r[f"{name}_std"] for r in shown], capsize=3, label=name.replace("_", " "))
    for i, row in enumerate(shown):
        gap = row["train_accuracy_mean"] - row["val_accuracy_mean"]
        ax.text(1.01, i, f"gap {100 * gap:+.1f} pts" if math.isfinite(gap) else "no accuracy",
                va="center", fontsize="small", transform=ax.get_yaxis_transform())
    ax.set_yticks(y, [sweep.config_label(r) for r in shown])
    ax.invert_yaxis()  # best on top
    ax.set_xlim(0, 1.04)  # room for error bars at 100%
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("accuracy at the returned params (mean ± std over seeds)")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{sweep.spec['name']}: train vs validation accuracy, best first (gap = overfitting)")
    return fig


def _measures(sweep: Folder) -> Figure | None:
    """Each generalization measure (a panel) against the gap ``val_loss - train_loss``: a dot a
    config at its seed means, bars one seed std each way, the panel titled with Kendall's tau and
    its 90% seed-bootstrap interval; panels by |tau|, the best predictor first."""
    present, kept, taus = measured_configs(sweep.records)
    if not taus:
        return None
    gaps = np.array([[r["metrics"]["val_loss"] - r["metrics"]["train_loss"] for r in g] for g in kept], dtype=object)
    gap_mean = np.array([np.mean(g) for g in gaps])
    gap_std = np.array([np.std(g) for g in gaps])
    order = sorted(present, key=lambda name: -abs(taus[name][0]) if math.isfinite(taus[name][0]) else 0)
    columns = min(3, len(order))
    rows = math.ceil(len(order) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * rows + 0.6), layout="constrained")
    for k, name in enumerate(order):
        ax = fig.add_subplot(rows, columns, k + 1)
        values = [[r["metrics"][name] for r in g] for g in kept]
        means, stds = np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])
        ax.errorbar(means, gap_mean, xerr=stds, yerr=gap_std, fmt="o", ms=4, color="C0", ecolor="0.7",
                    elinewidth=0.8, capsize=0)
        scale_axis(ax, "x", means)
        tau, low, high = taus[name]
        ax.set_title(f"{name}: tau {tau:+.2f} [{low:+.2f}, {high:+.2f}]", fontsize="medium")
        ax.set_xlabel(name.replace("_", " ") + " (mean over seeds)")
        if k % columns == 0:
            ax.set_ylabel("gap: val_loss - train_loss")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{sweep.spec['name']}: generalization measures against the gap, {len(kept)} configs "
                 f"(Kendall's tau, 90% interval over resampled seeds; bars: seed std)")
    return fig


def _weight_layers(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weight arrays of saved params (leaves with two or more dimensions, whatever their
    name), by layer path, in the order they were saved (the params' own order)."""
    return {path.rsplit("[", 1)[0] if path.endswith("]") else path: w
            for path, w in params.items() if np.ndim(w) >= 2}


def _weights_hist(sweep: Folder) -> Figure | None:
    """Histograms of the learned weights of the best configs: every seed's weights pooled, all
    layers together (top) and layer by layer (bottom). L2 gathers them near zero."""
    shown, shapes = [], None
    for row in sweep.shown():
        trials = [p for r in sweep.trials[row["config_id"]] if (p := sweep.params(row["config_id"], r["seed"]))]
        layers = [_weight_layers(p) for p in trials]
        if layers and layers[0]:
            pooled = {name: np.concatenate([np.ravel(t[name]) for t in layers]) for name in layers[0]}
            shown.append((row, pooled, len(trials)))
            shapes = shapes or {name: w.shape for name, w in layers[0].items()}
    if not shown:
        return None
    names = list(shapes)
    per_layer = 1 < len(names) <= MAX_LAYER_PANELS and all(list(p) == names for _, p, _ in shown)
    fig = Figure(figsize=(11, 7.5 if per_layer else 5), layout="constrained")
    grid = fig.add_gridspec(2 if per_layer else 1, len(names) if per_layer else 1,
                            height_ratios=[1.4, 1] if per_layer else [1])
    panels = [(fig.add_subplot(grid[0, :]), None)]
    if per_layer:
        panels += [(fig.add_subplot(grid[1, j]), name) for j, name in enumerate(names)]
    for ax, layer in panels:
        values = [np.concatenate(list(p.values())) if layer is None else p[layer] for _, p, _ in shown]
        # 99.9% of the weights set the range: one stray weight would squash every bar into a line.
        reach = float(np.quantile(np.abs(np.concatenate(values)), 0.999)) or 1.0
        bins = int(np.clip(2 * np.sqrt(min(len(w) for w in values)), 10, 60))  # few weights, wide bins
        edges = np.linspace(-reach, reach, bins + 1)
        for i, ((row, _, seeds), w) in enumerate(zip(shown, values)):
            share = np.full(len(w), 1 / len(w))  # fractions: layers and cases differ in size
            clipped = np.clip(w, edges[0], edges[-1])  # the rare weights beyond the range: end bins
            ax.hist(clipped, edges, weights=share, histtype="stepfilled", color=f"C{i}", alpha=0.18)
            rms = float(np.sqrt(np.mean(w.astype(float) ** 2)))
            label = f"{sweep.config_label(row)}: rms {rms:.3g}"
            if layer is None:
                label += f", {len(w) // seeds} weights x {seeds} seed{'s' * (seeds > 1)}"
            ax.hist(clipped, edges, weights=share, histtype="step", color=f"C{i}", lw=1.4, label=label)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("weight")
        ax.grid(alpha=0.3)
        if layer is not None:
            name = ".".join(_LAYER_NAME.findall(layer)) or layer
            ax.set_title(f"{'layer ' * name.isdigit()}{name}: {' x '.join(map(str, shapes[layer]))} weights", fontsize="medium")
            ax.legend(fontsize="x-small")
    top = panels[0][0]
    top.set_ylabel("fraction of weights")
    top.set_title("all layers")
    top.legend(fontsize="small", title="best config of each case" if sweep.has_case else None,
               title_fontsize="small")
    if per_layer:
        panels[1][0].set_ylabel("fraction of the layer's weights")
    fig.suptitle(f"{sweep.spec['name']}: learned weights of the best configs (seeds pooled; "
                 f"range: 99.9% of |w|, the rest in the end bins)")
    return fig


def _rebuild_params(model, saved: dict[str, np.ndarray]):
    """The params pytree ``model.apply`` takes, from saved arrays keyed by their key paths."""
    import jax  # loaded already: the model comes from the rebuilt spec (plot_dir's build)

    shapes, treedef = jax.tree_util.tree_flatten_with_path(jax.eval_shape(model.init, jax.random.key(0))[0])
    keys = [jax.tree_util.keystr(path) for path, _ in shapes]
    if all(key in saved for key in keys):
        return treedef.unflatten([saved[key] for key in keys])
    # Folders written before layers had names keyed params by position ("[0]['w']"); they
    # were saved in the same leaf order, so shapes matching in order rebuild them.
    values = list(saved.values())
    if [np.shape(v) for v in values] != [tuple(s.shape) for _, s in shapes]:
        return None
    return treedef.unflatten(values)


def _histograms(sweep: Folder) -> Figure | None:
    """The best config's (first seed's) per-layer histograms of weights, gradients and
    activations (``train.histograms``) at a few evaluations, first to last."""
    from matplotlib import colormaps

    row = sweep.rows[0]
    record = min(sweep.trials[row["config_id"]], key=lambda r: r["seed"])
    try:
        saved = load_curves(sweep.path, record["config_id"], record["seed"])
    except FileNotFoundError:
        return None
    keys = sorted(k for k in saved if k.startswith("curve/hist/") and not k.endswith("/stats"))
    kinds = [k for k in ("weights", "gradients", "activations") if any(key.split("/")[2] == k for key in keys)]
    if not kinds:
        return None
    layers = list(dict.fromkeys(key.split("/", 3)[3] for key in keys))[:MAX_LAYER_PANELS]
    epochs = np.asarray(saved["epochs"])
    fig = Figure(figsize=(3.2 * len(layers) + 0.8, 2.6 * len(kinds) + 1.0), layout="constrained")
    axes = fig.subplots(len(kinds), len(layers), squeeze=False)
    colors = colormaps["viridis"]
    for kind, row_axes in zip(kinds, axes):
        for layer, ax in zip(layers, row_axes):
            key = f"curve/hist/{kind}/{layer}"
            if key not in saved:
                ax.set_visible(False)
                continue
            counts, stats = np.asarray(saved[key], float), np.asarray(saved[f"{key}/stats"], float)
            valid = np.flatnonzero(np.isfinite(stats[:, 0]))
            picks = valid[np.unique(np.linspace(0, len(valid) - 1, min(HISTOGRAM_EVALUATIONS, len(valid))).round().astype(int))]
            for j, i in enumerate(picks):
                edges = np.linspace(stats[i, 0], stats[i, 1], counts.shape[1] + 1)
                ax.stairs(counts[i] / max(counts[i].sum(), 1), edges, color=colors(j / max(len(picks) - 1, 1)),
                          lw=1.3, label=f"epoch {epochs[i]}")
            ax.set_title(f"{kind}: {layer}", fontsize="medium")
            ax.grid(alpha=0.3)
        row_axes[0].set_ylabel("fraction")
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes.ravel() if ax.get_visible()), ([], []))
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize="small")
    fig.suptitle(f"{sweep.spec['name']}: histograms of {sweep.config_label(row)}, seed {record['seed']} "
                 f"(each between its min and max)", fontsize="medium")
    return fig


def _augmentation(sweep: Folder) -> Figure | None:
    """The first training images as each swept strength setting augments them (one draw, the
    same key for every row: rows differ by strength only, as the configs' draws do)."""
    import jax  # loaded already by the rebuilt spec (plot_dir's build), as augment is

    from jaxreg.augment import augment

    spec = sweep.built
    variant = spec and next((v for v in spec.variants if v.config.augment), None)
    if variant is None:
        return None
    enabled = variant.config.augment
    settings = sorted({tuple(float(r["hparams"].get(n, 0.0)) for n in enabled) for r in sweep.records
                       if r["case"] in variant.cases})
    if len(settings) > AUGMENT_ROWS:  # evenly spread, first and last kept
        settings = [settings[round(i)] for i in np.linspace(0, len(settings) - 1, AUGMENT_ROWS)]
    shape = variant.config.image_shape
    train = np.asarray(variant.dataset.train.x[:AUGMENT_EXAMPLES], np.float32)
    images = train.reshape(len(train), *shape)
    rows = [("original", images)]
    for setting in settings:
        if not any(setting):
            continue  # the original row shows it
        strengths = type("Strengths", (), dict(zip(enabled, setting)))
        label = ", ".join(f"{n} {v:g}" for n, v in zip(enabled, setting) if v) or "no augmentation"
        rows.append((label, np.asarray(augment(jax.random.key(0), images, strengths, enabled=enabled,
                                               blur_size=variant.config.blur_size))))
    fig = Figure(figsize=(1.3 * len(train) + 2.2, 1.3 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), len(train), squeeze=False)
    for (label, batch), row_axes in zip(rows, axes):
        for ax, image in zip(row_axes, batch):
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray_r" if image.shape[-1] == 1
                      else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    cases = ", ".join(str(c) for c in variant.cases if c is not None)
    fig.suptitle(f"{sweep.spec['name']}: training images as each strength augments them"
                 + (f" ({cases})" if cases else ""), fontsize="medium")
    return fig


def _boundary_panel(ax, sweep: Folder, row: dict, seed: int, variant, params, grid: tuple):
    """One config's predicted P(class 1) over the plane, its 0.5 contour and the training
    points; returns the filled contours (for the colour bar)."""
    import jax  # loaded already by the rebuilt spec (plot_dir's build)

    g1, g2, plane, lo, hi = grid
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    _, state = variant.model.init(jax.random.key(0))  # jaxreg's own models: no state
    logits = np.asarray(variant.model.apply(params, state, plane.astype(dtype))[0], float)
    # A sigmoid output's logit, or the difference of two softmax logits; tanh never overflows.
    margin = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
    prob = (0.5 + 0.5 * np.tanh(0.5 * margin)).reshape(len(g2), len(g1))
    # Bands of 0.1 rather than a smooth image: steep and shallow slopes read as narrow and
    # wide bands, and flat colours keep the PNG small.
    image = ax.contourf(g1, g2, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.9)
    if prob.min() < 0.5 < prob.max():  # else there is no boundary to draw (and contour warns)
        ax.contour(g1, g2, prob, levels=[0.5], colors="black", linewidths=1.6)
    train = variant.dataset.train
    tx, ty = np.asarray(train.x, float), np.asarray(train.y)
    # Black and white markers stand out on both ends of the colour map.
    for label, face, edge, marker in ((0, "white", "black", "o"), (1, "black", "white", "^")):
        ax.scatter(*tx[ty == label].T, s=24, facecolor=face, marker=marker, edgecolor=edge, lw=0.7,
                   label=f"class {label} (train)")
    record = next(r for r in sweep.trials[row["config_id"]] if r["seed"] == seed)
    accuracies = [f"{split} {100 * record['metrics'][f'{split}_accuracy']:.0f}%" for split in ("train", "val")
                  if record["metrics"].get(f"{split}_accuracy") is not None]
    ax.set_title(f"{sweep.config_label(row)}, seed {seed}\n" + ", ".join(accuracies), fontsize="medium")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    return image


def _decision_boundary(sweep: Folder) -> Figure | None:
    """The predicted probability of class 1 over the plane for the best config of each case
    (its first seed), the 0.5 contour, and the training points: for 2-D binary data only."""
    shown = []
    for row in sweep.shown():
        seed = min(r["seed"] for r in sweep.trials[row["config_id"]])
        params = sweep.params(row["config_id"], seed)
        if params is not None:
            shown.append((row, seed, params))
    first_w = shown and _weight_layers(shown[0][2])
    if not first_w or next(iter(first_w.values())).shape[0] != 2 or next(iter(first_w.values())).ndim != 2:
        return None  # only a dense first layer on 2 inputs draws a plane; checked before building
    spec = sweep.built
    if spec is None:
        return None
    panels = []
    for row, seed, saved in shown:
        variant = next(v for v in spec.variants if row["case"] in v.cases)
        if variant.model.input_shape != (2,) or variant.model.output_size > 2:
            return None
        params = _rebuild_params(variant.model, saved)
        if params is None:
            return None
        panels.append((row, seed, variant, params))
    x = np.asarray(panels[0][2].dataset.train.x, float)
    lo, hi = x.min(0), x.max(0)
    lo, hi = lo - 0.125 * (hi - lo), hi + 0.125 * (hi - lo)  # the notebook: [-1.25, 1.25] for [-1, 1]
    g1, g2 = np.linspace(lo[0], hi[0], GRID_POINTS), np.linspace(lo[1], hi[1], GRID_POINTS)
    plane = np.stack(np.meshgrid(g1, g2), -1).reshape(-1, 2)
    cols = min(len(panels), 3)
    rows_n = -(-len(panels) // cols)
    fig = Figure(figsize=(4.4 * cols + 1.2, 4.3 * rows_n + 0.9), layout="constrained")
    axes = fig.subplots(rows_n, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (row, seed, variant, params) in zip(axes, panels):
        image = _boundary_panel(ax, sweep, row, seed, variant, params, (g1, g2, plane, lo, hi))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    boundary = Line2D([], [], color="black", lw=1.6, label="P = 0.5")
    fig.legend(handles=[*axes[0].get_legend_handles_labels()[0], boundary], loc="outside lower center", ncols=3,
               fontsize="small")
    fig.colorbar(image, ax=axes[:len(panels)].tolist(), label="predicted P(class 1)", shrink=0.9)
    which = "the best config of each case" if sweep.has_case else "the best configs"
    fig.suptitle(f"{sweep.spec['name']}: decision function of {which}")
    return fig
