"""sweeps/penalties.toml, shortened (20 epochs, 2 seeds, a few strengths per case): what the
weight penalties do to the weights, the claims of results/penalties/README.md that hold at any
length of training.

The l2_bias case is replaced by a plain L2 config: its own compiled program (penalize_bias is
static) would add ~15-20 s of compilation; "biases change little" is checked on the full run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxreg.sweeps import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SHORT = ["train.epochs=20", "search.seeds=2", "output.plots=false",
         "cases.l2.l2={ values = [1e-3, 3e-2] }",
         "cases.l2_bias={ l2 = 1e-3 }",
         "cases.l1.l1={ values = [1e-4, 1e-3, 1e-2] }",
         "cases.l1_proximal.l1={ values = [1e-3, 1e-2, 1e-1] }",
         "cases.elastic_net.l2=1e-3", "cases.elastic_net.l1=1e-4"]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    """``{(case, l2, l1): {metric: array over seeds}}`` of the shortened sweep."""
    spec = load_spec(ROOT / "sweeps" / "penalties.toml", SHORT)
    records = run_sweep(spec, tmp_path_factory.mktemp("penalties"), progress=False)
    assert all(r["status"] == "ok" for r in records)
    out = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        key = (record["case"], record["hparams"]["l2"], record["hparams"]["l1"])
        for name, value in record["metrics"].items():
            out.setdefault(key, {}).setdefault(name, []).append(value)
    return {key: {name: np.array(v, float) for name, v in m.items()} for key, m in out.items()}


def test_proximal_l1_makes_exact_zeros_and_the_subgradient_does_not(metrics):
    zeros = [metrics["l1_proximal", 0.0, l1]["zero_fraction"] for l1 in (1e-3, 1e-2, 1e-1)]
    assert np.all(0 < zeros[0]) and np.all(zeros[0] < zeros[1]) and np.all(zeros[1] < zeros[2])
    assert np.all(zeros[2] > 0.5)
    for l1 in (1e-4, 1e-3, 1e-2):
        assert np.all(metrics["l1", 0.0, l1]["zero_fraction"] < 1e-3)


def test_momentum_makes_subgradient_l1_ten_times_the_proximal_step(metrics):
    # Momentum 0.9 sums the penalty's gradient into 1 / (1 - 0.9) = 10 steps' worth; the
    # proximal step after the update is not summed: proximal l1 acts like subgradient l1 / 10.
    for l1 in (1e-3, 1e-2):
        proximal = metrics["l1_proximal", 0.0, l1]["weight_norm"]
        subgradient = metrics["l1", 0.0, l1 / 10]["weight_norm"]
        np.testing.assert_allclose(proximal, subgradient, rtol=0.03)


def test_strong_l2_shrinks_the_weights_and_gives_up_training_loss(metrics):
    none, strong = metrics["none", 0.0, 0.0], metrics["l2", 3e-2, 0.0]
    assert np.all(strong["weight_norm"] < 0.4 * none["weight_norm"])
    assert np.all(strong["train_loss"] > 10 * none["train_loss"])


def test_elastic_net_shrinks_more_than_either_of_its_terms_alone(metrics):
    both = metrics["elastic_net", 1e-3, 1e-4]["weight_norm"]
    assert np.all(both < metrics["l2", 1e-3, 0.0]["weight_norm"])
    assert np.all(both < metrics["l1", 0.0, 1e-4]["weight_norm"])

