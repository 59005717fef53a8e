"""jaxreg.report.tables: trials.csv and the pandas frame of a results folder, a row per trial
with the hparams and metrics as columns, read back as written."""

from __future__ import annotations

import csv
import math

import numpy as np

from jaxreg import report


def test_trials_csv_has_a_row_per_trial_with_hparams_and_metrics_as_columns(cases_folder):
    records = report.read_journal(cases_folder)
    path = report.write_trials_csv(cases_folder, records)
    with open(path) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(records) == 10
    first = rows[0]
    assert list(first)[:8] == ["config_id", "seed", "round", "case", "status", "best_epoch", "stopped_epoch",
                               "diverged_epoch"]
    assert {"hp_learning_rate", "hp_l2", "hp_dropout_0", "hp_dropout_1", "hp_patience", "m_val_loss",
            "m_test_accuracy"} <= set(first)
    for row, record in zip(rows, records):
        assert row["config_id"] == record["config_id"] and int(row["seed"]) == record["seed"]
        assert float(row["hp_l2"]) == record["hparams"]["l2"]
        assert float(row["m_val_loss"]) == record["metrics"]["val_loss"]
        assert float(row["hp_patience"]) == float(record["hparams"]["patience"])  # "inf" reads as inf
    flat = report.trials_rows([{**records[0], "metrics": {**records[0]["metrics"], "test_loss": None}}])[0]
    assert math.isnan(flat["m_test_loss"]) and flat["hp_dropout_0"] == records[0]["hparams"]["dropout"][0]


def test_trials_dataframe_reads_the_folder_as_trials_csv_has_it(cases_folder):
    """Read back by pandas, the tool it is for: a row per trial, the metrics as floats."""
    frame = report.trials_dataframe(cases_folder)
    records = report.read_journal(cases_folder)
    assert len(frame) == len(records) and list(frame["config_id"]) == [r["config_id"] for r in records]
    assert frame["m_val_loss"].dtype == np.float64
    np.testing.assert_array_equal(frame["m_val_loss"].to_numpy(), [r["metrics"]["val_loss"] for r in records])
    assert list(frame.columns) == list(report.trials_rows(records)[0])
