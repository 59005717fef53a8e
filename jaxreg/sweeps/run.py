"""Running a sweep: rounds of configs x seeds through ONE compiled program, journaled as they finish.

``run_sweep(spec, out_dir)`` trains every (config, seed) of a :class:`jaxreg.sweeps.Spec` in
fixed-size chunks of one compiled ``train_batch`` program (the same program for every chunk
and every coarse-to-fine round: zero recompiles), appending one line per finished trial to
``out_dir/trials.jsonl``. Rerunning on the same folder resumes: trials already in the journal
are never recomputed, and because a member's result depends only on its hparams, its seed
and the chunk size, the resumed sweep gives the same numbers as an uninterrupted one.

Files in ``out_dir`` (see :mod:`jaxreg.report.store`): ``manifest.json``, ``trials.jsonl``,
``curves/CONFIG_SEED.npz``, ``summary.csv`` and the plots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import jax

from jaxreg.batch import segment_blocks, train_batch
from jaxreg.errors import InputError
from jaxreg.report.files import MANIFEST
from jaxreg.report.journal import shard_journals
from jaxreg.report.locks import Shard
from jaxreg.report.manifest import load_manifest
from jaxreg.report.store import Store
from jaxreg.report.summary import chance_rate
from jaxreg.sweeps.build import Spec
from jaxreg.sweeps.cost import bytes_per_member, check_fits, estimate, memory_budget_mb, padding_budget, padding_warning
from jaxreg.sweeps.executor import Executor, Progress, owns  # noqa: F401 - owns re-exported
from jaxreg.sweeps.halving import METHODS as HALVING, Halving, Race, brackets as halving_brackets, compacts, rung_epochs
from jaxreg.sweeps.path import Path as PenaltyPath, mixes as path_mixes, plan_of as path_plan
from jaxreg.sweeps.records import local_devices
from jaxreg.sweeps.samplers import NEEDS as SAMPLER_PACKAGES, check_replay
from jaxreg.sweeps.space import MODEL_METHODS
from jaxreg.sweeps.spec import compute_difference
from jaxreg.sweeps.strategies import EachRound, config_id, make_search, not_worse, search_rounds  # noqa: F401 - re-exported

_MIN_CHUNK = 2  # XLA rounds a batch of one differently: never compile one
CPU_CHUNK = 64  # the most members per chunk on a CPU (the cheapest member-step there: benchmarks/RESULTS.md)


def choose_chunk_size(spec: Spec, members_per_round: int, variant=None) -> int:
    """``search.chunk_size`` if given, else as many members as fit ``search.memory_budget_mb``
    (at most a round's trials; ``"auto"``: see :func:`jaxreg.sweeps.cost.memory_budget_mb`).

    Depends on the spec alone (never on how many trials remain), so a resumed sweep runs the
    same chunks' program and gives bitwise the same numbers.

    On a CPU a chunk holds at most ``CPU_CHUNK`` members, in chunks of equal size: beyond
    that the members' params and optimizer state leave the cache and a member-step costs more
    (measured: ``benchmarks/run.py``'s scaling table, ``benchmarks/RESULTS.md``).
    """
    if spec.search["chunk_size"] is not None:
        return max(spec.search["chunk_size"], _MIN_CHUNK)
    cap = CPU_CHUNK if jax.default_backend() == "cpu" else None
    per_member = bytes_per_member(variant or spec)
    budget_mb = memory_budget_mb(spec.search["memory_budget_mb"])
    fit = int(budget_mb * 2**20 // per_member)
    if fit < _MIN_CHUNK:
        given = spec.search["memory_budget_mb"]
        raise InputError(f"search.memory_budget_mb: expected at least "
                        f"{math.ceil(_MIN_CHUNK * per_member / 2**20)} MB "
                        f"(2 members), got {given if given != 'auto' else f'auto ({budget_mb:g} MB here)'}")
    size = max(_MIN_CHUNK, min(fit, members_per_round))
    if cap is not None and size > cap:  # as many chunks as the cap needs, of equal size (no padding wasted)
        size = max(_MIN_CHUNK, -(-members_per_round // -(-members_per_round // cap)))
    return size


def feature_scales(spec: Spec) -> dict:
    """``{case or "": {"feature_std": [smallest, largest], "standardized": bool}}`` for the cases
    trained on rows of features (:func:`jaxreg.data.from_arrays` measures them), for the
    manifest: a finding says when features differ in scale and nothing standardized them."""
    scales = {}
    for variant in spec.variants:
        info = variant.dataset.info
        if info.get("feature_std"):
            for case in variant.cases:
                scales[case or ""] = {"feature_std": list(info["feature_std"]),
                                      "standardized": info.get("standardize") is not None}
    return scales


POLL_SECONDS = 2.0  # how often a shard looks whether the others have journaled a round it zooms from


def run_sweep(spec: Spec, out_dir: str | Path, *, overwrite: bool = False, progress: bool | Progress = True,
              log: Callable[[str], None] | None = None, shard: Shard | None = None, executor: Executor | None = None,
              strategy: Callable | None = None) -> list[dict]:
    """Runs (or resumes) a sweep into ``out_dir``; returns the journal's records.

    The study loop (:func:`study`): per variant of the spec, its strategy asks for members to
    train (``strategy(spec, variant, chunk_size)``, default :func:`default_strategy`: each round
    to the end, or halving's rungs), the executor trains and journals them, the strategy is
    told. The members in training are kept in ``out_dir/checkpoint.npz`` at the end of a
    segment, at most every ``Executor(checkpoint_seconds=...)`` (10 s), and a rerun resumes
    there: an interruption loses at most that much training (plus a segment). Keeping it
    changes no number.

    ``progress``: True (bars and lines on stderr, or through ``log``), False (quiet), or a
    :class:`jaxreg.sweeps.executor.Progress` of the caller's.

    ``shard``: train only that shard's chunks (dealt round-robin over every round's chunks),
    into a journal of its own; the shards of a sweep may run one after another or side by
    side, on any hosts that share ``out_dir``. Each round's trials are split into chunks exactly
    as one process splits them, so every trial gives bitwise what one process gives. A
    coarse-to-fine round waits until the other shards have journaled the round it zooms from.
    The run that finds the whole sweep journaled merges the shards into ``trials.jsonl``, in
    the order one process would have written it.

    ``executor``: an :class:`jaxreg.sweeps.executor.Executor` (default: one in this process),
    or :class:`jaxreg.sweeps.remote.RayExecutor` to train the chunks elsewhere; the journal,
    resume and rounds are the same.

    Raises :class:`InputError` before anything is trained or written when ``out_dir`` holds the
    results of a different spec and ``overwrite`` is False.
    """
    progress = as_progress(progress, log)
    _check_executor(spec, shard, overwrite, executor)
    store = Store(Path(out_dir), shard)
    if spec.search["method"] in MODEL_METHODS and not overwrite and (store.out / MANIFEST).is_file():
        check_replay(load_manifest(store.out), spec.search["method"])
    runners = _runners(spec)  # a memory budget too small for even two members fails before any write
    executor = executor or Executor()
    executor.check(spec)
    store.prepare(spec, overwrite=overwrite, grows=lambda previous: compute_difference(previous, spec.resolved))
    for _, runner, size, members in runners:
        if (padding := padding_warning(size, members)) is not None:
            progress.log(padding)
    try:
        records = _open(store, spec, runners, executor, progress)
        done_before, started, order = len(records), time.perf_counter(), {}  # order: every trial, as one process journals them
        for index, (variant, runner, size, _) in enumerate(runners):
            executor.begin(index, variant, runner, (strategy or default_strategy)(spec, variant, size))
            study(executor, records, order, wait=None if shard is None else
                  lambda ask: _wait_for(ask, store, records, shard, progress.log))
        if shard is not None or executor.remote or shard_journals(store.out):
            records.update(store.read_journal())
            if not store.merge_shards(list(order), records) and progress.bars:
                missing = sum(key not in records for key in order)
                progress.log(f"shard {shard}: {executor.trained} trials trained; {missing} trials of other shards are "
                             f"not journaled yet (run them; the last one merges the journals)")
        store.finish_run(executor.trained, time.perf_counter() - started, executor.finish())
    finally:
        store.unlock()
    if done_before and progress.bars:
        progress.log(f"resumed: {done_before} trials were already in {store.journal_path}, {executor.trained} "
                     f"trained now")
    return list(records.values())


def _runners(spec: Spec) -> list[tuple]:
    """Per variant: ``(variant, compiled runner, chunk size, members a round)``; refuses a
    sweep that does not fit the memory budget."""
    plans = []
    for variant in spec.variants:
        members = variant.space.count(0) * len(spec.seeds)
        if spec.search["method"] == "path":  # a point's members: each mix of each config
            members *= len(path_mixes(spec.search))
        plans.append((variant, choose_chunk_size(spec, members, variant), members))
    check_fits([estimate(variant, members, size, timed=False) for variant, size, members in plans])
    runners = []
    for variant, size, members in plans:
        runner = train_batch(variant.config, variant.dataset, size)
        runners.append((variant, runner, runner.chunk_size(members), members))
    return runners


def _open(store: Store, spec: Spec, runners: list, executor: Executor, progress: Progress) -> dict:
    """The journal so far (trials whose curves are lost are trained again), the run recorded in
    the manifest, and the executor opened on them."""
    records = store.read_journal()
    damaged = store.drop_unreadable_curves(records)
    if damaged:
        progress.log(f"{store.curves_dir}: {len(damaged)} curves file{'s' * (len(damaged) > 1)} missing or damaged "
                     f"({', '.join(damaged[:3])}{', ...' if len(damaged) > 3 else ''}): "
                     f"{'their trials are' if len(damaged) > 1 else 'its trial is'} trained again")
    progress.journaled = len(records)
    chance = {case or "": chance_rate(v.dataset.train.y, v.config.loss) for v in spec.variants for case in v.cases}
    sizes = [size for _, _, size, _ in runners]
    extra = {**({"shard": str(store.shard)} if store.shard is not None else {}), **executor.describe()}
    store.start_run(spec, sizes[0] if len(sizes) == 1 else sizes,
                    {case: rate for case, rate in chance.items() if rate is not None}, extra,
                    packages=SAMPLER_PACKAGES.get(spec.search["method"], ()), scales=feature_scales(spec),
                    devices=local_devices())
    executor.open(store, records, progress, digest=spec.digest, save_params=spec.output["params"], shard=store.shard)
    return records


def study(executor, history: dict, order: dict, wait=None) -> None:
    """The study loop of one variant: its strategy asks, the executor trains and journals, the
    strategy is told, until it asks nothing more. ``order`` gains every trial asked."""
    strategy = executor.strategy
    while (ask := strategy.ask(history)) is not None:
        ask = executor.resumed(ask)
        order.update(dict.fromkeys(t.key for t in ask.trials))
        for outcomes in executor.train(ask):
            executor.journal(strategy.tell(history, outcomes), ask.segment)
        if wait is not None and not ask.last:  # the next ask is decided from these trials
            wait(ask)
    executor.settle()


def _check_executor(spec: Spec, shard, overwrite: bool, executor) -> None:
    if shard is not None and overwrite:
        raise InputError("--overwrite: expected no --shard with it (a shard must not remove the other "
                         "shards' results), got both; overwrite with one unsharded run first")
    remote = executor is not None and executor.remote
    if spec.search["method"] == "path" and (shard is not None or remote):
        raise InputError(f"--{'shard' if shard is not None else 'ray'}: expected none with search.method 'path' "
                         f"(each point starts from the params of the point before, kept in one process), "
                         f"got {str(shard) if shard is not None else 'a Ray cluster'}")
    if compacts(spec.search) and (shard is not None or remote):
        what = (f"search.method {spec.search['method']!r} (its rungs rank every config of a round together, in one "
                f"process)" if spec.search["method"] in HALVING else
                "search.compact (members of every chunk of a round are gathered together, in one process)")
        raise InputError(f"--{'shard' if shard is not None else 'ray'}: expected none with {what}, "
                         f"got {str(shard) if shard is not None else 'a Ray cluster'}")


def as_progress(progress, log=None) -> Progress:
    """``progress`` as a :class:`Progress`: True (bars and lines), False or None (quiet), or the
    caller's own."""
    if isinstance(progress, bool) or progress is None:
        return Progress(log, bars=bool(progress))
    return progress


def default_strategy(spec: Spec, variant, chunk_size: int):
    """The strategy of ``variant``'s search: halving's rungs (also for ``search.compact``), a
    path's points (:class:`jaxreg.sweeps.path.Path`), or each round to the end."""
    s, config = spec.search, variant.config
    prefix = f"{', '.join(map(str, variant.cases))}: " if len(spec.variants) > 1 else ""
    rounds = s["rounds"]

    def label(round_index: int) -> str:
        text = prefix + (f"round {round_index + 1}/{rounds}" if rounds > 1 or not prefix else "")
        return text.rstrip(": ") or "sweep"

    if s["method"] == "path":
        plan = path_plan(s, config.epochs)
        # one segment length divides both budgets: one compiled program for every point
        segment = math.gcd(segment_blocks(config.n_evals), s["path_epochs"] // config.eval_every)
        return PenaltyPath(variant.space.configs(0), spec.seeds, plan, chunk_size=chunk_size, every=config.eval_every,
                           segment=segment, label=lambda k: f"{prefix}path point {k + 1}/{len(plan.strengths)}")
    search = make_search(variant.space, rounds=rounds, top_k=s["top_k"], min_width=s["min_width"],
                         minimize=spec.minimize, zoom=s.get("zoom", "top_k"), z=s.get("z", 1.0))
    if compacts(s):
        race = Race(lambda round_index: _rungs(spec, variant, round_index), s.get("eta", 1), s["metric"],
                    spec.minimize, prune=s["method"] in HALVING, pad_epochs=padding_budget(variant))
        return Halving(search, spec.seeds, race, chunk_size=chunk_size, every=config.eval_every, label=label)
    return EachRound(search, spec.seeds, metric=s["metric"], epochs=config.epochs, chunk_size=chunk_size,
                     segment=segment_blocks(config.n_evals), label=label, rounds=rounds)


def _rungs(spec: Spec, variant, round_index: int) -> list[int]:
    """The rung epochs of a halving round (hyperband: of the bracket that round is); with
    search.compact alone, the end of every segment (where stopped members leave)."""
    s, epochs = spec.search, variant.config.epochs
    if s["method"] not in HALVING:
        every, n_evals = variant.config.eval_every, variant.config.n_evals
        per = segment_blocks(n_evals)
        return [(block + per) * every for block in range(0, n_evals, per)]
    if s["method"] == "hyperband":
        return halving_brackets(epochs, s["min_epochs"], s["eta"])[round_index][1]
    return rung_epochs(epochs, s["min_epochs"], s["eta"])


def _wait_for(ask, store: Store, records: dict, shard, log) -> None:
    """Waits until every trial of ``ask`` is journaled (by this run or another shard)."""
    missing = [t for t in ask.trials if t.key not in records]
    said = None
    while missing:
        if said is None or time.monotonic() - said > 60:
            others = f"shard {1 - shard.index}/2" if shard.count == 2 else f"the shards other than {shard}"
            running = {name.split()[0] for name in store.running_shards()} - {str(shard)}
            idle = [f"{i}/{shard.count}" for i in range(shard.count)
                    if i != shard.index and f"{i}/{shard.count}" not in running]
            log(f"{ask.label}: waiting for {len(missing)} trial{'s' * (len(missing) > 1)} from {others} "
                f"before zooming in" + (f" (not running now: start {', '.join(idle)} with the same spec "
                                        f"and --out)" if idle else ""))
            said = time.monotonic()
        time.sleep(POLL_SECONDS)
        records.update(store.read_journal())
        missing = [t for t in missing if t.key not in records]
