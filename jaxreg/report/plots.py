"""Plots of a results folder: cost curves, the metric against each swept axis, search progress.

``plot_dir(out)`` reads what :mod:`jaxreg.results` wrote and adds the PNG files that apply:

- ``curves.png``: train and validation loss and accuracy per epoch of the best configs (the best
  of each case when the spec has cases), mean over seeds with a min-max band.
- ``metric_vs_<axis>.png``: the search metric against each numeric swept axis, and
  ``<metric>_vs_<axis>.png`` the same for each metric of ``output.plot_metrics``.
- ``search_space.png``: config means over the first two numeric axes, coloured by the metric.
- ``best_so_far.png``: the best config mean against the number of configs evaluated.
- ``generalization_gap.png``: train against validation accuracy of the best configs.
- ``weights_hist.png`` (when params were saved): histograms of the learned weights of the best
  configs, all layers pooled and layer by layer.
- ``decision_boundary.png`` (when params were saved and the inputs are 2-D): the predicted
  probability over the plane, its 0.5 contour and the training points, one panel per case.

Figures are built with matplotlib's object API (``Figure``), never pyplot: no global figure
registry to leak into, and no GUI backend, so it works headless and in threads.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatter, MaxNLocator, PercentFormatter

from jaxreg.report.store import load_curves, load_manifest, read_journal
from jaxreg.report.summary import as_float, is_number, summarize

MAX_SHOWN = 6  # configs in curves.png without cases: more lines than this are unreadable
MAX_CASES = 10  # the colour cycle's length
LOG_FORMS = ("logspace", "log_uniform")
CURVE_PANELS = (("train_loss", "val_loss"), ("train_accuracy", "val_accuracy"))
TEST_PANELS = (("test_loss",), ("test_accuracy",))  # test_curves.png: how the book reads a run
DPI = 120
MAX_LAYER_PANELS = 6  # weights_hist.png: one panel per layer up to this many layers
GRID_POINTS = 250  # decision_boundary.png: the plane is drawn from GRID_POINTS^2 predictions
_LAYER_INDEX = re.compile(r"\[(\d+)\]")


def plot_dir(out) -> list[Path]:
    """Writes the plots of a results folder as PNG files into it.

    Args:
        out: a results folder written by :func:`jaxreg.sweep.run_sweep`.

    Returns:
        The paths written, sorted; empty while the journal holds no finished trial.
    """
    out = Path(out)
    manifest = load_manifest(out)
    records = read_journal(out)
    if not records:
        return []
    sweep = _Sweep(out, manifest["spec"], records)
    plots = [("curves.png", _curves), ("test_curves.png", _test_curves), ("generalization_gap.png", _gap)]
    if any(r["metrics"][sweep.metric] is not None for r in records):  # else nothing to plot against
        if len(sweep.rows) >= 4:
            plots.append(("best_so_far.png", _best_so_far))
        if len(sweep.numeric) >= 2:
            plots.append(("search_space.png", _search_space))
        plots += [(f"metric_vs_{n}.png", functools.partial(_metric_vs, name=n)) for n in sweep.numeric]
    plots += [(f"{m}_vs_{n}.png", functools.partial(_metric_vs, name=n, metric=m))
              for m in sweep.plot_metrics for n in sweep.numeric]
    if sweep.has_params:
        plots += [("weights_hist.png", _weights_hist), ("decision_boundary.png", _decision_boundary)]
    written = []
    for filename, build in plots:  # one figure at a time: each is garbage once saved
        fig = build(sweep)
        if fig is not None:
            fig.savefig(out / filename, dpi=DPI)
            written.append(out / filename)
    return sorted(written)


class _Sweep:
    """What every plot reads: the spec, the journal and its summary, and the swept axes."""

    def __init__(self, out: Path, spec: dict, records: list[dict]):
        self.out, self.spec, self.records = out, spec, records
        self.metric = spec["search"]["metric"]
        self.minimize = spec["search"]["goal"] == "minimize"
        self.rows = summarize(records, spec["search"])  # best first
        self.trials: dict[str, list[dict]] = {}
        for record in records:
            self.trials.setdefault(record["config_id"], []).append(record)
        self.has_case = any(r["case"] is not None for r in records)
        self.has_rounds = len({r["round"] for r in records}) > 1
        values: dict[str, list] = {}
        for record in records:
            for name, value in record["point"].items():
                values.setdefault(name, []).append(value)
        self.varying = [n for n, v in values.items() if len({json.dumps(x) for x in v}) > 1]
        # Lists (per-layer dropout rates) and strings are categories: labels, never an axis.
        self.numeric = [n for n in self.varying if all(is_number(x) for x in values[n])]
        # Manifests written before output.plot_metrics existed lack the key.
        extra = spec.get("output", {}).get("plot_metrics", [])
        self.plot_metrics = [m for m in dict.fromkeys(extra) if m != self.metric]
        self.has_params = bool(spec.get("output", {}).get("params"))

    def label(self, row: dict) -> str:
        parts = [str(row["case"])] if self.has_case else []
        parts += [f"{name}={_fmt(row[name])}" for name in self.varying if name in row]
        return ", ".join(parts) or row["config_id"]

    def shown(self) -> list[dict]:
        """The best config of each case, or the best few configs."""
        if not self.has_case:
            return self.rows[:MAX_SHOWN]
        best = {}
        for row in self.rows:
            best.setdefault(row["case"], row)
        return list(best.values())[:MAX_CASES]

    def group(self, item: dict):
        """What colours a trial or config: its case, else its round when there are several."""
        return item["case"] if self.has_case else item["round"] if self.has_rounds else None

    def group_label(self, key) -> str:
        return str(key) if self.has_case else f"round {key + 1}" if self.has_rounds else "config"

    def log_form(self, name: str) -> bool:
        """Whether the spec samples axis ``name`` on a log scale, in any case."""
        tables = [self.spec.get("hparams") or {}, *(self.spec.get("cases") or {}).values()]
        return any(isinstance(t.get(name), dict) and set(t[name]) & set(LOG_FORMS) for t in tables)

    def curves(self, config_id: str) -> dict[str, np.ndarray] | None:
        """The curves of one config, one row per seed (NaN where not evaluated), and ``epochs``
        (completed epochs at each evaluation); None if no curves file was found."""
        loaded = []
        for record in self.trials[config_id]:
            try:
                loaded.append(load_curves(self.out, config_id, record["seed"]))
            except FileNotFoundError:
                continue
        if not loaded:
            return None
        names = [name for panels in (CURVE_PANELS, TEST_PANELS) for panel in panels for name in panel]
        curves = {n: _finite(np.stack([c[f"curve/{n}"] for c in loaded]).astype(float)) for n in names}
        # Each file records its epochs (a case may override train.eval_every); older files don't.
        n_evals = curves[names[0]].shape[1]
        epochs = loaded[0].get("epochs")
        if epochs is None or len(epochs) != n_evals:
            epochs = np.arange(1, n_evals + 1) * self.spec["train"]["eval_every"]
        curves["epochs"] = np.asarray(epochs)
        return curves

    def mean_of(self, config_id: str, metric: str) -> float:
        """The mean of ``metric`` over a config's seeds (NaN if a seed has none), as in summary.csv."""
        return float(np.mean([as_float(r["metrics"][metric]) for r in self.trials[config_id]]))

    def params(self, config_id: str, seed: int) -> dict[str, np.ndarray] | None:
        """One trial's saved params by key path (``"[0]['w']"``); None if none were saved."""
        try:
            saved = load_curves(self.out, config_id, seed)
        except FileNotFoundError:
            return None
        params = {k.removeprefix("params/"): v for k, v in saved.items() if k.startswith("params/")}
        return params or None

    @functools.cached_property
    def built(self):
        """The spec rebuilt from the manifest (models and data), or None where it can't be
        (data files missing on this machine, a spec from another jaxreg version)."""
        from jaxreg.sweeps.build import build_spec  # here: only the plots that apply a model need it

        try:
            return build_spec(self.spec)
        except (ValueError, OSError):  # InputError, or DatasetError for data not on this machine
            return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2g}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.nan)


def _mean(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where every entry is (np.nanmean would warn)."""
    count = np.isfinite(a).sum(0)
    return np.where(count > 0, np.nansum(a, 0) / np.maximum(count, 1), np.nan)


def _scale(ax, which: str, values, log_form: bool = False, factor: float = 20) -> None:
    """Log scale when positive values span more than ``factor`` (or the axis was sampled on
    one); symlog when zero is among them, as in ``l2 = [0, 1e-4, 1e-3]``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    positive = v[v > 0]
    if not len(positive) or v.min() < 0 or not (log_form or positive.max() / positive.min() > factor):
        return
    setter, axis = (ax.set_xscale, ax.xaxis) if which == "x" else (ax.set_yscale, ax.yaxis)
    if v.min() > 0:
        setter("log")
        _plain_log_labels(axis)
    else:
        setter("symlog", linthresh=positive.min(), linscale=0.5)
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.autoscale_view()  # limits already computed on the linear scale would stay otherwise
    if v.min() == 0:  # the default margin reaches into negative values no axis here can take
        (ax.set_xlim if which == "x" else ax.set_ylim)(-0.3 * positive.min(), None)


class _PlainLogFormatter(LogFormatter):
    """0.2 and 3 rather than 2x10^-1 and 3x10^0: a loss or a rate reads as a number. The parent
    still decides which ticks get a label (all minor ones on a short axis, none on a long one)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def _plain_log_labels(axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.7)))


def _metric_axis(ax, name: str, values) -> None:
    """Labels an axis that shows metric ``name``: accuracies in %, losses on a log scale if wide."""
    if name.endswith("accuracy"):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        _scale(ax, "y", values)
    ax.set_ylabel(name)


def _test_curves(sweep: _Sweep) -> Figure | None:
    """Test loss and accuracy per evaluation: what the book plots, never used for selection."""
    shown = [(row, c) for row in sweep.shown() if (c := sweep.curves(row["config_id"])) is not None]
    if not any(np.isfinite(c["test_accuracy"]).any() for _, c in shown):
        return None
    return _curves(sweep, TEST_PANELS, "test curves")


def _curves(sweep: _Sweep, panels=CURVE_PANELS, what: str = "learning curves") -> Figure | None:
    shown = [(row, c) for row in sweep.shown() if (c := sweep.curves(row["config_id"])) is not None]
    if not shown:
        return None
    columns = len(panels[0])
    fig = Figure(figsize=(5.5 * columns + 0.5 * (columns == 1), 8), layout="constrained")
    axes = fig.subplots(2, columns, sharex=True, sharey="row", squeeze=False)
    handles, any_stopped = [], False
    for i, (row, curves) in enumerate(shown):
        color, epochs = f"C{i}", curves["epochs"]
        stopped = sum(r["stopped_epoch"] > 0 for r in sweep.trials[row["config_id"]])
        for panel_names, panel_axes in zip(panels, axes):
            for name, ax in zip(panel_names, panel_axes):
                seeds = curves[name]
                mean = _mean(seeds)
                line, = ax.plot(epochs, mean, color=color, lw=1.6, label=sweep.label(row))
                if len(seeds) > 1:
                    # fmin/fmax skip NaN without the warnings of nanmin on all-NaN columns.
                    ax.fill_between(epochs, np.fmin.reduce(seeds), np.fmax.reduce(seeds),
                                    color=color, alpha=0.15, lw=0)
                if stopped and not name.startswith("train"):
                    at = int(np.argmin(np.abs(epochs - row["best_epoch_mean"])))
                    ax.plot(epochs[at], mean[at], "o", color=color, ms=7, mec="black", zorder=3)
        handles.append(line)
        any_stopped |= bool(stopped)
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
            else:  # log losses: the late, small decreases stay visible (if there are ticks to read)
                _scale(panel_axes[0], "y", row_values, factor=5)
        panel_axes[0].set_ylabel(panel_names[0].split("_")[1])
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if any_stopped:
        handles.append(Line2D([], [], ls="none", marker="o", color="grey", mec="black",
                              label="mean best epoch (early-stopped)"))
    longest = max(len(h.get_label()) for h in handles)
    fig.legend(handles=handles, loc="outside lower center", ncols=1 if longest > 45 else 2 if longest > 28 else 3)
    which = "the best config of each case" if sweep.has_case else f"the best {len(shown)} configs"
    seeds = len(sweep.trials[shown[0][0]["config_id"]])
    band = f"mean over {seeds} seeds, band: min-max" if seeds > 1 else "one seed"
    title = f"{sweep.spec['name']}: {what} of {which} ({band})"
    fig.suptitle(title.replace(" of ", "\nof ", 1) if columns == 1 else title)  # fit one column
    return fig


def _metric_vs(sweep: _Sweep, name: str, metric: str | None = None) -> Figure | None:
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
    groups = list(dict.fromkeys(sweep.group(r) for r in rows))
    for i, key in enumerate(groups):
        ok = [r for r in records if sweep.group(r) == key and r["metrics"][metric] is not None]
        ax.scatter([r["point"][name] for r in ok], [r["metrics"][metric] for r in ok],
                   s=14, color=f"C{i}", alpha=0.4, lw=0)
        mine = [r for r in rows if sweep.group(r) == key]
        ax.scatter([r[name] for r in mine], [means[r["config_id"]] for r in mine], s=45,
                   color=f"C{i}", edgecolor="black", lw=0.6, label=sweep.group_label(key) + " mean")
    # In a grid, configs that differ only in this axis form a line: the axis' effect at fixed others.
    others = [n for n in sweep.varying if n != name and len({json.dumps(r.get(n)) for r in rows}) > 1]
    lines: dict[str, list[dict]] = {}
    for row in rows:
        lines.setdefault(json.dumps([sweep.group(row), *[row.get(n) for n in others]]), []).append(row)
    handles = ax.get_legend_handles_labels()[0]
    if any(len(line) > 1 for line in lines.values()):
        for line in lines.values():
            line.sort(key=lambda r: r[name])
            ax.plot([r[name] for r in line], [means[r["config_id"]] for r in line], color="grey", lw=0.8,
                    alpha=0.5, zorder=0)
        if others:
            handles.append(Line2D([], [], color="grey", lw=0.8, label=f"same {', '.join(others)}"))
    handles.append(Line2D([], [], ls="none", marker="o", ms=4, color="grey", alpha=0.5, label="one seed"))
    best = rows[0]  # by the search metric, whichever metric is shown
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
    _scale(ax, "x", [r["point"][name] for r in records], sweep.log_form(name))
    _metric_axis(ax, metric, [r["metrics"][metric] for r in records])
    ax.set_xlabel(name)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="best")
    if searched:
        goal = "lower" if sweep.minimize else "higher"
        ax.set_title(f"{sweep.spec['name']}: {metric} against {name} ({goal} is better)")
    else:
        ax.set_title(f"{sweep.spec['name']}: {metric} against {name}")
    return fig


def _pin_to_worst(ax, top: bool, x, label: str):
    """Marks trials without a metric at x, on the worst edge of the plot (the top one if ``top``):
    there is no value to place them at."""
    marks = ax.scatter(x, [0.97 if top else 0.03] * len(x), marker="x", color="black",
                       transform=ax.get_xaxis_transform(), label=label)
    ax.dataLim.update_from_data_x(np.asarray(x, dtype=float), ignore=False)  # keep them in view
    ax.autoscale_view()
    return marks


def _search_space(sweep: _Sweep) -> Figure | None:
    metric, (xname, yname) = sweep.metric, sweep.numeric[:2]
    rows = [r for r in sweep.rows if xname in r and yname in r]
    done = [r for r in rows if not math.isnan(r[f"{metric}_mean"])]
    if len(done) < 2:
        return None
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.add_subplot()
    norm = (min(r[f"{metric}_mean"] for r in done), max(r[f"{metric}_mean"] for r in done))
    markers = "osD^vP"
    for round_ in sorted({r["round"] for r in done}):
        mine = [r for r in done if r["round"] == round_]
        points = ax.scatter([r[xname] for r in mine], [r[yname] for r in mine],
                            c=[r[f"{metric}_mean"] for r in mine], vmin=norm[0], vmax=norm[1],
                            cmap="viridis_r" if sweep.minimize else "viridis", s=60,
                            marker=markers[round_ % len(markers)], edgecolor="black", lw=0.5,
                            label=f"round {round_ + 1}" if sweep.has_rounds else None)
    bar = fig.colorbar(points, ax=ax, label=f"{metric} (mean over seeds), better on top")
    if sweep.minimize:
        bar.ax.invert_yaxis()
    if metric.endswith("accuracy"):
        bar.formatter = PercentFormatter(1.0)
    failed = [r for r in rows if math.isnan(r[f"{metric}_mean"])]
    if failed:
        ax.scatter([r[xname] for r in failed], [r[yname] for r in failed], marker="x",
                   color="grey", label="diverged")
    ax.scatter([done[0][xname]], [done[0][yname]], marker="*", s=400, facecolor="none",
               edgecolor="red", lw=1.5, label="best")
    _scale(ax, "x", [r[xname] for r in rows], sweep.log_form(xname))
    _scale(ax, "y", [r[yname] for r in rows], sweep.log_form(yname))
    ax.set(xlabel=xname, ylabel=yname, title=f"{sweep.spec['name']}: configs over {xname} x {yname}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _best_so_far(sweep: _Sweep) -> Figure:
    metric = sweep.metric
    by_id = {r["config_id"]: r for r in sweep.rows}
    order = [by_id[cid] for cid in sweep.trials]  # dicts keep the journal's order
    values = np.array([r[f"{metric}_mean"] for r in order])
    best = (np.fmin if sweep.minimize else np.fmax).accumulate(values)  # skips NaN (diverged)
    n = np.arange(1, len(values) + 1)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(n, values, s=18, color="grey", alpha=0.6, label="config (mean over seeds)")
    ax.step(n, best, where="post", color="C0", lw=2, label="best so far")
    if np.isnan(values).any():
        _pin_to_worst(ax, sweep.minimize, n[np.isnan(values)], "diverged (no mean)")
    for i in range(1, len(order)):
        if order[i]["round"] != order[i - 1]["round"]:
            ax.axvline(i + 0.5, color="black", ls=":", lw=1)
            ax.text(i + 0.7, 0.98, f"round {order[i]['round'] + 1}", transform=ax.get_xaxis_transform(),
                    va="top", fontsize="small")
    _metric_axis(ax, metric, values)
    ax.set_xlabel("configs evaluated (journal order)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"{sweep.spec['name']}: best {metric} so far ({len(order)} configs)")
    return fig


def _gap(sweep: _Sweep) -> Figure | None:
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
    ax.set_yticks(y, [sweep.label(r) for r in shown])
    ax.invert_yaxis()  # best on top
    ax.set_xlim(0, 1.04)  # room for error bars at 100%
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("accuracy at the returned params (mean ± std over seeds)")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{sweep.spec['name']}: train vs validation accuracy, best first (gap = overfitting)")
    return fig


def _weight_layers(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weight arrays (leaves named ``w``) of saved params, by layer path, in layer order."""
    layers = {path.removesuffix("['w']"): w for path, w in params.items() if path.endswith("['w']")}
    return dict(sorted(layers.items(), key=lambda item: [int(i) for i in _LAYER_INDEX.findall(item[0])]))


def _weights_hist(sweep: _Sweep) -> Figure | None:
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
            label = f"{sweep.label(row)}: rms {rms:.3g}"
            if layer is None:
                label += f", {len(w) // seeds} weights x {seeds} seed{'s' * (seeds > 1)}"
            ax.hist(clipped, edges, weights=share, histtype="step", color=f"C{i}", lw=1.4, label=label)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("weight")
        ax.grid(alpha=0.3)
        if layer is not None:
            index = ".".join(_LAYER_INDEX.findall(layer)) or layer
            ax.set_title(f"layer {index}: {' x '.join(map(str, shapes[layer]))} weights", fontsize="medium")
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
    shapes, treedef = jax.tree_util.tree_flatten_with_path(jax.eval_shape(model.init, jax.random.key(0)))
    return treedef.unflatten([saved[jax.tree_util.keystr(path)] for path, _ in shapes])


def _decision_boundary(sweep: _Sweep) -> Figure | None:
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
        panels.append((row, seed, variant, _rebuild_params(variant.model, saved)))
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
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        logits = np.asarray(variant.model.apply(params, plane.astype(dtype), logits=True), float)
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
        ax.set_title(f"{sweep.label(row)}, seed {seed}\n" + ", ".join(accuracies), fontsize="medium")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    boundary = Line2D([], [], color="black", lw=1.6, label="P = 0.5")
    fig.legend(handles=[*axes[0].get_legend_handles_labels()[0], boundary], loc="outside lower center", ncols=3,
               fontsize="small")
    fig.colorbar(image, ax=axes[:len(panels)].tolist(), label="predicted P(class 1)", shrink=0.9)
    which = "the best config of each case" if sweep.has_case else "the best configs"
    fig.suptitle(f"{sweep.spec['name']}: decision function of {which}")
    return fig
