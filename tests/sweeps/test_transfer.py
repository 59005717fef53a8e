"""Transfer learning: frozen layers stay bitwise put (weight decay on), the head takes the new
shape, the freeze depth varies across the members of one compiled batch, layer-wise learning
rates scale the step, frozen batch norm keeps its statistics, and a spec starts from a
results folder's best model."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import TrainConfig, make_hparams, member_key, stack_hparams, train_batch
from jaxreg import data as data_lib
from jaxreg.data import Dataset, Split
from jaxreg.errors import InputError
from jaxreg.models import mlp
from jaxreg.transfer import layer_scale, merge_params, pretrained_layers

RNG = np.random.default_rng(0)


def _data(classes: int, n=60):
    x = RNG.random((n, 8)).astype(np.float32)
    y = (x.argmax(1) % classes).astype(np.int32)
    return Dataset(Split(x, y), Split(x[:20], y[:20]), Split(x[:0], y[:0]), {})


def _numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def test_layer_scale_is_zero_below_the_trained_layers_and_decays_by_depth():
    np.testing.assert_allclose(np.asarray(layer_scale(4, np.inf, 1.0)), [1, 1, 1, 1])
    np.testing.assert_allclose(np.asarray(layer_scale(4, 2, 1.0)), [0, 0, 1, 1])
    np.testing.assert_allclose(np.asarray(layer_scale(4, np.inf, 0.5)), [0.125, 0.25, 0.5, 1])
    np.testing.assert_allclose(np.asarray(layer_scale(3, 0, 0.5)), [0, 0, 0])


@pytest.fixture(scope="module")
def pretrained():
    source = mlp((8, 12, 10, 6))
    config = TrainConfig(model=source, epochs=3, batch_size=20)
    result = train_batch(config, _data(6))(np.arange(2), stack_hparams([make_hparams(source, learning_rate=0.1)] * 2))
    return jax.tree_util.tree_map(lambda a: a[0], result.params)


def test_the_head_of_another_size_starts_afresh_and_frozen_layers_never_move(pretrained):
    target = mlp((8, 12, 10, 3))
    kept = pretrained_layers(pretrained, jax.eval_shape(target.init, jax.random.key(0))[0])
    assert sorted(kept) == ["dense_0", "dense_1"]  # dense_2: (10, 6) there, (10, 3) here
    config = TrainConfig(model=target, optimizer="adamw", epochs=3, batch_size=20, layerwise=True)
    depths = (1, 2, np.inf)
    members = [make_hparams(target, learning_rate=0.05, l2=0.01, weight_decay=0.1, trainable_layers=k) for k in depths]
    result = train_batch(config, _data(3))(np.array([0, 1, 2]), stack_hparams(members), kept)
    params = _numpy(result.params)
    assert params["dense_2"]["w"].shape == (3, 10, 3)
    for i, k in enumerate(depths):
        for j, name in enumerate(("dense_0", "dense_1", "dense_2")):
            frozen = j < 3 - k
            for leaf in ("w", "b"):
                same = np.array_equal(params[name][leaf][i], np.asarray(kept[name][leaf]) if name in kept else None)
                if frozen:
                    assert same, (k, name, leaf)
                elif name in kept:
                    assert not same, (k, name, leaf)
    # the new head starts from each member's own fresh init (the seed's init key)
    fresh, _ = target.init(jax.random.split(member_key(1), 3)[0])
    start = merge_params(fresh, kept)
    assert np.array_equal(np.asarray(start["dense_2"]["w"]), np.asarray(fresh["dense_2"]["w"]))
    assert np.array_equal(np.asarray(start["dense_0"]["w"]), np.asarray(kept["dense_0"]["w"]))


def test_the_head_starts_afresh_also_when_its_shape_fits_unless_kept(pretrained):
    same = mlp((8, 12, 10, 6))
    like = jax.eval_shape(same.init, jax.random.key(0))[0]
    assert sorted(pretrained_layers(pretrained, like)) == ["dense_0", "dense_1"]
    kept = pretrained_layers(pretrained, like, keep_head=True)
    assert sorted(kept) == ["dense_0", "dense_1", "dense_2"]
    np.testing.assert_array_equal(kept["dense_2"]["w"], pretrained["dense_2"]["w"])


def test_layer_lr_decay_scales_each_layers_step(x64):
    net = mlp((8, 6, 5, 3), dtype=jnp.float64)
    data = _data(3)
    data = Dataset(*(Split(s.x.astype(np.float64), s.y) for s in data[:3]), {})
    config = TrainConfig(model=net, epochs=1, batch_size=None, layerwise=True)  # one full-batch SGD step
    members = stack_hparams([make_hparams(net, learning_rate=0.1, layer_lr_decay=g) for g in (1.0, 0.5)])
    result = train_batch(config, data)(np.zeros(2, int), members)
    start, _ = net.init(jax.random.split(member_key(0), 3)[0])
    for depth, name in zip((2, 1, 0), ("dense_0", "dense_1", "dense_2")):
        step = [np.asarray(result.params[name]["w"][i]) - np.asarray(start[name]["w"]) for i in range(2)]
        np.testing.assert_allclose(step[1], 0.5 ** depth * step[0], rtol=1e-10, atol=1e-15)


def test_a_frozen_layers_batch_norm_keeps_its_running_statistics():
    net = mlp((8, 12, 3), batch_norm=True)
    config = TrainConfig(model=net, epochs=2, batch_size=20, layerwise=True)
    members = stack_hparams([make_hparams(net, learning_rate=0.1, trainable_layers=k) for k in (1, np.inf)])
    result = train_batch(config, _data(3))(np.zeros(2, int), members)
    _, state = net.init(jax.random.split(member_key(0), 3)[0])
    np.testing.assert_array_equal(result.model_state["dense_0"]["mean"][0], np.asarray(state["dense_0"]["mean"]))
    assert not np.array_equal(result.model_state["dense_0"]["mean"][1], np.asarray(state["dense_0"]["mean"]))


def test_transfer_refuses_what_it_cannot_do(pretrained):
    target = mlp((8, 12, 10, 3))
    fresh = jax.eval_shape(target.init, jax.random.key(0))[0]
    with pytest.raises(InputError, match="^pretrained: expected layers among dense_0, dense_1, dense_2, got 'conv_0'$"):
        pretrained_layers({"conv_0": {"w": np.zeros((3, 3))}}, fresh)
    with pytest.raises(InputError, match=r"^pretrained: expected at least one layer of the shapes of the model's, "
                                         r"got none that fits: dense_0 is \['b'\] \(3,\), \['w'\] \(3, 3\) there, "
                                         r"\['b'\] \(12,\), \['w'\] \(8, 12\) here$"):
        pretrained_layers({"dense_0": {"w": np.zeros((3, 3)), "b": np.zeros(3)}}, fresh)
    with pytest.raises(InputError, match=r"^hparams.trainable_layers: expected a whole number >= 1 \(inf: every "
                                         r"layer\), got 1.5$"):
        make_hparams(target, trainable_layers=1.5)
    with pytest.raises(InputError, match=r"^hparams.trainable_layers: expected a whole number >= 1 \(inf: every "
                                         r"layer\), got 0.0$"):
        make_hparams(target, trainable_layers=0)  # would train nothing
    data = _data(3)
    with pytest.raises(InputError, match=r"^hparams.trainable_layers: expected inf \(and layer_lr_decay 1\) when "
                                         r"TrainConfig.layerwise is False, got a member that freezes or decays layers$"):
        train_batch(TrainConfig(model=target, epochs=1), data)(np.arange(2), stack_hparams(
            [make_hparams(target, trainable_layers=1)] * 2))
    with pytest.raises(InputError, match=r"^hparams.trainable_layers: expected a whole number in \[1, 3\] \(the "
                                         r"model's layers\) or inf, got 4.0$"):
        train_batch(TrainConfig(model=target, epochs=1, layerwise=True), data)(np.arange(2), stack_hparams(
            [make_hparams(target, trainable_layers=4)] * 2))


# --- the data of a transfer task -------------------------------------------------------------

def test_digits_classes_and_per_class_make_a_target_task():
    kept = data_lib.load("digits", key=0, classes=[5, 6, 7, 8, 9], per_class=10)
    assert kept.info["num_classes"] == 5 and kept.train.x.shape == (50, 64)
    assert np.bincount(kept.train.y).tolist() == [10] * 5
    full = data_lib.load("digits", key=0)
    fives = data_lib.load("digits", key=0, classes=[5])
    # relabelled in the order given: the images of class 0 here are digit 5s there
    every = np.concatenate([full.train.x, full.val.x, full.test.x])
    labels = np.concatenate([full.train.y, full.val.y, full.test.y])
    assert {row.tobytes() for row in fives.train.x} <= {row.tobytes() for row in every[labels == 5]}
    with pytest.raises(ValueError, match=r"^classes: expected a list of distinct digits in \[0, 9\], got \[5, 5\]$"):
        data_lib.load("digits", key=0, classes=[5, 5])
    with pytest.raises(ValueError, match=r"^per_class: expected at most 10\d \(the smallest class's training "
                                         r"examples\), got 150$"):
        data_lib.load("digits", key=0, classes=[5, 6], per_class=150)
    with pytest.raises(ValueError, match=r"^per_class: expected None when n_train is given \(100\), got 5$"):
        data_lib.load("digits", key=0, n_train=100, per_class=5)


# --- from a spec -----------------------------------------------------------------------------

PRETRAIN = """
name = "source"
[data]
dataset = "digits"
classes = [0, 1, 2, 3, 4]
[model]
hidden = [16]
[train]
epochs = 4
[hparams]
learning_rate = {lr}
[search]
seeds = 2
[output]
params = true
plots = false
"""

TRANSFER = """
name = "target"
[data]
dataset = "digits"
classes = [5, 6, 7, 8, 9]
per_class = 5
[model]
hidden = [16]
pretrained = "results/source"
[train]
epochs = 4
batch_size = 5
[hparams]
learning_rate = 0.05
weight_decay = 0.01
[cases.tuned]
trainable_layers = { values = [1, inf] }
[cases.scratch]
model = { pretrained = false }
[output]
params = true
plots = false
"""


def _jaxreg(*args, cwd):
    return subprocess.run([sys.executable, "-m", "jaxreg", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_a_spec_fine_tunes_a_results_folders_best_model(tmp_path):
    (tmp_path / "source.toml").write_text(PRETRAIN.format(lr=0.1))
    (tmp_path / "target.toml").write_text(TRANSFER)
    assert _jaxreg("run", "source.toml", "--quiet", cwd=tmp_path).returncode == 0
    done = _jaxreg("run", "target.toml", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "results" / "target" / "manifest.json").read_text())
    assert len(manifest["spec"]["model"]["pretrained_sha256"]) == 64
    from jaxreg.sweeps.best import load_best

    source = load_best(tmp_path / "results" / "source")
    records = [json.loads(line) for line in (tmp_path / "results" / "target" / "trials.jsonl").read_text().splitlines()]
    frozen = [r for r in records if r["hparams"].get("trainable_layers") == 1.0]
    assert len(frozen) == 1 and len(records) == 3 and [r["case"] for r in records].count("scratch") == 1
    curves = np.load(tmp_path / "results" / "target" / "curves" / f"{frozen[0]['config_id']}_0.npz")
    np.testing.assert_array_equal(curves["params/['dense_0']['w']"], source.params["dense_0"]["w"])
    # the same spec resumes; other pretrained weights are another spec
    again = _jaxreg("run", "target.toml", "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and len((tmp_path / "results" / "target" / "trials.jsonl").read_text().splitlines()) == 3
    (tmp_path / "source.toml").write_text(PRETRAIN.format(lr=0.2))
    assert _jaxreg("run", "source.toml", "--quiet", "--overwrite", cwd=tmp_path).returncode == 0
    changed = _jaxreg("run", "target.toml", "--quiet", cwd=tmp_path)
    assert changed.returncode == 2
    assert "model.pretrained_sha256 is '" in changed.stderr and "holds results of a different spec" in changed.stderr


def test_a_flax_model_freezes_by_its_layer_names_and_equinox_is_refused_in_words():
    import equinox as eqx
    import flax.linen as nn

    from jaxreg.adapters import from_equinox, from_flax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            hidden = nn.relu(nn.Dense(6)(x))  # Dense_0, called first
            return nn.Dense(3)(hidden)

    net = from_flax(Net(), (8,))
    assert net.layer_names() == ("Dense_0", "Dense_1")
    config = TrainConfig(model=net, epochs=2, batch_size=20, layerwise=True)
    result = train_batch(config, _data(3))(np.zeros(2, int), stack_hparams(
        [make_hparams(net, learning_rate=0.1, weight_decay=0.1, trainable_layers=k) for k in (1, np.inf)]))
    start, _ = net.init(jax.random.split(member_key(0), 3)[0])
    np.testing.assert_array_equal(result.params["Dense_0"]["kernel"][0], np.asarray(start["Dense_0"]["kernel"]))
    assert not np.array_equal(result.params["Dense_1"]["kernel"][0], np.asarray(start["Dense_1"]["kernel"]))
    assert not np.array_equal(result.params["Dense_0"]["kernel"][1], np.asarray(start["Dense_0"]["kernel"]))

    model = from_equinox(lambda key: eqx.nn.MLP(8, 3, 6, 1, key=key), (8,))
    with pytest.raises(InputError, match=r"^model: expected params as a dict keyed by layer name \(or Model.layers\) "
                                         r"to count layers, got MLP$"):
        train_batch(TrainConfig(model=model, epochs=1, layerwise=True), _data(3))(np.arange(2), stack_hparams(
            [make_hparams(model, trainable_layers=1)] * 2))


def test_a_spec_fine_tunes_an_exported_model(tmp_path):
    (tmp_path / "source.toml").write_text(PRETRAIN.format(lr=0.1))
    assert _jaxreg("run", "source.toml", "--quiet", cwd=tmp_path).returncode == 0
    assert _jaxreg("best", "results/source", "--export", "source.npz", cwd=tmp_path).returncode == 0
    spec = TRANSFER.replace('pretrained = "results/source"', 'pretrained = "source.npz"\npretrained_seed = 1')
    (tmp_path / "target.toml").write_text(spec.split("[cases.scratch]")[0] + "[output]\nparams = true\nplots = false\n")
    done = _jaxreg("run", "target.toml", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from jaxreg.sweeps.best import load_best

    source = load_best(tmp_path / "source.npz", seed=1)
    records = [json.loads(line) for line in (tmp_path / "results" / "target" / "trials.jsonl").read_text().splitlines()]
    frozen = [r for r in records if r["hparams"].get("trainable_layers") == 1.0][0]
    curves = np.load(tmp_path / "results" / "target" / "curves" / f"{frozen['config_id']}_0.npz")
    np.testing.assert_array_equal(curves["params/['dense_0']['w']"], source.params["dense_0"]["w"])
    assert not np.array_equal(curves["params/['dense_0']['w']"], load_best(tmp_path / "source.npz", seed=0).params["dense_0"]["w"])


def test_batch_norm_statistics_come_with_the_pretrained_layers_and_stay_when_frozen(tmp_path):
    source = PRETRAIN.format(lr=0.1).replace("hidden = [16]", "hidden = [16, 8]\nbatch_norm = true")
    (tmp_path / "source.toml").write_text(source)
    target = TRANSFER.replace("hidden = [16]", "hidden = [16, 8]\nbatch_norm = true")
    target = target.replace("values = [1, inf]", "values = [2, inf]")
    (tmp_path / "target.toml").write_text(target.split("[cases.scratch]")[0] + "[output]\nparams = true\nplots = false\n")
    assert _jaxreg("run", "source.toml", "--quiet", cwd=tmp_path).returncode == 0
    done = _jaxreg("run", "target.toml", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from jaxreg.sweeps.best import load_best

    source = load_best(tmp_path / "results" / "source")
    assert float(np.abs(source.state["dense_0"]["mean"]).max()) > 0  # trained statistics, not the init
    records = [json.loads(line) for line in (tmp_path / "results" / "target" / "trials.jsonl").read_text().splitlines()]
    by_depth = {r["hparams"].get("trainable_layers", np.inf): r for r in records}
    frozen = np.load(tmp_path / "results" / "target" / "curves" / f"{by_depth[2.0]['config_id']}_0.npz")
    trained = np.load(tmp_path / "results" / "target" / "curves" / f"{by_depth[np.inf]['config_id']}_0.npz")
    # dense_0 is frozen (the last 2 of 3 layers train): its weights and its statistics as pretrained
    for key, value in (("params/['dense_0']['w']", source.params["dense_0"]["w"]),
                       ("state/['dense_0']['mean']", source.state["dense_0"]["mean"]),
                       ("state/['dense_0']['var']", source.state["dense_0"]["var"])):
        np.testing.assert_array_equal(frozen[key], value)
        assert not np.array_equal(trained[key], value)
    assert not np.array_equal(frozen["state/['dense_1']['mean']"], source.state["dense_1"]["mean"])


BAD = """
[data]
dataset = "digits"
[model]
hidden = [16]
[train]
epochs = 2
[hparams]
learning_rate = 0.1
"""


@pytest.mark.parametrize("override, message", [
    ("hparams.trainable_layers=9", "hparams.trainable_layers: expected a whole number in [1, 2] (the model's layers) "
                                   "or inf, got 9"),
    ("hparams.trainable_layers=0", "hparams.trainable_layers: expected a whole number >= 1 (inf: every layer), got 0.0"),
    ("hparams.bn_momentum={ values = [0.9, 0.99] }", "hparams.bn_momentum: expected the default (0.99) for a model "
                                                     "without batch norm (model.batch_norm = false), got another value"),
    ("hparams.saturation=0.2", "hparams.saturation: expected 0 for images with 1 channel (saturation changes "
                               "colour), got a value above 0"),
    ("data.per_class=0", "data.per_class: expected an integer >= 1, got 0"),
])
def test_new_axes_are_refused_before_anything_is_written(tmp_path, capsys, override, message):
    from jaxreg import cli

    (tmp_path / "bad.toml").write_text(BAD)
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "bad.toml"), "--out", str(out), "--set", override, "--quiet"]) == 2
    assert capsys.readouterr().err == f"jaxreg: error: {message}\n"
    assert not out.exists()
