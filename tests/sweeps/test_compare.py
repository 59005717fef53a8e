"""jaxreg compare on two tiny real sweeps (a grid and a coarse-to-fine search): its three files,
the best-so-far numbers against the journal, shared log axes, and one-line errors for bad input.

Each sweep is trained once per module; the error cases edit copies of its results folder.
"""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
from matplotlib.image import imread

from jaxreg import cli, report
from jaxreg.errors import InputError
from jaxreg.report import compare as compare_lib
from jaxreg.report import store
from jaxreg.report.compare import compare, load_folders, plot_best_so_far, plot_sampled_points
from jaxreg.sweeps import build_spec, load_spec, run_sweep
from cases_sweep import CASES

HEAD = """
[data]
dataset = "digits"
n_train = 60
[model]
hidden = [8]
[train]
optimizer = "momentum"
epochs = 4
eval_every = 2
batch_size = 20
"""
GRID = 'name = "tiny-grid"' + HEAD + """
[hparams]
learning_rate = { logspace = [1e-3, 1e-1, 2] }
l2 = { linspace = [0.0, 1e-3, 2] }
[search]
seeds = 2
"""
# The learning rate on a LINEAR scale here: compare still draws it on the grid's log axis.
COARSE_TO_FINE = 'name = "tiny-c2f"' + HEAD + """
[hparams]
learning_rate = { uniform = [1e-3, 1e-1] }
l2 = { uniform = [0.0, 1e-3] }
[search]
method = "coarse_to_fine"
rounds = 2
samples = 3
top_k = 1
seeds = 2
"""
ERROR = re.compile(r"[\w.-]+: expected .+, got .+")


def _run(tmp_path_factory, name: str, text: str):
    folder = tmp_path_factory.mktemp(name)
    (folder / f"{name}.toml").write_text(text)
    out = folder / "out"
    run_sweep(load_spec(folder / f"{name}.toml"), out, progress=False)
    return out


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return _run(tmp_path_factory, "grid", GRID)


@pytest.fixture(scope="module")
def c2f(tmp_path_factory):
    return _run(tmp_path_factory, "c2f", COARSE_TO_FINE)


def _copy(out, tmp_path, name="copy"):
    copy = tmp_path / name
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.png", "curves"))
    return copy


def _edit_manifest(folder, **search):
    path = folder / report.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["spec"]["search"].update(search)
    # As a run of that spec writes it: the spec's digests follow it (else the edit is refused).
    manifest.update(spec_sha256=store.spec_sha256(manifest["spec"]), spec_parts=store.spec_parts(manifest["spec"]))
    path.write_text(json.dumps(manifest))


def test_writes_csv_and_two_plots(grid, c2f, tmp_path):
    out = tmp_path / "cmp"
    written = compare([grid, c2f], out)
    assert sorted(p.name for p in written) == ["best_so_far.png", "comparison.csv", "sampled_points.png"]
    for path in written[1:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) > 300
    rows = list(csv.DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [r["label"] for r in rows] == ["tiny-grid", "tiny-c2f"]
    assert [r["method"] for r in rows] == ["grid", "coarse_to_fine (2 rounds of random, not worse by 1 SE)"]
    assert [r["configs"] for r in rows] == ["4", "6"] and [r["trials"] for r in rows] == ["8", "12"]
    for row, folder in zip(rows, (grid, c2f)):
        best = report.summarize(report.read_journal(folder), report.load_manifest(folder)["spec"]["search"])[0]
        assert row["best_config_id"] == best["config_id"] and row["metric"] == "val_loss"
        assert float(row["val_loss_mean"]) == pytest.approx(best["val_loss_mean"])
        assert float(row["best_learning_rate"]) == pytest.approx(best["learning_rate"])
        assert 0.0 < float(row["test_accuracy_mean"]) <= 1.0 and float(row["seconds"]) > 0


def test_best_so_far_follows_the_journal(grid, c2f):
    for folder in load_folders([grid, c2f]):
        means = {r["config_id"]: r["val_loss_mean"] for r in folder.rows}
        order = list(dict.fromkeys(r["config_id"] for r in folder.records))
        expected = np.minimum.accumulate([means[cid] for cid in order])
        np.testing.assert_allclose(folder.best_so_far(), expected)
        assert folder.best_so_far()[-1] == folder.rows[0]["val_loss_mean"]
    fig = plot_best_so_far(load_folders([grid, c2f]))
    full, zoom = fig.axes
    assert [line.get_label().split(":")[0] for line in zoom.get_lines()[::2]] == ["tiny-grid", "tiny-c2f"]


def test_sampled_points_share_the_log_axis_and_range(grid, c2f):
    fig = plot_sampled_points(load_folders([grid, c2f]))
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:2]
    assert [ax.get_xscale() for ax in panels] == ["log", "log"]  # the grid samples it on a log scale
    assert [ax.get_yscale() for ax in panels] == ["linear", "linear"]
    assert panels[0].get_xlim() == panels[1].get_xlim() and panels[0].get_ylim() == panels[1].get_ylim()
    assert "configs per decade from 0.001 to 0.1: 2 | 2" in panels[0].get_xlabel()


def test_one_numeric_axis_is_drawn_against_the_metric(grid, tmp_path):
    copy = _copy(grid, tmp_path)
    records = report.read_journal(copy)
    for record in records:
        record["point"]["l2"] = 0.0
    (copy / report.JOURNAL).write_text("".join(json.dumps(r) + "\n" for r in records))
    fig = plot_sampled_points(load_folders([copy]))
    assert fig.axes[0].get_ylabel() == "val_loss"
    assert compare([copy], tmp_path / "one")


def test_cli(grid, c2f, tmp_path, capsys):
    assert cli.main(["compare", str(grid), str(c2f), "--out", str(tmp_path / "cmp")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "cmp" / n) for n in
                                               ("comparison.csv", "best_so_far.png", "sampled_points.png")]
    assert cli.main(["compare", str(grid)]) == 2
    assert capsys.readouterr().err.strip() == ("jaxreg: error: --out: expected a path to write to (predict: the "
                                                  "predictions' CSV; compare: a folder), got nothing")


def _bad_inputs(grid, c2f, tmp_path):
    other_metric = _copy(c2f, tmp_path, "accuracy")
    _edit_manifest(other_metric, metric="val_accuracy", goal="maximize")
    other_goal = _copy(c2f, tmp_path, "goal")
    _edit_manifest(other_goal, goal="maximize")
    empty = _copy(grid, tmp_path, "empty")
    (empty / report.JOURNAL).write_text("")
    no_spec = _copy(grid, tmp_path, "no-spec")
    (no_spec / report.MANIFEST).write_text("{}")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    (tmp_path / "plain").mkdir()
    return {
        "not a results folder": ([tmp_path / "plain"], "DIR: expected a jaxreg results folder"),
        "no spec in the manifest": ([no_spec], "DIR: expected a manifest with spec, spec_sha256 and runs in"),
        "no trials": ([grid, empty], "DIR: expected a results folder with finished trials"),
        "other metric": ([grid, other_metric], "search.metric: expected the same metric in every folder, "
                         "got 'val_loss'"),
        "other goal": ([grid, other_goal], "search.goal: expected the same goal"),
        "twice": ([grid, c2f, grid], "DIR: expected distinct results folders"),
    }, a_file


def test_bad_input_is_one_line_and_writes_nothing(grid, c2f, tmp_path, capsys):
    cases, a_file = _bad_inputs(grid, c2f, tmp_path)
    out = tmp_path / "cmp"
    for name, (dirs, message) in cases.items():
        with pytest.raises(InputError, match=re.escape(message)):
            compare(dirs, out)
        assert cli.main(["compare", *map(str, dirs), "--out", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ERROR.fullmatch(err.strip().removeprefix("jaxreg: error: ")), err
        assert not out.exists(), name
    with pytest.raises(InputError, match=r"^--out: expected a folder, got .* \(a file\)$"):
        compare([grid], a_file)
    with pytest.raises(InputError, match=r"^--out: expected a folder other than the compared ones"):
        compare([grid, c2f], c2f)
    assert not (c2f / "sampled_points.png").exists()


# ------------------------------------------------- on the cases folder (conftest.py: cases_folder)
# Three named cases, two seeds, 24 epochs (none; l2 at 0.00188, 0.00176 and 0.01; patience 4).

def test_compare_draws_folders_with_cases_and_writes_nothing_when_it_fails(cases_folder, tmp_path, monkeypatch):
    """It raised KeyError: 'l2' (a case without the axis) after writing comparison.csv."""
    other = tmp_path / "other"
    run_sweep(build_spec({**CASES, "name": "other", "cases": {"none": {}, "l2": {"l2": {"values": [0.1, 0.3]}}}}),
              other, progress=False)
    written = compare_lib.compare([cases_folder, other], tmp_path / "cmp")
    assert sorted(p.name for p in written) == ["best_so_far.png", "comparison.csv", "sampled_points.png"]

    def broken(folders):
        raise RuntimeError("a figure failed")

    monkeypatch.setattr(compare_lib, "plot_sampled_points", broken)
    with pytest.raises(RuntimeError):
        compare_lib.compare([cases_folder, other], tmp_path / "half")
    assert not (tmp_path / "half").exists()
