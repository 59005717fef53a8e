"""The notebook-2d experiment (sweeps/notebook-2d.toml), shortened: its qualitative claims hold.

300 of the 2000 epochs and 2 of the 5 seeds; the claims checked are the ones that are already
settled by then, by wide margins (see results/notebook-2d/README.md for the full run):
L2 shrinks the weights, and dropout does not; dropout and L2 both pay in training loss; the
unregularized network overfits: a larger train-validation gap and an overconfident, worse
validation loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxreg import report
from jaxreg.sweeps import load_spec, run_sweep

SPEC = Path(__file__).resolve().parents[2] / "sweeps" / "notebook-2d.toml"


@pytest.mark.slow
def test_notebook2d_claims(tmp_path):
    spec = load_spec(SPEC, ["train.epochs=300", "train.eval_every=10", "search.seeds=2"])
    records = run_sweep(spec, tmp_path, progress=False)
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    by_case: dict[str, dict[int, dict]] = {}
    for record in records:
        by_case.setdefault(record["case"], {})[record["seed"]] = record["metrics"]

    def metric(case: str, name: str) -> np.ndarray:
        return np.array([by_case[case][seed][name] for seed in sorted(by_case[case])])

    # Seeds share their init across cases, so each comparison is paired, seed by seed.
    none_norm, l2_norm, dropout_norm = (metric(c, "weight_norm") for c in ("none", "l2", "dropout"))
    assert np.all(l2_norm < 0.8 * none_norm)            # L2: smaller weights
    assert np.all(np.abs(dropout_norm / none_norm - 1) < 0.1)  # dropout: about the same weights
    assert np.all(metric("dropout", "train_loss") > 1.5 * metric("none", "train_loss"))
    assert np.all(metric("l2", "train_loss") > metric("none", "train_loss"))

    def gap(case: str) -> np.ndarray:
        return metric(case, "train_accuracy") - metric(case, "val_accuracy")

    assert np.all(gap("none") > gap("l2")) and np.all(gap("none") > gap("dropout"))
    assert np.all(metric("none", "val_loss") > 1.2 * metric("l2", "val_loss"))
    assert np.all(metric("none", "val_loss") > 1.2 * metric("dropout", "val_loss"))

    # The saved params are the ones measured: weight_norm is the norm of the "w" leaves.
    none_id = next(r["config_id"] for r in records if r["case"] == "none")
    saved = report.load_curves(tmp_path, none_id, 0)
    norm = np.sqrt(sum(np.sum(v.astype(float) ** 2) for k, v in saved.items()
                       if k.startswith("params/") and k.endswith("['w']")))
    assert norm == pytest.approx(by_case["none"][0]["weight_norm"], rel=1e-5)


@pytest.mark.slow
def test_tradeoff_regularized_corners_beat_the_unregularized_one(tmp_path):
    """sweeps/notebook-2d-tradeoff.toml on its corners (L2 0 or 0.003, hidden dropout 0 or 0.5),
    300 epochs, 1 seed: the unregularized config has the worst validation loss, and L2 with
    dropout (the notebook's advice) beats it."""
    spec = load_spec(SPEC.with_name("notebook-2d-tradeoff.toml"),
                     ["train.epochs=300", "search.seeds=1", "hparams.l2={ values = [0.0, 0.003] }",
                      "hparams.dropout={ values = [0.0, 0.5], layers = [1, 2] }", "output.plot_metrics=[]"])
    records = run_sweep(spec, tmp_path, progress=False)
    val_loss = {(r["point"]["l2"], r["point"]["dropout"]): r["metrics"]["val_loss"] for r in records}
    assert len(val_loss) == 4
    assert max(val_loss, key=val_loss.get) == (0.0, 0.0)
    assert val_loss[0.003, 0.5] < 0.8 * val_loss[0.0, 0.0]
