"""Early stopping: a table of monitor sequences against a plain-Python Keras reference, the
array state under ``lax.scan`` and ``vmap``, and restore-best through the engine."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import early_stopping
from jaxreg.data import Split

pytestmark = pytest.mark.usefixtures("x64")

nan, inf = math.nan, math.inf


def keras_reference(values, patience, min_delta=0.0, mode="min", start_epoch=0, eval_every=1):
    """Keras' ``EarlyStopping.on_epoch_end``, in plain Python, at evaluations every ``eval_every``
    epochs (epochs counted from 1); evaluations before ``start_epoch`` are ignored entirely.

    Returns ``(best_epoch, stopped_epoch, best)``; 0 for "none" and ``best`` +-inf before any.
    """
    better = (lambda v, best: v < best - min_delta) if mode == "min" else (lambda v, best: v > best + min_delta)
    best, best_epoch, wait = (inf if mode == "min" else -inf), 0, 0
    for i, value in enumerate(values):
        epoch = (i + 1) * eval_every
        if epoch < start_epoch:
            continue
        wait += eval_every  # the wait counts epochs, not evaluations
        if better(value, best):  # NaN compares False: never an improvement
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience:
            return best_epoch, epoch, best
    return best_epoch, 0, best


@functools.partial(jax.jit, static_argnames=("minimize", "eval_every"))
def scan_update(values, patience, min_delta, start_epoch, *, minimize, eval_every):
    """``early_stopping.update`` over a monitor sequence, counting nothing once stopped."""
    epochs = (jnp.arange(len(values), dtype=jnp.int32) + 1) * eval_every  # the engine counts in int32

    def body(state, value_epoch):
        value, epoch = value_epoch
        state, _ = early_stopping.update(state, value, epoch, patience=patience, min_delta=min_delta,
                                         minimize=minimize, start_epoch=start_epoch,
                                         epochs_since_last=eval_every, valid=~early_stopping.stopped(state))
        return state, None

    state, _ = jax.lax.scan(body, early_stopping.init(values.dtype), (values, epochs))
    return state


def run_scan(values, patience, min_delta=0.0, mode="min", start_epoch=0, eval_every=1):
    state = scan_update(jnp.asarray(values, jnp.float64), jnp.float64(patience), jnp.float64(min_delta),
                        start_epoch, minimize=mode == "min", eval_every=eval_every)
    best = float(state.best_value) * (1 if mode == "min" else -1)
    return int(state.best_epoch), int(state.stopped_epoch), best


# (values, patience, min_delta, mode, start_epoch, eval_every, expected (best_epoch, stopped_epoch, best))
TABLE = {
    "patience_1": ([1.0, 0.9, 0.95, 0.8], 1, 0.0, "min", 0, 1, (2, 3, 0.9)),
    "patience_2": ([1.0, 0.9, 0.95, 0.96, 0.5], 2, 0.0, "min", 0, 1, (2, 4, 0.9)),
    "patience_3_reset_by_improvement": ([1.0, 0.95, 0.97, 0.96, 0.94, 0.99, 0.99, 0.99], 3, 0.0, "min", 0, 1,
                                        (5, 8, 0.94)),
    "min_delta_small_gains_do_not_count": ([1.0, 0.95, 0.92, 0.5], 2, 0.1, "min", 0, 1, (1, 3, 1.0)),
    "min_delta_large_gains_count": ([1.0, 0.85, 0.8, 0.7], 2, 0.1, "min", 0, 1, (4, 0, 0.7)),
    "max_mode_accuracies": ([0.5, 0.6, 0.6, 0.55, 0.7], 2, 0.0, "max", 0, 1, (2, 4, 0.6)),
    "max_mode_min_delta": ([0.5, 0.52, 0.7, 0.71], 3, 0.05, "max", 0, 1, (3, 0, 0.7)),
    "start_epoch_ignores_early_best": ([0.1, 0.5, 0.7, 0.8, 0.85, 0.86], 2, 0.0, "min", 3, 1, (3, 5, 0.7)),
    "never_stops_while_improving": ([1.0, 0.9, 0.8, 0.7, 0.6], 2, 0.0, "min", 0, 1, (5, 0, 0.6)),
    "infinite_patience_never_stops": ([1.0, 2.0, 3.0, 4.0, 5.0], inf, 0.0, "min", 0, 1, (1, 0, 1.0)),
    "nan_is_no_improvement": ([1.0, nan, nan, 0.5], 3, 0.0, "min", 0, 1, (4, 0, 0.5)),
    "nan_uses_up_patience": ([1.0, nan, nan, 0.5], 2, 0.0, "min", 0, 1, (1, 3, 1.0)),
    "leading_nan": ([nan, 1.0, 1.1, 1.2], 2, 0.0, "min", 0, 1, (2, 4, 1.0)),
    "tie_is_no_improvement": ([1.0, 1.0, 1.0], 2, 0.0, "min", 0, 1, (1, 3, 1.0)),
    "tie_in_max_mode": ([0.7, 0.7], 1, 0.0, "max", 0, 1, (1, 2, 0.7)),
    "eval_every_2_wait_counts_epochs": ([1.0, 0.9, 0.95, 0.97], 4, 0.0, "min", 0, 2, (4, 8, 0.9)),
    "nothing_counted_before_start": ([0.5, 0.4], 1, 0.0, "min", 5, 1, (0, 0, inf)),
}


@pytest.mark.parametrize("row", list(TABLE))
def test_update_follows_keras_table(row):
    values, patience, min_delta, mode, start_epoch, eval_every, expected = TABLE[row]
    reference = keras_reference(values, patience, min_delta, mode, start_epoch, eval_every)
    assert reference == expected  # the table is what Keras' rule says
    assert run_scan(values, patience, min_delta, mode, start_epoch, eval_every) == expected


def test_stopping_fires_in_the_same_update_that_exhausts_patience():
    state = early_stopping.init(jnp.float64)
    state, improved = early_stopping.update(state, 1.0, 1, patience=1.0)
    assert bool(improved) and not bool(early_stopping.stopped(state))
    state, improved = early_stopping.update(state, 2.0, 2, patience=1.0)
    assert not bool(improved) and int(state.stopped_epoch) == 2
    # An invalid (already stopped) member counts nothing.
    after, improved = early_stopping.update(state, 0.0, 3, patience=1.0, valid=False)
    assert not bool(improved)
    assert all(np.array_equal(a, b) for a, b in zip(after, state))


def test_members_stop_independently_under_vmap():
    values = jnp.asarray([1.0, 0.9, 0.88, 0.95, 0.87, 0.96, 0.97, 0.99, 1.0, 1.1], jnp.float64)
    settings = [(1, 0.0), (2, 0.0), (2, 0.05), (3, 0.015), (inf, 0.0), (4, 0.1)]
    patience = jnp.asarray([p for p, _ in settings], jnp.float64)
    min_delta = jnp.asarray([d for _, d in settings], jnp.float64)
    batched = jax.vmap(lambda p, d: scan_update(values, p, d, 0, minimize=True, eval_every=1))(patience, min_delta)
    outcomes = set()
    for i, (p, d) in enumerate(settings):
        alone = run_scan(values, p, d)
        got = (int(batched.best_epoch[i]), int(batched.stopped_epoch[i]), float(batched.best_value[i]))
        assert got == alone == keras_reference(list(values.tolist()), p, d)
        outcomes.add(got)
    assert len(outcomes) >= 4  # the members really did differ


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


def test_stopping_at_the_first_evaluation_counts_as_stopped():
    state = early_stopping.init()._replace(best_value=jnp.asarray(0.0))
    state, _ = early_stopping.update(state, 1.0, 1, patience=1)
    assert int(state.stopped_epoch) == 1 and bool(early_stopping.stopped(state))


# ------------------------------------------------------------------- restore best, in the engine

def tiny_data(n_train=12, n_val=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n_train + n_val, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=n_train + n_val) > 0).astype(np.int32)
    empty = Split(np.zeros((0, 3)), np.zeros((0,), np.int32))
    return jaxreg.Data(Split(x[:n_train], y[:n_train]), Split(x[n_train:], y[n_train:]), empty)


def test_restore_best_also_when_stopping_never_fired():
    model = jaxreg.mlp((3, 16, 2), activation="tanh", dtype=jnp.float64)
    data = tiny_data()
    config = jaxreg.TrainConfig(model=model, optimizer="sgd", epochs=30, batch_size=None, shuffle=False,
                                dropout=False)
    # A high learning rate on few examples: the validation loss falls, then overfits.
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, learning_rate=2.0, patience=inf, restore_best=flag)
                                for flag in (1, 0)])
    result = jaxreg.train_batch(config, data)(np.zeros(2, int), hps)
    assert result.stopped_epoch.tolist() == [0, 0]
    curve = result.curves["val_loss"][0]
    np.testing.assert_array_equal(curve, result.curves["val_loss"][1])
    best = int(np.argmin(curve))
    assert best < len(curve) - 1  # the best is not the last evaluation: restoring matters
    assert result.best_epoch.tolist() == [best + 1, best + 1]
    for name, final in result.final.items():
        np.testing.assert_array_equal(final[0], result.curves[name][0, best], err_msg=name)
        np.testing.assert_array_equal(final[1], result.curves[name][1, -1], err_msg=name)
    # The returned params are the ones those metrics describe.
    for member in (0, 1):
        params = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[member]), result.params)
        metrics = jaxreg.evaluate(model, params, {}, jnp.asarray(data.val.x), [("val", jnp.asarray(data.val.y))],
                                  jaxreg.softmax_cross_entropy)
        np.testing.assert_allclose(float(metrics["val_loss"]), result.final["val_loss"][member], rtol=1e-12)
