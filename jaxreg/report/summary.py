"""What a results folder's journal says: per-config statistics, and their CSV and text forms.

``summarize(records, search)`` turns the journal's trials into one row per config, best first;
``write_summary`` writes them as ``summary.csv``, ``format_table`` as the aligned table that
``jaxreg run`` and ``jaxreg show`` print. ``write_csv`` is the one CSV writer of the tooling
(``summary.csv``, ``curves.csv``, a comparison's ``comparison.csv``): columns in order of first
appearance, NaN as an empty cell, floats by ``repr`` (they read back bit for bit).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from jaxreg.names import CSV_SOURCES, REGRESSION_METRICS, metric_names  # CSV_SOURCES: re-exported by jaxreg.report
from jaxreg.report.files import SUMMARY, atomic_write
from jaxreg.report.journal import load_curves
from jaxreg.report.manifest import record_files

REPORTED = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
TEST = ("test_loss", "test_accuracy")
# Regression's (REGRESSION_METRICS), in rows only where the journal has them.
REPORTED_REGRESSION = ("val_rmse", "val_mae", "val_r2", "train_rmse", "train_mae", "train_r2")
TEST_REGRESSION = ("test_rmse", "test_mae", "test_r2")


def write_curves_csv(out: str | Path, records: list[dict], columns: dict | None = None) -> Path:
    """Writes every trial's per-evaluation curves as one long CSV, ``DIR/curves.csv``.

    Args:
        out: the results folder.
        records: the journal's records (rows follow their order, then the evaluations).
        columns: ``{column name: source}``; a source is one of ``CSV_SOURCES`` (``epoch``: epochs
            completed, ``epoch_index``: the same minus one, a loop's ``j``) or a metric name.
            Default: every source and metric under its own name. Evaluations after a member
            stopped or diverged (all metrics NaN) are left out.
    """
    names = metric_names(any(REGRESSION_METRICS[0] in r["metrics"] for r in records))
    columns = columns or {name: name for name in ("case", "config_id", "seed", "round", "epoch", *names)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for record in records:
        curves = load_curves(out, record["config_id"], record["seed"])
        epochs = curves["epochs"]
        for j, epoch in enumerate(epochs):
            values = {name: float(curves[f"curve/{name}"][j]) for name in names if f"curve/{name}" in curves}
            if all(math.isnan(v) for v in values.values()):
                continue
            fields = {"case": record["case"], "config_id": record["config_id"], "seed": record["seed"],
                      "round": record["round"], "epoch": int(epoch), "epoch_index": int(epoch) - 1, **values}
            writer.writerow([csv_value(fields[source]) for source in columns.values()])
    path = Path(out) / "curves.csv"
    record_files(out, [path.name])
    atomic_write(path, buffer.getvalue())
    return path


def as_float(value) -> float:
    """A journal value as a float: ``null`` is NaN; ``float`` reads the strings "inf" and "-inf"."""
    return math.nan if value is None else float(value)


def is_number(value) -> bool:
    """A finite int or float (not a bool): a value that can sit on a numeric axis."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finished(row: dict) -> bool:
    """Whether a summary row is a config trained to the end (or stopped by early stopping), whose
    metrics compare with every other finished config's; a config successive halving pruned at a
    rung has metrics from that rung's epoch, which do not."""
    return not row.get("pruned")


def best_row(rows: list[dict]) -> dict:
    """The best config of :func:`summarize`'s rows: the one definition of "best" that the table,
    ``best``, the plots and ``compare`` all read. Finished configs rank before pruned ones, so it
    is the first row (a pruned config is the best only where no config finished)."""
    return rows[0]


def best_so_far(rows: list[dict], metric: str, minimize: bool) -> np.ndarray:
    """The running best config mean of ``metric`` over ``rows`` (summary rows in the order the
    search evaluated them), as :func:`best_row` chooses: NaN (a diverged config) is skipped, and
    so is a pruned config (its value is from an earlier rung, not comparable). Its last value is
    ``best_row``'s mean whenever some config finished."""
    values = np.array([r[f"{metric}_mean"] if finished(r) else math.nan for r in rows], dtype=float)
    if not len(values):
        return values
    return (np.fmin if minimize else np.fmax).accumulate(values)


def rank_key(value: float, minimize: bool) -> tuple:
    """Sort key of a metric value, best first; NaN (a diverged config) last."""
    return (math.isnan(value), 0.0 if math.isnan(value) else (value if minimize else -value))


CHANCE_MARGIN = 0.01  # a train accuracy this close to the majority class's share learned nothing


def chance_rate(labels, loss: str) -> float | None:
    """The training accuracy of always predicting the most frequent class (None for ``mse``)."""
    if loss == "mse" or len(labels) == 0:
        return None
    return float(np.bincount(np.asarray(labels, np.int64).ravel()).max() / np.size(labels))


def at_chance(record: dict, rate: float | None) -> bool:
    """A finished trial whose training accuracy is within :data:`CHANCE_MARGIN` of ``rate`` (the
    most frequent class's share): finite, yet it learned nothing (a learning rate far too
    large or too small, too few epochs, a penalty far too strong)."""
    accuracy = record["metrics"].get("train_accuracy")
    return (rate is not None and record["status"] != "diverged" and isinstance(accuracy, (int, float))
            and accuracy <= rate + CHANCE_MARGIN)


def summarize(records: list[dict], search: dict, chance: dict | None = None) -> list[dict]:
    """One row per config, best first by the mean of ``search.metric`` over its seeds.

    Each row: ``rank``, ``config_id``, ``case``, ``round``, the swept values, ``seeds``,
    ``diverged`` (count), ``at_chance`` (count, when ``chance`` is given: the manifest's
    ``chance``, ``{case or "": rate}``, see :func:`at_chance`), mean, std (ddof 1) and standard error of the metric, mean and std of
    the other validation/train metrics, the mean best and stopped epochs, and the test metrics
    of the selected configs only (the best of each case), so that the test set plays no part
    in choosing them. A regression (the journal has ``val_rmse``) adds RMSE, MAE and R^2 the
    same way. Successive halving adds ``pruned`` (count), ``pruned_epoch``, ``status``
    (``finished`` or ``pruned``) and ``rung`` (the last rung's epoch reached: where the metrics
    are from); pruned configs rank after every finished one (:func:`best_row`).
    """
    metric, minimize = search["metric"], search["goal"] == "minimize"
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["config_id"], []).append(record)
    rows = []
    for cid, group in groups.items():
        first = group[0]
        row = {"config_id": cid, "case": first["case"], "round": min(r["round"] for r in group)}
        for name, value in first["point"].items():
            row[name] = value
        row["seeds"] = len(group)
        row["diverged"] = sum(r["status"] == "diverged" for r in group)
        if chance is not None:
            row["at_chance"] = sum(at_chance(r, chance.get(r["case"] or "")) for r in group)
        regression = REPORTED_REGRESSION + TEST_REGRESSION if "val_rmse" in first["metrics"] else ()
        for name in (metric, *[m for m in REPORTED if m != metric], *TEST, *regression):
            values = np.array([as_float(r["metrics"].get(name)) for r in group])
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            if name == metric:
                row[f"{name}_sem"] = row[f"{name}_std"] / math.sqrt(len(values))
        row["best_epoch_mean"] = float(np.mean([r["best_epoch"] for r in group]))
        row["stopped"] = sum(r["stopped_epoch"] > 0 for r in group)
        if "pruned_epoch" in first:  # successive halving: trials it stopped at a rung
            row["pruned"] = sum(r.get("pruned_epoch") is not None for r in group)
            row["pruned_epoch"] = max((r["pruned_epoch"] for r in group if r.get("pruned_epoch") is not None),
                                      default=None)
            # status: whether the metrics compare with other configs'; rung: the last rung's epoch
            # it reached (where a pruned config's metrics are from).
            row["status"] = "pruned" if row["pruned"] else "finished"
            row["rung"] = max((r["rungs"][-1]["epoch"] for r in group if r.get("rungs")), default=None)
        rows.append(row)
    # A config pruned by successive halving ranks after every config trained to the end: its
    # metrics are from fewer epochs, and it was worse than others at the same epoch.
    rows.sort(key=lambda r: (not finished(r), *rank_key(r[f"{metric}_mean"], minimize)))
    seen_cases = set()
    for i, row in enumerate(rows, 1):
        row["rank"] = i
        row["selected"] = (row["case"] not in seen_cases and not math.isnan(row[f"{metric}_mean"])
                           and finished(row))
        if row["selected"]:
            seen_cases.add(row["case"])
        else:
            for name in TEST + TEST_REGRESSION:
                if f"{name}_mean" in row:
                    row[f"{name}_mean"] = row[f"{name}_std"] = math.nan
    return [{"rank": r.pop("rank"), **r} for r in rows]


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """Rows as a CSV, columns in order of first appearance, written atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: csv_value(row.get(c)) for c in columns} for row in rows)
    record_files(Path(path).parent, [Path(path).name])  # jaxreg's, in a results folder's record of its files
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


def write_summary(out: str | Path, rows: list[dict]) -> Path:
    """The rows of :func:`summarize` as ``DIR/summary.csv``."""
    return write_csv(Path(out) / SUMMARY, rows)


def csv_value(value):
    """One CSV cell: empty for None and NaN, floats by ``repr``, lists and dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _fmt(value, digits: int) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v, 2) if isinstance(v, float) else str(v) for v in value) + "]"
    return "-" if value is None else str(value)


def _digits(values: list, least: int = 3) -> int:
    """Significant digits that print distinct values distinctly (0.00188 and 0.00176, not 0.002 twice)."""
    distinct = {json.dumps(v) for v in values if v is not None}
    for digits in range(least, 18):
        if len({_fmt(v, digits) for v in values if v is not None}) == len(distinct):
            return digits
    return 17


_NOT_POINTS = ("rank", "config_id", "case", "round", "seeds", "diverged", "at_chance", "best_epoch_mean", "stopped",
               "selected", "pruned", "pruned_epoch", "status", "rung")


def format_table(rows: list[dict], search: dict, limit: int | None = None) -> str:
    """The summary as an aligned text table: mean +- std over seeds, best first.

    Swept values print with as many significant digits as keep distinct values distinct. When
    no config has an accuracy (regression targets), the loss columns take the accuracy columns'
    places. A note under the table says what ``best_ep`` is.
    """
    if not rows:
        return "(no finished trials)"
    metric = search["metric"]
    point_names = []
    for row in rows:
        for key in row:
            if key not in _NOT_POINTS and not key.endswith(("_mean", "_std", "_sem")) and key not in point_names:
                point_names.append(key)
    shown = rows if limit is None else rows[:limit]
    digits = {name: _digits([r.get(name) for r in rows]) for name in point_names}
    shape = (any(r["case"] is not None for r in rows), any(r["round"] > 0 for r in rows), point_names, digits,
             metric, _metric_columns(rows, metric))
    table = [_table_line(row, *shape) for row in shown]
    columns = list(table[0])
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in table)) for c in columns}
    text = lambda r: "  ".join(r.get(c, "").ljust(widths[c]) for c in columns).rstrip()
    body = list(map(text, table))
    first_pruned = next((i for i, row in enumerate(shown) if not finished(row)), None)
    if first_pruned is not None:  # pruned configs apart: their metrics are from an earlier epoch
        body.insert(first_pruned, f"-- pruned by successive halving: {metric} at the epoch each was pruned, "
                                  f"not comparable with the finished configs above")
    lines = [text({c: c for c in columns}), text({c: "-" * widths[c] for c in columns}), *body]
    if limit is not None and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more configs in {SUMMARY}")
    return "\n".join(lines + _table_notes(rows))


def _metric_columns(rows: list[dict], metric: str) -> list[tuple[str, str]]:
    """(title, metric) of the table's columns after the search metric's."""
    if any(math.isfinite(r[f"{name}_mean"]) for r in rows for name in ("val_accuracy", "train_accuracy")):
        other = "val_accuracy" if metric != "val_accuracy" else "val_loss"
        return [(other + (" %" if other.endswith("accuracy") else ""), other),
                ("train_acc %", "train_accuracy"), ("test_acc %", "test_accuracy")]
    other = "train_loss" if metric != "train_loss" else "val_loss"  # regression: no accuracy to show
    columns = [(other, other), ("test_loss", "test_loss")]
    if any("val_rmse_mean" in r for r in rows):
        columns += [(name, name) for name in ("val_rmse", "val_r2", "test_rmse", "test_r2")]
    return columns


def _mean_std(row: dict, name: str) -> str:
    mean, std = row[f"{name}_mean"], row[f"{name}_std"]
    if math.isnan(mean):
        return "-"
    if name.endswith("accuracy"):
        return f"{100 * mean:.2f} +- {100 * std:.2f}"
    return f"{mean:.4f} +- {std:.4f}"


def _table_line(row: dict, has_case: bool, has_rounds: bool, point_names: list, digits: dict, metric: str,
                columns: list) -> dict:
    """One config's cells, by column title."""
    line = {"rank": str(row["rank"])}
    if has_case:
        line["case"] = str(row["case"])
    if has_rounds:
        line["round"] = str(row["round"] + 1)
    for name in point_names:
        line[name] = _fmt(row.get(name), digits[name])
    line[f"{metric}" + (" %" if metric.endswith("accuracy") else "")] = _mean_std(row, metric)
    for title, name in columns:
        line[title] = _mean_std(row, name)
    line["best_ep"] = f"{row['best_epoch_mean']:.0f}"
    flags = [f"{row['diverged']} diverged"] if row["diverged"] else []
    flags += [f"{row['stopped']} stopped early"] if row.get("stopped") else []
    flags += [f"{row['at_chance']} at chance"] if row.get("at_chance") else []
    line["seeds"] = str(row["seeds"]) + (f" ({', '.join(flags)})" if flags else "")
    if "status" in row:  # successive halving: where each config's metrics are from
        line["status"] = (f"pruned at epoch {row['pruned_epoch']}" if not finished(row)
                          else f"finished (epoch {row['rung']})")
    return line


def _table_notes(rows: list[dict]) -> list[str]:
    lines = ["best_ep: mean epoch of the best monitored value (train.monitor). The metrics are those of the "
             "returned params: from that epoch where early stopping fired or restore_best is on, else from "
             "the last epoch."]
    flagged = sum(bool(r.get("at_chance")) for r in rows)
    if flagged:
        lines.append(f"{flagged} config{'s' * (flagged > 1)} with trials at chance: their train accuracy is within "
                     f"{100 * CHANCE_MARGIN:g} point of always predicting the most frequent class, though finite "
                     f"(a learning rate far too large or too small, too few epochs, or a penalty far too strong?)")
    return lines
