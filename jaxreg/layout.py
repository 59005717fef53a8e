"""How the training loop carries params: the ONE place that decides their layout.

Every piece of the step (gradients, the optax chain, masks, the divergence guard, the best
params) works on whatever pytree :func:`layout` packs, so changing the layout here changes
it everywhere. ``"flat"`` (the default) concatenates every leaf into one vector: the update,
the masks, the finiteness check and the best-params copy are then one kernel each instead
of one per layer, which is what a step of a small network costs on a CPU. ``"tree"`` keeps
the params as the model's pytree (no slicing or concatenation in the step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jax.flatten_util import ravel_pytree

from jaxreg.errors import check_choice

LAYOUTS = ("flat", "tree")


class Layout(NamedTuple):
    """``pack(params) -> carried`` and its inverse ``unpack(carried) -> params``."""

    pack: Callable[[Any], Any]
    unpack: Callable[[Any], Any]


def layout(name: str, params_like) -> Layout:
    """The :class:`Layout` called ``name`` for params shaped like ``params_like``."""
    check_choice("layout", name, LAYOUTS)
    if name == "tree":
        return Layout(lambda params: params, lambda carried: carried)
    _, unravel = ravel_pytree(params_like)
    return Layout(lambda params: ravel_pytree(params)[0], unravel)


def tree_where(condition, on_true, on_false):
    """``jnp.where`` leaf by leaf: picks a whole carried pytree by a scalar condition."""
    return jax.tree_util.tree_map(lambda a, b: jax.numpy.where(condition, a, b), on_true, on_false)


def all_finite(tree) -> jax.Array:
    """Whether every element of every leaf is finite."""
    leaves = [jax.numpy.all(jax.numpy.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]
    result = leaves[0]
    for leaf in leaves[1:]:
        result = result & leaf
    return result
