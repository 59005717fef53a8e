"""Reading cost curves: a confusion table of jaxreg.diagnose on real runs configured to show each
failure mode and on synthetic curves, a healthy run with no finding, and the findings that
`jaxreg show` prints."""

from __future__ import annotations

import numpy as np
import pytest

import jaxreg
from jaxreg import TrainConfig, make_hparams, stack_hparams, train_batch
from jaxreg import data as data_lib
from jaxreg.diagnosis import Thresholds, diagnose
from jaxreg.models import mlp

E = np.arange(1, 41)


def labels(curves, **kw):
    return [f.label for f in diagnose(curves, **kw)]


# --- synthetic curves: one per label, and a healthy one -------------------------------------

HEALTHY = {"train_loss": 2.3 * np.exp(-E / 8) + 0.05, "val_loss": 2.3 * np.exp(-E / 8) + 0.12,
           "train_accuracy": np.minimum(0.99, 0.5 + E / 40)}
SYNTHETIC = {
    "lr_too_big": {"train_loss": 2.4 + 0.05 * np.sin(E * 1.7), "val_loss": 2.4 + 0.05 * np.sin(E * 1.7),
                   "train_accuracy": np.full(40, 0.1)},
    "slow_start": {"train_loss": np.where(E < 15, 2.3, 2.3 * np.exp(-(E - 15) / 5) + 0.05),
                   "val_loss": np.where(E < 15, 2.3, 2.3 * np.exp(-(E - 15) / 5) + 0.1),
                   "train_accuracy": np.where(E < 15, 0.1, 0.99)},
    "plateau": {"train_loss": np.maximum(1.2, 2.3 * np.exp(-E / 3)), "val_loss": np.maximum(1.6, 2.3 * np.exp(-E / 3)),
                "train_accuracy": np.minimum(0.6, E / 10)},
    "overfitting": {"train_loss": 2.3 * np.exp(-E / 5), "val_loss": 0.3 + 0.002 * (E - 15) ** 2,
                    "train_accuracy": np.minimum(1.0, E / 10)},
    "underfitting": {"train_loss": 2.3 - 0.02 * E, "val_loss": 2.31 - 0.02 * E, "train_accuracy": 0.1 + 0.01 * E},
}


def test_a_healthy_curve_has_no_finding():
    assert labels(HEALTHY) == []


@pytest.mark.parametrize("label", list(SYNTHETIC))
def test_each_label_fires_on_its_synthetic_curve(label):
    assert labels(SYNTHETIC[label], reference=0.99) == [label]


def test_underfitting_is_judged_only_against_what_the_model_can_fit():
    # 50% training accuracy, a small gap, no progress at the end
    flat = {"train_loss": np.maximum(1.0, 2.3 - 0.1 * E), "val_loss": np.maximum(1.05, 2.35 - 0.1 * E),
            "train_accuracy": np.minimum(0.5, 0.1 + 0.02 * E)}
    assert labels(flat) == ["plateau"]                       # no reference: no underfitting
    assert labels(flat, reference=0.99) == ["underfitting"]  # not also a plateau: one label at the end
    assert "bigger network" in diagnose(flat, reference=0.99)[0].text
    # 86% where the best config reaches 88% (overlapping classes): fits as well as the model can
    close = {**flat, "train_accuracy": np.minimum(0.86, 0.1 + 0.05 * E)}
    assert labels(close, reference=0.88) == []
    assert labels(close, reference=0.99) == ["underfitting"]
    # without accuracies, against a reference loss
    losses = {k: v for k, v in flat.items() if k != "train_accuracy"}
    assert labels(losses, reference=0.9) == []
    assert labels(losses, reference=0.3) == ["underfitting"]


def test_one_label_per_phase():
    # the validation loss rises while the training loss falls slowly and stays high: overfitting
    # alone, not also underfitting or a plateau for the same epochs
    both = {"train_loss": 1.2 - 0.001 * E, "val_loss": 1.0 + 0.002 * (E - 10) ** 2 / 10,
            "train_accuracy": np.full(40, 0.5)}
    assert labels(both, reference=0.99) == ["overfitting"]
    # a learning rate too big is the whole run: nothing else is read in it
    jumpy = {k: np.asarray(v) for k, v in SYNTHETIC["lr_too_big"].items()}
    assert labels(jumpy, reference=0.99) == ["lr_too_big"]
    # a diverged run likewise
    assert labels(SYNTHETIC["overfitting"], diverged_epoch=30) == ["diverged"]
    # still catching up after a slow start: the start is the cause, not also underfitting
    late = np.where(E < 15, 2.3, 2.3 * np.exp(-(E - 15) / 30))
    catching_up = {"train_loss": late, "val_loss": late * 1.02, "train_accuracy": np.where(E < 15, 0.1, 0.5 + E / 200)}
    assert labels(catching_up, reference=0.99) == ["slow_start"]
    assert labels({**catching_up, "train_loss": np.where(E < 15, 2.3, np.maximum(1.5, late)),
                   "val_loss": np.where(E < 15, 2.3, np.maximum(1.5, late)) * 1.02}, reference=0.99) == \
        ["slow_start", "underfitting"]  # converged short of the reference: underfitting too


def test_a_plateau_after_the_learning_rate_shrank_is_a_decay_too_soon():
    curves = SYNTHETIC["plateau"]
    assert "plateau" in labels(curves, learning_rate=lambda e: 0.1)
    found = diagnose(curves, learning_rate=lambda e: 0.1 * 0.05 ** e)
    assert [f.label for f in found][:1] == ["decayed_too_soon"]
    # flat from epoch 2 on, when the learning rate (after 1 epoch of decay) was 0.05 of its first
    assert found[0].epoch == 2 and found[0].numbers["lr_fraction"] == pytest.approx(0.05)


def test_findings_carry_their_epochs_and_numbers_and_thresholds_override():
    found = diagnose(SYNTHETIC["overfitting"])
    overfit = next(f for f in found if f.label == "overfitting")
    assert overfit.epoch == 15 and overfit.end == 40
    assert overfit.numbers["best_val_loss"] == pytest.approx(0.3)
    assert overfit.numbers["last_val_loss"] == pytest.approx(0.3 + 0.002 * 25 ** 2)
    assert "overfitting" not in labels(SYNTHETIC["overfitting"], thresholds=Thresholds(overfit_rise=5.0))
    assert labels({"train_loss": [np.nan] * 5}, diverged_epoch=2) == ["diverged"]


def test_curves_cut_short_by_a_stop_are_read_up_to_the_stop():
    stopped = {k: np.where(E <= 20, v, np.nan) for k, v in HEALTHY.items()}
    assert labels(stopped) == []


# --- real runs, configured to show each failure mode -----------------------------------------

@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits", key=0), data_lib.load("digits", key=0, n_train=100)


def _run(net, data, *, epochs=60, optimizer="sgd", **hp):
    config = TrainConfig(model=net, epochs=epochs, batch_size=20, optimizer=optimizer)
    result = train_batch(config, data)(np.arange(2), stack_hparams([make_hparams(net, **hp)] * 2))
    rate, decay = hp["learning_rate"], hp.get("lr_decay", 0.0)
    # the reference: these networks fit the digits' training set (the healthy run reaches 100%)
    return [labels({k: v[s] for k, v in result.curves.items()}, diverged_epoch=int(result.diverged_epoch[s]),
                   learning_rate=lambda e: rate * (1 - decay) ** e, reference=1.0) for s in range(2)]


def test_confusion_table_on_real_runs(digits):
    full, small = digits
    table = {
        "healthy": _run(mlp((64, 64, 10)), full, learning_rate=0.05),
        "lr 5": _run(mlp((64, 64, 10)), full, learning_rate=5.0),
        "init scale 0.01": _run(mlp((64, 64, 64, 10), init="uniform", init_scale=0.01), full, learning_rate=0.05),
        "512 units on 100 images": _run(mlp((64, 512, 10)), small, epochs=150, optimizer="adam",
                                        learning_rate=0.003, momentum=0.9),
        "lr decay 0.5 per epoch": _run(mlp((64, 64, 10)), full, learning_rate=0.01, lr_decay=0.5),
        "one hidden unit": _run(mlp((64, 1, 10)), full, learning_rate=0.05),
        "lr 1e30": _run(mlp((64, 64, 10)), full, epochs=5, learning_rate=3e38),
    }
    expected = {"healthy": None, "lr 5": "lr_too_big", "init scale 0.01": "slow_start",
                "512 units on 100 images": "overfitting", "lr decay 0.5 per epoch": "decayed_too_soon",
                "one hidden unit": "underfitting", "lr 1e30": "diverged"}
    for run, per_seed in table.items():
        for found in per_seed:
            if expected[run] is None:
                assert found == [], (run, found)
            else:
                assert expected[run] in found, (run, found)
    # the labels are specific: none of the configured failures is read as overfitting but its own
    assert all("overfitting" not in found for run, seeds in table.items() for found in seeds
               if run != "512 units on 100 images")


def test_show_prints_the_findings(tmp_path, capsys):
    from jaxreg import cli

    spec = {"name": "diag", "data": {"dataset": "digits", "n_train": 100},
            "model": {"hidden": [256]}, "train": {"epochs": 60, "optimizer": "adam", "batch_size": 20},
            "hparams": {"learning_rate": {"values": [0.001, 0.003, 0.01]}, "momentum": 0.9},
            "search": {"seeds": 2}, "output": {"plots": False}}
    jaxreg.sweep(spec, out=tmp_path / "diag", progress=False)
    capsys.readouterr()
    assert cli.main(["show", str(tmp_path / "diag")]) in (0, None)
    out = capsys.readouterr().out
    assert "findings (jaxreg.diagnose; thresholds in jaxreg.diagnosis.Thresholds):" in out
    assert "seeds: overfitting: validation loss lowest at epoch" in out
    # curves.png says it in its legend, with the seed count
    from jaxreg.report import plots
    from jaxreg.report.folder import load_folder

    folder = load_folder(tmp_path / "diag")
    from jaxreg.report.findings import finding_lines

    every = finding_lines(folder, limit=100)
    capped = finding_lines(folder, limit=2)
    if len(every) > 2:
        assert capped[:1] == every[:1] and capped[1] == f"... and {len(every) - 1} more findings (jaxreg.report." \
            f"findings.finding_lines with a larger limit lists them)"
    assert len({line.split("seeds: ")[1].split(":")[0] for line in every if "seeds: " in line}) == \
        len([line for line in every if "seeds: " in line])  # one line a label
    figure = plots._curves(folder)
    labels_drawn = [line.get_label() for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert any("[overfitting 1/2]" in label for label in labels_drawn), labels_drawn


# --- jaxreg sanity ---------------------------------------------------------------------------

def test_sanity_passes_on_the_demo_and_fails_in_words_for_one_hidden_unit(capsys):
    from pathlib import Path

    from jaxreg import cli

    demo = str(Path(__file__).resolve().parents[2] / "sweeps" / "demo.toml")
    assert cli.main(["sanity", demo, "--seeds", "2", "--epochs", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("sanity: 100 training examples, regularization off, 2 seeds, 100 epochs, adam at learning "
                      "rate 0.003: best training accuracy 100.0%, 100.0% (passes: expected 100% on every seed)")
    assert out[1].startswith("loss at init ") and out[1].endswith("log(10) = 2.303: as expected")
    assert cli.main(["sanity", demo, "--seeds", "2", "--epochs", "100", "--set", "model.hidden=[1]"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "(fails: expected 100% on every seed)" in out[0]
    assert out[2].startswith("seed 0: ") and out[3].startswith("seed 1: ")
    assert out[-1].startswith("a network that cannot fit 100 examples will not fit the data")


def test_sanity_turns_every_regularizer_off_and_flags_a_large_init():
    from jaxreg.sweeps import build_spec
    from jaxreg.sweeps.sanity import sanity_check

    spec = build_spec({"data": {"dataset": "digits"}, "model": {"hidden": [64], "init": "uniform", "init_scale": 3.0},
                       "train": {"epochs": 5}, "hparams": {"learning_rate": 0.01, "l2": 10.0, "dropout": 0.5}})
    result = sanity_check(spec, examples=50, seeds=1, epochs=20)
    assert result.chance_loss == pytest.approx(np.log(10))
    assert result.init_loss[0] > 1.5 * np.log(10)
    assert "the init scale may be too large" in result.lines[1]
    # L2 at 10 and dropout 0.5 would keep this network from fitting: sanity trains without them
    spec = build_spec({"data": {"dataset": "digits"}, "model": {"hidden": [64]}, "train": {"optimizer": "adam"},
                       "hparams": {"learning_rate": 0.01, "l2": 10.0, "dropout": 0.5, "rotate": 30.0}})
    assert sanity_check(spec, examples=50, seeds=1, epochs=40).passed


def test_sweep_findings_say_an_edge_best_value_may_lie_past_it_unless_it_is_off():
    from types import SimpleNamespace

    from jaxreg.report.findings import sweep_findings

    def folder(best_l2, best_lr):
        rows = [{"config_id": f"c{i}", "case": None, "l2": l2, "learning_rate": lr, "val_loss_mean": loss,
                 "val_loss_std": 0.0}
                for i, (l2, lr, loss) in enumerate([(best_l2, best_lr, 0.1), (0.01, 0.03, 0.2), (0.1, 0.01, 0.3),
                                                    (1.0, 0.02, 0.4)])]
        trials = {r["config_id"]: [{"seed": 0, "metrics": {"val_loss": r["val_loss_mean"]}}] for r in rows}
        return SimpleNamespace(records=[], trials=trials, metric="val_loss", rows=rows, minimize=True,
                               numeric=["l2", "learning_rate"], scales=None)

    assert sweep_findings(folder(0.0, 0.1)) == [
        "the best config has l2 = 0 (off), the lowest tried (of 0 to 1): no l2 tried did better than none",
        "the best config sits at the highest learning_rate tried (0.1, of 0.01 to 0.1): the best value may lie "
        "above it; search past it"]
    assert sweep_findings(folder(0.001, 0.015)) == [
        "the best config sits at the lowest l2 tried (0.001, of 0.001 to 1): the best value may lie below it; "
        "search past it"]


def test_a_close_call_between_the_top_two_is_judged_on_their_shared_seeds_as_show_prints_it():
    """The finding says more seeds would tell the top two apart only when the paired bootstrap
    that show prints leaves it open (0.1 < P < 0.9): a best that wins on every seed by less than
    the seeds' spread is no close call (the finding said it was, beside P = 1.00)."""
    from types import SimpleNamespace

    from jaxreg.report.findings import sweep_findings
    from jaxreg.report.stats import paired_bootstrap

    def folder(best, second):
        trials = {cid: [{"seed": s, "metrics": {"val_loss": v}} for s, v in enumerate(values)]
                  for cid, values in (("a", best), ("b", second))}
        rows = [{"config_id": cid, "case": None, "val_loss_mean": float(np.mean(v)), "val_loss_std": float(np.std(v, ddof=1))}
                for cid, v in (("a", best), ("b", second))]
        return SimpleNamespace(records=[], trials=trials, metric="val_loss", rows=rows, minimize=True, numeric=[],
                               scales=None)

    steady = ([0.10, 0.20, 0.30, 0.40], [0.11, 0.21, 0.31, 0.41])  # better on every seed, spread 0.13
    assert sweep_findings(folder(*steady)) == []
    mixed = ([0.10, 0.25, 0.30, 0.40], [0.14, 0.21, 0.33, 0.39])
    p = paired_bootstrap(dict(enumerate(mixed[0])), dict(enumerate(mixed[1])), maximize=False)
    assert 0.1 < p < 0.9
    assert sweep_findings(folder(*mixed)) == [
        f"the top two configs differ by 0.005 in val_loss, and the best beats the runner-up with probability "
        f"{p:.2f} (paired bootstrap over 4 shared seeds): more seeds would tell them apart"]


def test_unscaled_features_are_said_once_for_the_cases_that_share_them():
    from jaxreg.report.findings import scale_findings

    wide = {"feature_std": [0.1, 5000.0], "standardized": False}
    assert scale_findings({"a": wide, "b": wide, "c": {**wide, "standardized": True},
                           "d": {"feature_std": [1.0, 99.0], "standardized": False}}) == [
        "the features of a, b differ in scale by 5e+04x (standard deviations 0.1 to 5e+03) and data.standardize "
        "is off: set data.standardize = true (gradient descent on unscaled features is slow and favours the largest)"]
    assert scale_findings({"": wide})[0].startswith("the features differ in scale by 5e+04x")
    assert scale_findings(None) == [] and scale_findings({"": {"feature_std": None, "standardized": False}}) == []
