"""The training schedule's rules: epochs, evaluations, batch size, the early-stopping monitor and
the scale of the measures' perturbations, checked in one place.

JAX-free, so a spec's ``[train]`` is refused before JAX loads (:mod:`jaxreg.sweeps.spec`) with
the very message :class:`jaxreg.TrainConfig` gives when called from Python.
"""

from __future__ import annotations

import math

from jaxreg.errors import InputError, check_choice, check_positive_int
from jaxreg.names import MONITORS, SPLITS, own_metric_names

# What one compiled program can hold: the epoch counters are int32, a member keeps one loss and
# accuracy per epoch until its evaluation, and every metric at each evaluation.
MAX_EPOCHS = 2**31 - 1
MAX_EVAL_EVERY = 10**6
MAX_EVALUATIONS = 10**6


def check_schedule(epochs, eval_every, batch_size) -> None:
    """Raises :class:`InputError` naming the field (``epochs``, ``eval_every``, ``batch_size``)
    unless ``epochs`` and ``eval_every`` are integers >= 1 within the limits above, ``eval_every``
    divides ``epochs``, and ``batch_size`` is an integer >= 1 or None (the full batch)."""
    check_positive_int("epochs", epochs)
    check_positive_int("eval_every", eval_every)
    if epochs % eval_every:
        raise InputError(f"eval_every: expected a divisor of epochs={epochs}, got {eval_every}")
    if epochs > MAX_EPOCHS:
        raise InputError(f"epochs: expected an integer in [1, {MAX_EPOCHS}] (int32 epoch counters), got {epochs}")
    if eval_every > MAX_EVAL_EVERY:
        raise InputError(f"eval_every: expected at most {MAX_EVAL_EVERY} epochs between evaluations (each member "
                         f"holds every epoch's loss until the evaluation), got {eval_every}")
    if epochs // eval_every > MAX_EVALUATIONS:
        raise InputError(f"epochs / eval_every: expected at most {MAX_EVALUATIONS} evaluations (each member "
                         f"holds every metric at each), got {epochs // eval_every} ({epochs} / {eval_every})")
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)


def check_monitor(monitor, mode, own=()) -> None:
    """Raises :class:`InputError` naming ``monitor`` or ``mode`` unless ``monitor`` is one of
    ``MONITORS`` or ``train_NAME`` / ``val_NAME`` of an own metric ``NAME`` in ``own``, and
    ``mode`` is ``"auto"``, ``"min"`` or ``"max"`` (``"min"`` or ``"max"`` for an own metric:
    which way is better is the user's to say)."""
    own_monitors = own_metric_names(own, SPLITS[:2])
    check_choice("monitor", monitor, MONITORS + own_monitors)
    check_choice("mode", mode, ("auto", "min", "max"))
    if monitor in own_monitors and mode == "auto":
        raise InputError(f"mode: expected 'min' or 'max' when monitor is an own metric ({monitor!r}: "
                         f"jaxreg cannot tell which way is better), got 'auto'")


def check_measure_sigma(sigma) -> None:
    """Raises :class:`InputError` unless ``measure_sigma`` (the scale of ``train.measures``'
    sharpness perturbations) is a finite number > 0 (not a bool)."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma < math.inf:
        raise InputError(f"measure_sigma: expected a number > 0, got {sigma!r}")
