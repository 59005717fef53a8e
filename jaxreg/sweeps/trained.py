"""Trained models read back: a results folder's best config with its params by seed (read from
its curves files, or trained again), the export file that rebuilds it, and the :class:`Best`
model they give.

This is the work behind :mod:`jaxreg.sweeps.best` (whose functions are the ones to call), given
the spec and model builders of :mod:`jaxreg.sweeps.build` as arguments (``build_spec``,
``build_model``) rather than importing them: building a spec whose ``model.pretrained`` names a
folder or export loads its model through :func:`load_best`, so the builder calls this module,
and this module calls the builder it is handed.

``best_config(out)`` ranks the folder's configs as the summary does and returns the best one's
trials. ``best_params(out)`` gives its params and model state per seed: from the curves files
when the sweep kept them (``output.params``), else by training that config and seed again (the
same hparams, seed and chunk size give bitwise the same run; the retrained metrics are checked
against the journal's). ``export_best(out, file)`` writes them to one ``.npz`` with a manifest
from which ``load_best(file)`` rebuilds the model without the data.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxreg.batch import train_batch
from jaxreg.data import preprocess
from jaxreg.errors import InputError
from jaxreg.hparams import DEFAULTS, OPTIONAL, HParams, make_hparams, stack_hparams
from jaxreg.losses import loss_name, predicted_class
from jaxreg.report.files import CURVES, atomic_write
from jaxreg.report.journal import load_curves, read_journal
from jaxreg.report.manifest import load_manifest, record_files, versions
from jaxreg.report.summary import as_float, best_row, rank_key, summarize
from jaxreg.sweeps.halving import METHODS as HALVING, compacts
from jaxreg.sweeps.spec import STATIC
from jaxreg.trust import foreign

__all__ = ["Best", "BestConfig", "best_config", "best_params", "export_best", "load_best"]

EXPORT_FORMAT = "jaxreg-best/1"


def _json_default(name: str):
    """An optional hparam's default as a journal writes values (``inf`` as "inf")."""
    value = DEFAULTS[name]
    return "inf" if value == float("inf") else value


@dataclasses.dataclass(frozen=True)
class BestConfig:
    """The best config of a folder: its id, case, hparams (every field), swept values, the
    seed-mean metrics (as in ``summary.csv``) and its trials, best seed first."""

    config_id: str
    case: str | None
    hparams: dict
    point: dict
    metrics: dict
    trials: tuple
    metric: str


class Best(NamedTuple):
    """What :func:`load_best` returns: ``predict(x)`` and ``predict_proba(x)`` on raw inputs;
    ``model.apply(params, state, x)`` on inputs already preprocessed as the data set's splits are.

    ``params`` and ``state`` are those of ``seed`` (by default the config's best seed by the
    search metric); ``params_by_seed`` and ``state_by_seed`` hold every seed's. ``info``: the
    data's shape, classes and preprocessing (``info["data"]``: ``scale``, ``standardize``, as
    :func:`jaxreg.data.preprocess` applies them), the loss, and the config's id, case, metrics
    and source folder.
    """

    model: Any
    params: Any
    hparams: dict
    state: Any
    seed: int
    params_by_seed: dict
    state_by_seed: dict
    info: dict

    def predict(self, x, *, seed: int | None = None):
        """Predictions on raw inputs, as the data set's own rows are (not standardized).

        Args:
            x: an array or a list of rows, of shape ``(n, *input_shape)``; the data set's
                preprocessing (:func:`jaxreg.data.preprocess`, with the numbers it stored) is
                applied here.
            seed: whose params predict (default: ``self.seed``, the best seed); one of
                ``params_by_seed``.

        Returns:
            For classes, an array of ``n`` class names (``info["data"]["classes"]``: a CSV's text
            labels; the class ids where the data has no names); for regression, the values in
            the targets' own units (jaxreg never scales targets): shape ``(n,)``, or
            ``(n, outputs)`` for several.

        Raises:
            InputError: ``x`` not numbers of that shape, or an unknown seed.
        """
        outputs = _outputs(self, x, seed)
        data = self.info["data"]
        if data.get("num_classes") is None:
            return outputs[:, 0] if outputs.shape[1] == 1 else outputs
        ids = np.asarray(predicted_class(outputs))
        return ids if data.get("classes") is None else np.asarray(data["classes"])[ids]

    def predict_proba(self, x, *, seed: int | None = None) -> np.ndarray:
        """Class probabilities on raw inputs, shape ``(n, classes)``, columns in the order of
        ``info["data"]["classes"]`` (class ids 0, 1, ...): the softmax of the outputs for
        ``loss = "cross_entropy"``, the sigmoid for ``"bce"`` (one output: ``1 - p, p``).
        ``x`` and ``seed`` as for :meth:`predict`.

        Raises:
            InputError: a regression model, or one trained with a squared error (its outputs are
                no probabilities); ``x`` or ``seed`` as for :meth:`predict`.
        """
        loss = _loss(self.info)
        if self.info["data"].get("num_classes") is None or loss not in ("cross_entropy", "bce"):
            what = "regression" if self.info["data"].get("num_classes") is None else "classes"
            raise InputError(f"predict_proba: expected a model trained with loss 'cross_entropy' or 'bce', got "
                             f"{loss!r} ({what}: its outputs are no probabilities; predict gives them)")
        outputs = _outputs(self, x, seed)
        if loss == "cross_entropy":
            return np.asarray(jax.nn.softmax(outputs, axis=-1))
        p = np.asarray(jax.nn.sigmoid(outputs))
        return np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p


def _loss(info: dict) -> str:
    """The training loss (exports written before ``info["loss"]`` have it in their tables)."""
    return info.get("loss") or info["tables"]["train"]["loss"]


def _outputs(best: Best, x, seed: int | None) -> np.ndarray:
    """The model's outputs (logits) on raw ``x``, in evaluation mode as the sweep evaluated."""
    seed = best.seed if seed is None else seed
    if seed not in best.params_by_seed:
        raise InputError(f"seed: expected one of the best config's seeds {list(best.params_by_seed)}, got {seed!r}")
    if "scale" not in best.info["data"] and best.info["data"].get("name") in ("digits", "mnist"):
        raise InputError(f"path: expected an export that records its pixel scaling, got one written before "
                         f"predict existed ({best.info.get('source')}): export it again with jaxreg best --export")
    inputs = preprocess(x, best.info["data"])
    options = {"bn_epsilon": best.hparams["bn_epsilon"]} if getattr(best.model, "batch_norm", False) else {}
    outputs, _ = best.model.apply(best.params_by_seed[seed], best.state_by_seed[seed], inputs, **options)
    outputs = np.asarray(outputs)
    return outputs.reshape(len(outputs), -1)


def best_config(out: str | Path) -> BestConfig:
    """The folder's best config, ranked by the mean of the search metric over its seeds."""
    manifest = load_manifest(out)
    records = read_journal(out)
    if not records:
        raise InputError(f"DIR: expected a results folder with finished trials, got {str(out)!r} (its "
                         f"journal is empty)")
    search = manifest["spec"]["search"]
    rows = summarize(records, search, manifest.get("chance"))
    best = best_row(rows)
    metric, minimize = search["metric"], search["goal"] == "minimize"
    trials = sorted((r for r in records if r["config_id"] == best["config_id"]),
                    key=lambda r: (rank_key(as_float(r["metrics"][metric]), minimize), r["seed"]))
    first = trials[0]
    metrics = {name: float(np.mean([as_float(r["metrics"][name]) for r in trials])) for name in first["metrics"]}
    hparams = {**{name: _json_default(name) for name in OPTIONAL}, **first["hparams"]}  # every field
    return BestConfig(best["config_id"], first["case"], hparams, first["point"], metrics,
                      tuple(trials), metric)


def _static_tables(resolved: dict, case: str | None) -> dict:
    """The ``data``, ``model`` and ``train`` tables a case trains under (its overrides merged)."""
    overrides = (resolved.get("cases") or {}).get(case) or {} if case is not None else {}
    return {table: {**resolved[table], **(overrides.get(table) or {})} for table in STATIC}


def _params_like(model):
    return jax.eval_shape(model.init, jax.random.key(0))


def _unflatten(like, saved: dict, prefix: str, what: str):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    values = []
    for path, leaf in leaves:
        key = prefix + jax.tree_util.keystr(path)
        if key not in saved:
            raise InputError(f"{what}: expected the {prefix.rstrip('/')} leaf {key!r} of this model, got a file "
                             f"without it (another model?)")
        value = np.asarray(saved[key])
        if value.shape != tuple(leaf.shape):
            raise InputError(f"{what}: expected {key!r} of shape {tuple(leaf.shape)}, got {value.shape}")
        values.append(value)
    return jax.tree_util.tree_unflatten(treedef, [v for v in values])


def best_params(out: str | Path, *, build_spec: Callable, data=None, log=None, trust_code: bool = False
                ) -> tuple[BestConfig, Any, dict, dict, list[str]]:
    """:func:`jaxreg.sweeps.best.best_params` (its docstring says what it returns), with the
    folder's spec built by ``build_spec`` (:func:`jaxreg.sweeps.build.build_spec`)."""
    out = Path(out)
    best = best_config(out)
    manifest = load_manifest(out)
    with foreign(str(out), trust_code):
        spec = build_spec(manifest["spec"], data=data)
    variant = next(v for v in spec.variants if best.case in v.cases)
    model = variant.model
    params_like, state_like = _params_like(model)
    params, states, missing = {}, {}, []
    for trial in best.trials:
        try:
            saved = load_curves(out, best.config_id, trial["seed"])
        except FileNotFoundError:
            saved = {}
        if any(k.startswith("params/") for k in saved):
            where = f"{out / CURVES}/{best.config_id}_{trial['seed']}.npz"
            params[trial["seed"]] = _unflatten(params_like, saved, "params/", where)
            states[trial["seed"]] = (_unflatten(state_like, saved, "state/", where)
                                     if any(k.startswith("state/") for k in saved) or not jax.tree_util.tree_leaves(state_like)
                                     else None)
        else:
            missing.append(trial)
    notes = []
    if missing or any(s is None for s in states.values()):
        redo = [t for t in best.trials if t in missing or states.get(t["seed"], 0) is None]
        if any(t.get("warm_start") for t in redo):  # trained alone, it would start from the init instead
            raise InputError(f"DIR: expected saved params for a trial of a path warm-started from the point before "
                             f"(retrained alone it would start afresh: other params), got {str(out)!r} without "
                             f"them (output.params = false); run the path with output.params = true")
        if log is not None:
            log(f"training the best config again ({len(redo)} seed{'s' * (len(redo) != 1)}): the sweep kept "
                f"no params (output.params = false)")
        p, s, n = _retrain(variant, redo, manifest, best)
        params.update(p)
        states.update(s)
        notes += n
    return best, variant, params, states, notes


def _retrain(variant, trials: list, manifest: dict, best: BestConfig):
    """The trials trained again: the same program, hparams, seed and chunk size."""
    sizes = []
    for run in reversed(manifest["runs"]):  # the latest first: the likeliest to have trained them
        size = run.get("chunk_size")
        for s in (size if isinstance(size, list) else [size]):
            if isinstance(s, int) and s not in sizes:
                sizes.append(s)
    fields = {name: np.asarray(value) for name, value in trials[0]["hparams"].items() if name in HParams._fields}
    metric = best.metric
    # seed -> (result, index, same): each trial from the first chunk size that gives every one
    # of its journaled metrics bitwise (a grown study may have trained seeds at several sizes)
    found: dict[int, tuple] = {}
    for size in sizes or [2]:
        todo = [t for t in trials if t["seed"] not in found or not found[t["seed"]][2]]
        if not todo:
            break
        hparams = stack_hparams([make_hparams(variant.model, **fields)] * len(todo))
        result = train_batch(variant.config, variant.dataset, max(size, 2))(
            np.array([t["seed"] for t in todo]), hparams, variant.init_params)
        for i, trial in enumerate(todo):
            same = all(_same(float(result.final[name][i]), value) for name, value in trial["metrics"].items())
            if trial["seed"] not in found or same:
                found[trial["seed"]] = (result, i, same)
    search = manifest["spec"]["search"]
    if compacts(search):
        why = (f"its chunk may have shrunk as members left the batch (search.method {search['method']!r}"
               f"{', search.compact' if search['method'] not in HALVING else ''}), which rounds like another chunk "
               f"size: a run of the config alone may not repeat it bit for bit")
    else:
        why = "trained with another jaxreg, JAX or XLA version, or on another machine"
    notes = []
    for trial in trials:
        result, i, same = found[trial["seed"]]
        if not same:  # the search metric if it differs, else the first metric that does
            name = next(n for n in (metric, *trial["metrics"])
                        if n in trial["metrics"] and not _same(float(result.final[n][i]), trial["metrics"][n]))
            notes.append(f"seed {trial['seed']}: retrained {name} is {float(result.final[name][i])!r}, the "
                         f"journal has {trial['metrics'][name]!r} ({why})")
    def member(tree, seed):
        result, i, _ = found[seed]
        return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf[i]), getattr(result, tree))

    params = {t["seed"]: member("params", t["seed"]) for t in trials}
    states = {t["seed"]: member("model_state", t["seed"]) for t in trials}
    return params, states, notes


def _same(value: float, journaled) -> bool:
    return (journaled is None and np.isnan(value)) or (journaled is not None and as_float(journaled) == value)


def _info(best: BestConfig, variant, out: Path, manifest: dict) -> dict:
    data_info = variant.dataset.info
    standardize = data_info.get("standardize")
    return {
        "loss": loss_name(variant.config.loss),
        "config_id": best.config_id, "case": best.case, "point": best.point, "metric": best.metric,
        "metrics": best.metrics, "seeds": [t["seed"] for t in best.trials],
        "trial_metrics": {str(t["seed"]): t["metrics"] for t in best.trials},
        "source": str(out.resolve()), "spec_sha256": manifest["spec_sha256"],
        "data": {"name": data_info.get("name"), "input_shape": list(data_info["input_shape"]),
                 "image_shape": list(data_info["image_shape"]) if data_info.get("image_shape") else None,
                 "num_classes": data_info.get("num_classes"), "num_outputs": data_info.get("num_outputs"),
                 "classes": data_info.get("classes"),
                 "standardize": None if standardize is None else {k: np.asarray(v).tolist() for k, v in standardize.items()},
                 # what Best.predict needs to read and preprocess raw rows as the data set did
                 "dtype": data_info.get("dtype") or str(variant.dataset.train.x.dtype), "scale": data_info.get("scale"), "reader": data_info.get("reader")},
    }


def export_best(out: str | Path, file: str | Path, *, build_spec: Callable, data=None, log=None,
                trust_code: bool = False) -> dict:
    """Writes the best config's params and model state (every seed) and a manifest that
    rebuilds its model to ``file`` (``.npz``); returns the manifest
    (:func:`jaxreg.sweeps.best.export_best`). ``build_spec``, ``trust_code``: as :func:`best_params`."""
    out = Path(out)
    best, variant, params, states, notes = best_params(out, build_spec=build_spec, data=data, log=log,
                                                       trust_code=trust_code)
    manifest = load_manifest(out)
    export = {
        "format": EXPORT_FORMAT, "versions": versions(), "hparams": best.hparams, "notes": notes,
        "tables": _static_tables(manifest["spec"], best.case), **_info(best, variant, out, manifest),
    }
    arrays = {"manifest": np.asarray(json.dumps(export, allow_nan=True))}
    for seed in export["seeds"]:
        for prefix, tree in (("params", params[seed]), ("state", states[seed])):
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
                arrays[f"{prefix}/{seed}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    file = Path(file)
    if file.exists() and not file.is_file():
        raise InputError(f"--export: expected a file path, got {str(file)!r} (a folder)")
    record_files(file.parent, [file.name])  # an export into a results folder is jaxreg's there
    atomic_write(file, buffer.getvalue())
    return export


def load_best(path: str | Path, *, build_spec: Callable, build_model: Callable, seed: int | None = None,
              data=None, log=None, trust_code: bool = False) -> Best:
    """The best model of a results folder, or of a file written by ``jaxreg best --export``
    (:func:`jaxreg.sweeps.best.load_best`); ``build_spec`` builds a folder's spec and
    ``build_model`` an export's model (:func:`jaxreg.sweeps.build.build_spec`, ``build_model``)."""
    path = Path(path)
    if path.is_dir():
        best, variant, params, states, _ = best_params(path, build_spec=build_spec, data=data, log=log,
                                                       trust_code=trust_code)
        info = _info(best, variant, path, load_manifest(path))
        model, hparams = variant.model, best.hparams
        seeds = info["seeds"]
    else:
        export, arrays = _read_export(path)
        tables, data_info = export["tables"], export["data"]
        with foreign(str(path), trust_code):
            model, _ = build_model(tables["model"], tables["train"], {
                "input_shape": tuple(data_info["input_shape"]), "num_classes": data_info["num_classes"],
                "num_outputs": data_info["num_outputs"],
                "image_shape": tuple(data_info["image_shape"]) if data_info["image_shape"] else None},
                tables["data"].get("dataset", ""))
        params_like, state_like = _params_like(model)
        seeds = export["seeds"]
        params = {s: _unflatten(params_like, arrays, f"params/{s}/", str(path)) for s in seeds}
        states = {s: _unflatten(state_like, arrays, f"state/{s}/", str(path)) for s in seeds}
        hparams, info = export["hparams"], {k: v for k, v in export.items() if k not in ("hparams",)}
    if seed is None:
        seed = seeds[0]
    elif seed not in params:
        raise InputError(f"seed: expected one of the best config's seeds {seeds}, got {seed!r}")
    return Best(model, params[seed], hparams, states[seed], seed, params, states, info)


def _read_export(path: Path) -> tuple[dict, dict]:
    try:
        with open(path, "rb") as raw, np.load(raw) as file:
            arrays = {name: file[name] for name in file.files}
        export = json.loads(str(arrays.pop("manifest")))
        assert export.get("format") == EXPORT_FORMAT
    except FileNotFoundError:
        raise InputError(f"path: expected a results folder or a file written by jaxreg best --export, got "
                         f"{str(path)!r} (not found)") from None
    except (OSError, ValueError, KeyError, EOFError, AssertionError, AttributeError) as error:
        raise InputError(f"path: expected a results folder or a file written by jaxreg best --export, got "
                         f"{str(path)!r} ({type(error).__name__})") from None
    return export, arrays
