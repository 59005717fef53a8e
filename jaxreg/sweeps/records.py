"""What a sweep writes of each trained member: its journal line and its curves file's arrays.

The engine gives a chunk's results as arrays with a leading member axis and params as pytrees;
:mod:`jaxreg.report.store` writes and reads plain values without loading JAX. These functions
turn the one into the other: member ``i``'s line of ``trials.jsonl`` (:func:`trial_record`),
the arrays of its ``curves/CONFIG_SEED.npz`` (:func:`curve_arrays`, params keyed by their
pytree paths), and the devices a run's manifest entry names (:func:`local_devices`).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxreg.hparams import DEFAULTS, OPTIONAL, HParams
from jaxreg.names import result_metrics
from jaxreg.report.files import json_value

__all__ = ["curve_arrays", "local_devices", "trial_record"]


def local_devices() -> list[str]:
    """The devices this process trains on, as a manifest's run entry records them."""
    return [str(d) for d in jax.local_devices()]


def _recorded_hparams(hparams: HParams, i: int) -> dict:
    """Member ``i``'s hparams; the fields of batch norm, transfer and augmentation only where
    they differ from their defaults (records of sweeps that use none of them keep their form)."""
    values = {name: np.asarray(getattr(hparams, name)[i]) for name in HParams._fields}
    return {name: json_value(value) for name, value in values.items()
            if name not in OPTIONAL or not np.array_equal(value, DEFAULTS[name])}


def trial_record(cid: str, config, seed: int, i: int, result, hparams: HParams) -> dict:
    """The journal line of member ``i`` of a chunk's ``result``."""
    diverged = bool(result.diverged[i])
    return {
        "config_id": cid, "seed": int(seed), "round": config.round, "case": config.case,
        "point": json_value(config.point),
        "hparams": _recorded_hparams(hparams, i),
        "status": "diverged" if diverged else "ok",
        "best_epoch": int(result.best_epoch[i]), "stopped_epoch": int(result.stopped_epoch[i]),
        "diverged_epoch": int(result.diverged_epoch[i]),
        "metrics": {name: json_value(float(result.final[name][i])) for name in result_metrics(result.final)},
    }


def curve_arrays(result, i: int, with_params: bool, epochs) -> dict[str, np.ndarray]:
    """Member ``i``'s curves file (:meth:`jaxreg.report.store.Store.write_curves`): every metric's
    curve (``curve/NAME``), the histograms (``curve/hist/KIND/LAYER``, (evaluations, bins), and
    ``.../stats``), the completed epochs at each evaluation (``epochs``), and with
    ``with_params`` its params and model state (batch statistics), keyed ``params/PATH`` and
    ``state/PATH`` by their pytree paths (``jax.tree_util.keystr``)."""
    arrays = {f"curve/{name}": np.asarray(result.curves[name][i]) for name in result_metrics(result.curves)}
    arrays.update({f"curve/{name}": np.asarray(curve[i]) for name, curve in result.curves.items()
                   if name.startswith("hist/")})
    arrays["epochs"] = np.asarray(epochs)
    if with_params:
        for prefix, tree in (("params/", result.params), ("state/", result.model_state)):
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
                arrays[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf[i])
    return arrays
