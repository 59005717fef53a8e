"""The best config of a results folder, out: its params (all seeds), a file that rebuilds it, and
``load_best`` for Python.

``best_config(out)`` ranks the folder's configs as the summary does and returns the best one's
trials. ``best_params(out)`` gives its params and model state per seed: from the curves files
when the sweep kept them (``output.params``), else by training that config and seed again
(the same hparams, seed and chunk size give bitwise the same run; the retrained metrics are
checked against the journal's). ``export_best(out, file)`` writes them to one ``.npz`` with a
manifest from which ``load_best(file)`` rebuilds the model without the data.

The work is :mod:`jaxreg.sweeps.trained`'s; these functions hand it the spec and model builders
of :mod:`jaxreg.sweeps.build`, which imports that module (a ``model.pretrained`` folder or export
is loaded through it) and so cannot be imported by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxreg.errors import InputError
from jaxreg.sweeps import trained
from jaxreg.sweeps.build import build_model, build_spec
from jaxreg.sweeps.trained import Best, BestConfig, best_config

__all__ = ["Best", "BestConfig", "best_config", "best_params", "export_best", "load_best", "load_model"]


def best_params(out: str | Path, *, data=None, log=None, trust_code: bool = False
                ) -> tuple[BestConfig, Any, dict, dict, list[str]]:
    """The best config, its model, and its params and model state by seed.

    Saved params are read from the curves files; otherwise the trials are trained again, alone,
    with the chunk size they were trained with (the manifest's), which gives bitwise the same
    run: the retrained metrics must equal the journal's, and the returned notes say if they
    don't (another jaxreg or XLA version, or another machine). ``data``: a user's data, for a
    sweep run on arrays (``data.dataset = "arrays"``). ``trust_code``: import the code the
    folder's spec names (a ``module:function`` model or penalty mask); without it such a folder
    is refused (InputError), since opening a folder must not run its author's code.

    Returns:
        ``(best, variant, params_by_seed, state_by_seed, notes)``.
    """
    return trained.best_params(out, build_spec=build_spec, data=data, log=log, trust_code=trust_code)


def export_best(out: str | Path, file: str | Path, *, data=None, log=None, trust_code: bool = False) -> dict:
    """Writes the best config's params and model state (every seed) and a manifest that
    rebuilds its model to ``file`` (``.npz``); returns the manifest. ``trust_code``: as
    :func:`best_params`."""
    return trained.export_best(out, file, build_spec=build_spec, data=data, log=log, trust_code=trust_code)


def load_best(path: str | Path, *, seed: int | None = None, data=None, log=None, trust_code: bool = False) -> Best:
    """The best model of a results folder, or of a file written by ``jaxreg best --export``.

    Args:
        path: a results folder or an exported ``.npz``.
        seed: which seed's params to return as ``params`` (default: the best seed by the search
            metric); every seed's are in ``params_by_seed``.
        data: for a sweep run on arrays (:func:`jaxreg.sweep` with ``data=``) that kept no
            params: the same data, to train the best config again.
        log: a callable for progress lines (retraining), or None.
        trust_code: import the code that the folder or file names (``model.kind =
            "module:function"``, a ``train.penalty_mask``): only if you trust its author, as
            opening it would run that code. Without it, such a folder or file is refused.

    Returns:
        A :class:`Best`: ``model, params, hparams, state, ...``;
        ``best.model.apply(best.params, best.state, x)`` returns logits.

    Raises:
        InputError: not a results folder or export file, or one of another model, or one that
            names code to import without ``trust_code``.
    """
    return trained.load_best(path, build_spec=build_spec, build_model=build_model, seed=seed, data=data, log=log,
                             trust_code=trust_code)


def load_model(file: str | Path, *, seed: int | None = None, trust_code: bool = False) -> Best:
    """The model a ``jaxreg best DIR --export FILE`` wrote: what ``load_best(DIR)`` returns, with
    ``predict`` and ``predict_proba`` on raw inputs, rebuilt without the data and never trained.
    ``trust_code``: as :func:`load_best` (a file naming a ``module:function`` model is refused
    without it).

    Raises:
        InputError: not such a file (a results folder: :func:`load_best` reads it).
    """
    if Path(file).is_dir():
        raise InputError(f"file: expected a file written by jaxreg best --export, got {str(file)!r} (a folder: "
                         f"jaxreg.load_best reads it)")
    return load_best(file, seed=seed, trust_code=trust_code)
