"""TensorBoard event files of a results folder, read back with TensorBoard's own reader."""

from __future__ import annotations

import numpy as np
import pytest

from jaxreg import cli, report
from jaxreg.sweeps import build_spec, run_sweep

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SPEC = {"name": "board", "data": {"dataset": "blobs"}, "model": {"hidden": [4]},
        "train": {"loss": "bce", "epochs": 6, "eval_every": 2, "batch_size": 25},
        "hparams": {"learning_rate": {"values": [0.05, 0.2]}}, "search": {"seeds": 2, "chunk_size": 2},
        "output": {"tensorboard": True, "plots": False}}


def _read(run_dir):
    reader = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    return reader


def test_every_trial_is_a_run_with_its_curves_and_hparams(tmp_path):
    from jaxreg.sweeps.api import finish
    from jaxreg.report.tensorboard import metric_tag

    spec = build_spec(SPEC)
    out = tmp_path / "out"
    records = run_sweep(spec, out, progress=False)
    _, written, _ = finish(spec, out, records)
    assert out / "tensorboard" in written
    runs = sorted(p.name for p in (out / "tensorboard").iterdir())
    assert runs == sorted(f"{r['config_id']}_{r['seed']}" for r in records)
    for record in records:
        reader = _read(out / "tensorboard" / f"{record['config_id']}_{record['seed']}")
        curves = report.load_curves(out, record["config_id"], record["seed"])
        for metric in ("train_loss", "val_loss", "val_accuracy", "weight_norm"):
            events = reader.Scalars(metric_tag(metric))
            assert [e.step for e in events] == curves["epochs"].tolist() == [2, 4, 6]
            np.testing.assert_allclose([e.value for e in events], curves[f"curve/{metric}"], rtol=1e-6)
        final = reader.Scalars("final/val_loss")
        assert final[-1].value == pytest.approx(record["metrics"]["val_loss"], rel=1e-6)
        hparams = reader.PluginTagToContent("hparams")
        assert set(hparams) >= {"_hparams_/experiment", "_hparams_/session_start_info"}
        start = hparams["_hparams_/session_start_info"]
        assert b"learning_rate" in start and str(record["config_id"]).encode() in start
    # Rewritten: the same runs, each with one event file (no duplicates left behind).
    from jaxreg.report.tensorboard import write_tensorboard

    write_tensorboard(out)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == runs
    assert all(len(list((out / "tensorboard" / run).iterdir())) == 1 for run in runs)


def test_overwrite_removes_the_runs_jaxreg_wrote_and_nothing_else(tmp_path, capsys):
    spec = tmp_path / "board.toml"
    spec.write_text("""
name = "board"
[data]
dataset = "blobs"
[model]
hidden = [4]
[train]
loss = "bce"
epochs = 2
batch_size = 50
[hparams]
learning_rate = 0.1
[output]
tensorboard = true
plots = false
""")
    out = tmp_path / "out"
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    assert "tensorboard" in capsys.readouterr().out.splitlines()[-1]
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet", "--overwrite"]) == 0
    (out / "tensorboard" / "my-notes").mkdir()
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert (out / "tensorboard" / "my-notes").is_dir()  # not jaxreg's: kept
