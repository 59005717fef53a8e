"""Opening a results folder or an exported model runs no code it names unless the user trusts it;
a spec's ``module:function`` is checked before it is called; modules beside a spec are searched
last, never in place of an installed or standard-library module."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from jaxreg import cli
from jaxreg.errors import InputError
from jaxreg.sweeps import build_spec, load_spec, run_sweep
from jaxreg.sweeps.best import export_best, load_best, load_model

SPEC = """
name = "trust"
[data]
dataset = "blobs"
n_val = 20
n_test = 20
[model]
kind = "spec_models:plain_mlp"
options = { width = 4 }
[train]
epochs = 1
batch_size = 20
[hparams]
learning_rate = 0.1
[output]
params = true
plots = false
"""

# A module shipped inside a results folder: importing it runs it, which leaves IMPORTED beside it.
HELPERS = """
import pathlib
(pathlib.Path(__file__).parent / "IMPORTED").write_text("imported")
from spec_models import plain_mlp
"""


def refusal(where: str, kind: str = "helpers:plain_mlp") -> str:
    module = kind.partition(":")[0]
    return (f"model.kind: expected 'mlp' or 'cnn' (a built-in model) in {where}, read without trusting its "
            f"code, got {kind!r} (it would import and run module {module!r}: pass --trust-code, or "
            f"trust_code=True in Python, if you trust the author of {where})")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A results folder of a factory model (``spec_models:plain_mlp``), its params kept."""
    root = tmp_path_factory.mktemp("trust")
    (root / "trust.toml").write_text(SPEC)
    run_sweep(load_spec(root / "trust.toml"), root / "out", progress=False)
    return root / "out"


@pytest.fixture
def shipped(folder, tmp_path, monkeypatch) -> Path:
    """The folder as another author ships it: its spec names ``helpers:plain_mlp`` and a
    ``helpers.py`` lies inside it; the working directory is the folder."""
    out = tmp_path / "shipped"
    shutil.copytree(folder, out)
    from jaxreg.report import store

    manifest = json.loads((out / "manifest.json").read_text())
    manifest["spec"]["model"]["kind"] = "helpers:plain_mlp"
    # written as its author's jaxreg would have: the spec's hash and field digests agree with it
    manifest.update(spec_sha256=store.spec_sha256(manifest["spec"]), spec_parts=store.spec_parts(manifest["spec"]))
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "helpers.py").write_text(HELPERS)
    monkeypatch.chdir(out)
    monkeypatch.delitem(sys.modules, "helpers", raising=False)
    return out


def run_cli(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = cli.main(list(args))
    return code, stdout.getvalue(), stderr.getvalue()


def test_load_best_of_a_folder_never_imports_the_code_it_ships(shipped):
    with pytest.raises(InputError) as error:
        load_best(shipped)
    assert str(error.value) == refusal(str(shipped))
    with pytest.raises(InputError):
        load_best(".")
    assert not (shipped / "IMPORTED").exists()


def test_best_export_refuses_a_folder_naming_code_without_trust_code(shipped):
    code, _, stderr = run_cli("best", str(shipped), "--export", "best.npz")
    assert code == 2
    assert stderr == f"jaxreg: error: {refusal(str(shipped))}\n"
    assert not (shipped / "IMPORTED").exists() and not (shipped / "best.npz").exists()


def test_commands_that_need_no_model_open_such_a_folder_without_trust_code(shipped):
    for command in ("show", "best"):
        code, stdout, stderr = run_cli(command, str(shipped))
        assert code == 0, stderr
        assert stdout.startswith("trust: ")
    code, stdout, stderr = run_cli("plot", str(shipped))
    assert code == 0, stderr
    assert str(shipped / "curves.png") in stdout.splitlines()
    # 2-D blobs with params kept: the decision boundary is the one plot that needs the model
    assert (f"skipped decision_boundary.png: the inputs are not 2-D, or the model could not be rebuilt here "
            f"({refusal(str(shipped))})") in stdout.splitlines()
    assert not (shipped / "IMPORTED").exists()


def test_an_export_naming_a_factory_loads_only_with_trust_code(folder, tmp_path):
    file = tmp_path / "best.npz"
    with pytest.raises(InputError) as error:
        export_best(folder, file)
    assert str(error.value) == refusal(str(folder), "spec_models:plain_mlp")
    export_best(folder, file, trust_code=True)
    with pytest.raises(InputError) as error:
        load_best(file)
    assert str(error.value) == refusal(str(file), "spec_models:plain_mlp")
    best = load_best(file, trust_code=True)
    saved = load_best(folder, trust_code=True)
    x = np.ones((3, 2), np.float32)
    logits, _ = best.model.apply(best.params, best.state, x)
    assert np.array_equal(logits, saved.model.apply(saved.params, saved.state, x)[0]) and logits.shape == (3, 2)


def test_an_export_naming_code_it_ships_never_imports_it(folder, tmp_path, monkeypatch):
    file = tmp_path / "best.npz"
    export_best(folder, file, trust_code=True)
    with np.load(file) as npz:
        arrays = dict(npz)
    manifest = json.loads(str(arrays["manifest"]))
    manifest["tables"]["model"]["kind"] = "helpers:plain_mlp"
    arrays["manifest"] = np.asarray(json.dumps(manifest))
    np.savez(file, **arrays)
    (tmp_path / "helpers.py").write_text(HELPERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "helpers", raising=False)
    with pytest.raises(InputError) as error:
        load_best("best.npz")
    assert str(error.value) == refusal("best.npz")
    with pytest.raises(InputError) as error:
        load_model("best.npz")
    assert str(error.value) == refusal("best.npz")
    code, _, stderr = run_cli("predict", "best.npz", "rows.csv", "--out", "predictions.csv")
    assert code == 2 and stderr == f"jaxreg: error: {refusal('best.npz')}\n"
    assert not (tmp_path / "IMPORTED").exists() and not (tmp_path / "predictions.csv").exists()


def raw_spec(**train) -> dict:
    return {"name": "mask", "data": {"dataset": "blobs", "n_test": 20}, "model": {"hidden": [4]},
            "train": {"epochs": 1, **train}, "hparams": {"l2": 0.1}}


def test_a_builtin_penalty_mask_is_refused_before_it_is_called():
    with pytest.raises(InputError) as error:
        build_spec(raw_spec(penalty_mask="os:system"))
    assert str(error.value) == ("train.penalty_mask: expected 'module:function' naming a Python function of that "
                                "package, got 'os:system' (a builtin_function_or_method)")


def test_a_penalty_mask_named_where_it_is_not_defined_is_never_called(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command) or 0)
    for field, raw in (("train.penalty_mask", raw_spec(penalty_mask="os:system")),
                       ("model.kind", {**raw_spec(), "model": {"kind": "os:system"}})):
        with pytest.raises(InputError) as error:
            build_spec(raw)
        assert str(error.value).startswith(f"{field}: expected 'module:function' naming a Python function")
        assert "'os:system' (defined in " in str(error.value)
    assert calls == []


@pytest.mark.parametrize("kind, why", [
    ("subprocess:run", "from the standard library's 'subprocess'"),
    ("spec_models:jax.numpy.ones_like", "defined in 'jax.numpy': name it there"),
])
def test_a_penalty_mask_from_the_standard_library_or_reexported_is_refused(kind, why):
    with pytest.raises(InputError) as error:
        build_spec(raw_spec(penalty_mask=kind))
    assert str(error.value) == (f"train.penalty_mask: expected 'module:function' naming a Python function of "
                                f"that package, got {kind!r} ({why})")


def test_a_penalty_mask_must_return_bools_shaped_like_the_params():
    with pytest.raises(InputError) as error:
        build_spec(raw_spec(penalty_mask="spec_models:plain_mlp"))
    assert str(error.value).startswith("train.penalty_mask: expected 'spec_models:plain_mlp' to take the params "
                                       "and return a mask, got TypeError: ")


MODELS = """
import tabnanny  # a standard-library module: the one beside the spec must not stand in for it

import jax.numpy as jnp


def make(input_shape, num_outputs):
    return (lambda key: {"w": jnp.zeros((input_shape[0], num_outputs))}), (lambda params, x: x @ params["w"])
"""

SHADOW = """
import pathlib
(pathlib.Path(__file__).parent / "SHADOWED").write_text("imported in place of the standard library's")
"""


@pytest.mark.parametrize("where", ["beside the spec", "elsewhere"])
def test_modules_beside_a_spec_are_found_but_never_shadow_the_standard_library(tmp_path, where):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "spec.toml").write_text(SPEC.replace("spec_models:plain_mlp", "mymodels:make")
                                     .replace("options = { width = 4 }", ""))
    (specs / "mymodels.py").write_text(MODELS)
    (specs / "tabnanny.py").write_text(SHADOW)
    cwd = specs if where == "beside the spec" else tmp_path
    done = subprocess.run([sys.executable, "-m", "jaxreg", "plan", str(specs / "spec.toml")],
                          capture_output=True, text=True, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trust: 1 configs x 1 seeds")
    assert not (specs / "SHADOWED").exists()


def test_a_pretrained_folder_may_import_only_what_the_spec_names_itself(folder, shipped):
    spec = {"name": "fine-tune", "data": {"dataset": "blobs", "n_test": 20},
            "model": {"kind": "spec_models:plain_mlp", "options": {"width": 4}, "pretrained": str(folder)},
            "train": {"epochs": 1}, "hparams": {"learning_rate": 0.1}}
    assert build_spec(spec).variants[0].init_params is not None  # the same factory as the spec's: imported
    spec["model"]["pretrained"] = str(shipped)
    with pytest.raises(InputError) as error:
        build_spec(spec)
    assert str(error.value) == (
        f"model.pretrained: expected a results folder or an exported .npz, got {str(shipped)!r} (model.kind: "
        f"expected 'mlp' or 'cnn' (a built-in model) in {shipped}, read without trusting its code, got "
        f"'helpers:plain_mlp' (it would import and run module 'helpers': only what this spec names itself is "
        f"imported from a pretrained folder or export))")
    assert not (shipped / "IMPORTED").exists()
