"""The journal as one flat table: a row per trial, its hyperparameters and metrics as columns.

``trials_rows(records)`` flattens journal records (what Optuna's ``trials_dataframe`` gives
for a study): ``config_id``, ``seed``, ``round``, ``case``, ``status``, the epochs, then
``hp_NAME`` for every hyperparameter (a per-layer list as ``hp_NAME_0``, ``hp_NAME_1``, ...)
and ``m_NAME`` for every metric (NaN where not evaluated). ``write_trials_csv`` writes them
as ``trials.csv``; ``trials_dataframe`` reads a folder into a pandas DataFrame.
"""

from __future__ import annotations

from pathlib import Path

from jaxreg.report.journal import read_journal
from jaxreg.report.summary import as_float, write_csv

__all__ = ["TRIALS_CSV", "trials_dataframe", "trials_rows", "write_trials_csv"]

TRIALS_CSV = "trials.csv"
_FIELDS = ("config_id", "seed", "round", "case", "status", "best_epoch", "stopped_epoch", "diverged_epoch")


def _hparam(value):
    """A journaled hparam as a number: "inf" (a patience never reached) is infinity."""
    return as_float(value) if value is None or isinstance(value, str) else value


def trials_rows(records: list[dict]) -> list[dict]:
    """One flat dict per trial, columns in a fixed order (see the module docstring)."""
    rows = []
    for record in records:
        row = {field: record[field] for field in _FIELDS}
        for name, value in record["hparams"].items():
            if isinstance(value, list):
                row.update({f"hp_{name}_{i}": _hparam(v) for i, v in enumerate(value)})
            else:
                row[f"hp_{name}"] = _hparam(value)
        row.update({f"m_{name}": as_float(value) for name, value in record["metrics"].items()})
        rows.append(row)
    return rows


def write_trials_csv(out: str | Path, records: list[dict]) -> Path:
    """Writes ``out/trials.csv`` (atomically): :func:`trials_rows` of ``records``."""
    return write_csv(Path(out) / TRIALS_CSV, trials_rows(records))


def trials_dataframe(out: str | Path):
    """The trials of a results folder as a pandas DataFrame (one row per trial).

    Raises:
        ImportError: pandas is not installed.
    """
    try:
        import pandas
    except ImportError:
        raise ImportError("trials_dataframe needs pandas: pip install 'jaxreg[pandas]'") from None
    frame = pandas.DataFrame(trials_rows(read_journal(out)))
    return frame.astype({c: float for c in frame.columns if c.startswith("m_")}) if len(frame) else frame
