"""Batch normalization: a NumPy oracle for training and evaluation mode and the running
statistics, batch independence at evaluation, separate statistics per vmapped member, frozen
statistics for frozen layers and diverged members."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import TrainConfig, make_hparams, make_train, member_key, stack_hparams, train_batch
from jaxreg.data import Dataset, Split
from jaxreg.models import batch_norm, cnn, mlp

RNG = np.random.default_rng(0)


def numpy_batch_norm(h, scale, offset, mean, var, *, train, momentum, epsilon):
    """The oracle: Keras's and Flax's batch norm (biased batch variance), over all axes but the last."""
    if train:
        axes = tuple(range(h.ndim - 1))
        batch_mean, batch_var = h.mean(axis=axes), h.var(axis=axes)
        out = (h - batch_mean) / np.sqrt(batch_var + epsilon) * scale + offset
        return out, momentum * mean + (1 - momentum) * batch_mean, momentum * var + (1 - momentum) * batch_var
    return (h - mean) / np.sqrt(var + epsilon) * scale + offset, mean, var


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 6)])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_numpy(x64, shape, train):
    h = RNG.normal(2.0, 3.0, shape)
    n = shape[-1]
    layer = {"scale": RNG.normal(1.0, 0.1, n), "offset": RNG.normal(0.0, 0.1, n)}
    stats = {"mean": RNG.normal(0.0, 1.0, n), "var": RNG.uniform(0.5, 2.0, n)}
    out, new = batch_norm(jax.tree_util.tree_map(jnp.asarray, layer), jax.tree_util.tree_map(jnp.asarray, stats),
                          jnp.asarray(h), train=train, momentum=0.9, epsilon=1e-3)
    expected, mean, var = numpy_batch_norm(h, layer["scale"], layer["offset"], stats["mean"], stats["var"],
                                           train=train, momentum=0.9, epsilon=1e-3)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(new["mean"]), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(new["var"]), var, rtol=1e-12, atol=1e-12)


def test_a_frozen_layer_normalizes_by_running_statistics_and_keeps_them(x64):
    h = jnp.asarray(RNG.normal(2.0, 3.0, (16, 4)))
    layer = {"scale": jnp.ones(4), "offset": jnp.zeros(4)}
    stats = {"mean": jnp.full(4, 0.5), "var": jnp.full(4, 2.0)}
    out, new = batch_norm(layer, stats, h, train=True, frozen=1.0)
    evaluated, _ = batch_norm(layer, stats, h, train=False)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(evaluated))
    for name in stats:
        np.testing.assert_array_equal(np.asarray(new[name]), np.asarray(stats[name]))


def test_mlp_with_batch_norm_matches_numpy_forward(x64):
    net = mlp((3, 5, 2), batch_norm=True, dtype=jnp.float64)
    params, state = net.init(jax.random.key(0))
    assert set(params["dense_0"]) == {"w", "b", "scale", "offset"} and set(state) == {"dense_0"}
    x = RNG.normal(size=(8, 3))
    logits, new_state = net.apply(params, state, jnp.asarray(x), key=jax.random.key(1), train=True,
                                  bn_momentum=0.8, bn_epsilon=1e-4)
    p = jax.tree_util.tree_map(np.asarray, params)
    z = x @ p["dense_0"]["w"] + p["dense_0"]["b"]
    z, mean, var = numpy_batch_norm(z, p["dense_0"]["scale"], p["dense_0"]["offset"], 0.0, 1.0, train=True,
                                    momentum=0.8, epsilon=1e-4)
    expected = np.maximum(z, 0) @ p["dense_1"]["w"] + p["dense_1"]["b"]
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(new_state["dense_0"]["mean"]), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(new_state["dense_0"]["var"]), var, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: mlp((4, 6, 3), batch_norm=True),
                                  lambda: cnn((4, 4, 1), 3, channels=(2,), hidden=(5,), batch_norm=True)],
                         ids=["mlp", "cnn"])
def test_evaluation_output_of_an_example_does_not_depend_on_its_batch(make):
    net = make()
    params, state = net.init(jax.random.key(0))
    x = jnp.asarray(RNG.normal(size=(10, 16 if net.input_shape == (4, 4, 1) else 4)), jnp.float32)
    _, state = net.apply(params, state, x, key=jax.random.key(1), train=True)  # statistics away from 0, 1
    alone, _ = net.apply(params, state, x[:1])
    together, _ = net.apply(params, state, x)
    other, _ = net.apply(params, state, jnp.concatenate([x[:1], 100 * x[1:]]))
    # Equal up to the rounding of a matmul over 1 or 10 rows; batch statistics would move it by far more.
    np.testing.assert_allclose(np.asarray(alone[0]), np.asarray(together[0]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(alone[0]), np.asarray(other[0]), rtol=1e-6, atol=1e-6)
    trained, _ = net.apply(params, state, jnp.concatenate([x[:1], 100 * x[1:]]), key=jax.random.key(1), train=True)
    assert not np.allclose(np.asarray(trained[0]), np.asarray(alone[0]))  # training mode does depend on it


def _data(n=48):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return Dataset(Split(x, y), Split(x[:16], y[:16]), Split(x[:0], y[:0]), {})


def test_vmapped_members_keep_separate_statistics_equal_to_their_solo_runs():
    net = mlp((4, 6, 2), batch_norm=True)
    config = TrainConfig(model=net, epochs=3, batch_size=16)
    members = [make_hparams(net, learning_rate=0.1, bn_momentum=m) for m in (0.5, 0.9, 0.99)]
    together = train_batch(config, _data())(np.zeros(3, int), stack_hparams(members))
    means = together.model_state["dense_0"]["mean"]
    assert not np.array_equal(means[0], means[1]) and not np.array_equal(means[1], means[2])
    train = jax.jit(make_train(config))
    for i, hp in enumerate(members):
        alone = train(member_key(0), jax.tree_util.tree_map(jnp.asarray, hp), _data())
        np.testing.assert_allclose(np.asarray(alone.model_state["dense_0"]["mean"]), means[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(alone.model_state["dense_0"]["var"]),
                                   together.model_state["dense_0"]["var"][i], rtol=1e-5, atol=1e-6)


def test_a_diverged_member_freezes_its_statistics_with_its_params():
    net = mlp((4, 6, 2), batch_norm=True)
    config = TrainConfig(model=net, epochs=3, batch_size=16)
    members = [make_hparams(net, learning_rate=0.1), make_hparams(net, learning_rate=3e38)]
    result = train_batch(config, _data())(np.zeros(2, int), stack_hparams(members))
    assert result.diverged.tolist() == [False, True]
    epoch = int(result.diverged_epoch[1])
    # Its state is the one from the start of the epoch it diverged in: after epoch - 1 epochs.
    before = TrainConfig(model=net, epochs=epoch - 1, batch_size=16) if epoch > 1 else None
    if before is None:
        _, fresh = net.init(jax.random.split(member_key(0), 3)[0])
        expected = jax.tree_util.tree_map(np.asarray, fresh)
    else:
        expected = train_batch(before, _data())(np.zeros(2, int), stack_hparams(members)).model_state
        expected = jax.tree_util.tree_map(lambda a: a[1], expected)
    for name in ("mean", "var"):
        np.testing.assert_array_equal(result.model_state["dense_0"][name][1], expected["dense_0"][name])
        assert np.all(np.isfinite(result.model_state["dense_0"][name][1]))


def test_batch_norm_is_part_of_the_models_identity():
    assert mlp((4, 6, 2), batch_norm=True) != mlp((4, 6, 2))
    assert mlp((4, 6, 2), batch_norm=True) == mlp((4, 6, 2), batch_norm=True)
