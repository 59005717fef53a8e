"""Fixtures shared by the model, loss and regularizer tests.

Compiling dominates the run time on a small CPU, so the tiny training models used by
test_models.py and test_common.py are compiled once per session: rates are traced
per-layer vectors, so one trace serves every rate either file tries. Their layers are shaped
alike (batch 8, width 8: every dense mask is 8x8, the CNN flattens to 8 features) because
eager calls compile jax.random's sampler once per shape, at ~0.5 s a shape.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

# XLA's default LLVM level (3) triples compile time, which dominates these tiny programs on a
# small CPU; level 2 gives bitwise the same results here (the jit == eager checks compare
# against ops compiled at the default level).
FAST_COMPILE = {"xla_backend_optimization_level": 2}


@pytest.fixture
def x64():
    """Float64 for oracle tests; the config is restored when the test ends, even on failure."""
    with jax.enable_x64(True):
        yield


class Tiny(NamedTuple):
    net: jaxreg.Model
    params: Any  # float32, drawn in NumPy with nonzero biases: init is tested on its own
    x: jax.Array
    train: Any  # jitted (params, x, key, dropout[num_dropout], dropconnect[num_dropconnect])
    train_keys: Any  # the same, vmapped over a batch of keys
    traces: list  # traces[0] counts how often `train` was traced


def _tiny(net, x, seed) -> Tiny:
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(0.0, 0.5, p.shape), jnp.float32),
                                    jax.eval_shape(net.init, jax.random.key(0)))
    traces = [0]

    def train(params, x, key, dropout, dropconnect):
        traces[0] += 1  # runs only while tracing
        return net.apply(params, x, key=key, dropout=dropout, dropconnect=dropconnect)

    def plain(params, x, key, dropout, dropconnect):
        return net.apply(params, x, key=key, dropout=dropout, dropconnect=dropconnect)

    return Tiny(net, params, x, jax.jit(train, compiler_options=FAST_COMPILE),
                jax.jit(jax.vmap(plain, in_axes=(None, None, 0, None, None)), compiler_options=FAST_COMPILE),
                traces)


@pytest.fixture(scope="session")
def tiny_mlp() -> Tiny:
    x = np.random.default_rng(0).uniform(0.5, 2.0, (8, 8))
    return _tiny(jaxreg.mlp((8, 8, 8, 8), activation="tanh"), jnp.asarray(x, jnp.float32), seed=1)


@pytest.fixture(scope="session")
def tiny_cnn() -> Tiny:
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 1))
    return _tiny(jaxreg.cnn((4, 4, 1), 8, channels=(2,), hidden=(8,)), jnp.asarray(x, jnp.float32), seed=2)
