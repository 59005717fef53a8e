"""Tests for jaxreg.drop: dropout, DropConnect and spatial dropout (``rate`` = DROP probability).

Statistical checks draw 10^5 independent keep/drop decisions from a fixed key and allow
4 binomial sigmas, so they are deterministic and fail only if a probability is wrong.
Training-mode calls go through one cached jitted function per primitive (rate traced) to
keep compiles, the bulk of the run time on a small CPU, few.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

N_DECISIONS = 100_000
RATES = (0.1, 0.25, 0.5, 0.9)
MODES = ("inverted", "classic")

# name -> (function, input shape holding 10^5 independent keep/drop decisions)
PRIMITIVES = {
    "dropout": (jaxreg.dropout, (N_DECISIONS,)),
    "dropconnect": (jaxreg.dropconnect, (250, 400)),  # a weight matrix
    "spatial_dropout": (jaxreg.spatial_dropout, (100, 3, 4, 1000)),  # 100 examples * 1000 channels
}
NAMES = tuple(PRIMITIVES)


@functools.cache
def train_both_modes(name):
    """``(key, x, rate) -> {mode: output}``, jitted once per primitive with a traced rate."""
    fn = PRIMITIVES[name][0]
    return jax.jit(lambda key, x, rate: {mode: fn(key, x, rate, mode=mode) for mode in MODES})


def train(name, key, x, rate, mode="inverted"):
    return np.asarray(train_both_modes(name)(key, x, jnp.float32(rate))[mode])


def decisions(name: str, out) -> np.ndarray:
    """One value per independent keep/drop decision (a channel's first pixel for spatial)."""
    out = np.asarray(out)
    return out[..., 0, 0, :].ravel() if name == "spatial_dropout" else out.ravel()


def assert_within_sigmas(observed, expected, sigma, n_sigma=4.0):
    assert abs(observed - expected) <= n_sigma * sigma, (
        f"{observed} is {abs(observed - expected) / sigma:.1f} sigma from {expected}")


def random_input(shape, seed=0):
    """Strictly positive values, so a kept unit is never mistaken for a dropped one."""
    return jnp.asarray(np.random.default_rng(seed).uniform(0.5, 2.0, shape), jnp.float32)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("name", NAMES)
def test_kept_fraction_is_one_minus_rate(name, rate):
    shape = PRIMITIVES[name][1]
    for mode in MODES:
        out = decisions(name, train(name, jax.random.key(1), jnp.ones(shape), rate, mode))
        assert out.size == N_DECISIONS
        assert_within_sigmas((out != 0).mean(), 1.0 - rate, np.sqrt(rate * (1.0 - rate) / N_DECISIONS))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("name", NAMES)
def test_inverted_scales_kept_units_and_preserves_the_mean(name, rate):
    fn, shape = PRIMITIVES[name]
    out = train(name, jax.random.key(2), jnp.ones(shape), rate)
    np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - rate), rtol=1e-6)
    # E[train] == eval output: per decision 1/(1-p) with probability 1-p, else 0 (variance p/(1-p)).
    eval_out = np.asarray(fn(None, jnp.ones(shape), rate))
    np.testing.assert_array_equal(eval_out, 1.0)
    sigma = np.sqrt(rate / (1.0 - rate) / N_DECISIONS)
    assert_within_sigmas(decisions(name, out).mean(), eval_out.mean(), sigma)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("name", NAMES)
def test_classic_trains_with_a_bare_mask_and_evaluates_at_keep_probability(name, rate):
    fn, shape = PRIMITIVES[name]
    x = random_input(shape)
    out = train(name, jax.random.key(3), x, rate, "classic")
    kept = out != 0
    np.testing.assert_array_equal(out[kept], np.asarray(x)[kept])  # unscaled
    np.testing.assert_allclose(np.asarray(fn(None, x, rate, mode="classic")),
                               np.asarray(x) * (1.0 - rate), rtol=1e-6)
    # E[train] == eval output: a 0/1 mask on ones, whose mean is the keep probability.
    ones_out = decisions(name, train(name, jax.random.key(3), jnp.ones(shape), rate, "classic"))
    assert set(np.unique(ones_out).tolist()) == {0.0, 1.0}
    eval_ones = np.asarray(fn(None, jnp.ones(shape), rate, mode="classic"))
    np.testing.assert_allclose(eval_ones, 1.0 - rate, rtol=1e-6)
    assert_within_sigmas(ones_out.mean(), eval_ones.mean(), np.sqrt(rate * (1.0 - rate) / N_DECISIONS))


@pytest.mark.parametrize("name", NAMES)
def test_same_key_same_mask_other_key_other_mask(name):
    x = random_input(PRIMITIVES[name][1])
    first = train(name, jax.random.key(7), x, 0.5)
    np.testing.assert_array_equal(first, train(name, jax.random.key(7), x, 0.5))
    other = train(name, jax.random.key(8), x, 0.5)
    assert not np.array_equal(first != 0, other != 0)


@pytest.mark.parametrize("name", NAMES)
def test_jit_with_traced_rate_equals_eager_bitwise(name):
    fn, shape = PRIMITIVES[name]
    x = random_input(shape)
    for rate in (0.1, 0.9):
        for mode in MODES:
            eager = np.asarray(fn(jax.random.key(4), x, rate, mode=mode))
            np.testing.assert_array_equal(train(name, jax.random.key(4), x, rate, mode), eager)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_gives_each_member_its_own_traced_rate(name):
    fn, shape = PRIMITIVES[name]
    rates = jnp.array([0.1, 0.5, 0.9])
    keys = jax.random.split(jax.random.key(5), 3)
    out = jax.jit(jax.vmap(lambda key, rate: fn(key, jnp.ones(shape), rate)))(keys, rates)
    for member, rate in zip(out, rates.tolist()):
        member = decisions(name, member)
        assert_within_sigmas((member != 0).mean(), 1.0 - rate, np.sqrt(rate * (1.0 - rate) / N_DECISIONS))
        np.testing.assert_allclose(member[member != 0], 1.0 / (1.0 - rate), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_rate_zero_with_a_key_is_exactly_the_identity(name):
    x = random_input(PRIMITIVES[name][1])
    for mode in MODES:
        np.testing.assert_array_equal(train(name, jax.random.key(0), x, 0.0, mode), x)


@pytest.mark.parametrize("name", NAMES)
def test_no_key_is_the_identity_in_inverted_mode(name):
    fn, shape = PRIMITIVES[name]
    x = random_input(shape)
    for rate in (0.0, 0.5, 0.9):
        np.testing.assert_array_equal(np.asarray(fn(None, x, rate)), x)


@pytest.mark.parametrize("rate, given", [(-0.1, "-0.1"), (1.0, "1.0"), (1.5, "1.5"),
                                         (float("nan"), "nan"), (np.array([0.2, 1.5]), "[0.2, 1.5]")])
@pytest.mark.parametrize("name", NAMES)
def test_rate_outside_unit_interval_is_a_value_error(name, rate, given):
    fn = PRIMITIVES[name][0]
    message = f"rate: expected a drop probability in [0, 1), got {given}"
    for key in (jax.random.key(0), None):  # evaluation mode checks the rate too
        with pytest.raises(ValueError) as info:
            fn(key, jnp.ones((2, 3, 3, 2)), rate)
        assert str(info.value) == message


@pytest.mark.parametrize("name", NAMES)
def test_unknown_mode_is_a_value_error(name):
    fn = PRIMITIVES[name][0]
    for key in (jax.random.key(0), None):
        with pytest.raises(ValueError) as info:
            fn(key, jnp.ones((2, 3, 3, 2)), 0.5, mode="keep")
        assert str(info.value) == "mode: expected one of 'inverted', 'classic', got 'keep'"


def test_spatial_dropout_drops_whole_channels_per_example():
    rate = 0.4
    x = random_input(PRIMITIVES["spatial_dropout"][1])
    out = train("spatial_dropout", jax.random.key(9), x, rate)
    zero = (out == 0).all(axis=(1, 2))  # (example, channel)
    kept = np.isclose(out, np.asarray(x) / (1.0 - rate), rtol=1e-6, atol=0).all(axis=(1, 2))
    assert (zero ^ kept).all(), "a channel was partly dropped"
    assert_within_sigmas(kept.mean(), 1.0 - rate, np.sqrt(rate * (1 - rate) / kept.size))
    assert not (zero == zero[:1]).all(), "every example got the same channel mask"


def test_spatial_dropout_accepts_a_single_unbatched_map():
    x = random_input((6, 5, 64))
    out = np.asarray(jaxreg.spatial_dropout(jax.random.key(11), x, 0.5))
    assert out.shape == x.shape
    zero = (out == 0).all(axis=(0, 1))
    kept = np.isclose(out, 2.0 * np.asarray(x), rtol=1e-6, atol=0).all(axis=(0, 1))
    assert (zero ^ kept).all() and zero.any() and kept.any()


def test_spatial_dropout_rejects_inputs_below_rank_3():
    with pytest.raises(ValueError) as info:
        jaxreg.spatial_dropout(jax.random.key(0), jnp.ones((4, 5)), 0.5)
    assert str(info.value) == "x: expected feature maps of rank >= 3 (..., H, W, C), got shape (4, 5)"


def test_dropconnect_masks_individual_weights_not_rows_or_columns():
    out = train("dropconnect", jax.random.key(12), jnp.ones(PRIMITIVES["dropconnect"][1]), 0.5)
    dropped = out == 0
    # Independent weights: at this size no row or column is entirely kept or entirely dropped.
    for axis in (0, 1):
        assert not dropped.all(axis=axis).any() and not (~dropped).all(axis=axis).any()
