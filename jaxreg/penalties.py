"""Weight penalties: L2 / L1 / elastic-net terms, their masks, and the same as optax transforms.

Conventions, so numbers translate between tools:

* ``penalty(params, l2=lam)`` is ``0.5 * lam * sum(w ** 2)``, whose gradient is ``lam * w``
  (the notebook's ``0.5 * lambda * sum(w^2)``). Keras' ``regularizers.L2(l)`` adds
  ``l * sum(w ** 2)``: ``L2(l)`` equals ``l2 = 2 * l`` here. PyTorch's
  ``SGD(weight_decay=wd)`` adds ``wd * w`` to the gradient: ``l2 = wd`` here, for plain SGD.
* ``l1`` adds ``l1 * sum(|w|)`` (Keras ``L1(l)`` is ``l1 = l``).
* Decoupled weight decay (:func:`decoupled_weight_decay`, Loshchilov and Hutter 2019) is not a
  loss term: it shrinks weights by ``learning_rate * weight_decay * w`` every step, outside
  the adaptive scaling; for plain SGD it equals ``l2 = weight_decay``.

Which params are penalized is decided by role, never by name: by default every leaf with two
or more dimensions (dense kernels, conv filters, whatever a framework calls them: ``w``,
``kernel``, ``weight``) is a weight; one-dimensional leaves (biases, norm scales) are not.
A ``mask`` overrides that: a pytree shaped like params whose leaves are bools or arrays of
0/1 (per element), or a callable ``params -> such a pytree``.

The training engine uses these same functions (:func:`add_penalty_gradient`,
:func:`decoupled_weight_decay`, :func:`prox_l1`, :func:`penalty`), so a test of one is a
test of both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg.errors import InputError

Array = jax.Array
Params = Any
Mask = Any  # a pytree of bools / 0-1 arrays shaped like params, or a callable params -> such a pytree


def weights_mask(params: Params) -> Params:
    """A bool pytree: True for every leaf with two or more dimensions (the weights).

    Selects by role, not by name, so it finds a Flax ``kernel``, a PyTorch-style ``weight``
    and jaxreg's ``w`` alike, and leaves biases and norm scales (one dimension) out.
    """
    return jax.tree_util.tree_map(lambda p: len(jnp.shape(p)) >= 2, params)


def all_params_mask(params: Params) -> Params:
    """A bool pytree that selects every leaf: penalize biases too."""
    return jax.tree_util.tree_map(lambda _: True, params)


def resolve_mask(params: Params, mask: Mask | None) -> Params:
    """The mask pytree for ``params``: ``mask`` itself, ``mask(params)``, or :func:`weights_mask`."""
    if mask is None:
        return weights_mask(params)
    leaves = jax.tree_util.tree_leaves(mask)
    if callable(mask) and (len(leaves) == 1 and leaves[0] is mask):  # a function, not a pytree
        return mask(params)
    return mask  # a pytree, even a callable one (an Equinox module of bools is both)


def selects_anything(mask_tree: Params) -> bool:
    """Whether a concrete mask pytree selects at least one element (checked on the host)."""
    return any(bool(np.any(np.asarray(m))) for m in jax.tree_util.tree_leaves(mask_tree))


def _masked(mask_tree: Params, params: Params) -> Params:
    """The mask as a pytree of params-dtype arrays (a bool leaf stays a Python bool)."""
    return jax.tree_util.tree_map(
        lambda m, p: m if isinstance(m, bool) else jnp.asarray(m).astype(p.dtype), mask_tree, params)


def _add_masked(update: Array, m, term: Array) -> Array:
    """``update + m * term``; a Python-bool ``m`` (a whole leaf in or out) costs no multiply,
    and a leaf out of the mask costs nothing at all (``term`` is then never computed)."""
    if m is False:
        return update
    return update + (term if m is True else m * term)


def _penalty_grad(p: Array, l2, l1) -> Array:
    """``l2 * p + l1 * sign(p)``, leaving out a term whose strength is the Python number 0
    (the engine passes 0 for a penalty no member of a sweep uses: see ``TrainConfig.penalties``)."""
    if _is_zero(l1):
        return l2 * p
    if _is_zero(l2):
        return l1 * jnp.sign(p)
    return l2 * p + l1 * jnp.sign(p)


def _is_zero(value) -> bool:
    return isinstance(value, (int, float)) and value == 0


def _masked_sum(fn: Callable[[Array], Array], params: Params, mask: Params) -> Array:
    terms = [jnp.sum(m * fn(p)) for p, m in zip(jax.tree_util.tree_leaves(params),
                                                   jax.tree_util.tree_leaves(_masked(mask, params)))]
    if not terms:
        return jnp.zeros(())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def penalty(params: Params, l2=0.0, l1=0.0, mask: Mask | None = None) -> Array:
    """The weight-decay term ``0.5 * l2 * sum(w ** 2) + l1 * sum(|w|)`` over masked params.

    Args:
        params: a params pytree.
        l2: L2 strength (may be a traced array).
        l1: L1 strength (may be a traced array); ``l2`` and ``l1`` together are elastic net.
        mask: which params to penalize: a pytree of bools or 0/1 arrays, or a callable on
            params. Default: :func:`weights_mask` (leaves with two or more dimensions).

    Returns:
        A scalar.

    >>> import jax.numpy as jnp
    >>> float(penalty({"w": jnp.array([[3.0, -4.0]]), "b": jnp.array([10.0])}, l2=1.0, l1=0.5))
    16.0
    """
    mask = resolve_mask(params, mask)
    return 0.5 * l2 * _masked_sum(jnp.square, params, mask) + l1 * _masked_sum(jnp.abs, params, mask)


def weight_norm(params: Params, mask: Mask | None = None) -> Array:
    """The L2 norm ``sqrt(sum(w ** 2))`` over masked params (weights only by default)."""
    return jnp.sqrt(_masked_sum(jnp.square, params, resolve_mask(params, mask)))


def zero_fraction(params: Params, mask: Mask | None = None) -> Array:
    """The fraction of masked params that are exactly zero (what proximal L1 produces)."""
    mask = resolve_mask(params, mask)
    count = _masked_sum(lambda p: jnp.ones_like(p), params, mask)
    return _masked_sum(lambda p: (p == 0).astype(p.dtype), params, mask) / jnp.maximum(count, 1)


def _needs_params(name: str, params) -> None:
    if params is None:
        raise InputError(f"{name}: params are required by update(updates, state, params)")


def add_penalty_gradient(l2, l1=0.0, mask: Mask | None = None, *,
                         name: str = "add_penalty_gradient") -> optax.GradientTransformation:
    """Adds the gradient of :func:`penalty`, ``mask * (l2 * w + l1 * sign(w))``, to the updates.

    Put it first in a chain, on the raw gradients, so the penalty goes through the optimizer
    like the data loss does (L2 regularization, as opposed to decoupled weight decay).
    """
    def update_fn(updates, state, params=None):
        _needs_params(name, params)
        masks = _masked(resolve_mask(params, mask), params)
        updates = jax.tree_util.tree_map(lambda u, p, m: _add_masked(u, m, _penalty_grad(p, l2, l1)),
                                         updates, params, masks)
        return updates, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def l1_decay(strength, mask: Mask | None = None) -> optax.GradientTransformation:
    """Adds the L1 subgradient ``strength * sign(w)`` to the updates of masked params.

    A subgradient step oscillates around zero and rarely lands on it; for exact zeros use
    :func:`proximal_l1`.
    """
    return add_penalty_gradient(0.0, strength, mask, name="l1_decay")


def decoupled_weight_decay(weight_decay, mask: Mask | None = None) -> optax.GradientTransformation:
    """Adds ``weight_decay * w`` to the updates of masked params (weights only by default).

    Place it after the optimizer's scaling and before the learning rate, as ``optax.adamw``
    does: ``optax.chain(optax.scale_by_adam(), decoupled_weight_decay(wd), optax.scale(-lr))``.
    Unlike ``optax.add_decayed_weights`` the mask may select single elements (0/1 arrays).
    """
    def update_fn(updates, state, params=None):
        _needs_params("decoupled_weight_decay", params)
        masks = _masked(resolve_mask(params, mask), params)
        # (weight_decay * m) is exact: the sum rounds once (one FMA) with either kind of mask
        updates = jax.tree_util.tree_map(
            lambda u, p, m: u if m is False else u + (weight_decay * p if m is True else weight_decay * m * p),
            updates, params, masks)
        return updates, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def soft_threshold(x: Array, threshold) -> Array:
    """The proximal operator of ``threshold * |x|``: ``sign(x) * max(|x| - threshold, 0)``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def prox_l1(params: Params, threshold, mask: Mask | None = None) -> Params:
    """Soft-thresholds the masked params (the proximal step of L1); the others pass through.

    Applied to the params after an update with ``threshold = learning_rate * l1``, this is
    ISTA: masked params that the update brought within ``threshold`` of zero become exactly 0.
    """
    masks = resolve_mask(params, mask)
    return jax.tree_util.tree_map(
        lambda p, m: jnp.where(jnp.asarray(m) > 0, soft_threshold(p, threshold), p), params, masks)


class ProximalL1State(NamedTuple):
    """No state: the threshold is passed in (it may be a traced sweep hyperparameter)."""


def proximal_l1(threshold, mask: Mask | None = None) -> optax.GradientTransformation:
    """:func:`prox_l1` as the LAST transform of an optax chain.

    Put it after the learning-rate scaling, with ``threshold = learning_rate * l1``. The
    returned update is ``prox_l1(w + update, threshold) - w``, so ``w + update`` is zero
    wherever the soft threshold is. (The training engine applies :func:`prox_l1` to the
    updated params directly, which avoids the extra rounding of ``w + (new - w)``.)
    """
    def update_fn(updates, state, params=None):
        _needs_params("proximal_l1", params)
        masks = resolve_mask(params, mask)
        # Unmasked leaves keep their update as it is: (p + u) - p would round it.
        return jax.tree_util.tree_map(
            lambda u, p, m: jnp.where(jnp.asarray(m) > 0, soft_threshold(p + u, threshold) - p, u),
            updates, params, masks), state

    return optax.GradientTransformation(lambda params: ProximalL1State(), update_fn)
