"""Every stochastic regularizer through the same checks (optax's shared-test pattern, chex's
with-and-without-jit and no-retrace checks): jit == eager bitwise, vmap over keys == a Python
loop over keys, determinism given a key, different keys differ, rate 0 == evaluation, and a
jitted function traced once for many rate values.

Inputs are shaped so that the primitives' entries and the models' layers share shapes, which
lets eager calls reuse each other's compiled ops (compiles dominate the run time on a small CPU).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

MLP = jaxreg.mlp((6, 8, 3), activation="tanh")
CNN = jaxreg.cnn((5, 5, 1), 3, channels=(3,), hidden=())


def numpy_params(net, seed):
    rng = np.random.default_rng(seed)
    template = jax.eval_shape(net.init, jax.random.key(0))
    return jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(0.0, 0.5, p.shape), jnp.float32), template)


@functools.cache
def inputs():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0.5, 2.0, (8, 6)), jnp.float32)  # also the MLP's input batch
    images = jnp.asarray(rng.normal(size=(4, 5, 5, 1)), jnp.float32)
    maps = jnp.asarray(rng.uniform(0.5, 2.0, (4, 3, 3, 3)), jnp.float32)  # the CNN's pooled maps
    mlp_params, cnn_params = numpy_params(MLP, 1), numpy_params(CNN, 2)
    return x, images, maps, mlp_params, cnn_params


# name -> f(key, rate) -> array; key None evaluates.
REGULARIZERS = {
    "dropout_inverted": lambda key, rate: jaxreg.dropout(key, inputs()[0], rate),
    "dropout_classic": lambda key, rate: jaxreg.dropout(key, inputs()[0], rate, mode="classic"),
    "dropconnect": lambda key, rate: jaxreg.dropconnect(key, inputs()[3][0]["w"], rate),
    "spatial_dropout": lambda key, rate: jaxreg.spatial_dropout(key, inputs()[2], rate),
    "mlp_apply_dropout": lambda key, rate: MLP.apply(inputs()[3], inputs()[0], key=key, dropout=rate),
    "mlp_apply_dropconnect": lambda key, rate: MLP.apply(inputs()[3], inputs()[0], key=key, dropconnect=rate),
    "cnn_apply_dropout": lambda key, rate: CNN.apply(inputs()[4], inputs()[1], key=key, dropout=rate),
}
NAMES = tuple(REGULARIZERS)
RATE = jnp.float32(0.4)  # every compiled call takes a float32 scalar: one signature, one trace


class Compiled:
    """The jitted and jitted-vmapped forms of one regularizer, shared by the checks below."""

    def __init__(self, name):
        fn = REGULARIZERS[name]
        self.traces = 0

        def counted(key, rate):
            self.traces += 1  # runs only while tracing
            return fn(key, rate)

        self.jit = jax.jit(counted)
        self.vmap_keys = jax.jit(jax.vmap(fn, in_axes=(0, None)))


compiled = functools.cache(Compiled)


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager_bitwise(name):
    key = jax.random.key(1)
    eager = np.asarray(REGULARIZERS[name](key, 0.4))
    np.testing.assert_array_equal(compiled(name).jit(key, RATE), eager)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_keys_equals_a_loop_over_keys(name):
    keys = jax.random.split(jax.random.key(2), 4)
    looped = np.stack([compiled(name).jit(key, RATE) for key in keys])
    np.testing.assert_array_equal(compiled(name).vmap_keys(keys, RATE), looped)


@pytest.mark.parametrize("name", NAMES)
def test_same_key_same_result(name):
    first = np.asarray(compiled(name).jit(jax.random.key(3), RATE))
    np.testing.assert_array_equal(compiled(name).jit(jax.random.key(3), RATE), first)
    np.testing.assert_array_equal(compiled(name).jit(jax.random.fold_in(jax.random.key(3), 0), RATE),
                                  compiled(name).jit(jax.random.fold_in(jax.random.key(3), 0), RATE))


@pytest.mark.parametrize("name", NAMES)
def test_different_keys_differ(name):
    outputs = [np.asarray(compiled(name).jit(key, RATE)) for key in jax.random.split(jax.random.key(4), 3)]
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(outputs[i], outputs[j]), (i, j)


@pytest.mark.parametrize("name", NAMES)
def test_rate_zero_with_a_key_equals_evaluation(name):
    evaluation = np.asarray(REGULARIZERS[name](None, 0.0))
    np.testing.assert_allclose(compiled(name).jit(jax.random.key(5), jnp.float32(0.0)), evaluation,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_new_rate_values_do_not_retrace(name):
    c = compiled(name)
    key = jax.random.key(6)
    outputs = [np.asarray(c.jit(key, jnp.float32(rate))) for rate in (0.1, 0.5, 0.9)]
    outputs.append(np.asarray(c.jit(jax.random.key(7), jnp.float32(0.3))))
    assert c.traces == 1
    assert not np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[1], outputs[2])
