"""Own loss and metric functions: ``TrainConfig(loss=fn, extra_metrics={NAME: fn})`` in Python and
``train.loss = "module:function"``, ``[train.extra_metrics]`` in a spec, computed inside the
compiled program like the built-in ones, journaled, ranked by and monitored; against a NumPy
oracle on the returned params, and refused in one line when they cannot work."""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg
from jaxreg.errors import InputError
from jaxreg.report.store import read_journal
from jaxreg.sweeps.spec import check_spec

RNG = np.random.default_rng(0)
X = RNG.normal(size=(90, 5)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)  # 3 classes
EMPTY = jaxreg.data.Split(np.zeros((0, 5), np.float32), np.zeros(0, np.int32))
DATA = jaxreg.Data(jaxreg.data.Split(X[:60], Y[:60]), jaxreg.data.Split(X[60:], Y[60:]), EMPTY)


def cross_entropy(outputs, labels):
    """The built-in loss, written as a user would: the same operations, so bitwise the same."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, labels.astype(jnp.int32)))


def mean_top_logit(outputs, labels):
    return jnp.mean(jnp.max(outputs, axis=-1))


def top2(outputs, labels):
    top = jnp.argsort(outputs, axis=-1)[:, -2:]
    return jnp.mean(jnp.any(top == labels[:, None], axis=-1).astype(outputs.dtype))


def config(**options):
    base = dict(model=jaxreg.mlp((5, 8, 3)), optimizer="adam", epochs=6, eval_every=2, batch_size=20)
    return jaxreg.TrainConfig(**{**base, **options})


def train(cfg, rates=(0.01, 0.05)):
    hp = jaxreg.stack_hparams([jaxreg.make_hparams(cfg.model, learning_rate=r) for r in rates])
    return jaxreg.train_batch(cfg, DATA)(np.arange(len(rates)), hp)


def test_an_own_loss_equal_to_a_built_in_trains_bitwise_alike():
    built_in, own = train(config()), train(config(loss=cross_entropy))
    for name in ("train_loss", "val_loss", "val_accuracy", "weight_norm"):
        np.testing.assert_array_equal(own.curves[name], built_in.curves[name])
    jax.tree_util.tree_map(np.testing.assert_array_equal, own.params, built_in.params)


def test_own_metrics_against_numpy_on_the_returned_params():
    cfg = config(extra_metrics={"top_logit": mean_top_logit, "top2": top2})
    result = train(cfg)
    for i in range(2):
        params = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf[i], np.float64), result.params)
        hidden = np.maximum(X[60:] @ params["dense_0"]["w"] + params["dense_0"]["b"], 0)  # the MLP, in NumPy
        outputs = hidden @ params["dense_1"]["w"] + params["dense_1"]["b"]
        order = np.argsort(outputs, axis=-1)[:, -2:]
        np.testing.assert_allclose(result.final["val_top_logit"][i], outputs.max(-1).mean(), rtol=1e-5)
        assert result.final["val_top2"][i] == pytest.approx(np.mean((order == Y[60:, None]).any(-1)), abs=1e-6)
    assert result.curves["val_top2"].shape == (2, 3) and np.all(np.isnan(result.final["test_top2"]))  # no test split
    assert np.all(result.final["val_top2"] >= result.final["val_accuracy"])  # top-2 contains the top-1


def test_early_stopping_monitors_an_own_metric_in_the_direction_given():
    lowest = train(config(extra_metrics={"top_logit": mean_top_logit}, monitor="val_top_logit", mode="min",
                          epochs=12, eval_every=1), rates=(0.05, 0.05))
    highest = train(config(extra_metrics={"top_logit": mean_top_logit}, monitor="val_top_logit", mode="max",
                           epochs=12, eval_every=1), rates=(0.05, 0.05))
    curve = lowest.curves["val_top_logit"][0]
    np.testing.assert_array_equal(curve, highest.curves["val_top_logit"][0])  # the same training
    assert lowest.best_epoch[0] == np.argmin(curve) + 1 and highest.best_epoch[0] == np.argmax(curve) + 1
    assert lowest.best_epoch[0] != highest.best_epoch[0]


@pytest.mark.parametrize("options, message", [
    (dict(loss=lambda o, y: o[:, 0]),
     "loss: expected a function returning a scalar (the mean over the batch), got an array of shape (20,)"),
    (dict(extra_metrics={"top": lambda o, y: o}),
     "extra_metrics.top: expected a function returning a scalar (the mean over the batch), got an array of shape (60, 3)"),
    (dict(extra_metrics={"accuracy": top2}),
     "extra_metrics: expected a lower-case name (letters, digits, _; at most 40) other than loss, accuracy, rmse, "
     "mae, r2 (the metric is journaled as train_NAME, val_NAME, test_NAME), got 'accuracy'"),
    (dict(extra_metrics={"top2": "mymodule:top2"}),
     "extra_metrics.top2: expected a function (outputs, labels) -> scalar, got 'mymodule:top2'"),
    (dict(extra_metrics=[top2]),
     "extra_metrics: expected {name: function} or (name, function) pairs, got [<function top2"),
    (dict(extra_metrics={"top2": top2}, monitor="val_top2"),
     "mode: expected 'min' or 'max' when monitor is an own metric ('val_top2': jaxreg cannot tell which way is "
     "better), got 'auto'"),
    (dict(monitor="val_top2"),
     "monitor: expected one of 'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy', got 'val_top2'"),
    (dict(loss=42),
     "loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', 'bce' or a function "
     "(outputs, labels) -> scalar, got 42"),
])
def test_own_functions_that_cannot_work_are_refused_in_one_line(options, message):
    with pytest.raises(InputError) as info:
        train(config(**options))
    assert str(info.value).startswith(message)


MODULE = '''
import jax
import jax.numpy as jnp


def hinge(outputs, labels):
    onehot = jax.nn.one_hot(labels, outputs.shape[-1])
    return jnp.mean(jnp.sum(jnp.maximum(0, 1 - (2 * onehot - 1) * outputs), -1))


def top2(outputs, labels):
    top = jnp.argsort(outputs, axis=-1)[:, -2:]
    return jnp.mean(jnp.any(top == labels[:, None], axis=-1).astype(outputs.dtype))
'''


@pytest.fixture(scope="module")
def own_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    (folder / "own_losses_for_test.py").write_text(textwrap.dedent(MODULE))
    np.savez(folder / "data.npz", x=X, y=Y)
    (folder / "spec.toml").write_text(textwrap.dedent('''
        name = "own"
        [data]
        dataset = "npz"
        path = "data.npz"
        val_fraction = 0.25
        test_fraction = 0.25
        [model]
        hidden = [8]
        [train]
        loss = "own_losses_for_test:hinge"
        optimizer = "adam"
        epochs = 6
        eval_every = 2
        batch_size = 15
        [train.extra_metrics]
        top2 = "own_losses_for_test:top2"
        [hparams]
        learning_rate = { values = [0.0003, 0.03] }
        [search]
        seeds = 2
        metric = "val_top2"
        goal = "maximize"
        [output]
        plots = false
        '''))
    return folder


def test_a_spec_trains_ranks_and_journals_its_own_loss_and_metric(own_spec, tmp_path):
    result = jaxreg.sweep(str(own_spec / "spec.toml"), out=tmp_path / "run", progress=False)
    assert "val_top2" in result.table().splitlines()[0]
    records = read_journal(tmp_path / "run")
    assert len(records) == 4
    for record in records:
        assert list(record["metrics"])[-3:] == ["train_top2", "val_top2", "test_top2"]
    by_rate = {r["hparams"]["learning_rate"]: [] for r in records}
    for r in records:
        by_rate[r["hparams"]["learning_rate"]].append(r["metrics"]["val_top2"])
    rows = (tmp_path / "run" / "summary.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header.index("val_top2_mean") < header.index("val_loss_mean")  # the search metric first
    assert header.index("train_top2_mean") < header.index("test_top2_mean")
    best = dict(zip(header, rows[1].split(",")))
    expected = max(by_rate, key=lambda rate: np.mean(by_rate[rate]))  # maximized, as search.goal says
    assert float(best["learning_rate"]) == pytest.approx(expected)
    assert float(best["val_top2_mean"]) == pytest.approx(np.mean(by_rate[expected]))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["spec"]["train"]["loss"] == "own_losses_for_test:hinge"


@pytest.mark.parametrize("change, message", [
    ({"train": {"loss": "hinge"}},
     "train.loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', 'bce' or "
     "'module:function' (an own loss), got 'hinge'"),
    ({"search": {"metric": "val_top2", "goal": None}},
     "search.goal: expected 'minimize' or 'maximize' when search.metric is an own metric ('val_top2': jaxreg "
     "cannot tell which way is better), got none"),
    ({"search": {"metric": "test_top2", "goal": "maximize"}},
     "search.metric: expected one of 'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy', 'val_rmse', "
     "'val_mae', 'val_r2', 'train_rmse', 'train_mae', 'train_r2', 'train_top2', 'val_top2', got 'test_top2'"),
    ({"train": {"monitor": "val_top2"}},
     "train.mode: expected 'min' or 'max' when monitor is an own metric ('val_top2': jaxreg cannot tell "
     "which way is better), got 'auto'"),
    ({"train": {"extra_metrics": {"top2": "os:system"}}},
     "train.extra_metrics.top2: expected 'module:function' naming a Python function of that package, got "
     "'os:system' (a builtin_function_or_method)"),
    ({"train": {"extra_metrics": {"Top 2": "own_losses_for_test:top2"}}},
     "train.extra_metrics: expected a lower-case name (letters, digits, _; at most 40) other than loss, "
     "accuracy, rmse, mae, r2 (the metric is journaled as train_NAME, val_NAME, test_NAME), got 'Top 2'"),
    ({"train": {"extra_metrics": "own_losses_for_test:top2"}},
     "train.extra_metrics: expected a table {NAME = \"module:function\"}, got 'own_losses_for_test:top2'"),
])
def test_a_spec_naming_own_functions_badly_is_refused_before_jax_loads(own_spec, monkeypatch, change, message):
    import tomllib

    monkeypatch.syspath_prepend(str(own_spec))
    raw = tomllib.loads((own_spec / "spec.toml").read_text())
    for table, values in change.items():
        raw[table] = {key: value for key, value in {**raw[table], **values}.items() if value is not None}
    with pytest.raises(InputError) as info:
        check_spec(raw)
    assert str(info.value) == message
