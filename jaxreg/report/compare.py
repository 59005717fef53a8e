"""Results folders side by side: which search found the better config, and how fast.

``compare(dirs, out)`` writes into ``out``: ``best_so_far.png`` (the best config mean of the
search metric against configs evaluated, one line per folder, and a zoom on the final values),
``sampled_points.png`` (one panel per folder: its configs over its first two numeric swept axes,
coloured by the metric on one shared scale; an axis is on a log scale in every panel when any
folder samples it on one, so that log and linear sampling of one range compare by eye) and
``comparison.csv`` (one row per folder: spec, method, configs, trials, the best config's metric
mean +- std over seeds, its test accuracy and loss, the run time). The best config and the
best-so-far curve follow one rule, :func:`jaxreg.report.summary.best_row` (a config successive
halving pruned is never the best: its value is from an earlier rung). Folders must rank configs by
the same metric and goal; bad input raises :class:`jaxreg.errors.InputError` before anything is
written. Each folder is read by :mod:`jaxreg.report.folder` and drawn with the axis helpers of
:mod:`jaxreg.report.plots`, as a folder's own plots are.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from jaxreg.errors import InputError
from jaxreg.report.folder import Folder, load_folders  # load_folders: re-exported
from jaxreg.report.plots import metric_axis, metric_colorbar, save_figure, scatter_configs
from jaxreg.report.summary import best_row, write_csv

TITLE_WIDTH = 62  # characters of a sampled_points.png panel title's line, at fontsize "small"


def comparison_rows(folders: list[Folder]) -> list[dict]:
    """One row per folder: its best config by the search metric, with its test metrics."""
    out = []
    for folder in folders:
        metric, best = folder.metric, best_row(folder.rows)
        row = {"label": folder.label, "folder": str(folder.path), "spec": folder.spec["name"],
               "method": folder.method, "configs": len(folder.rows), "trials": len(folder.records),
               "diverged_trials": sum(r["status"] == "diverged" for r in folder.records),
               "metric": metric, "best_config_id": best["config_id"], "best_round": best["round"] + 1}
        row.update({f"best_{name}": best.get(name) for name in folder.numeric})
        for name in (metric, "test_accuracy", "test_loss"):
            row[f"{name}_mean"], row[f"{name}_std"] = best[f"{name}_mean"], best[f"{name}_std"]
        row["seconds"] = round(folder.seconds(), 1)
        out.append(row)
    return out


def _value(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.4f}"


def plot_best_so_far(folders: list[Folder]) -> Figure:
    """Left: the whole search; right: zoomed on the final values, where the searches differ."""
    metric, minimize = folders[0].metric, folders[0].minimize
    fig = Figure(figsize=(12, 5), layout="constrained")
    full, zoom = fig.subplots(1, 2)
    curves = [folder.best_so_far() for folder in folders]
    for i, (folder, best) in enumerate(zip(folders, curves)):
        n = np.arange(1, len(best) + 1)
        for ax in (full, zoom):
            ax.step(n, best, where="post", color=f"C{i}", lw=2, label=f"{folder.label}: {_value(best[-1], metric)}")
            ax.plot(n[-1], best[-1], "o", color=f"C{i}", ms=6)
    finals = np.array([b[-1] for b in curves], dtype=float)
    finals = np.sort(finals[np.isfinite(finals)])[::1 if minimize else -1]  # best first
    if len(finals):
        # One far-off search (its value is in the legend) must not flatten the others' differences.
        best, median = finals[0], np.median(finals)
        worst = finals[-1] if abs(finals[-1] - median) <= 2 * abs(median - best) else median + 2 * (median - best)
        margin = max(abs(worst - best), 0.02 * abs(median) + 1e-12) * (1 if minimize else -1)
        zoom.set_ylim(*sorted((best - 0.5 * margin, worst + 1.5 * margin)))
    metric_axis(full, metric, np.concatenate(curves), factor=5)
    metric_axis(zoom, metric, [], factor=5)
    full.set_title(f"best {metric} so far ({'lower' if minimize else 'higher'} is better)")
    zoom.set_title("zoom on the final values")
    for ax in (full, zoom):
        ax.set(xlabel="configs evaluated (journal order)", ylabel=f"best config mean of {metric}")
        ax.grid(alpha=0.3)
    zoom.legend(title="final best", fontsize="small", loc="upper right" if minimize else "lower right")
    fig.suptitle(f"Best so far: {len(folders)} searches, config mean over seeds")
    return fig


def per_decade(values, low: float, high: float) -> str:
    """How many values fall in each decade of [low, high], lowest first ('4 | 4 | 4 | 4');
    a value at ``high`` counts in the last decade."""
    first, last = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9) - 1
    decades = np.clip(np.floor(np.log10(np.asarray(values, dtype=float)) + 1e-9), first, max(first, last))
    return " | ".join(str(int((decades == d).sum())) for d in range(first, max(first, last) + 1))


def _limits(set_limits, values, log: bool) -> None:
    lo, hi = min(values), max(values)
    if log:
        pad = (hi / lo) ** 0.04
        set_limits(lo / pad, hi * pad)
    else:
        pad = 0.04 * (hi - lo) or 0.04 * abs(lo) or 0.04
        set_limits(lo - pad, hi + pad)


def plot_sampled_points(folders: list[Folder]) -> Figure:
    """One panel per folder: its configs over two numeric axes (one: against the metric), coloured
    by the metric on one scale; panels that show the same axis show the same range."""
    metric, minimize = folders[0].metric, folders[0].minimize
    axes_of = {f.label: f.numeric[:2] for f in folders}
    names = {n for f in folders for n in axes_of[f.label]}
    extent = {n: [v for f in folders if n in axes_of[f.label] for v in f.extent(n)] for n in names}
    log = {n for n in names if min(extent[n]) > 0 and any(f.log_form(n) for f in folders)}
    means = np.array([r[f"{metric}_mean"] for f in folders for r in f.rows], dtype=float)
    means = means[np.isfinite(means)]
    lo, hi = (means.min(), means.max()) if len(means) else (0.0, 1.0)
    use_log = not metric.endswith("accuracy") and lo > 0 and hi / lo > 5
    norm = LogNorm(lo, hi) if use_log else Normalize(lo, hi if hi > lo else lo + 1e-9)
    ncols = 2 if len(folders) in (2, 4) else min(len(folders), 3)
    nrows = math.ceil(len(folders) / ncols)
    fig = Figure(figsize=(5 * ncols + 1.2, 4.6 * nrows + 0.5), layout="constrained")
    panels = fig.subplots(nrows, ncols, squeeze=False).ravel()
    mappable = None
    for ax, folder in zip(panels, folders):
        axis_names, rows = axes_of[folder.label], folder.rows
        ax.grid(alpha=0.3)
        if not axis_names:
            ax.text(0.5, 0.5, "no numeric swept axis", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(folder.label, fontsize="medium")
            continue
        x_name, y_key = axis_names[0], axis_names[1] if len(axis_names) > 1 else f"{metric}_mean"
        rows = [r for r in rows if x_name in r and y_key in r]  # with cases, not every config has the axes
        points = scatter_configs(ax, rows, x_name, y_key, metric=metric, minimize=minimize, norm=norm)
        mappable = mappable if points is None else points
        done = [r for r in rows if math.isfinite(r[f"{metric}_mean"])]
        for name, set_scale, set_limits in zip(axis_names, (ax.set_xscale, ax.set_yscale), (ax.set_xlim, ax.set_ylim)):
            if name in log:
                set_scale("log")
            _limits(set_limits, extent[name], name in log)
        if len(axis_names) == 1:
            metric_axis(ax, metric, [r[y_key] for r in done], factor=5)
        x_label = x_name
        if x_name in log:
            low, high = min(extent[x_name]), max(extent[x_name])
            x_label += f"\nconfigs per decade from {low:g} to {high:g}: {per_decade([r[x_name] for r in rows], low, high)}"
        sampled = ", ".join(f"{n} {'log' if folder.log_form(n) else 'linear'}" for n in axis_names)
        best = _value(best_row(rows)[f"{metric}_mean"], metric) if rows else "-"
        # Wrapped to the panel's width: a long method or label must not run into the next title.
        lines = (f"{folder.label}: {folder.method}", f"{len(rows)} configs with {' and '.join(axis_names)}; "
                 f"best {metric} {best}", f"scale sampled: {sampled}")
        ax.set_title("\n".join(textwrap.fill(line, TITLE_WIDTH) for line in lines), fontsize="small")
        ax.set(xlabel=x_label, ylabel=axis_names[1] if len(axis_names) > 1 else metric)
        ax.legend(fontsize="x-small", loc="best", markerscale=0.6)
    for ax in panels[len(folders):]:
        ax.set_visible(False)
    if mappable is not None:
        metric_colorbar(fig, mappable, list(panels[:len(folders)]), metric, minimize,
                        f"{metric} (config mean over seeds)", shrink=0.8)
    fig.suptitle("Sampled configs per search (one colour scale; red star: the best config)")
    return fig


def compare(dirs, out: str | Path) -> list[Path]:
    """Writes ``comparison.csv``, ``best_so_far.png`` and ``sampled_points.png`` into ``out`` and
    returns their paths. ``out`` is created; it may not be one of ``dirs``, results folders
    written by :func:`jaxreg.sweeps.run_sweep` (it would replace their own ``best_so_far.png``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: expected a folder, got {str(out)!r} (a file)")
    if out.resolve() in {Path(d).resolve() for d in dirs}:
        raise InputError(f"--out: expected a folder other than the compared ones, got {str(out)!r}")
    folders = load_folders(list(dirs))
    # Everything is computed before the first write: a failure leaves no half of a comparison.
    rows = comparison_rows(folders)
    figures = [(filename, build(folders)) for filename, build in
               (("best_so_far.png", plot_best_so_far), ("sampled_points.png", plot_sampled_points))]
    out.mkdir(parents=True, exist_ok=True)
    written = [write_csv(out / "comparison.csv", rows)]
    for filename, figure in figures:
        save_figure(figure, out / filename)
        written.append(out / filename)
    return written
