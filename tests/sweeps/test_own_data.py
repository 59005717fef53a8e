"""A user's own data in and the best model out: ``from_arrays`` against a NumPy oracle, ``npz`` and
``csv`` data sets through ``jaxreg run``, resume, ``best --export`` and ``load_best``, a
regression sweep that keeps its float targets, ``jaxreg.sweep`` on arrays, and a finished study
grown with more seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import jaxreg
from jaxreg import cli, report
from jaxreg import data as data_lib
from jaxreg.errors import InputError


def _blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 4.0, 0.5] + [0.0, 10.0, -2.0]
    y = (x[:, 0] + 0.25 * (x[:, 1] - 10) > 0).astype(np.int64)
    return x, y


# ---------------------------------------------------------------------------------------------
# from_arrays: the splits, against a NumPy oracle


def _oracle_order(y, key_data):
    """The stratified order written out again: a permutation sorted by rank within class."""
    rng = np.random.default_rng(key_data)
    perm = rng.permutation(len(y))
    rank = np.empty(len(y))
    for label in np.unique(y):
        members = y[perm] == label
        rank[members] = (np.arange(members.sum()) + 0.5) / members.sum()
    return perm[np.argsort(rank, kind="stable")], rng


def test_from_arrays_splits_stratified_and_standardizes_on_train_only():
    x, y = _blobs()
    ds = data_lib.from_arrays(x, y, key=7, val_fraction=0.25, test_fraction=0.25, standardize=True)
    key_data = data_lib._key_data(7)
    order, _ = _oracle_order(y, key_data)
    test_idx, val_idx, train_idx = order[:60], order[60:120], order[120:]
    mean, std = x[train_idx].mean(0), x[train_idx].std(0)
    for split, idx in ((ds.train, train_idx), (ds.val, val_idx), (ds.test, test_idx)):
        np.testing.assert_array_equal(split.y, y[idx])
        assert split.y.dtype == np.int32 and split.x.dtype == np.float32
        np.testing.assert_array_equal(split.x, ((x[idx] - mean) / std).astype(np.float32))
    # stratified: each split keeps the class balance to within one example
    share = y.mean()
    for split in ds[:3]:
        assert abs(split.y.sum() - share * len(split.y)) <= 1
    assert ds.info["num_classes"] == 2 and ds.info["targets"] == "classes"
    np.testing.assert_array_equal(ds.info["standardize"]["mean"], mean)  # float64: the numbers applied
    # determinism per key; another key, other splits
    again = data_lib.from_arrays(x, y, key=7, val_fraction=0.25, test_fraction=0.25, standardize=True)
    other = data_lib.from_arrays(x, y, key=8, val_fraction=0.25, test_fraction=0.25, standardize=True)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(ds[:3], again[:3]))
    assert not np.array_equal(ds.train.y, other.train.y) or not np.array_equal(ds.train.x, other.train.x)


def test_from_arrays_targets_classes_values_and_names():
    x, _ = _blobs(50)
    floats = np.linspace(-1.312, 0.193, 50)
    reg = data_lib.from_arrays(x, floats, key=0)
    assert reg.info["targets"] == "values" and reg.info["num_classes"] is None and reg.info["num_outputs"] == 1
    every = np.sort(np.concatenate([s.y for s in reg[:3]]))
    np.testing.assert_array_equal(every, np.sort(floats).astype(np.float32))  # not their integer parts
    names = np.array(["dog", "cat", "emu"] * 16 + ["cat", "dog"])
    named = data_lib.from_arrays(x, names, key=0)
    assert named.info["classes"] == ["cat", "dog", "emu"] and named.info["num_classes"] == 3
    assert set(np.concatenate([s.y for s in named[:3]]).tolist()) == {0, 1, 2}
    counts = data_lib.from_arrays(x, np.arange(50) % 4, key=0, targets="values")
    assert counts.train.y.dtype == np.float32 and counts.info["num_classes"] is None
    given = data_lib.from_arrays(x[:30], np.arange(30) % 2, val=(x[30:40], np.arange(10) % 2),
                                 test=(x[40:], np.arange(10) % 2))
    assert [len(s.y) for s in given[:3]] == [30, 10, 10] and given.info["key_data"] is None
    np.testing.assert_array_equal(given.train.x, x[:30].astype(np.float32))  # nothing drawn: kept in order


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=np.zeros(5), y=np.zeros(5)), "data.x: expected a numeric array of shape (examples, features...), "
     "got shape (5,) of dtype float64"),
    (dict(x=np.zeros((5, 2)), y=np.zeros(4)), "data.y: expected one target per example (5 in data.x), got 4"),
    (dict(x=np.zeros((5, 2)), y=np.zeros(5), targets="labels"),
     "targets: expected one of 'auto', 'classes', 'values', got 'labels'"),
    (dict(x=np.zeros((5, 2)), y=np.array([0, 1, 2, 0.5, 1]), targets="classes"),
     "targets: expected class labels (integers or text) with targets = 'classes', got 0.5"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(10), val_fraction=0.6, test_fraction=0.5),
     "val_fraction: expected fractions that leave training examples (val_fraction + test_fraction < 1 of 10 "
     "examples), got 0.6 and 0.5"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(10), val=(np.zeros((2, 2)), np.zeros(2)), val_fraction=0.1),
     "val_fraction: expected none when the val split is given, got 0.1"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(10), test=(np.zeros((2, 3)), np.zeros(2))),
     "test.x: expected examples of shape (2,) (as in the data), got (3,)"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(10), key=None),
     "key: expected a jax PRNG key or an integer seed (arrays draws the splits at random), got None"),
])
def test_from_arrays_refuses_bad_input_with_one_line(kwargs, message):
    kwargs = {"key": 0, **kwargs}
    with pytest.raises(ValueError) as error:
        data_lib.from_arrays(kwargs.pop("x"), kwargs.pop("y"), **kwargs)
    assert str(error.value) == message


# ---------------------------------------------------------------------------------------------
# npz and csv files through the command line


def _spec(tmp_path: Path, data: str, **extra) -> Path:
    body = f"""
name = "own"
[data]
{data}
seed = 3
[model]
hidden = [8]
[train]
epochs = 6
eval_every = 2
batch_size = 16
[hparams]
learning_rate = 0.1
l2 = {{ values = [0.0, 0.01] }}
[search]
seeds = 2
chunk_size = 4
"""
    for table, text in extra.items():
        body += f"[{table}]\n{text}\n"
    path = tmp_path / "own.toml"
    path.write_text(body)
    return path


def _run(capsys, *args) -> str:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _test_accuracy_of(best, dataset, seed) -> np.float32:
    logits, _ = best.model.apply(best.params_by_seed[seed], best.state_by_seed[seed], dataset.test.x)
    correct = int(np.sum(np.argmax(np.asarray(logits), -1) == dataset.test.y))
    return np.float32(correct / len(dataset.test.y))


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_file_data_set_runs_resumes_and_exports_the_best_model(tmp_path, capsys, kind):
    x, y = _blobs()
    if kind == "npz":
        np.savez(tmp_path / "mine.npz", features=x, labels=y)
        data = 'dataset = "npz"\npath = "mine.npz"\nx = "features"\ny = "labels"\nstandardize = true'
    else:
        rows = ["a,b,c,kind"] + [f"{float(a)!r},{float(b)!r},{float(c)!r},{['cat', 'dog'][t]}" for (a, b, c), t in zip(x, y)]
        (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n")
        data = 'dataset = "csv"\npath = "mine.csv"\ntarget = "kind"\nstandardize = true'
    spec = _spec(tmp_path, data + f'\ndata_dir = "{tmp_path}"')
    out = tmp_path / "r"
    _run(capsys, "run", str(spec), "--out", str(out), "--quiet")
    journal = (out / "trials.jsonl").read_bytes()
    assert len(journal.splitlines()) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["spec"]["data"]["sha256"]) == {"path"}

    _run(capsys, "run", str(spec), "--out", str(out), "--quiet")  # resume: nothing left to train
    assert (out / "trials.jsonl").read_bytes() == journal

    printed = _run(capsys, "best", str(out), "--export", str(tmp_path / "best.npz"))
    assert printed.splitlines()[0].startswith("own: best config ")
    best = jaxreg.load_best(tmp_path / "best.npz")
    from jaxreg.sweeps import load_spec

    dataset = load_spec(spec).dataset
    records = {(r["config_id"], r["seed"]): r for r in report.read_journal(out)}
    assert len(best.params_by_seed) == 2
    for seed in best.params_by_seed:
        journaled = records[(best.info["config_id"], seed)]["metrics"]["test_accuracy"]
        assert _test_accuracy_of(best, dataset, seed) == np.float32(journaled)
    # The same from the folder (no params were kept: the config is trained again, bitwise).
    again = jaxreg.load_best(out)
    for seed, params in again.params_by_seed.items():
        assert all(np.array_equal(a, b) for a, b in zip(jaxreg_leaves(params), jaxreg_leaves(best.params_by_seed[seed])))

    # A changed data file is another study: refused, the folder untouched.
    if kind == "npz":
        np.savez(tmp_path / "mine.npz", features=x + 1, labels=y)
    else:
        (tmp_path / "mine.csv").write_text((tmp_path / "mine.csv").read_text().replace("cat", "cow"))
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 2
    assert "data.sha256.path is '" in capsys.readouterr().err
    assert (out / "trials.jsonl").read_bytes() == journal


def jaxreg_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def _huge_npz(path):
    """A .npz whose x.npy header claims shape (1e12, 4) over 32 bytes of data: NumPy would
    allocate 32 TB before reading them."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 4)})
    y = io.BytesIO()
    np.save(y, np.zeros(4))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(32))
        archive.writestr("y.npy", y.getvalue())


@pytest.mark.parametrize("data, message", [
    ('dataset = "npz"', "data.path: expected the path of a .npz file for dataset 'npz', got nothing"),
    ('dataset = "npz"\npath = "nowhere.npz"', "data.path: expected a readable .npz file, got '{dir}/nowhere.npz' (not found)"),
    ('dataset = "npz"\npath = "huge.npz"', "data.path: expected a .npz file whose arrays hold the data their headers "
     "claim, got '{dir}/huge.npz' with array 'x' of shape (1000000000000, 4) (float64, 32000000000000 bytes) in "
     "160 bytes"),
    ('dataset = "csv"\npath = "x.csv"\ntarget = "price"', "data.target: expected a column of {dir}/x.csv (its header "
     "names 'a', 'b'), got 'price'"),
    ('dataset = "csv"\npath = "nan.csv"', "data.path: expected finite numbers in the feature columns of {dir}/nan.csv, "
     "got 'nan' in line 5, column 'a'"),  # the file's line (a blank line skipped), not the split's row
    ('dataset = "csv"\npath = "inf-target.csv"\ntargets = "values"', "data.path: expected finite targets in the "
     "target column of {dir}/inf-target.csv, got 'inf' in line 3"),
    ('dataset = "csv"\npath = "bad.csv"', "data.path: expected finite numbers in the feature columns of {dir}/bad.csv, got "
     "'n/a' in line 3, column 'a'"),
    ('dataset = "digits"\ndata_dir = "somewhere"',
     "data.data_dir: expected none for dataset 'digits' (it reads no files), got '{dir}/somewhere'"),
])
def test_a_bad_data_table_is_one_line_before_anything_runs(tmp_path, capsys, monkeypatch, data, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n1,0\n2,1\n")
    (tmp_path / "bad.csv").write_text("a,b\n1,0\nn/a,1\n")
    (tmp_path / "nan.csv").write_text("a,b\n1,0\n\n2,1\nnan,0\n")
    (tmp_path / "inf-target.csv").write_text("a,b\n1,0.5\n2,inf\n")
    _huge_npz(tmp_path / "huge.npz")
    spec = _spec(tmp_path, data)
    assert cli.main(["run", str(spec), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"jaxreg: error: {message.format(dir=tmp_path)}\n"
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# Python: jaxreg.sweep on arrays, regression


def test_a_regression_sweep_on_arrays_keeps_float_targets(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([0.061, 0.193, -1.312]) + 0.05 * rng.normal(size=200)
    spec = {"name": "reg", "model": {"hidden": [8]},
            "train": {"loss": "mse", "epochs": 6, "eval_every": 2, "batch_size": 20},
            "hparams": {"learning_rate": 0.05, "l2": {"values": [0.0, 0.1]}},
            "search": {"seeds": 2, "chunk_size": 4}, "data": {"standardize": True}}
    result = jaxreg.sweep(spec, data=(x, y), out=tmp_path / "reg", progress=False, plots=False)
    assert result.spec.dataset.train.y.dtype == np.float32
    every = np.sort(np.concatenate([s.y for s in result.spec.dataset[:3]]))
    np.testing.assert_array_equal(every, np.sort(y).astype(np.float32))
    assert [p.name for p in result.written] == ["summary.csv", "trials.csv"]
    assert len(result.records) == 4 and "val_loss" in result.table()
    assert all(r["metrics"]["val_accuracy"] is None for r in result.records)  # no accuracy for values
    best = jaxreg.load_best(tmp_path / "reg", data=(x, y))
    predictions, _ = best.model.apply(best.params, best.state, result.spec.dataset.val.x)
    mse = np.mean((np.asarray(predictions)[:, 0] - result.spec.dataset.val.y) ** 2)
    assert mse == pytest.approx(best.info["trial_metrics"][str(best.seed)]["val_loss"], rel=1e-5)
    # Resuming on other arrays is refused, naming the data's fingerprint.
    with pytest.raises(InputError, match=r"data.sha256 is '[0-9a-f]{64}' there, '[0-9a-f]{64}' here"):
        jaxreg.sweep(spec, data=(x, y + 1), out=tmp_path / "reg", progress=False, plots=False)
    with pytest.raises(InputError, match="got 'arrays' without data"):
        jaxreg.load_best(tmp_path / "reg")


# ---------------------------------------------------------------------------------------------
# Growing a finished study


def test_growing_the_demo_from_5_to_7_seeds_trains_14_trials_and_keeps_the_old_lines(tmp_path, capsys):
    out = tmp_path / "demo"
    short = ["--set", "train.epochs=8", "--quiet"]
    _run(capsys, "run", "sweeps/demo.toml", "--out", str(out), *short)
    before = (out / "trials.jsonl").read_bytes()
    assert len(before.splitlines()) == 35
    _run(capsys, "run", "sweeps/demo.toml", "--out", str(out), "--set", "search.seeds=7", *short)
    after = (out / "trials.jsonl").read_bytes()
    assert after[:len(before)] == before and len(after.splitlines()) == 49
    new = [json.loads(line) for line in after[len(before):].splitlines()]
    assert sorted({r["seed"] for r in new}) == [5, 6] and len(new) == 14
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][-1]["trials_trained"] == 14 and "grew_from" in manifest["runs"][-1]
    assert manifest["spec"]["search"]["seeds"] == list(range(7))
    # output settings are no change to a trial; a change to what a trial computes is refused
    _run(capsys, "run", "sweeps/demo.toml", "--out", str(out), "--set", "search.seeds=7",
         "--set", "output.plots=false", *short)
    assert (out / "trials.jsonl").read_bytes() == after
    assert cli.main(["run", "sweeps/demo.toml", "--out", str(out), "--set", "train.epochs=12", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs is 8 there, 12 here): expected the same data, model, train and fixed hparams" in err
    assert (out / "trials.jsonl").read_bytes() == after


def test_random_search_trains_each_distinct_config_once(tmp_path, capsys):
    """A case without axes and a categorical axis with fewer values than samples repeat draws."""
    random = ["--set", 'search.method="random"', "--set", "search.samples=4"]
    printed = _run(capsys, "plan", "sweeps/demo.toml", *random)
    assert printed.splitlines()[0].startswith("demo: 8 configs x 5 seeds = 40 trials (random search)")
    assert printed.splitlines()[1] == ("note: 8 of 16 random draws repeat a config of their case (a case without "
                                       "axes, or fewer values than search.samples): each config is trained once")
    from jaxreg.sweeps import load_spec
    from jaxreg.sweeps.run import config_id

    spec = load_spec("sweeps/demo.toml", ['search.method="random"', "search.samples=4"])
    ids = [config_id(c) for c in spec.configs()]
    assert len(ids) == len(set(ids)) == 8
    cases = [c.case for c in spec.configs()]
    assert cases.count("none") == 1 and cases.count("early_stopping") == 1 and cases.count("dropout") == 2
    # more samples keep the first draws (a random study grows)
    more = load_spec("sweeps/demo.toml", ['search.method="random"', "search.samples=6"])
    assert set(ids) <= {config_id(c) for c in more.configs()}


def test_command_line_rough_edges(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"jaxreg {jaxreg.__version__}\n"
    from jaxreg.sweeps.spec import parse_override

    assert parse_override("data.data_dir=../data") == (["data", "data_dir"], "../data")
    assert parse_override("data.path=~/x/mine.csv") == (["data", "path"], "~/x/mine.csv")
    assert parse_override("model.kind=mypkg.models:mlp") == (["model", "kind"], "mypkg.models:mlp")
    printed = _run(capsys, "plan", "sweeps/demo.toml", "--set", "hparams.l2=1e-5")
    assert printed.splitlines()[0] == ("note: --set hparams.l2 applies to every case that does not set l2 itself: "
                                       "none, dropout, early_stopping (use --set cases.NAME.l2=... for one case)")


def test_a_key_added_since_with_default_none_does_not_stop_an_older_folder_from_resuming():
    from jaxreg.sweeps.spec import compute_difference

    old = {"data": {"dataset": "digits", "seed": 0}, "model": {}, "train": {}}
    new = {"data": {"dataset": "digits", "seed": 0, "classes": None}, "model": {}, "train": {}}
    assert compute_difference(old, new) is None and compute_difference(new, old) is None
    chosen = {**new, "data": {**new["data"], "classes": [0, 1]}}
    assert compute_difference(old, chosen) == "data.classes is unset there, [0, 1] here"


# ---------------------------------------------------------------------------------------------
# Paths in a spec, and standardization by default


def _write_csv(path: Path, x, labels) -> None:
    rows = ["a,b,c,kind"] + [f"{float(a)!r},{float(b)!r},{float(c)!r},{k}" for (a, b, c), k in zip(x, labels)]
    path.write_text("\n".join(rows) + "\n")


def test_a_specs_paths_are_read_from_its_folder_and_overrides_from_the_working_directory(tmp_path, monkeypatch):
    from jaxreg.sweeps import load_spec

    x, y = _blobs(60)
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    _write_csv(project / "flowers.csv", x, np.array(["iris", "rose"])[y])
    _write_csv(elsewhere / "flowers.csv", x + 100.0, np.array(["iris", "rose"])[y])  # another file, same name
    spec = _spec(project, 'dataset = "csv"\npath = "flowers.csv"\ntarget = "kind"\nstandardize = false')
    monkeypatch.chdir(elsewhere)
    built = load_spec(spec)
    assert built.resolved["data"]["path"] == str(project / "flowers.csv")
    np.testing.assert_allclose(np.sort(np.concatenate([s.x[:, 0] for s in built.dataset[:3]])),
                               np.sort(x[:, 0]).astype(np.float32))
    # --set data.path=flowers.csv: a shell argument, read from the working directory
    moved = load_spec(spec, ["data.path=flowers.csv"])
    assert moved.resolved["data"]["path"] == str(elsewhere / "flowers.csv")
    assert np.min(np.concatenate([s.x[:, 0] for s in moved.dataset[:3]])) > 90
    # not found: the message names the absolute path it looked for
    with pytest.raises(InputError, match=f"^data.path: expected a readable .csv file, got "
                                         f"'{project}/missing.csv' \\(not found\\)$"):
        load_spec(spec, ["data.path=../project/missing.csv"])
    # the Python API with a relative path names where it looked too
    with pytest.raises(data_lib.DatasetError, match=f"got 'missing.csv' \\(not found at {elsewhere}/missing.csv\\)"):
        data_lib.load("csv", path="missing.csv", key=0)


def test_a_study_grows_from_a_moved_project_when_its_data_is_the_same(tmp_path):
    """The data's SHA-256 names it: the same file read from another folder computes the same trials."""
    from jaxreg.sweeps.spec import compute_difference

    there = {"data": {"dataset": "csv", "path": "/a/flowers.csv", "sha256": {"path": "1" * 64}},
             "model": {"kind": "mlp", "pretrained": "/a/results/source", "pretrained_sha256": "2" * 64},
             "train": {}, "hparams": {}, "search": {"method": "grid"}}
    moved = json.loads(json.dumps(there).replace('"/a/', '"/b/'))
    assert compute_difference(there, moved) is None
    changed = json.loads(json.dumps(moved).replace("1" * 64, "3" * 64))
    assert compute_difference(there, changed).startswith("data.sha256.path is '1111")
    no_hash = {**there, "data": {"dataset": "digits", "data_dir": "/a"}}
    assert compute_difference(no_hash, {**no_hash, "data": {"dataset": "digits", "data_dir": "/b"}}) == \
        "data.data_dir is '/a' there, '/b' here"


def test_csv_and_npz_features_are_standardized_by_default_and_images_are_not(tmp_path):
    from jaxreg.sweeps import load_spec

    rng = np.random.default_rng(1)
    x = rng.uniform(size=(90, 3)) * [0.1, 50.0, 5000.0]
    y = (x[:, 0] / 0.1 + x[:, 2] / 5000 > 1).astype(int)
    _write_csv(tmp_path / "raw.csv", x, np.array(["no", "yes"])[y])
    built = load_spec(_spec(tmp_path, 'dataset = "csv"\npath = "raw.csv"\ntarget = "kind"'))
    train = built.dataset.train.x
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-5)
    assert built.dataset.info["standardize"] is not None
    np.savez(tmp_path / "rows.npz", x=x, y=y)
    rows = load_spec(_spec(tmp_path, 'dataset = "npz"\npath = "rows.npz"')).dataset
    np.testing.assert_allclose(rows.train.x.std(0), 1, atol=1e-5)
    np.savez(tmp_path / "images.npz", x=rng.uniform(size=(40, 4, 4)), y=rng.integers(0, 2, 40))
    images = load_spec(_spec(tmp_path, 'dataset = "npz"\npath = "images.npz"')).dataset
    assert images.info["standardize"] is None and float(images.train.x.max()) <= 1.0
    with pytest.raises(InputError, match="^data.standardize: expected True, False or 'auto', got 'yes'$"):
        load_spec(_spec(tmp_path, 'dataset = "npz"\npath = "rows.npz"\nstandardize = "yes"'))


def test_unscaled_features_left_unstandardized_are_a_finding(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(80, 3)) * [0.1, 50.0, 5000.0]
    y = (x[:, 0] / 0.1 + x[:, 2] / 5000 > 1).astype(int)
    _write_csv(tmp_path / "raw.csv", x, np.array(["no", "yes"])[y])
    line = "differ in scale by"
    for standardize, said in (("false", True), ("true", False)):
        spec = _spec(tmp_path, f'dataset = "csv"\npath = "raw.csv"\ntarget = "kind"\nstandardize = {standardize}')
        spec.write_text(spec.read_text().replace("epochs = 6\neval_every = 2", "epochs = 2\neval_every = 1")
                        .replace("seeds = 2", "seeds = 1"))
        out = tmp_path / f"r-{standardize}"
        printed = _run(capsys, "run", str(spec), "--out", str(out), "--quiet")
        assert (line in printed) is said
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["scales"][""]["standardized"] is not said
        low, high = manifest["scales"][""]["feature_std"]
        assert high / low > 1000


@pytest.mark.parametrize("labels", [np.array([-1, 1]), np.array([-1.0, 0.0])])
def test_negative_integer_labels_are_classes_named_by_their_values(labels):
    x, y = _blobs(40)
    ds = data_lib.from_arrays(x, labels[y], key=0)
    assert ds.info["targets"] == "classes" and ds.info["num_classes"] == 2
    assert ds.info["classes"] == [int(labels[0]), int(labels[1])]
    for split in ds[:3]:
        assert split.y.dtype == np.int32 and set(split.y.tolist()) <= {0, 1}
    every = np.concatenate([s.y for s in ds[:3]])
    assert np.sum(every == 1) == np.sum(y == 1)  # id 1 is the larger label
