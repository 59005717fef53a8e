"""A user's own model named in a spec (``model.kind = "module:function"``): Flax, Equinox, plain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxreg.errors import InputError
from jaxreg.sweeps import build_spec, load_spec, run_sweep

SPEC = """
name = "own-model"
[data]
dataset = "digits"
n_train = 120
[model]
kind = "spec_models:{factory}"
options = {{ width = 16 }}
[train]
epochs = 4
batch_size = 40
eval_test = false
{train_extra}
[hparams]
learning_rate = 0.1
l2 = {{ values = [0.0, 0.05] }}
[search]
seeds = 1
[output]
plots = false
"""


def write_spec(tmp_path, factory, train_extra=""):
    path = tmp_path / f"{factory}.toml"
    path.write_text(SPEC.format(factory=factory, train_extra=train_extra))
    return path


def records_by_l2(out):
    lines = (out / "trials.jsonl").read_text().splitlines()
    return {json.loads(line)["hparams"]["l2"]: json.loads(line)["metrics"] for line in lines}


@pytest.mark.parametrize("factory", ["flax_mlp", "equinox_mlp", "plain_mlp"])
def test_a_users_model_trains_through_a_spec_and_l2_changes_it(tmp_path, factory):
    spec = load_spec(write_spec(tmp_path, factory))
    run_sweep(spec, tmp_path / "out", progress=False)
    by_l2 = records_by_l2(tmp_path / "out")
    assert set(by_l2) == {0.0, 0.05}
    assert by_l2[0.0]["penalty"] == 0.0 and by_l2[0.05]["penalty"] > 0.0
    assert by_l2[0.05]["weight_norm"] > 0.0
    assert by_l2[0.0]["val_loss"] != by_l2[0.05]["val_loss"]


def test_a_penalty_mask_from_a_spec_selects_what_it_names(tmp_path):
    spec = load_spec(write_spec(tmp_path, "plain_mlp", 'penalty_mask = "spec_models:first_layer_only"'))
    run_sweep(spec, tmp_path / "out", progress=False)
    masked = records_by_l2(tmp_path / "out")[0.05]
    spec = load_spec(write_spec(tmp_path, "plain_mlp"))
    run_sweep(spec, tmp_path / "all", progress=False)
    default = records_by_l2(tmp_path / "all")[0.05]
    # The first layer's kernel is most of the weights, but not all: a smaller norm.
    assert 0.0 < masked["weight_norm"] < default["weight_norm"]


@pytest.mark.parametrize("kind, message", [
    ("spec_models:nothing_here", "model.kind: expected 'module:function' (an importable callable), got "
                                 "'spec_models:nothing_here' (AttributeError: module 'spec_models' has no "
                                 "attribute 'nothing_here')"),
    ("no_such_module:make", "model.kind: expected 'module:function' (an importable callable), got "
                            "'no_such_module:make' (ModuleNotFoundError: No module named 'no_such_module')"),
    ("mlpp", "model.kind: expected one of 'mlp', 'cnn', 'MODULE:FUNCTION', got 'mlpp'"),
])
def test_a_bad_factory_is_a_one_line_error(tmp_path, kind, message):
    path = tmp_path / "bad.toml"
    path.write_text(SPEC.format(factory="flax_mlp", train_extra="").replace('"spec_models:flax_mlp"', f'"{kind}"'))
    with pytest.raises(InputError) as error:
        load_spec(path)
    assert str(error.value) == message


def test_a_built_in_model_key_with_a_factory_kind_is_refused_not_ignored(tmp_path):
    path = write_spec(tmp_path, "flax_mlp")
    with pytest.raises(InputError) as error:
        load_spec(path, ["model.hidden=[32]"])
    assert str(error.value) == ("model.hidden: expected none with a factory kind ('spec_models:flax_mlp' builds its "
                                "own layers: give its arguments in model.options), got [32]")
    spec = load_spec(path)  # its resolved spec carries the built-in keys at their defaults, and builds again
    assert build_spec(spec.resolved).digest == spec.digest


def test_an_l2_axis_with_a_mask_that_selects_nothing_is_an_error(tmp_path):
    path = write_spec(tmp_path, "plain_mlp", 'penalty_mask = "spec_models:nothing_selected"')
    with pytest.raises(InputError) as error:
        load_spec(path)
    assert str(error.value) == ("hparams.l2: expected 0 when the penalty mask selects no params (the model "
                                "has no leaf with two or more dimensions, or train.penalty_mask selects "
                                "none), got a value above 0")
