"""Data from Python are checked before any compute: each silent-wrong-result case is one line."""

from __future__ import annotations

import numpy as np
import pytest

import jaxreg
from jaxreg.data import Split


def arrays(n=40, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), rng.integers(0, classes, n)


def as_splits(train, val=None, test=None):
    empty = (np.zeros((0, train[0].shape[1]), np.float32), np.zeros(0, train[1].dtype))
    return jaxreg.Data(*(Split(*map(np.asarray, split)) for split in (train, val or empty, test or empty)))


def config(outputs=3, loss="cross_entropy", features=4, monitor="train_loss"):
    return jaxreg.TrainConfig(model=jaxreg.mlp((features, 8, outputs)), loss=loss, epochs=2, batch_size=10,
                              monitor=monitor, dropout=False)


def refused(cfg, data) -> str:
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.train_batch(cfg, data)
    return str(error.value)


def test_a_label_count_that_differs_from_the_example_count_is_refused():
    x, y = arrays()
    assert refused(config(monitor="val_loss"), as_splits((x, y), (x[:20], y[:15]))) == (
        "data.val.y: expected one label per example (20 examples in data.val.x), got 15")


def test_examples_of_the_wrong_shape_are_refused():
    x, y = arrays(features=5)
    assert refused(config(), as_splits((x, y))) == (
        "data.train.x: expected examples of shape (4,) (or 4 values) for the model, got (5,)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused_not_reported_as_divergence(bad):
    x, y = arrays()
    x[7, 2] = bad
    assert refused(config(), as_splits((x, y))) == f"data.train.x: expected finite features, got {bad} in row 7"


@pytest.mark.parametrize("label", [-1, 3])
def test_class_labels_outside_the_outputs_are_refused(label):
    x, y = arrays()
    y[5] = label
    assert refused(config(), as_splits((x, y))) == (
        f"data.train.y: expected class labels in [0, 3) for loss 'cross_entropy' and 3 outputs, got {label}")


def test_bce_labels_other_than_0_and_1_are_refused():
    x, y = arrays(classes=2)
    y[0] = 2  # with {0, 2} the sigmoid loss would be negative, not an error
    assert refused(config(outputs=1, loss="bce"), as_splits((x, y))) == (
        "data.train.y: expected class labels in [0, 2) for loss 'bce' and 1 output, got 2")


def test_float_targets_for_cross_entropy_are_refused():
    x, _ = arrays()
    assert refused(config(), as_splits((x, np.linspace(0, 2, len(x))))) == (
        "data.train.y: expected integer class labels for loss 'cross_entropy', got float targets")


def test_regression_targets_stay_floats_and_train():
    """mse on float targets trains on the targets themselves, not their integer parts."""
    x, _ = arrays(n=60)
    y = (x @ np.array([0.5, -1.0, 0.25, 2.0])).astype(np.float32)  # a linear target, mostly not integers
    data = jaxreg.as_data(jaxreg.data.Dataset(*as_splits((x, y))[:3], info={}))
    assert data.train.y.dtype == np.float32 and np.array_equal(data.train.y, y)
    cfg = jaxreg.TrainConfig(model=jaxreg.mlp((4, 1), bias=False), loss="mse", optimizer="sgd", epochs=200,
                             batch_size=None, monitor="train_loss", dropout=False)
    result = jaxreg.train_batch(cfg, data)(np.array([0, 1]), jaxreg.stack_hparams(
        [jaxreg.make_hparams(cfg.model, learning_rate=0.1)] * 2))
    # A linear model fits a linear target: the loss nearly vanishes (on truncated targets it can't).
    assert float(result.final["train_loss"][0]) < 1e-4
    w = np.asarray(result.params["dense_0"]["w"][0]).ravel()
    np.testing.assert_allclose(w, [0.5, -1.0, 0.25, 2.0], atol=1e-2)
