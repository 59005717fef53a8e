"""Per-layer histograms of weights, gradients and activations, computed inside the program at
evaluations: a NumPy oracle, training unchanged by them, TensorBoard's own reader, the plot."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import TrainConfig, make_hparams, stack_hparams, train_batch
from jaxreg.data import Dataset, Split
from jaxreg.models import mlp
from jaxreg.train import HISTOGRAM_EXAMPLES

BINS = 16


def numpy_histogram(values, bins=BINS):
    """The oracle: ``bins`` equal bins between min and max, the max in the last bin."""
    v = np.asarray(values, np.float64).ravel()
    low, high = v.min(), v.max()
    width = high - low if high > low else 1.0
    index = np.clip(np.floor((v - low) / width * bins).astype(int), 0, bins - 1)
    return np.bincount(index, minlength=bins), np.array([low, high, v.sum(), (v * v).sum()])


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return Dataset(Split(x, y), Split(x[:50], y[:50]), Split(x[:0], y[:0]), {})


def _layers(tree):
    return {name: np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves(layer)])
            for name, layer in tree.items()}


def test_histograms_match_numpy_for_weights_gradients_and_activations(x64):
    net = mlp((6, 8, 5, 2), dtype=jnp.float64)
    data = _data()
    config = TrainConfig(model=net, epochs=3, batch_size=30, histograms=BINS)
    result = train_batch(config, data)(np.arange(2), stack_hparams([make_hparams(net, learning_rate=0.1)] * 2))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a[0]), result.params)  # last epoch's (no restore)
    x, y = jnp.asarray(data.train.x[:HISTOGRAM_EXAMPLES]), jnp.asarray(data.train.y[:HISTOGRAM_EXAMPLES])
    grads = jax.grad(lambda p: jaxreg.softmax_cross_entropy(net.apply(p, {}, x)[0], y))(params)
    taps = {}
    net.apply(params, {}, x, taps=taps)
    expected = {"weights": _layers(params), "gradients": _layers(grads), "activations": taps}
    for kind, layers in expected.items():
        for name, values in layers.items():
            counts, stats = numpy_histogram(values)
            np.testing.assert_array_equal(result.curves[f"hist/{kind}/{name}"][0, -1], counts, err_msg=f"{kind} {name}")
            np.testing.assert_allclose(result.curves[f"hist/{kind}/{name}/stats"][0, -1], stats, rtol=1e-12, atol=1e-12)
    assert sorted(taps) == ["dense_0", "dense_1"]  # hidden layers only
    assert result.curves["hist/weights/dense_0"].shape == (2, 3, BINS)


def test_histograms_leave_training_bitwise_unchanged():
    net = mlp((6, 8, 2))
    hp = stack_hparams([make_hparams(net, learning_rate=0.1, dropout=[0.0, 0.3])] * 2)
    plain = train_batch(TrainConfig(model=net, epochs=4, batch_size=30), _data())(np.arange(2), hp)
    with_hist = train_batch(TrainConfig(model=net, epochs=4, batch_size=30, histograms=8), _data())(np.arange(2), hp)
    for name in jaxreg.METRICS:
        np.testing.assert_array_equal(plain.curves[name], with_hist.curves[name])
    np.testing.assert_array_equal(plain.params["dense_0"]["w"], with_hist.params["dense_0"]["w"])


def test_a_sweep_writes_histograms_tensorboard_reads_and_the_plot(tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    spec = {"name": "hist", "data": {"dataset": "digits", "n_train": 100}, "model": {"hidden": [16]},
            "train": {"epochs": 4, "eval_every": 2, "histograms": 10},
            "hparams": {"learning_rate": 0.1}, "search": {"seeds": 2}, "output": {"tensorboard": True}}
    result = jaxreg.sweep(spec, out=tmp_path / "hist", progress=False)
    assert (tmp_path / "hist" / "histograms.png") in result.written
    assert (tmp_path / "hist" / "histograms.png").stat().st_size > 10_000
    record = json.loads((tmp_path / "hist" / "trials.jsonl").read_text().splitlines()[0])
    reader = accumulator.EventAccumulator(str(tmp_path / "hist" / "tensorboard" / f"{record['config_id']}_0"),
                                          size_guidance={"histograms": 0, "scalars": 0})
    reader.Reload()
    tags = reader.Tags()["histograms"]
    assert sorted(tags) == ["activations/dense_0", "gradients/dense_0", "gradients/dense_1",
                            "weights/dense_0", "weights/dense_1"]
    saved = np.load(tmp_path / "hist" / "curves" / f"{record['config_id']}_0.npz")
    events = reader.Histograms("weights/dense_0")
    assert [e.step for e in events] == [2, 4]
    last = events[-1].histogram_value
    np.testing.assert_allclose(last.bucket, saved["curve/hist/weights/dense_0"][-1])
    assert last.min == pytest.approx(saved["curve/hist/weights/dense_0/stats"][-1][0], rel=1e-6)
    assert last.num == 16 * 64 + 16  # the layer's weights and biases
    assert "loss/val" in reader.Tags()["scalars"]
