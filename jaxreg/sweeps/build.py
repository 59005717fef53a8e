"""Building a checked spec: the data set, the model, the ``TrainConfig`` and the search space.

``load_spec(path, overrides)`` reads and checks a spec (:mod:`jaxreg.sweeps.spec`) and builds
it; ``build_spec(raw)`` does the same for a spec given as a dict (a manifest's resolved spec).
Building loads the data and makes the model, so the checks that need them happen here: a batch
size against the training set, hparams values against the model's layers, and the library's
own checks, whose messages are given the spec's field path (``train.``, ``model.``, a case's
``cases.NAME.``). Data files that are missing raise :class:`jaxreg.errors.InputError` naming
``data.data_dir`` with the remedy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import data as data_lib
from jaxreg.errors import InputError
from jaxreg.hparams import AUGMENTATIONS, DEFAULTS, check_dtype, make_hparams
from jaxreg.transfer import Pretrained, check_trainable_layers, merge_params, pretrained_layers, split_init
from jaxreg.models import Model, cnn, mlp, numpy_uniform_init
from jaxreg.sweeps.halving import brackets as halving_brackets
from jaxreg.sweeps.path import penalty_names
from jaxreg.sweeps import trained
from jaxreg.sweeps.samplers import ModelSpace
from jaxreg.sweeps.space import MAX_TRIALS, MODEL_METHODS, Axis, Space
from jaxreg.adapters import as_model
from jaxreg.optimizers import PENALTIES
from jaxreg.penalties import selects_anything
from jaxreg.sweeps.spec import ARRAYS, CheckedSpec, Static, check_spec, importable, is_factory, read_spec
from jaxreg.losses import is_regression
from jaxreg.names import MONITORS, REGRESSION_METRICS
from jaxreg.report.manifest import spec_sha256
from jaxreg.train import TrainConfig, as_data, check_data, check_values
from jaxreg.trust import foreign

__all__ = ["Spec", "Variant", "build_model", "build_spec", "fingerprint", "load_spec", "spec_digest"]


@dataclasses.dataclass(frozen=True, eq=False)
class Variant:
    """The cases of a spec that share one static setup, hence one compiled program.

    Attributes:
        cases: the case names (``(None,)`` for a spec without cases).
        dataset, model, config: the data, the model and the :class:`TrainConfig`.
        space: the search space of these cases.
        init_params: fixed initial params shared by all members (``model.init = "book"``), the
            pretrained layers and their state (``model.pretrained``: a ``jaxreg.transfer.Pretrained``),
            or None.
    """

    cases: tuple
    dataset: Any
    model: Model
    config: TrainConfig
    space: Space
    init_params: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Spec:
    """A checked sweep spec and everything built from it.

    A case may override ``data``, ``model`` or ``train`` as well as hparams; cases with the same
    static setup form one :class:`Variant` and train in one compiled program.

    Attributes:
        resolved: the spec with every default filled in (what the manifest records and hashes).
        name: the sweep's name (default: the file's stem).
        variants: one per distinct static setup, in the order of the cases.
        seeds: the seeds every config is trained with.
    """

    resolved: dict
    name: str
    variants: tuple
    seeds: tuple

    # The first variant's parts: a spec without static overrides in its cases has just one.
    dataset = property(lambda self: self.variants[0].dataset)
    model = property(lambda self: self.variants[0].model)
    config = property(lambda self: self.variants[0].config)
    space = property(lambda self: self.variants[0].space)
    init_params = property(lambda self: self.variants[0].init_params)

    def configs(self, round: int = 0) -> list:
        """The first-round configs of every variant, in case order."""
        return [c for v in self.variants for c in v.space.configs(round)]

    @property
    def search(self) -> dict:
        return self.resolved["search"]

    @property
    def output(self) -> dict:
        return self.resolved["output"]

    @property
    def digest(self) -> str:
        return spec_digest(self.resolved)

    @property
    def minimize(self) -> bool:
        return self.search["goal"] == "minimize"


def spec_digest(resolved: dict) -> str:
    """The manifest's ``spec_sha256`` of a resolved spec (:func:`jaxreg.report.manifest.spec_sha256`)."""
    return spec_sha256(resolved)


def load_spec(path: str | Path, overrides: list[str] = ()) -> Spec:
    """Reads, checks and builds a sweep spec; see the module docstring."""
    return build_spec(read_spec(path, overrides), default_name=Path(path).stem)


def build_spec(raw: dict, default_name: str = "sweep", *, data=None) -> Spec:
    """Checks and builds a spec given as a dict (the parsed TOML).

    ``data``: a user's data for ``data.dataset = "arrays"`` (see :func:`jaxreg.sweep`): a pair
    ``(x, y)`` split with the spec's ``[data]`` options and ``data.seed``, or a
    ``jaxreg.data.Dataset`` used as it is.
    """
    checked = check_spec(raw, default_name)
    datasets: dict = {}
    base = _build_static(checked.base, datasets, data)
    variants = []
    for names, static in checked.groups:
        built, where = base, ""
        if static is not None:
            where = f"cases.{names[0]}."
            try:
                built = _build_static(static, datasets, data)
            except InputError as error:  # the base setup built, so the case's override is at fault
                raise InputError(f"{where}{error}") from None
        cases = {n: checked.cases[n] for n in names if n is not None}
        variants.append(_variant(names, built, checked, cases, where))
    metric = checked.search["metric"]
    for variant in variants:  # RMSE, MAE and R^2 exist for a squared-error loss on float targets only
        if metric in REGRESSION_METRICS and not is_regression(variant.config.loss, variant.dataset.train.y.dtype):
            raise InputError(f"search.metric: expected one of {', '.join(MONITORS)} for a classification "
                             f"(loss {variant.config.loss!r} on class labels), got {metric!r}")
    draws = sum(v.space.draws() for v in variants)
    if draws * len(checked.seeds) > MAX_TRIALS:  # counted, not listed: a sweep this large would not end
        raise InputError(f"search: expected at most {MAX_TRIALS} trials in a round (configs x seeds), got {draws} "
                         f"configs x {len(checked.seeds)} seeds = {draws * len(checked.seeds)}")
    resolved = {"name": checked.name, "description": checked.description, "data": base["data"],
                "model": base["model_resolved"], "train": checked.base.train, "hparams": checked.hparams,
                "cases": checked.cases_raw, "search": checked.search, "output": checked.output}
    return Spec(resolved=json.loads(json.dumps(resolved)), name=checked.name, variants=tuple(variants),
                seeds=checked.seeds)


def _load_data(static: Static, datasets: dict, given=None):
    """The data set of ``static``, loaded once per distinct ``[data]`` (``datasets`` caches);
    ``given``: a user's data passed to :func:`jaxreg.sweep` (``data.dataset = "arrays"``)."""
    name, data_dir = static.dataset, static.data_dir
    if name == ARRAYS:
        if given is None:
            raise InputError(f"data.dataset: expected one of {', '.join(map(repr, data_lib._DEFAULTS))} "
                             f"(the arrays of 'arrays' are passed in Python: jaxreg.sweep(spec, data=...)), "
                             f"got 'arrays' without data")
        return _given_data(static, given)
    if given is not None:
        raise InputError(f"data.dataset: expected 'arrays' (or no dataset) when data is passed to "
                         f"jaxreg.sweep, got {name!r}")
    try:
        cache_key = json.dumps([name, static.data_seed, data_dir, static.options], sort_keys=True)
        if cache_key not in datasets:
            datasets[cache_key] = data_lib.load(name, key=static.data_seed, data_dir=data_dir, **static.options)
        return datasets[cache_key]
    except data_lib.DatasetError as error:
        if name in data_lib._FILE_DATASETS:  # the message names the option: data.path, data.val_path
            raise InputError(f"data.{error}") from None
        # Its message spans lines (every path searched): one line, the first, with the remedy.
        lines = [line.strip() for line in str(error).splitlines()]
        reason = lines[0].removesuffix("; looked for:")
        failed = [line for line in lines if line.startswith(("http://", "https://"))]
        if failed:
            reason += f"; downloading failed: {failed[0]}"
        hint = ", or download = true" if static.raw[0].get("download") is False else ""
        raise InputError(f"data.data_dir: expected a folder with readable {name} files (or "
                         f"$JAXREG_DATA_DIR{hint}), got {repr(data_dir) if data_dir else 'no data_dir'} "
                         f"({reason})") from None
    except ValueError as error:  # the library names the option: data.OPTION
        raise InputError(f"data.{error}") from None


def _given_data(static: Static, given):
    """A user's data: a ``Dataset`` (or anything with train/val/test splits) as it is, or a pair
    ``(x, y)`` split by :func:`jaxreg.data.from_arrays` with the spec's ``[data]`` options."""
    if isinstance(given, tuple) and len(given) == 2 and not hasattr(given, "train"):
        try:
            options = {"standardize": data_lib._SPLIT_OPTIONS["standardize"], **static.options}  # as csv and npz
            return data_lib.from_arrays(*given, key=static.data_seed, options=static.options, **options)
        except ValueError as error:
            raise InputError(f"data.{error}".replace("data.data.", "data.", 1)) from None
    if not all(hasattr(given, split) for split in ("train", "val", "test")):
        raise InputError(f"data: expected a pair (x, y) of arrays or a jaxreg.data.Dataset, got "
                         f"{type(given).__name__}")
    if static.options.keys() - {"dtype"}:
        raise InputError(f"data.{sorted(static.options.keys() - {'dtype'})[0]}: expected no split options "
                         f"when data is a Dataset (its splits are given), got one")
    splits = [data_lib.Split(np.asarray(s.x), np.asarray(s.y)) for s in (given.train, given.val, given.test)]
    info = dict(getattr(given, "info", None) or {})
    if "num_classes" not in info or "input_shape" not in info:
        y = np.concatenate([s.y for s in splits])
        classes = y.dtype.kind in "biu"
        info.update(name=info.get("name", "arrays"), input_shape=tuple(splits[0].x.shape[1:]),
                    image_shape=tuple(splits[0].x.shape[1:]) if splits[0].x.ndim >= 3 else None,
                    num_classes=int(y.max()) + 1 if classes and y.size else None,
                    num_outputs=(int(y.max()) + 1 if classes and y.size else (y.shape[1] if y.ndim == 2 else 1)),
                    source="arrays", options={}, key_data=None)
    return data_lib.Dataset(*splits, info)


def _short_digest(digest) -> str:
    if isinstance(digest, dict):
        return ", ".join(f"{k} {str(v)[:12]}" for k, v in digest.items())
    return f"sha256 {str(digest)[:12]}" if digest else "none"


def fingerprint(dataset) -> str:
    """SHA-256 of a data set's arrays (shapes, dtypes and bytes of every split)."""
    digest = hashlib.sha256()
    for split in (dataset.train, dataset.val, dataset.test):
        for array in (np.ascontiguousarray(split.x), np.ascontiguousarray(split.y)):
            digest.update(f"{array.shape}{array.dtype}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _factory_model(m: dict, info: dict, n_out: int) -> Model:
    """``model.kind = "module:function"``: ``function(input_shape, num_outputs, **model.options)``,
    whatever it returns (a jaxreg Model, a Flax or Equinox module, an (init, apply) pair) as a Model."""
    factory = importable("model.kind", m["kind"])
    input_shape = tuple(info["input_shape"])
    try:
        made = factory(input_shape=input_shape, num_outputs=n_out, **m.get("options", {}))
        model = as_model(made, input_shape)
    except InputError as error:
        raise InputError(f"model.kind: {m['kind']!r} gave a model jaxreg cannot use: {error}") from None
    except Exception as error:
        raise InputError(f"model.kind: expected {m['kind']!r} to build a model from input_shape="
                         f"{input_shape}, num_outputs={n_out} and model.options, got "
                         f"{type(error).__name__}: {error}") from None
    if model.output_size != n_out:
        raise InputError(f"model.kind: expected {m['kind']!r} to give {n_out} outputs (the data's), "
                         f"got {model.output_size}")
    return model


def _build_static(static: Static, datasets: dict, given=None) -> dict:
    """The data set and the model of one static setup."""
    dataset = _load_data(static, datasets, given)
    data_resolved = {"dataset": static.dataset, "seed": static.data_seed, "data_dir": static.data_dir,
                     **{k: v for k, v in dataset.info["options"].items() if k != "opener"}}
    if static.dataset in data_lib._FILE_DATASETS:
        data_resolved["sha256"] = dataset.info["sha256"]  # a changed file is another spec
    elif static.dataset == ARRAYS:
        data_resolved["sha256"] = fingerprint(dataset)
    expected = static.raw[0].get("sha256")  # a results folder's spec, rebuilt: the same data?
    if expected is not None and expected != data_resolved.get("sha256"):
        raise InputError(f"data.sha256: expected the data the results were trained on ({_short_digest(expected)}), "
                         f"got other data ({_short_digest(data_resolved.get('sha256'))})")
    model, init_params = build_model(static.model, static.train, dataset.info, static.dataset)
    model_resolved = static.model
    if static.model.get("pretrained"):
        own = {text for text in (static.model["kind"], static.train.get("penalty_mask"), static.train["loss"],
                                 *static.train.get("extra_metrics", {}).values()) if is_factory(text)}
        init_params, digest = _pretrained(static.model, model, own)
        model_resolved = {**static.model, "pretrained_sha256": digest}  # other weights: another spec
        expected = static.raw[1].get("pretrained_sha256")
        if expected is not None and expected != digest:
            raise InputError(f"model.pretrained_sha256: expected the pretrained weights the results were "
                             f"trained from (sha256 {expected[:12]}), got others (sha256 {digest[:12]})")
    t = static.train
    batch_size = t["batch_size"]
    n_train = len(dataset.train.y)
    if batch_size == "full":
        batch_size = None
    # TrainConfig checks the range too; the spec's message says "full", not None.
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n_train:
        raise InputError(f"train.batch_size: expected an integer in [1, {n_train}] (the training set size) "
                         f"or \"full\", got {batch_size!r}")
    return {"dataset": dataset, "data": data_resolved, "model": model, "batch_size": batch_size,
            "init_params": init_params, "train": t, "model_resolved": model_resolved}


def _pretrained(m: dict, model: Model, own: set) -> tuple[Any, str]:
    """The layers of ``model.pretrained`` that fit ``model`` (the head left out, to start afresh
    for each seed, unless ``model.pretrained_head``) with their model state (batch norm's
    running statistics), and the SHA-256 of the kept arrays. Of the code the pretrained folder
    or export names, only what this spec names itself (``own``) is imported."""
    path = m["pretrained"]
    if not Path(path).exists():
        raise InputError(f"model.pretrained: expected a results folder or an exported .npz, got {path!r} "
                         f"(no such file or folder{'' if Path(path).is_absolute() else ' at ' + os.path.abspath(path)})")
    try:
        with foreign(str(path), allowed=own, remedy="only what this spec names itself is imported from a "
                                                  "pretrained folder or export"):
            # Its spec is built by this module: a pretrained folder's own pretrained source recurses.
            best = trained.load_best(path, build_spec=build_spec, build_model=build_model,
                                     seed=m.get("pretrained_seed"), trust_code=True)
    except InputError as error:
        raise InputError(f"model.pretrained: expected a results folder or an exported .npz, got {path!r} "
                         f"({error})") from None
    fresh = jax.eval_shape(model.init, jax.random.key(0))[0]
    names = model.layer_names()
    kept = pretrained_layers(best.params, fresh, head=names[-1], keep_head=m.get("pretrained_head", False),
                             where="model.pretrained")
    state = {name: layer for name, layer in (best.state or {}).items() if name in kept}
    fresh_state = jax.eval_shape(model.init, jax.random.key(0))[1]
    state = pretrained_layers(state, fresh_state, keep_head=True, where="model.pretrained") if state else {}
    digest = hashlib.sha256()
    for prefix, tree in (("", kept), ("state", state)):
        for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            digest.update(f"{prefix}{jax.tree_util.keystr(leaf_path)}{leaf.shape}{leaf.dtype}".encode())
            digest.update(np.ascontiguousarray(leaf).tobytes())
    return Pretrained(kept, state), digest.hexdigest()


def build_model(m: dict, t: dict, info: dict, dataset_name: str = "") -> tuple[Model, Any]:
    """The model of a ``[model]`` table (defaults filled in) for data described by ``info``
    (``input_shape``, ``num_classes`` or ``num_outputs``, ``image_shape``), and its fixed
    initial params (``model.init = "book"``) or None. Needs no data: an exported model is
    rebuilt from its manifest."""
    dtype = jnp.float32
    if t["dtype"] == "float64":
        # Float64 arrays need JAX's x64 mode, a process-wide switch: a float64 spec turns it on.
        jax.config.update("jax_enable_x64", True)
        dtype = jnp.float64
    n_in = int(np.prod(info["input_shape"]))
    n_out = info.get("num_outputs") or info["num_classes"]
    n_out = 1 if (n_out == 2 and t["loss"] in ("bce", "mse", "squared_error", "sum_squared_error")) else n_out
    book_init = m["init"] == "book"
    if is_factory(m["kind"]):
        model = _factory_model(m, info, n_out)
    elif m["kind"] == "cnn" and info["image_shape"] is None:
        raise InputError(f"model.kind: expected 'mlp' with dataset {dataset_name!r} (a cnn needs "
                         f"image data: 'digits', 'mnist', or images of shape (n, H, W[, C])), got 'cnn'")
    try:
        if is_factory(m["kind"]):
            pass
        elif m["kind"] == "mlp":
            model = mlp((n_in, *m["hidden"], n_out), activation=m["activation"], output=m["output"],
                        bias=m["bias"], init="uniform" if book_init else m["init"],
                        init_scale=m["init_scale"], batch_norm=m.get("batch_norm", False), dtype=dtype)
        else:
            image_shape = info["image_shape"]
            shape = image_shape if len(image_shape) == 3 else (*image_shape, 1)
            model = cnn(shape, n_out, channels=m["channels"], kernel_size=m["kernel_size"], pool=m["pool"],
                        hidden=m["hidden"], activation=m["activation"], output=m["output"],
                        init=m["init"], init_scale=m["init_scale"], batch_norm=m.get("batch_norm", False),
                        dtype=dtype)
    except (ValueError, TypeError) as error:  # the library names the argument: model.ARGUMENT
        message = str(error).replace("sizes: ", "hidden: ")
        raise InputError(f"model.{message}") from None
    init_params = None
    if book_init:
        init_params = numpy_uniform_init((n_in, *m["hidden"], n_out), seed=m["init_seed"],
                                         scale=m["init_scale"], dtype=np.dtype(t["dtype"]))

    return model, init_params


def _variant(names: tuple, static: dict, checked: CheckedSpec, cases: dict, where: str) -> Variant:
    model, dataset, t, s = static["model"], static["dataset"], static["train"], checked.search
    layer_counts = {"dropout": model.num_dropout, "dropconnect": model.num_dropconnect}
    counts = ([n for n, _ in halving_brackets(t["epochs"], s["min_epochs"], s["eta"])]
              if s["method"] == "hyperband" else None)
    kind = ModelSpace if s["method"] in MODEL_METHODS else Space  # Optuna's sampler asks a ModelSpace's configs
    space = kind(checked.axes, cases=cases, method=s["method"], round_method=s["round_method"],
                 samples=s["samples"], seed=s["seed"], layer_counts=layer_counts, round_samples=counts)
    _check_values(space, model, t["dtype"])
    uses = {name: _may_be_nonzero(space, name) for name in ("dropout", "dropconnect")}
    pathed = penalty_names(s["path_penalty"]) if s["method"] == "path" else ()  # the penalties a path sets
    augment = tuple(name for name in AUGMENTATIONS if _may_be_nonzero(space, name))
    layerwise = (_may_be_nonzero(space, "layer_lr_decay", default=1.0)
                 or _may_be_nonzero(space, "trainable_layers", default=math.inf))
    image_shape = dataset.info.get("image_shape")
    _check_new_axes(space, model, augment, image_shape, layerwise, where)
    try:
        config = TrainConfig(model=model, loss=importable("train.loss", t["loss"]) if is_factory(t["loss"]) else t["loss"],
                             extra_metrics=tuple((name, importable(f"train.extra_metrics.{name}", text))
                                                 for name, text in t.get("extra_metrics", {}).items()),
                             optimizer=t["optimizer"],
                             epochs=t["epochs"], batch_size=static["batch_size"], shuffle=t["shuffle"],
                             eval_every=t["eval_every"], eval_test=t["eval_test"],
                             monitor=t["monitor"], mode=t["mode"], start_epoch=t["start_epoch"],
                             l1_mode=t["l1_mode"], dropout=uses["dropout"],
                             dropconnect=uses["dropconnect"], penalize_bias=t["penalize_bias"],
                             penalty_mask=(importable("train.penalty_mask", t["penalty_mask"])
                                           if "penalty_mask" in t else None),
                             augment=augment, image_shape=tuple(image_shape) if image_shape else None,
                             blur_size=t.get("blur_size", 5), layerwise=layerwise,
                             histograms=t.get("histograms", 0), measures=tuple(t.get("measures", ())),
                             measure_sigma=t.get("measure_sigma", 0.01),
                             metrics=(tuple(dict.fromkeys([*t["metrics"], s["metric"]])) if "metrics" in t else None),
                             penalties=tuple(name for name in PENALTIES
                                             if _may_be_nonzero(space, name) or name in pathed))
        check_data(config, as_data(dataset))
    except ValueError as error:  # the library names the field: train.FIELD
        raise InputError(f"{where}train.{error}") from None
    check_values(config, as_data(dataset))  # names data.SPLIT.x or .y
    penalized = [name for name in ("l2", "l1", "weight_decay") if _may_be_nonzero(space, name) or name in pathed]
    if penalized or "penalty_mask" in t:
        params = merge_params(jax.eval_shape(model.init, jax.random.key(0))[0],
                              split_init(static["init_params"])[0])
    if "penalty_mask" in t:
        _check_mask(t["penalty_mask"], config, params)
    if penalized:
        if not selects_anything(config.mask(params)):
            raise InputError(f"{where}hparams.{penalized[0]}: expected 0 when the penalty mask selects no "
                             f"params (the model has no leaf with two or more dimensions, or "
                             f"train.penalty_mask selects none), got a value above 0")
    if s["metric"].startswith("val") and len(dataset.val.y) == 0:
        raise InputError(f"search.metric: expected 'train_loss' or 'train_accuracy' when the validation "
                         f"split is empty, got {s['metric']!r}")
    return Variant(tuple(names), dataset, model, config, space, static["init_params"])


def _check_mask(text: str, config: TrainConfig, params) -> None:
    """A spec's penalty mask gives one bool, or one 0/1 array of the leaf's shape, per params leaf."""
    try:
        mask = config.mask(params)
    except Exception as error:
        raise InputError(f"train.penalty_mask: expected {text!r} to take the params and return a mask, got "
                         f"{type(error).__name__}: {error}") from None

    def fits(m, p) -> bool:
        try:
            m = np.asarray(m)
            zero_one = m.dtype == np.bool_ or (m.dtype.kind in "iuf" and bool(np.isin(m, (0, 1)).all()))
            return zero_one and m.shape in ((), tuple(p.shape))
        except Exception:  # not an array
            return False

    params_tree = jax.tree_util.tree_structure(params)
    try:
        same = jax.tree_util.tree_structure(mask) == params_tree
    except Exception:  # not a pytree jax can flatten
        same = False
    if not same or not all(fits(m, p) for m, p in zip(jax.tree_util.tree_leaves(mask),
                                                       jax.tree_util.tree_leaves(params))):
        raise InputError(f"train.penalty_mask: expected {text!r} to return a pytree of bools (or 0/1 arrays) "
                         f"shaped like the params, one per leaf, got {type(mask).__name__} {str(mask)[:80]!r}")


def _check_new_axes(space: Space, model: Model, augment: tuple, image_shape, layerwise: bool, where: str) -> None:
    """What the library would refuse only once a run has started, refused while the spec is built."""
    if layerwise:
        n_layers = len(model.layer_names())
        for _, axis in space.all_axes():
            if axis.name == "trainable_layers":
                check_trainable_layers(list(_endpoints(axis)), n_layers, axis.where)
    if not model.batch_norm:
        for name in ("bn_momentum", "bn_epsilon"):
            if _may_be_nonzero(space, name, default=DEFAULTS[name]):
                raise InputError(f"{where}hparams.{name}: expected the default ({DEFAULTS[name]:g}) for a model "
                                 f"without batch norm (model.batch_norm = false), got another value")
    if "saturation" in augment:
        channels = (tuple(image_shape) + (1,))[2] if image_shape else 1
        if channels != 3:
            raise InputError(f"{where}hparams.saturation: expected 0 for images with {channels} channel"
                             f"{'s' * (channels > 1)} (saturation changes colour), got a value above 0")


def _endpoints(axis: Axis) -> list:
    if axis.form in ("fixed", "values", "choice"):
        return list(axis.values)
    return [axis.low, axis.high]


def _check_values(space: Space, model: Model, dtype: str) -> None:
    """Every value an axis can take is a valid hparam in the train dtype (checked at the ends of ranges)."""
    for _, axis in space.all_axes():
        for value in _endpoints(axis):
            resolved = axis.resolve(value, space.layer_counts.get(axis.name))
            try:
                check_dtype(make_hparams(model, **{axis.name: resolved}), dtype)
            except ValueError as error:  # named hparams.NAME: name where the spec gives it
                raise InputError(str(error).replace(f"hparams.{axis.name}", axis.where, 1)) from None


def _may_be_nonzero(space: Space, name: str, default: float = 0.0) -> bool:
    """Whether some config may set ``name`` to another value than ``default``."""
    for _, axis in space.all_axes():
        if axis.name == name and any(np.any(np.asarray(v, np.float64) != default) for v in _endpoints(axis)):
            return True
    return False
