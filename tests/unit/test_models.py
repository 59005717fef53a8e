"""Tests for jaxreg.models: contract (``init(key) -> (params, state)`` shapes and layer names vs
``apply(params, state, x, ...) -> (logits, state)``), oracle (plain NumPy forward passes in
float64), dropout/DropConnect plumbing (training needs ``train=True`` and a key; evaluation
never drops), relu_book, init schemes and error messages."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

# Compile time dominates these tiny programs on a small CPU, and this file compares compiled
# results with tolerances only, so its jitted oracles skip LLVM's optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0}

ACTIVATIONS = ("relu", "relu_book", "tanh", "sigmoid", "linear")
OUTPUTS = ("linear", "sigmoid", "softmax")


# ---------------------------------------------------------------- NumPy reference implementations

def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


NP_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "relu_book": lambda z: np.maximum(z, 0.0),
                  "tanh": np.tanh, "sigmoid": np_sigmoid, "linear": lambda z: z}
NP_OUTPUTS = {"linear": lambda z: z, "sigmoid": np_sigmoid, "softmax": np_softmax}


def named(params, prefix):
    """The layers ``PREFIX_0, PREFIX_1, ...`` of a params dict, in order (a gap raises KeyError)."""
    return [params[f"{prefix}_{i}"] for i in range(sum(name.startswith(prefix + "_") for name in params))]


def np_dense_stack(layers, h, activation, output):
    for i, layer in enumerate(layers):
        h = h @ layer["w"] + layer.get("b", 0.0)
        h = NP_ACTIVATIONS[activation](h) if i < len(layers) - 1 else h
    return NP_OUTPUTS[output](h)


def np_conv2d_same(x, kernel):
    """Stride-1 cross-correlation, NHWC input, HWIO kernel, XLA/TF 'SAME' padding (extra pad last)."""
    kh, kw = kernel.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h, w, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,cd->nhwd", padded[:, i:i + h, j:j + w, :], kernel[i, j])
    return out


def np_pool_2x2(x, kind):
    """2x2 windows, stride 2, ceil output size; an edge window covers only the real pixels."""
    n, h, w, c = x.shape
    out = np.empty((n, -(-h // 2), -(-w // 2), c))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            window = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :]
            out[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return out


def np_cnn(params, x, n_conv, activation, pool, output):
    h = x
    convs = named(params, "conv")
    assert len(convs) == n_conv and set(params) == {f"conv_{i}" for i in range(n_conv)} | {
        f"dense_{j}" for j in range(len(params) - n_conv)}
    for layer in convs:
        h = np_pool_2x2(NP_ACTIVATIONS[activation](np_conv2d_same(h, layer["w"]) + layer["b"]), pool)
    return np_dense_stack(named(params, "dense"), h.reshape(h.shape[0], -1), activation, output)


def random_params(template, seed):
    """Float64 params shaped like ``template`` with nonzero biases, as NumPy arrays."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda p: rng.normal(0.0, 0.5, p.shape), template)


def ceil_half(n, times):
    for _ in range(times):
        n = -(-n // 2)
    return n


# ---------------------------------------------------------------- contract

MLP_CONFIGS = [
    dict(sizes=(4, 3), activation="relu", output="linear", bias=True),
    dict(sizes=(5, 8, 3), activation="tanh", output="softmax", bias=False, init="glorot_uniform"),
    dict(sizes=(6, 16, 8, 4, 1), activation="sigmoid", output="sigmoid", bias=True, init="he_uniform"),
    dict(sizes=(3, 7, 7, 2), activation="relu_book", output="linear", bias=False, init="uniform"),
    dict(sizes=(2, 9, 4), activation="linear", output="softmax", bias=True, init="glorot_normal"),
]


def shapes(tree):
    return jax.tree_util.tree_map(lambda leaf: (leaf.shape, leaf.dtype), tree)


def trace_apply(net, params, x, **kwargs):
    """``apply``'s logits in training mode as a ShapeDtypeStruct: traced, never compiled (compiles
    are slow on CPU). Also checks that ``apply`` hands back the state it was given, ``{}``."""
    out, state = jax.eval_shape(lambda p, x, key: net.apply(p, {}, x, key=key, train=True, **kwargs),
                                params, x, jax.random.key(1))
    assert state == {}
    return out


def init_shapes(net):
    """``init``'s params as ShapeDtypeStructs, after checking that its state is ``{}``."""
    params, state = jax.eval_shape(net.init, jax.random.key(0))
    assert state == {}
    return params


@pytest.mark.parametrize("config", MLP_CONFIGS, ids=lambda c: "-".join(map(str, c["sizes"])))
def test_mlp_contract_init_shapes_and_apply_output(config):
    net = jaxreg.mlp(**config)
    sizes, n_layers = config["sizes"], len(config["sizes"]) - 1
    assert (net.input_shape, net.output_size) == ((sizes[0],), sizes[-1])
    assert net.num_dropout == net.num_dropconnect == n_layers
    params = init_shapes(net)
    expected = {f"dense_{i}": dict(w=((n_in, n_out), jnp.float32),
                                   **({"b": ((n_out,), jnp.float32)} if config["bias"] else {}))
                for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))}
    assert shapes(params) == expected
    x = jax.ShapeDtypeStruct((7, sizes[0]), jnp.float32)
    per_layer = np.linspace(0.0, 0.5, n_layers, dtype=np.float32)
    for kwargs in ({}, dict(dropout=per_layer, dropconnect=per_layer), dict(dropout=0.2, logits=True),
                   dict(dropout=0.2, logits=False)):
        out = trace_apply(net, params, x, **kwargs)
        assert (out.shape, out.dtype) == ((7, sizes[-1]), jnp.float32)
    for name in ("dropout", "dropconnect"):
        with pytest.raises(jaxreg.InputError) as info:
            trace_apply(net, params, x, **{name: np.zeros(n_layers + 1)})
        assert str(info.value) == (
            f"{name}: expected a scalar or {n_layers} per-layer rates, got shape ({n_layers + 1},)")


CNN_CONFIGS = [
    dict(input_shape=(8, 8, 1), num_outputs=10, channels=(4, 8), hidden=(16,)),
    dict(input_shape=(7, 7, 2), num_outputs=3, channels=(3,), hidden=(), pool="avg", kernel_size=2),
    dict(input_shape=(5, 6, 3), num_outputs=2, channels=(2, 3, 4), hidden=(8, 6), kernel_size=5,
         output="softmax"),
]


@pytest.mark.parametrize("config", CNN_CONFIGS, ids=lambda c: "x".join(map(str, c["input_shape"])))
def test_cnn_contract_init_shapes_and_apply_output(config):
    net = jaxreg.cnn(**config)
    h, w, c_in = config["input_shape"]
    channels, hidden, k = config["channels"], config["hidden"], config.get("kernel_size", 3)
    assert net.input_shape == (h, w, c_in) and net.output_size == config["num_outputs"]
    assert net.num_dropout == 1 + len(channels) + len(hidden)
    assert net.num_dropconnect == len(channels) + len(hidden) + 1
    flat = ceil_half(h, len(channels)) * ceil_half(w, len(channels)) * channels[-1]
    dense = (flat, *hidden, config["num_outputs"])
    expected = ({f"conv_{i}": ((k, k, c_prev, c_out), (c_out,))
                 for i, (c_prev, c_out) in enumerate(zip((c_in, *channels), channels))}
                | {f"dense_{j}": ((n_in, n_out), (n_out,)) for j, (n_in, n_out) in enumerate(zip(dense[:-1], dense[1:]))})
    params = init_shapes(net)
    assert {name: (layer["w"].shape, layer["b"].shape) for name, layer in params.items()} == expected
    n_drop, n_connect = net.num_dropout, net.num_dropconnect
    # Flattened inputs are accepted too, so one data array serves MLPs and CNNs.
    for x in (jax.ShapeDtypeStruct((5, h, w, c_in), jnp.float32), jax.ShapeDtypeStruct((5, h * w * c_in), jnp.float32)):
        for kwargs in ({}, dict(dropout=np.full(n_drop, 0.3), dropconnect=np.full(n_connect, 0.3))):
            assert trace_apply(net, params, x, **kwargs).shape == (5, config["num_outputs"])
        for name, n in (("dropout", n_drop), ("dropconnect", n_connect)):
            with pytest.raises(jaxreg.InputError) as info:
                trace_apply(net, params, x, **{name: np.zeros(n - 1)})
            assert str(info.value) == f"{name}: expected a scalar or {n} per-layer rates, got shape ({n - 1},)"


def test_init_honours_dtype(x64):
    for net in (jaxreg.mlp((3, 4, 2), dtype=jnp.float64),
                jaxreg.cnn((4, 4, 1), 2, channels=(2,), hidden=(), dtype=jnp.float64)):
        params = init_shapes(net)
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float64)}


# ---------------------------------------------------------------- oracle

@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_forward_matches_numpy(x64, activation, output):
    net = jaxreg.mlp((4, 6, 5, 3), activation=activation, output=output, dtype=jnp.float64)
    params = random_params(init_shapes(net), seed=1)
    x = np.random.default_rng(2).normal(size=(8, 4))
    out, state = net.apply(jax.tree_util.tree_map(jnp.asarray, params), {}, jnp.asarray(x), logits=False)
    assert out.dtype == jnp.float64 and state == {}
    np.testing.assert_allclose(out, np_dense_stack(named(params, "dense"), x, activation, output),
                               rtol=1e-12, atol=1e-12)


def test_mlp_without_bias_and_logits_match_numpy(x64):
    net = jaxreg.mlp((4, 6, 3), activation="tanh", output="softmax", bias=False, dtype=jnp.float64)
    params = random_params(init_shapes(net), seed=3)
    x = np.random.default_rng(4).normal(size=(5, 4))
    expected = np_dense_stack(named(params, "dense"), x, "tanh", "linear")
    # Logits are the default output of apply, and what logits=True asks for explicitly.
    for kwargs in ({}, dict(logits=True)):
        logits, _ = net.apply(jax.tree_util.tree_map(jnp.asarray, params), {}, jnp.asarray(x), **kwargs)
        np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12)


def test_an_mlp_takes_images_as_one_row_each(x64):
    net = jaxreg.mlp((12, 6, 3), activation="tanh", dtype=jnp.float64)
    params = random_params(init_shapes(net), seed=5)
    x = np.random.default_rng(6).normal(size=(5, 2, 3, 2))  # (n, H, W, C): the numpy oracle on rows
    out, _ = net.apply(jax.tree_util.tree_map(jnp.asarray, params), {}, jnp.asarray(x))
    np.testing.assert_allclose(out, np_dense_stack(named(params, "dense"), x.reshape(5, 12), "tanh", "linear"),
                               rtol=1e-12, atol=1e-12)


CNN_ORACLE_CASES = [
    pytest.param((8, 8, 1), (3, 4), 3, "relu", "max", (5,), "linear", id="8x8x1-max"),
    pytest.param((8, 8, 1), (3, 4), 3, "tanh", "avg", (5,), "softmax", id="8x8x1-avg"),
    pytest.param((7, 7, 2), (3, 2), 3, "relu", "max", (6, 4), "sigmoid", id="7x7x2-max"),
    pytest.param((7, 7, 2), (3,), 2, "sigmoid", "max", (), "linear", id="7x7x2-max-k2"),
    pytest.param((7, 7, 2), (3, 2), 3, "relu", "avg", (6, 4), "linear", id="7x7x2-avg"),
]


@pytest.mark.parametrize("input_shape, channels, kernel_size, activation, pool, hidden, output",
                         CNN_ORACLE_CASES)
def test_cnn_forward_matches_numpy(x64, input_shape, channels, kernel_size, activation, pool, hidden, output):
    net = jaxreg.cnn(input_shape, 3, channels=channels, kernel_size=kernel_size, pool=pool,
                     hidden=hidden, activation=activation, output=output, dtype=jnp.float64)
    params = random_params(init_shapes(net), seed=5)
    x = np.random.default_rng(6).normal(size=(4, *input_shape))
    apply = jax.jit(lambda p, x: net.apply(p, {}, x, logits=False)[0], compiler_options=FAST_COMPILE)
    out = apply(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(x))
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, np_cnn(params, x, len(channels), activation, pool, output),
                               rtol=1e-10, atol=1e-10)


def test_cnn_avg_pool_of_a_constant_odd_sized_map_is_constant():
    # 1x1 identity conv, linear activation, dense weights of ones: the output sums the pooled map.
    # Regression: edge windows of odd-sized maps once divided by 4, counting the zero padding.
    net = jaxreg.cnn((3, 3, 1), 1, channels=(1,), kernel_size=1, hidden=(), activation="linear", pool="avg")
    params = {"conv_0": {"w": jnp.ones((1, 1, 1, 1)), "b": jnp.zeros(1)},
              "dense_0": {"w": jnp.ones((4, 1)), "b": jnp.zeros(1)}}
    # Pooled 3x3 ones -> 2x2 ones, sum 4 (with the padding counted: 1 + 0.5 + 0.5 + 0.25 = 2.25).
    np.testing.assert_allclose(net.apply(params, {}, jnp.ones((1, 3, 3, 1)))[0], [[4.0]])


# ---------------------------------------------------------------- dropout and DropConnect plumbing

# tiny_mlp (8-8-8-8, tanh) and tiny_cnn (4x4x1, one conv block, one hidden layer) come from
# conftest.py, compiled once per session with per-layer rate vectors as arguments.
MODELS = ["tiny_mlp", "tiny_cnn"]
# Identity weights and zero biases for tiny_mlp: float32 like its params, so no retrace.
IDENTITY = {f"dense_{i}": {"w": np.eye(8, dtype=np.float32), "b": np.zeros(8, np.float32)} for i in range(3)}


def one_hot_rate(n, i, rate=0.9):
    """A per-layer rate vector with ``rate`` at layer ``i`` and 0 elsewhere (NumPy: no compile)."""
    rates = np.zeros(n, np.float32)
    rates[i] = rate
    return rates


@pytest.mark.parametrize("model", MODELS)
def test_evaluation_without_key_ignores_rates(model, request):
    net, params, x, *_ = request.getfixturevalue(model)
    reference = np.asarray(net.apply(params, {}, x)[0])
    for rates in (dict(dropout=0.5), dict(dropconnect=0.5),
                  dict(dropout=np.full(net.num_dropout, 0.9), dropconnect=np.full(net.num_dropconnect, 0.3))):
        np.testing.assert_array_equal(net.apply(params, {}, x, **rates)[0], reference)
        # Evaluation (train=False) never drops, even when given a key.
        np.testing.assert_array_equal(net.apply(params, {}, x, key=jax.random.key(9), **rates)[0], reference)
        np.testing.assert_array_equal(
            net.apply(params, {}, x, key=jax.random.key(9), train=False, **rates)[0], reference)


@pytest.mark.parametrize("model", MODELS)
def test_training_mode_without_a_key_is_an_error(model, request):
    net, params, x, *_ = request.getfixturevalue(model)
    for rates in ({}, dict(dropout=0.5)):
        with pytest.raises(jaxreg.InputError) as info:
            net.apply(params, {}, x, train=True, **rates)
        assert str(info.value) == "key: expected a jax PRNG key when train=True, got None"


@pytest.mark.parametrize("model", MODELS)
def test_training_with_rates_and_a_key_changes_outputs(model, request):
    net, params, x, train, *_ = request.getfixturevalue(model)
    # NumPy rate vectors: building them needs no compile, and they hit the same trace.
    zeros_drop, zeros_connect = np.zeros(net.num_dropout, np.float32), np.zeros(net.num_dropconnect, np.float32)
    key = jax.random.key(2)
    reference = np.asarray(net.apply(params, {}, x)[0])
    np.testing.assert_allclose(train(params, x, key, zeros_drop, zeros_connect), reference, rtol=1e-6, atol=1e-6)
    for i in range(net.num_dropout):  # every entry of the per-layer vector is used
        out = train(params, x, key, one_hot_rate(net.num_dropout, i), zeros_connect)
        assert not np.allclose(out, reference), f"dropout[{i}] had no effect"
    for i in range(net.num_dropconnect):
        out = train(params, x, key, zeros_drop, one_hot_rate(net.num_dropconnect, i))
        assert not np.allclose(out, reference), f"dropconnect[{i}] had no effect"


def test_per_layer_dropout_vector_targets_its_layer(tiny_mlp):
    net, params, x, train, *_ = tiny_mlp
    key, no_connect = jax.random.key(3), np.zeros(3, np.float32)
    hidden_only = np.asarray(train(params, x, key, one_hot_rate(3, 1), no_connect))
    input_only = np.asarray(train(params, x, key, one_hot_rate(3, 0), no_connect))
    assert not np.allclose(hidden_only, input_only)


def test_each_dropout_rate_drops_the_input_of_its_own_layer(tiny_mlp):
    """With identity weights and zero biases the tanh network is transparent enough to see
    where units were dropped: out = tanh(tanh(x)) undisturbed, and a unit dropped (and the
    survivors scaled by 2 at rate 0.5) at layer i's input shows up in that unit's output."""
    net, _, _, train, *_ = tiny_mlp
    x = np.random.default_rng(4).uniform(0.05, 0.3, (8, 8)).astype(np.float32)
    scaled_at = [np.tanh(np.tanh(2 * x)), np.tanh(2 * np.tanh(x)), 2 * np.tanh(np.tanh(x))]
    for layer in range(3):
        out = np.asarray(train(IDENTITY, x, jax.random.key(layer), one_hot_rate(3, layer, 0.5), np.zeros(3, np.float32)))
        dropped = out == 0
        assert 0 < dropped.sum() < dropped.size, f"layer {layer}"
        np.testing.assert_allclose(out[~dropped], scaled_at[layer][~dropped], rtol=1e-5, err_msg=f"layer {layer}")


def test_layers_draw_independent_masks(tiny_mlp):
    """Through the transparent identity network a unit's output is zero iff it was dropped
    somewhere; dropping at a second layer with the same key must drop further units (a key
    reused across layers of equal shape would redraw the same mask)."""
    net, _, _, train, *_ = tiny_mlp
    x, key = np.full((8, 8), 0.2, np.float32), jax.random.key(5)
    zeros = np.zeros(3, np.float32)
    dropped = {}
    for layers in ((0,), (1,), (2,), (0, 1), (0, 2), (1, 2)):
        rates = zeros.copy()
        rates[list(layers)] = 0.5
        dropped[layers] = np.asarray(train(IDENTITY, x, key, rates, zeros)) == 0
    for i, j in ((0, 1), (0, 2), (1, 2)):
        np.testing.assert_array_equal(dropped[i, j], dropped[i,] | dropped[j,])
        assert not np.array_equal(dropped[i,], dropped[j,]), f"layers {i} and {j} drew the same mask"
    # DropConnect masks of equal-shaped weight matrices must differ between layers too: with
    # identity weights, dropping the diagonal weight of unit u at any layer zeroes unit u.
    # Four keys give 32 diagonal weights per layer, so a chance coincidence is negligible.
    connect_dropped = [np.concatenate([
        (np.asarray(train(IDENTITY, x, k, zeros, one_hot_rate(3, layer, 0.5))) == 0).all(axis=0)
        for k in jax.random.split(key, 4)]) for layer in range(3)]
    assert all(0 < mask.sum() < mask.size for mask in connect_dropped)
    assert len({mask.tobytes() for mask in connect_dropped}) == 3, "layers drew the same DropConnect mask"


# ---------------------------------------------------------------- relu_book and inits

def test_relu_book_forward_is_relu_but_its_gradient_is_the_identity():
    x = jnp.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(jaxreg.relu_book(x), jax.nn.relu(x))
    np.testing.assert_array_equal(jax.grad(lambda v: jaxreg.relu_book(v).sum())(x), np.ones(5))
    np.testing.assert_array_equal(jax.grad(lambda v: jax.nn.relu(v).sum())(x), [0, 0, 0, 1, 1])


@functools.cache
def variance_scaling_weights():
    """One (1000, 500) weight matrix per scheme, drawn in one compiled program."""
    nets = {init: jaxreg.mlp((1000, 500), init=init, bias=False) for init in VARIANCE_SCALING}
    draw = jax.jit(lambda key: {init: net.init(key)[0]["dense_0"]["w"] for init, net in nets.items()},
                   compiler_options=FAST_COMPILE)
    return {init: np.asarray(w) for init, w in draw(jax.random.key(0)).items()}


def test_uniform_init_stays_within_scale_with_uniform_std():
    net = jaxreg.mlp((1000, 500), init="uniform", init_scale=0.3)
    params, state = net.init(jax.random.key(0))
    assert set(params) == {"dense_0"} and state == {}
    np.testing.assert_array_equal(params["dense_0"]["b"], np.zeros(500))  # biases start at zero
    w = np.asarray(params["dense_0"]["w"])
    assert not np.array_equal(net.init(jax.random.key(1))[0]["dense_0"]["w"], w)
    assert np.abs(w).max() <= 0.3 and np.abs(w).max() > 0.299
    assert abs(w.std() / (0.3 / np.sqrt(3)) - 1) < 0.05 and abs(w.mean()) < 0.01


VARIANCE_SCALING = {"he_normal": np.sqrt(2 / 1000), "he_uniform": np.sqrt(2 / 1000),
                    "glorot_normal": np.sqrt(2 / 1500), "glorot_uniform": np.sqrt(2 / 1500)}


@pytest.mark.parametrize("init, std", VARIANCE_SCALING.items())
def test_variance_scaling_inits_have_the_promised_std(init, std):
    w = variance_scaling_weights()[init]  # fan_in 1000, fan_out 500: He and Glorot differ by 22%
    assert abs(w.std() / std - 1) < 0.05 and abs(w.mean()) < 0.05 * std
    if init.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3) * std * (1 + 1e-6)


def test_numpy_uniform_init_replays_the_book_exactly():
    state = np.random.get_state()
    try:
        np.random.seed(1)
        w01 = 0.2 * np.random.random((784, 40)) - 0.1
        w12 = 0.2 * np.random.random((40, 10)) - 0.1
    finally:
        np.random.set_state(state)
    params = jaxreg.numpy_uniform_init((784, 40, 10), seed=1)
    assert {name: set(layer) for name, layer in params.items()} == {"dense_0": {"w"}, "dense_1": {"w"}}
    np.testing.assert_array_equal(params["dense_0"]["w"], w01)
    np.testing.assert_array_equal(params["dense_1"]["w"], w12)
    assert params["dense_0"]["w"].dtype == np.float64
    # Named as mlp names its layers: the book's init fits a bias-free mlp's params as they are.
    net = jaxreg.mlp((784, 40, 10), bias=False, dtype=jnp.float64)
    with jax.enable_x64(True):
        assert shapes(init_shapes(net)) == shapes(jax.tree_util.tree_map(jnp.asarray, params))


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make, message", [
    (lambda: jaxreg.mlp((3, 4), activation="gelu"),
     "activation: expected one of 'relu', 'relu_book', 'tanh', 'sigmoid', 'linear', got 'gelu'"),
    (lambda: jaxreg.mlp((3, 4), output="tanh"),
     "output: expected one of 'linear', 'sigmoid', 'softmax', got 'tanh'"),
    (lambda: jaxreg.mlp((3, 4), init="zeros"),
     "init: expected one of 'uniform', 'he_normal', 'he_uniform', 'glorot_normal', 'glorot_uniform', got 'zeros'"),
    (lambda: jaxreg.mlp((784, 0, 10)), "sizes: expected positive integers, got [784, 0, 10]"),
    (lambda: jaxreg.mlp((784, -4, 10)), "sizes: expected positive integers, got [784, -4, 10]"),
    (lambda: jaxreg.mlp((784, 40.0, 10)), "sizes: expected positive integers, got [784, 40.0, 10]"),
    (lambda: jaxreg.mlp((784, True)), "sizes: expected positive integers, got [784, True]"),
    (lambda: jaxreg.mlp((784,)), "sizes: expected at least an input and an output size, got [784]"),
    (lambda: jaxreg.cnn((8, 8), 10), "input_shape: expected (height, width, channels), got [8, 8]"),
    (lambda: jaxreg.cnn((8, 0, 1), 10), "input_shape: expected positive integers, got [8, 0, 1]"),
    (lambda: jaxreg.cnn((8, 8, 1), 0), "num_outputs: expected a positive integer, got 0"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, channels=(4, 0)), "channels: expected positive integers, got [4, 0]"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, hidden=(0,)), "hidden: expected positive integers, got [0]"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, kernel_size=0), "kernel_size: expected a positive integer, got 0"),
    (lambda: jaxreg.mlp((2, 1), init="uniform", init_scale=0.0), "init_scale: expected a finite number > 0, got 0.0"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, init_scale=float("inf")), "init_scale: expected a finite number > 0, got inf"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, pool="min"), "pool: expected one of 'max', 'avg', got 'min'"),
    (lambda: jaxreg.cnn((8, 8, 1), 10, activation="gelu"),
     "activation: expected one of 'relu', 'relu_book', 'tanh', 'sigmoid', 'linear', got 'gelu'"),
    (lambda: jaxreg.numpy_uniform_init((784, 0)), "sizes: expected positive integers, got [784, 0]"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_arguments_give_exact_messages(make, message):
    with pytest.raises(jaxreg.InputError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize("rates, message", [
    (dict(dropout=1.5), "dropout: expected a drop probability in [0, 1), got 1.5"),
    (dict(dropconnect=-0.1), "dropconnect: expected a drop probability in [0, 1), got -0.1"),
    (dict(dropout=[0.0, 1.0]), "dropout: expected a drop probability in [0, 1), got [0.0, 1.0]"),
    (dict(dropout=np.zeros((2, 2))), "dropout: expected a scalar or 2 per-layer rates, got shape (2, 2)"),
])
def test_apply_rejects_bad_rates_by_argument_name(rates, message):
    net = jaxreg.mlp((3, 4, 2))
    params = init_shapes(net)
    for key in (jax.random.key(1), None):  # training mode and evaluation check rates alike
        with pytest.raises(jaxreg.InputError) as info:
            jax.eval_shape(lambda p: net.apply(p, {}, jnp.ones((2, 3)), key=key, train=key is not None, **rates),
                           params)
        assert str(info.value) == message
