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

from jaxreg.errors import InputError
from jaxreg.names import CSV_SOURCES, MEASURES, REGRESSION_METRICS, metric_names, result_metrics  # CSV_SOURCES: re-exported by jaxreg.report
from jaxreg.report.files import SUMMARY, atomic_write
from jaxreg.report.journal import load_curves
from jaxreg.report.manifest import record_files
from jaxreg.report.stats import (REGULARIZATION, expected_best, mean_se, measure_taus, one_se_choice, paired_bootstrap,
                                 regularization_key)

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
    names = result_metrics({name: None for r in records for name in r["metrics"]})
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
    rows, alike = [], {}
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
        names = tuple(dict.fromkeys((metric, *REPORTED, *TEST, *regression, *own_metrics(first["metrics"]))))
        for name in names:  # the columns' places; _fill_seed_stats writes their values
            row[f"{name}_mean"] = row[f"{name}_std"] = None
            if name == metric:
                row[f"{name}_sem"] = None
        alike.setdefault((len(group), names), []).append((row, group))
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
    for (n, names), jobs in alike.items():
        _fill_seed_stats(jobs, n, names, metric)
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
            for name in (*TEST, *TEST_REGRESSION, *own_metrics(row_metrics(row))):
                if name.startswith("test_") and f"{name}_mean" in row:
                    row[f"{name}_mean"] = row[f"{name}_std"] = math.nan
    return [{"rank": r.pop("rank"), **r} for r in rows]


def _fill_seed_stats(jobs: list[tuple[dict, list[dict]]], n: int, names: tuple[str, ...], metric: str) -> None:
    """The mean, std (ddof 1) and, for ``metric``, the standard error over seeds of each of
    ``names``, into each ``(row, group)`` of ``jobs`` (configs of ``n`` seeds each).

    One NumPy reduction over all configs alike instead of one per config and metric (10,000
    configs: 8 s -> well under 1 s). Seeds are the last, contiguous axis, which NumPy reduces
    one row at a time exactly as it reduces a 1-D array: the same bits as
    :func:`jaxreg.report.stats.mean_se` of each config's values. One seed: std and SE 0.0, as
    ``summary.csv`` has always written them (the statistics say n/a)."""
    values = np.array([[[as_float(r["metrics"].get(name)) for r in group] for name in names] for _, group in jobs])
    means = values.mean(axis=2).tolist()
    stds = values.std(axis=2, ddof=1).tolist() if n > 1 else [[0.0] * len(names)] * len(jobs)
    root = math.sqrt(n)
    for (row, _), mean, std in zip(jobs, means, stds):
        for name, m, s in zip(names, mean, std):
            row[f"{name}_mean"], row[f"{name}_std"] = m, s
            if name == metric:
                row[f"{name}_sem"] = s / root if n > 1 else 0.0


def own_metrics(metrics) -> tuple[str, ...]:
    """The own metrics (``train.extra_metrics``) among a journal line's ``metrics``."""
    return tuple(name for name in result_metrics(metrics) if name not in metric_names(True))


def row_metrics(row: dict) -> tuple[str, ...]:
    """The metrics a summary row holds a ``_mean`` of."""
    return tuple(key[:-len("_mean")] for key in row if key.endswith("_mean") and key != "best_epoch_mean")


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
    point_names = _point_names(rows)
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


def _point_names(rows: list[dict]) -> list[str]:
    """The swept values' names of summary rows, in order of first appearance."""
    names = []
    for row in rows:
        for key in row:
            if key not in _NOT_POINTS and not key.endswith(("_mean", "_std", "_sem")) and key not in names:
                names.append(key)
    return names


def _metric_columns(rows: list[dict], metric: str) -> list[tuple[str, str]]:
    """(title, metric) of the table's columns after the search metric's: the built-in ones, then
    the validation value of each own metric."""
    own = [name for name in own_metrics(row_metrics(rows[0])) if name.startswith("val_") and name != metric]
    return _builtin_columns(rows, metric) + [(name, name) for name in own]


def _builtin_columns(rows: list[dict], metric: str) -> list[tuple[str, str]]:
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
    return _plus_minus(name, row[f"{name}_mean"], row[f"{name}_std"])


def _plus_minus(name: str, mean: float, spread: float) -> str:
    """``mean +- spread`` as the table prints metric ``name``: accuracies in percent points."""
    if math.isnan(mean):
        return "-"
    if name.endswith("accuracy"):
        return f"{100 * mean:.2f} +- {100 * spread:.2f}"
    return f"{mean:.4f} +- {spread:.4f}"


def _plus_minus_unit(name: str, mean: float, spread: float) -> str:
    """:func:`_plus_minus` with its unit, where the text has no column title to say it."""
    return _plus_minus(name, mean, spread) + (" %" if name.endswith("accuracy") and not math.isnan(mean) else "")


def _value(name: str, value: float) -> str:
    """One value of metric ``name`` as the table prints it (accuracies in percent)."""
    return f"{100 * value:.2f}%" if name.endswith("accuracy") else f"{value:.4f}"


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


EXPECTED_AT = (1, 2, 5, 10)  # the n of "expected best after n configs", and N itself


def best_lines(rows: list[dict], records: list[dict], search: dict, n_boot: int = 10000) -> list[str]:
    """How sure the table's best config is, in words (:mod:`jaxreg.report.stats`), as ``run``,
    ``show`` and ``best`` print them under the table:

    - the best config's mean +- its standard error over seeds, and the 1-SE choice (the most
      regularized config within one SE of the best) where it is another config;
    - the runner-up, and the probability that the best beats it, by a paired bootstrap over the
      seeds both ran;
    - the expected best of ``n`` configs drawn at random from those trained (Dodge et al., 2019)
      at a few ``n``: whether more configs from the same space would help.

    Configs pruned by successive halving, or with a diverged seed, take no part. With one seed
    per config the first two say that the statistics need two or more.
    """
    metric, maximize = search["metric"], search["goal"] == "maximize"
    ranked = [r for r in rows if finished(r) and not math.isnan(r[f"{metric}_mean"])]
    if not ranked:
        return []
    per_seed: dict[str, dict] = {}
    for record in records:
        per_seed.setdefault(record["config_id"], {})[record["seed"]] = as_float(record["metrics"].get(metric))
    label = _labeller(ranked)
    best = ranked[0]
    mean, se, n = mean_se(list(per_seed[best["config_id"]].values()))
    if n < 2:
        lines = [f"best: {label(best)}: {metric} {_value(metric, mean)}; the statistics of a best (its standard "
                 f"error, the chance it beats the runner-up) need >= 2 seeds per config, the best has 1 "
                 f"(search.seeds)"]
    else:
        lines = [f"best: {label(best)}: {metric} {_plus_minus_unit(metric, mean, se)} (mean +- SE over {n} seeds)"]
        names = _varying([r for r in ranked if r["case"] == best["case"]])  # the axes the 1-SE rule compares
        choice = one_se_choice(ranked, maximize=maximize, regularization=regularization_key(names), metric=metric)
        if choice is not best:
            by = ", then ".join(name for name in REGULARIZATION if name in names)
            lines.append(f"1-SE choice: {label(choice)}: {metric} {_value(metric, choice[f'{metric}_mean'])} (the "
                         f"most regularized by {by} within one SE of the best: glmnet's lambda.1se rule)")
        if len(ranked) > 1:
            lines.append(_runner_up_line(ranked[1], per_seed, best, label, metric, maximize, n_boot))
    # halving's survivors are not a random draw of the space: say which configs the line is about
    pool = (f"the {len(ranked)} trained to the end (of {len(rows)})" if any(not finished(r) for r in rows)
            else f"these {len(ranked)}")
    return lines + [_expected_line([r[f"{metric}_mean"] for r in ranked], metric, maximize, se, pool)]


def _runner_up_line(runner: dict, per_seed: dict, best: dict, label, metric: str, maximize: bool,
                    n_boot: int) -> str:
    """The runner-up, its mean +- SE, and P(best beats it) by a paired bootstrap."""
    ours, theirs = per_seed[best["config_id"]], per_seed[runner["config_id"]]
    mean, se, n = mean_se(list(theirs.values()))
    shared = sorted(set(ours) & set(theirs))
    won = sum((ours[s] > theirs[s]) if maximize else (ours[s] < theirs[s]) for s in shared)
    tied = sum(ours[s] == theirs[s] for s in shared)  # accuracies on a small split tie often
    beats = paired_bootstrap(ours, theirs, maximize=maximize, n_boot=n_boot)
    # how many seeds it won on: with 3 seeds, winning all 3 is a bootstrap P of 1.00
    said = (f"P(best beats runner-up) = {beats:.2f} (paired bootstrap over {len(shared)} shared seeds; better on "
            f"{won}{f', equal on {tied}' if tied else ''} of them)" if not math.isnan(beats)
            else f"P(best beats runner-up) needs >= 2 shared seeds, they share {len(shared)}")
    spread = _plus_minus_unit(metric, mean, se) if n > 1 else _value(metric, mean)
    return f"runner-up: {label(runner)}: {metric} {spread}; {said}"


def _varying(rows: list[dict]) -> list[str]:
    """The swept names whose values differ between ``rows`` (told apart as the journal writes them)."""
    return [name for name in _point_names(rows) if len({json.dumps(r.get(name)) for r in rows}) > 1]


def _labeller(rows: list[dict]):
    """A config's words: its case and the swept values that differ between ``rows``, as many
    digits as the table prints them with (``l2=0.00033, learning_rate=0.046``)."""
    names = _varying(rows)
    digits = {name: _digits([r.get(name) for r in rows]) for name in names}
    has_case = any(r["case"] is not None for r in rows)

    def label(row: dict) -> str:
        parts = [str(row["case"])] if has_case else []
        parts += [f"{name}={_fmt(row[name], digits[name])}" for name in names if name in row]  # a case's own axes
        return ", ".join(parts) or f"config {row['config_id']}"
    return label


def _expected_line(means: list[float], metric: str, maximize: bool, se: float, pool: str) -> str:
    """Dodge et al.'s expected best of n configs at :data:`EXPECTED_AT` and N, and whether the
    last half of the N configs moved it by more than the best's standard error."""
    n_configs = len(means)
    expected = expected_best(means, n_configs, maximize=maximize)
    at = sorted({n for n in EXPECTED_AT if n < n_configs} | {n_configs})
    line = (f"expected best {metric} after n configs drawn at random from {pool} (Dodge et al. 2019): "
            + ", ".join(f"n={n}: {_value(metric, expected[n - 1])}" for n in at))
    half = (n_configs + 1) // 2
    if n_configs < 4 or math.isnan(se):
        return line
    gain = abs(expected[-1] - expected[half - 1])
    verdict = "less" if gain < se else "more"
    return (line + f"; from n={half} to {n_configs} it moves by {_value(metric, gain).rstrip('%')}"
            f"{' points' if metric.endswith('accuracy') else ''}, {verdict} than the best's SE: more configs from "
            f"this space {'would likely not help' if gain < se else 'may still help'}")


def measured_configs(records: list[dict]) -> tuple[list[str], list[list[dict]], dict]:
    """The generalization measures the journal holds (``train.measures``, in :data:`MEASURES`
    order), the configs whose seeds all finished with finite values of them and of both losses
    (each config's journal lines), and ``{measure: (tau, low, high)}`` against the gap
    (``val_loss - train_loss``; :func:`jaxreg.report.stats.measure_taus`), empty under 3 configs.

    Raises:
        InputError: the journal holds no measure.
    """
    present = [name for name in MEASURES if any(name in r["metrics"] for r in records)]
    if not present:
        raise InputError(f"--measures: expected a sweep trained with train.measures (any of {', '.join(MEASURES)}), "
                         f"got none in its journal")
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["config_id"], []).append(record)
    needed = ("val_loss", "train_loss", *present)
    kept = [g for g in groups.values() if all(r["status"] == "ok" and all(
        is_number(r["metrics"].get(n)) for n in needed) and r.get("pruned_epoch") is None for r in g)]
    if len(kept) < 3:
        return present, kept, {}
    gap = [[r["metrics"]["val_loss"] - r["metrics"]["train_loss"] for r in g] for g in kept]
    return present, kept, measure_taus({name: [[r["metrics"][name] for r in g] for g in kept] for name in present}, gap)


def measure_lines(records: list[dict]) -> list[str]:
    """``jaxreg show --measures``: Kendall's tau between each generalization measure the journal
    holds (``train.measures``) and the generalization gap (``val_loss - train_loss``), over the
    configs whose seeds all finished with finite values, with a 90% seed-bootstrap interval
    (:func:`measured_configs`). A measure that predicts overfitting has a tau near 1.

    Raises:
        InputError: the journal holds no measure.
    """
    present, kept, taus = measured_configs(records)
    if not taus:
        return [f"measures: {len(kept)} config{'s' * (len(kept) != 1)} with every seed finished and measured; "
                f"Kendall's tau needs 3 or more"]
    width = max(len(name) for name in present)
    lines = [f"generalization measures against the gap (val_loss - train_loss) over {len(kept)} configs: "
             f"Kendall's tau (90% interval over resampled seeds)"]
    for name, (tau, low, high) in sorted(taus.items(), key=lambda item: -abs(item[1][0])):
        lines.append(f"  {name:<{width}}  tau {tau:+.2f}  [{low:+.2f}, {high:+.2f}]")
    lines.append("  tau near +1: the measure ranks configs as their gap does (predicts overfitting); near 0: "
                 "it says nothing of it (Jiang et al. 2020)")
    return lines
