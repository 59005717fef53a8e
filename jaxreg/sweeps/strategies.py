"""Strategies decide what trains next; they never train or write.

A strategy answers two calls of the study loop (:func:`jaxreg.sweeps.run.study`):

- ``ask(history) -> Ask | None``: the members to train next and the epoch to train them to
  (:class:`Ask`), or None when the search is over. ``history`` maps
  ``(config_id, seed)`` to the journal line of every trial journaled so far.
- ``tell(history, outcomes) -> Told``: the outcomes of one chunk of the last ask; which
  members leave training now (and what their journal lines gain).

and three about what a checkpoint keeps: ``position()`` (what the kept state belongs to, the
same for a rerun of the same spec), ``state()`` (JSON: where the strategy stands at the start
of the current ask) and ``restore(state) -> Ask`` (the ask to train from there).

Which configs a round holds is a :class:`Search`: grid, random and coarse-to-fine
(:class:`Rounds`), or one of Optuna's samplers (:class:`jaxreg.sweeps.samplers.SamplerSearch`).
:class:`EachRound` trains each round's members to the end; :class:`jaxreg.sweeps.halving.Halving`
ranks them at rungs and continues the best; :class:`jaxreg.sweeps.path.Path` trains a penalty's
strengths one after another, each starting from the params the one before returned. A new
strategy is a class with these five methods.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from jaxreg.report.summary import as_float, rank_key
from jaxreg.sweeps.samplers import SamplerSearch
from jaxreg.sweeps.space import MODEL_METHODS, Config, Space


class Trial(NamedTuple):
    """One member of a sweep: a config trained with one seed."""

    config_id: str
    config: Any  # jaxreg.sweeps.space.Config
    seed: int

    @property
    def key(self) -> tuple[str, int]:
        return self.config_id, int(self.seed)


class Ask(NamedTuple):
    """What a strategy asks the executor to train next.

    ``trials`` train up to epoch ``epochs`` in chunks of ``chunk_size`` members (in this order),
    ``segment`` evaluation blocks per compiled call. A trial in flight (kept from an earlier ask)
    continues from where it was; any other starts from its start. ``retrain``: trials already
    in the journal train too (a halving round's chunks depend on every member; their journal
    lines stay as they are); else they are skipped. ``frozen``: members trained in place but
    frozen (pruned members left in their chunk: what training without compaction costs).
    ``last``: no later ask depends on these results (sharded runs need not wait for them).
    ``starts``: trial key -> the key of the member in flight whose returned params (and model
    state) that trial starts from, in place of its fresh init (a warm start: a path's next
    point); None: every trial starts fresh. ``keep``: with ``retrain``, train the trials even
    when all of them are journaled (a later ask starts from them, and only the members in
    flight hold their params).
    """

    trials: tuple
    epochs: int
    chunk_size: int
    segment: int
    label: str = "sweep"
    retrain: bool = False
    frozen: frozenset = frozenset()
    last: bool = True
    starts: dict | None = None
    keep: bool = False


class Outcome(NamedTuple):
    """A member's numbers at the end of an ask: ``final`` metrics (as if training ended there),
    whether it is ``frozen`` (stopped or diverged), and the epochs it stopped or diverged at."""

    trial: Trial
    final: dict
    frozen: bool
    stopped_epoch: int
    diverged_epoch: int


class Told(NamedTuple):
    """A strategy's answer to outcomes: the members that leave training now (key -> fields their
    journal line gains, in journal order), those of them that stay in flight all the same
    (``stay``: frozen in their chunk), whether the ask is ``decided`` (its state is kept then,
    even when no member leaves), and a line to log (or None)."""

    leaving: dict
    stay: frozenset = frozenset()
    note: str | None = None
    decided: bool = False


def config_id(config: Config) -> str:
    """A stable id from the config's case and hparams values: the same config, the same id."""
    text = json.dumps({"case": config.case, "hparams": config.hparams}, sort_keys=True,
                      default=float, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


class Strategy(Protocol):
    def ask(self, history: dict) -> Ask | None: ...

    def tell(self, history: dict, outcomes: list[Outcome]) -> Told: ...

    def position(self) -> object: ...

    def state(self) -> object: ...

    def restore(self, state) -> Ask: ...


class Search(Protocol):
    """Which configs each round trains: ``next()`` the next round's configs (None: done),
    ``scored(values)`` each one's values over seeds (NaN: failed or not journaled)."""

    history: list

    def next(self) -> list[Config] | None: ...

    def scored(self, values: list) -> None: ...


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


class Rounds:
    """Grid, random and coarse-to-fine rounds (hyperband's brackets draw afresh each round).

    After each round but the last, coarse-to-fine zooms in: ``"not_worse"`` keeps, over every
    config tried so far, those not significantly worse than the best (:func:`not_worse`, ``z``
    standard errors; with one value per config, the top ``top_k``) and brackets them
    (:meth:`Space.bracket`); ``"top_k"`` shrinks each axis around the round's top ``top_k``
    (:meth:`Space.zoom`). ``history``: every (config, mean) scored, in order.
    """

    def __init__(self, space: Space, *, rounds: int = 1, top_k: int = 3, min_width: float = 0.01,
                 minimize: bool = True, zoom: str = "top_k", z: float = 1.0):
        self.space, self.rounds, self.top_k, self.min_width = space, rounds, top_k, min_width
        self.minimize, self.zoom, self.z = minimize, zoom, z
        self.round, self.axes, self.history, self.values, self.configs = 0, None, [], [], None

    def next(self) -> list[Config] | None:
        if self.round == self.rounds:
            return None
        self.configs = self.space.configs(self.round, self.axes)
        return self.configs

    def scored(self, values: list) -> None:
        configs, scored = self.configs, [np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
        means = [float(np.mean(v)) for v in scored]
        self.history.extend(zip(configs, means))
        self.values.extend(scored)
        self.round += 1
        if self.round == self.rounds or self.space.method == "hyperband":  # each bracket draws afresh
            return
        if self.zoom == "not_worse":
            kept = not_worse(self.values, minimize=self.minimize, z=self.z)
            if kept is None:  # one value a config: no noise to measure, the top_k of all so far
                ranked = sorted(range(len(self.history)), key=lambda i: rank_key(self.history[i][1], self.minimize))
                kept = np.isin(np.arange(len(self.history)), ranked[:self.top_k])
            self.axes = self.space.bracket([c for c, _ in self.history], kept, min_width=self.min_width)
        else:
            ranked = sorted(zip(configs, means), key=lambda item: rank_key(item[1], self.minimize))
            self.axes = self.space.zoom(self.axes, [c for c, _ in ranked[:self.top_k]], min_width=self.min_width)


def make_search(space: Space, *, rounds: int = 1, top_k: int = 3, min_width: float = 0.01, minimize: bool = True,
                zoom: str = "top_k", z: float = 1.0) -> Search:
    """The :class:`Search` of ``space``'s method: an Optuna sampler's, or :class:`Rounds`."""
    if space.method in MODEL_METHODS:
        return SamplerSearch(space, rounds=rounds, minimize=minimize)
    return Rounds(space, rounds=rounds, top_k=top_k, min_width=min_width, minimize=minimize, zoom=zoom, z=z)


def search_rounds(space: Space, score: Callable[[list[Config]], list], **options) -> list[tuple[Config, float]]:
    """Runs a search's rounds with ``score(configs)`` (per config, a number or its values over
    seeds; NaN ranks last) in place of training; returns every (config, mean), in order.
    ``options``: those of :func:`make_search`."""
    search = make_search(space, **options)
    while (configs := search.next()) is not None:
        search.scored(score(configs))
    return search.history


def round_values(configs: list[Config], seeds: Sequence[int], history: dict, metric: str) -> list[list[float]]:
    """Each config's journaled ``metric`` over ``seeds`` (NaN where not journaled)."""
    return [[as_float(history[key]["metrics"][metric]) if (key := (config_id(c), int(s))) in history else math.nan
             for s in seeds] for c in configs]


def next_round(search: Search, configs: list[Config] | None, seeds: Sequence[int], history: dict,
               metric: str) -> tuple[list[Config], tuple] | None:
    """Scores the round just trained (``configs``, None before the first) from the journal and
    draws the next one: ``(configs, trials)``, or None when the search is over."""
    if configs is not None:
        search.scored(round_values(configs, seeds, history, metric))
    configs = search.next()
    if configs is None:
        return None
    return configs, tuple(Trial(config_id(c), c, s) for c in configs for s in seeds)


class EachRound:
    """Trains each round of ``search`` to the last epoch, then scores it from the journal."""

    def __init__(self, search: Search, seeds: Sequence[int], *, metric: str, epochs: int, chunk_size: int,
                 segment: int, label: Callable[[int], str], rounds: int):
        self.search, self.seeds, self.metric, self.epochs = search, [int(s) for s in seeds], metric, epochs
        self.chunk_size, self.segment, self.label, self.rounds = chunk_size, segment, label, rounds
        self.configs, self.current, self.index = None, None, -1

    def ask(self, history: dict) -> Ask | None:
        drawn = next_round(self.search, self.configs, self.seeds, history, self.metric)
        if drawn is None:
            self.configs = None
            return None
        (self.configs, trials), self.index = drawn, self.index + 1
        self.current = Ask(trials, self.epochs, self.chunk_size, self.segment, self.label(self.configs[0].round),
                           last=self.configs[0].round + 1 >= self.rounds)
        return self.current

    def tell(self, history: dict, outcomes: list[Outcome]) -> Told:
        return Told({o.trial.key: {} for o in outcomes})

    def position(self) -> object:
        return [self.index, [t.key for t in self.current.trials]]

    def state(self) -> object:
        return {}

    def restore(self, state) -> Ask:
        return self.current
