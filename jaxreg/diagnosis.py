"""Reading cost curves: the slides' failure modes as labels with the epochs and numbers behind them.

``jaxreg.diagnose(curves)`` looks at one run's evaluation curves (``train_loss``, ``val_loss``,
``train_accuracy``: the dict a :class:`jaxreg.Result` or a results folder's curves file holds)
and returns a :class:`Finding` for each failure mode it sees:

========================  ================================================================
``diverged``              the loss or params stopped being finite (the engine froze the run)
``lr_too_big``            no progress while the loss jumps up and down, or a rise of the
                          training loss well above where it started
``slow_start``            a long flat start (bad initialization), then the loss falls
``plateau``               progress stopped while the training loss is still high
``decayed_too_soon``      a plateau that began after the learning rate had shrunk
``overfitting``           the validation loss rises again while the training loss falls;
                          the epoch of its minimum is where the gap opens
``underfitting``          both losses high, close together, well short of what the model
                          can fit (``reference``: the sanity check's or the sweep's best
                          training accuracy); without a reference it is not judged
========================  ================================================================

"Still high" means a training accuracy well under the ``reference`` (by ``Thresholds.fit_gap``
or ``Thresholds.fit_error`` times the reference's error, whichever is larger); without a
reference, under ``Thresholds.fit_accuracy``. Without accuracies, a training loss above
``Thresholds.high_loss`` of its first value (or ``1 + fit_error`` times a reference loss). Every
threshold is a field of :class:`Thresholds`, documented there and overridable. A healthy run
gets no finding.

At most one label per phase of a curve: the whole run (``diverged`` or ``lr_too_big``, which
leave nothing else to read), its start (``slow_start``), its end (one of ``overfitting``,
``decayed_too_soon``, ``underfitting``, ``plateau``, in that order of precedence: a rising
validation loss is never also underfitting, and a converged run that is high with a small gap is
underfitting, not also a plateau). A run still improving at its end after a slow start is not
called underfitting: its start is what holds it back.

The evaluation curves are the losses of the whole training and validation splits after each
``eval_every`` epochs, so they are smooth for a sensible learning rate; a jumping training loss
is the optimizer's doing, not mini-batch noise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["END_PHASE", "LABELS", "Finding", "Thresholds", "diagnose", "is_high"]

LABELS = ("diverged", "lr_too_big", "slow_start", "plateau", "decayed_too_soon", "overfitting", "underfitting")


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The rules' numbers (all relative, so they hold for any loss scale).

    Attributes:
        no_progress: ``lr_too_big``: the last training loss is above ``(1 - no_progress)`` times the
            first (the run made no progress) ...
        jumpy: ... and at least this fraction of evaluations raised the training loss by more
            than ``jump`` (relative).
        jump: the least rise that counts as a jump.
        rise: ``lr_too_big``: or the training loss rose above ``(1 + rise)`` times its first value.
        flat: ``slow_start``: the loss stays within ``flat`` (relative) of its first value ...
        slow_fraction: ... for at least this fraction of the evaluations (and 3 of them) ...
        drop: ... and later falls below ``(1 - drop)`` times the first value.
        tail: ``plateau``: the last fraction of evaluations looked at (at least 3) ...
        tail_progress: ... improve the training loss by less than this, relative.
        fit_accuracy: "still high" without a reference: a last training accuracy under this ...
        high_loss: ... or, without accuracies, a last training loss above this fraction of the first.
        fit_gap: "still high" against a reference accuracy: at least this far under it ...
        fit_error: ... and an error (1 - accuracy) above ``(1 + fit_error)`` times the reference's
            (a reference loss: a last loss above ``(1 + fit_error)`` times it).
        lr_shrunk: ``decayed_too_soon``: the learning rate when the plateau began is below this
            fraction of the initial one.
        overfit_rise: ``overfitting``: the last validation loss is above ``(1 + overfit_rise)`` times
            its minimum, and the training loss fell after that minimum.
        small_gap: ``underfitting``: the validation loss exceeds the training loss by less than this
            fraction of the training loss.
    """

    no_progress: float = 0.05
    jumpy: float = 0.3
    jump: float = 0.005
    rise: float = 0.1
    flat: float = 0.02
    slow_fraction: float = 0.15
    drop: float = 0.2
    tail: float = 0.25
    tail_progress: float = 0.01
    fit_accuracy: float = 0.95
    high_loss: float = 0.5
    fit_gap: float = 0.02
    fit_error: float = 0.5
    lr_shrunk: float = 0.1
    overfit_rise: float = 0.05
    small_gap: float = 0.1


class Finding(NamedTuple):
    """One failure mode seen in a run.

    Attributes:
        label: one of ``LABELS``.
        epoch: the epoch it starts (the gap opens, the plateau begins, the run diverged, ...).
        end: the epoch it ends (the last evaluated one while it lasts).
        numbers: the values that triggered it, by name.
        text: one line saying so.
    """

    label: str
    epoch: int
    end: int
    numbers: dict
    text: str


def _finite_prefix(values: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


# The end of a curve gets one label at most: the first of these that holds.
END_PHASE = ("overfitting", "decayed_too_soon", "underfitting", "plateau")


def is_high(accuracy: float, loss: float, first_loss: float, reference: float | None,
            thresholds: Thresholds = Thresholds()) -> bool:
    """Whether a run ends "still high": its training ``accuracy`` (NaN: none) well under the
    ``reference`` accuracy, or its training ``loss`` well above the reference loss (see
    :class:`Thresholds`); without a reference, against the fixed thresholds."""
    t = thresholds
    if math.isfinite(accuracy):
        if reference is None:
            return accuracy < t.fit_accuracy
        return accuracy < reference - max(t.fit_gap, t.fit_error * (1 - reference))
    if reference is None:
        return loss > t.high_loss * first_loss
    return loss > (1 + t.fit_error) * reference


def diagnose(curves: Mapping[str, Sequence[float]], *, epochs: Sequence[int] | None = None,
             learning_rate: Callable[[int], float] | None = None, diverged_epoch: int = 0,
             reference: float | None = None, thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """The failure modes of one run's curves (see the module docstring).

    Args:
        curves: ``train_loss`` (required), ``val_loss``, ``train_accuracy``: one value per
            evaluation; NaN after the run stopped or diverged.
        epochs: the epoch of each evaluation (default 1, 2, ...).
        learning_rate: ``epoch -> learning rate`` (for ``decayed_too_soon``); None skips that rule.
        diverged_epoch: the epoch the engine saw the run diverge (0: never).
        reference: what the model can fit: a training accuracy (with ``train_accuracy``
            curves) or a training loss (without), such as the sanity check's or the sweep's
            best; ``underfitting`` is judged only against one.
        thresholds: the rules' numbers.

    Returns:
        The findings, in the order of ``LABELS``.
    """
    t = thresholds
    train_all = np.asarray(curves["train_loss"], float)
    epochs = np.arange(1, len(train_all) + 1) if epochs is None else np.asarray(epochs)
    n = _finite_prefix(train_all)
    train = train_all[:n]
    found: list[Finding] = []
    if diverged_epoch:
        return [Finding("diverged", int(diverged_epoch), int(diverged_epoch), {"epoch": int(diverged_epoch)},
                        f"diverged in epoch {diverged_epoch}: loss or params not finite; the run kept "
                        f"its params from the start of that epoch")]
    if n < 3:
        return found
    e = epochs[:n]
    first, last = train[0], train[-1]
    steps = np.diff(train)
    jumps = float(np.mean(steps > t.jump * np.abs(train[:-1])))
    peak = int(np.argmax(train))
    if (last > (1 - t.no_progress) * first and jumps >= t.jumpy) or train[peak] > (1 + t.rise) * first:
        found.append(Finding("lr_too_big", int(e[0]), int(e[-1]),
                             {"first_loss": first, "last_loss": last, "max_loss": float(train[peak]),
                              "rising_evaluations": jumps},
                             f"learning rate too big: training loss {first:.4g} -> {last:.4g} (max {train[peak]:.4g} "
                             f"at epoch {e[peak]}), rising at {jumps:.0%} of evaluations"))
        return found  # the whole run: nothing else in it can be read

    flat_run = int(np.argmax(np.abs(train / first - 1) > t.flat)) if np.any(np.abs(train / first - 1) > t.flat) else n
    if (flat_run >= max(3, math.ceil(t.slow_fraction * n))
            and np.min(train[flat_run:], initial=np.inf) < (1 - t.drop) * first):
        found.append(Finding("slow_start", int(e[0]), int(e[flat_run - 1]),
                             {"flat_epochs": int(e[flat_run - 1]), "first_loss": first,
                              "loss_after": float(np.min(train[flat_run:]))},
                             f"slow start: training loss flat at {first:.4g} until epoch {e[flat_run - 1]}, then "
                             f"falls to {np.min(train[flat_run:]):.4g} (initialization too small?)"))

    accuracy = np.asarray(curves.get("train_accuracy", [np.nan] * n), float)[:n]
    high = is_high(float(accuracy[-1]), float(last), float(first), reference, t)
    if np.isfinite(accuracy[-1]):
        level = f"training accuracy {accuracy[-1]:.1%}"
    else:
        level = f"training loss {last:.4g} of {first:.4g} at first"
    if reference is not None:
        level += f" where {reference:.1%} is reached" if np.isfinite(accuracy[-1]) else f" where {reference:.4g} is reached"
    start = min(n - 3, int(math.floor((1 - t.tail) * n)))
    progress = (train[start] - last) / abs(train[start]) if train[start] else 0.0
    if high and progress < t.tail_progress:
        # where the plateau began: the first evaluation within tail_progress of the last value
        began = int(np.argmax(np.abs(train - last) <= t.tail_progress * abs(last)))
        numbers = {"from_epoch": int(e[began]), "loss": last, "tail_progress": progress}
        rate = None if learning_rate is None else learning_rate(int(e[began]) - 1) / learning_rate(0)
        if rate is not None and rate < t.lr_shrunk:
            numbers["lr_fraction"] = rate
            found.append(Finding("decayed_too_soon", int(e[began]), int(e[-1]), numbers,
                                 f"learning rate decayed too soon: no progress from epoch {e[began]} ({level}), "
                                 f"when the learning rate was {rate:.2g} of its first value"))
        else:
            found.append(Finding("plateau", int(e[began]), int(e[-1]), numbers,
                                 f"plateau: no progress from epoch {e[began]} while still high ({level})"))

    val = np.asarray(curves.get("val_loss", [np.nan] * n), float)[:n]
    if np.all(np.isfinite(val)):
        best = int(np.argmin(val))
        if val[-1] > (1 + t.overfit_rise) * val[best] and train[-1] < train[best]:
            found.append(Finding("overfitting", int(e[best]), int(e[-1]),
                                 {"best_val_loss": float(val[best]), "last_val_loss": float(val[-1]),
                                  "train_loss_at_best": float(train[best]), "last_train_loss": last},
                                 f"overfitting: validation loss lowest at epoch {e[best]} ({val[best]:.4g}), "
                                 f"{val[-1]:.4g} at the end while the training loss fell {train[best]:.4g} -> {last:.4g}"))
        gap = (val[-1] - last) / abs(last) if last else math.inf
        if high and gap < t.small_gap and reference is not None:
            found.append(Finding("underfitting", int(e[-1]), int(e[-1]),
                                 {"train_loss": last, "val_loss": float(val[-1]), "gap": gap},
                                 f"underfitting: {level}, validation loss {val[-1]:.4g} close to the training "
                                 f"loss {last:.4g} (" + ("a bigger network or less regularization"
                                                         if progress < t.tail_progress else
                                                         "still improving: longer training or a larger learning "
                                                         "rate") + ")"))
    if found and found[-1].label == "underfitting" and any(f.label == "slow_start" for f in found) \
            and progress >= t.tail_progress:
        found.pop()  # still catching up after a slow start: the start is the cause, not the capacity
    end = [f for f in found if f.label in END_PHASE]
    if end:
        kept = min(end, key=lambda f: END_PHASE.index(f.label))
        found = [f for f in found if f.label not in END_PHASE or f is kept]
    order = {label: i for i, label in enumerate(LABELS)}
    return sorted(found, key=lambda f: order[f.label])
