"""Features that touch the same state, tested together against NumPy (tests/README.md's matrix).

Each feature has its own tests elsewhere; these are the cells where two of them meet:
freezing (transfer learning) with each penalty and L1 mode, batch norm with restore-best and
with a swept ``bn_epsilon``/``bn_momentum`` at evaluation as well as in training, dropout and
DropConnect on layers with non-zero biases, and augmentation strengths in the units the docs
state, measured on what was drawn. Each docstring names the bug it was checked to catch.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import drop
from jaxreg import train as train_lib
from jaxreg.augment import augment
from jaxreg.data import Split

N_IN, N_HIDDEN, N_OUT = 3, 5, 3


def _data(n_train=9, n_val=6, seed=0):
    rng = np.random.default_rng(seed)
    split = lambda n: Split(rng.normal(size=(n, N_IN)), rng.integers(0, N_OUT, n).astype(np.int32))
    return train_lib.Data(split(n_train), split(n_val), split(4))


def _params(net, seed=1, scale=0.7):
    """Float64 params shaped like ``net``'s, every leaf (biases included) drawn non-zero."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(net.init, jax.random.key(0))[0]
    params = jax.tree_util.tree_map(lambda s: rng.normal(0.0, scale, s.shape), shapes)
    for layer in params.values():  # batch norm's scale near 1, as after some training
        if "scale" in layer:
            layer["scale"] = 1.0 + 0.2 * rng.normal(size=layer["scale"].shape)
    return params


def _softmax_xent(z, y):
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


# --------------------------------------------------------------- freezing x each penalty

PENALTY_CASES = {
    "l2": ("subgradient", dict(l2=0.3)),
    "l1-subgradient": ("subgradient", dict(l1=0.2)),
    "l1-proximal": ("proximal", dict(l1=0.2)),
    "weight-decay": ("subgradient", dict(weight_decay=0.4)),
    "elastic-net": ("subgradient", dict(l2=0.3, l1=0.2, weight_decay=0.1)),
    "elastic-net-proximal": ("proximal", dict(l2=0.3, l1=0.2, weight_decay=0.1)),
}


def _numpy_head_steps(p0, data, hp, *, proximal, steps, lr):
    """The head of a tanh network whose first layer is frozen, trained by full-batch SGD with
    the documented penalties (weights only): the head is a linear softmax on fixed features."""
    x, y = data.train.x, data.train.y
    h = np.tanh(x @ p0["dense_0"]["w"] + p0["dense_0"]["b"])
    w, b = p0["dense_1"]["w"].copy(), p0["dense_1"]["b"].copy()
    l2, l1, wd = hp.get("l2", 0.0), hp.get("l1", 0.0), hp.get("weight_decay", 0.0)
    for _ in range(steps):
        z = h @ w + b
        e = np.exp(z - z.max(1, keepdims=True))
        delta = (e / e.sum(1, keepdims=True) - np.eye(N_OUT)[y]) / len(y)
        gw, gb = h.T @ delta, delta.sum(0)
        uw = gw + l2 * w + (0.0 if proximal else l1 * np.sign(w)) + wd * w
        w, b = w - lr * uw, b - lr * gb
        if proximal:
            w = np.sign(w) * np.maximum(np.abs(w) - lr * l1, 0.0)
    return w, b


@pytest.fixture(scope="module")
def freezing():
    """One compiled program per L1 mode: penalties and the frozen depth are traced."""
    net = jaxreg.mlp((N_IN, N_HIDDEN, N_OUT), activation="tanh", dtype=jnp.float64)
    programs = {}

    def train(l1_mode, **hp):
        if l1_mode not in programs:
            config = jaxreg.TrainConfig(model=net, optimizer="sgd", epochs=3, batch_size=None, shuffle=False,
                                        dropout=False, layerwise=True, l1_mode=l1_mode)
            programs[l1_mode] = jax.jit(jaxreg.make_train(config))
        p0 = _params(net)
        result = programs[l1_mode](jax.random.key(0), jaxreg.make_hparams(net, **hp), _data(),
                                   jax.tree_util.tree_map(jnp.asarray, p0))
        return p0, jax.tree_util.tree_map(np.asarray, result.params)

    return train


@pytest.mark.parametrize("case", list(PENALTY_CASES))
def test_a_frozen_layer_never_moves_under_any_penalty_and_the_head_follows_numpy(freezing, case, x64):
    """Frozen layers stay bitwise at their start under every penalty and L1 mode; the trained
    head takes the documented steps. Checked to catch: the freezing scale applied inside the
    optax chain before weight decay (decay then moves frozen weights), and the proximal
    threshold not scaled by the layer's scale (L1 shrinks frozen weights)."""
    l1_mode, penalties = PENALTY_CASES[case]
    lr = 0.5
    p0, params = freezing(l1_mode, learning_rate=lr, trainable_layers=1, **penalties)
    for leaf in ("w", "b"):
        np.testing.assert_array_equal(params["dense_0"][leaf], p0["dense_0"][leaf])
    w, b = _numpy_head_steps(p0, _data(), penalties, proximal=l1_mode == "proximal", steps=3, lr=lr)
    np.testing.assert_allclose(params["dense_1"]["w"], w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(params["dense_1"]["b"], b, rtol=1e-10, atol=1e-13)
    # the same program with every layer trainable moves the first layer: the freeze is what held it
    _, free = freezing(l1_mode, learning_rate=lr, **penalties)
    assert not np.allclose(free["dense_0"]["w"], p0["dense_0"]["w"])


# --------------------------------------------------------------- batch norm x restore-best / eval

def _numpy_bn_eval(p, state, x, epsilon):
    """The evaluation forward pass of mlp((N_IN, N_HIDDEN, N_OUT), batch_norm=True, tanh):
    normalized by the running statistics, with the member's epsilon."""
    z = x @ p["dense_0"]["w"] + p["dense_0"]["b"]
    s = state["dense_0"]
    z = (z - s["mean"]) / np.sqrt(s["var"] + epsilon) * p["dense_0"]["scale"] + p["dense_0"]["offset"]
    return np.tanh(z) @ p["dense_1"]["w"] + p["dense_1"]["b"]


def _numpy_bn_train_logits(p, x, epsilon):
    z = x @ p["dense_0"]["w"] + p["dense_0"]["b"]
    mean, var = z.mean(0), z.var(0)
    z = (z - mean) / np.sqrt(var + epsilon) * p["dense_0"]["scale"] + p["dense_0"]["offset"]
    return np.tanh(z) @ p["dense_1"]["w"] + p["dense_1"]["b"], mean, var


@pytest.fixture(scope="module")
def bn_net():
    return jaxreg.mlp((N_IN, N_HIDDEN, N_OUT), activation="tanh", batch_norm=True, dtype=jnp.float64)


@functools.cache
def _bn_program(net, epochs):
    config = jaxreg.TrainConfig(model=net, optimizer="sgd", epochs=epochs, batch_size=3, shuffle=True,
                                dropout=False)
    return jax.jit(jaxreg.make_train(config))


def _bn_train(net, epochs, **hp):
    p0 = jax.tree_util.tree_map(jnp.asarray, _params(net))
    data = _data(n_train=9, n_val=8, seed=3)
    result = _bn_program(net, epochs)(jax.random.key(5), jaxreg.make_hparams(net, **hp), data, p0)
    return jax.tree_util.tree_map(np.asarray, result), data


def test_batch_norm_restore_best_returns_the_best_epochs_statistics_and_evaluates_with_them(bn_net, x64):
    """The restored model state is the one of the best epoch (a replay that stops there), and
    the final metrics are NumPy's evaluation of those params and statistics with the member's
    bn_epsilon. Checked to catch: ``finish`` restoring the params but returning the last
    epoch's model state, and evaluation with the default epsilon instead of the member's."""
    hp = dict(learning_rate=1.5, restore_best=1.0, bn_momentum=0.6, bn_epsilon=0.3)
    result, data = _bn_train(bn_net, 6, **hp)
    best = int(result.best_epoch)
    assert 1 <= best < 6, best  # the data make an early best: otherwise nothing is restored
    replay, _ = _bn_train(bn_net, best, **{**hp, "restore_best": 0.0})
    last, _ = _bn_train(bn_net, 6, **{**hp, "restore_best": 0.0})
    for name in ("mean", "var"):
        np.testing.assert_allclose(result.model_state["dense_0"][name], replay.model_state["dense_0"][name],
                                   rtol=1e-12, atol=1e-14)
        assert not np.allclose(result.model_state["dense_0"][name], last.model_state["dense_0"][name])
    logits = _numpy_bn_eval(result.params, result.model_state, data.val.x, 0.3)
    np.testing.assert_allclose(result.final["val_loss"], _softmax_xent(logits, data.val.y), rtol=1e-10)


@functools.cache
def _full_batch_program(net, epochs):
    config = jaxreg.TrainConfig(model=net, optimizer="sgd", epochs=epochs, batch_size=None, shuffle=False,
                                dropout=False)
    return jax.jit(jaxreg.make_train(config))


@pytest.mark.parametrize("member", [dict(bn_momentum=0.3, bn_epsilon=0.5), dict(bn_momentum=0.9, bn_epsilon=2.0)])
def test_swept_bn_momentum_and_epsilon_are_used_in_training_and_at_evaluation(bn_net, member, x64):
    """With a learning rate too small to move the params (1e-300), each full-batch step
    normalizes by the batch statistics and the member's epsilon (the epoch loss) and moves the
    running statistics by the member's momentum; evaluation normalizes by them with the
    member's epsilon. Both members run one compiled program (the values are traced). Checked
    to catch: evaluation with the model's default epsilon (1e-5), and a running update
    ``(1 - m) * running + m * batch`` (PyTorch's convention)."""
    m, eps, steps = member["bn_momentum"], member["bn_epsilon"], 3
    data = _data(n_train=9, n_val=8, seed=4)
    p0 = _params(bn_net)
    result = _full_batch_program(bn_net, steps)(jax.random.key(0),
                                                jaxreg.make_hparams(bn_net, learning_rate=1e-300, **member), data,
                                                jax.tree_util.tree_map(jnp.asarray, p0))
    logits, mean, var = _numpy_bn_train_logits(p0, data.train.x, eps)
    running = {"mean": np.zeros(N_HIDDEN), "var": np.ones(N_HIDDEN)}
    for _ in range(steps):
        running = {"mean": m * running["mean"] + (1 - m) * mean, "var": m * running["var"] + (1 - m) * var}
    for name in ("mean", "var"):
        np.testing.assert_allclose(result.model_state["dense_0"][name], running[name], rtol=1e-12)
    np.testing.assert_allclose(result.final["epoch_loss"], _softmax_xent(logits, data.train.y), rtol=1e-10)
    for split in ("train", "val"):
        x, y = getattr(data, split)
        expected = _softmax_xent(_numpy_bn_eval(p0, {"dense_0": running}, x, eps), y)
        np.testing.assert_allclose(result.final[f"{split}_loss"], expected, rtol=1e-10)


# --------------------------------------------------------------- dropout / DropConnect x biases

def test_dropout_and_dropconnect_leave_non_zero_biases_unscaled_given_the_same_masks(x64):
    """A two-hidden-layer MLP with non-zero biases in training mode, both drops on: NumPy's
    forward pass with the masks drawn from the same keys (as the model splits them: units,
    then weights, one key per layer) gives the same logits. Checked to catch DropConnect's mask
    (and its 1/(1-rate) scale) applied to the bias too; a bias dropped or scaled with the units
    would fail the same way, since every bias here is non-zero."""
    net = jaxreg.mlp((4, 6, 5, 3), activation="tanh", dtype=jnp.float64)
    p = _params(net, seed=7)
    assert all(np.all(p[name]["b"] != 0) for name in p)
    x = np.random.default_rng(8).normal(size=(10, 4))
    rates, connect = np.array([0.3, 0.5, 0.25]), np.array([0.4, 0.2, 0.6])
    key = jax.random.key(11)
    logits, _ = net.apply(jax.tree_util.tree_map(jnp.asarray, p), {}, jnp.asarray(x), key=key, train=True,
                          dropout=jnp.asarray(rates), dropconnect=jnp.asarray(connect))
    units_key, weights_key = jax.random.split(key)
    unit_keys, weight_keys = jax.random.split(units_key, 3), jax.random.split(weights_key, 3)
    h = x
    for i, name in enumerate(("dense_0", "dense_1", "dense_2")):
        # the masks, scaled as inverted dropout scales them: 0 or 1 / (1 - rate)
        keep_units = np.asarray(drop.dropout(unit_keys[i], jnp.ones(h.shape), rates[i]))
        keep_weights = np.asarray(drop.dropconnect(weight_keys[i], jnp.ones(p[name]["w"].shape), connect[i]))
        assert set(np.unique(keep_units).round(12)) <= {0.0, round(1 / (1 - rates[i]), 12)}
        z = (h * keep_units) @ (p[name]["w"] * keep_weights) + p[name]["b"]
        h = np.tanh(z) if i < 2 else z
    np.testing.assert_allclose(np.asarray(logits), h, rtol=1e-12, atol=1e-12)
    assert not np.allclose(np.asarray(logits), np.asarray(net.apply(p, {}, x)[0]))  # the drops did something


# --------------------------------------------------------------- augmentation in the docs' units

SIZE = 33
CENTRE = (SIZE - 1) / 2


def _blob(row, col, sigma=1.2):
    r, c = np.mgrid[:SIZE, :SIZE]
    return np.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma ** 2))


def _centroid(image):
    r, c = np.mgrid[:SIZE, :SIZE]
    w = image / image.sum()
    return float((w * r).sum()), float((w * c).sum())


def _drawn(strengths, image, n=300):
    net = jaxreg.mlp((SIZE * SIZE, 2))
    hp = jaxreg.make_hparams(net, **strengths)
    images = np.repeat(image[None, :, :, None], n, axis=0).astype(np.float32)
    out = augment(jax.random.key(2), jnp.asarray(images), hp, enabled=tuple(strengths))
    return np.asarray(out)[..., 0]


def test_rotation_draws_angles_uniform_in_plus_minus_the_strength_in_degrees():
    """hparams.rotate is the largest angle in degrees: a blob 10 pixels right of the centre
    ends at angles spread over [-rotate, rotate], reaching near both ends. Checked to catch
    the strength taken as radians, and a draw in [0, rotate] (or of half the width)."""
    degrees = 25.0
    out = _drawn({"rotate": degrees}, _blob(CENTRE, CENTRE + 10))
    angles = []
    for image in out:
        row, col = _centroid(image)
        angles.append(math.degrees(math.atan2(row - CENTRE, col - CENTRE)))
    angles = np.abs(np.array(angles))
    assert angles.max() <= degrees + 0.5
    assert angles.max() >= 0.9 * degrees and angles.min() <= 0.1 * degrees
    signed = [math.degrees(math.atan2(_centroid(im)[0] - CENTRE, _centroid(im)[1] - CENTRE)) for im in out]
    assert min(signed) < -0.8 * degrees and max(signed) > 0.8 * degrees
    # uniform: about half the draws within half the strength
    assert 0.4 < np.mean(angles < degrees / 2) < 0.6


def test_shift_draws_every_whole_pixel_offset_in_plus_minus_the_strength():
    """hparams.shift is the largest translation in whole pixels on each axis: the blob moves by
    integers in [-shift, shift], each of the 2 * shift + 1 values drawn on both axes. Checked to
    catch a draw in [-shift, shift - 1] and a shift in fractions of the image size."""
    shift = 3
    out = _drawn({"shift": shift}, _blob(CENTRE, CENTRE))
    moves = np.array([_centroid(image) for image in out]) - CENTRE
    assert np.allclose(moves, np.round(moves), atol=1e-3)
    for axis in (0, 1):
        assert set(np.round(moves[:, axis]).astype(int)) == set(range(-shift, shift + 1))


def test_zoom_draws_scales_uniform_in_one_plus_minus_the_strength():
    """hparams.zoom is the largest relative zoom: two blobs 8 pixels either side of the centre
    end at a distance scaled by a factor spread over [1 - zoom, 1 + zoom]. Checked to catch a
    scale in [1, 1 + zoom] (zoom in only) and a zoom that is the inverse of the docs' (the
    pull matrix used as the forward one)."""
    zoom = 0.3
    out = _drawn({"zoom": zoom}, _blob(CENTRE, CENTRE - 8) + _blob(CENTRE, CENTRE + 8))
    factors = []
    for image in out:
        left, right = image[:, :int(CENTRE)], image[:, int(CENTRE) + 1:]
        factors.append((_centroid_cols(right, int(CENTRE) + 1) - _centroid_cols(left, 0)) / 16.0)
    factors = np.array(factors)
    assert factors.min() >= 1 - zoom - 0.02 and factors.max() <= 1 + zoom + 0.02
    assert factors.min() < 1 - 0.8 * zoom and factors.max() > 1 + 0.8 * zoom
    assert 0.4 < np.mean(factors < 1) < 0.6


def _centroid_cols(part, start):
    cols = np.arange(part.shape[1]) + start
    return float((part.sum(0) * cols).sum() / part.sum())
