"""Every stochastic regularizer and augmentation through the same checks (optax's shared-test pattern, chex's
with-and-without-jit and no-retrace checks): jit == eager bitwise, vmap over keys == a Python
loop over keys bitwise, determinism given a key, different keys differ, rate 0 == evaluation,
and a jitted function traced once for many rate values.

The primitives act on arrays shaped like the tiny models' layers (conftest.py), so eager calls
reuse each other's compiled ops: compiles dominate the run time on a small CPU.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

# XLA's default LLVM level (3) triples compile time, which dominates these tiny programs on a
# small CPU; level 2 gives bitwise the same results here (the jit == eager checks compare
# against ops compiled at the default level).
FAST_COMPILE = {"xla_backend_optimization_level": 2}


class Regularizer:
    """One entry of the table: eager, jitted and key-vmapped forms of ``f(key, rate)``."""

    exact = True

    def eager(self, key, rate: float):
        raise NotImplementedError

    def jit(self, key, rate):
        raise NotImplementedError

    def vmap_keys(self, keys, rate):
        raise NotImplementedError

    def traces(self) -> int:
        raise NotImplementedError


class Primitive(Regularizer):
    def __init__(self, fn, x, exact: bool = True):
        self.fn, self.x, self.count = fn, x, 0
        # Image maths (interpolation weights, blur kernels, means) is fused by XLA under jit and
        # rounds up to 1 float32 ulp otherwise: augmentations agree to 1e-6, not bitwise.
        self.exact = exact

        def counted(key, rate):
            self.count += 1  # runs only while tracing
            return fn(key, self.x, rate)

        self._jit = jax.jit(counted, compiler_options=FAST_COMPILE)
        self._vmap = jax.jit(jax.vmap(lambda key, rate: fn(key, self.x, rate), in_axes=(0, None)),
                             compiler_options=FAST_COMPILE)

    def eager(self, key, rate):
        return self.fn(key, self.x, rate)

    def jit(self, key, rate):
        return self._jit(key, rate)

    def vmap_keys(self, keys, rate):
        return self._vmap(keys, rate)

    def traces(self):
        return self.count


class ModelApply(Regularizer):
    """``apply`` training with one kind of rate (``dropout`` or ``dropconnect``) set for every layer."""

    def __init__(self, tiny, kind):
        self.tiny, self.kind = tiny, kind

    def _rates(self, rate):
        net = self.tiny.net
        # NumPy vectors: no compile to build them, and the same float32 signature every call.
        drop = np.full(net.num_dropout, rate if self.kind == "dropout" else 0.0, np.float32)
        connect = np.full(net.num_dropconnect, rate if self.kind == "dropconnect" else 0.0, np.float32)
        return drop, connect

    def eager(self, key, rate):
        # A key means training mode (the regularizers' convention); None means evaluation.
        return self.tiny.net.apply(self.tiny.params, {}, self.tiny.x, key=key, train=key is not None,
                                   **{self.kind: rate})[0]

    def jit(self, key, rate):
        return self.tiny.train(self.tiny.params, self.tiny.x, key, *self._rates(rate))

    def vmap_keys(self, keys, rate):
        return self.tiny.train_keys(self.tiny.params, self.tiny.x, keys, *self._rates(rate))

    def traces(self):
        return self.tiny.traces[0]


def augmentation(name: str):
    """``f(key, images, strength)``: one augmentation at ``strength``; no key is evaluation (as is)."""
    from types import SimpleNamespace

    from jaxreg.augment import augment

    def f(key, images, strength):
        if key is None:
            return images
        return augment(key, images, SimpleNamespace(**{name: strength}), enabled=(name,))

    return f


def images_like_digits(channels: int = 1):
    return jnp.asarray(np.random.default_rng(4).uniform(0.0, 1.0, (8, 8, 8, channels)), jnp.float32)


def maps_like_the_cnns_pooled_output():
    return jnp.asarray(np.random.default_rng(3).uniform(0.5, 2.0, (8, 2, 2, 2)), jnp.float32)


# name -> Regularizer, given the session's tiny models
TABLE = {
    "dropout_inverted": lambda mlp, cnn: Primitive(jaxreg.dropout, mlp.x),
    "dropout_classic": lambda mlp, cnn: Primitive(functools.partial(jaxreg.dropout, mode="classic"), mlp.x),
    "dropconnect": lambda mlp, cnn: Primitive(jaxreg.dropconnect, mlp.params["dense_0"]["w"]),
    "spatial_dropout": lambda mlp, cnn: Primitive(jaxreg.spatial_dropout, maps_like_the_cnns_pooled_output()),
    "mlp_apply_dropout": lambda mlp, cnn: ModelApply(mlp, "dropout"),
    "mlp_apply_dropconnect": lambda mlp, cnn: ModelApply(mlp, "dropconnect"),
    "cnn_apply_dropout": lambda mlp, cnn: ModelApply(cnn, "dropout"),
    **{f"augment_{name}": (lambda mlp, cnn, name=name: Primitive(
        augmentation(name), images_like_digits(3 if name == "saturation" else 1), exact=False))
       for name in ("flip", "shift", "rotate", "zoom", "shear", "blur", "brightness", "contrast", "saturation",
                    "noise")},
}
RATE = jnp.float32(0.4)  # compiled calls all take a float32 scalar: one signature, one trace
_built: dict[str, Regularizer] = {}


@pytest.fixture(params=list(TABLE))
def regularizer(request, tiny_mlp, tiny_cnn) -> Regularizer:
    if request.param not in _built:
        _built[request.param] = TABLE[request.param](tiny_mlp, tiny_cnn)
    return _built[request.param]


def assert_same(regularizer, actual, expected):
    if regularizer.exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_jit_equals_eager_bitwise(regularizer):
    key = jax.random.key(1)
    assert_same(regularizer, regularizer.jit(key, RATE), regularizer.eager(key, 0.4))


def test_vmap_over_keys_equals_a_loop_over_keys_bitwise(regularizer):
    keys = jax.random.split(jax.random.key(2), 4)
    looped = np.stack([regularizer.jit(key, RATE) for key in keys])
    assert_same(regularizer, regularizer.vmap_keys(keys, RATE), looped)


def test_same_key_same_result(regularizer):
    key = jax.random.fold_in(jax.random.key(3), 7)
    first = np.asarray(regularizer.jit(key, RATE))
    np.testing.assert_array_equal(regularizer.jit(jax.random.fold_in(jax.random.key(3), 7), RATE), first)
    np.testing.assert_array_equal(regularizer.eager(key, 0.4), regularizer.eager(key, 0.4))


def test_different_keys_differ(regularizer):
    outputs = [np.asarray(regularizer.jit(key, RATE)) for key in jax.random.split(jax.random.key(4), 3)]
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(outputs[i], outputs[j]), (i, j)


def test_rate_zero_with_a_key_equals_evaluation(regularizer):
    evaluation = np.asarray(regularizer.eager(None, 0.0))
    np.testing.assert_allclose(regularizer.jit(jax.random.key(5), jnp.float32(0.0)), evaluation,
                               rtol=1e-6, atol=1e-6)


def test_new_rate_values_do_not_retrace(regularizer):
    key = jax.random.key(6)
    outputs = [np.asarray(regularizer.jit(key, jnp.float32(0.1)))]  # traces, unless done before
    traced = regularizer.traces()
    assert traced >= 1
    outputs += [np.asarray(regularizer.jit(key, jnp.float32(rate))) for rate in (0.5, 0.9)]
    outputs.append(np.asarray(regularizer.jit(jax.random.key(7), jnp.float32(0.3))))
    assert regularizer.traces() == traced, "a new rate value or key retraced the function"
    assert not np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[1], outputs[2])
