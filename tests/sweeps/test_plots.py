"""End-to-end checks of jaxreg.report.plots on tiny real sweeps: which files, and that each is a real image.

Each sweep is trained once per module (compiling dominates); the variants (diverged trials, an
empty journal) edit copies of its results folder instead of training again.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from jaxreg import cli, report
from jaxreg.report import plots
from jaxreg.report.folder import Folder, load_folder
from jaxreg.sweeps import build_spec, load_spec, run_sweep

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
[output]
params = true
"""
# Blobs (2-D, 100 points) with saved params; the dropout case evaluates on its own schedule,
# so it compiles its own program and its curves files hold other epochs.
BLOBS = """
[data]
dataset = "blobs"
n_val = 50
n_test = 50
[model]
hidden = [8, 8]
output = "sigmoid"
[train]
loss = "bce"
optimizer = "adam"
epochs = 20
batch_size = 25
eval_every = 2
[hparams]
learning_rate = 0.03
[cases.none]
[cases.l2]
l2 = { values = [0.001, 0.1] }
[cases.dropout]
dropout = [0.0, 0.5, 0.5]
[cases.dropout.train]
eval_every = 5
[search]
seeds = 2
[output]
params = true
plot_metrics = ["weight_norm", "val_loss", "train_accuracy"]
"""
GRID_PLOTS = ["best_so_far.png", "curves.png", "generalization_gap.png", "metric_vs_l2.png",
              "metric_vs_learning_rate.png", "search_space.png", "test_curves.png"]


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


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return _run(tmp_path_factory, "blobs", BLOBS)


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


def test_cases_get_curves_gap_and_weights(cases):
    """Three configs (too few for best_so_far), no swept numeric axis inside any case, and
    saved params of 64-D inputs: weight histograms, but no decision boundary."""
    paths = plots.plot_dir(cases, build=build_spec)
    assert [p.name for p in paths] == ["curves.png", "generalization_gap.png", "test_curves.png",
                                       "weights_hist.png"]
    _assert_images(paths)


def test_blobs_with_params_and_plot_metrics(blobs):
    """2-D data with saved params: the decision boundary; plot_metrics: one plot per extra
    metric and numeric axis (the search metric, listed too, is plotted once)."""
    paths = plots.plot_dir(blobs, build=build_spec)  # a grid of named cases: no best_so_far.png
    assert [p.name for p in paths] == [
        "curves.png", "decision_boundary.png", "generalization_gap.png",
        "metric_vs_l2.png", "test_curves.png", "train_accuracy_vs_l2.png", "weight_norm_vs_l2.png",
        "weights_hist.png"]
    _assert_images(paths)


def _sweep(out):
    return load_folder(out, build=build_spec)


def _line_epochs(fig) -> dict[str, list]:
    """The x values of each labelled line of the curves figure's first panel, by config (the
    label without its " [jaxreg.diagnose findings]")."""
    return {line.get_label().split(" [")[0]: line.get_xdata().tolist() for line in fig.axes[0].get_lines()
            if not line.get_label().startswith("_")}


def test_curves_use_each_trials_epochs(blobs, tmp_path):
    """The dropout case evaluates every 5 epochs, the others every 2: each line has its own x."""
    lines = _line_epochs(plots._curves(_sweep(blobs)))
    assert lines["dropout"] == [5, 10, 15, 20]
    assert lines["none"] == list(range(2, 21, 2))
    # Curves files without "epochs" (written before they recorded them): the spec's eval_every.
    out = _copy(blobs, tmp_path)
    for path in (out / "curves").glob("*.npz"):
        with np.load(path) as file:
            arrays = {k: file[k] for k in file.files if k != "epochs"}
        np.savez(path, **arrays)
    assert _line_epochs(plots._curves(_sweep(out)))["none"] == list(range(2, 21, 2))


def test_metric_vs_plots_the_metric_it_is_given(blobs):
    sweep = _sweep(blobs)
    fig = plots._metric_vs(sweep, "l2", metric="weight_norm")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "weight_norm" and "weight_norm against l2" in ax.get_title()
    expected = {r["l2"]: sweep.mean_of(r["config_id"], "weight_norm") for r in sweep.rows if "l2" in r}
    means = [c for c in ax.collections if c.get_label() == "l2 mean"][0].get_offsets()
    assert {float(x): float(y) for x, y in means} == pytest.approx(expected)
    assert expected[0.1] < expected[0.001]  # the stronger penalty leaves smaller weights


def test_decision_boundary_from_the_saved_params(blobs):
    """The saved params, rebuilt for the model, classify the training set as the journal says;
    the panel covers the data and draws the 0.5 contour."""
    from matplotlib.contour import ContourSet

    sweep = _sweep(blobs)
    fig = plots._decision_boundary(sweep)
    row, ax = sweep.shown()[0], fig.axes[0]  # the best config's panel comes first
    assert ax.get_title().startswith(f"{sweep.config_label(row)}, seed 0")
    variant = next(v for v in sweep.built.variants if row["case"] in v.cases)
    params = plots._rebuild_params(variant.model, sweep.params(row["config_id"], 0))
    train = variant.dataset.train
    predicted = np.asarray(variant.model.apply(params, {}, train.x, logits=False)[0])[:, 0] > 0.5
    record = next(r for r in sweep.trials[row["config_id"]] if r["seed"] == 0)
    assert np.mean(predicted == train.y) == pytest.approx(record["metrics"]["train_accuracy"])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < train.x[:, 0].min() and x1 > train.x[:, 0].max()
    assert y0 < train.x[:, 1].min() and y1 > train.x[:, 1].max()
    levels = [list(c.levels) for c in ax.collections if isinstance(c, ContourSet)]
    assert [0.5] in levels


def test_old_manifest_without_plot_metrics(blobs):
    """Manifests written before output.plot_metrics existed have no such key: no extra plots."""
    spec = report.load_manifest(blobs)["spec"]
    assert _sweep(blobs).plot_metrics == ["weight_norm", "train_accuracy"]  # val_loss: the search metric
    del spec["output"]["plot_metrics"]
    assert Folder(blobs, spec, report.read_journal(blobs)).plot_metrics == []


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
    ([1e-2, 0.1, 1e300], True, "log"),       # matplotlib's own margin overflows: it fell back to [1, 10]
    ([0.0, 0.1, 1e300], False, "symlog"),
    ([1e-300, 0.1], True, "log"),
])
def test_axis_scale(values, log_form, expected):
    fig = Figure()
    ax = fig.add_subplot()
    ax.scatter(values, values)
    plots.scale_axis(ax, "x", values, log_form)
    assert ax.get_xscale() == expected
    assert ax.get_xlim()[0] < min(values) and ax.get_xlim()[1] > max(values)
    fig.savefig(io.BytesIO(), format="png")  # ticks placed and labelled, no warning (they are errors here)
    assert all(np.isfinite(ax.get_xticks()))


# ------------------------------------------------- on the cases folder (conftest.py: cases_folder)
# Three named cases, two seeds, 24 epochs (none; l2 at 0.00188, 0.00176 and 0.01; patience 4).

def test_plots_skip_what_does_not_apply_and_say_why(cases_folder, capsys):
    skipped = []
    written = plots.plot_dir(cases_folder, on_skip=lambda name, why: skipped.append((name, why)))
    names = {p.name for p in written}
    assert "best_so_far.png" not in names and "metric_vs_l2.png" in names and "curves.png" in names
    assert ("best_so_far.png", "a grid of named cases has no search order to follow") in skipped
    assert ("weights_hist.png, decision_boundary.png", "no params saved: output.params is false") in skipped
    assert cli.main(["plot", str(cases_folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "skipped best_so_far.png: a grid of named cases has no search order to follow" in printed


def test_metric_vs_axis_draws_the_cases_without_that_axis_as_baselines(cases_folder):
    sweep = load_folder(cases_folder)
    fig = plots._metric_vs(sweep, "l2")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    baselines = [label for label in labels if "(no l2)" in label]
    assert sorted(label.split(" ")[0] for label in baselines) == ["none", "stop"]
    none = next(line for line in fig.axes[0].get_lines() if line.get_label().startswith("none (no l2)"))
    cid = next(r["config_id"] for r in sweep.rows if r["case"] == "none")
    assert none.get_ydata()[0] == pytest.approx(sweep.mean_of(cid, "val_loss"))


def test_curves_put_validation_loss_on_its_own_linear_axis(cases_folder):
    """Train and validation loss shared one log axis: a rising validation loss looked flat."""
    fig = plots._curves(load_folder(cases_folder))
    train, val = fig.axes[0], fig.axes[1]
    assert train.get_title() == "train loss" and val.get_title() == "val loss"
    assert val.get_yscale() == "linear" and val.get_shared_y_axes().get_siblings(val) == [val]
    curves = [plots._mean(c["val_loss"]) for c in
              (plots._curves_of(load_folder(cases_folder), r["config_id"]) for r in load_folder(cases_folder).shown())]
    late = np.concatenate([m[int(0.1 * len(m)):] for m in curves])
    low, high = val.get_ylim()
    assert low < np.nanmin(late) and high > np.nanmax(late) and high - low < 1.2 * (np.nanmax(late) - np.nanmin(late)) + 0.2
