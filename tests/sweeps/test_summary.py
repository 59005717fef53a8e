"""jaxreg.report.summary's table: distinct values printed distinctly, the epoch column named and
explained, and a regression sweep's losses in place of empty accuracies.

The summary's rows are also checked where the sweeps that make them are: test_sweep.py,
test_halving.py (its table of rungs), test_regression_metrics.py (a regression's table) and
tests/unit/test_stats.py (on committed results folders).
"""

from __future__ import annotations

import math

from jaxreg import report
from jaxreg.sweeps import build_spec
from cases_sweep import CASES


def test_the_table_prints_distinct_values_distinctly_and_names_its_epoch_column(cases_folder):
    rows = report.summarize(report.read_journal(cases_folder), build_spec(CASES).search)
    table = report.format_table(rows, build_spec(CASES).search)
    lines = table.splitlines()
    header = lines[0].split()
    assert "best_ep" in header and "best_epoch" not in header
    l2_cells = {line.split()[header.index("l2")] for line in lines[2:] if line.split()[1] == "l2"}
    assert l2_cells == {"0.00188", "0.00176", "0.01"}  # 0.002 twice before
    assert "stopped early" in table or all(r["stopped"] == 0 for r in rows)
    assert lines[-1].startswith("best_ep: mean epoch of the best monitored value (train.monitor).")
    assert report.summary._digits([0.1, 0.10000001]) == 8


def test_a_regression_table_shows_losses_not_empty_accuracies():
    nan = math.nan
    row = {"rank": 1, "config_id": "c", "case": None, "round": 0, "l2": 0.1, "seeds": 2, "diverged": 0,
           "best_epoch_mean": 5.0, "stopped": 0, "selected": True}
    for name in ("val_loss", "train_loss", "test_loss"):
        row[f"{name}_mean"], row[f"{name}_std"] = 0.25, 0.01
    for name in ("val_accuracy", "train_accuracy", "test_accuracy"):
        row[f"{name}_mean"], row[f"{name}_std"] = nan, nan
    table = report.format_table([row], {"metric": "val_loss"})
    assert table.splitlines()[0].split() == ["rank", "l2", "val_loss", "train_loss", "test_loss", "best_ep", "seeds"]
    assert "0.2500 +- 0.0100" in table.splitlines()[2]
