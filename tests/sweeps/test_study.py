"""The study loop: a strategy written here, in the test file, driven through the real executor
and store by ``run_sweep(..., strategy=...)``; nothing outside this file knows it.

The strategy keeps the best half of the configs (by the mean over seeds of ``val_loss``) every
two epochs, in chunks of a fixed size. Its survivors continue from where they were, so each
one's numbers must be bitwise those of the same config trained straight through (a member's
numbers depend only on its hparams, seed, chunk size and segment length). A run killed between
two of its asks resumes from the one checkpoint and writes the same journal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxreg.report import store
from jaxreg.sweeps import build_spec, run_sweep
from jaxreg.sweeps.executor import Executor, Progress
from jaxreg.sweeps.strategies import Ask, Told, Trial, config_id
from test_sweep import tiny

SPEC = dict(model={"hidden": [8]}, train={"optimizer": "adam", "epochs": 8, "eval_every": 2, "batch_size": 20},
            hparams={"learning_rate": {"log_uniform": [1e-4, 0.5]}, "l2": {"log_uniform": [1e-5, 1e-2]}},
            search={"method": "random", "samples": 8, "seeds": 2, "chunk_size": 4}, output={"plots": False})
CHUNK = 4


class BestHalfEveryTwoEpochs:
    """Keeps the best half of the configs every two epochs; the others leave with ``left_at``."""

    def __init__(self, spec, variant, chunk_size):
        self.trials = tuple(Trial(config_id(c), c, s) for c in variant.space.configs(0) for s in spec.seeds)
        self.epochs, self.seeds = variant.config.epochs, len(spec.seeds)
        self.alive, self.epoch, self.told = list(self.trials), 0, {}

    def ask(self, history):
        if not self.alive:
            return None
        return Ask(tuple(self.alive), self.epoch + 2, CHUNK, segment=1, label="best half", retrain=True)

    def tell(self, history, outcomes):
        if not outcomes and not self.told:  # all journaled already
            self.alive = []
            return Told({})
        self.told.update((o.trial.key, o) for o in outcomes)
        if len(self.told) < len(self.alive):
            return Told({})
        self.epoch += 2
        means = {}
        for trial in self.alive:
            means.setdefault(trial.config_id, []).append(self.told[trial.key].final["val_loss"])
        ranked = sorted(means, key=lambda cid: np.mean(means[cid]))
        kept = set(ranked[:len(ranked) // 2]) if self.epoch < self.epochs else set()
        leaving = {t.key: {"left_at": self.epoch} for t in self.alive if t.config_id not in kept}
        self.alive, self.told = [t for t in self.alive if t.config_id in kept], {}
        return Told(leaving, decided=True)

    def position(self):
        return ["best half", [t.key for t in self.trials]]

    def state(self):
        return {"epoch": self.epoch, "alive": [list(t.key) for t in self.alive]}

    def restore(self, state):
        alive = {tuple(key) for key in state["alive"]}
        self.epoch, self.alive, self.told = state["epoch"], [t for t in self.trials if t.key in alive], {}
        return self.ask({})


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    spec = tiny(**SPEC)
    journal = run_sweep(build_spec(spec), out / "run", progress=False, strategy=BestHalfEveryTwoEpochs)
    return spec, out, journal


def test_a_strategy_of_the_test_file_halves_the_configs_every_two_epochs(studied):
    _, _, journal = studied
    assert len(journal) == 16 and len({(r["config_id"], r["seed"]) for r in journal}) == 16
    left = {}
    for r in journal:
        left.setdefault(r["left_at"], set()).add(r["config_id"])
    assert {epoch: len(configs) for epoch, configs in left.items()} == {2: 4, 4: 2, 6: 1, 8: 1}
    # At each ask, the configs that went on had a lower mean val_loss (at that epoch, read from
    # their curves) than every config that left; a leaver's metrics are those at its last ask.
    curves = {(r["config_id"], r["seed"]): store.load_curves(studied[1] / "run", r["config_id"], r["seed"])["curve/val_loss"]
              for r in journal}
    for epoch in (2, 4, 6):
        mean = lambda cid: np.mean([c[epoch // 2 - 1] for (i, _), c in curves.items() if i == cid])
        gone = {r["config_id"] for r in journal if r["left_at"] == epoch}
        on = {r["config_id"] for r in journal if r["left_at"] > epoch}
        assert max(mean(cid) for cid in on) < min(mean(cid) for cid in gone)
    for r in journal:
        assert r["metrics"]["val_loss"] == pytest.approx(curves[(r["config_id"], r["seed"])][r["left_at"] // 2 - 1], rel=1e-6)


def test_survivors_are_bitwise_the_same_configs_trained_straight_through(studied, tmp_path):
    spec, _, journal = studied
    survivor = [r for r in journal if r["left_at"] == 8]
    grid = {**spec, "search": {"method": "grid", "seeds": 2, "chunk_size": CHUNK}, "hparams": {}}
    grid["cases"] = {"c": {"learning_rate": survivor[0]["hparams"]["learning_rate"], "l2": survivor[0]["hparams"]["l2"]}}
    straight = run_sweep(build_spec(grid), tmp_path / "grid", progress=False)
    by_seed = {r["seed"]: r for r in straight}
    for r in survivor:
        assert r["metrics"] == by_seed[r["seed"]]["metrics"]
        assert (r["best_epoch"], r["stopped_epoch"]) == (by_seed[r["seed"]]["best_epoch"], by_seed[r["seed"]]["stopped_epoch"])
        np.testing.assert_array_equal(store.load_curves(tmp_path / "grid", by_seed[r["seed"]]["config_id"], r["seed"])["curve/val_loss"],
                                      store.load_curves(studied[1] / "run", r["config_id"], r["seed"])["curve/val_loss"])


def test_leavers_keep_nan_after_the_epoch_they_left(studied):
    _, out, journal = studied
    for r in journal:
        curve = store.load_curves(out / "run", r["config_id"], r["seed"])["curve/val_loss"]
        evaluations = r["left_at"] // 2
        assert np.isfinite(curve[:evaluations]).all() and np.isnan(curve[evaluations:]).all()


def test_a_run_killed_between_asks_resumes_from_the_checkpoint_and_writes_the_same_journal(studied, tmp_path,
                                                                                           monkeypatch):
    spec, out, _ = studied
    whole = (out / "run" / store.JOURNAL).read_bytes()
    appends, original = [], store.Store.append

    def die_at_third(self, records):
        appends.append(len(records))
        if len(appends) == 3:
            raise KeyboardInterrupt
        original(self, records)

    monkeypatch.setattr(store.Store, "append", die_at_third)
    progress = Progress(bars=False)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(build_spec(spec), tmp_path / "k", progress=progress, strategy=BestHalfEveryTwoEpochs,
                  executor=Executor(checkpoint_seconds=math.inf))
    assert progress.kept() == "kept 12 trials in the journal, and 4 members in training up to epoch 4 in checkpoint.npz"
    monkeypatch.setattr(store.Store, "append", original)
    logged = []
    run_sweep(build_spec(spec), tmp_path / "k", progress=True, log=logged.append, strategy=BestHalfEveryTwoEpochs)
    assert any("resumed a chunk of 4 trials from checkpoint.npz at evaluation 2 of 4" in line for line in logged), logged
    assert (tmp_path / "k" / store.JOURNAL).read_bytes() == whole
    assert not (tmp_path / "k" / store.CHECKPOINT).exists()


def test_the_architecture_page_shows_the_loop_as_the_code_has_it():
    import inspect
    import re
    from pathlib import Path

    from jaxreg.sweeps.run import study

    page = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    shown = re.search(r"## The study loop.*?```python\n(.*?)```", page, re.S).group(1)
    source = inspect.getsource(study)
    code = re.sub(r'    """.*?"""\n', "", source, count=1, flags=re.S)
    assert shown == code
    assert len(shown.splitlines()) <= 10


@pytest.mark.parametrize("damage, why", [("shapes", "its arrays have other shapes"), ("truncated", "it is damaged")])
def test_a_checkpoint_that_cannot_be_used_is_said_and_its_members_train_again(studied, tmp_path, monkeypatch,
                                                                              damage, why):
    spec, out, _ = studied
    whole = (out / "run" / store.JOURNAL).read_bytes()
    appends, original = [], store.Store.append

    def die_at_second(self, records):  # after the first ask's leavers, its members left kept
        appends.append(len(records))
        if len(appends) == 2:
            raise KeyboardInterrupt
        original(self, records)

    monkeypatch.setattr(store.Store, "append", die_at_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(build_spec(spec), tmp_path / "d", progress=False, strategy=BestHalfEveryTwoEpochs)
    monkeypatch.setattr(store.Store, "append", original)
    kept = tmp_path / "d" / store.CHECKPOINT
    if damage == "truncated":
        kept.write_bytes(kept.read_bytes()[:300])
    else:
        with np.load(kept) as file:
            arrays = {name: file[name] for name in file.files}
        with open(kept, "wb") as handle:
            np.savez(handle, **{**arrays, "carry/0": arrays["carry/0"][:1]})
    logged = []
    run_sweep(build_spec(spec), tmp_path / "d", progress=True, log=logged.append, strategy=BestHalfEveryTwoEpochs)
    assert any(f"checkpoint.npz not used ({why}): its members train again" in line for line in logged), logged
    assert (tmp_path / "d" / store.JOURNAL).read_bytes() == whole
    assert not kept.exists()
