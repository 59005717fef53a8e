"""Tests for jaxreg.drop: dropout, DropConnect and spatial dropout (``rate`` = DROP probability).

Statistical checks draw 10^5 independent keep/drop decisions from a fixed key and allow
4 binomial sigmas, so they are deterministic and fail only if a probability is wrong.
Training-mode calls go through ONE compiled program per primitive: vmapped over members that
each have their own key and traced rate, both modes at once (compiles dominate the run time
on a small CPU). Each member is compared bitwise with an eager call.
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

N_DECISIONS = 100_000
RATES = (0.1, 0.25, 0.5, 0.9)  # one per vmapped member
MODES = ("inverted", "classic")

# name -> (function, input shape holding 10^5 independent keep/drop decisions)
PRIMITIVES = {
    # Same shape for both: eager calls compile jax.random's sampler once per shape (~0.5 s).
    "dropout": (jaxreg.dropout, (250, 400)),  # a batch of activations
    "dropconnect": (jaxreg.dropconnect, (250, 400)),  # a weight matrix
    "spatial_dropout": (jaxreg.spatial_dropout, (250, 3, 2, 400)),  # 250 examples * 400 channels
}
NAMES = tuple(PRIMITIVES)


@functools.cache
def compiled(name):
    """``(keys[4], x, rates[4]) -> {mode: outputs[4, ...]}``: jit of vmap, traced rates."""
    fn = PRIMITIVES[name][0]
    members = jax.vmap(lambda key, x, rate: {mode: fn(key, x, rate, mode=mode) for mode in MODES},
                       in_axes=(0, None, 0))
    return jax.jit(members, compiler_options=FAST_COMPILE)


def train(name, keys, x, rates=RATES, mode="inverted") -> np.ndarray:
    return np.asarray(compiled(name)(keys, x, jnp.asarray(rates, jnp.float32))[mode])


def member_keys(seed):
    return jax.random.split(jax.random.key(seed), len(RATES))


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


@pytest.mark.parametrize("name", NAMES)
def test_kept_fraction_is_one_minus_rate(name):
    ones = np.ones(PRIMITIVES[name][1], np.float32)
    for mode in MODES:
        out = train(name, member_keys(1), ones, mode=mode)
        for member, rate in zip(out, RATES):
            kept = decisions(name, member) != 0
            assert kept.size == N_DECISIONS
            assert_within_sigmas(kept.mean(), 1.0 - rate, np.sqrt(rate * (1.0 - rate) / N_DECISIONS))


@pytest.mark.parametrize("name", NAMES)
def test_inverted_scales_kept_units_and_preserves_the_mean(name):
    fn, shape = PRIMITIVES[name]
    out = train(name, member_keys(2), np.ones(shape, np.float32))
    for member, rate in zip(out, RATES):
        np.testing.assert_allclose(member[member != 0], 1.0 / (1.0 - rate), rtol=1e-6)
        # E[train] == eval output: per decision 1/(1-p) with probability 1-p, else 0
        # (variance p/(1-p)).
        eval_out = np.asarray(fn(None, np.ones(shape, np.float32), rate))
        np.testing.assert_array_equal(eval_out, 1.0)
        sigma = np.sqrt(rate / (1.0 - rate) / N_DECISIONS)
        assert_within_sigmas(decisions(name, member).mean(), eval_out.mean(), sigma)


@pytest.mark.parametrize("name", NAMES)
def test_classic_trains_with_a_bare_mask_and_evaluates_at_keep_probability(name):
    fn, shape = PRIMITIVES[name]
    x = random_input(shape)
    out = train(name, member_keys(3), x, mode="classic")
    ones_out = train(name, member_keys(3), np.ones(shape, np.float32), mode="classic")
    for member, ones_member, rate in zip(out, ones_out, RATES):
        kept = member != 0
        np.testing.assert_array_equal(member[kept], np.asarray(x)[kept])  # unscaled
        np.testing.assert_allclose(np.asarray(fn(None, x, rate, mode="classic")),
                                   np.asarray(x) * (1.0 - rate), rtol=1e-6)
        # E[train] == eval output: a 0/1 mask on ones, whose mean is the keep probability.
        ones_member = decisions(name, ones_member)
        assert set(np.unique(ones_member).tolist()) == {0.0, 1.0}
        eval_ones = np.asarray(fn(None, np.ones(shape, np.float32), rate, mode="classic"))
        np.testing.assert_allclose(eval_ones, 1.0 - rate, rtol=1e-6)
        sigma = np.sqrt(rate * (1.0 - rate) / N_DECISIONS)
        assert_within_sigmas(ones_member.mean(), eval_ones.mean(), sigma)


@pytest.mark.parametrize("name", NAMES)
def test_same_key_same_mask_other_key_other_mask(name):
    x = random_input(PRIMITIVES[name][1])
    first = train(name, member_keys(7), x)
    np.testing.assert_array_equal(first, train(name, member_keys(7), x))
    other = train(name, member_keys(8), x)
    for a, b in zip(first, other):
        assert not np.array_equal(a != 0, b != 0)
    same_rate = train(name, member_keys(9), x, rates=[0.5] * len(RATES))
    assert not np.array_equal(same_rate[0] != 0, same_rate[1] != 0)  # member keys differ


@pytest.mark.parametrize("name", NAMES)
def test_vmapped_jit_with_traced_rates_equals_eager_bitwise(name):
    fn, shape = PRIMITIVES[name]
    x, keys = random_input(shape), member_keys(4)
    for mode in MODES:
        out = train(name, keys, x, mode=mode)
        for i, rate in enumerate(RATES):
            np.testing.assert_array_equal(out[i], np.asarray(fn(keys[i], x, rate, mode=mode)))


@pytest.mark.parametrize("name", NAMES)
def test_rate_zero_with_a_key_is_exactly_the_identity(name):
    x = random_input(PRIMITIVES[name][1])
    for mode in MODES:
        for member in train(name, member_keys(0), x, rates=[0.0] * len(RATES), mode=mode):
            np.testing.assert_array_equal(member, x)


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
        with pytest.raises(jaxreg.InputError) as info:
            fn(key, jnp.ones((2, 3, 3, 2)), rate)
        assert str(info.value) == message


@pytest.mark.parametrize("name", NAMES)
def test_unknown_mode_is_a_value_error(name):
    fn = PRIMITIVES[name][0]
    for key in (jax.random.key(0), None):
        with pytest.raises(jaxreg.InputError) as info:
            fn(key, jnp.ones((2, 3, 3, 2)), 0.5, mode="keep")
        assert str(info.value) == "mode: expected one of 'inverted', 'classic', got 'keep'"


def test_spatial_dropout_drops_whole_channels_per_example():
    x = random_input(PRIMITIVES["spatial_dropout"][1])
    out = train("spatial_dropout", member_keys(9), x)
    for member, rate in zip(out, RATES):
        zero = (member == 0).all(axis=(1, 2))  # (example, channel)
        kept = np.isclose(member, np.asarray(x) / (1.0 - rate), rtol=1e-6, atol=0).all(axis=(1, 2))
        assert (zero ^ kept).all(), "a channel was partly dropped"
        assert_within_sigmas(kept.mean(), 1.0 - rate, np.sqrt(rate * (1 - rate) / kept.size))
        assert not (zero == zero[:1]).all(), "every example got the same channel mask"


def test_spatial_dropout_accepts_a_single_unbatched_map():
    x = random_input((6, 5, 64))
    out = np.asarray(jax.jit(jaxreg.spatial_dropout, compiler_options=FAST_COMPILE)(jax.random.key(11), x, 0.5))
    assert out.shape == x.shape
    zero = (out == 0).all(axis=(0, 1))
    kept = np.isclose(out, 2.0 * np.asarray(x), rtol=1e-6, atol=0).all(axis=(0, 1))
    assert (zero ^ kept).all() and zero.any() and kept.any()


def test_spatial_dropout_rejects_inputs_below_rank_3():
    with pytest.raises(jaxreg.InputError) as info:
        jaxreg.spatial_dropout(jax.random.key(0), jnp.ones((4, 5)), 0.5)
    assert str(info.value) == "x: expected feature maps of rank >= 3 (..., H, W, C), got shape (4, 5)"


def test_dropconnect_masks_individual_weights_not_rows_or_columns():
    out = train("dropconnect", member_keys(12), np.ones(PRIMITIVES["dropconnect"][1], np.float32), rates=[0.5] * len(RATES))
    dropped = out[0] == 0
    # Independent weights: at this size no row or column is entirely kept or entirely dropped.
    for axis in (0, 1):
        assert not dropped.all(axis=axis).any() and not (~dropped).all(axis=axis).any()


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_spatial_dropout_is_dropout_of_a_per_channel_mask_in_the_input_dtype(dtype, mode):
    # Spatial dropout draws one keep/drop per (example, channel): the same draws as dropout of
    # a (batch, 1, 1, channels) array of ones with the same key, broadcast over the map.
    key = jax.random.key(3)
    x = jax.random.normal(jax.random.key(4), (4, 2, 3, 64)).astype(dtype)
    out = jaxreg.spatial_dropout(key, x, 0.3, mode=mode)
    mask = jaxreg.dropout(key, jnp.ones((4, 1, 1, 64), dtype), 0.3, mode=mode)
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(x * mask, np.float32))
    evaluated = jaxreg.spatial_dropout(None, x, 0.3, mode=mode)
    assert evaluated.dtype == dtype
    expected = x * jnp.asarray(0.7, dtype) if mode == "classic" else x
    np.testing.assert_array_equal(np.asarray(evaluated, np.float32), np.asarray(expected, np.float32))


def test_spatial_dropout_at_rate_zero_keeps_every_channel():
    # bfloat16 draws are coarse: among 8192 channels some draw exactly 0, which rate 0 keeps.
    x = jnp.ones((2, 1, 1, 4096), jnp.bfloat16)
    out = jaxreg.spatial_dropout(jax.random.key(5), x, 0.0)
    np.testing.assert_array_equal(np.asarray(out, np.float32), 1.0)


def test_spatial_dropout_casts_a_numpy_rate_to_the_input_dtype():
    # bfloat16(0.2995) is 0.298828125: a draw of exactly that value is kept (u >= rate in the
    # input's dtype), as dropout keeps it; 8192 coarse draws hit it about 16 times.
    key, rate = jax.random.key(6), np.float32(0.2995)
    x = jnp.ones((2, 1, 1, 4096), jnp.bfloat16)
    out = jaxreg.spatial_dropout(key, x, rate)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out, np.float32),
                                  np.asarray(jaxreg.dropout(key, x, rate), np.float32))
    assert jaxreg.spatial_dropout(None, x, rate, mode="classic").dtype == jnp.bfloat16


def test_dropout_rate_zero_keeps_every_coarse_draw_and_classic_mode_keeps_the_dtype():
    x = jnp.ones(8192, jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(jaxreg.dropout(jax.random.key(7), x, 0.0), np.float32), 1.0)
    assert jaxreg.dropout(jax.random.key(7), x, 0.3, mode="classic").dtype == jnp.bfloat16


@pytest.mark.parametrize("rate, shown", [(None, "None"), ([0.5, 1.0], "[0.5, 1.0]")])
def test_a_bad_rate_is_named_as_given(rate, shown):
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.dropout(None, jnp.ones(2), rate)
    assert str(error.value) == f"rate: expected a drop probability in [0, 1), got {shown}"
