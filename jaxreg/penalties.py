"""Weight penalties: L2 / L1 / elastic-net terms for the loss, and the same as optax transforms.

Conventions, so numbers translate between tools:

* ``penalty(params, l2=lam)`` is ``0.5 * lam * sum(w ** 2)``, whose gradient is ``lam * w``
  (the notebook's ``0.5 * lambda * sum(w^2)``). Keras' ``regularizers.L2(l)`` adds
  ``l * sum(w ** 2)``: ``L2(l)`` equals ``l2 = 2 * l`` here. PyTorch's
  ``SGD(weight_decay=wd)`` adds ``wd * w`` to the gradient: ``l2 = wd`` here, for plain SGD.
* ``l1`` adds ``l1 * sum(|w|)`` (Keras ``L1(l)`` is ``l1 = l``).
* Decoupled weight decay (:func:`decoupled_weight_decay`, Loshchilov and Hutter 2019) is not a
  loss term: it shrinks weights by ``learning_rate * weight_decay * w`` every step, outside
  the adaptive scaling; for plain SGD it equals ``l2 = weight_decay``.

Only weights are penalized by default: leaves named ``w``. Biases (``b``) and any norm
scales are left alone unless a ``mask`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
Params = Any
Mask = Any  # a bool pytree shaped like params, or a callable params -> such a pytree


def _leaf_name(path) -> str | None:
    last = path[-1] if path else None
    return getattr(last, "key", getattr(last, "name", None))


def weights_mask(params: Params) -> Params:
    """A bool pytree: True for the leaves named ``w`` (weights and kernels), False elsewhere."""
    return jax.tree_util.tree_map_with_path(lambda path, _: _leaf_name(path) == "w", params)


def all_params_mask(params: Params) -> Params:
    """A bool pytree that selects every leaf: penalize biases too."""
    return jax.tree_util.tree_map(lambda _: True, params)


def _resolve_mask(params: Params, mask: Mask | None) -> Params:
    if mask is None:
        return weights_mask(params)
    return mask(params) if callable(mask) else mask


def _masked_sum(fn: Callable[[Array], Array], params: Params, mask: Params) -> Array:
    terms = jax.tree_util.tree_map(lambda p, m: jnp.sum(fn(p)) if m else jnp.zeros((), p.dtype),
                                   params, mask)
    return sum(jax.tree_util.tree_leaves(terms), jnp.zeros(()))


def penalty(params: Params, l2=0.0, l1=0.0, mask: Mask | None = None) -> Array:
    """The weight-decay term ``0.5 * l2 * sum(w ** 2) + l1 * sum(|w|)`` over masked leaves.

    Args:
        params: a params pytree.
        l2: L2 strength (may be a traced array).
        l1: L1 strength (may be a traced array); ``l2`` and ``l1`` together are elastic net.
        mask: which leaves to penalize: a bool pytree or a callable on params. Default:
            :func:`weights_mask` (weights only, never biases).

    Returns:
        A scalar.

    >>> import jax.numpy as jnp
    >>> float(penalty([{"w": jnp.array([3.0, -4.0]), "b": jnp.array([10.0])}], l2=1.0, l1=0.5))
    16.0
    """
    mask = _resolve_mask(params, mask)
    return (0.5 * l2 * _masked_sum(jnp.square, params, mask)
            + l1 * _masked_sum(jnp.abs, params, mask))


def weight_norm(params: Params, mask: Mask | None = None) -> Array:
    """The L2 norm ``sqrt(sum(w ** 2))`` over masked leaves (weights only by default)."""
    return jnp.sqrt(_masked_sum(jnp.square, params, _resolve_mask(params, mask)))


def decoupled_weight_decay(weight_decay, mask: Mask | None = None) -> optax.GradientTransformation:
    """Adds ``weight_decay * w`` to the updates of masked leaves (weights only by default).

    Place it before the learning-rate scaling, as ``optax.adamw`` does:
    ``optax.chain(optax.scale_by_adam(), decoupled_weight_decay(wd), optax.scale(-lr))``.
    """
    return optax.add_decayed_weights(weight_decay, mask=weights_mask if mask is None else mask)


def l1_decay(strength, mask: Mask | None = None) -> optax.GradientTransformation:
    """Adds the L1 subgradient ``strength * sign(w)`` to the updates of masked leaves.

    A subgradient step oscillates around zero and rarely lands on it; for exact zeros use
    :func:`proximal_l1`.
    """
    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("l1_decay: params are required by update(updates, state, params)")
        selected = _resolve_mask(params, mask)
        updates = jax.tree_util.tree_map(
            lambda u, p, m: u + strength * jnp.sign(p) if m else u, updates, params, selected)
        return updates, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def soft_threshold(x: Array, threshold) -> Array:
    """The proximal operator of ``threshold * |x|``: ``sign(x) * max(|x| - threshold, 0)``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


class ProximalL1State(NamedTuple):
    """No state: the threshold is passed in (it may be a traced sweep hyperparameter)."""


def proximal_l1(threshold, mask: Mask | None = None) -> optax.GradientTransformation:
    """Proximal L1 step: after the update, soft-threshold masked params, producing exact zeros.

    Put it LAST in the chain, after the learning-rate scaling, with
    ``threshold = learning_rate * l1`` (ISTA): ``w <- soft_threshold(w + update, lr * l1)``.
    The returned update is ``soft_threshold(w + update, t) - w``, so ``w + update`` is exactly
    zero wherever the soft threshold is.
    """
    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("proximal_l1: params are required by update(updates, state, params)")
        selected = _resolve_mask(params, mask)
        updates = jax.tree_util.tree_map(
            lambda u, p, m: soft_threshold(p + u, threshold) - p if m else u,
            updates, params, selected)
        return updates, state

    return optax.GradientTransformation(lambda params: ProximalL1State(), update_fn)
