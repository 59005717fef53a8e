"""Tests for jaxreg.losses and jaxreg.penalties: float64 oracles written in NumPy, gradients of
every loss + penalty against central finite differences, the book's hand-written backprop, and
the optax transforms (decoupled weight decay, L1 subgradient, proximal L1)."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg
from jaxreg import penalties

# Compile time dominates these tiny programs on a small CPU, and this file compares compiled
# results with tolerances only, so its jitted oracles skip LLVM's optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}

# NumPy at import time: the mutation run forks workers after collecting the tests, and a JAX
# backend started before a fork hangs the workers.
PARAMS = {"w": np.array([[1.0, -2.0]], np.float32), "b": np.array([3.0, -0.05], np.float32)}
BIAS_ONLY = {"w": False, "b": True}


# ---------------------------------------------------------------- NumPy reference implementations

def np_one_hot(labels, n):
    return np.eye(n)[labels]


def np_log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_bce(z, y):
    """-y log(sigmoid z) - (1 - y) log(1 - sigmoid z), without overflow for large |z|."""
    return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))


# The oracle checks call the losses jitted: one compile each is far cheaper on a small CPU
# than compiling every primitive op by op, and the math is the same.
jitted = SimpleNamespace(**{name: jax.jit(getattr(jaxreg, name)) for name in (
    "squared_error", "mean_squared_error", "sum_squared_error", "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy", "accuracy")})


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)), rng.integers(0, 4, size=8), rng.normal(size=(8, 4))


# ---------------------------------------------------------------- loss oracles

def test_squared_error_with_int_labels_and_with_targets(x64, batch):
    outputs, labels, targets = batch
    expected = 0.5 * np.mean(np.sum((outputs - np_one_hot(labels, 4)) ** 2, axis=1))
    np.testing.assert_allclose(jitted.squared_error(jnp.asarray(outputs), jnp.asarray(labels)), expected, rtol=1e-12)
    expected = 0.5 * np.mean(np.sum((outputs - targets) ** 2, axis=1))
    np.testing.assert_allclose(jitted.squared_error(jnp.asarray(outputs), jnp.asarray(targets)), expected, rtol=1e-12)


def test_squared_error_of_a_single_unit_takes_labels_as_a_column(x64):
    outputs = np.array([[0.3], [0.9], [-0.2]])
    labels = np.array([0, 1, 1])
    expected = 0.5 * np.mean((outputs[:, 0] - labels) ** 2)
    np.testing.assert_allclose(jitted.squared_error(jnp.asarray(outputs), jnp.asarray(labels)), expected, rtol=1e-12)


def test_mean_and_sum_squared_error(x64, batch):
    outputs, labels, targets = batch
    for y, dense in ((labels, np_one_hot(labels, 4)), (targets, targets)):
        np.testing.assert_allclose(jitted.mean_squared_error(jnp.asarray(outputs), jnp.asarray(y)),
                                   np.mean((outputs - dense) ** 2), rtol=1e-12)
        np.testing.assert_allclose(jitted.sum_squared_error(jnp.asarray(outputs), jnp.asarray(y)),
                                   np.mean(np.sum((outputs - dense) ** 2, axis=1)), rtol=1e-12)


def test_softmax_cross_entropy_matches_numpy(x64, batch):
    logits, labels, _ = batch
    expected = -np.mean(np_log_softmax(logits)[np.arange(8), labels])
    np.testing.assert_allclose(jitted.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)),
                               expected, rtol=1e-12)


def test_softmax_cross_entropy_is_stable_for_logits_of_magnitude_1000(x64):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 500.0], [999.0, 1000.0, -1000.0]])
    labels = np.array([1, 1, 0])
    # Per example: 2000, log(1 + e^-500) ~ 0, 1 + log(1 + e^-1): exact in float64.
    expected = np.mean([2000.0, np.log1p(np.exp(-500.0)), 1.0 + np.log1p(np.exp(-1.0))])
    got = jitted.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, -np.mean(np_log_softmax(logits)[np.arange(3), labels]), rtol=1e-12)
    with jax.enable_x64(False):  # and in float32
        got32 = jitted.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
        assert np.isfinite(got32)
        np.testing.assert_allclose(got32, expected, rtol=1e-6)


def test_sigmoid_binary_cross_entropy_matches_numpy_and_is_stable(x64):
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(10, 1)) * 3, rng.integers(0, 2, size=10)
    np.testing.assert_allclose(
        jitted.sigmoid_binary_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)),
        np.mean(np_bce(logits[:, 0], labels)), rtol=1e-12)
    # Large |logits|: right answers cost ~0, wrong ones cost |z|; log(sigmoid(z)) would give -inf.
    logits, labels = np.array([[800.0], [-800.0], [800.0], [-800.0], [40.0]]), np.array([1, 0, 0, 1, 1])
    got = jitted.sigmoid_binary_cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, (800.0 + 800.0 + np.log1p(np.exp(-40.0))) / 5, rtol=1e-12)
    with jax.enable_x64(False):
        got32 = jitted.sigmoid_binary_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
        assert np.isfinite(got32)
        np.testing.assert_allclose(got32, 320.0, rtol=1e-6)


def test_sigmoid_binary_cross_entropy_sums_units_and_accepts_targets(x64):
    rng = np.random.default_rng(2)
    logits, targets = rng.normal(size=(6, 3)), rng.integers(0, 2, size=(6, 3)).astype(float)
    np.testing.assert_allclose(
        jitted.sigmoid_binary_cross_entropy(jnp.asarray(logits), jnp.asarray(targets)),
        np.mean(np.sum(np_bce(logits, targets), axis=1)), rtol=1e-12)


def test_accuracy_argmax_for_several_units_and_sign_for_one():
    logits = jnp.array([[0.1, 0.9, 0.0], [2.0, 1.0, -1.0], [0.0, 0.0, 3.0], [1.0, 5.0, 2.0]])
    assert float(jitted.accuracy(logits, jnp.array([1, 0, 2, 0]))) == 0.75
    assert float(jitted.accuracy(logits, jnp.array([0, 1, 0, 0]))) == 0.0
    single = jnp.array([[2.0], [-0.5], [0.0], [1e-3]])
    # logit > 0 predicts 1; exactly 0 predicts 0.
    assert float(jitted.accuracy(single, jnp.array([1, 0, 0, 1]))) == 1.0
    assert float(jitted.accuracy(single, jnp.array([0, 1, 1, 0]))) == 0.0
    assert float(jitted.accuracy(single, jnp.array([1, 1, 0, 1]))) == 0.75


def test_get_loss_names_and_error():
    assert jaxreg.get_loss("squared_error") is jaxreg.squared_error
    assert jaxreg.get_loss("mse") is jaxreg.mean_squared_error
    assert jaxreg.get_loss("cross_entropy") is jaxreg.softmax_cross_entropy
    assert jaxreg.get_loss("bce") is jaxreg.sigmoid_binary_cross_entropy
    with pytest.raises(jaxreg.InputError) as info:
        jaxreg.get_loss("hinge")
    assert str(info.value) == ("loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', "
                               "'bce' or a function (outputs, labels) -> scalar, got 'hinge'")


# ---------------------------------------------------------------- gradients vs finite differences

# name -> (loss, output units, label kind)
GRAD_LOSSES = {
    "squared_error": (jaxreg.squared_error, 4, "int"),
    "squared_error_targets": (jaxreg.squared_error, 4, "targets"),
    "mean_squared_error": (jaxreg.mean_squared_error, 4, "int"),
    "sum_squared_error": (jaxreg.sum_squared_error, 4, "int"),
    "softmax_cross_entropy": (jaxreg.softmax_cross_entropy, 4, "int"),
    "sigmoid_binary_cross_entropy": (jaxreg.sigmoid_binary_cross_entropy, 1, "int"),
}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.3, 0.0), "l1": (0.0, 0.2), "elastic_net": (0.3, 0.2)}
MASKS = {"weights_only": None, "with_biases": jaxreg.all_params_mask}
EPS = 1e-6


def away_from_zero(shape, rng):
    """Values with 0.2 <= |v| <= 1: finite differences of |w| never straddle the kink."""
    return rng.uniform(0.2, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


def flatten(params):
    """NumPy params -> (flat vector, function rebuilding the params from a flat traced vector)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes, sizes = [leaf.shape for leaf in leaves], [leaf.size for leaf in leaves]
    offsets = np.cumsum([0, *sizes])

    def unflatten(theta):
        return jax.tree_util.tree_unflatten(
            treedef, [theta[o:o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes)])

    return np.concatenate([leaf.ravel() for leaf in leaves]), unflatten


@functools.cache
def gradient_checks():
    """``{(loss, penalty, mask): (autodiff grad, central differences, flat params, flat mask)}``.

    Everything is one compiled program, prepared in NumPy (compiles, eager ones included,
    dominate the run time on a small CPU): the penalty strengths are traced and vmapped over,
    the finite differences vmapped over the perturbed parameter vectors.
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3))
    setups = {}
    for loss_name, (loss, units, label_kind) in GRAD_LOSSES.items():
        net = jaxreg.mlp((3, 5, units), activation="tanh", dtype=jnp.float64)
        params = {"dense_0": {"w": away_from_zero((3, 5), rng), "b": away_from_zero((5,), rng)},
                  "dense_1": {"w": away_from_zero((5, units), rng), "b": away_from_zero((units,), rng)}}
        y = rng.normal(size=(6, units)) if label_kind == "targets" else rng.integers(0, max(units, 2), size=6)
        setups[loss_name] = (loss, net, params, y)

    def checks(thetas, l2, l1):
        out = {}
        for loss_name, (loss, net, params, y) in setups.items():
            theta, unflatten = thetas[loss_name], flatten(params)[1]
            for mask_name, mask in MASKS.items():
                def total(t, loss=loss, net=net, y=y, unflatten=unflatten, mask=mask):
                    p = unflatten(t)
                    return loss(net.apply(p, {}, x)[0], y) + jaxreg.penalty(p, l2, l1, mask=mask)
                steps = EPS * jnp.eye(theta.size)
                values = jax.vmap(total)(jnp.concatenate([theta + steps, theta - steps]))
                fd = (values[:theta.size] - values[theta.size:]) / (2 * EPS)
                out[loss_name, mask_name] = (jax.grad(total)(theta), fd)
        return out

    thetas = {name: flatten(setup[2])[0] for name, setup in setups.items()}
    l2s, l1s = (np.array(v) for v in zip(*PENALTIES.values()))
    with jax.enable_x64(True):
        results = jax.jit(jax.vmap(checks, in_axes=(None, 0, 0)), compiler_options=FAST_COMPILE)(thetas, l2s, l1s)
        results = jax.tree_util.tree_map(np.asarray, results)
    table = {}
    for (loss_name, mask_name), (grads, fds) in results.items():
        params = setups[loss_name][2]
        if mask_name == "weights_only":
            # The default mask's rule: leaves with two or more dimensions (here every "w").
            selected = jax.tree_util.tree_map(lambda leaf: np.full(leaf.shape, float(leaf.ndim >= 2)), params)
        else:
            selected = jax.tree_util.tree_map(np.ones_like, params)
        for p, penalty_name in enumerate(PENALTIES):
            table[loss_name, penalty_name, mask_name] = (grads[p], fds[p], thetas[loss_name], flatten(selected)[0])
    return table


@pytest.mark.parametrize("mask_name", MASKS)
@pytest.mark.parametrize("penalty_name", PENALTIES)
@pytest.mark.parametrize("loss_name", GRAD_LOSSES)
def test_gradient_of_loss_plus_penalty_matches_finite_differences(loss_name, penalty_name, mask_name):
    table = gradient_checks()
    grad, fd, theta, mask = table[loss_name, penalty_name, mask_name]
    # atol covers components near zero, where float64 round-off of the differences (~1e-10) rules.
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    # The penalty adds exactly l2 * w + l1 * sign(w) on the masked leaves, nothing elsewhere.
    l2, l1 = PENALTIES[penalty_name]
    loss_grad = table[loss_name, "none", mask_name][0]
    np.testing.assert_allclose(grad - loss_grad, mask * (l2 * theta + l1 * np.sign(theta)), rtol=1e-12, atol=1e-14)


def test_default_mask_leaves_biases_out_of_the_gradient():
    grad, _, theta, mask = gradient_checks()["squared_error", "elastic_net", "weights_only"]
    loss_grad = gradient_checks()["squared_error", "none", "weights_only"][0]
    assert 0 < mask.sum() < mask.size
    np.testing.assert_array_equal((grad - loss_grad)[mask == 0], 0.0)


@pytest.mark.parametrize("activation, relu2deriv", [("relu", lambda out: out > 0),
                                                     ("relu_book", lambda out: out >= 0)])
def test_sgd_on_squared_error_replays_the_books_backprop(x64, activation, relu2deriv):
    alpha = 0.05
    rng = np.random.default_rng(4)
    images, labels = rng.uniform(0.0, 1.0, (5, 6)), rng.integers(0, 3, 5)
    net = jaxreg.mlp((6, 5, 3), activation=activation, bias=False, dtype=jnp.float64)
    params = jax.tree_util.tree_map(jnp.asarray, jaxreg.numpy_uniform_init((6, 5, 3), seed=1))
    w01, w12 = (np.array(params[name]["w"]) for name in ("dense_0", "dense_1"))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def sgd_step(params, image, label):
        grads = jax.grad(lambda p: jaxreg.squared_error(net.apply(p, {}, image)[0], label))(params)
        return jax.tree_util.tree_map(lambda w, g: w - alpha * g, params, grads)

    saw_negative = False
    for i in range(len(images)):
        params = sgd_step(params, jnp.asarray(images[i:i + 1]), jnp.asarray(labels[i:i + 1]))
        # The book, chapter 8: deltas first (with the old weights), then both updates.
        layer_0 = images[i:i + 1]
        hidden_in = layer_0.dot(w01)
        saw_negative |= bool((hidden_in < 0).any())
        layer_1 = np.maximum(hidden_in, 0.0)
        layer_2 = layer_1.dot(w12)
        layer_2_delta = np.eye(3)[labels[i:i + 1]] - layer_2
        layer_1_delta = layer_2_delta.dot(w12.T) * relu2deriv(layer_1)
        w12 += alpha * layer_1.T.dot(layer_2_delta)
        w01 += alpha * layer_0.T.dot(layer_1_delta)
        np.testing.assert_allclose(params["dense_0"]["w"], w01, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(params["dense_1"]["w"], w12, rtol=1e-12, atol=1e-12)
    assert saw_negative, "no hidden unit was ever negative: relu and relu_book would agree"


# ---------------------------------------------------------------- penalty

def penalty_params(dtype=np.float64):
    rng = np.random.default_rng(5)
    return {"dense_0": {"w": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=4).astype(dtype)},
            "dense_1": {"w": rng.normal(size=(4, 2)).astype(dtype), "b": rng.normal(size=2).astype(dtype)}}


def np_penalty(params, l2, l1, selected):
    """``selected(layer_name, leaf_name, leaf) -> bool`` picks the leaves to penalize."""
    leaves = [leaf for layer_name, layer in params.items() for name, leaf in layer.items()
              if selected(layer_name, name, leaf)]
    return 0.5 * l2 * sum((v ** 2).sum() for v in leaves) + l1 * sum(np.abs(v).sum() for v in leaves)


def as_jnp(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


@pytest.mark.parametrize("l2, l1", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
def test_penalty_is_half_l2_squares_plus_l1_abs_over_weights_only(x64, l2, l1):
    params = penalty_params()
    got = jaxreg.penalty(as_jnp(params), l2, l1)
    # Weights by role: the leaves with two or more dimensions.
    np.testing.assert_allclose(got, np_penalty(params, l2, l1, lambda layer, name, leaf: leaf.ndim >= 2), rtol=1e-12)
    with_biases = jaxreg.penalty(as_jnp(params), l2, l1, mask=jaxreg.all_params_mask)
    np.testing.assert_allclose(with_biases, np_penalty(params, l2, l1, lambda layer, name, leaf: True), rtol=1e-12)
    if l2 or l1:
        assert with_biases > got


def test_penalty_with_a_bool_pytree_mask_and_with_a_callable_mask(x64):
    params = penalty_params()
    tree = {"dense_0": {"w": True, "b": False}, "dense_1": {"w": False, "b": True}}
    expected = np_penalty(params, 0.3, 0.2, lambda layer, name, leaf: tree[layer][name])
    np.testing.assert_allclose(jaxreg.penalty(as_jnp(params), 0.3, 0.2, mask=tree), expected, rtol=1e-12)
    np.testing.assert_allclose(jaxreg.penalty(as_jnp(params), 0.3, 0.2, mask=lambda p: tree), expected, rtol=1e-12)
    assert jaxreg.weights_mask(as_jnp(params)) == {"dense_0": {"w": True, "b": False}, "dense_1": {"w": True, "b": False}}
    assert jaxreg.all_params_mask(as_jnp(params)) == {"dense_0": {"w": True, "b": True}, "dense_1": {"w": True, "b": True}}


def test_masks_of_zero_one_arrays_select_single_elements(x64):
    params = penalty_params()
    rng = np.random.default_rng(8)
    elements = jax.tree_util.tree_map(lambda leaf: rng.integers(0, 2, leaf.shape).astype(np.float64), params)
    picked = [leaf[m == 1] for leaf, m in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(elements))]
    assert 0 < sum(p.size for p in picked) < sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    expected = 0.5 * 0.3 * sum((p ** 2).sum() for p in picked) + 0.2 * sum(np.abs(p).sum() for p in picked)
    for mask in (elements, lambda p: elements, jax.tree_util.tree_map(lambda m: m.astype(bool), elements)):
        np.testing.assert_allclose(jaxreg.penalty(as_jnp(params), 0.3, 0.2, mask=mask), expected, rtol=1e-12)
        np.testing.assert_allclose(jaxreg.weight_norm(as_jnp(params), mask=mask),
                                   np.sqrt(sum((p ** 2).sum() for p in picked)), rtol=1e-12)
    # The transforms honour the same per-element mask: unselected elements pass through.
    updates = jax.tree_util.tree_map(np.ones_like, params)
    tx = jaxreg.decoupled_weight_decay(0.1, mask=elements)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    for u, p, m in zip(*(jax.tree_util.tree_leaves(t) for t in (new, params, elements))):
        np.testing.assert_allclose(u, 1.0 + 0.1 * m * p, rtol=1e-12)
    shrunk = jaxreg.prox_l1(as_jnp(params), 0.5, mask=elements)
    for s, p, m in zip(*(jax.tree_util.tree_leaves(t) for t in (shrunk, params, elements))):
        np.testing.assert_array_equal(s, np.where(m == 1, np.sign(p) * np.maximum(np.abs(p) - 0.5, 0.0), p))
    zeros = sum(int((np.abs(p) <= 0.5).sum()) for p in picked)
    assert zeros > 0
    np.testing.assert_allclose(jaxreg.zero_fraction(shrunk, mask=elements), zeros / sum(p.size for p in picked),
                               rtol=1e-12)


class Dense(NamedTuple):
    w: jax.Array
    b: jax.Array


def test_weights_mask_selects_leaves_of_two_or_more_dims_in_nested_dicts_and_named_tuples():
    # By role, not by name: a Flax "kernel", a PyTorch "weight" and a conv filter are weights;
    # a one-dimensional leaf is not, even one named "w". A rule that looked for the name "w"
    # would get this mask wrong in four places and the penalty (0.5 * 2 * (12 + 3) = 15) wrong too.
    params = {"encoder": {"kernel": jnp.ones((2, 1)), "b": jnp.ones(2), "scale": jnp.ones(1)},
              "head": Dense(w=jnp.full((3, 1), 2.0), b=jnp.ones(3)), "extra": [{"w": jnp.ones(3)}],
              "torch": {"weight": jnp.ones((1, 3)), "bias": jnp.ones(1)},
              "conv": {"filters": jnp.full((1, 1, 1, 2), 0.5)}}
    mask = jaxreg.weights_mask(params)
    assert mask == {"encoder": {"kernel": True, "b": False, "scale": False}, "head": Dense(w=True, b=False),
                    "extra": [{"w": False}], "torch": {"weight": True, "bias": False},
                    "conv": {"filters": True}}
    assert float(jaxreg.penalty(params, l2=2.0)) == 17.5  # 0.5 * 2 * (2 + 12 + 3 + 0.5)


def test_penalty_under_jit_with_traced_strengths_equals_eager():
    params = as_jnp(penalty_params(np.float32))
    traces = []

    @jax.jit
    def jitted(params, l2, l1):
        traces.append(None)  # runs only while tracing
        return jaxreg.penalty(params, l2, l1)

    for l2, l1 in ((0.3, 0.0), (0.01, 0.5), (0.0, 0.0)):
        eager = jaxreg.penalty(params, l2, l1)
        # allclose, not bitwise: XLA may fuse the sums in another order.
        np.testing.assert_allclose(jitted(params, jnp.float32(l2), jnp.float32(l1)), eager, rtol=1e-6)
    assert len(traces) == 1  # the strengths are traced, not baked in


def test_weight_norm(x64):
    params = penalty_params()
    expected = np.sqrt(sum((layer["w"] ** 2).sum() for layer in params.values()))
    np.testing.assert_allclose(jaxreg.weight_norm(as_jnp(params)), expected, rtol=1e-12)
    everything = np.sqrt(sum((v ** 2).sum() for layer in params.values() for v in layer.values()))
    np.testing.assert_allclose(jaxreg.weight_norm(as_jnp(params), mask=jaxreg.all_params_mask), everything,
                               rtol=1e-12)


def test_prox_l1_resolves_a_callable_or_default_mask_on_the_params():
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    everything = penalties.prox_l1(params, 0.1, penalties.all_params_mask)
    np.testing.assert_allclose(everything["w"], [[0.9, -1.9]], rtol=1e-6)
    np.testing.assert_allclose(everything["b"], [2.9, 0.0], rtol=1e-6)
    weights = penalties.prox_l1(params, 0.1)  # default: leaves of 2+ dims only
    np.testing.assert_allclose(weights["w"], [[0.9, -1.9]], rtol=1e-6)
    np.testing.assert_array_equal(weights["b"], PARAMS["b"])


def test_selects_anything_looks_at_every_element_of_every_leaf():
    assert not penalties.selects_anything({"a": False, "b": np.zeros((2, 2))})
    assert penalties.selects_anything({"a": False, "b": np.array([0, 0, 1])})
    assert penalties.selects_anything({"a": True})
    assert not penalties.selects_anything({})


def test_zero_fraction_default_mask_single_element_and_dtype(x64):
    params = {"w": jnp.array([[0.0, 1.0], [0.0, 2.0]], jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    fraction = penalties.zero_fraction(params)  # weights only: 2 zeros of 4
    assert float(fraction) == 0.5 and fraction.dtype == jnp.float32
    assert float(penalties.zero_fraction({"w": jnp.zeros((1, 1))})) == 1.0


# ---------------------------------------------------------------- optax transforms

def transform_inputs():
    rng = np.random.default_rng(6)
    params = {"dense_0": {"w": rng.normal(size=(30, 20)).astype(np.float32), "b": rng.normal(size=20).astype(np.float32)}}
    params["dense_0"]["w"][0, :3] = 0.0  # sign(0) = 0: no L1 pull on a weight already at zero
    updates = {"dense_0": {"w": (0.3 * rng.normal(size=(30, 20))).astype(np.float32),
                           "b": (0.3 * rng.normal(size=20)).astype(np.float32)}}
    return params, updates


def test_decoupled_weight_decay_adds_decay_to_weights_only():
    params, updates = transform_inputs()
    tx = jaxreg.decoupled_weight_decay(0.1)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    np.testing.assert_allclose(new["dense_0"]["w"], updates["dense_0"]["w"] + np.float32(0.1) * params["dense_0"]["w"], rtol=1e-6)
    np.testing.assert_array_equal(new["dense_0"]["b"], updates["dense_0"]["b"])
    tx = jaxreg.decoupled_weight_decay(0.1, mask=jaxreg.all_params_mask)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    np.testing.assert_allclose(new["dense_0"]["b"], updates["dense_0"]["b"] + np.float32(0.1) * params["dense_0"]["b"], rtol=1e-6)


def test_add_penalty_gradient_adds_l2_w_plus_l1_sign_to_weights_only():
    params, updates = transform_inputs()
    tx = jaxreg.add_penalty_gradient(0.3, 0.05)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    w, u = params["dense_0"]["w"], updates["dense_0"]["w"]
    # atol: float32 sums of terms that nearly cancel round to ~1e-8 absolute.
    np.testing.assert_allclose(new["dense_0"]["w"], u + np.float32(0.3) * w + np.float32(0.05) * np.sign(w),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(new["dense_0"]["w"][0, :3], (u + np.float32(0.3) * w)[0, :3])  # sign(0) = 0
    np.testing.assert_array_equal(new["dense_0"]["b"], updates["dense_0"]["b"])
    # It is the gradient of penalty(params, l2, l1) on the same mask, away from |w|'s kink (at
    # w = 0 autodiff picks +1 for d|w|/dw where the transform uses sign(0) = 0, checked above).
    penalty_grad = jax.grad(lambda p: jaxreg.penalty(p, 0.3, 0.05))(as_jnp(params))
    for a, b, c, p in zip(*(jax.tree_util.tree_leaves(t) for t in (new, updates, penalty_grad, params))):
        np.testing.assert_allclose(np.asarray(a)[p != 0], (b + c)[p != 0], rtol=1e-6, atol=1e-7)


def test_l1_decay_adds_strength_times_sign_to_weights_only():
    params, updates = transform_inputs()
    tx = jaxreg.l1_decay(0.05)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    np.testing.assert_allclose(new["dense_0"]["w"], updates["dense_0"]["w"] + np.float32(0.05) * np.sign(params["dense_0"]["w"]), rtol=1e-6)
    np.testing.assert_array_equal(new["dense_0"]["w"][0, :3], updates["dense_0"]["w"][0, :3])  # zero weights: no pull
    np.testing.assert_array_equal(new["dense_0"]["b"], updates["dense_0"]["b"])


def test_proximal_l1_soft_thresholds_to_exact_zeros():
    params, updates = transform_inputs()
    threshold = np.float32(0.4)
    tx = jaxreg.proximal_l1(threshold)
    new, _ = tx.update(as_jnp(updates), tx.init(as_jnp(params)), as_jnp(params))
    moved = params["dense_0"]["w"] + updates["dense_0"]["w"]  # float32, as the transform computes it
    shrunk = np.sign(moved) * np.maximum(np.abs(moved) - threshold, 0.0)
    np.testing.assert_allclose(jaxreg.soft_threshold(jnp.asarray(moved), threshold), shrunk, rtol=1e-6, atol=0)
    np.testing.assert_allclose(new["dense_0"]["w"], shrunk - params["dense_0"]["w"], rtol=1e-6, atol=1e-6)
    applied = optax.apply_updates(as_jnp(params), new)
    w = np.asarray(applied["dense_0"]["w"])
    n_zero = int((np.abs(moved) <= threshold).sum())
    assert 50 < n_zero < w.size
    assert int((w == 0.0).sum()) == n_zero
    np.testing.assert_allclose(w, shrunk, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(new["dense_0"]["b"], updates["dense_0"]["b"])  # biases: update passes through
    np.testing.assert_array_equal(applied["dense_0"]["b"], params["dense_0"]["b"] + updates["dense_0"]["b"])


def test_proximal_l1_after_sgd_is_an_ista_step():
    params, updates = transform_inputs()
    grads = updates
    lr, l1 = 0.1, 2.0
    tx = optax.chain(optax.sgd(lr), jaxreg.proximal_l1(lr * l1))
    new, _ = tx.update(as_jnp(grads), tx.init(as_jnp(params)), as_jnp(params))
    w = np.asarray(optax.apply_updates(as_jnp(params), new)["dense_0"]["w"])
    step = params["dense_0"]["w"] - np.float32(lr) * grads["dense_0"]["w"]
    np.testing.assert_allclose(w, np.sign(step) * np.maximum(np.abs(step) - np.float32(lr * l1), 0), rtol=1e-5,
                               atol=1e-6)
    assert (w == 0.0).sum() == (np.abs(step) <= np.float32(lr * l1)).sum()


def test_transforms_take_traced_strengths_under_jit():
    params, updates = transform_inputs()

    @jax.jit
    def step(params, updates, weight_decay, threshold):
        tx = optax.chain(jaxreg.decoupled_weight_decay(weight_decay), jaxreg.proximal_l1(threshold))
        return tx.update(updates, tx.init(params), params)[0]

    params, updates = as_jnp(params), as_jnp(updates)
    for weight_decay, threshold in ((0.1, 0.4), (0.0, 0.05)):
        eager_tx = optax.chain(jaxreg.decoupled_weight_decay(weight_decay), jaxreg.proximal_l1(threshold))
        eager = eager_tx.update(updates, eager_tx.init(params), params)[0]
        jitted = step(params, updates, jnp.float32(weight_decay), jnp.float32(threshold))
        for a, b in zip(jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# The message names the transform the user called, whose update needs the params.
@pytest.mark.parametrize("make, name", [(jaxreg.l1_decay, "l1_decay"),
                                        (jaxreg.proximal_l1, "proximal_l1"),
                                        (lambda s: jaxreg.add_penalty_gradient(s, s), "add_penalty_gradient"),
                                        (jaxreg.decoupled_weight_decay, "decoupled_weight_decay")])
def test_l1_transforms_without_params_raise(make, name):
    params, updates = transform_inputs()
    tx = make(0.1)
    with pytest.raises(jaxreg.InputError) as info:
        tx.update(as_jnp(updates), tx.init(as_jnp(params)))
    assert str(info.value) == f"{name}: params are required by update(updates, state, params)"


def test_soft_threshold_oracle():
    x = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5])
    np.testing.assert_array_equal(jaxreg.soft_threshold(x, 1.0), [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5])


def test_l1_decay_and_proximal_l1_honour_a_given_mask():
    zeros = {"w": jnp.zeros((1, 2)), "b": jnp.zeros(2)}
    updates, _ = penalties.l1_decay(0.5, BIAS_ONLY).update(zeros, None, PARAMS)
    np.testing.assert_array_equal(updates["w"], [[0.0, 0.0]])
    np.testing.assert_array_equal(updates["b"], [0.5, -0.5])
    # proximal_l1 soft-thresholds w + u for the masked leaf only: the update takes b to
    # [2.9, 0] (|-0.05| < 0.1 becomes exact zero), w keeps its update unchanged.
    updates, _ = penalties.proximal_l1(0.1, BIAS_ONLY).update(zeros, None, PARAMS)
    np.testing.assert_array_equal(updates["w"], [[0.0, 0.0]])
    np.testing.assert_allclose(updates["b"], [-0.1, 0.05], rtol=1e-6)


def test_proximal_l1_state_is_its_empty_named_tuple():
    state = penalties.proximal_l1(0.1).init({"w": jnp.ones((2, 2))})
    assert isinstance(state, penalties.ProximalL1State) and state == ()


def test_penalty_defaults_empty_params_and_the_params_dtype(x64):
    params = {"w": jnp.array([[3.0, -4.0]], jnp.float32), "b": jnp.array([10.0], jnp.float32)}
    assert float(penalties.penalty(params, l1=0.5)) == 3.5          # no L2 unless asked
    assert float(penalties.penalty(params, l2=1.0)) == 12.5          # no L1 unless asked
    assert float(penalties.penalty({})) == 0.0
    per_element = {"w": np.array([[1.0, 0.0]]), "b": np.array([0.0])}   # float64 0/1 arrays
    assert penalties.penalty(params, l2=1.0, mask=per_element).dtype == jnp.float32
    updates, state = penalties.add_penalty_gradient(0.5).update(
        jax.tree_util.tree_map(jnp.zeros_like, params), penalties.add_penalty_gradient(0.5).init(params), params)
    np.testing.assert_array_equal(updates["w"], [[1.5, -2.0]])       # 0.5 * w, no L1 term
    np.testing.assert_array_equal(updates["b"], [0.0])
    assert isinstance(state, optax.EmptyState)
    assert isinstance(penalties.decoupled_weight_decay(0.1).init(params), optax.EmptyState)
