"""Successive halving and Hyperband: the rungs and brackets against the paper's table, pruning
checked against a by-hand re-ranking of the journal, compaction against training the pruned
members in place, one compiled program per round where padding costs less than compiling,
resuming at rung boundaries, and the spec's refusals."""

from __future__ import annotations

import json
import math
import tomllib

import jax
import numpy as np
import pytest

from jaxreg import load_best
from jaxreg.errors import InputError
from jaxreg.report import store
from jaxreg.report.summary import summarize
from jaxreg.sweeps import build_spec, run_sweep
from jaxreg.sweeps import halving
from jaxreg.sweeps.executor import Executor, Progress
from jaxreg.sweeps.run import choose_chunk_size
from test_sweep import forget_compiled_programs, tiny

HALVING = dict(model={"hidden": [8]}, train={"optimizer": "adam", "epochs": 8, "eval_every": 2, "batch_size": 20},
               hparams={"learning_rate": {"log_uniform": [1e-4, 0.5]}, "l2": {"log_uniform": [1e-5, 1e-2]}},
               search={"method": "halving", "samples": 8, "eta": 2, "min_epochs": 2, "seeds": 2, "chunk_size": 16},
               output={"plots": False})


def test_hyperband_brackets_are_those_of_the_paper():
    # Li et al. (2018), Table 1: R = 81, eta = 3: (n_i, r_i) of each bracket's first rung.
    got = [(n, rungs[0]) for n, rungs in halving.brackets(81, 1, 3)]
    assert got == [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
    assert halving.brackets(81, 1, 3)[0][1] == [1, 3, 9, 27, 81]
    assert halving.rung_epochs(20, 5, 3) == [5, 15, 20] and halving.rung_epochs(20, 5, 4) == [5, 20]


def test_buckets_are_powers_of_two_within_the_chunk_size():
    assert [halving.bucket(n, 24) for n in (1, 2, 3, 5, 8, 9, 17, 24, 40)] == [2, 2, 4, 8, 8, 16, 24, 24, 24]


def test_a_rung_keeps_the_chunk_size_before_while_its_padding_costs_less_than_a_compilation():
    # 9 members after chunks of 27, 4 epochs: 27 pads 11 copies more than a chunk of 16 (44 member-epochs)
    assert halving.rung_size(9, 27, 27, 4, pad_epochs=44) == 27
    assert halving.rung_size(9, 27, 27, 4, pad_epochs=43.9) == 16
    assert halving.rung_size(9, 27, 27, 4, pad_epochs=0) == halving.bucket(9, 27)  # the rule before: a size per bucket
    assert halving.rung_size(1, 27, 27, 36, pad_epochs=math.inf) == 27            # one size for the round
    # more members than a chunk: the chunks of the size before and of the bucket pad alike
    assert halving.rung_size(40, 32, 32, 10, pad_epochs=0) == 32
    # never a size above the one before (a bucket larger than it is the bucket)
    assert halving.rung_size(9, 8, 32, 4, pad_epochs=math.inf) == 16
    assert halving.padded(9, 4) == 12 and halving.padded(8, 4) == 8


def test_keep_takes_the_best_ceil_n_over_eta_and_ranks_nan_last():
    values = {"a": 0.3, "b": math.nan, "c": 0.1, "d": 0.2, "e": 0.5}
    assert halving.keep(values, 2, minimize=True) == {"c", "d", "a"}
    assert halving.keep(values, 3, minimize=False) == {"e", "a"}
    assert halving.keep({"b": math.nan, "c": 1.0}, 4, minimize=True) == {"c"}


def _compiles(fn):
    seen = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        return fn(), seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    out = tmp_path_factory.mktemp("halving")
    spec = tiny(**HALVING)
    run_sweep(build_spec(tiny(model={"hidden": [5]})), out / "warm", progress=False)  # small ops compile here
    forget_compiled_programs()
    records, compiles = _compiles(lambda: run_sweep(build_spec(spec), out / "run", progress=False))
    return spec, out, store.read_journal(out / "run"), compiles


def test_each_rung_keeps_the_configs_a_by_hand_ranking_of_the_journal_keeps(halved):
    _, _, journal, _ = halved
    assert len(journal) == 16 and len({(r["config_id"], r["seed"]) for r in journal}) == 16
    rungs = [2, 4, 8]
    racing = {r["config_id"] for r in journal}
    for k, epoch in enumerate(rungs):
        values = {}
        for r in journal:
            if r["config_id"] in racing:
                (value,) = [v["val_loss"] for v in r["rungs"] if v["epoch"] == epoch]
                values.setdefault(r["config_id"], []).append(value)
        means = {cid: float(np.mean(v)) for cid, v in values.items()}
        ranked = sorted(means, key=lambda cid: (math.isnan(means[cid]), means[cid]))
        kept = set(ranked[:math.ceil(len(ranked) / 2)]) if k + 1 < len(rungs) else set(ranked)
        for r in journal:
            if r["config_id"] in racing:
                reached = [v["epoch"] for v in r["rungs"]]
                if r["config_id"] in kept:
                    assert r["pruned_epoch"] is None or r["pruned_epoch"] > epoch
                else:
                    assert (r["pruned_epoch"], reached[-1], r["trained_epochs"]) == (epoch, epoch, epoch)
                    # its metrics are those at the rung it was pruned at
                    assert r["metrics"]["val_loss"] == r["rungs"][-1]["val_loss"]
        racing = kept
    assert len(racing) == 2  # 8 configs -> 4 -> 2
    finished = [r for r in journal if r["pruned_epoch"] is None]
    assert len(finished) == 4 and all(r["trained_epochs"] == 8 for r in finished)


def test_a_halving_round_compiles_one_program(halved):
    # 16 members, then 8 (4 configs x 2 seeds), then 4, all in chunks of 16: a member-epoch of
    # this network costs next to nothing, so padding the survivors beats compiling for 8 and 4
    # (with pad_epochs = 0, the rule before, three programs compiled: one per bucket size)
    _, _, _, compiles = halved
    assert len(compiles) == 1


def test_hyperband_compiles_one_program_for_every_bracket(tmp_path):
    import jaxreg.batch

    spec = tiny(**HALVING)
    spec["search"] = {"method": "hyperband", "eta": 2, "min_epochs": 2, "seeds": 1, "chunk_size": 8}
    forget_compiled_programs()
    jaxreg.batch._EXECUTABLES.clear()
    logged = []
    run_sweep(build_spec(spec), tmp_path / "hb", progress=True, log=logged.append)
    assert len(jaxreg.batch._EXECUTABLES) == 1  # brackets of 4, 3 and 3 configs, every rung in chunks of 8
    assert sum("compiling the training program (8 members per chunk)" in line for line in logged) == 1, logged
    assert not any("compiling" in line and "(8 members" not in line for line in logged), logged


def test_pruned_configs_rank_after_the_finished_and_are_never_selected(halved):
    spec, _, journal, _ = halved
    rows = summarize(journal, build_spec(spec).search)
    assert [row["pruned"] > 0 for row in rows] == [False] * 2 + [True] * 6
    assert rows[0]["selected"] and not any(row["selected"] for row in rows[1:])
    assert all(row["pruned_epoch"] in (2, 4) for row in rows[2:])


def _run_halving(spec, out, compact):
    """Halving without the sweep around it: the strategy, the executor and a bare store."""
    from jaxreg.batch import train_batch
    from jaxreg.report.store import Store
    from jaxreg.sweeps.executor import Executor, Progress
    from jaxreg.sweeps.run import study
    from jaxreg.sweeps.strategies import make_search

    built = build_spec(spec)
    (variant,) = built.variants
    size = choose_chunk_size(built, variant.space.count(0) * len(built.seeds), variant)
    s = Store(out)
    s.out.mkdir(parents=True)
    s.curves_dir.mkdir()
    records = {}
    strategy = halving.Halving(make_search(variant.space), built.seeds,
                               halving.Race(lambda r: [2, 4, 8], 2, "val_loss", compact=compact), chunk_size=size,
                               every=variant.config.eval_every, label=lambda r: "sweep")
    executor = Executor()
    executor.open(s, records, Progress(bars=False), digest=built.digest, save_params=True)
    executor.begin(0, variant, train_batch(variant.config, variant.dataset, size), strategy)
    study(executor, records, {})
    return records


def test_compaction_gives_what_training_the_pruned_members_in_place_gives(tmp_path):
    spec = tiny(**HALVING)
    compact = _run_halving(spec, tmp_path / "compact", True)
    in_place = _run_halving(spec, tmp_path / "in-place", False)
    assert compact.keys() == in_place.keys()
    drift = 0.0
    for key, a in compact.items():
        b = in_place[key]
        assert (a["pruned_epoch"], a["rungs"][-1]["epoch"], a["best_epoch"]) == \
            (b["pruned_epoch"], b["rungs"][-1]["epoch"], b["best_epoch"])
        if a["trained_epochs"] == 2:  # pruned at the first rung: the same chunk all along
            assert a == b
        else:  # trained on in chunks of 8 and 4, not 16: XLA CPU rounds a batch's reductions by its shape
            for name, value in a["metrics"].items():
                drift = max(drift, abs(value - b["metrics"][name]) / max(abs(b["metrics"][name]), 1e-30))
    assert drift < 1e-5
    # The same drift a different chunk size causes without halving.
    grid = {**spec, "search": {"method": "grid", "seeds": 2}}
    survivors = {key for key, r in compact.items() if r["pruned_epoch"] is None}
    grid["hparams"] = {}
    grid["cases"] = {f"c{i}": {"learning_rate": compact[key]["hparams"]["learning_rate"],
                               "l2": compact[key]["hparams"]["l2"]} for i, key in enumerate(sorted(survivors))}
    by_chunk = {}
    for chunk in (4, 16):
        grid["search"]["chunk_size"] = chunk
        got = run_sweep(build_spec(grid), tmp_path / f"grid-{chunk}", progress=False)
        by_chunk[chunk] = {(r["hparams"]["learning_rate"], r["seed"]): r["metrics"] for r in got}
    chunk_drift = max(abs(v - by_chunk[16][key][name]) / max(abs(by_chunk[16][key][name]), 1e-30)
                      for key, metrics in by_chunk[4].items() for name, v in metrics.items())
    assert chunk_drift < 1e-5
    print(f"compaction drift {drift:.2e}, chunk-size drift {chunk_drift:.2e}")


def test_a_run_stopped_within_a_rung_resumes_there_and_gives_the_same_journal(halved, tmp_path, monkeypatch):
    spec, out, _, _ = halved
    whole = (out / "run" / "trials.jsonl").read_bytes()
    saved, keep = [], Executor.keep
    progress = Progress(bars=False)

    def keep_then_die(self, segment):
        keep(self, segment)
        if self.flight:
            saved.append(max(m.block for m in self.flight.values()))
        if saved and saved[-1] == 3:  # inside the last rung (epochs 4 to 8: blocks 2 to 4, eval_every 2)
            raise KeyboardInterrupt

    monkeypatch.setattr(Executor, "keep", keep_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(build_spec(spec), tmp_path / "c", progress=progress, executor=Executor(checkpoint_seconds=0))
    assert saved == [1, 2, 3]  # after each rung, and within the last one
    assert progress.kept() == "kept 12 trials in the journal, and 4 members in training up to epoch 6 in checkpoint.npz"
    monkeypatch.setattr(Executor, "keep", keep)
    logged = []
    run_sweep(build_spec(spec), tmp_path / "c", progress=True, log=logged.append)
    assert any("resumed a chunk of 4 trials from checkpoint.npz at evaluation 3 of 4" in line for line in logged), logged
    assert (tmp_path / "c" / "trials.jsonl").read_bytes() == whole
    assert not (tmp_path / "c" / store.CHECKPOINT).exists()


def test_a_run_stopped_after_a_rung_resumes_there_and_gives_the_same_journal(halved, tmp_path, monkeypatch):
    spec, out, _, _ = halved
    whole = (out / "run" / "trials.jsonl").read_bytes()
    appends = []
    original = store.Store.append

    def append_then_die(self, records):
        original(self, records)
        appends.append(len(records))
        if len(appends) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(store.Store, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(build_spec(spec), tmp_path / "a", progress=False)
    assert not (tmp_path / "a" / store.CHECKPOINT).exists()  # died after journaling rung 1, before keeping it
    monkeypatch.setattr(store.Store, "append", original)
    run_sweep(build_spec(spec), tmp_path / "a", progress=False)
    assert (tmp_path / "a" / "trials.jsonl").read_bytes() == whole

    # Killed after rung 2 was kept: the rerun starts at rung 3 from the kept state.
    appends.clear()

    def die_at_third(self, records):
        appends.append(len(records))
        if len(appends) == 3:
            raise KeyboardInterrupt
        original(self, records)

    monkeypatch.setattr(store.Store, "append", die_at_third)
    progress = Progress(bars=False)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(build_spec(spec), tmp_path / "b", progress=progress)
    assert (tmp_path / "b" / store.CHECKPOINT).exists()
    assert progress.kept() == "kept 12 trials in the journal, and 4 members in training up to epoch 4 in checkpoint.npz"
    monkeypatch.setattr(store.Store, "append", original)
    logged = []
    run_sweep(build_spec(spec), tmp_path / "b", progress=True, log=logged.append)
    assert any("resumed a chunk of 4 trials from checkpoint.npz at evaluation 2 of 4" in line for line in logged), logged
    assert (tmp_path / "b" / "trials.jsonl").read_bytes() == whole
    assert not (tmp_path / "b" / store.CHECKPOINT).exists()


def test_members_that_early_stopping_stops_leave_at_the_next_rung(tmp_path):
    spec = tiny(**HALVING)
    spec["train"] = {**spec["train"], "epochs": 16}
    spec["hparams"] = {**spec["hparams"], "patience": 2, "learning_rate": {"log_uniform": [0.3, 3.0]}}
    spec["search"] = {**spec["search"], "min_epochs": 4}
    journal = run_sweep(build_spec(spec), tmp_path / "es", progress=False)
    stopped = [r for r in journal if r["stopped_epoch"] or r["diverged_epoch"]]
    assert stopped
    for r in stopped:
        ended = r["stopped_epoch"] or r["diverged_epoch"]
        assert r["trained_epochs"] == ended and r["rungs"][-1]["epoch"] >= ended and r["pruned_epoch"] is None


def test_hyperband_runs_each_bracket_as_a_round(tmp_path):
    spec = tiny(**HALVING)
    spec["search"] = {"method": "hyperband", "eta": 2, "min_epochs": 2, "seeds": 1, "chunk_size": 8}
    built = build_spec(spec)
    assert halving.brackets(8, 2, 2) == [(4, [2, 4, 8]), (3, [4, 8]), (3, [8])]
    assert built.search["rounds"] == 3 and built.search["samples"] == 4
    run_sweep(built, tmp_path / "hb", progress=False)
    journal = store.read_journal(tmp_path / "hb")
    counts = [len({r["config_id"] for r in journal if r["round"] == b}) for b in range(3)]
    assert counts == [4, 3, 3]
    for b, (_, rungs) in enumerate(halving.brackets(8, 2, 2)):
        assert {r["rungs"][0]["epoch"] for r in journal if r["round"] == b} == {rungs[0]}
    # The manifest's resolved spec (samples filled in) builds again: jaxreg best retrains from it.
    assert build_spec(store.load_manifest(tmp_path / "hb")["spec"]).digest == built.digest
    best = load_best(tmp_path / "hb")
    finished = [r for r in journal if r["pruned_epoch"] is None]
    assert best.hparams["learning_rate"] == min(finished, key=lambda r: r["metrics"]["val_loss"])["hparams"]["learning_rate"]


@pytest.mark.parametrize("patch, message", [
    ({"search": {"method": "random", "eta": 3}},
     "search.eta: expected only with search.method 'halving' or 'hyperband', got 3 with search.method 'random'"),
    ({"search": {"method": "halving", "min_epochs": 3}},
     "search.min_epochs: expected a multiple of train.eval_every (2) below train.epochs (8): the first rung "
     "ranks configs on an evaluation, got 3"),
    ({"search": {"method": "halving", "eta": 1}}, "search.eta: expected an integer in [2, 100], got 1"),
    ({"search": {"method": "hyperband", "samples": 10}},
     "search.samples: expected none with search.method 'hyperband' (each bracket's configs follow from eta and "
     "the rungs), got 10"),
    ({"search": {"method": "halving", "compact": False}},
     "search.compact: expected true or nothing with search.method 'halving' (pruned members always leave the "
     "batch), got false"),
    ({"search": {"method": "grid", "compact": "yes"}}, "search.compact: expected true or false, got 'yes'"),
    ({"search": {"method": "halving"}, "cases": {"a": {}, "b": {"l2": 0.001}}},
     "search.method: expected one of 'grid', 'random', 'tpe', 'cmaes', 'gp' with [cases] (halving ranks one "
     "space's configs at its rungs), got 'halving' with cases 'a', 'b'"),
])
def test_bad_halving_settings_are_refused(patch, message):
    spec = tiny(**{**HALVING, **{k: v for k, v in patch.items() if k != "search"}})
    spec["search"] = patch["search"]
    with pytest.raises(InputError) as error:
        build_spec(spec)
    assert str(error.value) == message


def test_halving_refuses_shards(tmp_path):
    from jaxreg.report.store import Shard

    with pytest.raises(InputError, match=r"^--shard: expected none with search.method 'halving' \(its rungs rank "
                                         r"every config of a round together, in one process\), got 0/2$"):
        run_sweep(build_spec(tiny(**HALVING)), tmp_path, shard=Shard(0, 2), progress=False)
    assert not any(tmp_path.iterdir())
    with pytest.raises(InputError, match=r"^--shard: expected none with search.compact \(members of every chunk of "
                                         r"a round are gathered together, in one process\), got 1/2$"):
        run_sweep(build_spec(tiny(search={"compact": True})), tmp_path, shard=Shard(1, 2), progress=False)


def test_search_compact_lets_stopped_members_leave_and_keeps_the_rest_as_without(tmp_path):
    spec = tiny(model={"hidden": [8]}, train={"optimizer": "momentum", "epochs": 16, "eval_every": 2, "batch_size": 20},
                hparams={"learning_rate": {"values": [0.01, 0.1, 1e25, 1e30]}, "momentum": 0.9},
                search={"seeds": 2, "chunk_size": 8, "compact": True}, output={"plots": False})
    logged = []
    compact = run_sweep(build_spec(spec), tmp_path / "compact", progress=True, log=logged.append)
    spec["search"] = {**spec["search"], "compact": False}
    plain = {(r["config_id"], r["seed"]): r for r in run_sweep(build_spec(spec), tmp_path / "plain", progress=False)}
    assert "search" in json.loads((tmp_path / "plain" / "manifest.json").read_text())["spec"]
    assert "compact" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())["spec"]["search"]
    assert len(compact) == len(plain) == 8
    for r in compact:
        other = plain[(r["config_id"], r["seed"])]
        assert "rungs" not in r and "pruned_epoch" not in r
        if r["status"] == "diverged":  # left at the first segment's end, in the same chunk as without
            assert r["trained_epochs"] == r["diverged_epoch"] == 1 and {**r, "trained_epochs": None} == \
                {**other, "trained_epochs": None}
        else:  # trained on in the same chunk size, padded with copies: bitwise as without
            assert r["trained_epochs"] == 16 and {**r, "trained_epochs": None} == {**other, "trained_epochs": None}
    assert any("4 stopped, 4 go on" in line for line in logged), logged
    assert any("4 members trained in chunks of 8" in line for line in logged), logged


def test_the_rungs_plot_draws_each_config_to_the_rung_it_reached(halved):
    from jaxreg.report.folder import load_folder
    from jaxreg.report.plots import _rungs, plot_dir

    _, out, journal, _ = halved
    fig = _rungs(load_folder(out / "run"))
    (ax,) = fig.axes
    reached = {r["config_id"]: len(r["rungs"]) for r in journal}
    lengths = sorted(len(line.get_xdata()) for line in ax.get_lines())
    assert lengths == sorted(reached.values()) == [1] * 4 + [2] * 2 + [3] * 2
    assert sum(line.get_color() == "grey" for line in ax.get_lines()) == 6  # pruned
    assert all(len(line.get_xdata()) == 3 for line in ax.get_lines() if line.get_color() != "grey")
    assert (out / "run" / "rungs.png") in plot_dir(out / "run")


def _tamper(folder, config_id, metric, by=1e-3):
    """The journal with one trial's ``metric`` of ``config_id`` (seed 0) moved by ``by``: what
    ``best`` then finds when it trains that trial again."""
    lines = (folder / "trials.jsonl").read_text().splitlines()
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("config_id") == config_id and record.get("seed") == 0:
            record["metrics"][metric] += by
            lines[i] = json.dumps(record)
    (folder / "trials.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("method", ["grid", "halving"])
def test_a_retrained_best_that_differs_from_the_journal_names_the_metric_and_the_likely_cause(tmp_path, method):
    from jaxreg.sweeps.best import best_config, best_params

    spec = tiny(**HALVING)
    if method == "grid":
        spec["hparams"] = {"learning_rate": {"values": [0.01, 0.05]}}
        spec["search"] = {"method": "grid", "seeds": 2, "chunk_size": 4}
    out = tmp_path / method
    run_sweep(build_spec(spec), out, progress=False)
    best = best_config(out)
    trained = next(r for r in store.read_journal(out) if r["config_id"] == best.config_id and r["seed"] == 0)
    _tamper(out, best.config_id, "train_loss")
    notes = best_params(out)[4]
    retrained = [n for n in notes if n.startswith("seed 0:")]
    assert len(retrained) == 1
    if method == "grid":  # trained alone at the manifest's chunk size: bitwise, but for the tampered metric
        assert retrained[0] == (f"seed 0: retrained train_loss is {trained['metrics']['train_loss']!r}, the "
                                f"journal has {trained['metrics']['train_loss'] + 1e-3!r} (trained with another "
                                f"jaxreg, JAX or XLA version, or on another machine)")
    else:
        assert retrained[0].endswith("(its chunk may have shrunk as members left the batch (search.method "
                                     "'halving'), which rounds like another chunk size: a run of the config alone "
                                     "may not repeat it bit for bit)")


def test_plan_lists_every_hyperband_bracket_and_counts_them_all(tmp_path, capsys):
    from jaxreg import cli

    spec = tmp_path / "hb.toml"
    spec.write_text('name = "hb"\n[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n[train]\nloss = "bce"\n'
                    'epochs = 8\n[hparams]\nlearning_rate = { log_uniform = [0.01, 1.0] }\n[search]\n'
                    'method = "hyperband"\neta = 2\nmin_epochs = 2\nseeds = 2\n[output]\nplots = false\n')
    assert cli.main(["plan", str(spec)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hb: 10 configs x 2 seeds = 20 trials in 3 brackets (hyperband: 3 brackets of "
                               "successive halving (the best 1/2 go on), 4 configs from epoch 2; 3 configs from "
                               "epoch 4; 3 configs from epoch 8); ")
    assert lines[2].startswith("estimated time: ") and " training for 3 rounds (" in lines[2]
    assert lines[3] == ("(an upper bound for hyperband: every bracket costed as if it trained all epochs; pruned "
                        "members stop at their rung)")
    listed = [line.split("  ")[1] for line in lines[4:]]
    assert listed == ["[bracket 1]"] * 4 + ["[bracket 2]"] * 3 + ["[bracket 3]"] * 3
    journal = run_sweep(build_spec(tomllib.loads(spec.read_text())), tmp_path / "out", progress=False)
    assert sorted({r["config_id"] for r in journal}) == sorted(line.split("  ")[0] for line in lines[4:])


# --- what the report shows of a halving folder --------------------------------------------------

def _lowered_copy(halved, tmp_path):
    """A copy of the halving folder in which one config pruned at epoch 4 has a lower val_loss
    (at its rung) than the best finished config: what happens when the finished configs overfit
    after the rung. Returns the copy, the config's id and its lowered value."""
    import shutil
    _, out, journal, _ = halved
    copy = tmp_path / "lowered"
    shutil.copytree(out / "run", copy)
    rows = summarize(journal, build_spec(tiny(**HALVING)).search)
    finished_best = rows[0]["val_loss_mean"]
    pruned = next(r["config_id"] for r in journal if r["pruned_epoch"] == 4)
    lowered = finished_best - 0.1
    for r in journal:
        if r["config_id"] == pruned:
            r["metrics"]["val_loss"] = lowered
            r["rungs"][-1]["val_loss"] = lowered
    (copy / store.JOURNAL).write_text("".join(json.dumps(r) + "\n" for r in journal))
    return copy, pruned, lowered


def test_pruned_configs_are_shown_apart_and_best_has_one_definition(halved, tmp_path):
    import csv

    from jaxreg.report.compare import compare, load_folders, plot_best_so_far
    from jaxreg.report.folder import load_folder
    from jaxreg.report.summary import format_table, write_summary
    from jaxreg.sweeps.best import best_config

    copy, pruned, lowered = _lowered_copy(halved, tmp_path)
    folder = load_folder(copy)
    rows = folder.rows
    # Finished configs first, whatever the pruned one's (earlier, lower) value; each says where
    # its metrics are from.
    assert [(r["status"], r["rung"]) for r in rows[:2]] == [("finished", 8)] * 2
    mine = next(r for r in rows if r["config_id"] == pruned)
    assert (mine["rank"], mine["status"], mine["rung"], mine["val_loss_mean"]) == (3, "pruned", 4, lowered)
    assert lowered < rows[0]["val_loss_mean"] and rows[0]["selected"] and not mine["selected"]
    with open(write_summary(tmp_path, rows)) as f:
        read = list(csv.DictReader(f))
    assert [(r["status"], r["rung"]) for r in read] == [(r["status"], str(r["rung"])) for r in rows]
    table = format_table(rows, folder.search).splitlines()
    note = next(i for i, line in enumerate(table) if line.startswith("-- pruned by successive halving"))
    assert table[note - 1].startswith("2 ") and table[note + 1].startswith("3 ")
    assert table[note + 1].rstrip().endswith("pruned at epoch 4")
    assert table[2].rstrip().endswith("finished (epoch 8)")

    # compare's CSV, its best_so_far.png's line, the folder's curve and `best` agree.
    other = tmp_path / "other"
    import shutil
    shutil.copytree(halved[1] / "run", other)
    compare([copy, other], tmp_path / "cmp")
    with open(tmp_path / "cmp" / "comparison.csv") as f:
        by_label = {r["label"]: r for r in csv.DictReader(f)}
    folders = load_folders([copy, other])
    fig = plot_best_so_far(folders)
    full = fig.axes[0]
    for f_ in folders:
        line = next(ln for ln in full.get_lines() if ln.get_label().startswith(f"{f_.label}:"))
        csv_best = float(by_label[f_.label]["val_loss_mean"])
        assert line.get_ydata()[-1] == f_.best_so_far()[-1] == csv_best == f_.rows[0]["val_loss_mean"]
        assert by_label[f_.label]["best_config_id"] == best_config(f_.path).config_id == f_.rows[0]["config_id"]
    assert float(by_label["lowered"]["val_loss_mean"]) > lowered  # the pruned value is not the best


def test_search_space_draws_every_swept_axis(halved, tmp_path):
    from jaxreg.report.folder import load_folder
    from jaxreg.report.plots import _search_space, search_space_pairs

    copy, _, _ = _lowered_copy(halved, tmp_path)
    journal = store.read_journal(copy)
    ids = sorted({r["config_id"] for r in journal})
    for r in journal:  # a third numeric axis, as a spec sweeping momentum too would journal it
        r["point"]["momentum"] = 0.5 + 0.05 * ids.index(r["config_id"])
    (copy / store.JOURNAL).write_text("".join(json.dumps(r) + "\n" for r in journal))
    folder = load_folder(copy)
    assert folder.numeric == ["learning_rate", "l2", "momentum"]
    assert search_space_pairs(folder) == [("learning_rate", "l2"), ("learning_rate", "momentum"), ("l2", "momentum")]
    fig = _search_space(folder)
    drawn = {(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_xlabel() and ax.collections}  # not the bar
    assert drawn == set(search_space_pairs(folder))


def test_sampled_points_titles_do_not_overlap(halved, tmp_path):
    import shutil

    from jaxreg.report.compare import load_folders, plot_sampled_points

    paths = []
    for name in ("a", "b"):
        shutil.copytree(halved[1] / "run", tmp_path / name)
        paths.append(tmp_path / name)
    folders = load_folders(paths)
    for folder in folders:  # a long label, as a results folder's path may give
        folder.label = f"results/search-repeats-20/seed-{folder.label}/coarse-to-fine-top-k-zoom-around-best"
    fig = plot_sampled_points(folders)
    fig.canvas.draw()
    left, right = (ax.title.get_window_extent() for ax in fig.axes[:2])
    assert left.x1 < right.x0 and left.x1 <= fig.axes[0].get_window_extent().x1 + 30
