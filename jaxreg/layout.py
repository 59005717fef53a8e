"""How the training loop carries params: the ONE place that decides their layout.

Every piece of the step (gradients, the optax chain, masks, the divergence guard, the best
params) works on whatever pytree :func:`layout` packs, so changing the layout here changes
it everywhere. ``"tree"`` (the default) keeps the params as the model's pytree: the step
does no slicing or concatenation, and a penalty mask that takes or leaves whole leaves (the
default: weights in, biases out) stays a Python bool per leaf, so a leaf out of the mask
costs nothing and a leaf in it no multiply. ``"flat"`` concatenates every leaf into one
vector (one kernel for the update and the finiteness check, but every step slices the layers
out of it and concatenates the gradient back: 2-4x slower per step on a CPU, see
``benchmarks/README.md``). Both do the same arithmetic; XLA may fuse the elementwise update
differently around a concatenated vector and so round differently (with EMA momentum, a
float32 ulp now and then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
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


def loop_mask(seam: Layout, name: str, params, mask_tree, dtype):
    """The penalty mask in the loop's layout.

    Under ``"tree"`` a mask whose leaves are all bools stays so (no array, no multiply);
    otherwise each leaf is broadcast to its param's shape and packed like the params.
    """
    leaves = jax.tree_util.tree_leaves(mask_tree)
    if name == "tree" and all(isinstance(m, (bool, np.bool_)) for m in leaves):
        return jax.tree_util.tree_map(bool, mask_tree)
    return seam.pack(dense_mask(params, mask_tree, dtype))


def dense_mask(params, mask_tree, dtype):
    """The mask as arrays of ``dtype`` shaped like the params, leaf by leaf."""
    return jax.tree_util.tree_map(lambda p, m: jax.numpy.broadcast_to(jax.numpy.asarray(m, dtype), p.shape),
                                  params, mask_tree)


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
