"""Dropout, DropConnect and spatial dropout: stochastic primitives that take the key first.

Everywhere in jaxreg ``rate`` is the DROP probability (not the keep probability, which is
what ``stax.Dropout`` took). A key of ``None`` means evaluation mode: no unit is dropped.
Rates may be traced arrays, so a vmapped sweep can give every member its own rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.errors import InputError

Array = jax.Array

_MODES = ("inverted", "classic")


def check_rate(rate, name: str = "rate") -> None:
    """Raises ``InputError`` if a concrete rate lies outside [0, 1); traced rates pass through.

    Args:
        rate: a Python number, a NumPy/JAX array, or a tracer.
        name: the argument name used in the error message.
    """
    if isinstance(rate, jax.core.Tracer):
        return
    values = np.asarray(rate, dtype=np.float64)
    bad = values[~((values >= 0.0) & (values < 1.0))]
    if bad.size:
        given = rate if np.ndim(rate) == 0 else np.asarray(rate).tolist()
        raise InputError(f"{name}: expected a drop probability in [0, 1), got {given}")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise InputError(f"mode: expected one of {', '.join(map(repr, _MODES))}, got {mode!r}")


def _keep_scale(rate: Array, dtype) -> Array:
    # max() keeps the gradient finite if a traced rate ever reaches 1 (where everything drops).
    return (1.0 / jnp.maximum(1.0 - rate, jnp.finfo(dtype).tiny)).astype(dtype)


def dropout(key: Array | None, x: Array, rate, *, mode: str = "inverted") -> Array:
    """Drops each element of ``x`` independently with probability ``rate``.

    Args:
        key: a PRNG key in training mode; ``None`` for evaluation.
        x: the activations.
        rate: drop probability in [0, 1); a scalar or anything broadcastable to ``x``.
        mode: ``"inverted"`` (default) scales kept units by ``1 / (1 - rate)`` while training and
            is the identity at evaluation; ``"classic"`` (Srivastava et al. 2014) keeps units
            unscaled while training and multiplies by the keep probability ``1 - rate`` at
            evaluation. Both give the same expected activation.

    Returns:
        An array shaped like ``x``.

    >>> import jax, jax.numpy as jnp
    >>> y = dropout(jax.random.key(0), jnp.ones(4), 0.5)
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> dropout(None, jnp.ones(2), 0.5).tolist()
    [1.0, 1.0]
    """
    check_rate(rate)
    _check_mode(mode)
    rate = jnp.asarray(rate, dtype=x.dtype)
    if key is None:
        return x * (1.0 - rate) if mode == "classic" else x
    keep = jax.random.uniform(key, x.shape, dtype=x.dtype) >= rate
    scale = _keep_scale(rate, x.dtype) if mode == "inverted" else jnp.ones((), x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros((), x.dtype))


def dropconnect(key: Array | None, w: Array, rate, *, mode: str = "inverted") -> Array:
    """Drops individual weights (DropConnect, Wan et al. 2013) with probability ``rate``.

    The mask is drawn once per call, so a layer applied to a mini-batch shares one weight mask
    across the batch: the usual implementation, and the one that keeps the matmul a matmul.

    Args:
        key: a PRNG key in training mode; ``None`` for evaluation.
        w: a weight matrix (or any weight array).
        rate: drop probability in [0, 1).
        mode: ``"inverted"`` or ``"classic"``, as for :func:`dropout`.

    Returns:
        The masked weights, shaped like ``w``.
    """
    return dropout(key, w, rate, mode=mode)


def spatial_dropout(key: Array | None, x: Array, rate, *, mode: str = "inverted") -> Array:
    """Drops whole channels of NHWC feature maps (Tompson et al. 2015).

    Neighbouring pixels of a conv map are strongly correlated, so dropping single pixels
    barely regularizes; dropping a channel for one example removes the feature entirely.

    Args:
        key: a PRNG key in training mode; ``None`` for evaluation.
        x: feature maps of shape ``(batch, height, width, channels)`` or ``(height, width, channels)``.
        rate: drop probability of a channel, in [0, 1).
        mode: ``"inverted"`` or ``"classic"``, as for :func:`dropout`.

    Returns:
        An array shaped like ``x``.
    """
    check_rate(rate)
    _check_mode(mode)
    if x.ndim < 3:
        raise InputError(f"x: expected feature maps of rank >= 3 (..., H, W, C), got shape {x.shape}")
    rate = jnp.asarray(rate, dtype=x.dtype)
    if key is None:
        return x * (1.0 - rate) if mode == "classic" else x
    mask_shape = x.shape[:-3] + (1, 1, x.shape[-1])
    keep = jax.random.uniform(key, mask_shape, dtype=x.dtype) >= rate
    scale = _keep_scale(rate, x.dtype) if mode == "inverted" else jnp.ones((), x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros((), x.dtype))
