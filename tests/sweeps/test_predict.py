"""A best model predicts raw inputs: ``Best.predict`` and ``predict_proba`` apply the data set's
own preprocessing (standardization with the stored train mean and std, pixel scaling) and give
class names, so predictions on raw rows equal ``model.apply`` on the data set's split arrays;
``jaxreg.load_model`` of an export predicts as ``load_best`` of the folder; ``jaxreg predict``
writes one row per input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import jaxreg
from jaxreg import cli
from jaxreg import data as data_lib
from jaxreg.errors import InputError
from jaxreg.losses import predicted_class


def _sweep(tmp_path: Path, data: str, *, loss: str = "cross_entropy", model: str = "hidden = [8]") -> Path:
    """A tiny sweep (two configs, one seed, params kept: nothing is trained again) of ``data``."""
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
name = "predict"
[data]
{data}
{f'data_dir = "{tmp_path}"' if "path =" in data else ""}
seed = 3
[model]
{model}
[train]
epochs = 2
eval_every = 2
batch_size = 16
loss = "{loss}"
[hparams]
learning_rate = 0.1
l2 = {{ values = [0.0, 0.01] }}
[search]
seeds = 1
chunk_size = 2
[output]
params = true
""")
    out = tmp_path / "out"
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 0  # its stderr is in the report
    return out


def _split_outputs(best, x) -> np.ndarray:
    """The model on a split's arrays, as the sweep evaluated it."""
    outputs, _ = best.model.apply(best.params, best.state, x)
    return np.asarray(outputs)


def _features(n: int, seed: int) -> np.ndarray:
    """Raw features of very different scales: 0.1 to 5000."""
    rng = np.random.default_rng(seed)
    return rng.uniform([0.1, 100.0, 1000.0], [1.0, 900.0, 5000.0], size=(n, 3))


def _label(x: np.ndarray) -> np.ndarray:
    return np.where(x[:, 0] * 1000 + x[:, 2] > 3500, "tall", np.where(x[:, 1] > 500, "wide", "short"))


def _write_csv(path: Path, x: np.ndarray, labels) -> None:
    rows = ["width,height,depth,kind"] + [",".join(map(repr, map(float, row))) + f",{t}" for row, t in zip(x, labels)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def csv_study(tmp_path_factory):
    """A CSV of text labels, standardized, with a test file of its own: the raw test rows are
    that file's, the split arrays the data set's ``test``."""
    tmp = tmp_path_factory.mktemp("csv")
    x, test_x = _features(120, 0), _features(30, 1)
    _write_csv(tmp / "train.csv", x, _label(x))
    _write_csv(tmp / "test.csv", test_x, _label(test_x))
    out = _sweep(tmp, 'dataset = "csv"\npath = "train.csv"\ntest_path = "test.csv"\ntarget = "kind"\n'
                            'standardize = true\nval_fraction = 0.2')
    dataset = data_lib.load("csv", key=3, data_dir=tmp, path="train.csv", test_path="test.csv", target="kind",
                            standardize=True, val_fraction=0.2)
    return tmp, out, test_x, dataset


def test_csv_predictions_on_raw_rows_are_the_split_predictions_as_class_names(csv_study):
    tmp, out, test_x, dataset = csv_study
    best = jaxreg.load_best(out)
    classes = best.info["data"]["classes"]
    assert classes == ["short", "tall", "wide"]
    ids = np.asarray(predicted_class(_split_outputs(best, dataset.test.x)))
    predicted = best.predict(test_x)
    assert predicted.tolist() == [classes[i] for i in ids]
    rows = [list(map(float, row)) for row in test_x]  # a list of rows is raw input too
    assert best.predict(rows).tolist() == predicted.tolist()
    proba = best.predict_proba(test_x)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.argmax(proba, axis=1).tolist() == ids.tolist()  # columns in classes' order
    # the raw rows are far from the standardized ones: the model alone on them is not the same
    assert not np.allclose(_split_outputs(best, test_x.astype(np.float32)), _split_outputs(best, dataset.test.x))
    for seed in best.params_by_seed:
        assert best.predict(test_x, seed=seed).tolist() == predicted.tolist()


def test_predict_refuses_rows_of_another_shape_with_one_line(csv_study):
    _, out, test_x, _ = csv_study
    best = jaxreg.load_best(out)
    for given, message in ((test_x[:, :2], "x: expected numbers of shape (n, 3), got shape (30, 2)"),
                           ([["1", "2", "3"]], "x: expected numbers of shape (n, 3), got dtype <U1"),
                           ([[1.0, 2.0, 3.0], [1.0]], "x: expected numbers of shape (n, 3), got rows of different lengths")):
        with pytest.raises(InputError) as error:
            best.predict(given)
        assert str(error.value) == message
    with pytest.raises(InputError, match=r"^seed: expected one of the best config's seeds \[0\], got 7$"):
        best.predict(test_x, seed=7)


def test_load_model_of_an_export_predicts_as_load_best_of_the_folder(csv_study):
    tmp, out, test_x, _ = csv_study
    file = tmp / "best.npz"
    assert cli.main(["best", str(out), "--export", str(file)]) == 0
    model, best = jaxreg.load_model(file), jaxreg.load_best(out)
    assert model.predict(test_x).tolist() == best.predict(test_x).tolist()
    np.testing.assert_array_equal(model.predict_proba(test_x), best.predict_proba(test_x))
    with pytest.raises(InputError, match="^file: expected a file written by jaxreg best --export, got"):
        jaxreg.load_model(out)


def test_cli_predict_writes_one_row_per_input_from_a_csv(csv_study, capsys):
    tmp, out, test_x, _ = csv_study
    best = jaxreg.load_best(out)
    # the training file's columns, reordered, its label column kept: read by header name
    rows = ["kind,depth,width,height"] + [f"{t},{c!r},{a!r},{b!r}" for (a, b, c), t in zip(test_x.tolist(), _label(test_x))]
    (tmp / "new.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(tmp / "new.csv"), "--out", str(tmp / "p.csv")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"predicted 30 rows of {tmp / 'new.csv'} with best config ")
    assert "; accuracy " in printed and printed.endswith(f": {tmp / 'p.csv'}")
    with open(tmp / "p.csv", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["prediction", "p_short", "p_tall", "p_wide"]
    assert [row[0] for row in table[1:]] == best.predict(test_x).tolist()
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], float), best.predict_proba(test_x), rtol=1e-6)
    # features alone, no header; and an export file predicts the same
    (tmp / "bare.csv").write_text("\n".join(",".join(map(repr, row)) for row in test_x.tolist()) + "\n")
    cli.main(["best", str(out), "--export", str(tmp / "best.npz")])
    capsys.readouterr()
    assert cli.main(["predict", str(tmp / "best.npz"), str(tmp / "bare.csv"), "--out", str(tmp / "q.csv")]) == 0
    assert (tmp / "q.csv").read_text() == (tmp / "p.csv").read_text()
    # bad input: one line, exit 2, nothing written
    (tmp / "narrow.csv").write_text("1.0,2.0\n3.0,4.0\n")
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(tmp / "narrow.csv"), "--out", str(tmp / "r.csv")]) == 2
    assert capsys.readouterr().err == (f"jaxreg: error: path: expected rows of 3 feature columns (or the training "
                                       f"file's 4) in {tmp / 'narrow.csv'}, got 2\n")
    assert not (tmp / "r.csv").exists()


def test_npz_images_predict_raw_images_as_the_standardized_split(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = rng.integers(0, 256, size=(90, 4, 4)).astype(np.uint8)
    x[np.arange(90), y, y] = 255  # a bright pixel on the diagonal says the class
    test_x, test_y = x[:20], y[:20]
    np.savez(tmp_path / "train.npz", x=x[20:], y=y[20:])
    np.savez(tmp_path / "test.npz", x=test_x, y=test_y)
    out = _sweep(tmp_path, 'dataset = "npz"\npath = "train.npz"\ntest_path = "test.npz"\nstandardize = true')
    dataset = data_lib.load("npz", key=3, data_dir=tmp_path, path="train.npz", test_path="test.npz", standardize=True)
    best = jaxreg.load_best(out)
    ids = np.asarray(predicted_class(_split_outputs(best, dataset.test.x)))
    assert best.predict(test_x).tolist() == ids.tolist()  # class ids: the data has no names
    assert best.predict(test_x).dtype.kind == "i"


def test_regression_predicts_values_in_the_targets_units(tmp_path):
    x = _features(100, 2)
    y = 3.0 * x[:, 0] + x[:, 2] / 1000.0  # targets are never scaled: outputs are in their units
    np.savez(tmp_path / "train.npz", x=x[20:], y=y[20:])
    np.savez(tmp_path / "test.npz", x=x[:20], y=y[:20])
    out = _sweep(tmp_path, 'dataset = "npz"\npath = "train.npz"\ntest_path = "test.npz"\nstandardize = true',
                       loss="mse")
    dataset = data_lib.load("npz", key=3, data_dir=tmp_path, path="train.npz", test_path="test.npz", standardize=True)
    best = jaxreg.load_best(out)
    predicted = best.predict(x[:20])
    assert predicted.shape == (20,)
    np.testing.assert_array_equal(predicted, _split_outputs(best, dataset.test.x)[:, 0])
    with pytest.raises(InputError, match="^predict_proba: expected a model trained with loss 'cross_entropy' or "
                                         "'bce', got 'mse'"):
        best.predict_proba(x[:20])


def test_digits_predict_raw_pixel_counts_and_the_digits_kept(tmp_path):
    out = _sweep(tmp_path, 'dataset = "digits"\nclasses = [3, 8]\nn_train = 60')
    dataset = data_lib.load("digits", key=3, classes=[3, 8], n_train=60)
    best = jaxreg.load_best(out)
    counts = np.rint(dataset.test.x * 16).astype(np.int64)  # load_digits' own pixels: counts 0..16
    ids = np.asarray(predicted_class(_split_outputs(best, dataset.test.x)))
    assert best.predict(counts).tolist() == [[3, 8][i] for i in ids]
    assert best.predict(counts.reshape(-1, 8, 8)).tolist() == best.predict(counts).tolist()  # images too
