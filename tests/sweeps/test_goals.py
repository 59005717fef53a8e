"""Every search rule with a metric to minimize AND one to maximize (tests/README.md's matrix).

Each strategy (grid, random, coarse-to-fine with both zoom rules, successive halving,
hyperband, Optuna's samplers), the rung rule, the failed-trial rule and the selection of the
best config run once per goal. The real sweeps rank ``val_loss`` with ``search.goal`` set
either way, so both goals train bitwise the same members and only the direction differs: the
oracle re-ranks the journal's values by hand in the stated direction and compares what jaxreg
kept, pruned, told and selected. Each docstring names the bug it was checked to catch.
"""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest

from jaxreg.report import store
from jaxreg.report.summary import best_so_far, summarize
from jaxreg.sweeps import Space, build_spec, config_id, parse_axis, run_sweep, search_rounds
from jaxreg.sweeps import halving, samplers
from jaxreg.sweeps.space import MODEL_METHODS
from jaxreg.sweeps.strategies import not_worse
from jaxreg.sweeps.trained import best_config
from test_sweep import tiny

GOALS = ["minimize", "maximize"]


def ranked(values: dict, goal: str) -> list:
    """Keys of ``values`` best first in the direction of ``goal``; NaN last (written by hand)."""
    finite = [k for k in values if not math.isnan(values[k])]
    finite.sort(key=lambda k: values[k], reverse=goal == "maximize")
    return finite + [k for k in values if math.isnan(values[k])]


def worst(values, goal: str) -> float:
    return max(values) if goal == "minimize" else min(values)


# ---------------------------------------------------------------------- search logic, no training

def _space(method, samples=8, seed=0, **axes):
    axes = axes or {"learning_rate": {"log_uniform": [1e-5, 1.0]}, "weight_decay": {"log_uniform": [1e-6, 1e-1]}}
    kind = samplers.ModelSpace if method in MODEL_METHODS else Space
    return kind({name: parse_axis(name, raw) for name, raw in axes.items()}, method=method,
                round_method="random", samples=samples, seed=seed)


def _bowl(config) -> float:
    """A value with its minimum at learning_rate 1e-2 (and its maximum far from it)."""
    return (math.log10(config.hparams["learning_rate"]) + 2.0) ** 2


@pytest.mark.parametrize("goal", GOALS)
def test_coarse_to_fine_top_k_zooms_around_the_rounds_best_in_the_goals_direction(goal, monkeypatch):
    """Checked to catch: ``Rounds`` ranking by ``rank_key(value, True)`` whatever the goal."""
    zoomed = []
    original = Space.zoom
    monkeypatch.setattr(Space, "zoom", lambda self, axes, top, **kw: zoomed.append(list(top))
                        or original(self, axes, top, **kw))
    history = search_rounds(_space("coarse_to_fine"), lambda cs: [_bowl(c) for c in cs], rounds=3, top_k=3,
                            minimize=goal == "minimize")
    assert len(zoomed) == 2
    for k, top in enumerate(zoomed):
        this_round = {i: value for i, (c, value) in enumerate(history) if c.round == k}
        expected = [history[i][0] for i in ranked(this_round, goal)[:3]]
        assert [config_id(c) for c in top] == [config_id(c) for c in expected]


@pytest.mark.parametrize("goal", GOALS)
def test_coarse_to_fine_not_worse_brackets_the_configs_within_z_errors_of_the_best(goal, monkeypatch):
    """The ``not_worse`` rule with seeds: the best has the best mean in the goal's direction, a
    config is kept when its mean is within z standard errors of it, never with a failed seed.
    Checked to catch: the sign flip of ``not_worse`` dropped (the worst config taken as best)."""
    kept_masks = []
    original = Space.bracket
    monkeypatch.setattr(Space, "bracket", lambda self, configs, kept, **kw: kept_masks.append(
        (list(configs), np.asarray(kept).tolist())) or original(self, configs, kept, **kw))

    def score(configs):
        out = []
        for c in configs:
            rng = np.random.default_rng(int(c.hparams["learning_rate"] * 1e9) % 2**32)
            values = _bowl(c) + 0.3 * rng.standard_normal(3)
            if c.hparams["weight_decay"] > 1e-3:  # a failed seed
                values[1] = math.nan
            out.append(values)
        return out

    scored = []
    search_rounds(_space("coarse_to_fine", samples=10), lambda cs: scored.extend(v := score(cs)) or v,
                  rounds=2, minimize=goal == "minimize", zoom="not_worse", z=1.0)
    ((configs, kept),) = kept_masks
    scored = scored[:len(configs)]  # round 0's: the bracket of round 1 is drawn from them
    sign = 1.0 if goal == "minimize" else -1.0
    ok = [bool(np.isfinite(v).all()) for v in scored]
    assert not all(ok)
    means = [sign * float(np.mean(v)) if fine else math.inf for v, fine in zip(scored, ok)]
    best = int(np.argmin(means))
    sigma = math.sqrt(float(np.median([np.var(v, ddof=1) for v, fine in zip(scored, ok) if fine])))
    expected = [fine and means[i] - means[best] <= sigma * math.sqrt(2 / 3) for i, fine in enumerate(ok)]
    assert kept == expected and kept[best]
    assert not_worse(scored, minimize=goal == "minimize").tolist() == expected


@pytest.mark.parametrize("goal", GOALS)
def test_halving_keep_takes_the_best_ceil_n_over_eta_in_the_goals_direction_nan_last(goal):
    """Checked to catch a NaN ranked as -inf (the failed config kept when maximizing)."""
    values = {"a": 0.3, "b": math.nan, "c": 0.1, "d": 0.2, "e": 0.5, "f": math.nan, "g": 0.05}
    for eta in (2, 3, 4):
        expected = set(ranked(values, goal)[:math.ceil(len(values) / eta)])
        assert halving.keep(values, eta, minimize=goal == "minimize") == expected
    assert halving.keep({"b": math.nan, "c": 0.7}, 2, minimize=goal == "minimize") == {"c"}


@pytest.mark.parametrize("method", ["tpe", "cmaes"])
@pytest.mark.parametrize("goal", GOALS)
def test_a_sampler_is_told_each_mean_and_a_failed_config_the_worst_seen_in_the_goals_direction(
        method, goal, monkeypatch):
    """Checked to catch: the study created to minimize whatever the goal, and a failed config
    told the max seen when maximizing (which would make it look like the best)."""
    told = []
    original = optuna.study.Study.tell

    def tell(self, trial, values=None, state=None, **kwargs):
        told.append((self.direction, trial.params, values, state))
        return original(self, trial, values, state, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "tell", tell)
    by_lr = {}

    def score(configs):
        out = []
        for c in configs:
            lr = c.hparams["learning_rate"]
            value = [_bowl(c), math.nan] if lr > 0.03 else [_bowl(c)] * 2  # large rates "diverge"
            by_lr[lr] = value
            out.append(value)
        return out

    search_rounds(_space(method, samples=6, learning_rate={"log_uniform": [1e-4, 1.0]}), score, rounds=3,
                  minimize=goal == "minimize")
    direction = optuna.study.StudyDirection.MINIMIZE if goal == "minimize" else optuna.study.StudyDirection.MAXIMIZE
    seen, failed = [], 0
    for round_start in range(0, len(told), 6):
        batch = told[round_start:round_start + 6]
        means = {}
        for _, params, _, _ in batch:
            lr = params["learning_rate"]
            if all(math.isfinite(v) for v in by_lr[lr]):
                means[lr] = float(np.mean(by_lr[lr]))
        seen.extend(means.values())
        for study_direction, params, value, state in batch:
            assert study_direction == direction
            lr = params["learning_rate"]
            if lr <= 0.03:
                assert value == means[lr] and state is None
            else:
                failed += 1
                assert value == worst(seen, goal) if seen else state == optuna.trial.TrialState.FAIL
    assert failed > 0


@pytest.mark.parametrize("goal", GOALS)
def test_tpe_moves_towards_the_goal(goal):
    """TPE on a bowl (goal minimize) or on its negative (goal maximize): both optima are at
    learning_rate 1e-2, and the later rounds come closer to it than the random first round.
    Checked to catch the study's direction ignoring the goal (it then moves away)."""
    sign = 1.0 if goal == "minimize" else -1.0
    closer = 0
    for seed in range(3):
        history = search_rounds(_space("tpe", samples=8, seed=seed), lambda cs: [sign * _bowl(c) for c in cs],
                                rounds=4, minimize=goal == "minimize")
        distance = {k: np.mean([_bowl(c) for c, _ in history if c.round == k]) for k in range(4)}
        closer += distance[3] < distance[0]
    assert closer == 3


@pytest.mark.parametrize("goal", GOALS)
def test_the_summary_ranks_by_the_goal_puts_failed_and_pruned_configs_last_and_selects_one(goal):
    """A journal written by hand: the summary's order, ``selected`` and the running best follow
    the goal; a config with a NaN seed ranks after every finite one, a pruned config after
    every finished one. Checked to catch ``best_so_far`` taking np.fmin for both goals."""
    values = {"a": [0.3, 0.5], "b": [0.9, math.nan], "c": [0.1, 0.2], "d": [0.7, 0.8], "e": [1.5, 1.4]}
    pruned = {"e"}
    records = [{"config_id": cid, "seed": s, "round": 0, "case": None, "point": {"x": i}, "hparams": {},
                "status": "ok", "best_epoch": 1, "stopped_epoch": 0, "diverged_epoch": 0,
                "pruned_epoch": 1 if cid in pruned else None, "rungs": [{"epoch": 1, "val_loss": v}],
                "metrics": {"val_loss": v}}
               for i, (cid, vs) in enumerate(values.items()) for s, v in enumerate(vs)]
    rows = summarize(records, {"metric": "val_loss", "goal": goal})
    means = {cid: float(np.mean(vs)) for cid, vs in values.items()}
    finished = {cid: m for cid, m in means.items() if cid not in pruned}
    expected = ranked(finished, goal) + ranked({cid: means[cid] for cid in pruned}, goal)
    assert [r["config_id"] for r in rows] == expected
    assert [r["config_id"] for r in rows if r["selected"]] == [expected[0]]
    order = sorted(rows, key=lambda r: r["x"])  # the order the search evaluated them
    running = best_so_far(order, "val_loss", goal == "minimize")
    hand, best = [], math.nan
    for r in order:
        value = r["val_loss_mean"] if r["config_id"] not in pruned else math.nan
        if not math.isnan(value) and (math.isnan(best) or (value < best if goal == "minimize" else value > best)):
            best = value
        hand.append(best)
    np.testing.assert_array_equal(running, hand)


def test_the_goal_defaults_by_the_metrics_name_and_an_own_metric_must_say_it():
    """Losses and errors down, accuracy and R^2 up (docs/search.md)."""
    assert build_spec(tiny(search={"metric": "val_loss"})).minimize
    assert not build_spec(tiny(search={"metric": "val_accuracy"})).minimize
    assert not build_spec(tiny(search={"metric": "val_loss", "goal": "maximize"})).minimize
    assert build_spec(tiny(search={"metric": "val_accuracy", "goal": "minimize"})).minimize


# ---------------------------------------------------------------------- real sweeps, both goals

SELECTION = {
    "grid": dict(hparams={"learning_rate": {"values": [0.001, 0.01, 0.1, 0.5]}}),
    "random": dict(hparams={"learning_rate": {"log_uniform": [1e-3, 0.5]}}, search={"method": "random", "samples": 4}),
}


def _sweep(out, spec):
    run_sweep(build_spec(spec), out, progress=False)
    return store.read_journal(out)


def _means(journal, metric="val_loss") -> dict:
    groups = {}
    for r in journal:
        groups.setdefault(r["config_id"], []).append(float(r["metrics"][metric]))
    return {cid: float(np.mean(v)) for cid, v in groups.items()}


@pytest.mark.parametrize("method", list(SELECTION))
@pytest.mark.parametrize("goal", GOALS)
def test_grid_and_random_select_the_best_config_in_the_goals_direction(method, goal, tmp_path):
    """``summary.csv``'s order and ``best_config`` are the hand ranking of the journal's means.
    Checked to catch ``best_config`` sorting the seeds of the best config by ``minimize=True``."""
    table = SELECTION[method]
    spec = tiny(hparams=table["hparams"], search={"metric": "val_loss", "goal": goal, "seeds": 2, "chunk_size": 8,
                                                  **table.get("search", {})})
    journal = _sweep(tmp_path, spec)
    means = _means(journal)
    expected = ranked(means, goal)
    rows = summarize(journal, json.loads((tmp_path / "manifest.json").read_text())["spec"]["search"])
    assert [r["config_id"] for r in rows] == expected
    best = best_config(tmp_path)
    assert best.config_id == expected[0]
    seeds = {r["seed"]: float(r["metrics"]["val_loss"]) for r in journal if r["config_id"] == expected[0]}
    assert best.trials[0]["seed"] == ranked(seeds, goal)[0]  # the best seed first


def _check_rungs(journal, rungs_of_round, eta, goal, metric="val_loss"):
    """At each rung of each round: the configs still racing, ranked by their mean over seeds in
    the goal's direction; the best ceil(n / eta) go on, the others are pruned there."""
    checked = 0
    for round_index in sorted({r["round"] for r in journal}):
        trials = [r for r in journal if r["round"] == round_index]
        rungs = rungs_of_round(round_index)
        racing = {r["config_id"] for r in trials}
        for k, epoch in enumerate(rungs):
            values = {}
            for r in trials:
                if r["config_id"] in racing:
                    (value,) = [v[metric] for v in r["rungs"] if v["epoch"] == epoch]
                    values.setdefault(r["config_id"], []).append(value)
            means = {cid: float(np.mean(v)) for cid, v in values.items()}
            last = k + 1 == len(rungs)
            kept = set(ranked(means, goal)[:math.ceil(len(means) / eta)]) if not last else set(means)
            for r in trials:
                if r["config_id"] in racing and r["config_id"] not in kept:
                    assert r["pruned_epoch"] == epoch, (round_index, epoch, r["config_id"])
                    checked += 1
                elif r["config_id"] in racing:
                    assert r["pruned_epoch"] is None or r["pruned_epoch"] > epoch
            racing = kept
    return checked


HALVING = dict(model={"hidden": [8]}, train={"optimizer": "adam", "epochs": 4, "eval_every": 1, "batch_size": 20},
               hparams={"learning_rate": {"log_uniform": [1e-4, 0.5]}, "l2": {"log_uniform": [1e-5, 1e-2]}})


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    runs = {}
    for goal in GOALS:
        out = tmp_path_factory.mktemp(f"halving-{goal}")
        spec = tiny(**HALVING, search={"method": "halving", "samples": 6, "eta": 2, "min_epochs": 1, "seeds": 2,
                                       "chunk_size": 12, "metric": "val_loss", "goal": goal})
        runs[goal] = _sweep(out, spec), out
    return runs


@pytest.mark.parametrize("goal", GOALS)
def test_halving_prunes_at_each_rung_what_a_by_hand_ranking_in_the_goals_direction_prunes(halved, goal):
    """Checked to catch ``Race`` built with ``minimize=True`` whatever the goal."""
    journal, out = halved[goal]
    assert _check_rungs(journal, lambda _: halving.rung_epochs(4, 1, 2), 2, goal) >= 6
    finished = {r["config_id"]: r for r in journal if r["pruned_epoch"] is None}
    assert best_config(out).config_id in finished
    assert best_config(out).config_id == ranked(_means([r for r in journal if r["pruned_epoch"] is None]), goal)[0]


def test_halving_under_both_goals_trains_the_same_first_rung_and_keeps_other_configs(halved):
    first = {goal: {(r["config_id"], r["seed"]): r["rungs"][0]["val_loss"] for r in halved[goal][0]}
             for goal in GOALS}
    assert first["minimize"] == first["maximize"]  # the goal changes the decisions, not the numbers
    going = {goal: {r["config_id"] for r in halved[goal][0] if len(r["rungs"]) > 1} for goal in GOALS}
    assert going["minimize"].isdisjoint(going["maximize"])  # 6 configs: the best 3 and the worst 3


@pytest.mark.parametrize("goal", GOALS)
def test_hyperband_prunes_each_bracket_in_the_goals_direction(goal, tmp_path):
    """Checked to catch ``Race`` built with ``minimize=True`` whatever the goal (every bracket's
    rungs then prune the wrong half when maximizing)."""
    spec = tiny(**HALVING, search={"method": "hyperband", "eta": 2, "min_epochs": 1, "seeds": 1, "chunk_size": 8,
                                   "metric": "val_loss", "goal": goal})
    journal = _sweep(tmp_path, spec)
    brackets = halving.brackets(4, 1, 2)
    assert len({r["round"] for r in journal}) == len(brackets)
    assert _check_rungs(journal, lambda k: brackets[k][1], 2, goal) >= 3


@pytest.mark.parametrize("goal", GOALS)
def test_a_coarse_to_fine_sweep_brackets_the_journals_top_k_in_the_goals_direction(goal, tmp_path, monkeypatch):
    """One seed a config: no seed noise to measure, so round 0's top 2 of the journal in the
    goal's direction are kept, and round 1 draws between the nearest rejected values around
    them. Checked to catch ``default_strategy`` not passing ``spec.minimize``."""
    brackets = []
    original = Space.bracket
    monkeypatch.setattr(Space, "bracket", lambda self, configs, kept, **kw: brackets.append(
        ([config_id(c) for c in configs], np.asarray(kept).tolist())) or original(self, configs, kept, **kw))
    spec = tiny(hparams={"learning_rate": {"log_uniform": [1e-4, 0.5]}},
                search={"method": "coarse_to_fine", "rounds": 2, "samples": 6, "top_k": 2, "seeds": 1,
                        "chunk_size": 6, "metric": "val_loss", "goal": goal})
    journal = _sweep(tmp_path, spec)
    first = {r["config_id"]: float(r["metrics"]["val_loss"]) for r in journal if r["round"] == 0}
    top = set(ranked(first, goal)[:2])
    ((ids, kept),) = brackets
    assert {cid for cid, k in zip(ids, kept) if k} == top
    lrs = {r["config_id"]: r["point"]["learning_rate"] for r in journal}
    chosen, rejected = [lrs[c] for c in top], [lrs[c] for c in first if c not in top]
    low = max([v for v in rejected if v < min(chosen)], default=1e-4)
    high = min([v for v in rejected if v > max(chosen)], default=0.5)
    later = [lrs[r["config_id"]] for r in journal if r["round"] == 1]
    assert len(later) == 6 and all(low * (1 - 1e-12) <= v <= high * (1 + 1e-12) for v in later)


@pytest.mark.parametrize("goal", GOALS)
def test_a_tpe_sweep_tells_the_journals_means_to_a_study_of_the_goals_direction(goal, tmp_path, monkeypatch):
    """Checked to catch ``SamplerSearch`` built without the spec's goal (a study to minimize)."""
    told = []
    original = optuna.study.Study.tell
    monkeypatch.setattr(optuna.study.Study, "tell", lambda self, trial, values=None, state=None, **kw: told.append(
        (self.direction, values)) or original(self, trial, values, state, **kw))
    spec = tiny(hparams={"learning_rate": {"log_uniform": [1e-4, 0.5]}},
                search={"method": "tpe", "rounds": 2, "samples": 3, "seeds": 2, "chunk_size": 6,
                        "metric": "val_loss", "goal": goal})
    journal = _sweep(tmp_path, spec)
    direction = optuna.study.StudyDirection.MINIMIZE if goal == "minimize" else optuna.study.StudyDirection.MAXIMIZE
    assert told and all(d == direction for d, _ in told)
    means = _means(journal)
    assert sorted(v for _, v in told) == pytest.approx(sorted(means.values()), rel=1e-12)
    assert best_config(tmp_path).config_id == ranked(means, goal)[0]
