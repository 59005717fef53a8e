"""Sweep specs: TOML files read with ``tomllib``, checked in full before anything runs.

``load_spec(path, overrides)`` reads a spec, applies ``--set KEY=VALUE`` overrides, fills in
every default, checks every field, loads the data and builds the model, the
:class:`jaxreg.TrainConfig` and the :class:`jaxreg.space.Space`. Any problem raises
:class:`InputError` (or ``jaxreg.data.DatasetError`` for missing data) with one line naming
the field, what is allowed and the value given. The schema is documented in the README.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import data as data_lib
from jaxreg.hparams import HParams, make_hparams
from jaxreg.losses import LOSSES
from jaxreg.models import INITS, Model, cnn, mlp, numpy_uniform_init
from jaxreg.errors import InputError
from jaxreg.report.summary import CSV_SOURCES
from jaxreg.sweeps.space import METHODS, Axis, Space, parse_axis
from jaxreg.train import METRICS, MONITORS, TrainConfig

__all__ = ["Spec", "InputError", "load_spec", "parse_override", "apply_overrides"]

TOP_LEVEL = ("name", "description", "data", "model", "train", "hparams", "cases", "search", "output")

MODEL_DEFAULTS = {"kind": "mlp", "hidden": [128], "activation": "relu", "output": "linear",
                  "bias": True, "init": "he_normal", "init_scale": 0.1, "init_seed": 1,
                  "channels": [16, 32], "kernel_size": 3, "pool": "max"}
TRAIN_DEFAULTS = {"loss": "cross_entropy", "optimizer": "sgd", "epochs": 10, "batch_size": 32,
                  "shuffle": True, "eval_every": 1, "eval_test": True, "monitor": "val_loss",
                  "mode": "auto", "start_epoch": 0, "l1_mode": "subgradient", "dtype": "float32",
                  "penalize_bias": False}
SEARCH_DEFAULTS = {"method": "grid", "seeds": 1, "samples": 16, "rounds": 3, "top_k": 3,
                   "round_method": None, "min_width": 0.01, "seed": 0, "metric": "val_loss",
                   "goal": None, "chunk_size": None, "memory_budget_mb": 1024}
OUTPUT_DEFAULTS = {"params": False, "plots": True, "curves_csv": False, "plot_metrics": []}
DATA_KEYS = ("dataset", "seed", "data_dir")
STATIC = ("data", "model", "train")  # the tables a case may override
DTYPES = ("float32", "float64")
GOALS = ("minimize", "maximize")


@dataclasses.dataclass(frozen=True, eq=False)
class Variant:
    """The cases of a spec that share one static setup, hence one compiled program.

    Attributes:
        cases: the case names (``(None,)`` for a spec without cases).
        dataset, model, config: the data, the model and the :class:`TrainConfig`.
        space: the search space of these cases.
        init_params: fixed initial params shared by all members (``model.init = "book"``) or None.
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
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=50"`` -> ``(["train", "epochs"], 50)``; the value is read as TOML.

    A bare word that is not TOML (``data.dataset=mnist``) is taken as a string.
    """
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) for part in path):
        raise InputError(f"--set: expected KEY=VALUE with a dotted KEY such as train.epochs=50, got {text!r}")
    try:
        parsed = tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value.strip()):
            raise InputError(f"--set {key.strip()}: expected a TOML value, got {value.strip()!r}") from None
        parsed = value.strip()
    return path, parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        table = raw
        for i, part in enumerate(path[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise InputError(f"--set {'.'.join(path)}: expected {'.'.join(path[:i + 1])} to be a table, "
                                f"got {table!r}")
        table[path[-1]] = value
    return raw


def _check_keys(table: str, given: dict, allowed) -> None:
    for key in given:
        if key not in allowed:
            raise InputError(f"{table}: expected keys among {', '.join(sorted(allowed))}, got {key!r}")


def _table(raw: dict, name: str) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise InputError(f"{name}: expected a table [{name}], got {value!r}")
    return value


def _choice(where: str, value, allowed) -> None:
    if value not in allowed:
        raise InputError(f"{where}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")


def _int(where: str, value, low: int, high: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bound = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise InputError(f"{where}: expected an integer {bound}, got {value!r}")
    return value


def _bool(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected true or false, got {value!r}")
    return value


def _prefixed(prefix: str, error: Exception) -> InputError:
    return InputError(f"{prefix}.{error}")


def load_spec(path: str | Path, overrides: list[str] = ()) -> Spec:
    """Reads, checks and builds a sweep spec; see the module docstring."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"spec: expected an existing TOML file, got {str(path)!r} (not found)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"spec: expected a readable TOML file, got {str(path)!r} ({error})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"spec: expected valid TOML in {str(path)!r}, got a syntax error: {error}") from None
    return build_spec(apply_overrides(raw, list(overrides)), default_name=path.stem)


def _static(data_raw: dict, model_raw: dict, train_raw: dict, datasets: dict) -> dict:
    """Checks the static tables and builds the data set and the model from them."""
    dataset_name = data_raw.get("dataset")
    if dataset_name is None:
        raise InputError("data.dataset: expected one of 'blobs', 'digits', 'mnist', got nothing")
    _choice("data.dataset", dataset_name, tuple(data_lib._DEFAULTS))
    options = {k: v for k, v in data_lib._DEFAULTS[dataset_name].items() if k != "opener"}
    _check_keys("data", data_raw, DATA_KEYS + tuple(options))
    data_seed = _int("data.seed", data_raw.get("seed", 0), 0, 2**32 - 1)
    data_dir = data_raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise InputError(f"data.data_dir: expected a path string, got {data_dir!r}")
    given = {k: v for k, v in data_raw.items() if k in options}
    if train_raw.get("dtype", TRAIN_DEFAULTS["dtype"]) in DTYPES:
        given.setdefault("dtype", train_raw.get("dtype", TRAIN_DEFAULTS["dtype"]))  # data in the train dtype
    try:
        cache_key = json.dumps([dataset_name, data_seed, data_dir, given], sort_keys=True)
        if cache_key not in datasets:
            datasets[cache_key] = data_lib.load(dataset_name, key=data_seed, data_dir=data_dir, **given)
        dataset = datasets[cache_key]
    except data_lib.DatasetError as error:
        # Its message spans lines (every path searched): one line, the first, with the remedy.
        lines = [line.strip() for line in str(error).splitlines()]
        reason = lines[0].removesuffix("; looked for:")
        failed = [line for line in lines if line.startswith(("http://", "https://"))]
        if failed:
            reason += f"; downloading failed: {failed[0]}"
        hint = ", or download = true" if data_raw.get("download") is False else ""
        raise InputError(f"data.data_dir: expected a folder with readable {dataset_name} files (or "
                        f"$JAXREG_DATA_DIR{hint}), got {repr(data_dir) if data_dir else 'no data_dir'} "
                        f"({reason})") from None
    except ValueError as error:
        raise _prefixed("data", error) from None
    data_resolved = {"dataset": dataset_name, "seed": data_seed, "data_dir": data_dir,
                     **{k: v for k, v in dataset.info["options"].items() if k != "opener"}}

    _check_keys("model", model_raw, MODEL_DEFAULTS)
    m = {**MODEL_DEFAULTS, **model_raw}
    _choice("model.kind", m["kind"], ("mlp", "cnn"))
    _check_keys("train", train_raw, TRAIN_DEFAULTS)
    t = {**TRAIN_DEFAULTS, **train_raw}
    _choice("train.dtype", t["dtype"], DTYPES)
    _choice("train.loss", t["loss"], LOSSES)
    dtype = jnp.float32
    if t["dtype"] == "float64":
        # Float64 arrays need JAX's x64 mode, a process-wide switch: a float64 spec turns it on.
        jax.config.update("jax_enable_x64", True)
        dtype = jnp.float64
    for key in ("hidden", "channels"):
        widths = m[key]
        if not isinstance(widths, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
            what = "layer widths" if key == "hidden" else "channel counts"
            raise InputError(f"model.{key}: expected a list of {what} (integers >= 1), got {widths!r}")
    scale = m["init_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise InputError(f"model.init_scale: expected a finite number > 0, got {scale!r}")
    _choice("model.init", m["init"], (*INITS, "book"))
    _bool("model.bias", m["bias"])
    n_in = int(np.prod(dataset.info["input_shape"]))
    n_out = dataset.info["num_classes"]
    n_out = 1 if (n_out == 2 and t["loss"] in ("bce", "mse", "squared_error", "sum_squared_error")) else n_out
    book_init = m["init"] == "book"
    if book_init and m["kind"] != "mlp":
        raise InputError(f"model.kind: expected 'mlp' with init = 'book' (it draws MLP weights), "
                        f"got {m['kind']!r}")
    if book_init and m["bias"]:
        raise InputError("model.bias: expected false with init = 'book' (it draws bias-free weights), "
                        "got true")
    if m["kind"] == "cnn" and not m["bias"]:
        raise InputError("model.bias: expected true with kind 'cnn' (its layers always have biases), "
                        "got false")
    _int("model.init_seed", m["init_seed"], 0, 2**32 - 1)
    try:
        if m["kind"] == "mlp":
            model = mlp((n_in, *m["hidden"], n_out), activation=m["activation"], output=m["output"],
                        bias=m["bias"], init="uniform" if book_init else m["init"],
                        init_scale=m["init_scale"], dtype=dtype)
        else:
            image_shape = dataset.info["image_shape"]
            if image_shape is None:
                raise InputError(f"model.kind: expected 'mlp' with dataset {dataset_name!r} (a cnn needs "
                                f"image data: 'digits' or 'mnist'), got 'cnn'")
            shape = image_shape if len(image_shape) == 3 else (*image_shape, 1)
            model = cnn(shape, n_out, channels=m["channels"], kernel_size=m["kernel_size"], pool=m["pool"],
                        hidden=m["hidden"], activation=m["activation"], output=m["output"],
                        init=m["init"], init_scale=m["init_scale"], dtype=dtype)
    except InputError:
        raise
    except (ValueError, TypeError) as error:
        message = str(error).replace("sizes: ", "hidden: ")
        raise InputError(f"model.{message}") from None
    init_params = None
    if book_init:
        init_params = numpy_uniform_init((n_in, *m["hidden"], n_out), seed=m["init_seed"],
                                         scale=m["init_scale"], dtype=np.dtype(t["dtype"]))

    batch_size = t["batch_size"]
    n_train = len(dataset.train.y)
    if batch_size == "full":
        batch_size = None
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n_train:
        raise InputError(f"train.batch_size: expected an integer in [1, {n_train}] (the training set size) "
                        f"or \"full\", got {batch_size!r}")
    _int("train.start_epoch", t["start_epoch"], 0)
    for flag in ("shuffle", "eval_test", "penalize_bias"):
        _bool(f"train.{flag}", t[flag])

    return {"dataset": dataset, "data": data_resolved, "model_table": m, "train_table": t,
            "model": model, "batch_size": batch_size, "init_params": init_params}


def build_spec(raw: dict, default_name: str = "sweep") -> Spec:
    """Checks and builds a spec given as a dict (the parsed TOML)."""
    _check_keys("spec", raw, TOP_LEVEL)
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise InputError(f"name: expected letters, digits, '.', '_' or '-' (a folder name), got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InputError(f"description: expected a string, got {description!r}")

    data_raw, model_raw, train_raw = (_table(raw, key) for key in STATIC)
    datasets: dict = {}
    base = _static(data_raw, model_raw, train_raw, datasets)

    # [hparams] and [cases]
    hparams_raw = _table(raw, "hparams")
    _check_keys("hparams", hparams_raw, HParams._fields)
    axes = {name: parse_axis(name, value) for name, value in hparams_raw.items()}
    cases_raw = _table(raw, "cases")
    cases, overrides = {}, {}
    for case, table in cases_raw.items():
        if not isinstance(table, dict):
            raise InputError(f"cases.{case}: expected a table of hparams (and data, model or train "
                            f"overrides), got {table!r}")
        for key in table:
            if key not in HParams._fields + STATIC:
                raise InputError(f"cases.{case}: expected hparams among {', '.join(sorted(HParams._fields))} "
                                f"or the tables {', '.join(STATIC)}, got {key!r}")
        cases[case] = {name: parse_axis(name, value, f"cases.{case}.{name}")
                       for name, value in table.items() if name not in STATIC}
        overrides[case] = {key: table[key] for key in STATIC if key in table}
        for key, value in overrides[case].items():
            if not isinstance(value, dict):
                raise InputError(f"cases.{case}.{key}: expected a table of [{key}] keys, got {value!r}")

    # [search]
    search_raw = _table(raw, "search")
    _check_keys("search", search_raw, SEARCH_DEFAULTS)
    s = {**SEARCH_DEFAULTS, **search_raw}
    _choice("search.method", s["method"], METHODS)
    if s["round_method"] is None:
        s["round_method"] = "grid" if s["method"] == "grid" else "random"
    _choice("search.round_method", s["round_method"], ("grid", "random"))
    if s["method"] == "grid":
        s["round_method"] = "grid"
    elif s["method"] == "random":
        s["round_method"] = "random"
    seeds = s["seeds"]
    seeds_allowed = "a count in [1, 100000] or a non-empty list of integers in [0, 2**32)"
    if isinstance(seeds, list):
        if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in seeds):
            raise InputError(f"search.seeds: expected {seeds_allowed}, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise InputError(f"search.seeds: expected distinct seeds, got {seeds!r}")
        seeds = tuple(seeds)
    elif isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 100_000:
        raise InputError(f"search.seeds: expected {seeds_allowed}, got {seeds!r}")
    else:
        seeds = tuple(range(seeds))
    s["seeds"] = list(seeds)
    _int("search.samples", s["samples"], 1, 10**6)
    _int("search.rounds", s["rounds"], 1, 100)
    _int("search.top_k", s["top_k"], 1, 10**6)
    _int("search.seed", s["seed"], 0, 2**32 - 1)
    if s["method"] != "coarse_to_fine":
        s["rounds"] = 1
    width = s["min_width"]
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise InputError(f"search.min_width: expected a fraction of the original range in (0, 1], got {width!r}")
    _choice("search.metric", s["metric"], MONITORS)
    if s["goal"] is None:
        s["goal"] = "minimize" if s["metric"].endswith("loss") else "maximize"
    _choice("search.goal", s["goal"], GOALS)
    if s["chunk_size"] is not None:
        _int("search.chunk_size", s["chunk_size"], 1, 10**6)
    budget = s["memory_budget_mb"]
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise InputError(f"search.memory_budget_mb: expected a number > 0, got {budget!r}")
    if s["method"] == "coarse_to_fine" and cases:
        raise InputError("search.method: expected 'grid' or 'random' with [cases] (coarse_to_fine zooms "
                        f"one space), got 'coarse_to_fine' with cases {', '.join(map(repr, cases))}")

    output_raw = _table(raw, "output")
    _check_keys("output", output_raw, OUTPUT_DEFAULTS)
    o = {**OUTPUT_DEFAULTS, **output_raw}
    for flag in ("params", "plots"):
        _bool(f"output.{flag}", o[flag])
    csv_columns = o["curves_csv"]
    sources = CSV_SOURCES + METRICS
    if isinstance(csv_columns, dict):
        for column, source in csv_columns.items():
            if source not in sources:
                raise InputError(f"output.curves_csv.{column}: expected one of {', '.join(sources)}, got {source!r}")
        if not csv_columns:
            raise InputError("output.curves_csv: expected true, false or a table {column = source}, got {}")
    elif not isinstance(csv_columns, bool):
        raise InputError(f"output.curves_csv: expected true, false or a table {{column = source}}, got {csv_columns!r}")
    extra = o["plot_metrics"]
    if not isinstance(extra, list) or any(m not in METRICS for m in extra):
        raise InputError(f"output.plot_metrics: expected a list of metrics among {', '.join(METRICS)}, got {extra!r}")

    # Cases with the same static setup share a variant: one compiled program each.
    groups: dict[str, list] = {}
    for case in (cases or {None: None}):
        key = json.dumps(overrides.get(case, {}), sort_keys=True)
        groups.setdefault(key, []).append(case)
    variants = []
    for key, names in groups.items():
        static = base
        if json.loads(key):
            merged = [{**table, **json.loads(key).get(part, {})}
                      for part, table in zip(STATIC, (data_raw, model_raw, train_raw))]
            try:
                static = _static(*merged, datasets)
            except InputError as error:  # the base tables passed, so the case's override is at fault
                raise InputError(f"cases.{names[0]}.{error}") from None
        where = "" if static is base else f"cases.{names[0]}."
        variants.append(_variant(names, static, axes, {n: cases[n] for n in names if n is not None},
                                 s, where))

    resolved = {"name": name, "description": description, "data": base["data"],
                "model": base["model_table"], "train": base["train_table"], "hparams": hparams_raw,
                "cases": cases_raw, "search": s, "output": o}
    return Spec(resolved=json.loads(json.dumps(resolved)), name=name, variants=tuple(variants), seeds=seeds)


def _variant(names: list, static: dict, axes: dict, cases: dict, s: dict, where: str) -> Variant:
    model, dataset, t = static["model"], static["dataset"], static["train_table"]
    layer_counts = {"dropout": model.num_dropout, "dropconnect": model.num_dropconnect}
    space = Space(axes, cases=cases, method=s["method"], round_method=s["round_method"],
                  samples=s["samples"], seed=s["seed"], layer_counts=layer_counts)
    _check_values(space, model)
    uses = {name: _may_be_nonzero(space, name) for name in ("dropout", "dropconnect")}
    try:
        config = TrainConfig(model=model, data=dataset, loss=t["loss"], optimizer=t["optimizer"],
                             epochs=t["epochs"], batch_size=static["batch_size"], shuffle=t["shuffle"],
                             eval_every=t["eval_every"], eval_test=t["eval_test"],
                             monitor=t["monitor"], mode=t["mode"], start_epoch=t["start_epoch"],
                             l1_mode=t["l1_mode"], dropout=uses["dropout"],
                             dropconnect=uses["dropconnect"], penalize_bias=t["penalize_bias"])
    except ValueError as error:
        raise InputError(f"{where}train.{error}") from None
    if s["metric"].startswith("val") and len(dataset.val.y) == 0:
        raise InputError(f"search.metric: expected 'train_loss' or 'train_accuracy' when the validation "
                        f"split is empty, got {s['metric']!r}")
    return Variant(tuple(names), dataset, model, config, space, static["init_params"])


def _endpoints(axis: Axis) -> list:
    if axis.form in ("fixed", "values", "choice"):
        return list(axis.values)
    return [axis.low, axis.high]


def _check_values(space: Space, model: Model) -> None:
    """Every value an axis can take is a valid hparam (checked at the ends of ranges)."""
    for _, axis in space.all_axes():
        for value in _endpoints(axis):
            resolved = axis.resolve(value, space.layer_counts.get(axis.name))
            try:
                make_hparams(model, **{axis.name: resolved})
            except ValueError as error:  # named hparams.NAME: name where the spec gives it
                raise InputError(str(error).replace(f"hparams.{axis.name}", axis.where, 1)) from None


def _may_be_nonzero(space: Space, name: str) -> bool:
    for _, axis in space.all_axes():
        if axis.name == name and any(np.any(np.asarray(v, np.float64) != 0) for v in _endpoints(axis)):
            return True
    return False

