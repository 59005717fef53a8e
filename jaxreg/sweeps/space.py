"""Search spaces: axes over hyperparameters, and the grid, random and coarse-to-fine strategies.

An axis is written as in a spec's ``[hparams]`` table::

    0.1                          fixed
    { values = [0.0, 0.003] }    a list (grid)           { choice = [...] }   one of (random)
    { linspace = [lo, hi, n] }   n evenly spaced         { uniform = [lo, hi] }
    { logspace = [lo, hi, n] }   n evenly spaced in log  { log_uniform = [lo, hi] }
    { int = [lo, hi] }           integers lo..hi, inclusive

``dropout`` and ``dropconnect`` take per-layer lists (input layer first); a scalar axis over
them may name the layers it sets with ``layers = [1, 2]`` (the others stay 0), otherwise the
scalar applies to every layer.

Under ``grid`` the configs are the cartesian product of the axes (``choice`` acts as
``values``, ``int`` lists every integer); ``uniform`` and ``log_uniform`` need ``random``.
Under ``random`` each config is drawn independently: ``values`` acts as ``choice``,
``linspace`` as ``uniform`` and ``logspace`` as ``log_uniform`` over the same bounds. The i-th
draw of a round comes from its own generator, seeded by ``(seed, round, i)``, so it does not
depend on how many are drawn or in which chunk they train.

Coarse-to-fine zooms in after each round: :meth:`Space.bracket` (the ``not_worse`` rule, around
the configs not significantly worse than the best) or :meth:`Space.zoom` (``top_k``). Under
Optuna's samplers (``tpe``, ``cmaes``, ``gp``) the axes become Optuna distributions (the same
reading as ``random``) and the sampler asks each round's configs: their space is a
:class:`jaxreg.sweeps.samplers.ModelSpace`, which knows Optuna (this module does not).

Everything here is NumPy and plain Python: sampling never touches the compiled program. Values
that name configs (grid points, log-uniform draws, zoomed bounds) use the C library's scalar
``log``/``exp``/``pow``, not NumPy's vectorized ones, which round differently on CPUs with
AVX-512: the same spec gives the same configs on every machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxreg.errors import InputError
from jaxreg.hparams import RANGED, check_range

GRID_FORMS = ("values", "linspace", "logspace")
RANDOM_FORMS = ("choice", "uniform", "log_uniform")
FORMS = ("values", "linspace", "logspace", "int", "choice", "uniform", "log_uniform")
LAYERED = ("dropout", "dropconnect")
MODEL_METHODS = ("tpe", "cmaes", "gp")  # Optuna's samplers (jaxreg.sweeps.samplers)
METHODS = ("grid", "random", "coarse_to_fine", *MODEL_METHODS, "halving", "hyperband", "path")
MAX_GRID = 10**6  # configs per grid round: beyond, listing them alone exhausts memory
MAX_TRIALS = 10**7  # configs x seeds in a round: beyond, a sweep would not end (and its journal not fit)


def _number(where: str, value, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InputError(f"{where}: expected {what}, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Axis:
    """One hyperparameter's values: fixed, a grid, or a distribution.

    Attributes:
        name: the hparams field.
        form: ``"fixed"`` or one of ``FORMS``.
        values: the fixed value, or the list of ``values``/``choice``.
        low, high, num: bounds (and grid size) of numeric forms.
        layers: for a scalar axis over ``dropout``/``dropconnect``, the layers it sets.
        path: where the spec gives it, for messages (default ``hparams.NAME``).
    """

    name: str
    form: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    num: int = 0
    layers: tuple | None = None
    path: str | None = dataclasses.field(default=None, compare=False)

    @property
    def log(self) -> bool:
        return self.form in ("logspace", "log_uniform")

    @property
    def numeric(self) -> bool:
        """A range that coarse-to-fine search can shrink."""
        return self.form in ("linspace", "logspace", "int", "uniform", "log_uniform")

    @property
    def where(self) -> str:
        return self.path or f"hparams.{self.name}"

    @property
    def grid_size(self) -> int:
        """How many values :meth:`grid` lists, without listing them."""
        if self.form == "fixed":
            return 1
        if self.form in ("values", "choice"):
            return len(self.values)
        if self.form == "int":
            return int(self.high) - int(self.low) + 1
        return self.num

    def grid(self) -> list:
        if self.form == "fixed":
            return [self.values[0]]
        if self.form in ("values", "choice"):
            return list(self.values)
        if self.form == "linspace":
            return np.linspace(self.low, self.high, self.num).tolist()
        if self.form == "logspace":
            return geomspace(self.low, self.high, self.num)
        if self.form == "int":
            return list(range(int(self.low), int(self.high) + 1))
        raise InputError(f"{self.where}: {{ {self.form} = ... }} is a distribution: expected "
                        f"search.method 'random' or 'coarse_to_fine' with round_method 'random', "
                        f"got a grid search")

    def sample(self, rng: np.random.Generator):
        if self.form == "fixed":
            return self.values[0]
        if self.form in ("values", "choice"):
            return self.values[int(rng.integers(len(self.values)))]
        if self.form == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return float(rng.uniform(self.low, self.high))

    def resolve(self, value, num_layers: int | None):
        """The hparams value an axis value stands for (a per-layer list for ``layers`` axes)."""
        if self.layers is None:
            return value
        rates = [0.0] * num_layers
        for layer in self.layers:
            rates[layer] = value
        return rates

    def zoomed(self, chosen: Sequence[float], original: Axis, pad_fraction: float,
               min_width: float) -> Axis:
        """This axis shrunk around the ``chosen`` values (the top configs of a round).

        The new range spans the chosen values padded by ``pad_fraction`` of the current width
        on each side (in log space for log axes), widened to at least ``min_width`` of the
        original width, and kept inside the original bounds.
        """
        to = math.log if self.log else float
        lo, hi = to(self.low), to(self.high)
        points = [to(v) for v in chosen]
        pad = pad_fraction * (hi - lo)
        return self._window(min(points) - pad, max(points) + pad, original, min_width)

    def bracketed(self, kept: Sequence[float], rejected: Sequence[float], original: Axis,
                  min_width: float) -> Axis:
        """The range from the nearest ``rejected`` value below the ``kept`` ones to the nearest
        above (the original bounds where none is), widened to at least ``min_width`` of the
        original width: where the optimum can still be, if the metric is unimodal along it."""
        to = math.log if self.log else float
        lo, hi = min(to(v) for v in kept), max(to(v) for v in kept)
        below = [to(v) for v in rejected if to(v) < lo]
        above = [to(v) for v in rejected if to(v) > hi]
        return self._window(max(below) if below else to(original.low),
                            min(above) if above else to(original.high), original, min_width)

    def _window(self, new_lo: float, new_hi: float, original: Axis, min_width: float) -> Axis:
        """This axis over [new_lo, new_hi] (log space for log axes), at least ``min_width`` of
        the original width, slid back inside the original bounds."""
        to, back = (math.log, math.exp) if self.log else (float, float)
        lo0, hi0 = to(original.low), to(original.high)
        width = max(new_hi - new_lo, min_width * (hi0 - lo0))
        center = (new_lo + new_hi) / 2
        new_lo, new_hi = center - width / 2, center + width / 2
        if new_lo < lo0:  # slide the window back inside the original bounds
            new_lo, new_hi = lo0, min(hi0, lo0 + width)
        if new_hi > hi0:
            new_lo, new_hi = max(lo0, hi0 - width), hi0
        if self.form == "int":
            low, high = math.floor(new_lo + 0.5), math.ceil(new_hi - 0.5)
            low, high = max(int(original.low), low), min(int(original.high), max(high, low))
            return dataclasses.replace(self, low=float(low), high=float(high))
        low = original.low if new_lo <= lo0 else float(back(new_lo))  # exact bounds, no exp(log) drift
        high = original.high if new_hi >= hi0 else float(back(new_hi))
        return dataclasses.replace(self, low=low, high=high)


def geomspace(low: float, high: float, num: int) -> list[float]:
    """``np.geomspace(low, high, num)`` in the C library's scalar maths: NumPy's vectorized
    ``power`` rounds differently on CPUs with AVX-512 (and grid values name configs, so a
    grid must be the same numbers on every machine). Both ends are exact."""
    if num <= 1:
        return [float(low)][:num]
    exponents = np.linspace(math.log10(low), math.log10(high), num).tolist()
    return [float(low), *(10.0 ** e for e in exponents[1:-1]), float(high)]


def _no_bools(where: str, name: str, value) -> None:
    """TOML's true and false are not numbers: only ``restore_best`` takes a bool."""
    if name == "restore_best":
        return
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {str(value).lower()}")
    if isinstance(value, list):
        for item in value:
            _no_bools(where, name, item)


def parse_axis(name: str, raw: Any, where: str | None = None) -> Axis:
    """Reads one ``[hparams]`` entry; raises :class:`InputError` naming ``where``
    (default ``hparams.NAME``; ``cases.CASE.NAME`` for an entry of a case). Every value it may
    take is checked against the field's range here, before JAX loads: a bound of a range, each
    of a list (:func:`jaxreg.hparams.check_range`)."""
    where = where or f"hparams.{name}"
    axis = _parse_axis(name, raw, where)
    if name not in RANGED:  # a space of other names (the samplers' own tests): nothing to check
        return axis
    for value in (axis.values if axis.form in ("fixed", "values", "choice") else (axis.low, axis.high)):
        try:
            array = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            continue  # not numbers: the build's checks name what is wrong with it
        check_range(name, array, where)
    return axis


def _parse_axis(name: str, raw: Any, where: str) -> Axis:
    if not isinstance(raw, Mapping):
        if isinstance(raw, str):
            raise InputError(f"{where}: expected a number, a list of per-layer rates or an axis table "
                            f"{{ values | linspace | logspace | int | choice | uniform | log_uniform = ... }}, "
                            f"got {raw!r}")
        _no_bools(where, name, raw)
        return Axis(name, "fixed", (raw,), path=where)
    forms = [key for key in raw if key != "layers"]
    unknown = [key for key in forms if key not in FORMS]
    if unknown or len(forms) != 1:
        got = unknown[0] if unknown else ("nothing" if not forms else " and ".join(forms))
        raise InputError(f"{where}: expected exactly one of {', '.join(FORMS)} (and optionally "
                        f"layers), got {got if not unknown else repr(got)}")
    form, args = forms[0], raw[forms[0]]
    layers = raw.get("layers")
    if layers is not None:
        if name not in LAYERED:
            raise InputError(f"{where}.layers: expected only for {' or '.join(LAYERED)}, got {layers!r}")
        if (not isinstance(layers, list) or not layers
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers)):
            raise InputError(f"{where}.layers: expected a non-empty list of layer indices >= 0, got {layers!r}")
        layers = tuple(layers)
    if not isinstance(args, list):
        raise InputError(f"{where}.{form}: expected a list, got {args!r}")
    if form in ("values", "choice"):
        if not args:
            raise InputError(f"{where}.{form}: expected a non-empty list, got []")
        _no_bools(where, name, args)
        return Axis(name, form, tuple(args), layers=layers, path=where)
    arity = 3 if form in ("linspace", "logspace") else 2
    shape = "[lo, hi, n]" if arity == 3 else "[lo, hi]"
    if len(args) != arity:
        raise InputError(f"{where}.{form}: expected {shape}, got {args!r}")
    low = _number(f"{where}.{form}", args[0], f"numbers {shape}")
    high = _number(f"{where}.{form}", args[1], f"numbers {shape}")
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise InputError(f"{where}.{form}: expected finite bounds with lo <= hi, got {args!r}")
    num = 0
    if arity == 3:
        num = args[2]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise InputError(f"{where}.{form}: expected a count n >= 1 in [lo, hi, n], got {num!r}")
    if form in ("logspace", "log_uniform") and low <= 0:
        raise InputError(f"{where}.{form}: expected 0 < lo <= hi for a log scale, got {args!r}")
    if form == "int" and not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise InputError(f"{where}.int: expected integers [lo, hi], got {args!r}")
    return Axis(name, form, (), low, high, num, layers, path=where)


@dataclasses.dataclass(frozen=True)
class Config:
    """One point of a search: its round, the axis values drawn, and the full hparams values."""

    round: int
    point: dict          # axis name -> value drawn (the varying axes only)
    hparams: dict        # every field given in the spec, resolved (per-layer lists filled in)
    case: str | None = None


class Space:
    """A search space: axes (optionally per named case) and a strategy.

    Args:
        axes: ``{name: Axis}``: the spec's ``[hparams]``.
        cases: ``{case name: {name: Axis}}`` overriding ``axes``, or empty: each case is
            searched as its own space, and the configs of all cases are concatenated.
        method: one of ``METHODS``.
        round_method: ``"grid"`` or ``"random"``, what each coarse-to-fine round does.
        samples: configs per random round.
        round_samples: configs of each round, when they differ (hyperband's brackets).
        seed: seeds random sampling.
        layer_counts: ``{"dropout": n, "dropconnect": n}`` of the model.
    """

    # Whether Optuna's sampler asks the configs (jaxreg.sweeps.samplers.ModelSpace) rather than
    # the grid and draws here: a space of one of MODEL_METHODS must be such a subclass.
    model_based = False

    def __init__(self, axes: Mapping[str, Axis], *, cases: Mapping[str, Mapping[str, Axis]] | None = None,
                 method: str = "grid", round_method: str = "grid", samples: int = 1, seed: int = 0,
                 layer_counts: Mapping[str, int] | None = None, round_samples: Sequence[int] | None = None):
        if (method in MODEL_METHODS) != self.model_based:
            allowed = MODEL_METHODS if self.model_based else tuple(m for m in METHODS if m not in MODEL_METHODS)
            raise ValueError(f"{type(self).__name__}: expected a method among {', '.join(allowed)}, got "
                             f"{method!r} (Optuna's samplers ask the configs of a jaxreg.sweeps.samplers.ModelSpace)")
        self.axes = dict(axes)
        self.cases = {name: {**self.axes, **overrides} for name, overrides in (cases or {}).items()}
        self.method, self.round_method = method, round_method
        self.samples, self.seed = samples, seed
        self.round_samples = None if round_samples is None else tuple(round_samples)
        self.layer_counts = dict(layer_counts or {})
        for name, axis in self.all_axes():
            if axis.layers is not None:
                n = self.layer_counts.get(name, 0)
                if max(axis.layers) >= n:
                    raise InputError(f"{axis.where}.layers: expected layer indices in [0, {n - 1}] "
                                    f"(the model has {n}), got {list(axis.layers)}")
        if self._grid_like:
            for _, axis in self.all_axes():
                if axis.form in ("uniform", "log_uniform"):
                    raise InputError(f"{axis.where}: expected values, linspace, logspace, int or choice "
                                    f"under a grid search ({axis.form} is a distribution: it needs "
                                    f"search.method 'random', or round_method 'random' with "
                                    f"'coarse_to_fine'), got {axis.form}")
        self.validate_count()

    def all_axes(self):
        spaces = self.cases.values() if self.cases else [self.axes]
        for axes in spaces:
            yield from axes.items()

    def spaces(self) -> list[tuple[str | None, dict]]:
        return list(self.cases.items()) if self.cases else [(None, self.axes)]

    def validate_count(self) -> None:
        if self._grid_like:
            total = sum(math.prod(a.grid_size for a in axes.values()) for _, axes in self.spaces())
            if total == 0:
                raise InputError("hparams: expected at least one config, got an empty grid")
            if total > MAX_GRID:
                raise InputError(f"hparams: expected at most {MAX_GRID} configs in a grid, got {total}")

    @property
    def _grid_like(self) -> bool:
        return self.method in ("grid", "path") or (self.method in ("coarse_to_fine", "halving")
                                                    and self.round_method == "grid")

    def varying(self) -> list[str]:
        """Names of the axes that take more than one value (in any case)."""
        names = []
        for _, axes in self.spaces():
            for name, axis in axes.items():
                if axis.form != "fixed" and name not in names:
                    names.append(name)
        return names

    def configs(self, round: int = 0, axes_by_case: Mapping | None = None) -> list[Config]:
        """The configs of one round; ``axes_by_case`` replaces the axes (a zoomed round)."""
        return list(self.iter_configs(round, axes_by_case))

    def iter_configs(self, round: int = 0, axes_by_case: Mapping | None = None):
        """:meth:`configs` one at a time (a grid's first configs without listing a million)."""
        for case, axes in self.spaces():
            axes = (axes_by_case or {}).get(case, axes)
            names = list(axes)
            if self._grid_like:
                points = (dict(zip(names, combo)) for combo in itertools.product(*(axes[n].grid() for n in names)))
            else:
                points = []
                count = self.samples if self.round_samples is None else self.round_samples[round]
                for i in range(count):
                    rng = np.random.default_rng(np.random.SeedSequence([self.seed, round, i]))
                    points.append({n: axes[n].sample(rng) for n in names})
            seen = set()
            for point in points:
                config = self.config_of(round, point, case, axes)
                # A random draw that repeats a config (a case without axes, a categorical axis with
                # fewer values than samples) is the same trial: it is kept once, at its first draw.
                identity = json.dumps(config.hparams, sort_keys=True, default=float)
                if identity in seen:
                    continue
                seen.add(identity)
                yield config

    def first(self) -> Config:
        """The first round's first config, without listing a grid of a million."""
        return next(self.iter_configs(0))

    def count(self, round: int = 0) -> int:
        """``len(self.configs(round))``; a grid's without listing it: a config is its resolved
        values, so a case has the product of each axis' distinct resolved values."""
        if not self._grid_like:
            return len(self.configs(round))

        def distinct(name, axis):
            return len({json.dumps(axis.resolve(v, self.layer_counts.get(name)), sort_keys=True, default=float)
                        for v in axis.grid()})

        return sum(math.prod(distinct(n, a) for n, a in axes.items()) for _, axes in self.spaces())

    def config_of(self, round: int, point: Mapping, case: str | None = None,
                  axes: Mapping[str, Axis] | None = None) -> Config:
        """The :class:`Config` of one point: ``point`` gives a value for each varying axis (the
        fixed axes take their value), resolved into hparams values."""
        axes = axes if axes is not None else dict(self.spaces())[case]
        point = {n: point[n] if axis.form != "fixed" else axis.values[0] for n, axis in axes.items()}
        resolved = {n: axes[n].resolve(v, self.layer_counts.get(n)) for n, v in point.items()}
        varying = {n: v for n, v in point.items() if axes[n].form != "fixed"}
        return Config(round, varying, resolved, case)

    def draws(self) -> int:
        """Configs a round draws before repeats are dropped (random rounds), or the grid's size."""
        if self._grid_like:
            return sum(math.prod(a.grid_size for a in axes.values()) for _, axes in self.spaces())
        return self.samples * len(self.spaces())

    def bracket(self, configs: Sequence[Config], kept: Sequence[bool], *, min_width: float = 0.01) -> dict:
        """The axes of the next coarse-to-fine round under the ``not_worse`` rule.

        ``configs`` are every config tried so far, ``kept`` which of them are not significantly
        worse than the best (:func:`jaxreg.sweeps.run.not_worse`). Each numeric axis spans the
        kept configs' values and reaches out to the nearest value a rejected config had beyond
        them on each side, or to the original bound where no rejected config lies beyond
        (:meth:`Axis.bracketed`); ``values``/``choice`` axes keep the values kept configs used.
        A case with no kept config keeps its original axes.
        """
        new = {}
        for case, original_axes in self.spaces():
            mine = [(c, k) for c, k in zip(configs, kept) if c.case == case]
            chosen = [c for c, k in mine if k]
            if not chosen:
                new[case] = dict(original_axes)
                continue
            others = [c for c, k in mine if not k]
            axes = {}
            for name, axis in original_axes.items():
                if axis.numeric:
                    axes[name] = axis.bracketed([c.point[name] for c in chosen], [c.point[name] for c in others],
                                                axis, min_width)
                elif axis.form in ("values", "choice"):
                    axes[name] = dataclasses.replace(
                        axis, values=tuple(v for v in axis.values if any(c.point[name] == v for c in chosen)))
                else:
                    axes[name] = axis
            new[case] = axes
        return new

    def zoom(self, axes_by_case: Mapping | None, top: Sequence[Config], *, min_width: float = 0.01) -> dict:
        """The axes of the next coarse-to-fine round, shrunk around the ``top`` configs.

        Numeric axes shrink around the values of ``top`` (one grid step of padding for grid
        rounds, 5% of the current width for random rounds); ``values``/``choice`` axes keep only
        the values that ``top`` used. Cases that no top config came from keep their axes.
        """
        new = {}
        for case, original_axes in self.spaces():
            axes = (axes_by_case or {}).get(case, original_axes)
            chosen = [c for c in top if c.case == case]
            if not chosen:
                new[case] = axes
                continue
            zoomed = {}
            for name, axis in axes.items():
                if axis.numeric:
                    if self._grid_like:
                        steps = max(axis.num - 1, 1) if axis.form != "int" else max(axis.high - axis.low, 1)
                        pad = 1.0 / steps
                    else:
                        # Little padding: the top configs' own spread sets the next width, so an
                        # axis that matters shrinks fast and one that doesn't stays wide.
                        pad = 0.05
                    zoomed[name] = axis.zoomed([c.point[name] for c in chosen], original_axes[name], pad, min_width)
                elif axis.form in ("values", "choice"):
                    kept = tuple(v for v in axis.values if any(c.point[name] == v for c in chosen))
                    zoomed[name] = dataclasses.replace(axis, values=kept)
                else:
                    zoomed[name] = axis
            new[case] = zoomed
        return new
