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
        "data.train.y: expected integer class labels for loss 'cross_entropy' (one integer >= 0 per example; "
        "data files: data.targets = \"classes\" says which is not), got float targets")


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


# --- what the mutation run found untested -----------------------------------------------------

def test_a_scalar_x_or_y_is_counted_as_no_examples():
    x, y = arrays()
    bad_x = jaxreg.Data(Split(np.float32(0.5), np.zeros(1, np.int64)), *as_splits((x, y))[1:])
    assert refused(config(), bad_x) == "data.train.y: expected one label per example (0 examples in data.train.x), got 1"
    bad_y = jaxreg.Data(Split(x[:1], np.int64(0)), *as_splits((x, y))[1:])
    assert refused(config(), bad_y) == "data.train.y: expected one label per example (1 examples in data.train.x), got 0"


def test_non_finite_image_features_are_found_by_row():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 2, 2, 1)).astype(np.float32), rng.integers(0, 3, 10)
    x[6, 1, 0, 0] = np.inf
    cfg = jaxreg.TrainConfig(model=jaxreg.mlp((4, 8, 3)), epochs=2, batch_size=5, monitor="train_loss", dropout=False)
    assert refused(cfg, as_splits((x, y))) == "data.train.x: expected finite features, got inf in row 6"


def test_every_split_is_checked_after_an_empty_one():
    x, y = arrays()
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    bad = (x[:10], np.array([0, 1, 2, 7, 1, 0, 0, 0, 0, 0]))
    assert refused(config(), as_splits((x, y), empty, bad)) == (
        "data.test.y: expected class labels in [0, 3) for loss 'cross_entropy' and 3 outputs, got 7")
    targets = (x[:10], np.linspace(0, 1, 10))
    nan_targets = (x[:10], np.array([0.5, 0.2, np.inf, np.nan, 0.1, 0, 0, 0, 0, 0]))
    assert refused(config(outputs=1, loss="mse"), as_splits(targets, nan_targets)) == (
        "data.val.y: expected finite targets, got inf")


@pytest.mark.parametrize("targets, bad", [([0.2, 1.5, 2.5, 0.1], "1.5"), ([0.5, -0.5, 0.3, 1.0], "-0.5"),
                                         ([0.2, 1.5, 0.1, 0.3], "1.5"), ([0.0, 1.5, 0.5, 0.5], "1.5"),
                                         ([1.0, -0.5, 0.5, 0.5], "-0.5")])
def test_bce_probabilities_outside_0_1_are_refused_and_0_and_1_taken(targets, bad):
    x, _ = arrays(n=10)
    assert refused(config(outputs=1, loss="bce"), as_splits((x, np.array(targets + [0.5] * 6)))) == (
        f"data.train.y: expected targets in [0, 1] for loss 'bce', got {bad}")
    jaxreg.train_batch(config(outputs=1, loss="bce"), as_splits((x, np.array([0.0, 1.0, 0.25, 1.0] + [0.5] * 6))))


def test_labels_are_checked_by_loss_and_outputs():
    x, _ = arrays(n=10)
    pad = [0] * 6
    # cross_entropy on a single output: only class 0 exists.
    assert refused(config(outputs=1), as_splits((x, np.array([0, 1, 0, 0] + pad)))) == (
        "data.train.y: expected class labels in [0, 1) for loss 'cross_entropy' and 1 output, got 1")
    # mse on several outputs one-hot encodes integer labels: they must be class ids.
    assert refused(config(outputs=3, loss="mse"), as_splits((x, np.array([0, 5, 1, 2] + pad)))) == (
        "data.train.y: expected class labels in [0, 3) for loss 'mse' and 3 outputs, got 5")
    assert refused(config(outputs=2, loss="mse"), as_splits((x, np.array([0, 2, 1, 1] + pad)))) == (
        "data.train.y: expected class labels in [0, 2) for loss 'mse' and 2 outputs, got 2")
    # mse on one output takes integer targets as numbers.
    jaxreg.train_batch(config(outputs=1, loss="mse"), as_splits((x, np.array([0, 3, 5, -2] + pad))))
