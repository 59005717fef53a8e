"""jaxreg.measures against plain NumPy: norms, path norm (as an explicit sum over paths) and
margin exactly; sharpness with the perturbations drawn from the same key; the Hessian's top
eigenvalue against numpy.linalg.eigh of a Hessian by finite differences. Plus jit and vmap
giving what eager gives, and the refusals."""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import measures, mlp
from jaxreg.errors import InputError


def _net_and_params(sizes=(3, 4, 3), bias=True, seed=0):
    net = mlp(sizes, bias=bias, dtype=jnp.float64)
    params, _ = net.init(jax.random.key(seed))
    if bias:  # biases start at zero: give them values, so that a bias path counts
        params = {name: {**layer, "b": layer["b"] + 0.1 * (i + 1)} for i, (name, layer) in enumerate(params.items())}
    return net, params


def _np_forward(params, x):
    """A ReLU MLP in NumPy: the oracle of model.apply."""
    layers = [params[name] for name in sorted(params)]
    h = np.asarray(x, np.float64)
    for i, layer in enumerate(layers):
        h = h @ np.asarray(layer["w"]) + (np.asarray(layer["b"]) if "b" in layer else 0.0)
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _np_cross_entropy(params, x, y):
    logits = _np_forward(params, x)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def _data(n=12, features=3, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, classes, size=n)


def test_layer_norms_and_their_product_are_the_frobenius_norms_of_the_weights(x64):
    net, params = _net_and_params()
    norms = measures.layer_norms(net, params)
    expected = {name: np.sqrt((np.asarray(params[name]["w"]) ** 2).sum()) for name in ("dense_0", "dense_1")}
    assert list(norms) == ["dense_0", "dense_1"]  # input first; the biases left out
    for name in expected:
        assert float(norms[name]) == pytest.approx(expected[name], rel=1e-15)
    assert float(measures.norm_product(net, params)) == pytest.approx(np.prod(list(expected.values())), rel=1e-14)


def test_the_path_norm_is_the_sum_over_paths_of_squared_weights(x64):
    """Without biases: sum over (input i, hidden j, output k) of w0[i,j]**2 * w1[j,k]**2, enumerated."""
    net, params = _net_and_params(bias=False)
    w0, w1 = (np.asarray(params[n]["w"]) for n in ("dense_0", "dense_1"))
    by_paths = sum(w0[i, j] ** 2 * w1[j, k] ** 2
                   for i, j, k in itertools.product(range(w0.shape[0]), range(w0.shape[1]), range(w1.shape[1])))
    assert float(measures.path_norm(net, params)) == pytest.approx(by_paths, rel=1e-13)
    # with biases: a bias is a path that starts at its layer
    net, params = _net_and_params(bias=True)
    w0, b0, w1, b1 = (np.asarray(params[n][k]) for n in ("dense_0", "dense_1") for k in ("w", "b"))
    paths = (sum(w0[i, j] ** 2 * w1[j, k] ** 2 for i in range(3) for j in range(4) for k in range(3))
             + sum(b0[j] ** 2 * w1[j, k] ** 2 for j in range(4) for k in range(3)) + (b1 ** 2).sum())
    assert float(measures.path_norm(net, params)) == pytest.approx(paths, rel=1e-13)
    # invariant to scaling a layer up and the next one down; the norm product is not
    scaled = {"dense_0": {**params["dense_0"], "w": params["dense_0"]["w"] * 4, "b": params["dense_0"]["b"] * 4},
              "dense_1": {**params["dense_1"], "w": params["dense_1"]["w"] / 4}}
    assert float(measures.path_norm(net, scaled)) == pytest.approx(float(measures.path_norm(net, params)), rel=1e-13)


def test_the_margin_is_a_percentile_of_true_logit_minus_the_largest_other(x64):
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(50, 4)), rng.integers(0, 4, size=50)
    others = np.where(np.eye(4, dtype=bool)[labels], -np.inf, logits).max(axis=1)
    margins = logits[np.arange(50), labels] - others
    for q in (0, 10, 50, 90):
        assert float(measures.output_margin(jnp.asarray(logits), jnp.asarray(labels), q)) == pytest.approx(
            np.percentile(margins, q), rel=1e-14, abs=1e-15)
    one = rng.normal(size=(20, 1))
    binary = rng.integers(0, 2, size=20)
    assert float(measures.output_margin(jnp.asarray(one), jnp.asarray(binary), 10)) == pytest.approx(
        np.percentile(np.where(binary == 1, 1, -1) * one[:, 0], 10), rel=1e-14)


@pytest.mark.parametrize("magnitude_aware", [False, True])
def test_sharpness_is_the_mean_loss_rise_under_the_keys_perturbations(x64, magnitude_aware):
    net, params = _net_and_params()
    x, y = _data()
    loss = lambda p: jnp.mean(-jax.nn.log_softmax(net.apply(p, {}, x)[0])[jnp.arange(len(y)), y])
    key, sigma, samples, epsilon = jax.random.key(7), 0.05, 5, 1e-3
    got = float(measures.sharpness(loss, params, key, sigma=sigma, samples=samples,
                                   magnitude_aware=magnitude_aware, epsilon=epsilon))
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    w = np.asarray(flat)
    rises = []
    for i in range(samples):  # the documented draw, replayed
        noise = np.asarray(jax.random.normal(jax.random.fold_in(key, i), w.shape, w.dtype))
        noisy = w + noise * (sigma * np.abs(w) + epsilon if magnitude_aware else sigma)
        rises.append(_np_cross_entropy(jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(noisy))), x, y))
    expected = np.mean(rises) - _np_cross_entropy(params, x, y)
    assert got == pytest.approx(expected, rel=1e-10)
    assert got > 0  # a random step away from a smooth loss's value goes up on average here
    again = measures.sharpness(loss, params, key, sigma=sigma, samples=samples, magnitude_aware=magnitude_aware)
    assert float(again) == got  # the same key, the same perturbations


def _np_hessian(f, theta, h=1e-4):
    """Central second differences of f at theta (float64): H[i, j]."""
    n = len(theta)
    hess = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            def at(di, dj):
                t = theta.copy()
                t[i] += di
                t[j] += dj
                return f(t)
            hess[i, j] = hess[j, i] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
    return hess


def test_the_top_hessian_eigenvalue_matches_eigh_of_the_full_hessian(x64):
    """A tiny model (2-3-2 with biases, 17 params) near a minimum of its training loss."""
    net, params = _net_and_params(sizes=(2, 3, 2), seed=3)
    x, y = _data(n=10, features=2, classes=2, seed=4)
    loss = lambda p: jnp.mean(-jax.nn.log_softmax(net.apply(p, {}, x)[0])[jnp.arange(len(y)), y])
    for _ in range(300):  # gradient descent towards a minimum, where the Hessian is positive semidefinite
        params = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, jax.grad(loss)(params))
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    hessian = _np_hessian(lambda t: _np_cross_entropy(jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(t))), x, y),
                          np.asarray(flat))
    eigenvalues = np.linalg.eigh(hessian)[0]
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    got = float(measures.top_hessian_eigenvalue(loss, params, jax.random.key(0), iterations=300))
    assert got == pytest.approx(top, rel=1e-4)
    assert float(measures.edge_of_stability(0.5, got)) == pytest.approx(0.25 * top, rel=1e-4)


def test_measures_under_jit_and_vmap_equal_eager():
    net = mlp((3, 5, 3))
    keys = jax.random.split(jax.random.key(0), 4)
    members = jax.vmap(lambda k: net.init(k)[0])(keys)
    x, y = (jnp.asarray(a) for a in _data())
    x = x.astype(jnp.float32)

    def all_measures(p):
        loss = lambda q: jnp.mean(-jax.nn.log_softmax(net.apply(q, {}, x)[0])[jnp.arange(len(y)), y])
        return {"norm_product": measures.norm_product(net, p), "path_norm": measures.path_norm(net, p),
                "margin": measures.output_margin(net.apply(p, {}, x)[0], y),
                "sharpness": measures.sharpness(loss, p, jax.random.key(1), sigma=0.01, samples=3),
                "hessian": measures.top_hessian_eigenvalue(loss, p, jax.random.key(2), iterations=5)}

    batched = jax.jit(jax.vmap(all_measures))(members)
    for i in range(len(keys)):
        alone = all_measures(jax.tree_util.tree_map(lambda a: a[i], members))
        for name, value in alone.items():
            np.testing.assert_allclose(batched[name][i], value, rtol=2e-5, atol=1e-6, err_msg=name)  # float32


def test_path_norm_refuses_batch_norm():
    net = mlp((3, 4, 2), batch_norm=True)
    params, state = net.init(jax.random.key(0))
    with pytest.raises(InputError) as error:
        measures.path_norm(net, params, state)
    assert str(error.value) == ("path_norm: expected a model without batch norm (its statistics make the paths "
                                "depend on the data), got Model.batch_norm = True")


# --- train.measures: inside the training program -----------------------------------------------

def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    split = lambda a, b: jaxreg.data.Split(x[a:b], y[a:b])
    return jaxreg.Data(split(0, 40), split(40, 50), split(50, 60))


def _members(config, data, **hparams):
    hp = jaxreg.stack_hparams([jaxreg.make_hparams(config.model, learning_rate=0.1, **hparams)] * 2)
    return jaxreg.train_batch(config, data, chunk_size=2)(np.array([0, 1]), hp)


def test_measures_in_the_program_equal_the_functions_at_the_returned_params_and_change_nothing_else():
    """Two members, 6 epochs in 3 segments (train_batch): the measures, computed once at the end,
    equal jaxreg.measures applied eagerly to each member's returned params; every other number
    and the params are bitwise those of the same config without measures."""
    data = _blobs()
    net = jaxreg.mlp((4, 8, 2))
    base = jaxreg.TrainConfig(net, optimizer="sgd", epochs=6, batch_size=10, eval_every=2)
    asked = dataclasses.replace(base, measures=("hessian", "margin", "sharpness", "path_norm", "norm_product",
                                                "mag_sharpness"))
    assert asked.measures == measures_names  # kept in the documented order
    plain, measured = _members(base, data), _members(asked, data)
    np.testing.assert_array_equal(jax.flatten_util.ravel_pytree(plain.params)[0],
                                  jax.flatten_util.ravel_pytree(measured.params)[0])
    for name, value in plain.final.items():
        np.testing.assert_array_equal(value, measured.final[name], err_msg=name)
    x, y = jnp.asarray(data.train.x), jnp.asarray(data.train.y)
    for i, seed in enumerate((0, 1)):
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a[i]), measured.params)
        loss = lambda p: jaxreg.softmax_cross_entropy(net.apply(p, {}, x)[0], y)
        key = jax.random.fold_in(jaxreg.member_key(seed), 4)
        expected = {"norm_product": measures.norm_product(net, params), "path_norm": measures.path_norm(net, params),
                    "margin": measures.output_margin(net.apply(params, {}, x)[0], y, 10.0),
                    "sharpness": measures.sharpness(loss, params, jax.random.fold_in(key, 0), sigma=0.01, samples=8),
                    "mag_sharpness": measures.sharpness(loss, params, jax.random.fold_in(key, 1), sigma=0.01,
                                                        samples=8, magnitude_aware=True),
                    "hessian": measures.top_hessian_eigenvalue(loss, params, jax.random.fold_in(key, 2),
                                                               iterations=20)}
        for name, value in expected.items():
            np.testing.assert_allclose(measured.final[name][i], value, rtol=1e-4, atol=1e-6, err_msg=name)
    assert np.all(np.isfinite(np.stack([measured.final[n] for n in measures_names])))


measures_names = ("norm_product", "path_norm", "margin", "sharpness", "mag_sharpness", "hessian")


def test_bad_measures_are_refused_with_the_field_the_allowed_values_and_the_value():
    net = jaxreg.mlp((4, 8, 2))
    cases = [(dict(measures=("sharpnes",)), "measures: expected names among norm_product, path_norm, margin, "
                                            "sharpness, mag_sharpness, hessian, got 'sharpnes'"),
             (dict(measures=("sharpness",), measure_sigma=0.0), "measure_sigma: expected a number > 0, got 0.0"),
             (dict(measures="hessian", measure_sigma=True), "measure_sigma: expected a number > 0, got True")]
    for kwargs, message in cases:
        with pytest.raises(InputError) as error:
            jaxreg.TrainConfig(net, **kwargs)
        assert str(error.value) == message
    with pytest.raises(InputError) as error:
        jaxreg.TrainConfig(jaxreg.mlp((4, 8, 2), batch_norm=True), measures=("path_norm",))
    assert str(error.value) == ("measures: expected 'path_norm' only for a model without batch norm (its statistics "
                                "make the paths depend on the data), got a model with batch norm")
    assert jaxreg.TrainConfig(net, measures="hessian").measures == ("hessian",)
    data = _blobs()
    regression = jaxreg.Data(*(jaxreg.data.Split(s.x, s.y.astype(np.float32)[:, None]) for s in data))
    config = jaxreg.TrainConfig(jaxreg.mlp((4, 8, 1)), loss="mse", epochs=2, batch_size=10, measures=("margin",))
    with pytest.raises(InputError) as error:
        _members(config, regression)
    assert str(error.value) == "measures: expected 'margin' only for class labels, got float targets (a regression)"
