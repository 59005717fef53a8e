"""Small checks of the engine's pieces that the mutation run (tests/mutation/) found untested.

Each asserts a documented behaviour against numbers worked out by hand or in NumPy.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg
from jaxreg import early_stopping, penalties, step
from jaxreg.layout import all_finite, layout

# NumPy at import time: the mutation run forks workers after collecting the tests, and a JAX
# backend started before a fork hangs the workers.
PARAMS = {"w": np.array([[1.0, -2.0]], np.float32), "b": np.array([3.0, -0.05], np.float32)}
BIAS_ONLY = {"w": False, "b": True}


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


def test_prox_l1_resolves_a_callable_or_default_mask_on_the_params():
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    everything = penalties.prox_l1(params, 0.1, penalties.all_params_mask)
    np.testing.assert_allclose(everything["w"], [[0.9, -1.9]], rtol=1e-6)
    np.testing.assert_allclose(everything["b"], [2.9, 0.0], rtol=1e-6)
    weights = penalties.prox_l1(params, 0.1)  # default: leaves of 2+ dims only
    np.testing.assert_allclose(weights["w"], [[0.9, -1.9]], rtol=1e-6)
    np.testing.assert_array_equal(weights["b"], PARAMS["b"])


def test_proximal_l1_state_is_its_empty_named_tuple():
    state = penalties.proximal_l1(0.1).init({"w": jnp.ones((2, 2))})
    assert isinstance(state, penalties.ProximalL1State) and state == ()


# --- spatial dropout --------------------------------------------------------------------------

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


# --- TrainConfig's penalty mask ---------------------------------------------------------------

def test_a_pytree_penalty_mask_is_frozen_hashable_and_returned_whole():
    model = jaxreg.mlp((3, 2))
    mask = {"dense_0": {"w": True, "b": np.bool_(False)}}
    config = jaxreg.TrainConfig(model=model, penalty_mask=mask)
    same = jaxreg.TrainConfig(model=model, penalty_mask={"dense_0": {"w": True, "b": False}})
    other = jaxreg.TrainConfig(model=model, penalty_mask={"dense_0": {"w": False, "b": True}})
    assert config == same and hash(config) == hash(same) and config != other
    assert config.penalty_mask != mask  # a FrozenMask equals only a FrozenMask
    params = model.init(jax.random.key(0))[0]
    assert config.mask(params) == {"dense_0": {"w": True, "b": False}}
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.TrainConfig(model=model, penalty_mask={"a": 1.0, "b": True, "c": "x", "d": 2})
    assert str(error.value) == ("penalty_mask: expected a pytree of bools (one per params leaf) or a callable "
                                "params -> mask, got leaves ['float', 'bool', 'str']")


def test_selects_anything_looks_at_every_element_of_every_leaf():
    assert not penalties.selects_anything({"a": False, "b": np.zeros((2, 2))})
    assert penalties.selects_anything({"a": False, "b": np.array([0, 0, 1])})
    assert penalties.selects_anything({"a": True})
    assert not penalties.selects_anything({})


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


# --- make_train: which rates reach the model, and as_data -------------------------------------

def _train_members(config, rates):
    """Trains one member per (dropout, dropconnect) pair from the same key and init."""
    model = config.model
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, learning_rate=0.5, dropout=d, dropconnect=c)
                                for d, c in rates])
    rng = np.random.default_rng(0)
    split = lambda n: jaxreg.data.Split(rng.normal(size=(n, 3)).astype(np.float32),
                                        rng.integers(0, 3, n).astype(np.int32))
    data = jaxreg.train.Data(split(8), split(4), split(0))
    train = jax.jit(jax.vmap(jaxreg.make_train(config), in_axes=(None, 0, None, None)))
    return train(jax.random.key(0), hps, data, None).params


def test_the_dropout_and_dropconnect_flags_decide_whether_rates_reach_the_model():
    model = jaxreg.mlp((3, 4, 3))
    base = dict(model=model, loss="cross_entropy", epochs=2, batch_size=None)
    on = _train_members(jaxreg.TrainConfig(**base, dropout=True, dropconnect=True),
                        [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)])
    w = np.asarray(on["dense_0"]["w"])
    assert not np.array_equal(w[1], w[0]) and not np.array_equal(w[2], w[0])
    off = _train_members(jaxreg.TrainConfig(**base, dropout=False, dropconnect=False),
                         [(0.0, 0.0), (0.5, 0.5)])
    np.testing.assert_array_equal(off["dense_0"]["w"][1], off["dense_0"]["w"][0])


def test_as_data_takes_the_three_splits_with_int32_labels():
    split = lambda n: SimpleNamespace(x=np.ones((n, 2)), y=np.arange(n, dtype=np.int64))
    data = jaxreg.as_data(SimpleNamespace(train=split(3), val=split(2), test=split(1)))
    assert [s.y.dtype for s in data] == [np.int32] * 3 and data.val.y.tolist() == [0, 1]
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.as_data(SimpleNamespace(train=split(3), test=split(1)))
    assert str(error.value) == ("data: expected a jaxreg.data.Dataset or Data with train, val and test splits, "
                                "got SimpleNamespace without 'val'")


# --- early stopping, layout, guard, zero fraction -----------------------------------------------

def test_early_stopping_state_keeps_its_dtypes_under_x64(x64):
    state = early_stopping.init(jnp.float32)
    assert state.best_value.dtype == jnp.float32 and state.wait.dtype == jnp.float32
    assert state.best_epoch.dtype == jnp.int32 and state.stopped_epoch.dtype == jnp.int32
    state, improved = early_stopping.update(state, jnp.float32(1.0), np.int64(3), patience=2)
    assert bool(improved) and state.best_epoch.dtype == jnp.int32 and int(state.best_epoch) == 3


def test_early_stopping_defaults_count_any_decrease_and_one_epoch_per_evaluation():
    state = early_stopping.init()
    state, improved = early_stopping.update(state, 1.0, 1, patience=2)
    state, improved = early_stopping.update(state, 0.99, 2, patience=2)  # min_delta 0: improves
    assert bool(improved) and int(state.best_epoch) == 2 and float(state.wait) == 0.0
    state, improved = early_stopping.update(state, 0.99, 3, patience=2)  # equal: no improvement
    assert not bool(improved) and float(state.wait) == 1.0 and not bool(early_stopping.stopped(state))
    state, _ = early_stopping.update(state, 1.5, 4, patience=2)
    assert float(state.wait) == 2.0 and int(state.stopped_epoch) == 4


def test_all_finite_checks_every_leaf():
    ones = jnp.ones(2)
    assert bool(all_finite({"a": ones, "b": ones, "c": ones}))
    for bad in ("a", "b", "c"):
        tree = {"a": ones, "b": ones, "c": ones, bad: jnp.array([1.0, jnp.nan])}
        assert not bool(all_finite(tree)), bad


def test_tree_layout_carries_the_params_as_they_are_and_a_bad_name_is_refused():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    tree = layout("tree", params)
    assert tree.pack(params) is params and tree.unpack(params) is params
    flat = layout("flat", params)
    assert flat.pack(params).shape == (9,)
    np.testing.assert_array_equal(flat.unpack(flat.pack(params))["w"], params["w"])
    with pytest.raises(jaxreg.InputError) as error:
        layout("rows", params)
    assert str(error.value) == "layout: expected one of 'flat', 'tree', got 'rows'"


def test_divergence_guard_trusts_the_loss_by_default():
    before = step.TrainState(jnp.zeros(2), {}, (), jnp.zeros((), jnp.int32))
    after = before._replace(params=jnp.ones(2))
    state, frozen, diverged = step.divergence_guard(before, after, jnp.zeros((), bool))
    assert not bool(frozen) and not bool(diverged)
    np.testing.assert_array_equal(state.params, [1.0, 1.0])


def test_zero_fraction_default_mask_single_element_and_dtype(x64):
    params = {"w": jnp.array([[0.0, 1.0], [0.0, 2.0]], jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    fraction = penalties.zero_fraction(params)  # weights only: 2 zeros of 4
    assert float(fraction) == 0.5 and fraction.dtype == jnp.float32
    assert float(penalties.zero_fraction({"w": jnp.zeros((1, 1))})) == 1.0


# --- dropout, optimizer names, penalty defaults -------------------------------------------------

def test_dropout_rate_zero_keeps_every_coarse_draw_and_classic_mode_keeps_the_dtype():
    x = jnp.ones(8192, jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(jaxreg.dropout(jax.random.key(7), x, 0.0), np.float32), 1.0)
    assert jaxreg.dropout(jax.random.key(7), x, 0.3, mode="classic").dtype == jnp.bfloat16


@pytest.mark.parametrize("rate, shown", [(None, "None"), ([0.5, 1.0], "[0.5, 1.0]")])
def test_a_bad_rate_is_named_as_given(rate, shown):
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.dropout(None, jnp.ones(2), rate)
    assert str(error.value) == f"rate: expected a drop probability in [0, 1), got {shown}"


def test_optimizer_and_l1_mode_names_are_checked_with_their_field():
    hp = jaxreg.make_hparams(jaxreg.mlp((2, 2)))
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.optimizers.direction("adagrad", hp)
    assert str(error.value) == ("optimizer: expected one of 'sgd', 'momentum', 'ema_momentum', 'adam', 'adamw', "
                                "got 'adagrad'")
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.optimizers.optimizer("sgd", hp, 0.1, l1_mode="ista")
    assert str(error.value) == "l1_mode: expected one of 'subgradient', 'proximal', got 'ista'"


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


def test_stopping_at_the_first_evaluation_counts_as_stopped():
    state = early_stopping.init()._replace(best_value=jnp.asarray(0.0))
    state, _ = early_stopping.update(state, 1.0, 1, patience=1)
    assert int(state.stopped_epoch) == 1 and bool(early_stopping.stopped(state))


# --- TrainConfig and check_data -----------------------------------------------------------------

MODEL = jaxreg.mlp((3, 2))


@pytest.mark.parametrize("changes, message", [
    (dict(model="mlp"), "model: expected a jaxreg.Model (see jaxreg.adapters.as_model for Flax, Equinox and "
                        "function pairs), got str"),
    (dict(eval_every=0), "eval_every: expected an integer >= 1, got 0"),
    (dict(batch_size=0), "batch_size: expected an integer >= 1, got 0"),
    (dict(start_epoch=-1), "start_epoch: expected an integer >= 0, got -1"),
    (dict(start_epoch=1.5), "start_epoch: expected an integer >= 0, got 1.5"),
    (dict(penalty_mask={"dense_0": {"w": True, "b": False}}, penalize_bias=True),
     "penalize_bias: expected False when penalty_mask is given (the mask says which params to penalize), "
     "got True"),
])
def test_train_config_refusals(changes, message):
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.TrainConfig(**{"model": MODEL, **changes})
    assert str(error.value) == message


def test_train_config_accepts_min_and_max_modes_lists_of_metrics_and_callable_masks():
    assert jaxreg.TrainConfig(model=MODEL, mode="min", monitor="val_accuracy").minimize
    assert not jaxreg.TrainConfig(model=MODEL, mode="max", monitor="val_loss").minimize
    config = jaxreg.TrainConfig(model=MODEL, metrics=["val_loss", "penalty"])
    assert config.metrics == ("val_loss", "penalty") and hash(config) == hash(config)
    params = MODEL.init(jax.random.key(0))[0]
    bias_only = lambda p: jax.tree_util.tree_map(lambda leaf: leaf.ndim == 1, p)
    masked = jaxreg.TrainConfig(model=MODEL, penalty_mask=bias_only)
    assert masked.penalty_mask is bias_only
    assert masked.mask(params) == {"dense_0": {"w": False, "b": True}}


def _data(n_train, n_val=2):
    split = lambda n: jaxreg.data.Split(np.ones((n, 3), np.float32), np.zeros(n, np.int32))
    return jaxreg.train.Data(split(n_train), split(n_val), split(0))


def test_check_data_bounds():
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL), _data(0))
    assert str(error.value) == "data.train: expected at least one example, got 0"
    jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL, batch_size=None), _data(1))  # one example is enough
    jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL, batch_size=4), _data(4))     # batch == training set
