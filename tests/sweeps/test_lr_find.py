"""The learning-rate probe: fastai's rules against a hand computation, K rates x seeds as one
program from each seed's init, divergence masked, reproducible, and the command."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxreg.errors import InputError
from jaxreg.sweeps import build_spec
from jaxreg.sweeps.lr_find import fastai_rules, lr_find, ramp

SPEC = {"name": "probe", "data": {"dataset": "digits", "n_train": 200}, "model": {"hidden": [16]},
        "train": {"optimizer": "momentum", "batch_size": 20}, "hparams": {"learning_rate": 0.1, "momentum": 0.9,
                                                                       "l2": 0.001}}


def test_fastai_rules_on_a_hand_made_curve():
    lrs = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0])
    loss = np.array([2.0, 1.9, 1.0, 0.5, 0.8, 5.0])
    rules = fastai_rules(lrs, loss)
    assert rules["minimum"] == pytest.approx(1e-2)  # the lowest loss's rate (0.1) / 10
    # steepest: np.gradient over log(lr): (1.0 - 1.9) / (2 ln 10) at 1e-2 is the most negative
    assert rules["steep"] == pytest.approx(1e-2)
    # the longest descending run: 4 points, 1e-4 to 0.1; fastai counts its start as index -1
    # (max_end - its length), sections = 4 / 3, index -1 + 1 + 0 = 0: kept as fastai computes it
    assert rules["valley"] == pytest.approx(1e-4)
    assert all(math.isnan(v) for v in fastai_rules(lrs[:2], loss[:2]).values())


@pytest.fixture(scope="module")
def probe():
    return lr_find(build_spec(SPEC), low=1e-5, high=100.0, rates=8, seeds=(0, 1), epochs=1)


def test_the_probe_trains_every_rate_from_each_seeds_init(probe):
    assert probe.losses.shape == (2, 8)
    np.testing.assert_allclose(probe.learning_rates, np.geomspace(1e-5, 100.0, 8))
    # the smallest rate barely moves from the init: its loss is the loss at init
    assert probe.losses[:, 0].mean() == pytest.approx(probe.init_loss, rel=0.01)
    assert (probe.losses[:, -1] > probe.init_loss).all()  # lr 100 does worse than the init
    s = probe.suggestions
    best = probe.learning_rates[int(np.argmin(probe.losses.mean(0)))]
    assert s["range"][0] == pytest.approx(best / 10) and s["range"][1] <= s["largest_stable"]
    assert s["largest_stable"] < 100.0


def test_the_probe_is_reproducible_bitwise(probe):
    again = lr_find(build_spec(SPEC), low=1e-5, high=100.0, rates=8, seeds=(0, 1), epochs=1)
    np.testing.assert_array_equal(again.losses, probe.losses)


def test_the_ramp_rises_at_its_end_and_is_cut_where_it_explodes():
    ramped = ramp(build_spec(SPEC), low=1e-5, high=100.0, steps=60)
    assert ramped.losses.shape == (1, 60)
    curve = ramped.losses[0]
    lowest = np.min(curve[np.isfinite(curve)])
    assert np.isfinite(curve[0]) and (not np.isfinite(curve[-1]) or curve[-1] > 2 * lowest)
    cut = np.flatnonzero(~np.isfinite(curve))
    assert not cut.size or np.all(~np.isfinite(curve[cut[0]:]))  # once cut, cut to the end
    exploding = ramp(build_spec(SPEC), low=1e-5, high=1e4, steps=60).losses[0]
    assert np.isinf(exploding[-1])
    assert ramped.losses[0, 0] == pytest.approx(ramped.init_loss, rel=0.05)


def test_lr_find_command_prints_its_suggestions_and_draws_them(tmp_path, capsys):
    import json

    from jaxreg import cli

    spec = tmp_path / "probe.toml"
    spec.write_text('name = "probe"\n[data]\ndataset = "digits"\nn_train = 200\n[model]\nhidden = [16]\n'
                    '[train]\noptimizer = "momentum"\nbatch_size = 20\n[hparams]\nlearning_rate = 0.1\n')
    figure = tmp_path / "probe.png"
    assert cli.main(["lr-find", str(spec), "--rates", "6", "--seeds", "2", "--epochs", "1",
                     "--plot", str(figure)]) in (0, None)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("probe: 6 learning rates 1e-05 to 10 x 2 seeds, 1 epochs each, momentum")
    assert out[1].startswith("suggested range: ") and out[3].startswith("the classic ramp (one run, 100 steps)")
    assert out[-1] == f"plot: {figure}" and figure.stat().st_size > 10_000
    with pytest.raises(InputError, match=r"^--low, --high: expected 0 < low < high, got 1.0, 0.1$"):
        lr_find(build_spec(SPEC), low=1.0, high=0.1)


def test_on_digits_the_probe_holds_the_grid_best_rate_and_varies_less_than_the_ramp(capsys):
    """Acceptance: experiments/lr_find_check.py against results/lr-find (the fine grid), 10 draws."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "lr_find_check.py"
    module_spec = importlib.util.spec_from_file_location("lr_find_check", path)
    check = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(check)
    assert check.main() == 0  # the range held the grid's best rate in every draw
    out = capsys.readouterr().out
    assert "the probe's range held the grid's best learning rate in 10 of 10 draws" in out
    spreads = {line.split(":")[0]: line for line in out.splitlines() if "spread over the 10 draws" in line}
    minimum = float(spreads["probe"].split("minimum x")[1].split(",")[0])
    ramp_minimum = float(spreads["ramp"].split("minimum x")[1].split(",")[0])
    assert minimum <= 2.0 and ramp_minimum > minimum
