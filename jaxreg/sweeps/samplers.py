"""Model-based search through Optuna's samplers, by ask and tell: ``search.method = "tpe"``,
``"cmaes"`` or ``"gp"``.

Each round asks the sampler for ``search.samples`` configs (per case: a case is a study of its
own), trains them as one compiled batch like any other round, and tells each one its mean over
seeds of ``search.metric``. The first round is the sampler's independent (random) start; the
later rounds are the model's. The journal stays jaxreg's: Optuna's study lives in memory and is
rebuilt on a resume by replaying the journaled rounds in order (the sampler is seeded with
``search.seed``, so the same asks and tells give the same next configs). A config asked again
(in the same round or a later one) is the same trial: trained once, told its journaled value.

A config with a failed seed (diverged, NaN) is told the worst value the study has seen so far
(or marked failed while it has seen none), so the sampler learns to stay out of the region where
training diverges; Optuna would otherwise ignore a failed trial and keep asking there.

Optuna is an optional extra (``pip install 'jaxreg[optuna]'``); ``"cmaes"`` also needs the
``cmaes`` package (in that extra), ``"gp"`` needs PyTorch and SciPy.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping

import numpy as np

from jaxreg.errors import InputError
from jaxreg.sweeps.space import Axis, Config, Space

NEEDS = {"tpe": ("optuna",), "cmaes": ("optuna", "cmaes"), "gp": ("optuna", "torch", "scipy")}


def check_installed(method: str) -> None:
    """Raises :class:`InputError` (before any compute) when ``method``'s packages are missing."""
    missing = [name for name in NEEDS[method] if importlib.util.find_spec(name) is None]
    if missing:
        extra = "pip install 'jaxreg[optuna]'" + (" torch scipy" if method == "gp" else "")
        raise InputError(f"search.method: {method!r} needs {', '.join(NEEDS[method])} ({extra}); "
                         f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed")


def check_replay(manifest: dict | None, method: str) -> None:
    """Raises :class:`InputError` when a results folder's study was asked by other versions of
    the sampler's packages: its rounds would not replay (another version may ask other configs
    from the same results), so resuming or growing it would mix two studies."""
    from importlib.metadata import version

    if manifest is None or manifest.get("spec", {}).get("search", {}).get("method") != method:
        return
    for run in manifest.get("runs", []):
        for package in NEEDS[method]:
            there = (run.get("versions") or {}).get(package)
            if there is not None and there != version(package):
                raise InputError(f"search.method: expected {package} {there} to resume this {method} study "
                                 f"(its rounds were asked with it; another version may ask other configs), "
                                 f"got {package} {version(package)}; install {package}=={there}, "
                                 f"or use --overwrite or another --out")


def distribution(axis: Axis):
    """The Optuna distribution of one varying axis: a log or linear float range, an integer
    range, or a choice by index (``values``/``choice`` may hold lists, which Optuna cannot)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if axis.form in ("values", "choice"):
        return CategoricalDistribution(list(range(len(axis.values))))
    if axis.form == "int":
        return IntDistribution(int(axis.low), int(axis.high))
    return FloatDistribution(axis.low, axis.high, log=axis.log)


def point_of(axes: Mapping[str, Axis], params: Mapping) -> dict:
    """The axis values a trial's params stand for."""
    return {name: axis.values[params[name]] if axis.form in ("values", "choice") else params[name]
            for name, axis in axes.items() if name in params}


def sampler(method: str, seed: int, startup: int):
    """Optuna's sampler for ``method``, seeded, its first ``startup`` trials independent draws."""
    import optuna

    if method == "tpe":
        # constant_liar: configs asked together (one round) see each other as pending, so a batch
        # spreads out instead of asking the same point ``samples`` times.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                          constant_liar=True)
    if method == "cmaes":
        # CMA-ES models numeric axes only: a values/choice axis is drawn at random (docs/search.md), said
        # once there rather than in one Optuna warning per trial.
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False,
                                            independent_sampler=optuna.samplers.RandomSampler(seed=seed))
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)


def _studies(space: Space, minimize: bool) -> list:
    """One seeded Optuna study per case: ``(case, axes, varying axes, distributions, study)``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "minimize" if minimize else "maximize"
    studies = []
    for index, (case, axes) in enumerate(space.spaces()):
        varying = {name: axis for name, axis in axes.items() if axis.form != "fixed"}
        study = optuna.create_study(direction=direction,
                                    sampler=sampler(space.method, space.seed + index, space.samples))
        studies.append((case, axes, varying, {name: distribution(a) for name, a in varying.items()}, study))
    return studies


def _ask(space: Space, studies: list, round_index: int) -> list[tuple]:
    """A round's asks, ``search.samples`` per case: ``(study, trial, config)``."""
    asked = []
    for case, axes, varying, distributions, study in studies:
        for _ in range(space.samples):
            trial = study.ask(distributions)
            asked.append((study, trial, space.config_of(round_index, point_of(varying, trial.params), case, axes)))
    return asked


class ModelSpace(Space):
    """The space of a model-based search (``method`` one of ``MODEL_METHODS``): its first
    round's configs are the sampler's independent start (:func:`first_round`); the later rounds
    are asked from the results (:class:`SamplerSearch`). Arguments as :class:`Space`'s."""

    model_based = True

    def configs(self, round: int = 0, axes_by_case: Mapping | None = None) -> list[Config]:
        if round or axes_by_case:
            raise ValueError(f"{self.method}: the configs after the first round come from the sampler "
                             f"(jaxreg.sweeps.samplers.SamplerSearch)")
        return first_round(self)

    def iter_configs(self, round: int = 0, axes_by_case: Mapping | None = None):
        return iter(self.configs(round, axes_by_case))


def first_round(space: Space, minimize: bool = True) -> list[Config]:
    """The configs of a model-based search's first round (the sampler's independent start,
    which no result has informed yet), each once: what ``jaxreg plan`` lists."""
    configs = {}
    for _, _, config in _ask(space, _studies(space, minimize), 0):
        configs.setdefault(_identity(config), config)
    return list(configs.values())


class SamplerSearch:
    """The rounds of a model-based search (``space.method`` one of ``MODEL_METHODS``), a
    :class:`jaxreg.sweeps.strategies.Search`.

    ``next()`` asks each case's study for ``search.samples`` configs and returns those not seen
    before (all cases together: one batch; a round with none is told at once and the next one
    asked); ``scored(values)`` records their values over seeds (NaN for a failed seed) and
    tells every trial of the round its config's mean. ``history``: every (config, mean) scored.
    """

    def __init__(self, space: Space, *, rounds: int, minimize: bool = True):
        self.space, self.rounds, self.minimize = space, rounds, minimize
        self.studies = _studies(space, minimize)
        self.history, self.known = [], {}  # known: identity -> (config, values over seeds)
        self.round, self.asked, self.fresh = 0, [], {}

    def next(self) -> list[Config] | None:
        while self.round < self.rounds:
            self.asked = [(study, trial, _identity(config), config)
                          for study, trial, config in _ask(self.space, self.studies, self.round)]
            self.fresh = {}  # identity -> config: the configs this round trains
            for _, _, identity, config in self.asked:
                if identity not in self.known:
                    self.fresh.setdefault(identity, config)
            if self.fresh:
                return list(self.fresh.values())
            self._tell()
        return None

    def scored(self, values: list) -> None:
        for (identity, config), value in zip(self.fresh.items(), values):
            value = np.atleast_1d(np.asarray(value, dtype=float))
            self.known[identity] = (config, value)
            self.history.append((config, float(np.mean(value))))
        self._tell()

    def _tell(self) -> None:
        import optuna

        worst = {}  # per case (a study of its own): the worst seed mean it has seen
        for config, values in self.known.values():
            if np.isfinite(values).all():
                mean = float(np.mean(values))
                worst[config.case] = (max if self.minimize else min)(worst.get(config.case, mean), mean)
        for study, trial, identity, _ in self.asked:
            values = self.known[identity][1]
            if np.isfinite(values).all():
                study.tell(trial, float(np.mean(values)))
            elif identity[0] in worst:
                study.tell(trial, worst[identity[0]])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.round += 1


def _identity(config: Config) -> tuple:
    return config.case, json.dumps(config.hparams, sort_keys=True, default=float)
