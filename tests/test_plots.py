"""End-to-end checks of jaxreg.plots on tiny real sweeps: which files, and that each is a real image.

Each sweep is trained once per module (compiling dominates); the variants (diverged trials, an
empty journal) edit copies of its results folder instead of training again.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from jaxreg import plots
from jaxreg.spec import load_spec
from jaxreg.sweep import run_sweep

HEAD = """
[data]
dataset = "digits"
n_train = 100
[model]
hidden = [8]
[train]
optimizer = "adam"
epochs = 4
eval_every = 2
[search]
seeds = 2
"""
GRID = HEAD + """
[hparams]
learning_rate = { logspace = [1e-3, 1e-1, 3] }
l2 = { values = [0.0, 0.001] }
"""
CASES = HEAD + """
[hparams]
learning_rate = 0.03
[cases.none]
[cases.l2]
l2 = 0.003
[cases.early]
patience = 1
"""
GRID_PLOTS = ["best_so_far.png", "curves.png", "generalization_gap.png", "metric_vs_l2.png",
              "metric_vs_learning_rate.png", "search_space.png"]


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
def cases(tmp_path_factory):
    return _run(tmp_path_factory, "cases", CASES)


def _copy(out, tmp_path):
    """A results folder without its PNG files, to edit."""
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.png"))
    return copy


def _assert_images(paths):
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
        image = imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) > 200, path.name
        # One integer per pixel: np.unique over rows of a million-pixel image takes seconds.
        pixels = (image[..., :3] * 255).astype(np.int64) @ np.array([1, 256, 65536])
        colours = len(np.unique(pixels))
        assert colours > 20, f"{path.name}: {colours} colours, expected a drawn figure"


def test_grid_with_two_numeric_axes(grid):
    paths = plots.plot_dir(grid)
    assert [p.name for p in paths] == GRID_PLOTS
    assert paths == sorted(paths) and all(p.parent == grid for p in paths)
    _assert_images(paths)


def test_cases_get_curves_and_gap_only(cases):
    """Three configs (too few for best_so_far) and no swept numeric axis inside any case."""
    paths = plots.plot_dir(cases)
    assert [p.name for p in paths] == ["curves.png", "generalization_gap.png"]
    _assert_images(paths)


def test_diverged_trials_are_plotted_without_a_metric(grid, tmp_path):
    out = _copy(grid, tmp_path)
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    for record in records:
        if record["point"]["learning_rate"] > 0.05:
            record.update(status="diverged", metrics={name: None for name in record["metrics"]})
    (out / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    paths = plots.plot_dir(out)
    assert [p.name for p in paths] == GRID_PLOTS
    _assert_images(paths)


def test_empty_journal_writes_nothing(grid, tmp_path):
    out = _copy(grid, tmp_path)
    (out / "trials.jsonl").write_text("")
    assert plots.plot_dir(out) == []
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize("values, log_form, expected", [
    ([1e-3, 1e-2, 1e-1], False, "log"),      # spans a factor 100
    ([0.02, 0.05], True, "log"),             # narrow, but sampled on a log scale
    ([0.0, 1e-4, 1e-2], False, "symlog"),    # zero among log-spaced values
    ([0.1, 0.2, 0.5], False, "linear"),
    ([-1.0, 1.0, 100.0], False, "linear"),   # no log axis takes negative values
])
def test_axis_scale(values, log_form, expected):
    ax = Figure().add_subplot()
    ax.scatter(values, values)
    plots._scale(ax, "x", values, log_form)
    assert ax.get_xscale() == expected
    assert ax.get_xlim()[0] < min(values) and ax.get_xlim()[1] > max(values)
