"""Optuna's samplers by ask and tell (search.method tpe, cmaes): the axes as distributions, seeded
and replayable rounds, what a failed config is told, one compiled program for every round, a
journal with every trial once, and a study that a killed run's rerun continues."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optuna
import pytest

from jaxreg.errors import InputError
from jaxreg.report import store
from jaxreg.sweeps.executor import Executor
from jaxreg.sweeps import Space, build_spec, config_id, parse_axis, run_sweep, search_rounds
from jaxreg.sweeps import samplers
from jaxreg.sweeps import run as jaxreg_run
from jaxreg.sweeps.space import MODEL_METHODS
from test_sweep import forget_compiled_programs, tiny

ROOT = Path(__file__).resolve().parents[2]


def _space(method="tpe", samples=8, seed=0, **axes):
    axes = axes or {"lr": {"log_uniform": [1e-4, 1.0]}}
    kind = samplers.ModelSpace if method in MODEL_METHODS else Space
    return kind({name: parse_axis(name, raw) for name, raw in axes.items()}, method=method,
                round_method="random", samples=samples, seed=seed)


def test_every_axis_form_becomes_a_distribution_and_asked_values_stay_in_it():
    space = _space(samples=30, lr={"log_uniform": [1e-4, 1.0]}, l2={"logspace": [1e-5, 1e-2, 4]},
                   momentum={"uniform": [0.5, 0.99]}, patience={"int": [2, 7]},
                   dropout={"values": [[0.0, 0.5], [0.2, 0.5]]}, l1=0.001)
    kinds = {name: samplers.distribution(axis) for name, axis in space.axes.items() if axis.form != "fixed"}
    assert kinds["lr"].log and kinds["l2"].log and not kinds["momentum"].log
    assert (kinds["l2"].low, kinds["l2"].high) == (1e-5, 1e-2)
    assert isinstance(kinds["patience"], optuna.distributions.IntDistribution)
    assert kinds["dropout"].choices == (0, 1)  # by index: Optuna's choices cannot be lists
    configs = []
    search_rounds(space, lambda cs: configs.extend(cs) or [[0.0]] * len(cs), rounds=2)
    for c in configs:
        assert 1e-4 <= c.hparams["lr"] <= 1.0 and 1e-5 <= c.hparams["l2"] <= 1e-2
        assert 0.5 <= c.hparams["momentum"] <= 0.99
        assert isinstance(c.hparams["patience"], int) and 2 <= c.hparams["patience"] <= 7
        assert c.hparams["dropout"] in ([0.0, 0.5], [0.2, 0.5]) and c.hparams["l1"] == 0.001
        assert set(c.point) == {"lr", "l2", "momentum", "patience", "dropout"}  # the varying axes
    assert {tuple(c.hparams["dropout"]) for c in configs} == {(0.0, 0.5), (0.2, 0.5)}


def _bowl(configs):
    """Seed values around a minimum at lr = 0.01 (in log), noise from the config's own value."""
    out = []
    for c in configs:
        x = math.log10(c.hparams["lr"]) + 2.0
        rng = np.random.default_rng(int(c.hparams["lr"] * 1e9) % 2**32)
        out.append(x * x + 0.05 * rng.standard_normal(3))
    return out


@pytest.mark.parametrize("method", ["tpe", "cmaes", "gp"])
def test_the_rounds_are_seeded_and_replay_identically(method):
    if method == "gp":  # Optuna's GPSampler needs PyTorch, which the test extra leaves out (the bench extra has it)
        pytest.importorskip("torch")
    def run(seed):
        asked = []
        history = search_rounds(_space(method, seed=seed), lambda cs: asked.append(len(cs)) or _bowl(cs), rounds=3)
        return [(c.round, c.hparams) for c, _ in history], asked

    first, asked = run(0)
    assert run(0) == (first, asked)
    assert run(1)[0] != first
    assert [r for r, _ in first] == [0] * 8 + [1] * 8 + [2] * 8 and asked == [8, 8, 8]  # one batch a round
    assert _space(method).configs(0) == [c for c, _ in search_rounds(_space(method), _bowl, rounds=1)]


def test_only_a_model_space_is_searched_by_a_sampler_and_it_lists_its_first_round():
    axes = {"lr": parse_axis("lr", {"log_uniform": [1e-4, 1.0]})}
    with pytest.raises(ValueError, match="jaxreg.sweeps.samplers.ModelSpace"):
        Space(axes, method="tpe", round_method="random")
    with pytest.raises(ValueError, match="expected a method among tpe, cmaes, gp, got 'random'"):
        samplers.ModelSpace(axes, method="random", round_method="random")
    space = _space("tpe")
    first = space.configs(0)
    assert first == samplers.first_round(space) and list(space.iter_configs(0)) == first
    assert space.first() == first[0] and space.count(0) == len(first)
    with pytest.raises(ValueError, match="come from the sampler"):
        space.configs(1)


def test_tpe_beats_random_search_on_a_noisy_log_bowl_with_the_same_budget():
    wins = 0
    for seed in range(10):
        tpe = search_rounds(_space("tpe", seed=seed), _bowl, rounds=3)
        rand = search_rounds(_space("random", samples=24, seed=seed), _bowl, rounds=1)
        truth = lambda history: min((math.log10(c.hparams["lr"]) + 2.0) ** 2 for c, _ in
                                    [min(history, key=lambda item: item[1])])
        wins += truth(tpe) < truth(rand)
    assert wins >= 7, wins


def test_a_config_asked_again_is_trained_once_and_told_its_value_each_time():
    space = _space(samples=6, patience={"values": [3, 5]})
    scored = []
    history = search_rounds(space, lambda cs: scored.extend(cs) or [[float(c.hparams["patience"])] for c in cs],
                            rounds=3)
    assert sorted(c.hparams["patience"] for c in scored) == [3, 5]  # 18 asks, 2 configs
    assert [c.round for c, _ in history] == [0, 0]


def test_a_failed_config_is_told_the_worst_mean_its_study_has_seen(monkeypatch):
    told = []
    original = optuna.study.Study.tell

    def tell(self, trial, values=None, state=None, **kwargs):
        told.append((trial.params["lr"] if hasattr(trial, "params") else None, values, state))
        return original(self, trial, values, state, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "tell", tell)
    # lr above 0.1 "diverges": one of its seeds is NaN; in the first round all of them may.
    score = lambda cs: [[c.hparams["lr"], math.nan] if c.hparams["lr"] > 0.1 else [c.hparams["lr"]] * 2 for c in cs]
    search_rounds(_space(samples=8, lr={"log_uniform": [1e-3, 1.0]}), score, rounds=3)
    for round_start in (0, 8, 16):
        batch = told[round_start:round_start + 8]
        seen = [lr for lr, _, _ in told[:round_start + 8] if lr <= 0.1]
        for lr, value, state in batch:
            if lr > 0.1:
                assert value == max(seen) and state is None
            else:
                assert value == lr
    assert any(lr > 0.1 for lr, _, _ in told)


def test_each_case_is_a_study_of_its_own_asked_in_the_same_batch():
    space = samplers.ModelSpace({"lr": parse_axis("lr", {"log_uniform": [1e-3, 1.0]})}, method="tpe",
                                round_method="random", samples=4,
                                cases={"a": {}, "b": {"l2": parse_axis("l2", {"log_uniform": [1e-5, 1e-2]})}})
    batches = []
    search_rounds(space, lambda cs: batches.append([c.case for c in cs]) or _bowl(cs), rounds=2)
    assert batches == [["a"] * 4 + ["b"] * 4] * 2


def test_a_missing_optuna_is_refused_before_any_compute(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a))
    with pytest.raises(InputError) as error:
        build_spec(tiny(search={"method": "cmaes"}))
    assert str(error.value) == ("search.method: 'cmaes' needs optuna, cmaes (pip install 'jaxreg[optuna]'); "
                                "cmaes is not installed")
    with pytest.raises(InputError, match=r"^search.zoom: expected only with search.method 'coarse_to_fine'"):
        build_spec(tiny(search={"method": "tpe", "zoom": "top_k"}))


# --- a whole sweep ------------------------------------------------------------------------------

TPE = dict(hparams={"learning_rate": {"log_uniform": [1e-3, 0.3]}, "l2": {"log_uniform": [1e-5, 1e-2]}},
           search={"method": "tpe", "rounds": 3, "samples": 4, "seeds": 2, "chunk_size": 4})


def test_a_three_round_tpe_sweep_trains_each_round_as_one_program_and_journals_every_trial_once(tmp_path):
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    spec = tiny(**TPE)
    # Whatever else a sweep compiles (data preparation, small ops) compiles here first.
    run_sweep(build_spec(tiny(model={"hidden": [5]})), tmp_path / "warm", progress=False)
    forget_compiled_programs()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        records = run_sweep(build_spec(spec), tmp_path / "a", progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(compiles) == 1  # the chunk program, once, for every chunk of 3 rounds
    journal = store.read_journal(tmp_path / "a")
    keys = [(r["config_id"], r["seed"]) for r in journal]
    assert len(keys) == len(set(keys)) == len(records) == 3 * 4 * 2
    assert [r["round"] for r in journal] == [0] * 8 + [1] * 8 + [2] * 8
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["runs"][0]["versions"]["optuna"] == optuna.__version__
    # The first round is what plan lists; the later ones were asked from the results.
    assert [r["config_id"] for r in journal[:8:2]] == [config_id(c) for c in build_spec(spec).configs(0)]
    # Rerun: nothing trained, the same journal.
    before = (tmp_path / "a" / "trials.jsonl").read_bytes()
    run_sweep(build_spec(spec), tmp_path / "a", progress=False)
    assert (tmp_path / "a" / "trials.jsonl").read_bytes() == before


def test_a_killed_tpe_sweep_rerun_continues_the_study_as_if_never_killed(tmp_path):
    spec = tiny(**TPE)
    spec["model"], spec["train"] = {"hidden": [64]}, {**spec["train"], "epochs": 120, "eval_every": 10}
    spec["output"] = {"plots": False}
    path = tmp_path / "tpe.toml"
    path.write_text(_toml(spec))
    # Every run is a `jaxreg run` process, as a user's would be (the killed one, its rerun and
    # the uninterrupted one), sharing one compilation cache.
    env = dict(os.environ, JAXREG_CACHE_DIR=str(tmp_path / "xla"))
    command = lambda out: [sys.executable, "-m", "jaxreg", "run", str(path), "--out", str(out)]
    whole = tmp_path / "whole"
    done = subprocess.run(command(whole), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    run = subprocess.Popen(command(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    journal = out / "trials.jsonl"
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:  # until round 1 is journaled
        if journal.exists() and journal.read_text().count("\n") >= 8:
            break
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    _, err = run.communicate()
    assert run.returncode == -signal.SIGKILL, err
    kept = journal.read_text().count("\n")
    assert 8 <= kept < 24
    done = subprocess.run(command(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and f"resumed: {kept} trials were already in" in done.stderr, done.stderr
    assert journal.read_text().count("\n") == 24
    assert journal.read_bytes() == (whole / "trials.jsonl").read_bytes()


def _toml(spec: dict) -> str:
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    lines = [f'name = "{spec["name"]}"']
    for table in ("data", "model", "train", "hparams", "search", "output"):
        lines.append(f"[{table}]")
        lines += [f"{k} = {value(v)}" for k, v in spec.get(table, {}).items()]
    return "\n".join(lines) + "\n"


def test_tpe_on_the_demo_spec_asks_each_case_per_round_and_journals_every_trial_once(tmp_path, monkeypatch):
    from jaxreg.sweeps import load_spec

    overrides = ['search.method="tpe"', "search.rounds=3", "search.samples=3", "search.seeds=2",
                 "train.epochs=8", "output.plots=false"]
    spec = load_spec(ROOT / "sweeps" / "demo.toml", overrides)
    batches = []
    original = Executor._pending

    def counted(self, ask):
        pending = original(self, ask)
        if pending:
            batches.append(len(pending))
        return pending

    monkeypatch.setattr(Executor, "_pending", counted)
    run_sweep(spec, tmp_path / "demo", progress=False)
    journal = store.read_journal(tmp_path / "demo")
    keys = [(r["config_id"], r["seed"]) for r in journal]
    assert len(keys) == len(set(keys))
    assert len(batches) == 3 and sum(batches) == len(journal)  # one batch a round
    by_case = {}
    for r in journal:
        by_case.setdefault(r["case"], set()).add(r["config_id"])
    # a case without axes is one config, asked every round and trained once; l2 is asked 3 a round
    assert len(by_case["none"]) == len(by_case["early_stopping"]) == 1
    assert 3 < len(by_case["l2"]) <= 9 and len(by_case["dropout"]) == 2
    assert {r["round"] for r in journal if r["case"] == "l2"} == {0, 1, 2}
