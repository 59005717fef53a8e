"""sweeps/dropout-vs-dropconnect.toml, shortened (20 epochs, 2 seeds, rates 0 and one high
rate): rate 0 is no regularization at all, and a high DropConnect rate on every layer breaks
training where the same rate on the hidden layer alone does not (results/dropout-vs-dropconnect)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaxreg import make_hparams, stack_hparams, train_batch
from jaxreg.sweeps import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SHORT = ["train.epochs=20", "search.seeds=2", "output.plots=false",
         "cases.dropout_hidden.dropout={ values = [0.0, 0.5], layers = [1] }",
         "cases.dropconnect_hidden.dropconnect={ values = [0.0, 0.7], layers = [1] }",
         "cases.dropout_both.dropout={ values = [0.0] }",
         "cases.dropconnect_both.dropconnect={ values = [0.0, 0.7] }"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{(case, rate): {metric: array over seeds}}`` of the shortened sweep, and under
    ``("none", None)`` the same seeds trained by a program that neither draws nor applies masks."""
    spec = load_spec(ROOT / "sweeps" / "dropout-vs-dropconnect.toml", SHORT)
    assert spec.config.dropout and spec.config.dropconnect  # the sweep's program has both paths
    records = run_sweep(spec, tmp_path_factory.mktemp("dropconnect"), progress=False)
    out = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        key = (record["case"], next(iter(record["point"].values())))
        for name, value in record["metrics"].items():
            out.setdefault(key, {}).setdefault(name, []).append(value)
    plain = dataclasses.replace(spec.config, dropout=False, dropconnect=False)
    seeds = np.array(spec.seeds)
    hparams = stack_hparams([make_hparams(spec.model, **spec.resolved["hparams"])] * len(seeds))
    result = train_batch(plain, spec.dataset)(seeds, hparams)
    out["none", None] = {name: np.asarray(value) for name, value in result.final.items()}
    return {key: {name: np.array(v, float) for name, v in m.items()} for key, m in out.items()}


def test_rate_zero_is_no_regularization(runs):
    none = runs["none", None]
    for case in ("dropout_hidden", "dropconnect_hidden", "dropout_both", "dropconnect_both"):
        for name in ("val_loss", "train_loss", "val_accuracy", "weight_norm"):
            np.testing.assert_allclose(runs[case, 0.0][name], none[name], rtol=1e-5,
                                       err_msg=f"{case} at rate 0, {name}")
    # ... and a nonzero rate does change training (the masks are applied).
    for case, rate in (("dropout_hidden", 0.5), ("dropconnect_hidden", 0.7)):
        assert np.all(np.abs(runs[case, rate]["val_loss"] - none["val_loss"]) > 1e-4)


def test_high_dropconnect_on_every_layer_breaks_training_but_not_on_the_hidden_layer(runs):
    every_layer, hidden = runs["dropconnect_both", 0.7], runs["dropconnect_hidden", 0.7]
    assert np.all(every_layer["train_accuracy"] < 0.5)
    assert np.all(hidden["train_accuracy"] > 0.8)
    # The weights blow up: one mask per mini-batch over the input weights, scaled by 1 / 0.3.
    assert np.all(every_layer["weight_norm"] > 2 * runs["none", None]["weight_norm"])
