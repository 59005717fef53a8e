"""A sweep's results folder: a journal that is the source of truth, and what is derived from it.

- ``manifest.json``: the resolved spec and its SHA-256, and one entry per run of the sweep
  (start and end time, jaxreg/jax/jaxlib/optax/numpy versions, devices, chunk size, trials
  trained). A folder holds one spec: resuming with another one is refused.
- ``trials.jsonl``: append-only, one JSON line per finished (config, seed): ``config_id``,
  ``seed``, ``round``, ``case``, ``point`` (the swept values), ``hparams`` (all of them),
  ``status`` (``ok`` or ``diverged``), ``best_epoch``, ``stopped_epoch``, ``diverged_epoch``
  and ``metrics`` at the returned params (``null`` where not evaluated). Lines are flushed and
  fsynced as each chunk finishes; a torn last line (a crash mid-write) is dropped on resume.
- ``curves/CONFIG_SEED.npz``: per-evaluation curves of every metric (and the params, if
  ``output.params``), written before the trial's journal line.
- ``summary.csv``: one row per config, best first, rewritten atomically from the journal.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import tempfile
from pathlib import Path

import jax
import numpy as np

from jaxreg.hparams import HParams
from jaxreg.sweeps.space import SpecError
from jaxreg.train import METRICS

MANIFEST, JOURNAL, SUMMARY, CURVES = "manifest.json", "trials.jsonl", "summary.csv", "curves"
REPORTED = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
TEST = ("test_loss", "test_accuracy")


def _json_value(value):
    """Strict JSON: NaN becomes null, infinities the strings "inf" and "-inf"."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("jaxreg", "jax", "jaxlib", "optax", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    out["python"] = platform.python_version()
    return out


def atomic_write(path: Path, content: str | bytes) -> None:
    """Writes ``content`` to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def trial_record(cid: str, config, seed: int, i: int, result, hparams: HParams) -> dict:
    """The journal line of member ``i`` of a chunk's ``result``."""
    diverged = bool(result.diverged[i])
    return {
        "config_id": cid, "seed": int(seed), "round": config.round, "case": config.case,
        "point": _json_value(config.point),
        "hparams": {name: _json_value(np.asarray(getattr(hparams, name)[i])) for name in HParams._fields},
        "status": "diverged" if diverged else "ok",
        "best_epoch": int(result.best_epoch[i]), "stopped_epoch": int(result.stopped_epoch[i]),
        "diverged_epoch": int(result.diverged_epoch[i]),
        "metrics": {name: _json_value(float(result.final[name][i])) for name in METRICS},
    }


class Store:
    """The files of one results folder."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.manifest_path = self.out / MANIFEST
        self.journal_path = self.out / JOURNAL
        self.summary_path = self.out / SUMMARY
        self.curves_dir = self.out / CURVES

    def prepare(self, spec, *, overwrite: bool) -> None:
        """Checks the folder can take this spec; clears it first with ``overwrite``."""
        if self.out.exists() and not self.out.is_dir():
            raise SpecError(f"--out: expected a folder, got {str(self.out)!r} (a file)")
        if self.manifest_path.exists() and not overwrite:
            try:
                manifest = json.loads(self.manifest_path.read_text())
                previous = manifest["spec_sha256"]
            except (OSError, ValueError, KeyError, TypeError):
                raise SpecError(f"--out: {str(self.out)!r} has an unreadable {MANIFEST}: expected "
                                f"a jaxreg results folder; use --overwrite to replace it") from None
            if previous != spec.digest:
                raise SpecError(f"--out: {str(self.out)!r} holds results of a different spec "
                                f"(sha256 {previous[:12]}, this one {spec.digest[:12]}): expected the "
                                f"same spec to resume; use --overwrite to replace them, or another --out")
        if overwrite:
            for path in (self.manifest_path, self.journal_path, self.summary_path):
                path.unlink(missing_ok=True)
            if self.curves_dir.is_dir():
                for path in self.curves_dir.glob("*.npz"):
                    path.unlink()
            for path in self.out.glob("*.png"):
                path.unlink()

    def start_run(self, spec, chunk_size: int) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.curves_dir.mkdir(exist_ok=True)
        if self.manifest_path.exists():
            manifest = json.loads(self.manifest_path.read_text())
        else:
            manifest = {"spec_sha256": spec.digest, "spec": spec.resolved, "runs": []}
        manifest["runs"].append({
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), "devices": [str(d) for d in jax.local_devices()],
            "chunk_size": chunk_size, "finished": None})
        self._manifest = manifest
        atomic_write(self.manifest_path, json.dumps(manifest, indent=2) + "\n")

    def finish_run(self, trained: int, seconds: float) -> None:
        run = self._manifest["runs"][-1]
        run.update(finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   trials_trained=trained, seconds=round(seconds, 3))
        atomic_write(self.manifest_path, json.dumps(self._manifest, indent=2) + "\n")

    def read_journal(self) -> dict:
        """The finished trials by ``(config_id, seed)``; cuts off a torn last line first."""
        return {(r["config_id"], r["seed"]): r for r in read_journal(self.out, repair=True)}

    def append(self, records: list[dict]) -> None:
        lines = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        with open(self.journal_path, "a") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())

    def write_curves(self, record: dict, result, i: int, with_params: bool, epochs) -> None:
        arrays = {f"curve/{name}": np.asarray(result.curves[name][i]) for name in METRICS}
        arrays["epochs"] = np.asarray(epochs)  # completed epochs at each evaluation
        if with_params:
            leaves, _ = jax.tree_util.tree_flatten_with_path(result.params)
            for path, leaf in leaves:
                arrays["params/" + jax.tree_util.keystr(path)] = np.asarray(leaf[i])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(self.curves_dir / f"{record['config_id']}_{record['seed']}.npz", buffer.getvalue())


def read_journal(out: str | Path, *, repair: bool = False) -> list[dict]:
    """The journal's records in order. A last line without its newline is a torn write: it is
    ignored (and cut off the file when ``repair``); a broken line elsewhere is an error."""
    path = Path(out) / JOURNAL
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:
        with open(path, "r+b") as file:
            file.truncate(end)
    records = []
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise SpecError(f"{path}: line {number}: expected a JSON trial record, got {line[:60]!r}") from None
    return records


def load_manifest(out: str | Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise SpecError(f"DIR: expected a jaxreg results folder with {MANIFEST}, got {str(out)!r}")
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise SpecError(f"DIR: expected valid JSON in {path}, got a broken file") from None


def load_curves(out: str | Path, config_id: str, seed: int) -> dict:
    with np.load(Path(out) / CURVES / f"{config_id}_{seed}.npz") as file:
        return {name: file[name] for name in file.files}


CSV_SOURCES = ("case", "config_id", "seed", "round", "epoch", "epoch_index")


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
    columns = columns or {name: name for name in ("case", "config_id", "seed", "round", "epoch", *METRICS)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for record in records:
        curves = load_curves(out, record["config_id"], record["seed"])
        epochs = curves["epochs"]
        for j, epoch in enumerate(epochs):
            values = {name: float(curves[f"curve/{name}"][j]) for name in METRICS}
            if all(math.isnan(v) for v in values.values()):
                continue
            fields = {"case": record["case"], "config_id": record["config_id"], "seed": record["seed"],
                      "round": record["round"], "epoch": int(epoch), "epoch_index": int(epoch) - 1, **values}
            writer.writerow([_csv_value(fields[source]) for source in columns.values()])
    path = Path(out) / "curves.csv"
    atomic_write(path, buffer.getvalue())
    return path


def as_float(value) -> float:
    """A journal value as a float: ``null`` is NaN; ``float`` reads the strings "inf" and "-inf"."""
    return math.nan if value is None else float(value)


def is_number(value) -> bool:
    """A finite int or float (not a bool): a value that can sit on a numeric axis."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rank_key(value: float, minimize: bool) -> tuple:
    """Sort key of a metric value, best first; NaN (a diverged config) last."""
    return (math.isnan(value), 0.0 if math.isnan(value) else (value if minimize else -value))


def summarize(records: list[dict], search: dict) -> list[dict]:
    """One row per config, best first by the mean of ``search.metric`` over its seeds.

    Each row: ``rank``, ``config_id``, ``case``, ``round``, the swept values, ``seeds``,
    ``diverged`` (count), mean, std (ddof 1) and standard error of the metric, mean and std of
    the other validation/train metrics, the mean best and stopped epochs, and the test metrics
    of the selected configs only (the best of each case), so that the test set plays no part
    in choosing them.
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
        for name in (metric, *[m for m in REPORTED if m != metric], *TEST):
            values = np.array([as_float(r["metrics"][name]) for r in group])
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            if name == metric:
                row[f"{name}_sem"] = row[f"{name}_std"] / math.sqrt(len(values))
        row["best_epoch_mean"] = float(np.mean([r["best_epoch"] for r in group]))
        row["stopped"] = sum(r["stopped_epoch"] > 0 for r in group)
        rows.append(row)
    rows.sort(key=lambda r: rank_key(r[f"{metric}_mean"], minimize))
    seen_cases = set()
    for i, row in enumerate(rows, 1):
        row["rank"] = i
        row["selected"] = row["case"] not in seen_cases and not math.isnan(row[f"{metric}_mean"])
        if row["selected"]:
            seen_cases.add(row["case"])
        else:
            for name in TEST:
                row[f"{name}_mean"] = row[f"{name}_std"] = math.nan
    return [{"rank": r.pop("rank"), **r} for r in rows]


def write_summary(out: str | Path, rows: list[dict]) -> Path:
    columns = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _csv_value(row.get(c)) for c in columns})
    path = Path(out) / SUMMARY
    atomic_write(path, buffer.getvalue())
    return path


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _fmt(value, digits: int) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v, 2) if isinstance(v, float) else str(v) for v in value) + "]"
    return "-" if value is None else str(value)


def format_table(rows: list[dict], search: dict, limit: int | None = None) -> str:
    """The summary as an aligned text table: mean +- std over seeds, best first."""
    if not rows:
        return "(no finished trials)"
    metric = search["metric"]
    point_names = []
    for row in rows:
        for key in row:
            if (key not in ("rank", "config_id", "case", "round", "seeds", "diverged", "best_epoch_mean",
                            "stopped", "selected") and not key.endswith(("_mean", "_std", "_sem"))
                    and key not in point_names):
                point_names.append(key)
    has_case = any(r["case"] is not None for r in rows)
    has_rounds = any(r["round"] > 0 for r in rows)
    shown = rows if limit is None else rows[:limit]

    def pm(row, name, scale=1.0, digits=4):
        mean, std = row[f"{name}_mean"], row[f"{name}_std"]
        if math.isnan(mean):
            return "-"
        if name.endswith("accuracy"):
            return f"{100 * mean:.2f} +- {100 * std:.2f}"
        return f"{mean:.{digits}f} +- {std:.{digits}f}"

    table = []
    for row in shown:
        line = {"rank": str(row["rank"])}
        if has_case:
            line["case"] = str(row["case"])
        if has_rounds:
            line["round"] = str(row["round"] + 1)
        for name in point_names:
            line[name] = _fmt(row.get(name), 3)
        line[f"{metric}" + (" %" if metric.endswith("accuracy") else "")] = pm(row, metric)
        other = "val_accuracy" if metric != "val_accuracy" else "val_loss"
        line[other + (" %" if other.endswith("accuracy") else "")] = pm(row, other)
        line["train_acc %"] = pm(row, "train_accuracy")
        line["test_acc %"] = pm(row, "test_accuracy")
        line["best_epoch"] = f"{row['best_epoch_mean']:.0f}"
        line["seeds"] = str(row["seeds"]) + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
        table.append(line)
    columns = list(table[0])
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in table)) for c in columns}
    text = lambda r: "  ".join(r.get(c, "").ljust(widths[c]) for c in columns).rstrip()
    lines = [text({c: c for c in columns}), text({c: "-" * widths[c] for c in columns}), *map(text, table)]
    if limit is not None and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more configs in {SUMMARY}")
    return "\n".join(lines)
