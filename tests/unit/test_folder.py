"""jaxreg.report.folder: the one reader of a results folder, on hand-written journal records
(what each property derives, against a by-hand computation) and on the committed
results/search-grid (load_folder, load_folders' refusals and labels, curves)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxreg.errors import InputError
from jaxreg.names import METRICS
from jaxreg.report.folder import Folder, distinct, load_folder, load_folders

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "results" / "search-grid"


def record(config_id, seed, point, val_loss, *, case=None, round=0, status="ok"):
    metrics = dict.fromkeys(METRICS, 0.5)
    metrics["val_loss"] = val_loss
    return {"config_id": config_id, "seed": seed, "case": case, "round": round, "point": point,
            "hparams": dict(point), "metrics": metrics, "status": status, "best_epoch": 4, "stopped_epoch": 0,
            "diverged_epoch": 0}


SPEC = {"name": "hand", "search": {"method": "random", "metric": "val_loss", "goal": "minimize"},
        "hparams": {"learning_rate": {"log_uniform": [1e-4, 1e-1]}, "l2": {"uniform": [0.0, 0.01]},
                    "dropout": {"values": [[0.0, 0.5], [0.2, 0.5]]}},
        "train": {"eval_every": 2}}


def hand_folder(goal="minimize"):
    points = {"a": {"learning_rate": 1e-3, "l2": 0.0, "dropout": [0.0, 0.5], "momentum": 0.9},
              "b": {"learning_rate": 1e-2, "l2": 0.005, "dropout": [0.2, 0.5], "momentum": 0.9},
              "c": {"learning_rate": 3e-2, "l2": 0.001, "dropout": [0.0, 0.5], "momentum": 0.9}}
    losses = {"a": [0.30, 0.34], "b": [0.20, math.nan], "c": [0.25, 0.27]}  # b diverged in a seed: NaN mean
    records = [record(cid, seed, points[cid], loss) for cid in ("c", "a", "b") for seed, loss in enumerate(losses[cid])]
    spec = json.loads(json.dumps(SPEC))
    spec["search"]["goal"] = goal
    return Folder(Path("/nonexistent"), spec, records), losses


def test_distinct_tells_values_apart_as_the_journal_writes_them():
    assert distinct([0.1, [0.1], 0.1, 1, 1.0, "1", [0.1]]) == [0.1, [0.1], 1, 1.0, "1"]


def test_axes_rows_and_the_best_so_far_by_hand():
    folder, losses = hand_folder()
    assert folder.varying == ["learning_rate", "l2", "dropout"]  # momentum is constant
    assert folder.numeric == ["learning_rate", "l2"]  # a list of rates is a category
    assert folder.log_form("learning_rate") and not folder.log_form("l2")
    assert folder.extent("learning_rate") == [1e-4, 1e-1, 3e-2, 3e-2, 1e-3, 1e-3, 1e-2, 1e-2]
    means = {cid: np.mean(v) for cid, v in losses.items()}
    assert [r["config_id"] for r in folder.rows] == ["c", "a", "b"]  # NaN last
    for row in folder.rows:
        assert row["val_loss_mean"] == pytest.approx(means[row["config_id"]], nan_ok=True)
        assert folder.mean_of(row["config_id"], "val_loss") == pytest.approx(means[row["config_id"]], nan_ok=True)
    assert [r["config_id"] for r in folder.in_journal_order()] == ["c", "a", "b"]
    np.testing.assert_allclose(folder.best_so_far(), [0.26, 0.26, 0.26])  # running min, the NaN config skipped
    assert folder.config_label(folder.rows[0]) == "learning_rate=0.03, l2=0.001, dropout=[0,0.5]"
    assert folder.method == "random" and folder.metric == "val_loss" and folder.minimize
    assert not folder.has_case and not folder.has_rounds and folder.shown() == folder.rows


def test_a_metric_to_maximize_ranks_and_runs_the_other_way():
    folder, losses = hand_folder(goal="maximize")
    assert [r["config_id"] for r in folder.rows] == ["a", "c", "b"]
    np.testing.assert_allclose(folder.best_so_far(), [0.26, 0.32, 0.32])  # running max


def test_cases_show_each_cases_best():
    records = [record(f"{case}{k}", 0, {"l2": 0.001 * k}, loss, case=case)
               for case, base in (("x", 0.3), ("y", 0.2)) for k, loss in enumerate((base + 0.05, base))]
    folder = Folder(Path("/nonexistent"), SPEC, records)
    assert folder.has_case
    assert [(r["case"], r["config_id"]) for r in folder.shown()] == [("y", "y1"), ("x", "x1")]
    assert folder.config_label(folder.shown()[0]) == "y, l2=0.001"


def test_load_folder_reads_the_committed_grid_and_its_curves():
    folder = load_folder(GRID)
    journal = [json.loads(line) for line in (GRID / "trials.jsonl").read_text().splitlines() if line.strip()]
    assert len(folder.records) == len(journal) and folder.spec["name"] == json.loads(
        (GRID / "manifest.json").read_text())["spec"]["name"]
    best = folder.rows[0]
    curves = folder.curves(best["config_id"], ["val_loss"])
    assert curves["val_loss"].shape == (best["seeds"], len(curves["epochs"]))
    assert curves["epochs"][0] == folder.spec["train"]["eval_every"]
    # the last evaluation of a seed that ran to the end is its journal line's val_loss
    seeds = [r for r in folder.trials[best["config_id"]] if r["stopped_epoch"] == 0 and r["status"] == "ok"]
    if seeds and not folder.spec["train"].get("restore_best"):
        assert curves["val_loss"][0, -1] == pytest.approx(seeds[0]["metrics"]["val_loss"], rel=1e-6)


def test_load_folders_refuses_repeats_and_mixed_metrics_and_labels_by_folder_name(tmp_path):
    with pytest.raises(InputError) as error:
        load_folders([GRID, GRID])
    assert str(error.value) == f"DIR: expected distinct results folders, got {str(GRID)!r} twice"
    other = tmp_path / "other"
    shutil.copytree(GRID, other)
    folders = load_folders([GRID, other])  # the same spec name twice: labelled by folder name
    assert [f.label for f in folders] == ["search-grid", "other"]
    empty = tmp_path / "empty"
    shutil.copytree(GRID, empty)
    (empty / "trials.jsonl").write_text("")
    with pytest.raises(InputError) as error:
        load_folders([GRID, empty])
    assert str(error.value) == (f"DIR: expected a results folder with finished trials, got {str(empty)!r} "
                                "(no trials in trials.jsonl)")
    with pytest.raises(InputError) as error:
        load_folder(tmp_path)
    assert "expected a jaxreg results folder with manifest.json" in str(error.value)
