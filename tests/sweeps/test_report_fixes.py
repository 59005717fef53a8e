"""Defects a new user met in the reports, each pinned: compare on folders with cases, the table's
digits and columns, the plots that hid overfitting or had no baseline, and what was skipped."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from jaxreg import cli, report
from jaxreg.report import compare as compare_lib
from jaxreg.report import plots
from jaxreg.report.folder import load_folder
from jaxreg.sweeps import build_spec, run_sweep

CASES = {
    "name": "cases", "data": {"dataset": "digits", "n_train": 60},
    "model": {"hidden": [16]}, "train": {"optimizer": "adam", "epochs": 24, "eval_every": 4, "batch_size": 20},
    "hparams": {"learning_rate": 0.01},
    "cases": {"none": {}, "l2": {"l2": {"values": [0.00188, 0.00176, 0.01]}}, "stop": {"patience": 4}},
    "search": {"seeds": 2, "chunk_size": 10},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cases") / "r"
    run_sweep(build_spec(CASES), out, progress=False)
    return out


def test_compare_draws_folders_with_cases_and_writes_nothing_when_it_fails(folder, tmp_path, monkeypatch):
    """It raised KeyError: 'l2' (a case without the axis) after writing comparison.csv."""
    other = tmp_path / "other"
    run_sweep(build_spec({**CASES, "name": "other", "cases": {"none": {}, "l2": {"l2": {"values": [0.1, 0.3]}}}}),
              other, progress=False)
    written = compare_lib.compare([folder, other], tmp_path / "cmp")
    assert sorted(p.name for p in written) == ["best_so_far.png", "comparison.csv", "sampled_points.png"]

    def broken(folders):
        raise RuntimeError("a figure failed")

    monkeypatch.setattr(compare_lib, "plot_sampled_points", broken)
    with pytest.raises(RuntimeError):
        compare_lib.compare([folder, other], tmp_path / "half")
    assert not (tmp_path / "half").exists()


def test_the_table_prints_distinct_values_distinctly_and_names_its_epoch_column(folder):
    rows = report.summarize(report.read_journal(folder), build_spec(CASES).search)
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


def test_plots_skip_what_does_not_apply_and_say_why(folder, capsys):
    skipped = []
    written = plots.plot_dir(folder, on_skip=lambda name, why: skipped.append((name, why)))
    names = {p.name for p in written}
    assert "best_so_far.png" not in names and "metric_vs_l2.png" in names and "curves.png" in names
    assert ("best_so_far.png", "a grid of named cases has no search order to follow") in skipped
    assert ("weights_hist.png, decision_boundary.png", "no params saved: output.params is false") in skipped
    assert cli.main(["plot", str(folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "skipped best_so_far.png: a grid of named cases has no search order to follow" in printed


def test_metric_vs_axis_draws_the_cases_without_that_axis_as_baselines(folder):
    sweep = load_folder(folder)
    fig = plots._metric_vs(sweep, "l2")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    baselines = [label for label in labels if "(no l2)" in label]
    assert sorted(label.split(" ")[0] for label in baselines) == ["none", "stop"]
    none = next(line for line in fig.axes[0].get_lines() if line.get_label().startswith("none (no l2)"))
    cid = next(r["config_id"] for r in sweep.rows if r["case"] == "none")
    assert none.get_ydata()[0] == pytest.approx(sweep.mean_of(cid, "val_loss"))


def test_curves_put_validation_loss_on_its_own_linear_axis(folder):
    """Train and validation loss shared one log axis: a rising validation loss looked flat."""
    fig = plots._curves(load_folder(folder))
    train, val = fig.axes[0], fig.axes[1]
    assert train.get_title() == "train loss" and val.get_title() == "val loss"
    assert val.get_yscale() == "linear" and val.get_shared_y_axes().get_siblings(val) == [val]
    curves = [plots._mean(c["val_loss"]) for c in
              (plots._curves_of(load_folder(folder), r["config_id"]) for r in load_folder(folder).shown())]
    late = np.concatenate([m[int(0.1 * len(m)):] for m in curves])
    low, high = val.get_ylim()
    assert low < np.nanmin(late) and high > np.nanmax(late) and high - low < 1.2 * (np.nanmax(late) - np.nanmin(late)) + 0.2


def test_trials_csv_has_a_row_per_trial_with_hparams_and_metrics_as_columns(folder):
    records = report.read_journal(folder)
    path = report.write_trials_csv(folder, records)
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


def test_trials_dataframe_reads_the_folder_as_trials_csv_has_it(folder):
    """Read back by pandas, the tool it is for: a row per trial, the metrics as floats."""
    frame = report.trials_dataframe(folder)
    records = report.read_journal(folder)
    assert len(frame) == len(records) and list(frame["config_id"]) == [r["config_id"] for r in records]
    assert frame["m_val_loss"].dtype == np.float64
    np.testing.assert_array_equal(frame["m_val_loss"].to_numpy(), [r["metrics"]["val_loss"] for r in records])
    assert list(frame.columns) == list(report.trials_rows(records)[0])
