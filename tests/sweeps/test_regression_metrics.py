"""Regression's metrics: RMSE, MAE and R^2 computed inside the compiled program against a NumPy
oracle on the saved params' predictions, kept out of classification records, and in the
summary, the table and the plots (RMSE where accuracy would be, the true reason for a skip)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxreg import losses
from jaxreg.report import store
from jaxreg.report.folder import load_folder
from jaxreg.report.plots import _curves, plot_dir
from jaxreg.report.summary import format_table
from jaxreg import load_best
from jaxreg.sweeps import build_spec, run_sweep
from jaxreg.errors import InputError
from jaxreg.train import REGRESSION_METRICS
from test_sweep import tiny

SPLITS = ("train", "val", "test")


def _oracle(outputs, targets):
    outputs, targets = np.asarray(outputs, np.float64), np.asarray(targets, np.float64).reshape(outputs.shape)
    diff = outputs - targets
    r2 = 1 - (diff ** 2).sum(0) / ((targets - targets.mean(0)) ** 2).sum(0)
    return {"rmse": np.sqrt((diff ** 2).mean()), "mae": np.abs(diff).mean(), "r2": r2.mean()}


def test_regression_metrics_against_numpy():
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    got = losses.regression_metrics(outputs.astype(np.float32), targets.astype(np.float32))
    for name, value in _oracle(outputs, targets).items():
        np.testing.assert_allclose(float(got[name]), value, rtol=1e-5)
    one = losses.regression_metrics(outputs[:, :1].astype(np.float32), targets[:, 0].astype(np.float32))
    np.testing.assert_allclose(float(one["r2"]), _oracle(outputs[:, :1], targets[:, 0])["r2"], rtol=1e-5)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    out = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    np.savez(out / "data.npz", x=x, y=x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120))
    spec = {"name": "reg", "data": {"dataset": "npz", "path": str(out / "data.npz"), "val_fraction": 0.25,
                                    "test_fraction": 0.25},
            "model": {"hidden": [4]},
            "train": {"loss": "mse", "optimizer": "adam", "epochs": 4, "eval_every": 2, "batch_size": 20},
            "hparams": {"learning_rate": {"values": [0.01, 0.05]}}, "search": {"seeds": 2, "chunk_size": 4},
            "output": {"params": True, "plots": False}}
    built = build_spec(spec)
    run_sweep(built, out / "run", progress=False)
    return built, out / "run"


def test_journaled_metrics_are_those_of_the_saved_params(regression):
    built, out = regression
    (variant,) = built.variants
    data = variant.dataset
    journal = store.read_journal(out)
    assert all(set(REGRESSION_METRICS) <= set(r["metrics"]) for r in journal)
    best = load_best(out)
    for seed, params in best.params_by_seed.items():
        (record,) = [r for r in journal if r["config_id"] == best.info["config_id"] and r["seed"] == seed]
        for split in SPLITS:
            part = getattr(data, split)
            outputs = best.model.apply(params, best.state_by_seed[seed], np.asarray(part.x, np.float32))[0]
            for name, value in _oracle(outputs, part.y).items():
                np.testing.assert_allclose(record["metrics"][f"{split}_{name}"], value, rtol=2e-4, atol=1e-6)


def test_summary_table_and_plots_of_a_regression(regression, tmp_path):
    _, out = regression
    folder = load_folder(out)
    best = folder.rows[0]
    for name in ("val_rmse", "val_mae", "val_r2", "train_rmse", "test_rmse", "test_r2"):
        assert np.isfinite(best[f"{name}_mean"])
    assert np.isnan(folder.rows[1]["test_rmse_mean"])  # test metrics for the selected config only
    header = format_table(folder.rows, folder.search).splitlines()[0].split()
    assert {"val_rmse", "val_r2", "test_rmse", "test_r2"} <= set(header)
    titles = [ax.get_title() for ax in _curves(folder).axes]
    assert titles == ["train loss", "val loss", "train rmse", "val rmse"]  # no empty accuracy panel
    skipped = {}
    written = {p.name for p in plot_dir(out, on_skip=lambda name, why: skipped.setdefault(name, why))}
    assert "test_curves.png" in written and "test_curves.png" not in skipped  # train.eval_test is true
    assert "accuracies" in skipped["generalization_gap.png"]


def test_classification_records_keep_their_keys(tmp_path):
    spec = tiny(train={"optimizer": "adam", "epochs": 2, "eval_every": 2, "batch_size": 20, "eval_test": False},
                output={"plots": False})
    run_sweep(build_spec(spec), tmp_path / "run", progress=False)
    journal = store.read_journal(tmp_path / "run")
    assert all(not set(REGRESSION_METRICS) & set(r["metrics"]) for r in journal)
    skipped = {}
    plot_dir(tmp_path / "run", on_skip=lambda name, why: skipped.setdefault(name, why))
    assert skipped["test_curves.png"] == "the test split was not evaluated during training (train.eval_test = false)"
    titles = [ax.get_title() for ax in _curves(load_folder(tmp_path / "run")).axes]
    assert titles == ["train loss", "val loss", "train accuracy", "val accuracy"]


def test_a_regression_search_ranks_by_rmse_or_r2_in_its_own_direction(regression):
    """search.metric may name a regression measure: R^2 is maximized, RMSE and MAE minimized; the
    best config by each is the one the journal's numbers say (the same journal, ranked three ways)."""
    from jaxreg.report import read_journal, summarize

    built, out = regression
    spec = dict(built.resolved["search"])
    records = read_journal(out)
    means = {}
    for record in records:
        for name in ("val_rmse", "val_r2"):
            means.setdefault((record["config_id"], name), []).append(record["metrics"][name])
    for metric, pick in (("val_rmse", min), ("val_r2", max)):
        raw = {"data": {"dataset": "npz", "path": built.resolved["data"]["path"], "val_fraction": 0.25,
                        "test_fraction": 0.25},
               "model": {"hidden": [4]}, "train": {"loss": "mse", "epochs": 4, "eval_every": 2, "batch_size": 20},
               "hparams": {"learning_rate": {"values": [0.01, 0.05]}}, "search": {"metric": metric}}
        goal = build_spec(raw).search["goal"]
        assert goal == ("minimize" if metric == "val_rmse" else "maximize")
        rows = summarize(records, {**spec, "metric": metric, "goal": goal})
        best = pick({cid for cid, _ in means}, key=lambda cid: np.mean(means[(cid, metric)]))
        assert rows[0]["config_id"] == best
    with pytest.raises(InputError, match=r"^search.metric: expected one of val_loss, val_accuracy, train_loss, "
                                        r"train_accuracy for a classification \(loss 'cross_entropy' on class "
                                        r"labels\), got 'val_r2'$"):
        build_spec(tiny(search={"metric": "val_r2"}))
