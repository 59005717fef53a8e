"""Regularization paths: one penalty's strengths, largest first, each point warm-started.

``search.method = "path"``: the strengths ``path_max * path_ratio**k`` (``k = 0 ..
path_points - 1``) of one penalty, ``search.path_penalty``: ``"l2"``, ``"l1"``,
``"weight_decay"`` or ``"elastic_net"`` (``l1 = mix * strength``, ``l2 = (1 - mix) *
strength``, for each ``search.path_mix``). Every config of the other swept axes (a grid: the
learning rate, ...) times each mix times each seed is one member of a point; the members of a
point train together, vmapped, as one ask.

The first point starts from the model's init and trains ``train.epochs``; each later point is
a new trial (another config id: its strength differs) that starts from the params, and the
model state (batch norm's statistics), the same member returned at the point before (the best
evaluation's with ``restore_best``), and trains ``search.path_epochs``, with early stopping as
any trial. Only params and model state are carried: the optimizer state (momentum, Adam's
moments), the step count, the learning-rate schedule and early stopping start afresh at each
point, as for a new trial (the momentum of the old objective would push against the new one).

Each point's trials are journaled as they end, with ``path_point`` (0 for the largest
strength), ``path_strength``, ``path_mix`` (elastic net), ``warm_start`` (the config id of the
trial it started from, None at the first point) and ``trained_epochs``. The members of the
last point journaled stay in the executor's ``checkpoint.npz`` until the next point has
trained from them, so a killed path resumes at the point it was at and gives the same journal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from jaxreg.errors import InputError, check_choice, is_int
from jaxreg.sweeps.space import Config
from jaxreg.sweeps.strategies import Ask, Outcome, Told, Trial, config_id

PENALTIES = ("l2", "l1", "weight_decay", "elastic_net")
# The search keys of a path (only with search.method "path"), and the defaults of those that
# have one (path_max has none; path_epochs defaults to train.epochs, path_mix to [0.5]).
PATH_DEFAULTS = {"path_penalty": "l2", "path_ratio": 0.7, "path_points": 10}
SEARCH_KEYS = ("path_penalty", "path_max", "path_ratio", "path_points", "path_epochs", "path_mix")
MAX_POINTS = 1000


def penalty_names(penalty: str) -> tuple[str, ...]:
    """The hparams a path over ``penalty`` sets."""
    return ("l1", "l2") if penalty == "elastic_net" else (penalty,)


def strengths(search: dict) -> list[float]:
    """The path's strengths, largest first: ``path_max * path_ratio**k``.

    >>> strengths({"path_max": 1.0, "path_ratio": 0.5, "path_points": 3})
    [1.0, 0.5, 0.25]
    """
    return [float(search["path_max"] * search["path_ratio"] ** k) for k in range(search["path_points"])]


def mixes(search: dict) -> tuple:
    """The elastic-net mixes (the L1 fraction) of a path; ``(None,)`` for a single penalty."""
    return tuple(search["path_mix"]) if search["path_penalty"] == "elastic_net" else (None,)


def penalty_values(penalty: str, strength: float, mix: float | None) -> dict:
    """The hparams values of one point.

    >>> penalty_values("elastic_net", 0.5, 0.25)
    {'l1': 0.125, 'l2': 0.375}
    """
    if penalty == "elastic_net":
        return {"l1": mix * strength, "l2": (1.0 - mix) * strength}
    return {penalty: strength}


def words(search: dict, epochs: int) -> str:
    """A path in words (plan)."""
    points, values = search["path_points"], strengths(search)
    mixed = search["path_penalty"] == "elastic_net"
    mix = f", mixes {', '.join(f'{m:g}' for m in search['path_mix'])}" if mixed else ""
    return (f"path: {points} {search['path_penalty']} strengths from {values[0]:g} down by x{search['path_ratio']:g} "
            f"to {values[-1]:g}{mix}; the first trains {epochs} epochs, each next one {search['path_epochs']} "
            f"from the params the one before returned")


class Plan(NamedTuple):
    """What a path trains: the ``penalty``, its ``strengths`` (largest first), the elastic-net
    ``mixes`` (``(None,)`` else), the epochs of the first point and of each later one."""

    penalty: str
    strengths: tuple
    mixes: tuple
    first_epochs: int
    epochs: int


def plan_of(search: dict, epochs: int) -> Plan:
    """The :class:`Plan` of a resolved spec's ``search`` with ``train.epochs`` = ``epochs``."""
    return Plan(search["path_penalty"], tuple(strengths(search)), mixes(search), epochs, search["path_epochs"])


def point_configs(bases: Sequence[Config], plan: Plan, k: int) -> list[tuple[Config, float | None]]:
    """The configs of point ``k``: each base config (the other axes) with each mix, and the mix."""
    configs = []
    for base in bases:
        for mix in plan.mixes:
            values = penalty_values(plan.penalty, plan.strengths[k], mix)
            configs.append((Config(base.round, {**base.point, **values}, {**base.hparams, **values}, base.case), mix))
    return configs


class Path:
    """A regularization path over ``bases`` (the configs of the other swept axes), a
    :class:`jaxreg.sweeps.strategies.Strategy`: one ask per point, strongest first, each
    member of point ``k > 0`` starting from what the same member returned at point ``k - 1``.

    The members of a point stay in flight after they are journaled (``Told.stay``) until the
    next point has trained from them; the ask of a point keeps training (``Ask.keep``) even
    when every one of its trials is journaled, since only the members in flight hold the params
    the next point starts from. The last point trains only its trials not journaled.
    ``segment``: evaluation blocks per compiled call, one length for both budgets (one program).
    """

    def __init__(self, bases: Sequence[Config], seeds: Sequence[int], plan: Plan, *, chunk_size: int, every: int,
                 segment: int, label: Callable[[int], str] = lambda k: f"path point {k + 1}"):
        self.plan, self.chunk_size, self.every, self.segment, self.label = plan, chunk_size, every, segment, label
        self.points, self.mix_of = [], {}
        for k in range(len(plan.strengths)):
            trials = []
            for config, mix in point_configs(bases, plan, k):
                cid = config_id(config)
                self.mix_of[cid] = mix
                trials.extend(Trial(cid, config, int(s)) for s in seeds)
            self.points.append(tuple(trials))
        self.k, self.started, self.told = 0, False, {}

    def ask(self, history: dict) -> Ask | None:
        if not self.started:  # a rerun of a finished path trains nothing
            self.started = True
            if all(t.key in history for trials in self.points for t in trials):
                self.k = len(self.points)
        if self.k >= len(self.points):
            return None
        return self._ask()

    def _epochs(self, k: int) -> int:
        return self.plan.first_epochs if k == 0 else self.plan.epochs

    def _ask(self) -> Ask:
        k, self.told = self.k, {}
        trials = self.points[k]
        starts = None if k == 0 else {t.key: o.key for t, o in zip(trials, self.points[k - 1])}
        last = k + 1 == len(self.points)
        # A point the next one starts from trains whole (its journaled members too, unless kept
        # in flight); the last point trains only what is not journaled: nothing starts from it.
        return Ask(trials, self._epochs(k), self.chunk_size, self.segment, self.label(k), retrain=not last,
                   last=last, starts=starts, keep=not last)

    def _fields(self, k: int, trial: Trial, outcome: Outcome | None) -> dict:
        fields = {"path_point": k, "path_strength": self.plan.strengths[k]}
        if self.plan.penalty == "elastic_net":
            fields["path_mix"] = self.mix_of[trial.config_id]
        fields["warm_start"] = self.points[k - 1][self.points[k].index(trial)].config_id if k else None
        epochs = self._epochs(k)
        if outcome is not None:
            stopped_at = outcome.stopped_epoch or outcome.diverged_epoch
            fields["trained_epochs"] = min(stopped_at, epochs) if stopped_at else epochs
        return fields

    def tell(self, history: dict, outcomes: list[Outcome]) -> Told:
        k, trials = self.k, self.points[self.k]
        last = k + 1 == len(self.points)
        self.told.update((o.trial.key, o) for o in outcomes)
        leaving = {o.trial.key: self._fields(k, o.trial, o) for o in outcomes}
        stay = frozenset() if last else frozenset(leaving)  # the next point starts from them
        if not all(t.key in self.told or (last and t.key in history) for t in trials):
            return Told(leaving, stay)
        # the point is done (or every trial of the last point was journaled): the members it
        # started from leave the flight; they are journaled already
        if k > 0:
            leaving.update((t.key, self._fields(k - 1, t, None)) for t in self.points[k - 1] if t.key in history)
        self.k += 1
        strength = self.plan.strengths[k]
        note = (f"{self.label(k)}: {self.plan.penalty} {strength:.3g}, {len(self.told)} members trained "
                f"{self._epochs(k)} epochs" + (" from the params of the point before" if k else ""))
        return Told(leaving, stay, note if outcomes else None, decided=True)

    def position(self) -> object:
        return ["path", self.plan.penalty, list(self.plan.strengths), list(self.plan.mixes),
                [list(t.key) for t in self.points[0]]]

    def state(self) -> object:
        return {"point": self.k}

    def restore(self, state) -> Ask:
        self.k = min(int(state["point"]), len(self.points) - 1)
        return self._ask()


def check_path(search: dict, search_raw: dict, train: dict, hparams: dict, cases: dict) -> None:
    """Checks (and fills in) a spec's path keys; raises :class:`jaxreg.errors.InputError` naming
    the field, the values allowed and the value given. ``hparams``: the spec's ``[hparams]``."""
    if search["method"] != "path":
        for key in SEARCH_KEYS:
            if key in search_raw:
                raise InputError(f"search.{key}: expected only with search.method 'path', got {search_raw[key]!r} "
                                 f"with search.method {search['method']!r}")
        return
    if cases:
        raise InputError(f"search.method: expected no [cases] with 'path' (each point warm-starts the same members), "
                         f"got 'path' with cases {', '.join(map(repr, cases))}")
    for key, value in PATH_DEFAULTS.items():
        search.setdefault(key, value)
    check_choice("search.path_penalty", search["path_penalty"], PENALTIES)
    if "path_max" not in search:
        raise InputError("search.path_max: expected the largest strength, a number > 0, got none")
    top = search["path_max"]
    if isinstance(top, bool) or not isinstance(top, (int, float)) or not 0 < top < math.inf:
        raise InputError(f"search.path_max: expected the largest strength, a number > 0, got {top!r}")
    search["path_max"] = float(top)
    ratio = search["path_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise InputError(f"search.path_ratio: expected a number in (0, 1) (each strength is the one before "
                         f"times it), got {ratio!r}")
    search["path_ratio"] = float(ratio)
    points = search["path_points"]
    if not is_int(points) or not 2 <= points <= MAX_POINTS:
        raise InputError(f"search.path_points: expected an integer in [2, {MAX_POINTS}], got {points!r}")
    if search["path_max"] * search["path_ratio"] ** (points - 1) == 0:
        raise InputError(f"search.path_points: expected a path whose smallest strength is above 0 (path_max "
                         f"{top!r} x path_ratio {ratio!r} ** {points - 1} rounds to 0), got {points!r}")
    every, epochs = train["eval_every"], train["epochs"]
    per_point = search.setdefault("path_epochs", epochs)
    if not is_int(per_point) or not 0 < per_point <= epochs or per_point % every:
        raise InputError(f"search.path_epochs: expected a multiple of train.eval_every ({every}) in [{every}, "
                         f"{epochs}] (train.epochs: the first point's), got {per_point!r}")
    if search["path_penalty"] == "elastic_net":
        mix = search.setdefault("path_mix", [0.5])
        if (not isinstance(mix, list) or not mix or len(set(mix)) != len(mix)
                or not all(not isinstance(m, bool) and isinstance(m, (int, float)) and 0 <= m <= 1 for m in mix)):
            raise InputError(f"search.path_mix: expected a non-empty list of distinct L1 fractions in [0, 1], "
                             f"got {mix!r}")
        search["path_mix"] = [float(m) for m in mix]
    elif "path_mix" in search_raw:
        raise InputError(f"search.path_mix: expected only with search.path_penalty 'elastic_net', got "
                         f"{search_raw['path_mix']!r} with {search['path_penalty']!r}")
    for name in penalty_names(search["path_penalty"]):
        if name in hparams:
            raise InputError(f"hparams.{name}: expected none with search.method 'path' (search.path_penalty "
                             f"{search['path_penalty']!r} sets it at each point), got {hparams[name]!r}")
