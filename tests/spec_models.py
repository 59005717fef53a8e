"""Model factories that test specs name as ``model.kind = "spec_models:NAME"``: a user's own models."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def flax_mlp(input_shape, num_outputs, width=32):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(num_outputs)(nn.relu(nn.Dense(width)(x)))

    return MLP()


def equinox_mlp(input_shape, num_outputs, width=32):
    import equinox as eqx

    return lambda key: eqx.nn.MLP(input_shape[0], num_outputs, width, 1, key=key)


def plain_mlp(input_shape, num_outputs, width=32):
    def init(key):
        k1, k2 = jax.random.split(key)
        return {"hidden": {"kernel": jax.random.normal(k1, (input_shape[0], width)) / jnp.sqrt(input_shape[0]),
                           "bias": jnp.zeros(width)},
                "out": {"kernel": jax.random.normal(k2, (width, num_outputs)) / jnp.sqrt(width),
                        "bias": jnp.zeros(num_outputs)}}

    def apply(params, x):
        h = jax.nn.relu(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])
        return h @ params["out"]["kernel"] + params["out"]["bias"]

    return init, apply


def nothing_selected(params):
    """A penalty mask that selects nothing."""
    return jax.tree_util.tree_map(lambda p: False, params)


def first_layer_only(params):
    """A penalty mask: the first layer's kernel alone."""
    return jax.tree_util.tree_map_with_path(
        lambda path, p: jax.tree_util.keystr(path) == "['hidden']['kernel']", params)
