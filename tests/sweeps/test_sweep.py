"""Search spaces and sweep runs: grid and random content, log-uniform sampling, coarse-to-fine
on a known optimum, zero recompiles across rounds, the journal, selection and resuming."""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy import stats

import jaxreg.batch
from jaxreg import report
from jaxreg.sweeps import Space, build_spec, config_id, parse_axis, run_sweep, search_rounds

TINY = {
    "name": "tiny",
    "data": {"dataset": "digits", "n_train": 60, "seed": 0},
    "model": {"hidden": [8]},
    "train": {"optimizer": "adam", "epochs": 4, "eval_every": 2, "batch_size": 20},
    "hparams": {"learning_rate": 0.01},
    "search": {"seeds": 2, "chunk_size": 4},
}


def tiny(**tables) -> dict:
    spec = copy.deepcopy(TINY)
    for table, values in tables.items():
        if isinstance(values, dict) and isinstance(spec.get(table), dict):
            spec[table].update(values)
        else:
            spec[table] = values
    return spec


# --- spaces ---------------------------------------------------------------------------------

def test_grid_is_the_cartesian_product_in_spec_order():
    spec = build_spec(tiny(hparams={"learning_rate": {"values": [0.1, 0.01]},
                                    "l2": {"linspace": [0.0, 0.002, 3]},
                                    "dropout": {"values": [[0.0, 0.0], [0.2, 0.5]]},
                                    "momentum": 0.5}))
    configs = spec.space.configs(0)
    expected = list(itertools.product([0.1, 0.01], [0.0, 0.001, 0.002], [[0.0, 0.0], [0.2, 0.5]]))
    assert len(configs) == 12
    assert [(c.hparams["learning_rate"], c.hparams["l2"], c.hparams["dropout"]) for c in configs] == expected
    assert all(c.hparams["momentum"] == 0.5 for c in configs)
    assert list(configs[0].point) == ["learning_rate", "l2", "dropout"]  # fixed values are not "swept"
    assert len({config_id(c) for c in configs}) == 12


def test_logspace_grid_and_cases_concatenate():
    spec = build_spec(tiny(hparams={"learning_rate": 0.01},
                           cases={"none": {}, "l2": {"l2": {"logspace": [1e-4, 1e-2, 3]}},
                                  "dropout": {"dropout": {"values": [0.1, 0.3], "layers": [1]}}}))
    configs = spec.space.configs(0)
    assert [c.case for c in configs] == ["none", "l2", "l2", "l2", "dropout", "dropout"]
    np.testing.assert_allclose([c.hparams["l2"] for c in configs[1:4]], [1e-4, 1e-3, 1e-2], rtol=1e-12)
    assert [c.hparams["dropout"] for c in configs[4:]] == [[0.0, 0.1], [0.0, 0.3]]  # layer 1 only


def _random_space(samples: int, seed: int = 7) -> Space:
    return Space({"learning_rate": parse_axis("learning_rate", {"log_uniform": [1e-4, 1.0]}),
                  "momentum": parse_axis("momentum", {"uniform": [0.5, 0.99]}),
                  "patience": parse_axis("patience", {"int": [2, 9]}),
                  "l2": parse_axis("l2", {"choice": [0.0, 1e-3]})},
                 method="random", round_method="random", samples=samples, seed=seed)


def test_random_samples_do_not_depend_on_how_many_are_drawn():
    few, many = _random_space(5).configs(0), _random_space(50).configs(0)
    assert [c.point for c in few] == [c.point for c in many[:5]]
    assert [c.point for c in _random_space(5).configs(0)] == [c.point for c in few]  # reproducible
    assert [c.point for c in _random_space(5, seed=8).configs(0)] != [c.point for c in few]
    assert [c.point for c in _random_space(5).configs(1)] != [c.point for c in few]  # per round
    points = [c.point for c in many]
    assert all(1e-4 <= p["learning_rate"] <= 1.0 and 0.5 <= p["momentum"] <= 0.99 for p in points)
    assert {p["patience"] for p in points} <= set(range(2, 10)) and {p["l2"] for p in points} == {0.0, 1e-3}


def test_log_uniform_is_uniform_in_log_space():
    samples = np.array([c.point["learning_rate"] for c in _random_space(2000).configs(0)])
    logs = np.log10(samples)
    assert stats.kstest(logs, stats.uniform(loc=-4, scale=4).cdf).pvalue > 0.01
    # The test can fail: the same values are far from uniform on the linear scale.
    assert stats.kstest(samples, stats.uniform(loc=1e-4, scale=1.0 - 1e-4).cdf).pvalue < 1e-6


def _synthetic(optimum_lr=3e-3, optimum_wd=1e-3):
    """A bowl in log space: learning rate matters, weight decay barely does."""
    def score(configs):
        return [math.log10(c.point["learning_rate"] / optimum_lr) ** 2
                + 0.05 * math.log10(c.point["weight_decay"] / optimum_wd) ** 2 for c in configs]
    return score


def _log_space(method: str, samples: int, seed: int) -> Space:
    return Space({"learning_rate": parse_axis("learning_rate", {"log_uniform": [1e-5, 1.0]}),
                  "weight_decay": parse_axis("weight_decay", {"log_uniform": [1e-6, 1e-1]})},
                 method=method, round_method="random", samples=samples, seed=seed)


def test_coarse_to_fine_finds_a_log_space_optimum_and_beats_random_search():
    score = _synthetic()
    close, wins = 0, 0
    for seed in range(10):
        history = search_rounds(_log_space("coarse_to_fine", 32, seed), score, rounds=3, top_k=3)
        assert [c.round for c, _ in history] == [0] * 32 + [1] * 32 + [2] * 32
        best = min(history, key=lambda item: item[1])[0]
        close += abs(best.point["learning_rate"] / 3e-3 - 1) < 0.05
        random_best = min(score(_log_space("random", len(history), 1000 + seed).configs(0)))
        wins += min(s for _, s in history) < random_best
        later = [c.point["learning_rate"] for c, _ in history if c.round == 2]
        assert 1e-5 <= min(later) and max(later) <= 1.0  # zoomed ranges stay inside the original
    assert close >= 8, close
    assert wins >= 9, wins


def test_zoom_shrinks_in_log_space_and_clamps_to_the_original_bounds():
    axis = parse_axis("l2", {"logspace": [1e-6, 1e-1, 6]})
    space = Space({"l2": axis}, method="coarse_to_fine", round_method="grid")
    top = [c for c in space.configs(0) if c.point["l2"] == pytest.approx(1e-6)]
    zoomed = space.zoom(None, top)[None]["l2"]
    # One grid step (a decade) each side of 1e-6: the window slides back inside the original
    # bounds, keeping its width of two decades.
    assert zoomed.low == 1e-6 and zoomed.high == pytest.approx(1e-4)
    middle = [c for c in space.configs(0) if c.point["l2"] == pytest.approx(1e-3)]
    zoomed = space.zoom(None, middle)[None]["l2"]
    assert zoomed.low == pytest.approx(1e-4) and zoomed.high == pytest.approx(1e-2)
    narrow = space.zoom(None, middle, min_width=0.6)[None]["l2"]  # 3 of the 5 decades
    assert math.log10(narrow.high / narrow.low) == pytest.approx(3.0)


# --- running sweeps --------------------------------------------------------------------------

def _run(spec_dict, out, **kwargs):
    return run_sweep(build_spec(spec_dict), out, progress=False, **kwargs)


def forget_compiled_programs():
    """Equal configs share one compiled program across tests (the memo): forget it, so a test
    counts the compiles of its own sweep."""
    jaxreg.batch.compiled_members.cache_clear()
    jaxreg.batch.compiled_segments.cache_clear()


def _comparable(records):
    return sorted((r["config_id"], r["seed"], json.dumps(r, sort_keys=True)) for r in records)


@pytest.fixture(scope="module")
def c2f_run(tmp_path_factory):
    """A 3-round coarse-to-fine sweep, counting XLA compilations while it runs."""
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    spec = tiny(hparams={"learning_rate": {"log_uniform": [1e-3, 0.3]}, "l2": {"log_uniform": [1e-5, 1e-2]}},
                search={"method": "coarse_to_fine", "rounds": 3, "samples": 3, "top_k": 2, "seeds": 2,
                        "chunk_size": 4})
    out = tmp_path_factory.mktemp("c2f")
    forget_compiled_programs()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        records = _run(spec, out)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return spec, out, records, compiles


def test_coarse_to_fine_rounds_reuse_one_compiled_program(c2f_run):
    _, _, records, compiles = c2f_run
    assert sorted({r["round"] for r in records}) == [0, 1, 2]
    assert len(records) == 3 * 3 * 2
    assert len(compiles) == 1  # the chunk program, once, for 5 chunks over 3 rounds


def test_later_rounds_sample_inside_the_bracket_of_the_configs_not_worse_than_the_best(c2f_run):
    from test_zoom import oracle

    _, _, records, _ = c2f_run
    configs = {}
    for r in records:
        configs.setdefault(r["config_id"], (r["round"], r["point"], {}))[2][r["seed"]] = r["metrics"]["val_loss"]
    for k in (1, 2):
        before = [(point, [v[s] for s in sorted(v)]) for rnd, point, v in configs.values() if rnd < k]
        kept = oracle([values for _, values in before])
        for name, (low0, high0) in (("learning_rate", (1e-3, 0.3)), ("l2", (1e-5, 1e-2))):
            values = [point[name] for point, _ in before]
            chosen = [v for v, keep in zip(values, kept) if keep]
            low = max([v for v in values if v < min(chosen)], default=low0)
            high = min([v for v in values if v > max(chosen)], default=high0)
            later = [point[name] for rnd, point, _ in configs.values() if rnd == k]
            assert low * (1 - 1e-12) <= min(later) and max(later) <= high * (1 + 1e-12), (k, name, low, high, later)


def test_journal_has_one_line_per_trial_and_the_summary_selects_by_validation(c2f_run):
    spec, out, records, _ = c2f_run
    journal = report.read_journal(out)
    assert len({(r["config_id"], r["seed"]) for r in journal}) == len(journal) == 18
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["runs"][0]["versions"]) >= {"jaxreg", "jax", "jaxlib", "optax"}
    assert manifest["spec"]["search"]["metric"] == "val_loss"
    rows = report.summarize(journal, manifest["spec"]["search"])
    # Oracle: mean and standard error over seeds, recomputed here from the journal.
    for row in rows:
        values = [r["metrics"]["val_loss"] for r in journal if r["config_id"] == row["config_id"]]
        assert row["val_loss_mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert row["val_loss_sem"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(2), rel=1e-9)
    assert [row["val_loss_mean"] for row in rows] == sorted(row["val_loss_mean"] for row in rows)
    assert rows[0]["selected"] and not math.isnan(rows[0]["test_accuracy_mean"])
    assert all(math.isnan(row["test_accuracy_mean"]) for row in rows[1:])  # test: selected only


def test_rerunning_the_winner_alone_reproduces_its_row(c2f_run, tmp_path):
    spec, _, records, _ = c2f_run
    best = min(records, key=lambda r: r["metrics"]["val_loss"])
    alone = tiny(hparams={"learning_rate": best["point"]["learning_rate"], "l2": best["point"]["l2"]},
                 search={"seeds": [best["seed"]], "chunk_size": 4})
    (record,) = _run(alone, tmp_path)
    assert record["metrics"] == best["metrics"]
    assert record["hparams"] == best["hparams"]


def test_resume_skips_finished_trials_and_tolerates_a_torn_line(tmp_path):
    spec = tiny(hparams={"learning_rate": {"values": [0.003, 0.01, 0.03]}})
    full = _run(spec, tmp_path / "full")
    out = tmp_path / "resumed"
    _run(tiny(hparams={"learning_rate": {"values": [0.003, 0.01, 0.03]}}), out)
    lines = (out / "trials.jsonl").read_text().splitlines(keepends=True)
    # Keep 4 finished trials and half of the fifth line, as a crash mid-write would leave it.
    (out / "trials.jsonl").write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    resumed = _run(spec, out)
    assert _comparable(resumed) == _comparable(full)
    journal = report.read_journal(out)
    assert len(journal) == 6
    assert json.loads((out / "manifest.json").read_text())["runs"][-1]["trials_trained"] == 2


def test_a_different_spec_is_refused_and_overwrite_replaces(tmp_path):
    _run(TINY, tmp_path)
    before = (tmp_path / "trials.jsonl").read_bytes()
    other = tiny(train={"epochs": 2})
    with pytest.raises(ValueError, match="holds results of a different spec"):
        _run(other, tmp_path)
    assert (tmp_path / "trials.jsonl").read_bytes() == before
    records = _run(other, tmp_path, overwrite=True)
    assert len(report.read_journal(tmp_path)) == len(records) == 2


def test_chunk_size_follows_the_memory_budget():
    from jaxreg.sweeps.run import bytes_per_member, choose_chunk_size

    spec = build_spec(tiny(search={"chunk_size": None, "memory_budget_mb": 1}))
    per_member = bytes_per_member(spec)
    assert 10_000 < per_member < 2**20
    fit = 2**20 // per_member
    assert choose_chunk_size(spec, 10_000) == (fit if fit <= 64 else 64)
    assert choose_chunk_size(spec, 3) == 3  # never more than a round holds
    # on a CPU at most 64 members a chunk, in chunks of equal size (the last is not mostly padding)
    roomy = build_spec(tiny(search={"chunk_size": None, "memory_budget_mb": 1000}))
    assert [choose_chunk_size(roomy, n) for n in (64, 65, 70, 130, 256, 1000)] == [64, 33, 35, 44, 64, 63]
    assert choose_chunk_size(build_spec(tiny(search={"chunk_size": 256})), 1000) == 256  # asked for: as given
    with pytest.raises(ValueError, match=r"search.memory_budget_mb: expected at least 1 MB \(2 members\)"):
        choose_chunk_size(build_spec(tiny(search={"chunk_size": None, "memory_budget_mb": per_member / 2**20})), 8)


SHARDED = """
import numpy as np, jax, jaxreg
from jaxreg.sweeps import build_spec
spec = build_spec({"data": {"dataset": "digits", "n_train": 60}, "model": {"hidden": [8]},
    "train": {"optimizer": "adam", "epochs": 4, "eval_every": 2, "batch_size": 20},
    "hparams": {"learning_rate": {"values": [0.003, 0.01, 0.03]}}, "search": {"seeds": 2}})
hp = jaxreg.stack_hparams(jaxreg.make_hparams(spec.model, **c.hparams)
                          for c in spec.space.configs(0) for seed in (0, 1))
seeds = np.tile([0, 1], 3)
alone = jaxreg.train_batch(spec.config, spec.dataset, 3, devices=jax.local_devices()[:1])
sharded = jaxreg.train_batch(spec.config, spec.dataset, 3)
a, b = alone(seeds, hp), sharded(seeds, hp)
print(jax.device_count(), alone.chunk_size(6), sharded.chunk_size(6),
      float(np.max(np.abs(a.final["val_loss"] / b.final["val_loss"] - 1))))
"""


def test_members_shard_over_local_devices():
    # Kept: the session's flags (conftest.py's compile level)
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    devices, alone_chunk, sharded_chunk, difference = done.stdout.split()
    assert (devices, alone_chunk, sharded_chunk) == ("2", "3", "4")  # rounded up to the devices
    assert float(difference) <= 1e-6


def test_cases_may_override_static_settings_each_variant_compiles_once(tmp_path):
    spec_dict = tiny(cases={"small": {}, "wide_full_batch": {"model": {"hidden": [16]},
                                                             "train": {"batch_size": "full"}},
                            "wide_dropout": {"model": {"hidden": [16]}, "train": {"batch_size": "full"},
                                             "dropout": [0.0, 0.5]}})
    spec = build_spec(spec_dict)
    assert [v.cases for v in spec.variants] == [("small",), ("wide_full_batch", "wide_dropout")]
    assert [v.config.batch_size for v in spec.variants] == [20, None]
    assert [v.config.dropout for v in spec.variants] == [False, True]
    compiles = []
    listener = lambda event, duration, **kw: compiles.append(event) if event.endswith("backend_compile_duration") else None
    forget_compiled_programs()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        records = run_sweep(spec, tmp_path / "all", progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(compiles) == 2 and len(records) == 6
    # The overriding case run as a spec of its own gives the same numbers.
    alone = tiny(model={"hidden": [16]}, train={"batch_size": "full"}, hparams={"dropout": [0.0, 0.5]})
    mine = {r["seed"]: r["metrics"] for r in records if r["case"] == "wide_dropout"}
    assert {r["seed"]: r["metrics"] for r in _run(alone, tmp_path / "alone")} == mine


def test_a_float32_sweep_gives_the_same_numbers_after_a_float64_spec_turned_x64_on(tmp_path):
    """A float64 spec turns JAX's x64 mode on for the whole process; a float32 sweep after it must
    still train exactly as in a fresh process (traced with x64 on it rounded otherwise)."""
    spec = tiny(hparams={"learning_rate": {"values": [0.01, 0.1]}}, train={"epochs": 40, "eval_every": 10})
    before = _run(spec, tmp_path / "before")
    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        after = _run(spec, tmp_path / "after")
    finally:
        jax.config.update("jax_enable_x64", was)
    assert _comparable(after) == _comparable(before)
    assert (tmp_path / "after" / "trials.jsonl").read_bytes() == (tmp_path / "before" / "trials.jsonl").read_bytes()


def test_a_sweep_compiles_only_the_penalties_its_configs_use():
    """Like dropout, a penalty no config of a case can set above 0 is left out of its program."""
    configs = {
        "none": tiny(),
        "l2 axis": tiny(hparams={"learning_rate": 0.01, "l2": {"values": [0.0, 1e-3]}}),
        "l2 at 0 only": tiny(hparams={"learning_rate": 0.01, "l2": {"values": [0.0]}}),
        "weight decay, l1 sampled": tiny(hparams={"learning_rate": 0.01, "weight_decay": 1e-4,
                                                  "l1": {"logspace": [1e-5, 1e-3, 3]}}),
    }
    got = {name: build_spec(spec).variants[0].config.penalties for name, spec in configs.items()}
    assert got == {"none": (), "l2 axis": ("l2",), "l2 at 0 only": (), "weight decay, l1 sampled": ("l1", "weight_decay")}
    cases = tiny(cases={"plain": {}, "decayed": {"l2": 1e-3}})
    assert [v.config.penalties for v in build_spec(cases).variants] == [("l2",)]  # one program for both cases


def test_train_metrics_limits_what_each_evaluation_computes(tmp_path):
    """train.metrics: only those metrics (plus search.metric) are computed; the others are null
    in the journal and the evaluation's forward pass leaves their splits out. The numbers of
    the metrics asked for are those of a sweep that computes everything."""
    full = _run(tiny(), tmp_path / "full")
    asked = tiny(train={"metrics": ["val_accuracy"]}, search={"seeds": 2, "chunk_size": 4, "metric": "val_loss"})
    assert build_spec(asked).variants[0].config.metrics == ("val_accuracy", "val_loss")
    some = _run(asked, tmp_path / "some")
    for a, b in zip(full, some):
        assert {k for k, v in b["metrics"].items() if v is not None} == {"val_loss", "val_accuracy"}
        assert b["metrics"]["val_loss"] == pytest.approx(a["metrics"]["val_loss"], rel=1e-6)
        assert b["metrics"]["val_accuracy"] == a["metrics"]["val_accuracy"]
