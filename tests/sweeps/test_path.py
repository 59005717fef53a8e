"""Regularization paths (search.method = "path"): warm starts, the journal, resuming, L1's zeros."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxreg.report import load_curves, store
from jaxreg.report.folder import load_folder
from jaxreg.report.plots import _path, plot_dir, save_figure
from jaxreg.sweeps import build_spec, executor as executor_module, run_sweep
from jaxreg.sweeps.executor import Executor
from jaxreg.sweeps.path import strengths

PATH = {
    "name": "path",
    "data": {"dataset": "blobs", "n_val": 100, "n_test": 100},
    "model": {"hidden": [8], "init_scale": 1.0},
    "train": {"loss": "bce", "optimizer": "momentum", "epochs": 8, "eval_every": 2, "batch_size": 25},
    "hparams": {"learning_rate": {"values": [0.05, 0.1]}, "momentum": 0.9},
    "search": {"method": "path", "seeds": 2, "path_max": 0.05, "path_ratio": 0.5, "path_points": 3,
               "path_epochs": 4, "chunk_size": 2},
    "output": {"params": True, "plots": False},
}


def spec_of(output=None, **search):
    return build_spec({**PATH, "search": {**PATH["search"], **search}, "output": output or PATH["output"]})


def by_key(records):
    return {(r["config_id"], r["seed"]): r for r in records}


class Killed(Exception):
    pass


def test_strengths_fall_by_the_ratio_from_the_largest():
    assert strengths({"path_max": 0.05, "path_ratio": 0.5, "path_points": 3}) == [0.05, 0.025, 0.0125]


def test_each_point_is_journaled_with_its_position_and_warm_start(tmp_path):
    records = run_sweep(spec_of(), tmp_path, progress=False)
    assert len(records) == 3 * 2 * 2  # points x learning rates x seeds
    journal = store.read_journal(tmp_path)
    assert [r["path_point"] for r in journal] == [0] * 4 + [1] * 4 + [2] * 4  # point by point, strongest first
    keyed = by_key(journal)
    for r in journal:
        k = r["path_point"]
        assert r["path_strength"] == r["hparams"]["l2"] == r["point"]["l2"] == 0.05 * 0.5**k
        assert r["trained_epochs"] == (8 if k == 0 else 4)
        if k == 0:
            assert r["warm_start"] is None
            continue
        before = keyed[r["warm_start"], r["seed"]]  # the same member (learning rate, seed) one point before
        assert before["path_point"] == k - 1 and before["hparams"]["learning_rate"] == r["hparams"]["learning_rate"]
    assert not (tmp_path / store.CHECKPOINT).exists()
    # a rerun of a finished path trains nothing
    assert run_sweep(spec_of(), tmp_path, progress=False) == records
    # path.png with saved params: a panel per layer (weights_hist.png is another plot's business)
    figure = _path(load_folder(tmp_path))
    assert [ax.get_title() for ax in figure.axes if "dense_1" in ax.get_title()] == \
        ["dense_1: weight norm", "dense_1: fraction of zero weights"]
    save_figure(figure, tmp_path / "path.png")


def test_point_k_starts_from_the_params_point_k_minus_1_returned_bitwise(tmp_path, monkeypatch):
    """Every member of every vmapped chunk: the init the compiled program gets is, leaf for leaf,
    the params (and model state) journaled for the same member at the point before."""
    started = []
    advance = executor_module.advance_chunk

    def recording(runner, variant, trials, members, until, ask, **kw):
        if ask.starts and members[0] is None:
            calls = []

            class Spy:
                def __getattr__(self, name):
                    return getattr(runner, name)

                def advance(self, seeds, hparams, init, carry, blocks, *args, **kwargs):
                    if blocks.start == 0:
                        calls.append(jax.tree_util.tree_map(np.array, init))
                    return runner.advance(seeds, hparams, init, carry, blocks, *args, **kwargs)

            out = advance(Spy(), variant, trials, members, until, ask, **kw)
            started.append(([t.key for t in trials], calls[0]))
            return out
        return advance(runner, variant, trials, members, until, ask, **kw)

    monkeypatch.setattr(executor_module, "advance_chunk", recording)
    run_sweep(spec_of(), tmp_path, progress=False)
    keyed = by_key(store.read_journal(tmp_path))
    assert len(started) == 4  # 2 points after the first, 2 chunks of 2 members each
    checked = 0
    for keys, init in started:
        for i, key in enumerate(keys):
            origin = keyed[key]["warm_start"], key[1]
            saved = load_curves(tmp_path, *origin)
            for path, leaf in jax.tree_util.tree_flatten_with_path(init.params)[0]:
                returned = saved["params/" + jax.tree_util.keystr(path)]
                assert returned.dtype == leaf.dtype and np.array_equal(returned, leaf[i])
                checked += 1
    assert checked == 4 * 2 * 4  # chunks x members x leaves (2 layers, w and b)


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_path_killed_at_each_kept_state_resumes_to_the_same_journal(tmp_path, monkeypatch, when):
    """Each run killed just after (or just before) one of its first writes of checkpoint.npz
    (kept after every segment and every journal write), run again and again until one ends:
    the journal and every curves file are bitwise those of one uninterrupted run. A rerun's
    first write may keep what was kept already (a chunk journaled before the kill), so the
    write killed moves later every third run, or a run might never get past it."""
    run_sweep(spec_of(), tmp_path / "reference", progress=False)
    expected = (tmp_path / "reference" / store.JOURNAL).read_bytes()
    curves = {p.name: p.read_bytes() for p in (tmp_path / "reference" / store.CURVES).iterdir()}
    keep = Executor.keep
    out, kills = tmp_path / "out", 0
    while True:
        calls = {"n": 0}

        def killing(self, segment, stop=2 + kills // 3):
            calls["n"] += 1
            if when == "before" and calls["n"] == stop:
                raise Killed
            keep(self, segment)
            if when == "after" and calls["n"] == stop:
                raise Killed

        monkeypatch.setattr(Executor, "keep", killing)
        try:
            run_sweep(spec_of(), out, progress=False, executor=Executor(checkpoint_seconds=0.0))
            break
        except Killed:
            kills += 1
            assert kills < 60, "the reruns made no progress"
    assert kills >= 6  # 16 states are kept in one run: killed mid-chunk, between chunks and between points
    assert (out / store.JOURNAL).read_bytes() == expected
    assert {p.name: p.read_bytes() for p in (out / store.CURVES).iterdir()} == curves
    assert not (out / store.CHECKPOINT).exists()


def test_a_path_does_not_grow_into_another_path(tmp_path):
    from jaxreg.errors import InputError

    run_sweep(spec_of(path_points=2), tmp_path, progress=False)
    with pytest.raises(InputError, match="a path does not grow"):
        run_sweep(spec_of(path_points=3), tmp_path, progress=False)


def test_a_proximal_l1_path_lets_weights_leave_zero_one_by_one(tmp_path):
    """A lasso path of a linear softmax classifier on digits (64 x 10 weights), proximal L1, from
    a strength that keeps nearly every weight at exactly zero down by 0.6: the fraction of zeros
    (mean over seeds) falls at every point, a few weights at a time, never all at once. (A
    hidden ReLU layer would not do: a network whose weights are all zero is a stationary point,
    and a path warm-started from it stays there.)"""
    raw = {"name": "lasso", "data": {"dataset": "digits", "n_train": 300}, "model": {"hidden": []},
           "train": {"loss": "cross_entropy", "optimizer": "sgd", "l1_mode": "proximal", "epochs": 40,
                     "eval_every": 10, "batch_size": 50},
           "hparams": {"learning_rate": 0.1},
           "search": {"method": "path", "seeds": 2, "path_penalty": "l1", "path_max": 0.1, "path_ratio": 0.6,
                      "path_points": 8, "path_epochs": 20},
           "output": {"plots": False}}
    records = run_sweep(build_spec(raw), tmp_path, progress=False)
    zeros = np.zeros(8)
    for r in records:
        zeros[r["path_point"]] += r["metrics"]["zero_fraction"] / 2
    assert zeros[0] > 0.95 and zeros[-1] < 0.5
    steps = -np.diff(zeros)
    assert np.all(steps > 0) and np.all(steps < 0.25)  # every point frees some weights, none frees most


def test_an_elastic_net_path_sweeps_its_mixes_in_one_batch(tmp_path):
    records = run_sweep(spec_of(path_penalty="elastic_net", path_mix=[0.0, 0.5], path_points=2,
                                output={"params": False, "plots": False}), tmp_path, progress=False)
    assert len(records) == 2 * 2 * 2 * 2  # points x mixes x learning rates x seeds
    for r in records:
        strength, mix = r["path_strength"], r["path_mix"]
        assert r["hparams"]["l1"] == mix * strength and r["hparams"]["l2"] == (1 - mix) * strength
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["spec"]["search"]["path_mix"] == [0.0, 0.5]
    # without saved params, path.png draws the journal's weight norm and zero fraction of all weights
    assert tmp_path / "path.png" in plot_dir(tmp_path)


def test_the_best_of_a_path_without_saved_params_is_not_retrained_from_scratch(tmp_path):
    """A warm-started trial trained alone would start from the init: other params. Without saved
    params, asking for the best's params says so (train_loss: the weakest, last point is best)."""
    from jaxreg.errors import InputError
    from jaxreg.sweeps.trained import best_params

    run_sweep(spec_of(path_points=2, metric="train_loss", output={"params": False, "plots": False}), tmp_path,
              progress=False)
    with pytest.raises(InputError, match=r"^DIR: expected saved params for a trial of a path warm-started"):
        best_params(tmp_path, build_spec=build_spec)
