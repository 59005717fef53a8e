"""Data losses and metrics, computed from the output layer's logits (pre-activation).

Every loss is a mean over the batch; labels are integer class ids (or, for squared error,
targets of the output's shape). The weight-decay term lives in :mod:`jaxreg.penalties`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxreg.errors import InputError
from jaxreg.names import LOSSES

Array = jax.Array


def _targets_like(outputs: Array, labels: Array) -> Array:
    """One-hot integer labels for a multi-unit output; a column for a single unit."""
    if labels.ndim == outputs.ndim:
        return labels.astype(outputs.dtype)
    if outputs.shape[-1] == 1:
        return labels[..., None].astype(outputs.dtype)
    return jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)


def squared_error(outputs: Array, labels: Array) -> Array:
    """Half the summed squared error over outputs, averaged over the batch.

    This is the convention whose gradient is ``output - target``: the book's per-example
    update ``w += alpha * layer.T.dot(target - output)`` is SGD with learning rate ``alpha``
    on this loss with batch size 1.

    Args:
        outputs: network outputs (linear output layer), shape ``(batch, units)``.
        labels: integer class ids ``(batch,)`` (one-hot encoded here) or targets ``(batch, units)``.

    Returns:
        A scalar ``mean_over_batch(0.5 * sum_over_units((outputs - targets) ** 2))``.
    """
    diff = outputs - _targets_like(outputs, labels)
    return 0.5 * jnp.mean(jnp.sum(diff * diff, axis=-1))


def mean_squared_error(outputs: Array, labels: Array) -> Array:
    """Mean squared error over every element (the Keras ``"mse"`` convention)."""
    diff = outputs - _targets_like(outputs, labels)
    return jnp.mean(diff * diff)


def sum_squared_error(outputs: Array, labels: Array) -> Array:
    """Summed squared error over outputs, averaged over the batch: the book's printed ``Err``."""
    diff = outputs - _targets_like(outputs, labels)
    return jnp.mean(jnp.sum(diff * diff, axis=-1))


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Softmax cross-entropy from logits (stable log-sum-exp), averaged over the batch.

    Args:
        logits: ``(batch, classes)``.
        labels: integer class ids ``(batch,)``.

    Returns:
        A scalar.
    """
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32)))


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """Binary cross-entropy of a sigmoid output, from logits, summed over units, batch-averaged.

    Computed as ``softplus(z) - y * z``, which stays finite where ``log(sigmoid(z))`` would
    underflow; the notebook's ``eps = 1e-6`` clipping is not needed.

    Args:
        logits: ``(batch, units)``, usually ``units = 1``.
        labels: 0/1 labels ``(batch,)`` or ``(batch, units)``.

    Returns:
        A scalar.
    """
    targets = _targets_like(logits, labels)
    return jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1))


def accuracy(logits: Array, labels: Array) -> Array:
    """Fraction of correct predictions: argmax for several outputs, ``logit > 0`` for one.

    Args:
        logits: ``(batch, units)`` pre-activation outputs (for a linear output, the outputs).
        labels: integer class ids ``(batch,)``.

    Returns:
        A scalar in [0, 1]; NaN for float labels (regression targets have no accuracy).
    """
    if jnp.issubdtype(labels.dtype, jnp.floating):  # static: the data's dtype
        return jnp.full((), jnp.nan, logits.dtype)
    return jnp.mean((predicted_class(logits) == labels.astype(jnp.int32)).astype(logits.dtype))


def predicted_class(logits: Array) -> Array:
    """The class ids that ``logits`` ``(batch, units)`` predict: the argmax of several outputs,
    ``logit > 0`` of one (what :func:`accuracy` scores and ``Best.predict`` returns)."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1)


REGRESSION_LOSSES = ("squared_error", "sum_squared_error", "mse")  # fitted to float targets: regression


def is_regression(loss: str, labels_dtype) -> bool:
    """Whether a squared-error ``loss`` is fitted to float targets (integer labels with a squared
    error are classes, one-hot encoded: the book's digits)."""
    return isinstance(loss, str) and loss in REGRESSION_LOSSES and jnp.issubdtype(labels_dtype, jnp.floating)


def regression_metrics(outputs: Array, targets: Array) -> dict[str, Array]:
    """Root mean squared error, mean absolute error and R^2 of ``outputs`` against ``targets``.

    Args:
        outputs: the network's outputs ``(batch, units)`` (what the squared-error loss reads).
        targets: float targets ``(batch,)`` or ``(batch, units)``.

    Returns:
        ``{"rmse", "mae", "r2"}`` scalars: RMSE and MAE over every element; R^2 is ``1 -
        SS_res / SS_tot`` per output unit (``SS_tot`` about the targets' mean over the batch),
        averaged over units (scikit-learn's ``r2_score`` default).
    """
    targets = _targets_like(outputs, targets)
    diff = outputs - targets
    residual = jnp.sum(diff * diff, axis=0)
    total = jnp.sum((targets - jnp.mean(targets, axis=0)) ** 2, axis=0)
    return {"rmse": jnp.sqrt(jnp.mean(diff * diff)), "mae": jnp.mean(jnp.abs(diff)),
            "r2": jnp.mean(1.0 - residual / total)}


_LOSS_FNS = {
    "squared_error": squared_error,
    "sum_squared_error": sum_squared_error,
    "mse": mean_squared_error,
    "cross_entropy": softmax_cross_entropy,
    "bce": sigmoid_binary_cross_entropy,
}


def get_loss(name):
    """The loss function called ``name``, one of ``LOSSES``, or ``name`` itself if it is a function.

    ``"squared_error"`` is the book's 0.5 * sum convention (SGD with its learning rate is the
    book's update), ``"sum_squared_error"`` the error the book prints (its gradient is twice
    as large: half the learning rate gives the same update), ``"mse"`` the per-element mean,
    ``"cross_entropy"`` softmax cross-entropy, ``"bce"`` sigmoid binary cross-entropy.

    An own loss is a function ``loss(outputs, labels) -> scalar`` of JAX arrays, the mean over
    the batch like the built-in ones: ``outputs`` are the model's pre-activation outputs
    ``(batch, units)``, ``labels`` the split's ``y`` as given. It is traced into the compiled
    program, differentiated by the training step and evaluated on each split as ``SPLIT_loss``.
    """
    if callable(name):
        return name
    if not isinstance(name, str) or name not in _LOSS_FNS:
        raise InputError(f"loss: expected one of {', '.join(map(repr, LOSSES))} or a function "
                         f"(outputs, labels) -> scalar, got {name!r}")
    return _LOSS_FNS[name]


def loss_name(loss) -> str:
    """How results name ``loss``: its name, or ``"module:function"`` for an own loss function."""
    return loss if isinstance(loss, str) else f"{loss.__module__}:{loss.__qualname__}"


def checked_scalar(field: str, value: Array) -> Array:
    """``value`` if it is a scalar (checked while tracing, before any compute); a one-line error
    naming ``field`` (an own loss or metric) otherwise."""
    if jnp.shape(value) != ():
        raise InputError(f"{field}: expected a function returning a scalar (the mean over the batch), "
                         f"got an array of shape {tuple(jnp.shape(value))}")
    return value
