"""TensorBoard event files of a results folder: one run per trial, its curves and its hparams.

``write_tensorboard(out)`` writes ``out/tensorboard/CONFIG_SEED/`` for every journaled trial:
each metric's curve as scalars at its epochs (``loss/train``, ``loss/val``, ``accuracy/val``,
..., ``weights/penalty``), and the hparams plugin's record of the trial (its swept values, case,
seed and config id) with its final metrics (``final/val_loss``, ...), so that TensorBoard's
HPARAMS tab tables and plots a sweep. ``tensorboard --logdir DIR/tensorboard`` opens it. The
files are written with tensorboardX, an optional extra (``pip install 'jaxreg[tensorboard]'``);
they derive from the journal and the curves files, and are rewritten whole, trial by trial.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import result_metrics
from jaxreg.report.files import TENSORBOARD
from jaxreg.report.journal import load_curves, read_journal
from jaxreg.report.manifest import record_files

__all__ = ["TENSORBOARD", "metric_tag", "write_tensorboard"]


def metric_tag(name: str) -> str:
    """A metric's scalar tag: ``val_loss`` -> ``loss/val`` (TensorBoard groups by the prefix)."""
    split, _, kind = name.partition("_")
    if kind in ("loss", "accuracy", "rmse", "mae", "r2"):
        return f"{kind}/{split}"
    return f"weights/{name}"


def _value(value):
    """An hparam as TensorBoard takes it: a number, or text (per-layer lists, None)."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return str(value)
    if isinstance(value, (int, float)):
        return value
    return str(value)


def _add_histograms(writer, curves, epochs: list) -> None:
    """``train.histograms``: each ``curve/hist/KIND/LAYER`` as a TensorBoard histogram per
    evaluation (tag ``KIND/LAYER``; the bins between the recorded min and max)."""
    for key in sorted(curves):
        if not key.startswith("curve/hist/") or key.endswith("/stats"):
            continue
        counts, stats = np.asarray(curves[key], float), np.asarray(curves[f"{key}/stats"], float)
        tag = key.removeprefix("curve/hist/")
        for epoch, count, (low, high, total, squares) in zip(epochs, counts, stats):
            if not (np.all(np.isfinite(count)) and math.isfinite(low) and math.isfinite(high)):
                continue  # after the run stopped or diverged
            edges = np.linspace(low, high, len(count) + 1)
            writer.add_histogram_raw(tag, min=low, max=high, num=int(count.sum()), sum=total, sum_squares=squares,
                                     bucket_limits=edges[1:].tolist(), bucket_counts=count.tolist(),
                                     global_step=int(epoch))


def write_tensorboard(out: str | Path, records: list[dict] | None = None) -> Path:
    """Writes the event files of every trial of ``records`` (default: the journal's) under
    ``out/tensorboard``; returns that folder.

    Raises:
        ImportError: tensorboardX is not installed.
    """
    try:
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams
    except ImportError:
        raise ImportError("TensorBoard files need tensorboardX: pip install 'jaxreg[tensorboard]'") from None
    out = Path(out)
    root = out / TENSORBOARD
    if root.is_symlink():
        raise InputError(f"{root}: expected a folder, got a symbolic link")
    record_files(out, [TENSORBOARD])  # jaxreg's folder: its runs are the journaled trials'
    root.mkdir(parents=True, exist_ok=True)
    for record in read_journal(out) if records is None else records:
        name = f"{record['config_id']}_{record['seed']}"
        curves = load_curves(out, record["config_id"], record["seed"])
        staging = root / f".{name}.tmp"
        if staging.is_symlink():
            raise InputError(f"{staging}: expected a folder, got a symbolic link")
        shutil.rmtree(staging, ignore_errors=True)
        writer = SummaryWriter(logdir=str(staging))
        try:
            epochs = np.asarray(curves["epochs"]).tolist()
            for metric in result_metrics({key[len("curve/"):]: None for key in curves if key.startswith("curve/")}):
                for epoch, value in zip(epochs, np.asarray(curves[f"curve/{metric}"], dtype=float).tolist()):
                    if math.isfinite(value):
                        writer.add_scalar(metric_tag(metric), value, int(epoch))
            _add_histograms(writer, curves, epochs)
            finals = {f"final/{m}": float(v) for m, v in record["metrics"].items()
                      if v is not None and math.isfinite(float(v))}
            params = {"config_id": record["config_id"], "seed": record["seed"],
                      "case": _value(record["case"]), **{k: _value(v) for k, v in record["point"].items()}}
            for summary in hparams(params, finals):  # experiment, session start, session end
                writer.file_writer.add_summary(summary)
            for tag, value in finals.items():  # the HPARAMS tab reads metrics from these scalars
                writer.add_scalar(tag, value, int(epochs[-1]) if epochs else 0)
        finally:
            writer.close()
        final = root / name
        if final.is_symlink():
            raise InputError(f"{final}: expected a folder, got a symbolic link")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    return root
