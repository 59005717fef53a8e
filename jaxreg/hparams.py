"""Hyperparameters a sweep varies: arrays in a NamedTuple, passed to ``train`` as an argument.

Everything here may differ between the members of one vmapped batch without recompiling:
the compiled program sees arrays, never Python floats. Static choices (layer sizes, batch
size, epochs, loss, optimizer kind) live in :class:`jaxreg.TrainConfig` instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from jaxreg.errors import InputError

Array = "jax.Array"  # annotations only: this module loads without JAX (a spec is checked before it)


class HParams(NamedTuple):
    """Per-member hyperparameters; every field is an array (a leading axis when stacked).

    Attributes:
        learning_rate: step size at epoch 0.
        momentum: momentum coefficient: ``trace`` decay for ``"momentum"``, ``beta`` of the
            notebook's ``v = beta * v + (1 - beta) * g`` for ``"ema_momentum"``, ``b1`` for adam
            and adamw; ignored by ``"sgd"``.
        lr_decay: per-epoch decay ``gamma``: epoch ``e`` (from 0) uses
            ``learning_rate * (1 - gamma) ** e``, the notebook's ``lr *= (1 - gamma)``.
        l2: L2 strength in the loss, ``0.5 * l2 * sum(w ** 2)`` (see :mod:`jaxreg.penalties`).
        l1: L1 strength, ``l1 * sum(|w|)``; a loss term, or a proximal step (``l1_mode``).
        weight_decay: decoupled weight decay: ``w -= lr * weight_decay * w`` each step.
        dropout: drop probabilities per layer, input layer first, shape ``(model.num_dropout,)``.
        dropconnect: weight drop probabilities per weight layer, ``(model.num_dropconnect,)``.
        patience: early stopping: epochs without improvement of the monitored metric before
            the member stops; ``inf`` never stops.
        min_delta: early stopping: the least change that counts as an improvement.
        restore_best: 1 to return the params of the best evaluation of the monitored metric
            (also when stopping never fired), 0 for the last params. Default: 1 when
            ``patience`` is finite (early stopping is on), else 0.
        bn_momentum: batch norm's running-average momentum (Keras and Flax convention:
            ``running = momentum * running + (1 - momentum) * batch``; PyTorch's ``momentum=0.1``
            is 0.9 here).
        bn_epsilon: batch norm's epsilon, added to the variance.
        trainable_layers: transfer learning: train only the last ``k`` layers of the model (the
            head counts as one); the others are frozen, weight decay included. ``inf`` (the
            default) trains every layer.
        layer_lr_decay: layer-wise learning-rate decay: the layer ``d`` layers below the head
            steps with ``learning_rate * layer_lr_decay ** d`` (ULMFiT's 1/2.6); 1 is off.
        flip: augmentation: the probability of mirroring an image left-right.
        shift: augmentation: the largest translation, in pixels (a whole number of pixels per
            example, drawn uniformly in ``[-shift, shift]`` on each axis; empty pixels are 0).
        rotate: augmentation: the largest rotation, in degrees (uniform in ``[-rotate, rotate]``).
        zoom: augmentation: the largest relative zoom (scale uniform in ``[1 - zoom, 1 + zoom]``).
        shear: augmentation: the largest shear angle, in degrees.
        blur: augmentation: the largest Gaussian blur sigma, in pixels (uniform in ``[0, blur]``).
        brightness: augmentation: the largest brightness change (added, uniform in ``[-b, b]``).
        contrast: augmentation: the largest relative contrast change (uniform in ``[1 - c, 1 + c]``).
        saturation: augmentation: the largest relative saturation change (colour images only).
        noise: augmentation: the standard deviation of added Gaussian noise.
    """

    learning_rate: Array
    momentum: Array
    lr_decay: Array
    l2: Array
    l1: Array
    weight_decay: Array
    dropout: Array
    dropconnect: Array
    patience: Array
    min_delta: Array
    restore_best: Array
    bn_momentum: Array
    bn_epsilon: Array
    trainable_layers: Array
    layer_lr_decay: Array
    flip: Array
    shift: Array
    rotate: Array
    zoom: Array
    shear: Array
    blur: Array
    brightness: Array
    contrast: Array
    saturation: Array
    noise: Array


AUGMENTATIONS = ("flip", "shift", "rotate", "zoom", "shear", "blur", "brightness", "contrast", "saturation",
                 "noise")
# Fields a trial record may leave out at their default (the records of sweeps that use none of
# them stay as they were before the fields existed).
OPTIONAL = ("bn_momentum", "bn_epsilon", "trainable_layers", "layer_lr_decay", *AUGMENTATIONS)

DEFAULTS = dict(learning_rate=0.01, momentum=0.9, lr_decay=0.0, l2=0.0, l1=0.0, weight_decay=0.0,
                dropout=0.0, dropconnect=0.0, patience=math.inf, min_delta=0.0,
                restore_best=None,  # None: 1 if patience is finite, else 0
                bn_momentum=0.99, bn_epsilon=1e-5, trainable_layers=math.inf, layer_lr_decay=1.0,
                **dict.fromkeys(AUGMENTATIONS, 0.0))

# (low, high, low inclusive, high inclusive, description) for each scalar field.
_RANGES = {
    "learning_rate": (0.0, math.inf, False, False, "a finite number > 0"),
    "momentum": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "lr_decay": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "l2": (0.0, math.inf, True, False, "a finite number >= 0"),
    "l1": (0.0, math.inf, True, False, "a finite number >= 0"),
    "weight_decay": (0.0, math.inf, True, False, "a finite number >= 0"),
    "dropout": (0.0, 1.0, True, False, "drop probabilities in [0, 1)"),
    "dropconnect": (0.0, 1.0, True, False, "drop probabilities in [0, 1)"),
    "patience": (0.0, math.inf, False, True, "a number > 0 (inf: never stop)"),
    "min_delta": (0.0, math.inf, True, False, "a finite number >= 0"),
    "restore_best": (0.0, 1.0, True, True, "0 or 1 (or a bool)"),
    "bn_momentum": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "bn_epsilon": (0.0, math.inf, False, False, "a finite number > 0"),
    "trainable_layers": (0.0, math.inf, False, True, "a whole number >= 1 (inf: every layer)"),
    "layer_lr_decay": (0.0, 1.0, False, True, "a number in (0, 1]"),
    "flip": (0.0, 1.0, True, True, "a probability in [0, 1]"),
    "shift": (0.0, math.inf, True, False, "a whole number of pixels >= 0"),
    "rotate": (0.0, 180.0, True, True, "degrees in [0, 180]"),
    "zoom": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "shear": (0.0, 90.0, True, False, "degrees in [0, 90)"),
    "blur": (0.0, math.inf, True, False, "a finite sigma >= 0 (pixels)"),
    "brightness": (0.0, 1.0, True, True, "a number in [0, 1]"),
    "contrast": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "saturation": (0.0, 1.0, True, False, "a number in [0, 1)"),
    "noise": (0.0, math.inf, True, False, "a finite standard deviation >= 0"),
}
RANGED = frozenset(_RANGES)  # the fields check_range knows
_WHOLE = ("trainable_layers", "shift")  # whole numbers (trainable_layers may be inf)


def _allowed(name: str, value: np.ndarray) -> np.ndarray:
    """Which elements of ``value`` are allowed for the field ``name``."""
    low, high, low_in, high_in, _ = _RANGES[name]
    ok = (value >= low if low_in else value > low) & (value <= high if high_in else value < high)
    if name == "restore_best":
        ok = (value == 0.0) | (value == 1.0)
    if name in _WHOLE:
        ok = ok & ((value == np.floor(value)) | np.isinf(value))
    return ok


def check_range(name: str, value: np.ndarray, where: str | None = None) -> None:
    """Raises, naming ``where`` (default ``hparams.NAME``), unless every element of ``value`` is
    in the field ``name``'s range. NumPy only: a spec's values are checked before JAX loads."""
    allowed = _RANGES[name][4]
    ok = _allowed(name, value)
    if not np.all(ok):
        bad = value[~ok].ravel()[0]
        raise InputError(f"{where or f'hparams.{name}'}: expected {allowed}, got {bad.item()}")



def check_dtype(hparams: HParams, dtype) -> None:
    """Raises unless every value is still allowed once cast to ``dtype``, the params' float type.

    A learning rate of 5e-324 is a float64 > 0 but 0 in float32; 1e300 is inf there. XLA flushes
    subnormal numbers to 0, so a nonzero magnitude below the dtype's smallest normal number counts
    as 0.
    """
    info = np.finfo(dtype)
    for name in HParams._fields:
        value = np.asarray(getattr(hparams, name), np.float64)
        with np.errstate(over="ignore"):
            cast = value.astype(dtype).astype(np.float64)
        cast = np.where(np.abs(cast) < info.tiny, 0.0, cast)
        ok = _allowed(name, cast) | ~_allowed(name, value)  # what was refused already is make_hparams' word
        if not np.all(ok):
            raise InputError(f"hparams.{name}: expected {_RANGES[name][4]} that {np.dtype(dtype).name} holds "
                             f"(magnitudes 0 or {info.tiny:.3g} to {info.max:.3g}), got {value[~ok].ravel()[0].item()!r}")


def make_hparams(model, **values) -> HParams:
    """Builds one member's :class:`HParams`, validating every value before anything is traced.

    Args:
        model: the :class:`jaxreg.Model`, which fixes the lengths of the dropout vectors.
        **values: any :class:`HParams` field; missing fields take :data:`DEFAULTS`. ``dropout``
            and ``dropconnect`` take a scalar (every layer) or one rate per layer.

    Returns:
        An :class:`HParams` of float64 NumPy arrays (cast to the params' dtype inside ``train``).

    >>> from jaxreg.models import mlp
    >>> hp = make_hparams(mlp((2, 64, 128, 1)), learning_rate=0.1, dropout=[0.0, 0.5, 0.5])
    >>> hp.dropout.tolist()
    [0.0, 0.5, 0.5]
    """
    unknown = sorted(set(values) - set(HParams._fields))
    if unknown:
        raise InputError(f"hparams: expected names among {', '.join(HParams._fields)}, got {unknown[0]!r}")
    lengths = {"dropout": model.num_dropout, "dropconnect": model.num_dropconnect}
    fields = {}
    for name in HParams._fields:
        value = values.get(name, DEFAULTS[name])
        if name == "restore_best" and value is None:
            value = float(np.isfinite(fields["patience"]))
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"hparams.{name}: expected a number, got {value!r}") from None
        if name in lengths:
            n = lengths[name]
            if array.ndim > 1 or (array.ndim == 1 and array.shape != (n,)):
                raise InputError(f"hparams.{name}: expected a scalar or {n} per-layer rates, "
                                 f"got {array.tolist()}")
            if n == 0 and np.any(array != 0):
                raise InputError(f"hparams.{name}: expected 0 for a model that takes no {name} rates "
                                 f"(num_{name} = 0), got {array.ravel()[array.ravel() != 0][0].item()}")
            array = np.broadcast_to(array, (n,))
        elif array.ndim:
            raise InputError(f"hparams.{name}: expected a number, got {array.tolist()}")
        check_range(name, array)
        fields[name] = array  # float64: cast to the params dtype inside train, once
    return HParams(**fields)


def stack_hparams(members) -> HParams:
    """Stacks a sequence of :class:`HParams` along a new leading (member) axis."""
    members = list(members)
    if not members:
        raise InputError("hparams: expected at least one member, got an empty list")
    return HParams(*(np.stack(column) for column in zip(*members)))


def as_dtype(hparams: HParams, dtype) -> HParams:
    """Casts every field to ``dtype`` (the params' float type)."""
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype), hparams)
