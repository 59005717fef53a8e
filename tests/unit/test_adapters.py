"""Flax, Equinox and plain function pairs through jaxreg's contract: training, penalty masks by
role, errors for a missing key or an empty mask, and ``as_model``'s dispatch."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg.data import Split

NO_KEY = "key: expected a jax PRNG key when train=True, got None"


class FlaxMLP(nn.Module):
    """Kernels named ``kernel``, as Flax calls them."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(32)(x)))


class FlaxBatchNormDropout(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(32)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Dropout(0.2, deterministic=not train)(nn.relu(x))
        return nn.Dense(10)(x)


class EquinoxLinear(eqx.Module):
    """A user-defined Equinox module (not one of equinox's own classes)."""

    layer: eqx.nn.Linear

    def __init__(self, key):
        self.layer = eqx.nn.Linear(64, 10, key=key)

    def __call__(self, x):
        return self.layer(x)


def init_pair(key):
    k1, k2 = jax.random.split(key)
    return {"hidden": {"weight": jax.random.normal(k1, (64, 32)) * 0.1, "bias": jnp.zeros(32)},
            "out": {"weight": jax.random.normal(k2, (32, 10)) * 0.1, "bias": jnp.zeros(10)}}


def apply_pair(params, x):
    h = jax.nn.relu(x @ params["hidden"]["weight"] + params["hidden"]["bias"])
    return h @ params["out"]["weight"] + params["out"]["bias"]


ADAPTED = {
    "flax": lambda: jaxreg.from_flax(FlaxMLP(), (64,)),
    "equinox": lambda: jaxreg.from_equinox(lambda key: eqx.nn.MLP(64, 10, 32, 1, key=key), (64,)),
    "functions": lambda: jaxreg.from_functions(init_pair, apply_pair, (64,)),
}


@pytest.fixture(scope="module")
def digits():
    return jaxreg.data.load("digits", key=0, n_train=200)


def take(tree, i):
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[i], tree)


def tree_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def weight_leaves(params):
    """The leaves with two or more dimensions, found by walking the tree, not by name."""
    return [np.asarray(leaf, np.float64) for leaf in jax.tree_util.tree_leaves(params) if np.ndim(leaf) >= 2]


# ------------------------------------------------------------------------------ training

@pytest.mark.parametrize("kind", list(ADAPTED))
def test_adapted_models_train_with_l2(kind, digits):
    model = ADAPTED[kind]()
    assert model.output_size == 10 and model.num_dropout == 0
    config = jaxreg.TrainConfig(model=model, optimizer="momentum", epochs=2, batch_size=50)
    l2s = (0.0, 0.01, 0.1)
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, learning_rate=0.05, l2=l2) for l2 in l2s])
    result = jaxreg.train_batch(config, digits)(np.zeros(len(l2s), int), hps)  # same init for all
    assert not result.diverged.any()
    val_loss = result.final["val_loss"]
    assert np.isfinite(val_loss).all() and len(set(val_loss.tolist())) == len(l2s)
    members = [take(result.params, i) for i in range(len(l2s))]
    assert not tree_equal(members[0], members[1]) and not tree_equal(members[1], members[2])
    assert result.final["penalty"][0] == 0
    for i, l2 in enumerate(l2s):
        weights = weight_leaves(members[i])
        assert len(weights) == 2
        # The engine penalizes exactly the leaves with two or more dimensions, whatever their name.
        norm = np.sqrt(sum(np.sum(w ** 2) for w in weights))
        np.testing.assert_allclose(result.final["weight_norm"][i], norm, rtol=1e-5)
        np.testing.assert_allclose(result.final["penalty"][i], 0.5 * l2 * norm ** 2, rtol=1e-5)
        if l2 > 0:
            assert result.final["penalty"][i] > 0 and result.final["weight_norm"][i] > 0
    # Stronger L2, smaller weights.
    assert result.final["weight_norm"][0] > result.final["weight_norm"][1] > result.final["weight_norm"][2]


def test_flax_batch_norm_and_dropout_train_and_evaluate_deterministically(digits):
    model = jaxreg.from_flax(FlaxBatchNormDropout(), (64,))
    config = jaxreg.TrainConfig(model=model, optimizer="momentum", epochs=2, batch_size=50)
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, learning_rate=0.05, l2=l2) for l2 in (0.0, 0.01)])
    result = jaxreg.train_batch(config, digits)(np.zeros(2, int), hps)
    assert not result.diverged.any()
    _, init_state = model.init(jax.random.split(jaxreg.member_key(0), 3)[0])
    assert set(init_state) == {"batch_stats"}
    state = take(result.model_state, 0)
    assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(init_state)
    assert not tree_equal(state, init_state)  # the running statistics moved during training

    params, x = take(result.params, 0), jnp.asarray(digits.val.x)
    first, state_after = model.apply(params, state, x)
    second, _ = model.apply(params, state, x, key=jax.random.key(1), train=False)
    np.testing.assert_array_equal(first, second)  # evaluation: no dropout, no key needed
    assert tree_equal(state_after, state)  # and it leaves the statistics alone
    trained_a, _ = model.apply(params, state, x, key=jax.random.key(1), train=True)
    trained_b, _ = model.apply(params, state, x, key=jax.random.key(2), train=True)
    assert not np.array_equal(trained_a, trained_b)  # training mode does drop
    # The reported metrics are those of the returned params and statistics.
    metrics = jaxreg.evaluate(model, params, state, x, [("val", jnp.asarray(digits.val.y))],
                              jaxreg.softmax_cross_entropy)
    np.testing.assert_allclose(float(metrics["val_loss"]), result.final["val_loss"][0], rtol=1e-5)


# ------------------------------------------------------------------------- masks by role

MASKED = {**ADAPTED,
          "flax_batch_norm": lambda: jaxreg.from_flax(FlaxBatchNormDropout(), (64,)),
          "mlp": lambda: jaxreg.mlp((64, 32, 16, 10)),
          "cnn": lambda: jaxreg.cnn((8, 8, 1), 10, channels=(4, 8), hidden=(16,))}
EXPECTED_WEIGHTS = {"flax": 2, "equinox": 2, "functions": 2, "flax_batch_norm": 2, "mlp": 3, "cnn": 4}


@pytest.mark.parametrize("kind", list(MASKED))
def test_default_mask_selects_every_leaf_with_two_or_more_dimensions(kind):
    model = MASKED[kind]()
    params, _ = model.init(jax.random.key(0))
    for mask in (jaxreg.weights_mask(params), jaxreg.TrainConfig(model=model).mask(params)):
        pairs = list(zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(mask)))
        assert len(pairs) == len(jax.tree_util.tree_leaves(params))
        for leaf, selected in pairs:
            assert bool(selected) == (np.ndim(leaf) >= 2), (np.shape(leaf), selected)
        assert sum(bool(selected) for _, selected in pairs) == EXPECTED_WEIGHTS[kind]
        assert any(np.ndim(leaf) == 1 for leaf, _ in pairs)  # biases exist and are left out


# ------------------------------------------------------------------------------- errors

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def tiny_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)), rng.integers(0, 3, 10).astype(np.int32)
    return jaxreg.Data(Split(x[:6], y[:6]), Split(x[6:], y[6:]), Split(x[:0], y[:0]))


def no_weights():
    return jaxreg.from_functions(lambda key: {"scale": jnp.ones(3), "shift": jnp.zeros(3)},
                                 lambda params, x: x * params["scale"] + params["shift"], (3,))


def mask_message(name, value):
    return (f"hparams.{name}: expected 0 when the penalty mask selects no params (the model has no leaf "
            f"with two or more dimensions, or penalty_mask selects none), got {value}")


def select_nothing(params):
    return jax.tree_util.tree_map(lambda _: False, params)


@pytest.mark.parametrize("case", ["callable_mask", "bool_mask", "no_weights_l2", "no_weights_l1",
                                  "no_weights_weight_decay"])
def test_penalty_with_empty_mask_is_an_error_before_any_compute(case):
    net = jaxreg.mlp((3, 4, 3))
    params, _ = net.init(jax.random.key(0))
    if case == "callable_mask":
        config, values, name = (jaxreg.TrainConfig(model=net, batch_size=None, penalty_mask=select_nothing),
                                {"l2": 0.01}, "l2")
    elif case == "bool_mask":
        config, values, name = (jaxreg.TrainConfig(model=net, batch_size=None, penalty_mask=select_nothing(params)),
                                {"l1": 0.02, "l2": 0.0}, "l1")
    else:
        name = case.removeprefix("no_weights_")
        config, values = jaxreg.TrainConfig(model=no_weights(), batch_size=None), {name: 0.03}
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(config.model, **values)] * 2)
    program = f"jit({jaxreg.compiled_segments(config).__name__})"
    compiled = []

    def listener(event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            compiled.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        with pytest.raises(jaxreg.InputError) as raised:
            jaxreg.train_batch(config, tiny_data(), chunk_size=2)(np.arange(2), hps)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert str(raised.value) == mask_message(name, values[name])
    assert "\n" not in str(raised.value)
    assert program not in compiled  # raised before the training program was compiled


def test_penalty_without_weights_is_fine_when_biases_are_penalized():
    config = jaxreg.TrainConfig(model=no_weights(), penalize_bias=True)
    jaxreg.check_hparams(config, jaxreg.stack_hparams([jaxreg.make_hparams(config.model, l2=0.01)]))


@pytest.mark.parametrize("kind", list(MASKED))
def test_training_mode_without_a_key_is_an_error(kind):
    model = MASKED[kind]()
    params, state = model.init(jax.random.key(0))
    # float32 as the params: a float64 spec run earlier in the session turns JAX's x64 mode on
    # process-wide (build_model), and jnp.zeros would then be float64
    x = jnp.zeros((2, *model.input_shape), jnp.float32)
    with pytest.raises(jaxreg.InputError) as raised:
        model.apply(params, state, x, train=True)
    assert str(raised.value) == NO_KEY
    logits, _ = model.apply(params, state, x)  # evaluation needs no key
    assert logits.shape == (2, 10)


# ------------------------------------------------------------------------------ as_model

def outputs(model, key=0):
    params, state = model.init(jax.random.key(key))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, *model.input_shape)), jnp.float32)
    return np.asarray(model.apply(params, state, x)[0])


def test_as_model_returns_a_model_as_is():
    model = jaxreg.mlp((3, 2))
    assert jaxreg.as_model(model) is model
    assert jaxreg.as_model(model, (3,)) is model


@pytest.mark.parametrize("make, reference", [
    (lambda: nn.Dense(10), lambda: jaxreg.from_flax(nn.Dense(10), (64,))),
    (lambda: eqx.nn.MLP(64, 10, 32, 1, key=jax.random.key(5)),
     lambda: jaxreg.from_equinox(eqx.nn.MLP(64, 10, 32, 1, key=jax.random.key(5)), (64,))),
    (lambda: EquinoxLinear(jax.random.key(6)), lambda: jaxreg.from_equinox(EquinoxLinear(jax.random.key(6)), (64,))),
    (lambda: (init_pair, apply_pair), lambda: jaxreg.from_functions(init_pair, apply_pair, (64,))),
], ids=["flax_builtin", "equinox_builtin", "equinox_user_class", "function_pair"])
def test_as_model_dispatches_each_kind(make, reference):
    model = jaxreg.as_model(make(), (64,))
    assert isinstance(model, jaxreg.Model) and model.input_shape == (64,) and model.output_size == 10
    np.testing.assert_array_equal(outputs(model), outputs(reference()))


def test_as_model_dispatches_a_user_defined_flax_module():
    # A subclass of nn.Module lives in the user's module: dispatch must look at its bases.
    model = jaxreg.as_model(FlaxMLP(), (64,))
    np.testing.assert_array_equal(outputs(model), outputs(jaxreg.from_flax(FlaxMLP(), (64,))))


def test_as_model_dispatches_a_function_that_builds_an_equinox_module():
    def make(key):
        return eqx.nn.MLP(64, 10, 32, 1, key=key)

    model = jaxreg.as_model(make, (64,))
    np.testing.assert_array_equal(outputs(model, key=3), outputs(jaxreg.from_equinox(make, (64,)), key=3))
    assert not np.array_equal(outputs(model, key=3), outputs(model, key=4))  # each key its own init


@pytest.mark.parametrize("thing, name", [(42, "int"), ("mlp", "str"), ((1, 2), "tuple"),
                                         ((init_pair, apply_pair, None), "tuple"), (init_pair, "function")])
def test_as_model_rejects_other_objects(thing, name):
    with pytest.raises(jaxreg.InputError) as raised:
        jaxreg.as_model(thing, (64,))
    assert str(raised.value) == (f"model: expected a jaxreg.Model, a flax.linen.Module, an equinox.Module "
                                 f"(or a function key -> equinox.Module) or an (init, apply) pair, got {name}")


def test_as_model_needs_the_input_shape_to_wrap():
    with pytest.raises(jaxreg.InputError) as raised:
        jaxreg.as_model(nn.Dense(10))
    assert str(raised.value) == "input_shape: expected the shape of one example to wrap a Dense, got None"
