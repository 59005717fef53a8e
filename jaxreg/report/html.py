"""One self-contained HTML page of one or several results folders: ``jaxreg report DIR [DIR ...]``.

``write_report(folders, out)`` reads each folder with :mod:`jaxreg.report.folder` (which opens
no link and imports no code a folder names) and writes one page that opens from disk with no
network: plotly's JavaScript is inlined once, each figure is plain JSON drawn by a short script,
and the same folders give the same bytes (fixed element ids, sorted keys, no timestamps).

Each folder gets a section of panels: a sortable table of configs (mean +- standard error over
seeds, seed rows that unfold), parallel coordinates of the swept values and the metric, the
metric against each swept value, the best config mean in cells over pairs of numeric axes,
parameter importance, best so far against configs and against compute, learning curves with seed
bands (successive halving: pruned configs in grey, rungs marked, members per rung), the findings
``jaxreg show`` prints, and the manifest. Several folders add a comparison: the empirical distribution of each
search's config means and their best-so-far curves.

Every figure is SVG (no WebGL: its shaders take seconds to compile where a browser renders in
software). Above :data:`MANY_POINTS` configs, what a point a config would smear is aggregated and
the title says how: the metric against each axis and best-so-far as counts of configs in cells
with the median and best in each bin, parallel coordinates as the best :data:`MAX_LINES` / 2
configs and as many spread over the rest of the ranking, the dots over pairs of axes as the best
:data:`BEST_DOTS`. Smaller folders are drawn in full. The figures in the first screen are drawn
first, then the others one at a time (a figure scrolled into view next).

Plotly, because the page must work offline from one file (its bundle is inlined, no CDN) and it
is the library Optuna's visualizations draw with. Every string read from a folder is escaped
before it enters the page, in HTML and in plotly's labels (which understand a few tags).
"""

from __future__ import annotations

import functools
import html
import json
import math
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from jaxreg.errors import InputError
from jaxreg.report.findings import finding_lines
from jaxreg.report.folder import Folder, distinct, load_folders
from jaxreg.report.files import atomic_write
from jaxreg.report.stats import mean_se
from jaxreg.report.summary import finished, is_number

__all__ = ["build_page", "importance", "write_report"]

TABLE_ROWS = 200  # configs in a folder's table: the best ones, a note says how many more
MANY_POINTS = 1000  # above this many configs a scatter of them is drawn as counts in cells (a 2-D histogram)
MAX_LINES = 500  # parallel coordinates above MANY_POINTS configs: lines drawn (the best half, the rest spread)
BEST_DOTS = 100  # pairs of axes above MANY_POINTS configs: the best configs drawn as dots
DENSITY_BINS = (40, 30)  # cells of a 2-D histogram, along x and along the metric
MAX_PAIRS = 6  # contour panels: the first pairs of numeric axes
MIN_PAIR = 4  # finished configs a pair's panel needs
DISTINCT_LEVELS = 25  # an axis with at most this many values is a grid: a cell per value
PAIR_BINS = 20  # else its range is cut in this many bins (geometric on a log axis)
IMPORTANCE_BINS = 10  # a numeric axis with more values is cut at its deciles for importance
BOOTSTRAP = 200  # seed resamples for the importance intervals
MAX_RACE = 40  # halving: the configs whose curves are drawn (the best finished, then pruned)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf")
PRUNED = "#b0b0b0"
PARCOORDS_COLORS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # Viridis in five: darkest is best
# plotly.js's "basic" partial bundle (scatter, bar, pie; the page draws scatter and bar traces
# only, its cells as images), the same release as the full bundle of the plotly Python package,
# vendored from npm's plotly.js-basic-dist-min 4.1.1 (MIT, vendor/plotly-LICENSE): 1.2 MB instead
# of 4.8 MB, which the browser parses and runs before it draws anything (0.35 s less than the
# 1.5 MB cartesian bundle, whose heatmap and histogram modules the page no longer needs), and no
# Python dependency for the report. TRACES lists what it can draw.
PLOTLY_JS = "vendor/plotly-basic.min.js"
TRACES = ("scatter", "bar", "pie")


def write_report(folders, out) -> Path:
    """Writes the HTML report of results folders to ``out`` and returns its path.

    Args:
        folders: results folders written by :func:`jaxreg.sweeps.run_sweep`, ranked by the same
            metric and goal when there are several.
        out: the page to write (a ``.html`` file; its folder is created).

    Raises:
        InputError: a folder is not a results folder or has no trials,
            folders rank by different metrics, or ``out`` is a folder.
    """
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out: expected an HTML file path, got {str(out)!r} (a folder)")
    page = build_page(load_folders(list(folders)), plotly_js())
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.encode("utf-8"))
    return out


def plotly_js() -> str:
    """plotly.js's basic bundle, as the page inlines it (:data:`PLOTLY_JS`)."""
    return resources.files("jaxreg.report").joinpath(PLOTLY_JS).read_text(encoding="utf-8")


def build_page(folders: list[Folder], plotly_js: str) -> str:
    """The page's HTML: one section per folder (and a comparison before them when several)."""
    figures: dict[str, dict] = {}
    sections = []
    if len(folders) > 1:
        sections.append(_comparison_section(folders, figures))
    sections += [_folder_section(folder, f"f{i}", figures) for i, folder in enumerate(folders)]
    names = ", ".join(_e(f.label or f.spec["name"]) for f in folders)
    nav = "".join(f'<a href="#f{i}">{_e(f.label)}</a>' for i, f in enumerate(folders))
    data = json.dumps(figures, sort_keys=True, separators=(",", ":"), allow_nan=False)
    # "<", ">" and "&" only occur inside JSON strings: escaped there, no "</script>" can close the block
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # plotly's bundle (1.5 MB, half a second or more to compile in a slow browser) comes after the
    # page's text, so the tables and headings show while it loads
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>jaxreg report: {names}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<h1>jaxreg report: {names}</h1>\n<nav>{nav}</nav>\n{"".join(sections)}\n'
            f'<script type="application/json" id="jaxreg-figures">{data}</script>\n'
            f"<script>{plotly_js}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n")


# --- small helpers ----------------------------------------------------------------------------

def _e(text) -> str:
    """Any text from a folder, escaped for HTML and for plotly's labels alike."""
    return html.escape(str(text), quote=True)


@functools.lru_cache(maxsize=32)
def _stats(folder: Folder, metric: str) -> dict[str, tuple[float, float, int]]:
    """:func:`mean_se` of ``metric`` over each config's seeds, by config id (a Folder hashes by identity)."""
    return {cid: mean_se(_seed_values(folder, cid, metric)) for cid in folder.trials}


def _json_floats(values) -> list:
    """Floats for JSON, to 7 significant digits (what a figure resolves; a 10,000-config page is
    half the size): None where not finite (plotly leaves a gap)."""
    return [float(f"{v:.7g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def _fmt(value: float, metric: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.2f}" if metric.endswith("accuracy") else f"{value:.4g}"


def _value_text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, list) else str(value)


def _metric_title(metric: str) -> str:
    return f"{metric} %" if metric.endswith("accuracy") else metric


@functools.lru_cache(maxsize=256)
def _log_axis(folder: Folder, name: str) -> bool:
    """An axis is drawn on a log scale where the spec samples it on one and every value is > 0."""
    return folder.log_form(name) and all(v > 0 for v in folder.extent(name))


def _x_axis(folder: Folder, name: str) -> dict:
    """A swept axis: log (a tick a decade) where the spec samples it on a log scale."""
    if _log_axis(folder, name):
        return {"title": {"text": _e(name)}, "type": "log", "exponentformat": "power", **_swept_ticks(folder, name)}
    return {"title": {"text": _e(name)}, "type": "linear"}


@functools.lru_cache(maxsize=256)
def _swept_ticks(folder: Folder, name: str) -> dict:
    """:func:`_log_ticks` of a swept axis (once: its extent reads every config)."""
    return _log_ticks(folder.extent(name))


def _log_ticks(values) -> dict:
    """Labels of a log axis: a tick a decade where the values span two decades or more; else
    1, 2 and 5 of each decade, as plain numbers (plotly's own choice there labels every digit
    2..9, which crowd each other)."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a) & (a > 0)]
    if not len(a) or a.max() / a.min() >= 100:
        return {"dtick": 1}
    low, high = math.floor(math.log10(a.min())), math.ceil(math.log10(a.max()))
    ticks = [m * 10.0 ** e for e in range(low, high + 1) for m in (1, 2, 5)]
    ticks = [float(f"{t:.1g}") for t in ticks if a.min() / 1.25 <= t <= a.max() * 1.25]
    if len(ticks) < 2:  # within a factor of 2: plotly's own ticks
        return {}
    return {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _metric_axis(values, metric: str) -> dict:
    """The metric's axis: log for a loss whose values span more than a factor of 5 (one far-off
    config would flatten the others), else linear; accuracies in %."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    log = not metric.endswith("accuracy") and len(a) > 0 and a.min() > 0 and a.max() / a.min() > 5
    if not log:
        return {"title": {"text": _e(_metric_title(metric))}, "type": "linear"}
    return {"title": {"text": _e(_metric_title(metric))}, "type": "log", **_log_ticks(a)}


def _seed_values(folder: Folder, config_id: str, metric: str) -> list[float]:
    return [_float(r["metrics"].get(metric)) for r in folder.trials[config_id]]


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _layout(title: str, height: int = 420, **more) -> dict:
    return {"title": {"text": title, "font": {"size": 15}}, "height": height, "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
            "font": {"family": "Helvetica, Arial, sans-serif", "size": 12}, "paper_bgcolor": "white",
            "plot_bgcolor": "#fafafa", "hovermode": "closest", **more}


def _grid(count: int, columns: int, gap: float = 0.08) -> list[tuple[str, str, dict, dict]]:
    """Subplot axes for ``count`` panels in rows of ``columns``: (x ref, y ref, x axis, y axis)."""
    rows = math.ceil(count / columns)
    width, height = (1 - gap * (columns - 1)) / columns, (1 - 1.6 * gap * (rows - 1)) / rows
    cells = []
    for k in range(count):
        row, col = divmod(k, columns)
        x0, y1 = col * (width + gap), 1 - row * (height + 1.6 * gap)
        suffix = "" if k == 0 else str(k + 1)
        cells.append((f"x{suffix}", f"y{suffix}", {"domain": [x0, x0 + width], "anchor": f"y{suffix}"},
                      {"domain": [y1 - height, y1], "anchor": f"x{suffix}"}))
    return cells


def _place(layout: dict, cell: tuple, x_axis: dict, y_axis: dict) -> tuple[str, str]:
    """Puts one subplot's axes into ``layout``; returns the trace's (xaxis, yaxis) references."""
    x_ref, y_ref, x_base, y_base = cell
    layout["xaxis" + x_ref[1:]] = {**x_base, **x_axis}
    layout["yaxis" + y_ref[1:]] = {**y_base, **y_axis}
    return x_ref, y_ref


def _ranked(folder: Folder) -> list[dict]:
    """Finished configs with a finite metric mean, best first (what compares fairly)."""
    return [r for r in folder.rows if finished(r) and math.isfinite(r[f"{folder.metric}_mean"])]


# --- the table --------------------------------------------------------------------------------

def _columns(folder: Folder) -> list[str]:
    """Metrics of the table: the search metric first, then the other validation and train ones."""
    first = folder.records[0]["metrics"]
    names = [n for n in ("val_loss", "val_accuracy", "train_loss", "train_accuracy", "val_rmse", "val_r2")
             if n in first and n != folder.metric]
    return [folder.metric, *names]


def _cell(text: str, sort=None) -> str:
    key = "" if sort is None or (isinstance(sort, float) and not math.isfinite(sort)) else sort
    attr = f' data-v="{_e(key)}"' if sort is not None else ""
    return f"<td{attr}>{text}</td>"


def _config_rows(folder: Folder, row: dict, metrics: list[str]) -> str:
    """One config's ``<tbody>``: its row (mean +- SE over seeds) and its seeds' rows, folded."""
    cid = row["config_id"]
    cells = [_cell(f'<button class="seeds" aria-expanded="false">+</button> {row["rank"]}', row["rank"])]
    if folder.has_case:
        cells.append(_cell(_e(row["case"]), str(row["case"])))
    if folder.has_rounds:
        cells.append(_cell(str(row["round"] + 1), row["round"] + 1))
    for name in folder.varying:
        value = row.get(name)
        cells.append(_cell(_e(_value_text(value)) if name in row else "-",
                           value if isinstance(value, (int, float)) else json.dumps(value)))
    for metric in metrics:
        mean, se, _ = _stats(folder, metric)[cid] if metric == folder.metric else mean_se(_seed_values(folder, cid, metric))
        cells.append(_cell(f"{_fmt(mean, metric)} &plusmn; {_fmt(se, metric)}", mean))
    flags = [f'{row["diverged"]} diverged'] if row["diverged"] else []
    if "status" in row:
        flags.append(f"pruned at epoch {row['pruned_epoch']}" if not finished(row) else f"finished (epoch {row['rung']})")
    cells += [_cell(str(row["seeds"]), row["seeds"]), _cell(_fmt(row["best_epoch_mean"]), row["best_epoch_mean"]),
              _cell(_e("; ".join(flags)), "; ".join(flags)), _cell(f"<code>{_e(cid)}</code>", cid)]
    seeds = [_seed_row(folder, record, metrics, len(cells)) for record in folder.trials[cid]]
    grey = ' class="cfg pruned"' if not finished(row) else ' class="cfg"'
    return f'<tbody{grey}><tr>{"".join(cells)}</tr>{"".join(seeds)}</tbody>'


def _seed_row(folder: Folder, record: dict, metrics: list[str], width: int) -> str:
    values = "  ".join(f"{_e(m)} {_fmt(_float(record['metrics'].get(m)), m)}" for m in metrics)
    status = record["status"] + (f", pruned at epoch {record['pruned_epoch']}" if record.get("pruned_epoch") else "")
    text = f"seed {_e(record['seed'])}: {values}; best epoch {_e(record['best_epoch'])}; {_e(status)}"
    return f'<tr class="seed" hidden><td></td><td colspan="{width - 1}">{text}</td></tr>'


def _table_html(folder: Folder) -> str:
    metrics = _columns(folder)
    heads = ["rank", *(["case"] if folder.has_case else []), *(["round"] if folder.has_rounds else []),
             *folder.varying, *[f"{_metric_title(m)} (mean &plusmn; SE)" for m in metrics], "seeds", "best epoch",
             "status", "config"]
    head = "".join(f'<th data-sort="{i}" title="click to sort">{h if "&plusmn;" in h else _e(h)}</th>'
                   for i, h in enumerate(heads))
    shown = folder.rows[:TABLE_ROWS]
    body = "".join(_config_rows(folder, row, metrics) for row in shown)
    more = (f'<p class="note">The best {TABLE_ROWS} of {len(folder.rows)} configs; every config is in '
            f"summary.csv.</p>" if len(folder.rows) > TABLE_ROWS else "")
    return (f'<p class="note">Best first by {_e(folder.metric)} ({"lower" if folder.minimize else "higher"} is '
            f"better); SE: standard error of the mean over seeds. Click a header to sort, + to see the seeds."
            f"{' Accuracies in %.' if any(m.endswith('accuracy') for m in metrics) else ''}</p>{more}"
            f'<div class="scroll"><table class="configs"><thead><tr>{head}</tr></thead><template>{body}</template>'
            f"</table></div><script>{ROWS_IN}</script>")


# --- figures of one folder ----------------------------------------------------------------------

def _parcoords(folder: Folder) -> dict | None:
    """Parallel coordinates: each config's swept values and its metric mean, one line each,
    coloured by its rank (fifths of the finished configs; click the legend to show one alone);
    configs successive halving pruned in grey, at their last rung's value.

    Drawn in SVG (plotly ``scatter`` lines), not plotly's ``parcoords``: that one draws with
    WebGL, whose shaders take 6-15 s to compile where the browser renders in software (a
    headless Chromium, a machine without a GPU), whatever the number of lines."""
    names = folder.varying + (["case"] if folder.has_case else [])
    rows, note = _parcoords_rows(folder)
    if not rows or not names:
        return None
    metric = folder.metric
    means = _scaled([r[f"{metric}_mean"] for r in rows], metric)
    dimensions = [_dimension(folder, rows, name) for name in names]
    dimensions.append({"label": _e(_metric_title(metric)), "values": _json_floats(means),
                       **_linear_ticks(means)})
    heights = [_unit(d) for d in dimensions]
    layout = _layout(f"{len(rows)} configs: swept values and {_e(metric)}{note}", 480, showlegend=True,
                     legend={"orientation": "h", "y": -0.08, "traceorder": "reversed"},
                     margin={"l": 40, "r": 40, "t": 90, "b": 40},
                     xaxis={"tickvals": list(range(len(dimensions))), "ticktext": [d["label"] for d in dimensions],
                            "side": "top", "range": [-0.4, len(dimensions) - 0.6], "showgrid": False, "zeroline": False},
                     yaxis={"visible": False, "range": [-0.04, 1.04]}, hovermode="closest")
    layout["shapes"] = [{"type": "line", "x0": k, "x1": k, "y0": 0, "y1": 1, "line": {"color": "#444", "width": 1}}
                        for k in range(len(dimensions))]
    layout["annotations"] = [{"x": k, "y": y, "text": text, "showarrow": False, "xanchor": "right", "xshift": -3,
                              "font": {"size": 10, "color": "#444"}, "bgcolor": "rgba(255,255,255,0.75)"}
                             for k, (d, h) in enumerate(zip(dimensions, heights)) for y, text in h[1]]
    lines = np.array([h[0] for h in heights]).T  # configs x dimensions, each in [0, 1]
    return {"data": _parcoords_traces(folder, rows, lines), "layout": layout}


def _parcoords_rows(folder: Folder) -> tuple[list[dict], str]:
    """The configs drawn as lines, best first, and what the title says of them: every config up
    to :data:`MANY_POINTS`; beyond, :data:`MAX_LINES`: the best half of that many and the rest
    spread evenly over the ranking (10,000 lines are one dark smear), so the colours still span
    the whole range."""
    done = [r for r in folder.rows if finished(r)]
    pruned = [r for r in folder.rows if not finished(r)]
    note = "; pruned configs in grey, at their last rung's value" if pruned else ""
    if len(folder.rows) <= MANY_POINTS:
        return done + pruned, note
    best = MAX_LINES // 2
    spread = np.linspace(best, len(folder.rows) - 1, MAX_LINES - best).round().astype(int)
    picked = [*range(best), *sorted(set(spread.tolist()))]
    rows = [(done + pruned)[i] for i in picked]
    return rows, (f" (the best {best} of {len(folder.rows)} and {len(picked) - best} spread evenly over the rest "
                  f"of the ranking; every config is in summary.csv){note}")


def _parcoords_traces(folder: Folder, rows: list[dict], lines: np.ndarray) -> list[dict]:
    """One trace a colour (fewer SVG paths to draw): pruned configs first, then the fifths of the
    finished ones from the worst, so the best lie on top."""
    done = np.array([finished(r) for r in rows])
    ranked = np.flatnonzero(done)
    bands = np.array_split(ranked, min(len(PARCOORDS_COLORS), len(ranked))) if len(ranked) else []
    groups = [(np.flatnonzero(~done), PRUNED, "pruned (its last rung's value)")] if (~done).any() else []
    metric = folder.metric
    for k, band in reversed(list(enumerate(bands))):
        values = _scaled([rows[i][f"{metric}_mean"] for i in band], metric)
        first, last = rows[band[0]]["rank"], rows[band[-1]]["rank"]
        label = f"rank {first}" if first == last else f"ranks {first}-{last}"
        label += f": {_fmt_range(values, metric)}"
        groups.append((band, PARCOORDS_COLORS[k * len(PARCOORDS_COLORS) // len(bands)], label))
    data, width = [], lines.shape[1]
    for members, color, label in groups:
        x = [float(c) for _ in members for c in [*range(width), math.nan]]
        y = np.concatenate([np.append(lines[i], np.nan) for i in members])
        text = [t for i in members for t in [_e(f"{rows[i]['rank']}: {folder.config_label(rows[i])}")] * width + [""]]
        data.append({"type": "scatter", "mode": "lines", "name": _e(label), "x": _json_floats(x),
                     "y": _json_floats(y), "text": text, "hoverinfo": "text",
                     "line": {"color": color, "width": 1.5 if color != PRUNED else 1}, "opacity": 0.8})
    return data


def _fmt_range(values: np.ndarray, metric: str) -> str:
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (math.nan, math.nan)
    return f"{_metric_title(metric)} {low:.4g}" + (f" to {high:.4g}" if high != low else "")


def _linear_ticks(values) -> dict:
    """Five evenly spaced labelled ticks over the finite values (one where they are all equal)."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return {"tickvals": [], "ticktext": []}
    ticks = np.unique(np.linspace(a.min(), a.max(), 5))
    return {"tickvals": [float(t) for t in ticks], "ticktext": [f"{t:.3g}" for t in ticks]}


def _unit(dimension: dict) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """A parallel axis's values and ticks mapped onto [0, 1] (its values' and ticks' extent;
    a missing value sits at the bottom)."""
    values = np.array([math.nan if v is None else v for v in dimension["values"]], dtype=float)
    if "tickvals" not in dimension:
        dimension = {**dimension, **_linear_ticks(values)}
    ticks = np.asarray(dimension["tickvals"], dtype=float)
    both = np.concatenate([values[np.isfinite(values)], ticks])
    low, high = (both.min(), both.max()) if len(both) else (0.0, 1.0)
    span = high - low if high > low else 1.0
    offset = 0.0 if high > low else 0.5
    unit = np.where(np.isfinite(values), (values - low) / span + offset, 0.0)
    return unit, [(float((t - low) / span + offset), text) for t, text in zip(ticks, dimension["ticktext"])]


def _scaled(values, metric: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return 100 * a if metric.endswith("accuracy") else a


def _axis_value(folder: Folder, row: dict, name: str):
    """A config's value on axis ``name``: swept, else the value it trained with (a case without
    the axis), from its first trial's hparams."""
    if name in row:
        return row[name]
    return folder.trials[row["config_id"]][0]["hparams"].get(name)


def _dimension(folder: Folder, rows: list[dict], name: str) -> dict:
    values = [_axis_value(folder, r, name) if name != "case" else r["case"] for r in rows]
    if name in folder.numeric:
        a = np.array([v if is_number(v) else math.nan for v in values], dtype=float)
        if not _log_axis(folder, name):
            return {"label": _e(name), "values": _json_floats(np.where(np.isfinite(a), a, np.nanmin(a)))}
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(a)
        low = math.floor(np.nanmin(logs[np.isfinite(logs)]))
        off = ~np.isfinite(logs)  # 0 (a case without it) has no place on a log axis: one decade below
        ticks = [float(t) for t in range(low - off.any(), math.ceil(np.nanmax(logs[~off])) + 1)]
        return {"label": _e(f"{name} (log)"), "values": _json_floats(np.where(off, low - 1, logs)), "tickvals": ticks,
                "ticktext": ["0 / off" if off.any() and t == low - 1 else f"{10 ** t:g}" for t in ticks]}
    levels = distinct(values)  # lists (per-layer rates), strings and cases: categories
    codes = {json.dumps(v, sort_keys=True): i for i, v in enumerate(levels)}
    return {"label": _e(name), "values": [codes[json.dumps(v, sort_keys=True)] for v in values],
            "tickvals": list(range(len(levels))), "ticktext": [_e(_value_text(v)) for v in levels]}


def _metric_vs(folder: Folder) -> dict | None:
    """The metric (config mean, SE bars) against each numeric swept axis, one panel each; above
    :data:`MANY_POINTS` configs, how many configs fall in each cell of the plane, with the
    median and the best finished config mean in each bin of the axis (10,000 points with error
    bars are a smear, and a page that takes seconds to draw)."""
    if not folder.numeric:
        return None
    metric, many = folder.metric, len(folder.rows) > MANY_POINTS
    what = ("grey cells: how many configs; lines: the median and the best finished config mean in each bin" if many
            else "config mean &plusmn; SE over seeds")
    layout = _layout(f"{_e(metric)} against each swept value ({what})", 380 * math.ceil(len(folder.numeric) / 3),
                     showlegend=folder.has_case or many, legend={"orientation": "h", "y": -0.12})
    data = []
    y_axis = _metric_axis([r[f"{metric}_mean"] for r in folder.rows], metric)
    for k, (name, cell) in enumerate(zip(folder.numeric, _grid(len(folder.numeric), min(3, len(folder.numeric))))):
        refs = _place(layout, cell, _x_axis(folder, name), y_axis)
        if many:
            rows = [r for r in folder.rows if name in r]
            x, y = np.array([r[name] for r in rows], dtype=float), _scaled([r[f"{metric}_mean"] for r in rows], metric)
            logs = (_log_axis(folder, name), y_axis["type"] == "log")
            done = np.array([finished(r) for r in rows])
            _density(x, y, logs, refs, layout)
            data += _binned_lines(x[done], y[done], logs[0], folder.minimize, refs, k == 0)
        else:
            data += _mean_points(folder, name, refs, k == 0)
    return {"data": data, "layout": layout}


def _mean_points(folder: Folder, name: str, refs: tuple[str, str], legend: bool) -> list[dict]:
    """Each config's mean and SE against axis ``name``, a trace a case (pruned configs apart)."""
    metric, data = folder.metric, []
    for g, (label, rows) in enumerate(_groups(folder)):
        rows = [r for r in rows if name in r]
        if not rows:
            continue
        means, ses = zip(*[_stats(folder, metric)[r["config_id"]][:2] for r in rows])
        data.append({"type": "scatter", "mode": "markers", "name": _e(label), "legendgroup": _e(label),
                     "showlegend": legend and folder.has_case, "xaxis": refs[0], "yaxis": refs[1],
                     "x": _json_floats([r[name] for r in rows]), "y": _json_floats(_scaled(means, metric)),
                     "error_y": {"type": "data", "array": _json_floats(_scaled(ses, metric)), "thickness": 1},
                     "marker": {"color": PRUNED if label == "pruned" else COLORS[g % len(COLORS)], "size": 7},
                     **_hover(folder, rows, "text+y")})
    return data


def _edges(values: np.ndarray, bins: int, log: bool) -> np.ndarray:
    """Bin edges over the values' range, geometric on a log axis (one bin where all are equal)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.array([low * 0.9, low * 1.1] if log else [low - 0.5, low + 0.5])
    return np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def _density(x: np.ndarray, y: np.ndarray, logs: tuple[bool, bool], refs: tuple[str, str], layout: dict) -> None:
    """A 2-D histogram of points, how many configs fall in each cell (empty cells blank), put into
    ``layout`` as an image under the subplot ``refs``, one pixel a cell (drawn pixelated), its
    axes' ranges set to the cells' edges. A plotly heatmap on a log axis paints a canvas the size
    of the plot and encodes it as a PNG each time it is drawn: 25-30 ms a heatmap, a fifth of the
    page's drawing on a 10,000-config folder; this PNG is 40 x 30 pixels, made once here."""
    keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) | (not logs[0])) & ((y > 0) | (not logs[1]))
    x, y = x[keep], y[keep]
    if not len(x):
        return
    x_edges, y_edges = _edges(x, DENSITY_BINS[0], logs[0]), _edges(y, DENSITY_BINS[1], logs[1])
    counts = np.zeros((len(y_edges) - 1, len(x_edges) - 1))
    np.add.at(counts, (_bin_index(y, y_edges), _bin_index(x, x_edges)), 1)
    _image_under(layout, refs, _grey_cells(counts[::-1]), (x_edges, y_edges), logs)


def _image_under(layout: dict, refs: tuple[str, str], pixels: np.ndarray, edges: tuple, logs: tuple[bool, bool]) -> None:
    """Puts RGBA ``pixels`` (rows top first) into ``layout`` as an image under the subplot
    ``refs``, stretched over the cells' ``edges`` (x, y), and sets its axes' ranges to them (in
    log10 on a log axis, as plotly places images there)."""
    (x0, x1), (y0, y1) = ([math.log10(e[0]), math.log10(e[-1])] if log else [float(e[0]), float(e[-1])]
                          for e, log in zip(edges, logs))
    layout.setdefault("images", []).append(
        {"source": _png_uri(pixels), "xref": refs[0], "yref": refs[1], "x": x0, "y": y1, "sizex": x1 - x0,
         "sizey": y1 - y0, "sizing": "stretch", "xanchor": "left", "yanchor": "top", "layer": "below"})
    layout["xaxis" + refs[0][1:]]["range"] = [x0, x1]
    layout["yaxis" + refs[1][1:]]["range"] = [y0, y1]


def _grey_cells(counts: np.ndarray) -> np.ndarray:
    """Counts (rows top first) as RGBA pixels: grey from #e8e8e8 at the fewest to #404040 at the
    most, as plotly colours a heatmap between its smallest and largest value; an empty cell clear."""
    full = counts > 0
    low, high = (counts[full].min(), counts[full].max()) if full.any() else (0.0, 0.0)
    share = (counts - low) / (high - low) if high > low else np.full(counts.shape, 0.5)
    grey = np.where(full, np.rint(0xe8 + (0x40 - 0xe8) * share), 0)
    return np.dstack([grey, grey, grey, np.where(full, 255, 0)]).astype(np.uint8)


def _png_uri(pixels: np.ndarray) -> str:
    """RGBA pixels as a PNG data URI (Pillow, which matplotlib installs: the same bytes each time)."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _binned_lines(x, y, log: bool, minimize: bool, refs: tuple[str, str], legend: bool) -> list[dict]:
    """The median and the best of ``y`` in each bin of ``x`` that holds a finite point."""
    keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) | (not log))
    x, y = x[keep], y[keep]
    if not len(x):
        return []
    edges = _edges(x, DENSITY_BINS[0], log)
    index = _bin_index(x, edges)
    used = np.unique(index)
    centers = np.sqrt(edges[:-1] * edges[1:]) if log else (edges[:-1] + edges[1:]) / 2
    best = np.min if minimize else np.max
    lines = (("median config in the bin", np.median, COLORS[1]), ("best config in the bin", best, COLORS[3]))
    return [{"type": "scatter", "mode": "lines", "name": name, "legendgroup": name, "showlegend": legend,
             "x": _json_floats(centers[used]), "y": _json_floats([reduce(y[index == i]) for i in used]),
             "xaxis": refs[0], "yaxis": refs[1], "line": {"color": color, "width": 2}}
            for name, reduce, color in lines]


def _hover(folder: Folder, rows: list[dict], info: str) -> dict:
    """Each point's config as hover text, where there are at most :data:`MANY_POINTS` (beyond,
    the labels would be most of the page's size: the hover shows the coordinates)."""
    if len(rows) > MANY_POINTS:
        return {"hoverinfo": "x+y"}
    return {"text": [_e(folder.config_label(r)) for r in rows], "hoverinfo": info}


def _groups(folder: Folder) -> list[tuple[str, list[dict]]]:
    """The configs by case (or all together), the pruned ones apart."""
    groups: dict[str, list[dict]] = {}
    for row in folder.rows:
        label = "pruned" if not finished(row) else (str(row["case"]) if folder.has_case else "configs")
        groups.setdefault(label, []).append(row)
    return sorted(groups.items(), key=lambda item: item[0] == "pruned")


def _cells(values: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """The cell edges of an axis and each value's cell: a cell per distinct value for a grid
    (edges halfway between neighbours, geometrically on a log axis, as far beyond the ends as the
    nearest neighbour), else :data:`PAIR_BINS` bins of its range (geometric on a log axis)."""
    levels = np.unique(values)
    scale = np.log if log else (lambda a: a)
    unscale = np.exp if log else (lambda a: a)
    if len(levels) <= DISTINCT_LEVELS:
        s = scale(levels)
        half = np.diff(s) / 2 if len(s) > 1 else np.array([0.5 if not log else np.log(2.0)])
        edges = np.concatenate([[s[0] - half[0]], s[:-1] + half, [s[-1] + half[-1]]])
        return unscale(edges), np.searchsorted(levels, values)
    lo, hi = values.min(), values.max()
    edges = np.geomspace(lo, hi, PAIR_BINS + 1) if log else np.linspace(lo, hi, PAIR_BINS + 1)
    return edges, np.clip(np.searchsorted(edges, values, side="right") - 1, 0, PAIR_BINS - 1)


def _pair_cells(folder: Folder, rows: list[dict], x: str, y: str) -> tuple[list, list, list]:
    """The best config mean in each cell of the (x, y) plane (over the other axes), NaN where
    empty: the cells' edges along x and y, and the rows of values."""
    xs, ys = (np.array([r[n] for r in rows], dtype=float) for n in (x, y))
    means = np.array([r[f"{folder.metric}_mean"] for r in rows], dtype=float)
    (x_edges, xi), (y_edges, yi) = _cells(xs, _log_axis(folder, x)), _cells(ys, _log_axis(folder, y))
    z = np.full((len(y_edges) - 1, len(x_edges) - 1), np.inf if folder.minimize else -np.inf)
    (np.minimum if folder.minimize else np.maximum).at(z, (yi, xi), means)
    z[~np.isfinite(z)] = np.nan
    return _json_floats(x_edges), _json_floats(y_edges), [_json_floats(_scaled(r, folder.metric)) for r in z]


def _pairs(folder: Folder) -> dict | None:
    """Pairs of numeric axes: the best config mean in each cell over the other axes (an empty cell
    stays empty, where contours would interpolate a value no config had), one colour scale for
    every pair, configs as dots (their mean in their hover text).

    The cells are images under the subplots (:func:`_cell_image`), not plotly heatmaps: on a log
    axis plotly paints a heatmap's canvas at the plot's size and encodes it as a PNG each time it
    draws, 25-30 ms a pair."""
    pairs = [(a, b) for i, a in enumerate(folder.numeric) for b in folder.numeric[i + 1:]][:MAX_PAIRS]
    if not pairs:
        return None
    metric, columns = folder.metric, min(3, len(pairs))
    dots = f"the best {BEST_DOTS} configs" if len(_ranked(folder)) > MANY_POINTS else "configs"
    layout = _layout(f"{_e(metric)} over pairs of swept axes (best config mean in each cell; dots: {dots})",
                     400 * math.ceil(len(pairs) / columns), showlegend=False)
    data, cells = [], []
    for (x, y), cell in zip(pairs, _grid(len(pairs), columns, gap=0.1)):
        rows = [r for r in _ranked(folder) if x in r and y in r]
        refs = _place(layout, cell, _x_axis(folder, x), _x_axis(folder, y))
        if len(rows) < MIN_PAIR:
            continue
        cells.append((refs, _pair_cells(folder, rows, x, y), (_log_axis(folder, x), _log_axis(folder, y))))
        # beyond MANY_POINTS the dots cover the plane evenly and hide the cells: the best only
        dots = rows[:BEST_DOTS] if len(rows) > MANY_POINTS else rows
        data.append({"type": "scatter", "mode": "markers", "xaxis": refs[0], "yaxis": refs[1],
                     "x": _json_floats([r[x] for r in dots]), "y": _json_floats([r[y] for r in dots]),
                     "marker": {"color": "white", "size": 5, "line": {"color": "black", "width": 0.5}},
                     "text": [f"{_e(folder.config_label(r))}<br>{_e(metric)} mean {_fmt(r[f'{metric}_mean'], metric)}"
                              for r in dots], "hoverinfo": "text"})
    values = np.array([v for _, (_, _, z), _ in cells for row in z for v in row if v is not None], dtype=float)
    if not len(values):
        return None
    low, high = float(values.min()), float(values.max())
    for refs, (gx, gy, z), logs in cells:
        _cell_image(layout, refs, gx, gy, z, logs, (low, high), reverse=not folder.minimize)
    # the colour bar: a trace with no point, its marker on the cells' scale
    data.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None], "xaxis": cells[0][0][0],
                 "yaxis": cells[0][0][1], "hoverinfo": "skip", "showlegend": False,
                 "marker": {"color": [low], "cmin": low, "cmax": high, "colorscale": VIRIDIS,
                            "reversescale": not folder.minimize, "showscale": True,
                            "colorbar": {"title": {"text": _e(_metric_title(metric))}}}})
    return {"data": data, "layout": layout}


# plotly's "Viridis" colour scale, written out: the cells' pixels are coloured with it here
VIRIDIS = [[k / 9, c] for k, c in enumerate(("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
                                             "#35b779", "#6ece58", "#b5de2b", "#fde725"))]
CELL_PIXELS = 200  # pixels of a pairs image along each axis: a cell's edge is off by at most 1/400 of the axis


def _cell_image(layout: dict, refs: tuple[str, str], gx: list, gy: list, z: list, logs: tuple[bool, bool],
                span: tuple[float, float], reverse: bool) -> None:
    """One pair's cells as an image under its subplot, its axes' ranges set to the cells' edges:
    each pixel takes the cell its centre falls in (edges on the axis's scale), coloured on
    :data:`VIRIDIS` over ``span`` as plotly colours a heatmap; an empty cell clear."""
    cols, rows = (_pixel_cells(e, log) for e, log in ((gx, logs[0]), (gy, logs[1])))
    values = np.array([[math.nan if v is None else v for v in row] for row in z], dtype=float)[rows[::-1]][:, cols]
    low, high = span
    share = np.clip((values - low) / (high - low), 0, 1) if high > low else np.full(values.shape, 0.5)
    share = 1 - share if reverse else share
    stops, colours = np.array([t for t, _ in VIRIDIS]), np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)]
                                                                  for _, c in VIRIDIS], dtype=float)
    rgb = [np.rint(np.interp(np.nan_to_num(share), stops, colours[:, i])) for i in range(3)]
    pixels = np.dstack([*rgb, np.where(np.isfinite(values), 255, 0)]).astype(np.uint8)
    _image_under(layout, refs, pixels, (gx, gy), logs)


def _pixel_cells(edges: list, log: bool) -> np.ndarray:
    """The cell each of :data:`CELL_PIXELS` pixels along an axis falls in (by its centre)."""
    at = np.log10(np.asarray(edges, dtype=float)) if log else np.asarray(edges, dtype=float)
    return _bin_index(at[0] + (np.arange(CELL_PIXELS) + 0.5) / CELL_PIXELS * (at[-1] - at[0]), at)


# --- parameter importance -----------------------------------------------------------------------

def _codes(folder: Folder, rows: list[dict], name: str) -> np.ndarray:
    """Each config's group along axis ``name``: its value (a category, or one of a grid's values),
    or its quantile where a numeric axis has more values than groups: deciles (:data:`IMPORTANCE_BINS`),
    fewer where there are under 30 configs, three or more configs a group (8 configs of 8 values,
    one a group, would explain all the variance whatever the axis does)."""
    values = [r.get(name) if name != "case" else r["case"] for r in rows]
    groups = min(IMPORTANCE_BINS, max(2, len(values) // 3))
    if name in folder.numeric and len(distinct(values)) > groups:
        a = np.asarray(values, dtype=float)
        ranks = np.argsort(np.argsort(a, kind="stable"), kind="stable")
        return (ranks * groups // len(a)).astype(int)
    keys = {json.dumps(v, sort_keys=True): i for i, v in enumerate(distinct(values))}
    return np.array([keys[json.dumps(v, sort_keys=True)] for v in values], dtype=int)


def explained(means: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The share of the variance of config means that groups explain (between-group sum of
    squares over the total: eta squared), for each row of ``means`` (resamples x configs)."""
    means = np.atleast_2d(means)
    total = ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    counts = np.bincount(codes)
    used, groups = counts > 0, len(counts)
    cells = (np.arange(len(means))[:, None] * groups + codes[None, :]).ravel()  # (resample, group) as one index
    sums = np.bincount(cells, weights=means.ravel(), minlength=len(means) * groups).reshape(len(means), groups)
    between = (sums[:, used] ** 2 / counts[used]).sum(axis=1) - means.sum(axis=1) ** 2 / means.shape[1]
    return np.where(total > 0, between / np.where(total > 0, total, 1.0), 0.0)


def importance(folder: Folder, resamples: int = BOOTSTRAP) -> list[tuple[str, float, float, float]]:
    """Each swept axis's share of the variance of finished configs' seed-mean metric (eta
    squared of the configs grouped by the axis's values, deciles for a continuous axis), with the
    5th to 95th percentiles of the share over resamples of each config's seeds with replacement
    (fixed generator: the same folder gives the same numbers). Rows: (axis, share, low, high),
    largest first. Seed noise adds spread between groups, so an axis that explains next to
    nothing can have its interval just above its share: read it as "at most this much".

    Why this measure: it is the first-order term of a functional ANOVA, read straight off the
    configs (no surrogate model to fit, so it takes milliseconds on 10,000 configs and each
    bootstrap resample costs one pass); Optuna's fANOVA fits random forests to each resample,
    which is slow and needs Optuna. The shares of axes swept together need not add up to 1:
    what is left is interaction and seed noise. Configs that diverged in any seed are left out;
    after successive halving, every config counts at its value at the first rung
    (``_comparable_seeds``)."""
    rows, seeds = _comparable_seeds(folder)
    keep = [i for i, s in enumerate(seeds) if s and all(math.isfinite(v) for v in s)]
    names = folder.varying + (["case"] if folder.has_case else [])
    if len(keep) < 3 or not names:
        return []
    rows, seeds = [rows[i] for i in keep], [seeds[i] for i in keep]
    width = max(map(len, seeds))
    table = np.array([s + [0.0] * (width - len(s)) for s in seeds])
    n = np.array([len(s) for s in seeds])
    rng = np.random.default_rng(0)
    draws = (rng.random((resamples, len(rows), width)) * n[None, :, None]).astype(int)
    mask = np.arange(width)[None, :] < n[:, None]
    sampled = (np.take_along_axis(table[None], draws, axis=2) * mask).sum(axis=2) / n
    means = table.sum(axis=1) / n
    out = []
    for name in names:
        present = np.array([name == "case" or name in r for r in rows])
        codes = _codes(folder, [r for r, p in zip(rows, present) if p], name)
        share = float(explained(means[present], codes)[0])
        low, high = np.percentile(explained(sampled[:, present], codes), [5, 95])
        out.append((name, share, float(low), float(high)))
    return sorted(out, key=lambda item: -item[1])


def _comparable_seeds(folder: Folder) -> tuple[list[dict], list[list[float]]]:
    """The configs whose metric values compare, and each one's seed values: the finished
    configs' final values; after successive halving, each config's values at the first rung,
    pruned and finished alike (all trained the same epochs there; final values do not compare, a
    pruned config trained fewer). A config of a hyperband bracket that starts later has none."""
    rungs, metric = _rungs(folder), folder.metric
    if not rungs:
        rows = [r for r in folder.rows if finished(r)]
        return rows, [_seed_values(folder, r["config_id"], metric) for r in rows]
    out_rows, out_seeds = [], []
    for row in folder.rows:
        values = [_float(g.get(metric)) for r in folder.trials[row["config_id"]] for g in r.get("rungs") or []
                  if int(g["epoch"]) == rungs[0]]
        if values:
            out_rows.append(row)
            out_seeds.append(values)
    return out_rows, out_seeds


def _importance_fig(folder: Folder) -> dict | None:
    shares = importance(folder)
    if not shares:
        return None
    names, values, lows, highs = zip(*reversed(shares))
    bar = {"type": "bar", "orientation": "h", "y": [_e(n) for n in names], "x": list(values),
           "marker": {"color": COLORS[0]},
           "error_x": {"type": "data", "symmetric": False, "array": [max(h - v, 0.0) for v, h in zip(values, highs)],
                       "arrayminus": [max(v - lo, 0.0) for v, lo in zip(values, lows)]}}
    rungs = _rungs(folder)
    at = (f"<br>successive halving: every config's mean at epoch {rungs[0]}, the first rung, pruned ones "
          f"included (final values do not compare: pruned configs trained fewer epochs)" if rungs else "")
    return {"data": [bar], "layout": _layout("share of the variance of config means explained by each axis "
                                             f"(bars: 90% seed-bootstrap interval){at}", 140 + 40 * len(names),
                                             xaxis={"title": {"text": "variance explained (eta squared)"},
                                                    "range": [0, 1]},
                                             margin={"l": 140, "r": 30, "t": 80 if rungs else 60, "b": 50})}


# --- best so far, curves and rungs --------------------------------------------------------------

def _member_epochs(folder: Folder, config_id: str) -> float:
    """Epochs trained by a config's members: each one's ``trained_epochs`` (successive halving),
    else its case's ``train.epochs`` (a member stopped early still rides in its compiled chunk)."""
    total = 0.0
    for record in folder.trials[config_id]:
        epochs = record.get("trained_epochs")
        if epochs is None:
            case = (folder.spec.get("cases") or {}).get(record["case"]) or {}
            epochs = (case.get("train") or {}).get("epochs", folder.spec["train"]["epochs"])
        total += float(epochs)
    return total


def _best_so_far_fig(folder: Folder) -> dict | None:
    order = folder.in_journal_order()
    if len(order) < 2:
        return None
    metric = folder.metric
    best = _scaled(folder.best_so_far(), metric)
    means = _scaled([r[f"{metric}_mean"] for r in order], metric)
    compute = np.cumsum([_member_epochs(folder, r["config_id"]) for r in order])
    count = np.arange(1, len(order) + 1)
    points = "grey cells: how many configs" if len(order) > MANY_POINTS else "dots: configs"
    layout = _layout(f"best {_e(metric)} so far (config mean over seeds; {'lower' if folder.minimize else 'higher'} "
                     f"is better; {points})", 400, legend={"orientation": "h", "y": -0.2})
    data = []
    for k, (x, title, cell) in enumerate(zip((count, compute), ("configs evaluated (journal order)",
                                                                 "compute: member-epochs trained"), _grid(2, 2))):
        y_axis = _metric_axis(means, metric)
        refs = _place(layout, cell, {"title": {"text": title}}, y_axis)
        if len(order) > MANY_POINTS:  # a point a config is a smear there, and slow to draw: counts in cells
            _density(np.asarray(x, dtype=float), means, (False, y_axis["type"] == "log"), refs, layout)
        else:
            data += _config_points(x, means, np.array([finished(r) for r in order]), refs, k == 0)
        corners_x, corners_y = _steps(x, best)
        data.append({"type": "scatter", "mode": "lines", "name": "best so far", "showlegend": k == 0,
                     "x": corners_x, "y": corners_y, "line": {"shape": "hv", "color": COLORS[0], "width": 2},
                     "xaxis": refs[0], "yaxis": refs[1]})
    return {"data": data, "layout": layout}


def _config_points(x, means, done: np.ndarray, refs: tuple[str, str], legend: bool) -> list[dict]:
    """Each config's mean as a grey dot; the ones successive halving pruned as open circles."""
    data = [{"type": "scatter", "mode": "markers", "name": "config", "showlegend": legend, "x": _json_floats(x[done]),
             "y": _json_floats(means[done]), "xaxis": refs[0], "yaxis": refs[1],
             "marker": {"color": "grey", "size": 5, "opacity": 0.6}}]
    if not done.all():
        data.append({"type": "scatter", "mode": "markers", "name": "pruned (its rung's value)", "showlegend": legend,
                     "x": _json_floats(x[~done]), "y": _json_floats(means[~done]), "xaxis": refs[0], "yaxis": refs[1],
                     "marker": {"color": PRUNED, "size": 5, "symbol": "circle-open"}})
    return data


def _curve_rows(folder: Folder) -> list[dict]:
    """The configs whose curves are drawn: the shown ones (the best, or each case's best); for
    successive halving also the pruned, up to :data:`MAX_RACE` in all."""
    if not any("rungs" in r for r in folder.records):
        return folder.shown()
    ended = [r for r in folder.rows if finished(r)]
    return (ended + [r for r in folder.rows if not finished(r)])[:MAX_RACE]


def _band(x, curves: np.ndarray, color: str, group: str) -> list[dict]:
    """A min-max band over seeds: its upper edge, then its lower edge filled up to it."""
    with warnings.catch_warnings():  # an evaluation no seed reached (after pruning) is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
    edge = {"type": "scatter", "mode": "lines", "line": {"width": 0, "color": color}, "showlegend": False,
            "legendgroup": group, "hoverinfo": "skip", "x": x}
    return [{**edge, "y": _json_floats(high)}, {**edge, "y": _json_floats(low), "fill": "tonexty",
                                                 "fillcolor": _rgba(color, 0.18)}]


def _steps(x, y) -> tuple[list, list]:
    """A best-so-far staircase (drawn with ``shape: "hv"``) by its corners only: the first
    point, each point where the value changes, the last point; the same line, a few dozen points
    instead of one a config."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(y) < 3:
        return _json_floats(x), _json_floats(y)
    keep = np.concatenate([[True], y[1:-1] != y[:-2], [True]])  # NaN != NaN: kept
    return _json_floats(x[keep]), _json_floats(y[keep])


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _curves_fig(folder: Folder) -> dict | None:
    metric, data = folder.metric, []
    for k, row in enumerate(_curve_rows(folder)):
        try:
            curves = folder.curves(row["config_id"], [metric])
        except (KeyError, InputError):  # no curve of the metric, or a damaged file: `plot` names it
            curves = None
        if curves is None:
            continue
        x = [int(e) for e in curves["epochs"]]
        values = _scaled(curves[metric], metric)
        done = finished(row)
        color = COLORS[k % len(COLORS)] if done else PRUNED
        label = _e(f"{row['rank']}: {folder.config_label(row)}" + ("" if done else " (pruned)"))
        with warnings.catch_warnings():  # an evaluation no seed reached (after pruning) is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
        data += _band(x, values, color, label) if values.shape[0] > 1 else []
        # markers too: a config pruned at the first rung has one evaluation, no line to draw
        data.append({"type": "scatter", "mode": "lines+markers", "name": label, "legendgroup": label, "x": x,
                     "y": _json_floats(mean), "line": {"color": color, "width": 2 if done else 1},
                     "marker": {"size": 4 if done else 6}})
    if not data:
        return None
    layout = _layout(f"learning curves: {_e(metric)}, mean over seeds with the min-max band"
                     + ("; pruned configs in grey, dotted lines at the rungs" if _rungs(folder) else ""), 460,
                     xaxis={"title": {"text": "epoch"}},
                     yaxis=_metric_axis([v for t in data for v in t["y"] if v is not None], metric))
    layout["shapes"] = [{"type": "line", "xref": "x", "yref": "paper", "x0": e, "x1": e, "y0": 0, "y1": 1,
                         "line": {"dash": "dot", "color": "black", "width": 1}} for e in _rungs(folder)]
    return {"data": data, "layout": layout}


def _rungs(folder: Folder) -> list[int]:
    return sorted({int(rung["epoch"]) for r in folder.records for rung in r.get("rungs") or []})


def _members_per_rung(folder: Folder) -> dict | None:
    """Successive halving: how many members (config x seed) reached each rung, per round or bracket."""
    rungs = _rungs(folder)
    if not rungs:
        return None
    rounds = sorted({r["round"] for r in folder.records})
    unit = "bracket" if folder.search["method"] == "hyperband" else "round"
    data = []
    for k, rnd in enumerate(rounds):
        reached = [sum(any(int(g["epoch"]) == e for g in r.get("rungs") or []) for r in folder.records
                       if r["round"] == rnd) for e in rungs]
        data.append({"type": "bar", "name": f"{unit} {rnd + 1}", "x": [str(e) for e in rungs], "y": reached,
                     "marker": {"color": COLORS[k % len(COLORS)]}})
    return {"data": data, "layout": _layout("members (config x seed) that reached each rung", 340, barmode="stack",
                                            showlegend=len(rounds) > 1,
                                            xaxis={"title": {"text": "rung (epoch)"}, "type": "category"},
                                            yaxis={"title": {"text": "members"}})}


# --- findings and manifest ---------------------------------------------------------------------

def _findings_html(folder: Folder) -> str:
    lines = finding_lines(folder)
    if not lines:
        return '<p class="note">Nothing to report: no diverged runs, no best value on the edge of the space, ' \
               "and jaxreg.diagnose finds nothing in the shown configs' curves.</p>"
    return "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>"


def _manifest_html(folder: Folder) -> str:
    spec = folder.spec
    facts = [("name", spec.get("name")), ("description", spec.get("description")), ("folder", folder.path),
             ("search", folder.method), ("metric", f"{folder.metric} ({folder.search['goal']})"),
             ("configs", len(folder.rows)), ("trials", len(folder.records)),
             ("run seconds (compile and train)", f"{folder.seconds():.1f}")]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    runs = "".join(_run_row(run) for run in folder.runs if isinstance(run, dict))
    spec_text = _e(json.dumps(spec, indent=2, sort_keys=True, default=str))
    return (f'<table class="facts">{rows}</table>'
            f"<h4>Runs</h4><table class=\"facts\"><tr><th>started</th><th>finished</th><th>seconds</th>"
            f"<th>compile seconds</th><th>trials</th><th>chunk</th><th>devices</th><th>versions</th></tr>{runs}</table>"
            f'<p class="note">A run\'s seconds include compiling; the manifest records compile time apart only '
            f"where a run measured it.</p>"
            f"<details><summary>the resolved spec</summary><pre>{spec_text}</pre></details>")


def _run_row(run: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted((run.get("versions") or {}).items()))
    cells = [run.get("started"), run.get("finished"), run.get("seconds"), run.get("compile_seconds", "-"),
             run.get("trials_trained"), run.get("chunk_size"), ", ".join(map(str, run.get("devices") or [])), versions]
    return "<tr>" + "".join(f"<td>{_e('-' if c is None else c)}</td>" for c in cells) + "</tr>"


# --- the page's sections -----------------------------------------------------------------------

def _panel(pid: str, title: str, figure: dict | None, figures: dict, empty: str) -> str:
    if figure is None:
        return f'<div class="panel"><h3>{title}</h3><p class="note">{empty}</p></div>'
    figures[pid] = figure
    # its height held before it is drawn: the figures in the first screen are known at once,
    # and the page does not jump as the others are drawn
    height = int(figure["layout"].get("height", 450))
    return f'<div class="panel"><h3>{title}</h3><div class="plot" id="{pid}" style="min-height:{height}px"></div></div>'


def _folder_section(folder: Folder, sid: str, figures: dict) -> str:
    halving = bool(_rungs(folder))
    panels = [
        f'<div class="panel"><h3>Configs</h3>{_table_html(folder)}</div>',
        _panel(f"{sid}-parcoords", "Parallel coordinates", _parcoords(folder), figures, "no finished config"),
        _panel(f"{sid}-metric", "Metric against each swept value", _metric_vs(folder), figures,
               "no numeric swept axis"),
        _panel(f"{sid}-pairs", "Pairs of swept axes", _pairs(folder), figures,
               "fewer than two numeric swept axes, or fewer than 4 finished configs"),
        _panel(f"{sid}-importance", "Parameter importance", _importance_fig(folder), figures,
               "fewer than 3 finished configs with every seed finite, or nothing swept"),
        _panel(f"{sid}-best", "Best so far", _best_so_far_fig(folder), figures, "fewer than 2 configs"),
        _panel(f"{sid}-curves", "Learning curves", _curves_fig(folder), figures, "no curves file could be read"),
    ]
    if halving:
        panels.append(_panel(f"{sid}-rungs", "Members per rung", _members_per_rung(folder), figures, ""))
    panels += [f'<div class="panel"><h3>Findings</h3>{_findings_html(folder)}</div>',
               f'<div class="panel"><h3>Manifest</h3>{_manifest_html(folder)}</div>']
    title = _e(folder.label)
    return (f'<section class="folder" id="{sid}"><h2>{title} <small>{_e(folder.method)}, {len(folder.rows)} configs, '
            f"{len(folder.records)} trials</small></h2>{''.join(panels)}</section>\n")


def _edf_fig(folders: list[Folder]) -> dict:
    """The empirical distribution of each search's finished config means."""
    metric, data = folders[0].metric, []
    for k, folder in enumerate(folders):
        means = np.sort(_scaled([r[f"{metric}_mean"] for r in _ranked(folder)], metric))
        share = np.arange(1, len(means) + 1) / max(len(means), 1)
        data.append({"type": "scatter", "mode": "lines", "name": _e(folder.label), "x": _json_floats(means),
                     "y": _json_floats(share), "line": {"shape": "hv", "color": COLORS[k % len(COLORS)], "width": 2}})
    side = "left" if folders[0].minimize else "right"
    return {"data": data, "layout": _layout(f"empirical distribution of config means ({side} is better)", 420,
                                            xaxis=_metric_axis([v for t in data for v in t["x"] if v is not None], metric),
                                            yaxis={"title": {"text": "share of configs at or below"}, "range": [0, 1.02]})}


def _compare_best_fig(folders: list[Folder]) -> dict:
    metric, data = folders[0].metric, []
    for k, folder in enumerate(folders):
        best = _scaled(folder.best_so_far(), metric)
        x, y = _steps(np.arange(1, len(best) + 1), best)
        data.append({"type": "scatter", "mode": "lines", "name": _e(folder.label), "x": x, "y": y,
                     "line": {"shape": "hv", "color": COLORS[k % len(COLORS)], "width": 2}})
    return {"data": data, "layout": _layout(f"best {_e(metric)} so far", 420,
                                            xaxis={"title": {"text": "configs evaluated (journal order)"}},
                                            yaxis=_metric_axis([v for t in data for v in t["y"] if v is not None], metric))}


def _comparison_section(folders: list[Folder], figures: dict) -> str:
    metric = folders[0].metric
    rows = []
    for i, folder in enumerate(folders):
        ranked = _ranked(folder)
        mean, se, _ = _stats(folder, metric)[ranked[0]["config_id"]] if ranked else (math.nan,) * 3
        rows.append(f'<tr><td><a href="#f{i}">{_e(folder.label)}</a></td><td>{_e(folder.method)}</td>'
                    f"<td>{len(folder.rows)}</td><td>{len(folder.records)}</td><td>{_fmt(mean, metric)} &plusmn; "
                    f"{_fmt(se, metric)}</td><td>{folder.seconds():.1f}</td></tr>")
    table = (f'<table class="facts"><tr><th>search</th><th>method</th><th>configs</th><th>trials</th>'
             f"<th>best {_e(_metric_title(metric))} (mean &plusmn; SE)</th><th>seconds</th></tr>{''.join(rows)}</table>")
    return (f'<section class="folder" id="comparison"><h2>{len(folders)} searches compared</h2>'
            f'<div class="panel"><h3>Best configs</h3>{table}</div>'
            + _panel("cmp-edf", "Distribution of config means", _edf_fig(folders), figures, "")
            + _panel("cmp-best", "Best so far", _compare_best_fig(folders), figures, "") + "</section>\n")


# The table's rows arrive parsed but inert in a <template> and join the table in one step, so the
# browser lays the table out once: parsed in place, its 200 rows were laid out at each pause of the
# parser (each layout of the whole table, 0.1 s on a 10,000-config page). ``contain`` keeps the
# figures drawn later from repainting it.
ROWS_IN = ("(function (s) { var t = s.previousElementSibling.querySelector('template');"
           " t.parentNode.appendChild(t.content); t.remove(); })(document.currentScript);")

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0 auto;max-width:1400px;padding:0 16px 40px;color:#222}
h1{font-size:22px;margin:18px 0 6px}h2{font-size:19px;border-bottom:2px solid #1f77b4;padding-bottom:4px}
h2 small{font-weight:normal;color:#666;font-size:13px}h3{font-size:15px;margin:4px 0 6px}
nav a{margin-right:14px}.panel{border:1px solid #ddd;border-radius:6px;padding:10px 12px;margin:12px 0;background:#fff}
.note{color:#555;font-size:13px;margin:4px 0}.scroll{max-height:460px;overflow:auto;contain:layout paint}
table.configs{border-collapse:collapse;font-size:12px;width:100%}
table.configs th{position:sticky;top:0;background:#eef3f8;cursor:pointer;text-align:left;padding:4px 6px;white-space:nowrap}
table.configs th.asc::after{content:" \\25B2"}table.configs th.desc::after{content:" \\25BC"}
table.configs td{padding:3px 6px;border-top:1px solid #eee;white-space:nowrap}
tbody.pruned td{color:#999}tr.seed td{background:#f7f7f7;color:#444;font-size:11px;border-top:none}
button.seeds{font-size:11px;width:20px;padding:0;cursor:pointer}
table.facts{border-collapse:collapse;font-size:13px}table.facts th,table.facts td{text-align:left;padding:3px 8px;
border-bottom:1px solid #eee;vertical-align:top}pre{font-size:12px;background:#f6f6f6;padding:8px;overflow:auto;max-height:400px}
.plot{width:100%}.plot image{image-rendering:pixelated}.error{color:#b00}
"""

# Draws the figures in the first screen, then the others one a task (a scroll or a click is
# answered between two), a figure scrolled into view first. Marks the body (ms since the page
# started): data-first-screen once the figures in the first screen are drawn, data-rendered once
# all are; data-error with the first failure (a browser test and the benchmark read them). Sorting
# and unfolding the table are delegated clicks; a config's seeds travel with it in its <tbody>.
SCRIPT = """
(function () {
  var figures = JSON.parse(document.getElementById('jaxreg-figures').textContent);
  var queue = Object.keys(figures).sort(), left = queue.length, started = {};
  function mark(name) { document.body.setAttribute(name, performance.now().toFixed(0)); }
  function inView(id) {
    var box = document.getElementById(id).getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }
  var first = queue.filter(inView), firstLeft = first.length;
  queue = first.concat(queue.filter(function (id) { return first.indexOf(id) < 0; }));
  function drawn(id) {
    if (first.indexOf(id) >= 0 && --firstLeft === 0) { mark('data-first-screen'); }
    if (--left === 0) { mark('data-rendered'); }
  }
  function draw(id) {
    var div = document.getElementById(id), figure = figures[id];
    started[id] = true;
    return Plotly.newPlot(div, figure.data, figure.layout, {responsive: true, displaylogo: false})
      .catch(function (error) {
        div.innerHTML = '<p class="error"></p>';
        div.firstChild.textContent = 'could not draw this figure: ' + error;
        if (!document.body.hasAttribute('data-error')) { document.body.setAttribute('data-error', String(error)); }
      }).then(function () { drawn(id); });
  }
  function next() {
    queue = queue.filter(function (id) { return !started[id]; });
    if (!queue.length) { return; }
    draw(queue[0]).then(function () { setTimeout(next, 0); });
  }
  if ('IntersectionObserver' in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {  // scrolled into view: drawn next
        var id = entry.target.id;
        if (entry.isIntersecting && !started[id]) { queue = [id].concat(queue.filter(function (q) { return q !== id; })); }
      });
    });
    Object.keys(figures).forEach(function (id) { seen.observe(document.getElementById(id)); });
  }
  if (!first.length) { mark('data-first-screen'); }
  next();
  window.addEventListener('error', function (event) { document.body.setAttribute('data-error', String(event.message)); });
  function key(body, column) {
    var text = body.rows[0].cells[column].getAttribute('data-v');
    if (text === null || text === '') { return null; }  // NaN: last either way
    var number = Number(text);
    return isNaN(number) ? text : number;
  }
  function sort(th) {
    var table = th.closest('table'), column = th.cellIndex, up = !th.classList.contains('asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(up ? 'asc' : 'desc');
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (a, b) {
      var x = key(a, column), y = key(b, column);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return up ? order : -order;
    });
    bodies.forEach(function (body) { table.appendChild(body); });
  }
  document.addEventListener('click', function (event) {
    var th = event.target.closest('th[data-sort]');
    if (th) { sort(th); return; }
    var button = event.target.closest('button.seeds');
    if (!button) { return; }
    var open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    button.textContent = open ? '-' : '+';
    button.closest('tbody').querySelectorAll('tr.seed').forEach(function (row) { row.hidden = !open; });
  });
})();
"""
