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

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from jaxreg.errors import InputError
from jaxreg.hparams import make_hparams, stack_hparams
from jaxreg.report.store import MANIFEST, Shard, Store, load_manifest, shard_journals
from jaxreg.report.summary import as_float, chance_rate, rank_key
from jaxreg.sweeps.build import Spec
from jaxreg.sweeps.checkpoint import ChunkCheckpoint
from jaxreg.sweeps.cost import (bytes_per_member, cache_hits, check_fits, estimate, memory_budget_mb, padding_warning,
                                record_timing)
from jaxreg.sweeps.halving import METHODS as HALVING, STATE as HALVING_STATE, brackets as halving_brackets, compacts, rung_epochs, train_halving
from jaxreg.sweeps.records import curve_arrays, local_devices, trial_record
from jaxreg.sweeps.samplers import NEEDS as SAMPLER_PACKAGES, check_replay, model_rounds
from jaxreg.sweeps.space import MODEL_METHODS, Config, Space
from jaxreg.sweeps.spec import compute_difference
from jaxreg.batch import segment_blocks, train_batch

_MIN_CHUNK = 2  # XLA rounds a batch of one differently: never compile one
CPU_CHUNK = 64  # the most members per chunk on a CPU (the cheapest member-step there: benchmarks/RESULTS.md)


def config_id(config: Config) -> str:
    """A stable id from the config's case and hparams values: the same config, the same id."""
    text = json.dumps({"case": config.case, "hparams": config.hparams}, sort_keys=True,
                      default=float, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


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


def not_worse(values: Sequence, *, minimize: bool = True, z: float = 1.0) -> np.ndarray | None:
    """Which configs are not significantly worse than the best, from each one's values over seeds.

    The best config has the best mean. Config i is kept when its mean is worse than the best's
    by at most ``z`` standard errors of the difference, ``z * sigma * sqrt(1/n_i + 1/n_best)``
    (``n``: seeds), where ``sigma**2`` is the seed noise: the median over configs of the
    variance across their seeds (a median, so that a few unstable configs do not make every
    config look alike). A config with a failed seed (NaN or infinite) is never kept. Returns
    None when the noise cannot be estimated (no config has two seeds).
    """
    sign = 1.0 if minimize else -1.0
    values = [sign * np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
    ok = np.array([bool(np.isfinite(v).all()) for v in values])
    variances = [np.var(v, ddof=1) for v, fine in zip(values, ok) if fine and len(v) > 1]
    if not variances:
        return None
    if not ok.any():
        return ok
    means = np.array([v.mean() if fine else np.inf for v, fine in zip(values, ok)])
    counts = np.array([len(v) for v in values])
    best = int(np.argmin(means))
    sigma = math.sqrt(float(np.median(variances)))
    margin = z * sigma * np.sqrt(1.0 / counts + 1.0 / counts[best])
    return ok & (means - means[best] <= margin)


def search_rounds(space: Space, score: Callable[[list[Config]], list], *, rounds: int = 1, top_k: int = 3,
                  min_width: float = 0.01, minimize: bool = True, zoom: str = "top_k",
                  z: float = 1.0) -> list[tuple[Config, float]]:
    """Runs the rounds of a search: score each round's configs, then zoom in for the next round.

    ``score(configs)`` returns, per config, a number or its values over seeds (NaN for a failed
    seed or config, ranked last). The zoom rule:

    - ``"not_worse"``: over every config tried so far, keep those not significantly worse than
      the best (:func:`not_worse`, ``z`` standard errors; with one value per config, the top
      ``top_k``), and bracket them (:meth:`Space.bracket`): each numeric axis from the nearest
      value of a rejected config below the kept ones to the nearest above.
    - ``"top_k"``: shrink each axis around the top ``top_k`` configs of the round just scored
      (:meth:`Space.zoom`).

    With ``rounds`` 1 this is a plain grid or random search. A ``space`` whose method is one of
    Optuna's samplers asks them for each round's configs instead
    (:func:`jaxreg.sweeps.samplers.model_rounds`). Returns every (config, mean), in order.
    """
    if space.method in MODEL_METHODS:
        return model_rounds(space, score, rounds=rounds, minimize=minimize)
    history, axes, values = [], None, []
    for round_index in range(rounds):
        configs = space.configs(round_index, axes)
        scored = [np.atleast_1d(np.asarray(v, dtype=float)) for v in score(configs)]
        means = [float(np.mean(v)) for v in scored]
        history.extend(zip(configs, means))
        values.extend(scored)
        if round_index + 1 == rounds:
            break
        if space.method == "hyperband":  # each bracket draws afresh: nothing zooms
            continue
        if zoom == "not_worse":
            kept = not_worse(values, minimize=minimize, z=z)
            if kept is None:  # one value a config: no noise to measure, the top_k of all so far
                ranked = sorted(range(len(history)), key=lambda i: rank_key(history[i][1], minimize))
                kept = np.isin(np.arange(len(history)), ranked[:top_k])
            axes = space.bracket([c for c, _ in history], kept, min_width=min_width)
        else:
            ranked = sorted(zip(configs, means), key=lambda item: rank_key(item[1], minimize))
            axes = space.zoom(axes, [config for config, _ in ranked[:top_k]], min_width=min_width)
    return history


_progress = {"journaled": None, "checkpoint": None, "rung": None}  # what the running sweep has kept


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


def kept() -> str:
    """What the sweep running in this process has kept so far, in words (for the one line an
    interrupted command prints)."""
    journaled, checkpoint = _progress["journaled"], _progress["checkpoint"]
    if journaled is None:
        return "nothing was trained yet"
    words = f"kept {journaled} trial{'s' * (journaled != 1)} in the journal"
    if checkpoint is not None and checkpoint.saved is not None:
        words += f", and the chunk in training up to evaluation {checkpoint.saved} in {checkpoint.path.name}"
    if _progress["rung"] is not None:
        words += f", and the members left after epoch {_progress['rung']} in {HALVING_STATE}"
    return words


def owns(shard: Shard | None, chunk_index: int) -> bool:
    """Whether ``shard`` trains the sweep's chunk ``chunk_index``: chunks are dealt round-robin,
    counted over every round (and case group) in the order one process trains them."""
    return shard is None or chunk_index % shard.count == shard.index


def run_sweep(spec: Spec, out_dir: str | Path, *, overwrite: bool = False, progress: bool = True,
              log: Callable[[str], None] | None = None, checkpoint_seconds: float = 10.0,
              shard: Shard | None = None, executor=None, poll_seconds: float = 2.0) -> list[dict]:
    """Runs (or resumes) a sweep into ``out_dir``; returns the journal's records.

    A chunk in training is kept in ``out_dir/checkpoint.npz`` at the end of a segment, at most
    every ``checkpoint_seconds``, and a rerun resumes it there: an interruption loses at most
    that much training (plus a segment). Keeping it changes no number.

    ``shard``: train only that shard's chunks (:func:`owns`), into a journal of its own; the
    shards of a sweep may run one after another or side by side, on any hosts that share
    ``out_dir``. Each round's trials are split into chunks exactly as one process splits them,
    so every trial gives bitwise what one process gives. A coarse-to-fine round waits (polling
    every ``poll_seconds``) until the other shards have journaled the round it zooms from. The
    run that finds the whole sweep journaled merges the shards into ``trials.jsonl``, in the
    order one process would have written it.

    ``executor``: trains the chunks elsewhere (:class:`jaxreg.cluster.RayExecutor`)
    instead of in this process; the journal, resume and rounds are the same.

    Raises :class:`InputError` before anything is trained or written when ``out_dir`` holds the
    results of a different spec and ``overwrite`` is False.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    if shard is not None and overwrite:
        raise InputError("--overwrite: expected no --shard with it (a shard must not remove the other "
                         "shards' results), got both; overwrite with one unsharded run first")
    compacting = compacts(spec.search)
    if compacting and (shard is not None or executor is not None):
        what = (f"search.method {spec.search['method']!r} (its rungs rank every config of a round together, in one "
                f"process)" if spec.search["method"] in HALVING else
                "search.compact (members of every chunk of a round are gathered together, in one process)")
        raise InputError(f"--{'shard' if shard is not None else 'ray'}: expected none with {what}, "
                         f"got {str(shard) if shard is not None else 'a Ray cluster'}")
    store = Store(Path(out_dir), shard)
    if spec.search["method"] in MODEL_METHODS and not overwrite and (store.out / MANIFEST).is_file():
        check_replay(load_manifest(store.out), spec.search["method"])
    # Chunk sizes first: a memory budget too small for even two members fails before any write.
    plans = []
    for variant in spec.variants:
        members_per_round = variant.space.count(0) * len(spec.seeds)
        plans.append((variant, choose_chunk_size(spec, members_per_round, variant), members_per_round))
    check_fits([estimate(variant, members, size, timed=False) for variant, size, members in plans])
    runners = [(variant, train_batch(variant.config, variant.dataset, size), members)
               for variant, size, members in plans]
    if executor is not None:
        executor.check(spec)
    chunk_sizes = [runner.chunk_size(members) for _, runner, members in runners]
    rounds, metric = spec.search["rounds"], spec.search["metric"]
    store.prepare(spec, overwrite=overwrite, grows=lambda previous: compute_difference(previous, spec.resolved))
    for (_, _, members), size in zip(runners, chunk_sizes):
        if (padding := padding_warning(size, members)) is not None:
            log(padding)
    try:
        records = store.read_journal()
        damaged = store.drop_unreadable_curves(records)
        if damaged:
            log(f"{store.curves_dir}: {len(damaged)} curves file{'s' * (len(damaged) > 1)} missing or damaged "
                f"({', '.join(damaged[:3])}{', ...' if len(damaged) > 3 else ''}): "
                f"{'their trials are' if len(damaged) > 1 else 'its trial is'} trained again")
        _progress.update(journaled=len(records), checkpoint=None, rung=None)
        chance = {case or "": chance_rate(v.dataset.train.y, v.config.loss) for v in spec.variants for case in v.cases}
        extra = {**({"shard": str(shard)} if shard is not None else {}),
                 **(executor.describe() if executor is not None else {})}
        store.start_run(spec, chunk_sizes[0] if len(chunk_sizes) == 1 else chunk_sizes,
                        {case: rate for case, rate in chance.items() if rate is not None}, extra,
                        packages=SAMPLER_PACKAGES.get(spec.search["method"], ()), scales=feature_scales(spec),
                        devices=local_devices())
        done_before, trained = len(records), 0
        order: list[tuple[str, int]] = []  # every trial, in the order one process journals them
        chunks_before = 0                  # chunks of the rounds before: the round-robin's offset
        started = time.perf_counter()
        for index, ((variant, runner, _), chunk_size) in enumerate(zip(runners, chunk_sizes)):
            prefix = "" if len(runners) == 1 else f"{', '.join(map(str, variant.cases))}: "

            def score(configs: list[Config], variant=variant, runner=runner, chunk_size=chunk_size,
                      index=index) -> list[float]:
                nonlocal trained, chunks_before
                label = prefix + (f"round {configs[0].round + 1}/{rounds}" if rounds > 1 or not prefix else "")
                label = label.rstrip(": ")
                trials = [(config_id(c), c, seed) for c in configs for seed in spec.seeds]
                order.extend((cid, seed) for cid, _, seed in trials)
                mine = [trial for i, trial in enumerate(trials) if owns(shard, chunks_before + i // chunk_size)]
                chunks_before += -(-len(trials) // chunk_size)
                pending = [t for t in mine if (t[0], t[2]) not in records]
                if pending and compacting:
                    trained += train_halving(
                        variant, runner, chunk_size, trials, store, records, rungs=_rungs(spec, variant, configs),
                        eta=spec.search.get("eta", 1), metric=metric, minimize=spec.minimize, digest=spec.digest,
                        label=label or "sweep", save_params=spec.output["params"], log=log, progress=progress,
                        prune=spec.search["method"] in HALVING, checkpoint_seconds=checkpoint_seconds,
                        on_kept=lambda epoch: _progress.update(journaled=len(records), rung=epoch))
                elif pending and executor is not None:
                    trained += executor.train_round(index, variant, chunk_size, pending, store, records, label,
                                                    progress, spec.output["params"], log)
                elif pending:
                    trained += _train_round(variant, runner, chunk_size, pending, store, records,
                                            label, progress, spec.output["params"],
                                            lambda chunk, said: ChunkCheckpoint(
                                                store.out, _chunk_tag(spec, chunk_size, chunk),
                                                checkpoint_seconds, said, store.checkpoint_name), log)
                elif progress:
                    log(f"{label}: all {len(mine)} trials{' of shard ' + str(shard) if shard else ''} "
                        f"already in the journal")
                if shard is not None and configs[0].round + 1 < rounds:  # the next round zooms from these
                    _wait_for(trials, store, records, label, shard, poll_seconds, log)
                return [[as_float(records[(config_id(c), seed)]["metrics"][metric])
                         if (config_id(c), seed) in records else math.nan for seed in spec.seeds] for c in configs]

            search_rounds(variant.space, score, rounds=rounds, top_k=spec.search["top_k"],
                          min_width=spec.search["min_width"], minimize=spec.minimize,
                          zoom=spec.search.get("zoom", "top_k"), z=spec.search.get("z", 1.0))
        if shard is not None or executor is not None or shard_journals(store.out):
            records.update(store.read_journal())
            merged = store.merge_shards(order, records)
            if not merged and progress:
                missing = sum(key not in records for key in order)
                log(f"shard {shard}: {trained} trials trained; {missing} trials of other shards are not "
                    f"journaled yet (run them; the last one merges the journals)")
        store.finish_run(trained, time.perf_counter() - started,
                         executor.finish() if executor is not None else None)
    finally:
        store.unlock()
    if done_before and progress:
        log(f"resumed: {done_before} trials were already in {store.journal_path}, {trained} trained now")
    return list(records.values())


def _rungs(spec: Spec, variant, configs: list[Config]) -> list[int]:
    """The rung epochs of a halving round (hyperband: of the bracket that round is); with
    search.compact alone, the end of every segment (where stopped members leave)."""
    s, epochs = spec.search, variant.config.epochs
    if s["method"] not in HALVING:
        every, n_evals = variant.config.eval_every, variant.config.n_evals
        per = segment_blocks(n_evals)
        return [(block + per) * every for block in range(0, n_evals, per)]
    if s["method"] == "hyperband":
        return halving_brackets(epochs, s["min_epochs"], s["eta"])[configs[0].round][1]
    return rung_epochs(epochs, s["min_epochs"], s["eta"])


def _wait_for(trials: list, store: Store, records: dict, label: str, shard, poll_seconds: float, log) -> None:
    """Waits until every trial of ``trials`` is journaled (by this run or another shard)."""
    missing = [t for t in trials if (t[0], t[2]) not in records]
    said = None
    while missing:
        if said is None or time.monotonic() - said > 60:
            others = f"shard {1 - shard.index}/2" if shard.count == 2 else f"the shards other than {shard}"
            running = {name.split()[0] for name in store.running_shards()} - {str(shard)}
            idle = [f"{i}/{shard.count}" for i in range(shard.count)
                    if i != shard.index and f"{i}/{shard.count}" not in running]
            log(f"{label}: waiting for {len(missing)} trial{'s' * (len(missing) > 1)} from {others} "
                f"before zooming in" + (f" (not running now: start {', '.join(idle)} with the same spec "
                                        f"and --out)" if idle else ""))
            said = time.monotonic()
        time.sleep(poll_seconds)
        records.update(store.read_journal())
        missing = [t for t in missing if (t[0], t[2]) not in records]


def _chunk_tag(spec: Spec, chunk_size: int, chunk: list) -> str:
    """What a chunk trains: the spec, the chunk size and its trials in order."""
    text = json.dumps([spec.digest, chunk_size, [(cid, int(seed)) for cid, _, seed in chunk]])
    return hashlib.sha256(text.encode()).hexdigest()


def _train_round(variant, runner, chunk_size: int, pending: list, store, records: dict,
                 label: str, progress: bool, save_params: bool, checkpoint_of, log) -> int:
    """Trains ``pending`` chunk by chunk, journaling each chunk as it ends.

    With ``progress``, a bar counts the epochs trained (chunks x epochs, moving after every
    segment of a chunk), its rate and ETA measured from the end of the compilation, which is
    announced and timed on its own lines; the trials journaled so far are its postfix.
    """
    bar = None
    epochs = variant.config.epochs
    n_chunks = -(-len(pending) // chunk_size)
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_chunks * epochs, desc=label or "sweep", unit="epoch", file=sys.stderr,
                   dynamic_ncols=True, postfix=f"0/{len(pending)} trials")

    measured = {"hits": cache_hits()}  # what this round's first chunk shows of the program's cost

    def compiling(seconds):
        if seconds is not None and cache_hits() == measured["hits"]:  # compiled, not loaded from the cache
            measured["compile_seconds"] = seconds
        if bar is None:
            return
        if seconds is None:
            bar.write(f"{label or 'sweep'}: compiling the training program ({chunk_size} members per chunk) ...",
                      file=sys.stderr)
        else:
            bar.write(f"{label or 'sweep'}: compiled in {seconds:.1f} s", file=sys.stderr)
            bar.reset(total=n_chunks * epochs)  # the rate and ETA count training only

    try:
        for index, start in enumerate(range(0, len(pending), chunk_size)):
            chunk = pending[start:start + chunk_size]
            seeds = np.array([seed for _, _, seed in chunk])
            hparams = stack_hparams(make_hparams(variant.model, **config.hparams) for _, config, _ in chunk)
            def said(at, why, n=len(chunk)):
                if at is not None and progress:
                    log(f"{label or 'sweep'}: resumed a chunk of {n} trials from {store.checkpoint_name} at evaluation {at} "
                        f"of {variant.config.n_evals}")
                elif why is not None and progress:
                    log(f"{label or 'sweep'}: {store.checkpoint_name} not used ({why}): the chunk trains from its start")

            def advanced(done, total, first=index * epochs):
                if bar is not None:
                    bar.n = first + done * epochs // total
                    bar.refresh()

            checkpoint = checkpoint_of(chunk, said)
            _progress.update(journaled=len(records), checkpoint=checkpoint)
            started = time.perf_counter()
            result = runner(seeds, hparams, variant.init_params, checkpoint=checkpoint, progress=advanced,
                            compiling=compiling)
            if index == 0 and (checkpoint.resumed or (None,))[0] is None:  # trained from its start
                training = time.perf_counter() - started - measured.get("compile_seconds", 0.0)
                record_timing(variant, chunk_size, epoch_seconds=training / epochs,
                              **{k: v for k, v in measured.items() if k == "compile_seconds"})
            new = [trial_record(cid, config, seed, i, result, hparams)
                   for i, (cid, config, seed) in enumerate(chunk)]
            for i, record in enumerate(new):
                store.write_curves(record, curve_arrays(result, i, save_params, variant.config.eval_epochs))
            store.append(new)
            for record in new:
                records[(record["config_id"], record["seed"])] = record
            _progress.update(journaled=len(records), checkpoint=None)
            checkpoint.clear()
            if bar is not None:
                bar.set_postfix_str(f"{start + len(chunk)}/{len(pending)} trials")
    finally:
        if bar is not None:
            bar.close()
    return len(pending)
