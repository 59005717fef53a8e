"""The executor: the one place that trains what a strategy asks and journals what leaves.

A strategy (:mod:`jaxreg.sweeps.strategies`) asks for members to be trained up to an epoch
(:class:`Ask`); the executor stacks their hparams, trains them in chunks of one compiled program
(:func:`advance_chunk`, from their start or from where an earlier ask left them), and yields
each chunk's :class:`Outcome` as it ends. The strategy tells which members leave (finished,
stopped or pruned); :meth:`Executor.journal` writes their curves and journal lines. Members
that go on stay *in flight*: their loop state (the engine's carry), curves and last result are
kept in memory and, after a segment at most every ``checkpoint_seconds`` and whenever an ask
ends with members in flight, in ``checkpoint.npz`` with the strategy's own state, so a rerun
resumes where the last one kept it. A member's numbers depend only on its hparams, seed, the
chunk sizes it trained in and the segment length: resuming changes none.

:class:`jaxreg.sweeps.remote.RayExecutor` has the same ``train`` / ``journal`` interface and trains
each chunk with :func:`advance_chunk` in a Ray worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
from tqdm import tqdm

from jaxreg.hparams import make_hparams, stack_hparams
from jaxreg.report.files import atomic_write
from jaxreg.report.manifest import record_files
from jaxreg.sweeps.cost import cache_hits, record_timing
from jaxreg.sweeps.records import curve_arrays, trial_record
from jaxreg.sweeps.strategies import Ask, Outcome, Told, Trial
from jaxreg.transfer import Pretrained


class Member(NamedTuple):
    """A member in flight: the next evaluation block to run, the loop state after the blocks
    before it, the curves so far (NaN after them) and the result as if training ended there."""

    block: int
    carry: Any
    curves: dict
    result: Any


def _rows(tree, i: int):
    return jax.tree_util.tree_map(lambda leaf: np.array(leaf[i]), tree)


def _stacked(trees: list):
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *trees)


def advance_chunk(runner, variant, trials: list, members: list, until: int, ask: Ask, *, on_segment=None,
                  compiling=None) -> list[Member]:
    """Trains one chunk of ``trials`` (``members``: each one's :class:`Member` in flight, or None
    at its start; all at the same block) up to evaluation block ``until``, ``ask.segment``
    blocks a call; returns each member's :class:`Member` after it. ``on_segment(members, done)``
    is called after each segment but the last (``members()``: the members then, built only
    when called; ``done``: blocks run so far in this call). With ``ask.starts`` (warm starts),
    ``variant.init_params`` holds each trial's own start, stacked (:func:`warm_variant`)."""
    config = variant.config
    block = members[0].block if members[0] is not None else 0
    seeds = np.array([t.seed for t in trials], np.uint32)
    hparams = stack_hparams(make_hparams(variant.model, **t.config.hparams) for t in trials)
    carry = None if block == 0 else _stacked([m.carry for m in members])
    curves = None if block == 0 else _stacked([m.curves for m in members])
    frozen = np.array([t.key in ask.frozen for t in trials])
    per = ask.segment
    init, own_init = variant.init_params, bool(ask.starts)
    for start in range(block, until, per):
        if carry is not None and frozen.any():
            carry = carry._replace(frozen=carry.frozen | frozen)
        carry, result = runner.advance(seeds, hparams, init, carry, range(start, start + per),
                                       ask.chunk_size, per, compiling=compiling,
                                       **({"own_init": True} if own_init else {}))
        if curves is None:
            curves = {name: np.full((len(trials), config.n_evals, *c.shape[2:]), np.nan, c.dtype)
                      for name, c in result.curves.items()}
        for name, c in result.curves.items():
            curves[name][:, start:start + per] = c
        if on_segment is not None and start + per < until:
            on_segment(lambda at=start + per: _members(carry, curves, result, at), start + per - block)
    return _members(carry, curves, result, until)


def warm_variant(variant, starts: list[Member]):
    """``variant`` whose ``init_params`` are the params and model state each of ``starts`` (one
    :class:`Member` per trial of a chunk) returned, stacked on a member axis."""
    return dataclasses.replace(variant, init_params=_stacked([Pretrained(m.result.params, m.result.model_state)
                                                              for m in starts]))


def _members(carry, curves: dict, result, block: int) -> list[Member]:
    """Each member of a chunk as a :class:`Member` (copies: the chunk's arrays change after)."""
    members = len(next(iter(curves.values())))
    return [Member(block, _rows(carry, i), _rows(curves, i), _rows(result, i)) for i in range(members)]


def owns(shard, chunk_index: int) -> bool:
    """Whether ``shard`` trains the sweep's chunk ``chunk_index``: chunks are dealt round-robin,
    counted over every ask (and variant) in the order one process trains them."""
    return shard is None or chunk_index % shard.count == shard.index


def outcome(trial: Trial, member: Member) -> Outcome:
    result = member.result
    return Outcome(trial, {name: float(value) for name, value in result.final.items() if np.ndim(value) == 0},
                   bool(member.carry.frozen), int(result.stopped_epoch), int(result.diverged_epoch))


def journal_lines(store, trials: list, members: list, extras: list, variant, save_params: bool) -> list[dict]:
    """The journal lines of members leaving training (their curves files written first)."""
    result = _stacked([m.result for m in members])
    result = result._replace(curves=_stacked([m.curves for m in members]))
    hparams = stack_hparams(make_hparams(variant.model, **t.config.hparams) for t in trials)
    lines = []
    for i, (trial, extra) in enumerate(zip(trials, extras)):
        line = trial_record(trial.config_id, trial.config, trial.seed, i, result, hparams)
        line.update(extra)
        store.write_curves(line, curve_arrays(result, i, save_params, variant.config.eval_epochs))
        lines.append(line)
    return lines


class Progress:
    """What a running sweep reports: lines, a bar per ask, compilations, and what it has kept.

    The command line passes one that draws tqdm bars (``bars=True``); a Python caller may pass
    its own (any object with these methods) or none. ``kept()`` says in words what an
    interruption would leave (the command line prints it on Ctrl-C).
    """

    def __init__(self, log=None, bars: bool = True):
        self.log = log or (lambda text: print(text, file=sys.stderr))
        self.bars, self._bar = bars, None
        self.journaled, self.kept_epoch, self.kept_members, self.checkpoint = None, None, 0, None

    def say(self, line: str) -> None:
        """A line about the training (with bars only)."""
        if self.bars and self._bar is not None:
            with self._bar.external_write_mode(file=self._bar.fp):  # the bar cleared, then drawn again
                self.log(line)
        elif self.bars:
            self.log(line)

    def start(self, label: str, epochs: int, trials: int) -> None:
        if self.bars:
            self._bar = tqdm(total=epochs, desc=label, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                             postfix=f"0/{trials} trials")

    def reset(self) -> None:  # after a compilation: the rate and ETA count training only
        if self._bar is not None:
            self._bar.reset(total=self._bar.total)

    def advance(self, epochs: int, trials: str | None = None) -> None:
        if self._bar is not None:
            self._bar.n = epochs
            if trials is not None:
                self._bar.set_postfix_str(trials, refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def kept(self) -> str:
        if self.journaled is None:
            return "nothing was trained yet"
        words = f"kept {self.journaled} trial{'s' * (self.journaled != 1)} in the journal"
        if self.kept_epoch is not None:
            words += (f", and {self.kept_members} member{'s' * (self.kept_members != 1)} in training up to "
                      f"epoch {self.kept_epoch} in {self.checkpoint}")
        return words


class Executor:
    """Trains asks in this process (see the module docstring). :meth:`open` gives it the results
    folder's store and ``records`` (the journal so far, by ``(config_id, seed)``, kept up to
    date); :meth:`begin` the variant and strategy to train next."""

    remote = False  # trains elsewhere: the shards' journals are merged at the end

    def __init__(self, *, checkpoint_seconds: float = 10.0):
        self.seconds = checkpoint_seconds
        self.flight, self.known, self.loaded, self.checked = {}, {}, set(), set()
        self.chunks_before = 0  # chunks of the asks before: where the shards' round-robin stands
        self.trained = 0
        self.variant = self.runner = self.strategy = None
        self._saved = time.monotonic()

    def check(self, spec) -> None:
        """Refuses a spec this executor cannot train (before anything is written)."""

    def describe(self) -> dict:
        """What the manifest records of this executor when a run starts."""
        return {}

    def finish(self):
        """What the manifest records of this executor when the run ends."""
        return None

    def open(self, store, records: dict, progress: Progress, *, digest: str, save_params: bool, shard=None) -> None:
        self.store, self.records, self.progress = store, records, progress
        self.digest, self.save_params, self.shard = digest, save_params, shard
        self.path = store.out / store.checkpoint_name

    # -- the variant being trained, and its kept state --

    def begin(self, index: int, variant, runner, strategy) -> None:
        """Trains ``variant`` (the spec's ``index``-th) with ``runner`` for ``strategy`` next."""
        self.index, self.variant, self.runner, self.strategy = index, variant, runner, strategy
        self.flight, self.loaded, self.checked, self._like = {}, set(), set(), None

    def _tag(self) -> str:
        text = json.dumps([self.digest, self.index, self.strategy.position()], default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def resumed(self, ask: Ask) -> Ask:
        """``ask``, or the ask the strategy resumes from when the checkpoint holds the state of
        its current position (looked at once per position): the members in flight are restored."""
        tag = self._tag()
        if tag in self.checked:
            return ask
        self.checked.add(tag)
        why = self._resume(tag)
        if why is None:
            return self.strategy.restore(self._state)
        if why:
            self.progress.say(f"{ask.label}: {self.path.name} not used ({why}): its members train again")
        return ask

    def _resume(self, tag: str) -> str | None:
        """Restores the kept state; None when it did, else why not ("" when nothing is kept or
        it is another position's, which a later ask may resume)."""
        if not self.path.is_file():
            return ""
        try:
            with open(self.path, "rb") as raw, np.load(raw) as file:
                if str(file["tag"]) != tag:
                    return ""
                keys = [(cid, int(seed)) for cid, seed in json.loads(str(file["members"]))]
                blocks, state = file["blocks"], json.loads(str(file["strategy"]))
                arrays = {name: file[name] for name in file.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return "it is damaged"
        flight = self._unpack(keys, blocks, arrays)
        if flight is None:
            return "its arrays have other shapes"
        self.flight, self.loaded, self._state = flight, set(flight), state
        self._kept(flight)
        return None

    def _shapes(self, per: int):
        if self._like is None:
            seeds = np.zeros(2, np.uint32)
            hparams = stack_hparams([make_hparams(self.variant.model)] * 2)
            self._like = self.runner.shapes(seeds, hparams, self.variant.init_params, per)
        return self._like

    def _unpack(self, keys, blocks, arrays) -> dict | None:
        if not keys:
            return {}
        carry_like, result_like = self._shapes(int(arrays["segment"]))
        flight = {}
        parts = {}
        for prefix, like in (("carry", carry_like), ("result", result_like)):
            leaves, treedef = jax.tree_util.tree_flatten(like)
            got = [arrays.get(f"{prefix}/{i}") for i in range(len(leaves))]
            if any(a is None or a.shape != (len(keys), *leaf.shape[1:]) or a.dtype != leaf.dtype
                   for a, leaf in zip(got, leaves)):
                return None
            parts[prefix] = jax.tree_util.tree_unflatten(treedef, got)
        curves = {name[len("curves/"):]: arrays[name] for name in arrays if name.startswith("curves/")}
        if set(curves) != set(result_like.curves):
            return None
        for i, key in enumerate(keys):
            flight[key] = Member(int(blocks[i]), _rows(parts["carry"], i), _rows(curves, i), _rows(parts["result"], i))
        return flight

    def keep(self, segment: int) -> None:
        """Writes the members in flight and the strategy's state to the checkpoint (none in
        flight: removes it)."""
        if not self.flight:
            self.path.unlink(missing_ok=True)
            self.progress.kept_epoch = None
            return
        keys = list(self.flight)
        members = [self.flight[k] for k in keys]
        arrays = {"tag": np.asarray(self._tag()), "members": np.asarray(json.dumps(keys)),
                  "blocks": np.array([m.block for m in members], np.int64), "segment": np.asarray(segment),
                  "strategy": np.asarray(json.dumps(self.strategy.state()))}
        for prefix, trees in (("carry", [m.carry for m in members]), ("result", [m.result for m in members])):
            arrays.update({f"{prefix}/{i}": leaf for i, leaf in enumerate(jax.tree_util.tree_leaves(_stacked(trees)))})
        arrays.update({f"curves/{name}": value for name, value in _stacked([m.curves for m in members]).items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        record_files(self.store.out, [self.path.name])
        atomic_write(self.path, buffer.getvalue())
        self._saved = time.monotonic()
        self._kept(self.flight)

    def settle(self) -> None:
        """The strategy asks nothing more: a state kept with nothing in flight now is stale (a
        run killed between its last journal line and the checkpoint's removal), and goes."""
        if not self.flight:
            self.path.unlink(missing_ok=True)

    def _kept(self, flight: dict) -> None:
        self.progress.kept_epoch = max(m.block for m in flight.values()) * self.variant.config.eval_every
        self.progress.kept_members, self.progress.checkpoint = len(flight), self.path.name

    # -- training and journaling --

    def _mine(self, ask: Ask) -> list:
        """The ask's trials this process trains: its shard's chunks, dealt round-robin over the
        chunks of every ask, in the order one process trains them."""
        size, mine = ask.chunk_size, []
        for i, trial in enumerate(ask.trials):
            if owns(self.shard, self.chunks_before + i // size):
                mine.append(trial)
        self.chunks_before += -(-len(ask.trials) // size)
        return mine

    def _pending(self, ask: Ask) -> list:
        """The trials of :meth:`_mine` to train: those not journaled; with ``ask.retrain``, all of
        them unless all are journaled."""
        mine = self._mine(ask)
        self.known.update((t.key, t) for t in mine)
        pending = [t for t in mine if t.key not in self.records]
        if (pending or ask.keep) and ask.retrain:
            pending = mine
        if not pending and mine:
            self.progress.say(f"{ask.label}: all {len(mine)} trials"
                              f"{' of shard ' + str(self.shard) if self.shard else ''} already in the journal")
        return pending

    def train(self, ask: Ask) -> Iterator[list[Outcome]]:
        """Trains ``ask``; yields each chunk's outcomes as the chunk ends."""
        config, every = self.variant.config, self.variant.config.eval_every
        until, size = ask.epochs // every, ask.chunk_size
        pending = self._pending(ask)
        chunks = [pending[start:start + size] for start in range(0, len(pending), size)]
        if not chunks:  # nothing to train: the strategy is told so
            yield []
            return
        starts = [self._start_block(chunk) for chunk in chunks]
        per_chunk = [(until - b) * every for b in starts]
        self.progress.start(ask.label, sum(per_chunk), len(pending))
        measured = {"hits": cache_hits()}

        def compiling(seconds):
            if seconds is not None and cache_hits() == measured["hits"]:  # compiled, not loaded from the cache
                measured["compile_seconds"] = seconds
            if seconds is None:
                self.progress.say(f"{ask.label}: compiling the training program ({size} members per chunk) ...")
            else:
                self.progress.say(f"{ask.label}: compiled in {seconds:.1f} s")
                self.progress.reset()

        try:
            before, finished = 0, 0
            for chunk, block, epochs in zip(chunks, starts, per_chunk):
                members = [self.flight.get(t.key) for t in chunk]
                if chunk[0].key in self.loaded:
                    self.loaded.difference_update(t.key for t in chunk)
                    self.progress.say(f"{ask.label}: resumed a chunk of {len(chunk)} trials from {self.path.name} "
                                      f"at evaluation {block} of {config.n_evals}")
                if block < until:
                    members = self._advance(chunk, members, block, until, ask, before, compiling, measured)
                for trial, member in zip(chunk, members):
                    self.flight[trial.key] = member
                before, finished = before + epochs, finished + len(chunk)
                self.progress.advance(before, f"{finished}/{len(pending)} trials")
                yield [outcome(t, m) for t, m in zip(chunk, members)]
        finally:
            self.progress.close()

    def _start_block(self, chunk: list) -> int:
        blocks = {self.flight[t.key].block if t.key in self.flight else 0 for t in chunk}
        if len(blocks) != 1:  # chunks are made as they were when kept: cannot happen
            raise RuntimeError(f"members of one chunk kept at different evaluations: {sorted(blocks)}")
        return blocks.pop()

    def _starts(self, ask: Ask, chunk: list) -> list[Member]:
        """The members in flight the trials of ``chunk`` start from (``ask.starts``)."""
        missing = [t.key for t in chunk if ask.starts.get(t.key) not in self.flight]
        if missing:  # the strategy keeps them in flight until the trials they start are told
            raise RuntimeError(f"{ask.label}: the members {missing[:3]} start from are not in flight")
        return [self.flight[ask.starts[t.key]] for t in chunk]

    def _advance(self, chunk, members, block, until, ask, before, compiling, measured) -> list[Member]:
        every = self.variant.config.eval_every
        started = time.perf_counter()

        def on_segment(done, blocks_run):
            self.progress.advance(before + blocks_run * every)
            if time.monotonic() - self._saved >= self.seconds:
                for trial, member in zip(chunk, done()):
                    self.flight[trial.key] = member
                self.keep(ask.segment)

        variant = self.variant if not ask.starts else warm_variant(self.variant, self._starts(ask, chunk))
        members = advance_chunk(self.runner, variant, chunk, members, until, ask, on_segment=on_segment,
                                compiling=compiling)
        if block == 0 and until == self.variant.config.n_evals and not measured.get("timed"):
            training = time.perf_counter() - started - measured.get("compile_seconds", 0.0)
            record_timing(self.variant, ask.chunk_size, epoch_seconds=training / (until * every),
                          **{k: v for k, v in measured.items() if k == "compile_seconds"})
            measured["timed"] = True
        return members

    def journal(self, told: Told, segment: int) -> int:
        """Journals the members ``told`` leave (curves first); keeps or removes the checkpoint.
        Returns how many lines were written."""
        if not told.leaving and not told.decided:
            return 0
        keys = [key for key in told.leaving if key not in self.records]
        trials = {key: self.flight[key] for key in keys}
        lines = journal_lines(self.store, [self.known[k] for k in keys], list(trials.values()),
                              [told.leaving[k] for k in keys], self.variant, self.save_params) if keys else []
        if lines:
            self.store.append(lines)
        for line in lines:
            self.records[(line["config_id"], line["seed"])] = line
        for key in told.leaving:
            if key not in told.stay:
                self.flight.pop(key, None)
        self.trained += len(lines)
        self.progress.journaled = len(self.records)
        if told.note:
            self.progress.say(told.note)
        self.keep(segment)
        return len(lines)
