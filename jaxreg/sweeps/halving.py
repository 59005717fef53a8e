"""Successive halving and Hyperband, with pruned members gathered out of the compiled batch.

``search.method = "halving"``: one round of ``search.samples`` configs (x seeds) trains to the
first rung, ``search.min_epochs``; there every config still training is ranked by the mean over
its seeds of ``search.metric`` (of the params training would return if it ended there), the best
``1/eta`` go on to ``min_epochs * eta``, and so on until ``train.epochs``. Between rungs the
members left (the survivors, less those that early stopping or the divergence guard stopped)
are gathered on the host into chunks of the next power of two (at most the sweep's chunk
size) and continue with the same compiled step from where they were: pruned and stopped
members cost nothing after their rung. One compilation per chunk size.

``search.method = "hyperband"``: brackets of successive halving, one per round, from many
configs started at ``min_epochs`` to few trained for all epochs (Li et al., 2018):
``s_max + 1`` brackets, where ``s_max + 1`` is the number of rungs of ``halving``; bracket ``s``
(``s_max`` down to 0) draws ``ceil((s_max + 1) / (s + 1) * eta**s)`` configs and starts at
``min_epochs * eta**(s_max - s)``.

Every trial is journaled when it leaves training (pruned, stopped or at the last rung) with its
``rungs`` (epoch and the member's value at each rung it reached), ``pruned_epoch`` (None when
not pruned) and ``trained_epochs`` (epochs computed for it). After each rung the state of the
members left is kept in ``halving.npz``; a rerun resumes from the last rung kept (a member's
numbers depend on the chunk sizes it trained in, which the rungs decide, so a rerun without it
retrains the round from its start and gives the same numbers).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable

import jax
import numpy as np

from jaxreg.hparams import make_hparams, stack_hparams
from jaxreg.report.store import atomic_write, record_files
from jaxreg.report.summary import rank_key
from jaxreg.sweeps.records import curve_arrays, trial_record
from jaxreg.sweeps.rungs import METHODS, brackets, rung_epochs

STATE = "halving.npz"


def compacts(search: dict) -> bool:
    """Whether a sweep's members leave their chunk as they stop (``search``: a resolved spec's):
    halving and hyperband always, any method with ``search.compact``."""
    return search["method"] in METHODS or search.get("compact", False)


def words(epochs: int, search: dict) -> str:
    """A halving or hyperband search in words (plan)."""
    eta, first = search["eta"], search["min_epochs"]
    if search["method"] == "halving":
        rungs = rung_epochs(epochs, first, eta)
        return f"successive halving: rungs at epochs {', '.join(map(str, rungs))}, the best 1/{eta} go on"
    parts = [f"{n} configs from epoch {rungs[0]}" for n, rungs in brackets(epochs, first, eta)]
    return (f"hyperband: {len(parts)} brackets of successive halving (the best 1/{eta} go on), "
            f"{'; '.join(parts)}")


def bucket(members: int, chunk_size: int) -> int:
    """Chunk size for ``members`` left: the next power of two, at least 2, at most ``chunk_size``."""
    return min(chunk_size, max(2, 1 << (members - 1).bit_length()))


def keep(values: dict, eta: int, minimize: bool) -> set:
    """The configs (keys of ``values``: config -> its value at the rung) that go on: the best
    ``ceil(n / eta)``; NaN (a failed seed) ranks last."""
    ranked = sorted(values, key=lambda c: rank_key(values[c], minimize))
    return set(ranked[:math.ceil(len(ranked) / eta)])


def _tag(digest: str, trials: list, chunk_size: int, rungs: list[int]) -> str:
    text = json.dumps([digest, chunk_size, rungs, [(cid, int(seed)) for cid, _, seed in trials]])
    return hashlib.sha256(text.encode()).hexdigest()


def train_halving(variant, runner, chunk_size: int, trials: list, store, records: dict, *, rungs: list[int],
                  eta: int, metric: str, minimize: bool, digest: str, label: str, save_params: bool,
                  log: Callable[[str], None], progress: bool, compact: bool = True, prune: bool = True,
                  on_kept: Callable[[int | None], None] = lambda epoch: None, checkpoint_seconds: float = 10.0) -> int:
    """Successive halving over ``trials`` (``(config id, config, seed)``, the round's every
    trial), journaling each as it leaves training; returns how many were journaled now.

    ``compact=False`` keeps pruned members in their chunk, frozen (what training without
    compaction costs: the benchmark's baseline). ``prune=False`` (``search.compact`` without
    halving: ``eta`` 1, rungs at segment ends) only lets stopped members leave, and journals
    ``trained_epochs`` alone of the rung fields. ``on_kept(epoch)`` is called whenever the journal
    or the kept state grew: the epoch up to which ``halving.npz`` keeps the members left (None:
    none). Within a rung the state is kept too, after a segment, at most every
    ``checkpoint_seconds`` (0: after every segment); keeping it changes no number.
    """
    config, every = variant.config, variant.config.eval_every
    seeds = np.array([seed for _, _, seed in trials], np.uint32)
    hparams = stack_hparams(make_hparams(variant.model, **c.hparams) for _, c, _ in trials)
    n, n_evals = len(trials), config.n_evals
    blocks = [epoch // every for epoch in rungs]
    per = math.gcd(*blocks)
    tag = _tag(digest, trials, chunk_size, rungs)
    state = _load(store.out / STATE, tag, runner, seeds, hparams, variant.init_params, per)
    if state is None:
        alive, carry, curves, reached, first, resume_at = np.arange(n), None, None, [[] for _ in range(n)], 0, 0
    else:
        alive, carry, curves, reached, first, resume_at = state
        if progress:
            log(f"{label}: resumed from {STATE} at epoch {resume_at * every} (rung {first + 1} of {len(rungs)}): "
                f"{len(alive)} members left")
    said = set()

    def compiling(seconds, size):
        if progress and seconds is None and size not in said:
            log(f"{label}: compiling the training program ({size} members per chunk) ...")
        elif progress and seconds is not None:
            log(f"{label}: compiled in {seconds:.1f} s")
        said.add(size)

    journaled, kept_epoch = 0, (resume_at * every if state is not None else None)  # what halving.npz holds
    frozen_by_pruning = np.zeros(n, bool)  # compact=False: pruned members left in place
    saved_at = time.monotonic()
    for k in range(first, len(rungs)):
        begin = resume_at if k == first and resume_at else (0 if k == 0 else blocks[k - 1])
        training = alive if compact else np.arange(n)
        size = bucket(len(training), chunk_size) if compact else chunk_size
        at = {int(m): j for j, m in enumerate(training)}
        # One segment (per blocks) a call: the state can be kept between them, the numbers are
        # those of one call over the whole rung (each chunk's segments run in the same order).
        for start in range(begin, blocks[k], per):
            part = None if carry is None else jax.tree_util.tree_map(lambda leaf: leaf[training], carry)
            if part is not None and not compact:
                part = part._replace(frozen=part.frozen | frozen_by_pruning)
            part, result = runner.advance(seeds[training], jax.tree_util.tree_map(lambda a: a[training], hparams),
                                          variant.init_params, part, range(start, start + per), size, per,
                                          compiling=lambda s, size=size: compiling(s, size))
            if carry is None:
                carry = part
                curves = {name: np.full((n, n_evals, *c.shape[2:]), np.nan, c.dtype)
                          for name, c in result.curves.items()}
            else:
                carry = jax.tree_util.tree_map(lambda whole, new: _put(whole, training, new), carry, part)
            for name, c in result.curves.items():
                curves[name][alive, start:start + per] = c[[at[m] for m in alive]]
            within = start + per < blocks[k]
            if within and time.monotonic() - saved_at >= checkpoint_seconds:
                _save(store.out / STATE, tag, k, alive, carry, curves, reached, start + per)
                saved_at, kept_epoch = time.monotonic(), (start + per) * every
                on_kept(kept_epoch)
        values = {int(m): float(result.final[metric][at[m]]) for m in alive}
        for m in alive:
            reached[m].append((rungs[k], values[int(m)]))
        stopped = {int(m) for m in alive if bool(carry.frozen[m])}
        last = k + 1 == len(rungs)
        pruned = set()
        if not last:
            by_config = {}
            for m in alive:
                by_config.setdefault(trials[m][0], []).append(int(m))
            racing = {cid: float(np.mean([values[m] for m in ms])) for cid, ms in by_config.items()
                      if any(m not in stopped for m in ms)}
            kept = keep(racing, eta, minimize)
            pruned = {m for cid, ms in by_config.items() if cid in racing and cid not in kept for m in ms
                      if m not in stopped}
        leaving = [int(m) for m in alive if last or int(m) in stopped or int(m) in pruned]
        new = []
        member = jax.tree_util.tree_map(lambda a: a[[at[m] for m in leaving]], result)
        member = member._replace(curves={name: curves[name][leaving] for name in curves})
        sub_hparams = jax.tree_util.tree_map(lambda a: a[leaving], hparams)
        for i, m in enumerate(leaving):
            cid, trial_config, seed = trials[m]
            if (cid, int(seed)) in records:
                continue
            record = trial_record(cid, trial_config, seed, i, member, sub_hparams)
            if prune:
                record["rungs"] = [{"epoch": e, metric: v} for e, v in reached[m]]
                record["pruned_epoch"] = rungs[k] if m in pruned else None
            stopped_at = int(member.stopped_epoch[i]) or int(member.diverged_epoch[i])
            record["trained_epochs"] = min(stopped_at, rungs[k]) if stopped_at else rungs[k]
            store.write_curves(record, curve_arrays(member, i, save_params, config.eval_epochs))
            new.append(record)
        store.append(new)
        for record in new:
            records[(record["config_id"], record["seed"])] = record
        journaled += len(new)
        on_kept(kept_epoch)  # the kept state stays valid: a rerun skips the members journaled since
        left = set(leaving)
        alive = np.array([m for m in alive if int(m) not in left], np.int64)
        if not compact:
            frozen_by_pruning[list(pruned)] = True
        if progress and prune:
            kept_configs = len({trials[m][0] for m in alive})
            going = f"{kept_configs} config{'s go' if kept_configs != 1 else ' goes'} on"
            log(f"{label}: rung {k + 1}/{len(rungs)} (epoch {rungs[k]}): {len(training)} members trained in chunks "
                f"of {size}; {len(pruned)} pruned, {len(stopped)} stopped" +
                (f"; {going}" if not last else ""))
        elif progress:
            log(f"{label}: epoch {rungs[k]}/{rungs[-1]}: {len(training)} members trained in chunks of {size}"
                + (f"; {len(stopped)} stopped, {len(alive)} go on" if not last else ""))
        if not last:
            _save(store.out / STATE, tag, k + 1, alive, carry, curves, reached, blocks[k])
            saved_at, kept_epoch = time.monotonic(), rungs[k]
            on_kept(kept_epoch)
    (store.out / STATE).unlink(missing_ok=True)
    on_kept(None)
    return journaled


def _put(whole, index, new):
    whole = np.array(whole, copy=True)
    whole[index] = new
    return whole


def _save(path, tag: str, next_rung: int, alive, carry, curves: dict, reached: list, next_block: int) -> None:
    """The members left (``alive``), their loop state and curves, at evaluation block
    ``next_block``, in rung ``next_rung`` (where the rerun goes on)."""
    leaves = jax.tree_util.tree_leaves(carry)
    arrays = {"tag": np.array(tag), "next_rung": np.array(next_rung), "next_block": np.array(next_block),
              "alive": np.asarray(alive), "reached": np.array(json.dumps(reached))}
    arrays.update({f"carry/{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})
    arrays.update({f"curves/{name}": value for name, value in curves.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    record_files(path.parent, [path.name])
    atomic_write(path, buffer.getvalue())


def _load(path, tag: str, runner, seeds, hparams, init_params, per: int):
    """The kept state ``(alive, carry, curves, reached, next rung, next block)`` when it belongs
    to this round."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as kept:
            if str(kept["tag"]) != tag:
                return None
            like = runner.carry_like(seeds, hparams, init_params, per)
            leaves, treedef = jax.tree_util.tree_flatten(like)
            carry = [kept[f"carry/{i}"] for i in range(len(leaves))]
            if any(a.shape != (len(seeds), *leaf.shape[1:]) or a.dtype != leaf.dtype
                   for a, leaf in zip(carry, leaves)):
                return None
            curves = {name[len("curves/"):]: kept[name] for name in kept.files if name.startswith("curves/")}
            reached = [[tuple(r) for r in member] for member in json.loads(str(kept["reached"]))]
            return (kept["alive"].astype(np.int64), jax.tree_util.tree_unflatten(treedef, carry), curves, reached,
                    int(kept["next_rung"]), int(kept["next_block"]))
    except (OSError, ValueError, KeyError):
        return None
