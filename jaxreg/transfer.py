"""Transfer learning: start from pretrained layers, train only the last ``k``, decay lr by depth.

Both knobs are traced hyperparameters (:class:`jaxreg.HParams`), so members of one compiled
batch may freeze different depths: ``trainable_layers = k`` trains the last ``k`` layers of
``model.layers`` (the head is one) and ``layer_lr_decay = g`` scales the layer ``d`` layers below
the head by ``g ** d``. The engine multiplies the FINAL update by that per-layer scale, after
the whole optax chain: a mask inside the chain would leave weight decay moving frozen weights
(the chain-order trap of optax#296). A frozen layer's batch norm uses its running statistics.

``merge_params(fresh, pretrained)`` is how a pretrained model meets a new head: the layers
that :func:`pretrained_layers` keeps come from ``pretrained`` (those whose names and shapes
match, the head left out unless asked for), the rest keep their fresh, per-seed init.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.errors import InputError

Array = jax.Array
Params = Any

__all__ = ["Pretrained", "layer_scale", "merge_params", "pretrained_layers", "split_init", "update_scale"]


class Pretrained(NamedTuple):
    """Pretrained layers with the model state that goes with them (batch norm's running
    statistics), given as ``init_params``: both replace their fresh counterparts layer by layer."""

    params: Params
    state: Params


def split_init(init_params) -> tuple[Params | None, Params | None]:
    """``(params, state)`` of an ``init_params`` argument: plain params, or :class:`Pretrained`."""
    if isinstance(init_params, Pretrained):
        return init_params.params, init_params.state
    return init_params, None


def layer_scale(n_layers: int, trainable_layers, layer_lr_decay) -> Array:
    """The update scale of each of ``n_layers`` layers, input first: 0 for a frozen layer, else
    ``layer_lr_decay ** (layers below the head)``.

    >>> layer_scale(4, 2, 0.5).tolist()
    [0.0, 0.0, 0.5, 1.0]
    """
    depth = jnp.arange(n_layers - 1, -1, -1, dtype=jnp.result_type(layer_lr_decay, float))
    trains = depth < trainable_layers
    return jnp.where(trains, jnp.asarray(layer_lr_decay) ** depth, 0.0)


def update_scale(params: Params, names: Sequence[str], trainable_layers, layer_lr_decay) -> Params:
    """A pytree shaped like ``params`` (a dict keyed by layer name) of each leaf's update scale."""
    scales = layer_scale(len(names), trainable_layers, layer_lr_decay)
    by_name = dict(zip(names, scales))
    return {name: jax.tree_util.tree_map(lambda leaf, s=by_name[name]: jnp.broadcast_to(s, leaf.shape).astype(leaf.dtype),
                                         layer)
            for name, layer in params.items()}


def check_layers(params: Params, names: Sequence[str]) -> None:
    """Raises :class:`InputError` unless ``names`` are exactly the top-level keys of ``params``."""
    if not isinstance(params, dict) or set(params) != set(names):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise InputError(f"model.layers: expected the top-level keys of the params ({got}), got {list(names)}")


def check_trainable_layers(values, n_layers: int, where: str = "hparams.trainable_layers") -> None:
    """Raises :class:`InputError` when a finite ``trainable_layers`` value exceeds the model's
    ``n_layers`` (its range, whole numbers >= 1 or inf, is :mod:`jaxreg.hparams`'s check)."""
    over = [value for value in np.ravel(np.asarray(values, dtype=object))
            if np.isfinite(float(value)) and float(value) > n_layers]
    if over:
        value = over[0].item() if isinstance(over[0], np.generic) else over[0]
        raise InputError(f"{where}: expected a whole number in [1, {n_layers}] (the model's layers) or inf, "
                         f"got {value!r}")


def merge_params(fresh: Params, pretrained: Params | None) -> Params:
    """``fresh`` with every layer that ``pretrained`` holds replaced by the pretrained one.

    ``pretrained`` may hold every layer (replaying a given init) or a subset (transfer: the
    head left out keeps its fresh init). Shapes are checked by :func:`pretrained_layers`.
    """
    if pretrained is None:
        return fresh
    if isinstance(fresh, dict) and isinstance(pretrained, dict) and set(pretrained) < set(fresh):
        return {name: pretrained.get(name, layer) for name, layer in fresh.items()}
    return pretrained


def pretrained_layers(pretrained: Params, fresh_like: Params, *, head: str | None = None,
                      keep_head: bool = False, where: str = "pretrained") -> Params:
    """The layers of ``pretrained`` that fit a model whose params look like ``fresh_like``.

    A layer whose name and leaf shapes match is kept (cast to the model's dtype); a layer of
    another shape is left out, to be initialized afresh; so is the ``head`` (default: the last
    key of ``fresh_like``), a new task's head, unless ``keep_head``. A layer the model does not
    have is an error, as is a pretrained model that fits no layer at all.
    """
    if not isinstance(pretrained, dict) or not isinstance(fresh_like, dict):
        raise InputError(f"{where}: expected params as dicts keyed by layer name, got "
                         f"{type(pretrained).__name__}")
    extra = sorted(set(pretrained) - set(fresh_like))
    if extra:
        raise InputError(f"{where}: expected layers among {', '.join(sorted(fresh_like))}, got {extra[0]!r}")
    head = list(fresh_like)[-1] if head is None else head
    kept = {}
    for name, layer in pretrained.items():
        if name == head and not keep_head:
            continue
        target = fresh_like[name]
        same = (jax.tree_util.tree_structure(layer) == jax.tree_util.tree_structure(target)
                and all(np.shape(a) == np.shape(b) for a, b in zip(jax.tree_util.tree_leaves(layer),
                                                                   jax.tree_util.tree_leaves(target))))
        if same:
            kept[name] = jax.tree_util.tree_map(lambda a, b: np.asarray(a, dtype=b.dtype), layer, target)
    if not kept:
        name = next((n for n in pretrained if n in fresh_like and (n != head or keep_head)), None)
        if name is None:
            why = "no layer but the head"
        else:
            def shapes(layer):
                return {jax.tree_util.keystr(p): tuple(np.shape(leaf))
                        for p, leaf in jax.tree_util.tree_leaves_with_path(layer)}
            there, here = shapes(pretrained[name]), shapes(fresh_like[name])
            why = (f"{name} has {sorted(there)} there, {sorted(here)} here (batch norm on one side only?)"
                   if there.keys() != here.keys() else
                   f"{name} is {', '.join(f'{k} {there[k]}' for k in sorted(there))} there, "
                   f"{', '.join(f'{k} {here[k]}' for k in sorted(here))} here")
        raise InputError(f"{where}: expected at least one layer of the shapes of the model's, got none that fits: "
                         f"{why}")
    return kept
