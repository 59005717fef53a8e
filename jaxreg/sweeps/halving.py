"""Successive halving and Hyperband, with pruned members gathered out of the compiled batch.

``search.method = "halving"``: one round of ``search.samples`` configs (x seeds) trains to the
first rung, ``search.min_epochs``; there every config still training is ranked by the mean over
its seeds of ``search.metric`` (of the params training would return if it ended there), the best
``1/eta`` go on to ``min_epochs * eta``, and so on until ``train.epochs``. Between rungs the
members left (the survivors, less those that early stopping or the divergence guard stopped)
are gathered on the host and continue with the same compiled step from where they were. Each
chunk size is a compilation of its own (seconds, tens of seconds on a loaded CPU), so a rung
keeps the chunk size of the rung before, padded with copies whose results are dropped, while
those copies cost less than a compilation (:func:`rung_size`); else its members go into chunks
of the next power of two (:func:`bucket`) and pruned and stopped members cost nothing after
their rung. On a small data set a round compiles one program; when a member-epoch is dear,
the chunks shrink as before.

``search.method = "hyperband"``: brackets of successive halving, one per round, from many
configs started at ``min_epochs`` to few trained for all epochs (Li et al., 2018):
``s_max + 1`` brackets, where ``s_max + 1`` is the number of rungs of ``halving``; bracket ``s``
(``s_max`` down to 0) draws ``ceil((s_max + 1) / (s + 1) * eta**s)`` configs and starts at
``min_epochs * eta**(s_max - s)``.

Every trial is journaled when it leaves training (pruned, stopped or at the last rung) with its
``rungs`` (epoch and the member's value at each rung it reached), ``pruned_epoch`` (None when
not pruned) and ``trained_epochs`` (epochs computed for it). After each rung the members left
are kept in the executor's ``checkpoint.npz`` with the strategy's state (rung, members left,
values reached); a rerun resumes from the last state kept (a member's numbers depend on the
chunk sizes it trained in, which the rungs decide, so a rerun without it retrains the round
from its start and gives the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from jaxreg.report.summary import rank_key
from jaxreg.sweeps.rungs import METHODS, brackets, rung_epochs
from jaxreg.sweeps.strategies import Ask, Outcome, Told, next_round


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


def padded(members: int, size: int) -> int:
    """Members computed when ``members`` train in chunks of ``size``: the last chunk is padded."""
    return -(-members // size) * size


def rung_size(members: int, before: int, chunk_size: int, epochs: int, pad_epochs: float) -> int:
    """Chunk size of a rung that trains ``members`` for ``epochs`` epochs after a rung in chunks
    of ``before``: ``before`` again when the copies padding the chunks up to it cost at most
    ``pad_epochs`` member-epochs more than chunks of :func:`bucket` size would (what a
    compilation is estimated to cost: :func:`jaxreg.sweeps.cost.padding_budget`); else the bucket.

    Greedy, rung by rung: a later rung, with fewer members and more epochs, may still shrink.
    The rule reads the schedule and the spec alone (never this machine's timings), so a rerun
    picks the same sizes and gives the same numbers.
    """
    fresh = bucket(members, chunk_size)
    if before >= fresh and (padded(members, before) - padded(members, fresh)) * epochs <= pad_epochs:
        return before
    return fresh


def keep(values: dict, eta: int, minimize: bool) -> set:
    """The configs (keys of ``values``: config -> its value at the rung) that go on: the best
    ``ceil(n / eta)``; NaN (a failed seed) ranks last."""
    ranked = sorted(values, key=lambda c: rank_key(values[c], minimize))
    return set(ranked[:math.ceil(len(ranked) / eta)])


class Race(NamedTuple):
    """How a halving round races its configs: ``rungs(round)`` the rung epochs of a round,
    ``eta`` (the best ``1/eta`` go on), the ``metric`` ranked and whether to ``minimize`` it,
    ``prune`` (False: only stopped members leave, at each rung), ``compact`` (False: pruned
    members stay in their chunk, frozen) and ``pad_epochs``: member-epochs of padded copies
    that cost as much as a compilation (:func:`rung_size`; 0: a chunk of the next power of two
    at every rung, ``math.inf``: the round's first chunk size at every rung)."""

    rungs: Callable[[int], list[int]]
    eta: int
    metric: str
    minimize: bool = True
    prune: bool = True
    compact: bool = True
    pad_epochs: float = 0.0


class Halving:
    """Successive halving over each round of ``search`` (hyperband: a bracket a round), a
    :class:`jaxreg.sweeps.strategies.Strategy`.

    A round's members train to its first rung; there every config still training is ranked
    by its mean over seeds of ``metric``, the best ``1/eta`` go on to the next rung (asked as
    members to continue), and the others, the stopped ones, and every member at the last rung,
    leave: their journal lines gain ``rungs`` (epoch and value at each rung reached),
    ``pruned_epoch`` (None when not pruned) and ``trained_epochs``. ``race``: see :class:`Race`.
    ``prune=False`` (``search.compact`` alone: ``eta`` 1, rungs at segment
    ends) only lets stopped members leave, and their lines gain ``trained_epochs`` alone.
    ``compact=False`` keeps pruned members in their chunk, frozen (what training without
    compaction costs: the benchmark's baseline). A round's first rung trains in chunks of
    ``chunk_size`` (or of the next power of two of its members, when padding them up to it
    costs more than a compilation), each later rung in the chunks of the rung before or of the
    next power of two of its members (:func:`rung_size`).
    """

    def __init__(self, search, seeds, race: Race, *, chunk_size: int, every: int, label: Callable[[int], str]):
        self.search, self.seeds, self.rungs_of, self.eta = search, [int(s) for s in seeds], race.rungs, race.eta
        self.metric, self.minimize, self.prune, self.compact = race.metric, race.minimize, race.prune, race.compact
        self.pad_epochs = race.pad_epochs
        self.chunk_size, self.every, self.label = chunk_size, every, label
        self.configs, self.trials, self.index = None, None, -1
        self.k = 0            # the rung trained next
        self.alive = []       # indexes (into trials) of the members still training
        self.reached = []     # per member: (epoch, value) at each rung it reached
        self.pruned = set()   # compact=False: pruned members left in place, frozen
        self.told = {}        # outcomes of the current ask so far

    def ask(self, history: dict) -> Ask | None:
        if self.trials is None or self.k == len(self.rungs):
            drawn = next_round(self.search, self.configs, self.seeds, history, self.metric)
            if drawn is None:
                self.configs = None
                return None
            (self.configs, self.trials), self.index = drawn, self.index + 1
            self.rungs = self.rungs_of(self.configs[0].round)
            self.k, self.alive, self.reached, self.pruned = 0, list(range(len(self.trials))), [[] for _ in self.trials], set()
        return self._ask()

    def _training(self) -> list[int]:
        return self.alive if self.compact else list(range(len(self.trials)))

    def _size(self) -> int:
        """The chunk size of rung ``k``: :func:`rung_size` replayed from the round's first rung,
        with the members each rung trained (those that reached it), so a restored state needs
        nothing more."""
        if not self.compact:
            return self.chunk_size
        size, start = self.chunk_size, 0
        for j, rung in enumerate(self.rungs[:self.k + 1]):
            members = len(self.alive) if j == self.k else sum(len(r) > j for r in self.reached)
            size, start = rung_size(members, size, self.chunk_size, rung - start, self.pad_epochs), rung
        return size

    def _ask(self) -> Ask:
        training = self._training()
        size = self._size()
        # one segment length for every round (hyperband's first bracket holds every other's
        # rungs' divisor): a segment of another length is another program to compile
        segment = math.gcd(*(epoch // self.every for epoch in (*self.rungs_of(0), *self.rungs)))
        self.told = {}
        return Ask(tuple(self.trials[m] for m in training), self.rungs[self.k], size, segment,
                   self.label(self.configs[0].round), retrain=True,
                   frozen=frozenset(self.trials[m].key for m in self.pruned))

    def tell(self, history: dict, outcomes: list[Outcome]) -> Told:
        if not outcomes and not self.told:  # every member of the round is journaled: nothing to rank
            self.k = len(self.rungs)
            return Told({})
        self.told.update((o.trial.key, o) for o in outcomes)
        training = self._training()
        if len(self.told) < len(training):
            return Told({})
        k, rung, alive, size = self.k, self.rungs[self.k], self.alive, self._size()
        told = {m: self.told[self.trials[m].key] for m in alive}
        values = {m: told[m].final[self.metric] for m in alive}
        for m in alive:
            self.reached[m].append((rung, values[m]))
        stopped = {m for m in alive if told[m].frozen}
        last = k + 1 == len(self.rungs)
        pruned = set()
        if not last:
            by_config = {}
            for m in alive:
                by_config.setdefault(self.trials[m].config_id, []).append(m)
            racing = {cid: float(np.mean([values[m] for m in ms])) for cid, ms in by_config.items()
                      if any(m not in stopped for m in ms)}
            kept = keep(racing, self.eta, self.minimize)
            pruned = {m for cid, ms in by_config.items() if cid in racing and cid not in kept for m in ms
                      if m not in stopped}
        leaving = {}
        for m in alive:
            if last or m in stopped or m in pruned:
                leaving[self.trials[m].key] = self._fields(m, told[m], rung, m in pruned)
        self.alive = [m for m in alive if self.trials[m].key not in leaving]
        self.pruned |= pruned if not self.compact else set()
        self.k += 1
        stay = frozenset(leaving) if not self.compact and not last else frozenset()  # frozen in their chunk
        return Told(leaving, stay, self._words(k, len(training), size, len(pruned), len(stopped), last), decided=True)

    def _fields(self, m: int, told: Outcome, rung: int, pruned: bool) -> dict:
        fields = {}
        if self.prune:
            fields["rungs"] = [{"epoch": e, self.metric: v} for e, v in self.reached[m]]
            fields["pruned_epoch"] = rung if pruned else None
        stopped_at = told.stopped_epoch or told.diverged_epoch
        fields["trained_epochs"] = min(stopped_at, rung) if stopped_at else rung
        return fields

    def _words(self, k: int, trained: int, size: int, pruned: int, stopped: int, last: bool) -> str:
        label, rungs = self.label(self.configs[0].round), self.rungs
        if self.prune:
            configs = len({self.trials[m].config_id for m in self.alive})
            going = f"{configs} config{'s go' if configs != 1 else ' goes'} on"
            return (f"{label}: rung {k + 1}/{len(rungs)} (epoch {rungs[k]}): {trained} members trained in chunks "
                    f"of {size}; {pruned} pruned, {stopped} stopped" + (f"; {going}" if not last else ""))
        return (f"{label}: epoch {rungs[k]}/{rungs[-1]}: {trained} members trained in chunks of {size}"
                + (f"; {stopped} stopped, {len(self.alive)} go on" if not last else ""))

    def position(self) -> object:
        return [self.index, [t.key for t in self.trials], self.chunk_size, self.rungs]

    def state(self) -> object:
        return {"rung": self.k, "alive": self.alive, "reached": self.reached, "pruned": sorted(self.pruned)}

    def restore(self, state) -> Ask:
        self.k, self.alive, self.pruned = state["rung"], list(state["alive"]), set(state["pruned"])
        self.reached = [[tuple(r) for r in member] for member in state["reached"]]
        return self._ask()
