"""Sweep specs: TOML files read with ``tomllib`` and checked in full before anything is built.

``read_spec(path, overrides)`` reads a spec and applies ``--set KEY=VALUE`` overrides;
``check_spec(raw)`` fills in every default and checks every field that can be checked from the
text alone, returning a :class:`CheckedSpec`. What needs the data or the model (a batch size
against the training set, hparams values against the model's layers, the library's own checks
of ``TrainConfig``) is checked while :mod:`jaxreg.sweeps.build` builds them. Any problem raises
:class:`jaxreg.errors.InputError` with one line naming the field, what is allowed and the value
given. The schema is documented in docs/spec.md.

Checks the library makes itself are left to it when its message names the field as the spec
does; those kept here either read differently in the spec (``batch_size = "full"``, ``model.init
= "book"``) or refuse what the library accepts (``true`` where a number is expected).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from jaxreg import data as data_lib
from jaxreg.errors import InputError, check_choice, is_int, quoted
from jaxreg.hparams import HParams
from jaxreg.limits import check_measure_sigma, check_monitor, check_schedule
from jaxreg.names import (CSV_SOURCES, INITS, LOSSES, MEASURES, METRICS, REGRESSION_METRICS, SEARCH_METRICS,
                          check_metric_name, own_metric_names, search_metrics)
from jaxreg.sweeps.path import SEARCH_KEYS as PATH_SEARCH_KEYS, check_path
from jaxreg.sweeps.rungs import METHODS as HALVING, brackets as halving_brackets
from jaxreg.sweeps.samplers import check_installed
from jaxreg.sweeps.space import METHODS, MODEL_METHODS, parse_axis
from jaxreg.trust import check_import

__all__ = ["CheckedSpec", "Static", "anchor_paths", "apply_overrides", "check_spec", "parse_override", "read_spec"]

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
                   "goal": None, "chunk_size": None, "memory_budget_mb": "auto"}
# coarse_to_fine only: zoom ["not_worse"] (or "top_k", the rule before it: a manifest without
# these keys), z [1.0]: standard errors within which a config is not significantly worse
OPTIONAL_SEARCH_KEYS = ("zoom", "z")
# halving and hyperband only: eta [3] (keep the best 1/eta at each rung), min_epochs [eval_every]
HALVING_KEYS = ("eta", "min_epochs")
# compact [false]: members that early stopping or the divergence guard stopped leave the compiled
# batch at the next segment (halving and hyperband always compact)
ZOOMS = ("not_worse", "top_k")
OUTPUT_DEFAULTS = {"params": False, "plots": True, "curves_csv": False, "plot_metrics": [], "tensorboard": False}
# Keys with no default in the resolved spec: absent from the manifests of sweeps that do not
# use them (a results folder made before they existed still resumes and grows).
# options: keyword arguments of a factory kind ("module:function"); batch_norm [false]: mlp and
# cnn; pretrained: a results folder or an exported .npz whose layers start the model (those of
# another shape, the head, start afresh; false: from scratch, a case's override), pretrained_seed:
# which seed's params [the best seed]; pretrained_head [false]: keep the pretrained head too (the
# same task: fine-tuning), else it starts afresh (a new task's head).
OPTIONAL_MODEL_KEYS = ("options", "batch_norm", "pretrained", "pretrained_seed", "pretrained_head")
# what only the built-in mlp and cnn use: a factory kind ("module:function") refuses them
BUILT_IN_MODEL_KEYS = ("hidden", "activation", "output", "bias", "init", "init_scale", "init_seed", "channels",
                       "kernel_size", "pool")
# penalty_mask: "module:function", a callable params -> mask; blur_size [5]: augmentation's kernel;
# histograms [0]: bins of the per-layer histograms of weights, gradients and activations (0: none)
# metrics [all]: the metrics to compute at each evaluation (and the monitored and searched ones)
# extra_metrics: own metrics, {NAME = "module:function"}, each (outputs, labels) -> scalar, computed
# in the program as train_NAME, val_NAME, test_NAME (loss = "module:function": an own loss)
# measures: generalization measures at the returned params of every member (names.MEASURES),
# measure_sigma [0.01]: the perturbations' scale of sharpness and mag_sharpness
OPTIONAL_TRAIN_KEYS = ("penalty_mask", "blur_size", "histograms", "metrics", "extra_metrics", "measures",
                       "measure_sigma")
DATA_KEYS = ("dataset", "seed", "data_dir")
ARRAYS = "arrays"  # data.dataset of a sweep whose data are passed in Python (jaxreg.sweep)
STATIC = ("data", "model", "train")  # the tables a case may override
DTYPES = ("float32", "float64")
GOALS = ("minimize", "maximize")


@dataclasses.dataclass(frozen=True)
class Static:
    """The checked static tables of one compiled program: what :mod:`jaxreg.sweeps.build` turns
    into the data set, the model and the ``TrainConfig``.

    Attributes:
        dataset: the data set's name; ``data_seed``, ``data_dir``: as the spec gives them.
        options: the data set's options given in the spec (``dtype`` set to the train dtype).
        model, train: the ``[model]`` and ``[train]`` tables with every default filled in.
        raw: the ``(data, model, train)`` tables as given, for a case to override.
    """

    dataset: str
    data_seed: int
    data_dir: str | None
    options: dict
    model: dict
    train: dict
    raw: tuple


@dataclasses.dataclass(frozen=True)
class CheckedSpec:
    """A spec whose every text-level field is checked, defaults filled in.

    Attributes:
        name, description: as given (the name defaults to the file's stem).
        base: the :class:`Static` of the spec's own tables.
        groups: ``(case names, Static or None)``: cases that share a static setup, in case order;
            ``None`` for the base setup, ``(None,)`` as the names of a spec without cases.
        axes: ``{name: Axis}`` of ``[hparams]``; ``cases``: ``{case: {name: Axis}}``.
        hparams, cases_raw: the ``[hparams]`` and ``[cases]`` tables as given (for the manifest).
        search, output: the tables with every default filled in.
        seeds: the seeds every config is trained with.
    """

    name: str
    description: str
    base: Static
    groups: tuple
    axes: dict
    cases: dict
    hparams: dict
    cases_raw: dict
    search: dict
    output: dict
    seeds: tuple


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=50"`` -> ``(["train", "epochs"], 50)``; the value is read as TOML.

    A bare word or path that is not TOML (``data.dataset=mnist``, ``data.data_dir=../data``) is
    taken as a string.
    """
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) for part in path):
        raise InputError(f"--set: expected KEY=VALUE with a dotted KEY such as train.epochs=50, got {text!r}")
    if len(path) > MAX_NESTING or _too_deep(value) is not None:
        raise InputError(f"--set: expected KEY=VALUE nested at most {MAX_NESTING} deep, got {len(text)} "
                         f"characters nested deeper")
    try:
        parsed = tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        # A bare word or path is a string: mnist, ../data, ~/data/x.csv, pkg.module:function
        if not re.fullmatch(r"[A-Za-z0-9_.~/+-][A-Za-z0-9_.~/+:-]*", value.strip()):
            raise InputError(f"--set {key.strip()}: expected a TOML value, got {value.strip()!r}") from None
        parsed = value.strip()
    return path, parsed


UNSET = "!"  # an override "!KEY" removes KEY (``jaxreg run --unset KEY``)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``raw`` with each override applied in order: ``"KEY=VALUE"`` sets a dotted key (see
    :func:`parse_override`), ``"!KEY"`` removes one the spec (or an earlier override) sets."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        if isinstance(text, str) and text.startswith(UNSET):
            _unset(raw, text[len(UNSET):])
            continue
        path, value = parse_override(text)
        table = raw
        for i, part in enumerate(path[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise InputError(f"--set {'.'.join(path)}: expected {'.'.join(path[:i + 1])} to be a table, "
                                 f"got {table!r}")
        table[path[-1]] = value
    return raw


def _unset(raw: dict, key: str) -> None:
    path = key.strip().split(".")
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) for part in path):
        raise InputError(f"--unset: expected a dotted KEY such as search.eta, got {key!r}")
    table = raw
    for part in path[:-1]:
        table = table.get(part) if isinstance(table, dict) else None
    if not isinstance(table, dict) or path[-1] not in table:
        there = sorted(table) if isinstance(table, dict) else []
        raise InputError(f"--unset {key}: expected a key the spec sets"
                         + (f" ({', '.join(there)})" if there else "") + f", got one it does not set"
                         + did_you_mean(path[-1], there))
    del table[path[-1]]


# A spec is a page of text: these bound what tomllib is given before it parses (a file nested
# 100000 deep ends tomllib in a RecursionError; a dotted key 100000 parts long takes gigabytes).
MAX_SPEC_BYTES = 1 << 20
MAX_NESTING = 100
# What the nesting scan skips (strings, comments) and what it counts: brackets, braces and the
# dots of a dotted key, which what ends a key resets.
_TOML_TOKENS = re.compile(r'"""(?:\\.|[^\\])*?"""|' r"'''.*?'''|" r'"(?:\\.|[^"\\\n])*"|' r"'[^'\n]*'|#[^\n]*"
                          r"|[\[\]{}.=,\n]", re.DOTALL)


def _too_deep(text: str) -> int | None:
    """The line where ``text`` nests tables, arrays and dotted keys deeper than MAX_NESTING, or None."""
    depth = dots = 0
    for token in _TOML_TOKENS.finditer(text):
        char = token[0]
        if char in "[{":
            depth, dots = depth + 1, 0
        elif char in "]}":
            depth, dots = depth - 1, 0
        elif char == ".":
            dots += 1
        elif char in "=,\n":
            dots = 0
        if depth + dots > MAX_NESTING:
            return text.count("\n", 0, token.start()) + 1
    return None


def read_spec(path: str | Path, overrides: list[str] = ()) -> dict:
    """The spec in the TOML file ``path`` as a dict, ``--set`` overrides applied.

    A file over ``MAX_SPEC_BYTES`` or nested deeper than ``MAX_NESTING`` is refused before it is
    parsed; a UTF-8 byte order mark (some Windows editors write one) is dropped.
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a folder, a FIFO (reading one would hang), a device
            raise InputError(f"spec: expected a TOML file, got {str(path)!r} (not a regular file)")
        with open(path, encoding="utf-8-sig") as file:
            text = file.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"spec: expected an existing TOML file, got {str(path)!r} (not found)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"spec: expected a readable TOML file, got {str(path)!r} ({error})") from None
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise InputError(f"spec: expected a TOML file of at most {MAX_SPEC_BYTES} bytes (1 MiB), got {str(path)!r} "
                         f"of {path.stat().st_size} bytes")
    if (line := _too_deep(text)) is not None:
        raise InputError(f"spec: expected tables, arrays and dotted keys nested at most {MAX_NESTING} deep, "
                         f"got {str(path)!r} nested deeper at line {line}")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"spec: expected valid TOML in {str(path)!r}, got a syntax error: {error}") from None
    search_last(path.resolve().parent, Path.cwd())  # its modules: beside it, or here
    # A spec's own paths are read from its folder, wherever it is run from; an override's from the
    # working directory, as a shell argument is.
    raw = anchor_paths(raw, path.resolve().parent)
    return anchor_paths(apply_overrides(raw, list(overrides)), Path.cwd())


# The spec keys that hold a path of a file or folder: (table, key), in the spec and in each case.
PATH_KEYS = (("data", "path"), ("data", "val_path"), ("data", "test_path"), ("data", "data_dir"),
             ("model", "pretrained"))


def anchor_paths(raw: dict, base: Path) -> dict:
    """``raw`` with each relative path of :data:`PATH_KEYS` made absolute against ``base`` (``~``
    expanded); other values, absolute paths and values that are not strings are left as they are."""
    raw = copy.deepcopy(raw)
    tables = [raw] + [case for case in (raw.get("cases") or {}).values() if isinstance(case, dict)] \
        if isinstance(raw.get("cases", {}), dict) else [raw]
    for owner in tables:
        for table, key in PATH_KEYS:
            values = owner.get(table)
            if isinstance(values, dict) and isinstance(values.get(key), str) and values[key]:
                values[key] = os.path.normpath(base / Path(values[key]).expanduser())  # an absolute one stays
    return raw


def did_you_mean(given, allowed) -> str:
    """`` (did you mean 'dropout'?)`` for a misspelt name close to one of ``allowed``, else ``""``."""
    close = difflib.get_close_matches(str(given), [str(a) for a in allowed], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


SEARCHED_LAST: list[str] = []  # the folders search_last appended (a Ray worker appends them too)


def search_last(*folders) -> None:
    """Lets a spec's ``module:function`` find modules beside the spec (the user's own file) and in
    the working directory, searched after everything else: they never shadow an installed or
    standard-library module."""
    import sys

    for folder in map(str, folders):
        if folder not in sys.path:
            sys.path.append(folder)
            SEARCHED_LAST.append(folder)


def _check_keys(table: str, given: dict, allowed) -> None:
    for key in given:
        if key not in allowed:
            raise InputError(f"{table}: expected keys among {', '.join(sorted(allowed))}, got {key!r}"
                             f"{did_you_mean(key, allowed)}")


def _table(raw: dict, name: str) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise InputError(f"{name}: expected a table [{name}], got {value!r}")
    return value


def _int(where: str, value, low: int, high: float = math.inf) -> int:
    # TOML integers only: the library takes NumPy integers too, and some of its checks a bool.
    if not is_int(value) or not low <= value <= high:
        bound = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise InputError(f"{where}: expected an integer {bound}, got {value!r}")
    return int(value)


def _bool(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected true or false, got {value!r}")
    return value


def is_factory(kind) -> bool:
    """Whether a ``model.kind`` names an importable factory (``"module:function"``)."""
    return isinstance(kind, str) and ":" in kind


def importable(field: str, text) -> Any:
    """The object that ``"package.module:name"`` names, imported now; a one-line error if none.

    Imports search ``sys.path`` as it is: :func:`read_spec` appends the spec's folder and the
    working directory to its end, so neither can shadow an installed or standard-library module.
    While a results folder or an export is read (:func:`jaxreg.trust.foreign`) nothing is
    imported unless the caller trusts it. The object must be a function defined in Python in the
    package it is named from (a class too for ``model.kind``), not in the standard library: a
    builtin such as ``os:system`` is refused before anything calls it.
    """
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", text):
        raise InputError(f"{field}: expected 'module:function' (an importable callable), got {text!r}")
    check_import(field, text)
    module_name, _, attribute = text.partition(":")
    import importlib
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as error:  # any failure to import is the spec's problem, in one line
        raise InputError(f"{field}: expected 'module:function' (an importable callable), got {text!r} "
                         f"({type(error).__name__}: {error})") from None
    _check_callable(field, text, target)
    return target


def _check_callable(field: str, text: str, target) -> None:
    """Refuses what a spec's ``module:function`` must not name, before it is ever called."""
    import inspect
    import sys

    classes = field.endswith("model.kind")  # a class may build a model; a mask is a function
    kind = "a Python function or class" if classes else "a Python function"
    defined_in = getattr(target, "__module__", None) or ""
    why = None
    if not (inspect.isfunction(target) or (classes and inspect.isclass(target))):
        why = f"a {type(target).__name__}"
    elif defined_in.partition(".")[0] in sys.stdlib_module_names:
        why = f"from the standard library's {defined_in!r}"
    elif defined_in.partition(".")[0] != text.partition(":")[0].partition(".")[0]:
        why = f"defined in {defined_in!r}: name it there"
    if why is not None:
        raise InputError(f"{field}: expected 'module:function' naming {kind} of that package, got {text!r} "
                         f"({why})")


def check_static(data_raw: dict, model_raw: dict, train_raw: dict) -> Static:
    """Checks the ``[data]``, ``[model]`` and ``[train]`` tables as far as the text allows."""
    dataset, data_seed, data_dir, given = _check_data(data_raw, train_raw)
    m = _check_model(model_raw)
    t = _check_train(train_raw)
    return Static(dataset, data_seed, data_dir, given, m, t, (data_raw, model_raw, train_raw))


def _check_data(data_raw: dict, train_raw: dict) -> tuple:
    """``[data]``: the dataset, its seed and folder, and the options given for it."""
    dataset = data_raw.get("dataset")
    if dataset is None:
        raise InputError(f"data.dataset: expected one of {quoted(data_lib._DEFAULTS)}, got nothing")
    if dataset != ARRAYS:  # 'arrays' is set by jaxreg.sweep(spec, data=...), never typed: not listed
        check_choice("data.dataset", dataset, tuple(data_lib._DEFAULTS))  # its options are needed now
    if dataset == ARRAYS:  # arrays passed in Python (jaxreg.sweep): how to split them
        options = {k: v for k, v in data_lib._SPLIT_OPTIONS.items() if not k.endswith("_path")}
    else:
        options = {k: v for k, v in data_lib._DEFAULTS[dataset].items() if k != "opener"}
    # sha256: what jaxreg records of a user's data in a results folder's spec, checked on rebuilding
    _check_keys("data", {k: v for k, v in data_raw.items() if k != "sha256"}, DATA_KEYS + tuple(options))
    data_seed = _int("data.seed", data_raw.get("seed", 0), 0, 2**32 - 1)
    data_dir = data_raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise InputError(f"data.data_dir: expected a path string, got {data_dir!r}")
    if data_dir is not None and dataset in ("blobs", "digits", ARRAYS):
        raise InputError(f"data.data_dir: expected none for dataset {dataset!r} (it reads no files), got {data_dir!r}")
    given = {k: v for k, v in data_raw.items() if k in options}
    if train_raw.get("dtype", TRAIN_DEFAULTS["dtype"]) in DTYPES:
        given.setdefault("dtype", train_raw.get("dtype", TRAIN_DEFAULTS["dtype"]))  # data in the train dtype

    return dataset, data_seed, data_dir, given


def _check_model(model_raw: dict) -> dict:
    """``[model]``, with its defaults."""
    # pretrained_sha256: what jaxreg records of the pretrained weights, checked on rebuilding
    _check_keys("model", {k: v for k, v in model_raw.items() if k != "pretrained_sha256"},
                (*MODEL_DEFAULTS, *OPTIONAL_MODEL_KEYS))
    m = {**MODEL_DEFAULTS, **model_raw}
    if is_factory(m["kind"]):
        importable("model.kind", m["kind"])
        if not isinstance(m.get("options", {}), dict):
            raise InputError(f"model.options: expected a table of keyword arguments for {m['kind']!r}, "
                             f"got {m['options']!r}")
        # The built-in models' keys would be ignored: refused, unless at their defaults (a resolved spec).
        ignored = [k for k in BUILT_IN_MODEL_KEYS if k in model_raw and model_raw[k] != MODEL_DEFAULTS[k]]
        if ignored:
            raise InputError(f"model.{ignored[0]}: expected none with a factory kind ({m['kind']!r} builds its own "
                             f"layers: give its arguments in model.options), got {model_raw[ignored[0]]!r}")
    else:
        check_choice("model.kind", m["kind"], ("mlp", "cnn", "MODULE:FUNCTION"))
        if "options" in m:
            raise InputError(f"model.options: expected only with a factory kind ('module:function'), "
                             f"got kind {m['kind']!r}")
    for key in ("hidden", "channels"):
        widths = m[key]
        if not isinstance(widths, list) or not all(is_int(w) and w >= 1 for w in widths):
            what = "layer widths" if key == "hidden" else "channel counts"
            raise InputError(f"model.{key}: expected a list of {what} (integers >= 1), got {widths!r}")
    scale = m["init_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise InputError(f"model.init_scale: expected a finite number > 0, got {scale!r}")
    check_choice("model.init", m["init"], (*INITS, "book"))
    _bool("model.bias", m["bias"])
    if m["init"] == "book" and m["kind"] != "mlp":
        raise InputError(f"model.kind: expected 'mlp' with init = 'book' (it draws MLP weights), "
                         f"got {m['kind']!r}")
    if m["init"] == "book" and m["bias"]:
        raise InputError("model.bias: expected false with init = 'book' (it draws bias-free weights), "
                         "got true")
    if m["kind"] == "cnn" and not m["bias"]:
        raise InputError("model.bias: expected true with kind 'cnn' (its layers always have biases), "
                         "got false")
    _int("model.init_seed", m["init_seed"], 0, 2**32 - 1)
    if "batch_norm" in m:
        _bool("model.batch_norm", m["batch_norm"])
        if m["batch_norm"] and is_factory(m["kind"]):
            raise InputError(f"model.batch_norm: expected false with a factory kind (the factory builds "
                             f"its own layers), got true")
    if m.get("pretrained", False) is not False:  # false: from scratch (a case's override)
        if not isinstance(m["pretrained"], str) or not m["pretrained"]:
            raise InputError(f"model.pretrained: expected the path of a results folder or an exported .npz "
                             f"(or false: train from scratch), got {m['pretrained']!r}")
        if m["init"] == "book":
            raise InputError("model.init: expected an init scheme other than 'book' with model.pretrained "
                             "(the pretrained layers are the init), got 'book'")
    if "pretrained_head" in m:
        _bool("model.pretrained_head", m["pretrained_head"])
    if "pretrained_seed" in m:
        if not m.get("pretrained"):
            raise InputError(f"model.pretrained_seed: expected only with model.pretrained, got {m['pretrained_seed']!r}")
        _int("model.pretrained_seed", m["pretrained_seed"], 0, 2**32 - 1)
    return m


def _check_loss(loss) -> None:
    """``train.loss``: a built-in name, or an own loss function's ``"module:function"``."""
    if is_factory(loss):
        importable("train.loss", loss)
    elif not isinstance(loss, str) or loss not in LOSSES:
        # TrainConfig checks the loss too, but a list there fails as unhashable, not as a bad name.
        raise InputError(f"train.loss: expected one of {', '.join(map(repr, LOSSES))} or 'module:function' "
                         f"(an own loss), got {loss!r}{did_you_mean(loss, LOSSES) if isinstance(loss, str) else ''}")


def _check_extra_metrics(table) -> tuple[str, ...]:
    """``[train.extra_metrics]``: ``NAME = "module:function"``; the own metrics' names."""
    if not isinstance(table, dict):
        raise InputError(f"train.extra_metrics: expected a table {{NAME = \"module:function\"}}, got {table!r}")
    for name, text in table.items():
        check_metric_name("train.extra_metrics", name)
        importable(f"train.extra_metrics.{name}", text)
    return tuple(table)


def own_metrics(train: dict) -> tuple[str, ...]:
    """The own metrics' full names a checked ``[train]`` table adds (``train_NAME``, ...)."""
    return own_metric_names(train.get("extra_metrics", {}))


def _as_train(check, *args) -> None:
    """Runs one of TrainConfig's checks (:mod:`jaxreg.limits`) on ``[train]`` values, its
    message's field prefixed ``train.``."""
    try:
        check(*args)
    except InputError as error:
        raise InputError(f"train.{error}") from None


def _check_schedule(t: dict) -> None:
    """``train.epochs``, ``eval_every`` and ``batch_size`` by the rules TrainConfig applies
    (:func:`jaxreg.limits.check_schedule`), before JAX loads; the batch size's upper bound, the
    training set's size, is checked once the data are read."""
    size = t["batch_size"]
    if size != "full" and (not is_int(size) or size < 1):
        raise InputError(f"train.batch_size: expected an integer >= 1 or \"full\", got {size!r}")
    _as_train(check_schedule, t["epochs"], t["eval_every"], None)


def _check_train(train_raw: dict) -> dict:
    """``[train]``, with its defaults."""
    _check_keys("train", train_raw, (*TRAIN_DEFAULTS, *OPTIONAL_TRAIN_KEYS))
    t = {**TRAIN_DEFAULTS, **train_raw}
    if "penalty_mask" in t:
        importable("train.penalty_mask", t["penalty_mask"])
        if t["penalize_bias"]:
            raise InputError("train.penalize_bias: expected false when train.penalty_mask is given, got true")
    check_choice("train.dtype", t["dtype"], DTYPES)
    _check_loss(t["loss"])
    own = _check_extra_metrics(t.get("extra_metrics", {}))
    if "blur_size" in t:
        _int("train.blur_size", t["blur_size"], 1, 99)
    if "histograms" in t:
        _int("train.histograms", t["histograms"], 0, 1000)
    if "measures" in t and (not isinstance(t["measures"], list)
                            or any(not isinstance(name, str) or name not in MEASURES for name in t["measures"])):
        raise InputError(f"train.measures: expected a list of names among {', '.join(MEASURES)}, "
                         f"got {t['measures']!r}")
    if "measure_sigma" in t:
        _as_train(check_measure_sigma, t["measure_sigma"])  # TrainConfig's rule, before JAX loads
    allowed = METRICS + own_metric_names(own)
    if "metrics" in t and (not isinstance(t["metrics"], list) or not t["metrics"]
                           or any(not isinstance(name, str) or name not in allowed for name in t["metrics"])):
        raise InputError(f"train.metrics: expected a non-empty list of names among {', '.join(allowed)}, "
                         f"got {t['metrics']!r}")
    _as_train(check_monitor, t["monitor"], t["mode"], own)  # TrainConfig's rule, before JAX loads
    _int("train.start_epoch", t["start_epoch"], 0)
    _check_schedule(t)
    for flag in ("shuffle", "eval_test", "penalize_bias"):
        _bool(f"train.{flag}", t[flag])
    return t


_UNSET = object()


def _first_difference(where: str, there, here) -> str | None:
    if there == here or (None in (there, here) and _UNSET in (there, here)):
        return None  # a key added since with the default None: what older folders computed
    if isinstance(there, dict) and isinstance(here, dict):
        for key in sorted(there.keys() | here.keys()):
            if there.get(key, _UNSET) != here.get(key, _UNSET):
                return _first_difference(f"{where}.{key}", there.get(key, _UNSET), here.get(key, _UNSET))

    def said(value):
        return "unset" if value is _UNSET else repr(value)

    return f"{where} is {said(there)} there, {said(here)} here"


def _fixed(table: dict) -> dict:
    """The hparams a table fixes (plain values; axes are tables)."""
    return {k: v for k, v in table.items() if k not in STATIC and not isinstance(v, dict)}


def _content(table: str, values):
    """A resolved ``data`` or ``model`` table without the paths where a hash names the content
    (a file's ``sha256``, ``pretrained_sha256``; MNIST's files are checked against its own): the
    same data read from another folder (a moved or cloned project) computes the same trials."""
    if not isinstance(values, dict):
        return values
    if table == "data" and ("sha256" in values or values.get("dataset") == "mnist"):
        return {k: v for k, v in values.items() if k not in ("path", "val_path", "test_path", "data_dir")}
    if table == "model" and "pretrained_sha256" in values:
        return {k: v for k, v in values.items() if k != "pretrained"}
    return values


def compute_difference(there: dict, here: dict) -> str | None:
    """Where two resolved specs would compute a trial differently, in words, or None.

    A trial is what its config (case and hparams values, content-addressed) and seed compute
    under the spec's ``data``, ``model`` and ``train`` tables, its fixed hparams and each case's
    own fixed hparams and overrides. Everything else (seeds, axes, samples, search method,
    new cases, ``output``) only chooses which trials exist: a results folder grows into a spec
    that differs there, reusing every trial it holds. A coarse-to-fine study is the exception:
    its later rounds depend on every search setting, so it grows by more ``rounds`` only.
    """
    for table in STATIC:
        if (why := _first_difference(table, _content(table, there.get(table, _UNSET)),
                                     _content(table, here.get(table, _UNSET)))) is not None:
            return why
    if (why := _first_difference("hparams", _fixed(there.get("hparams") or {}), _fixed(here.get("hparams") or {}))):
        return why
    old_cases, new_cases = there.get("cases") or {}, here.get("cases") or {}
    for case in sorted(old_cases.keys() & new_cases.keys()):
        old, new = old_cases[case], new_cases[case]
        for part in (_fixed, lambda t: {k: _content(k, t[k]) for k in STATIC if k in t}):
            if (why := _first_difference(f"cases.{case}", part(old), part(new))) is not None:
                return why
    # A coarse-to-fine round's configs depend on the rounds before it and on every search setting
    # that ranked or zoomed them: such a study grows by more rounds only.
    old_search, new_search = there.get("search") or {}, here.get("search") or {}
    studies = ("coarse_to_fine", *MODEL_METHODS, *HALVING, "path")
    if set(studies) & {old_search.get("method"), new_search.get("method")}:
        method = next(m for m in (old_search.get("method"), new_search.get("method")) if m in studies)
        fixed = ("chunk_size", "memory_budget_mb") + (("rounds",) if method not in (*HALVING, "path") else ())
        rules = lambda s: {k: v for k, v in s.items() if k not in fixed}
        old_rules, new_rules = rules(old_search), rules(new_search)
        for key in ("zoom", *sorted(old_rules.keys() | new_rules.keys())):
            if (why := _first_difference(f"search.{key}", old_rules.get(key, _UNSET), new_rules.get(key, _UNSET))):
                if method in HALVING:
                    return f"{why}; a {method} study does not grow, its rungs ranked every config of a round together"
                if method == "path":
                    return f"{why}; a path does not grow, each point starts from the params of the point before"
                return f"{why}; a {method} study grows by more rounds only, its later rounds depend on the rest"
    return None


def spread_hparams(raw: dict, overrides: list[str]) -> list[str]:
    """Lines saying where an ``--set hparams.NAME`` lands in a spec with ``[cases]``: in every
    case that does not set NAME itself (a "none" case included)."""
    cases = raw.get("cases") or {}
    lines = []
    for text in overrides:
        if text.startswith(UNSET):
            continue
        path, _ = parse_override(text)
        if len(path) == 2 and path[0] == "hparams" and isinstance(cases, dict) and cases:
            into = [case for case, table in cases.items() if isinstance(table, dict) and path[1] not in table]
            if into:
                lines.append(f"note: --set hparams.{path[1]} applies to every case that does not set "
                             f"{path[1]} itself: {', '.join(into)} (use --set cases.NAME.{path[1]}=... "
                             f"for one case)")
    return lines


def check_spec(raw: dict, default_name: str = "sweep") -> CheckedSpec:
    """Checks a spec given as a dict (the parsed TOML) and fills in its defaults."""
    _check_keys("spec", raw, TOP_LEVEL)
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise InputError(f"name: expected a folder name: a letter or digit first, then letters, digits, '.', '_' "
                         f"or '-', got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InputError(f"description: expected a string, got {description!r}")

    data_raw, model_raw, train_raw = (_table(raw, key) for key in STATIC)
    base = check_static(data_raw, model_raw, train_raw)

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
                                 f"or the tables {', '.join(STATIC)}, got {key!r}{did_you_mean(key, HParams._fields + STATIC)}")
        cases[case] = {name: parse_axis(name, value, f"cases.{case}.{name}")
                       for name, value in table.items() if name not in STATIC}
        overrides[case] = {key: table[key] for key in STATIC if key in table}
        for key, value in overrides[case].items():
            if not isinstance(value, dict):
                raise InputError(f"cases.{case}.{key}: expected a table of [{key}] keys, got {value!r}")

    s = _check_search(_table(raw, "search"), cases, base.train)
    check_path(s, _table(raw, "search"), base.train, hparams_raw, cases)
    seeds = tuple(s["seeds"])
    o = _check_output(_table(raw, "output"), own_metrics(base.train))

    # Cases with the same static setup share a variant: one compiled program each.
    groups: dict[str, list] = {}
    for case in (cases or {None: None}):
        key = json.dumps(overrides.get(case, {}), sort_keys=True)
        groups.setdefault(key, []).append(case)
    checked_groups = []
    for key, names in groups.items():
        static = None
        if json.loads(key):
            merged = [{**table, **json.loads(key).get(part, {})}
                      for part, table in zip(STATIC, (data_raw, model_raw, train_raw))]
            try:
                static = check_static(*merged)
            except InputError as error:  # the base tables passed, so the case's override is at fault
                raise InputError(f"cases.{names[0]}.{error}") from None
        checked_groups.append((tuple(names), static))
    return CheckedSpec(name, description, base, tuple(checked_groups), axes, cases, hparams_raw,
                       cases_raw, s, o, seeds)


def zoom_words(search: dict) -> str:
    """How a coarse-to-fine search zooms in, in words (plan, the table, compare)."""
    if search.get("zoom", "top_k") == "top_k":
        return f"top {search['top_k']} zoomed"
    return f"zoom: not worse than the best by {search['z']:g} SE"


def _check_search(search_raw: dict, cases: dict, train: dict) -> dict:
    _check_keys("search", search_raw, (*SEARCH_DEFAULTS, *OPTIONAL_SEARCH_KEYS, *HALVING_KEYS, *PATH_SEARCH_KEYS, "compact"))
    s = {**SEARCH_DEFAULTS, **search_raw}
    check_choice("search.method", s["method"], METHODS)
    if s["round_method"] is None:
        s["round_method"] = "grid" if s["method"] == "grid" else "random"
    check_choice("search.round_method", s["round_method"], ("grid", "random"))
    if s["method"] in ("grid", "path"):  # a path's other axes: a grid
        s["round_method"] = "grid"
    elif s["method"] not in ("coarse_to_fine", "halving"):  # random, Optuna's samplers, hyperband
        s["round_method"] = "random"
    if s["method"] in MODEL_METHODS:
        check_installed(s["method"])
    s["seeds"] = _check_seeds(s["seeds"])
    _int("search.samples", s["samples"], 1, 10**6)
    _int("search.rounds", s["rounds"], 1, 100)
    _int("search.top_k", s["top_k"], 1, 10**6)
    _int("search.seed", s["seed"], 0, 2**32 - 1)
    _check_halving(s, search_raw, train)
    _check_rounds(s, search_raw, train)
    width = s["min_width"]
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise InputError(f"search.min_width: expected a fraction of the original range in (0, 1], got {width!r}")
    own = search_metrics(train)[len(SEARCH_METRICS):]  # an own metric's train_ and val_ names
    check_choice("search.metric", s["metric"], SEARCH_METRICS + own)
    if s["goal"] is None and s["metric"] in own:
        raise InputError(f"search.goal: expected 'minimize' or 'maximize' when search.metric is an own metric "
                         f"({s['metric']!r}: jaxreg cannot tell which way is better), got none")
    if s["goal"] is None:  # losses and errors down, accuracy and R^2 up
        s["goal"] = "minimize" if s["metric"].endswith(("loss", "rmse", "mae")) else "maximize"
    check_choice("search.goal", s["goal"], GOALS)
    if s["chunk_size"] is not None:
        _int("search.chunk_size", s["chunk_size"], 1, 10**6)
    _check_compact(s)
    if s["method"] in ("coarse_to_fine", *HALVING) and cases:
        why = "zooms one space" if s["method"] == "coarse_to_fine" else "ranks one space's configs at its rungs"
        raise InputError(f"search.method: expected one of 'grid', 'random', {', '.join(map(repr, MODEL_METHODS))} "
                         f"with [cases] ({s['method']} {why}), got {s['method']!r} with cases {quoted(cases)}")
    return s


def _check_seeds(seeds) -> list[int]:
    """search.seeds: a count, or a list of distinct seeds."""
    allowed = "a count in [1, 100000] or a non-empty list of integers in [0, 2**32)"
    if isinstance(seeds, list):
        if not seeds or not all(is_int(x) and 0 <= x < 2**32 for x in seeds):
            raise InputError(f"search.seeds: expected {allowed}, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise InputError(f"search.seeds: expected distinct seeds, got {seeds!r}")
    elif not is_int(seeds) or not 1 <= seeds <= 100_000:
        raise InputError(f"search.seeds: expected {allowed}, got {seeds!r}")
    else:
        seeds = list(range(seeds))
    return [int(x) for x in seeds]


def _check_rounds(s: dict, search_raw: dict, train: dict) -> None:
    """search.rounds and coarse-to-fine's zoom rule (search.zoom, search.z)."""
    if s["method"] != "coarse_to_fine":
        if s["method"] not in MODEL_METHODS:
            s["rounds"] = len(halving_brackets(train["epochs"], s["min_epochs"], s["eta"])) \
                if s["method"] == "hyperband" else 1
        for key in OPTIONAL_SEARCH_KEYS:
            if key in s:
                raise InputError(f"search.{key}: expected only with search.method 'coarse_to_fine' (how its "
                                 f"rounds zoom in), got {s[key]!r} with search.method {s['method']!r}")
    else:
        s.setdefault("zoom", "not_worse")
        check_choice("search.zoom", s["zoom"], ZOOMS)
        z = s.setdefault("z", 1.0)
        if isinstance(z, bool) or not isinstance(z, (int, float)) or not 0 <= z <= 10:
            raise InputError(f"search.z: expected a number of standard errors in [0, 10], got {z!r}")
        if s["zoom"] == "top_k":
            if "z" in search_raw:
                raise InputError(f"search.z: expected only with search.zoom 'not_worse', got {z!r} with 'top_k'")
            del s["z"]
            del s["zoom"]  # the rule before not_worse: resolved as folders made before it were
        else:
            s["z"] = float(z)


def _check_compact(s: dict) -> None:
    """search.compact and search.memory_budget_mb."""
    if "compact" in s:
        _bool("search.compact", s["compact"])
        if s["method"] in HALVING and not s["compact"]:
            raise InputError(f"search.compact: expected true or nothing with search.method {s['method']!r} (pruned "
                             f"members always leave the batch), got false")
        if not s["compact"]:
            del s["compact"]  # the default: resolved as folders made before it were
    budget = s["memory_budget_mb"]
    if budget != "auto" and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0):
        raise InputError(f"search.memory_budget_mb: expected a number > 0 or \"auto\", got {budget!r}")


def _check_halving(s: dict, search_raw: dict, train: dict) -> None:
    """search.eta and search.min_epochs: only with halving and hyperband, rungs on evaluations."""
    if s["method"] not in HALVING:
        for key in HALVING_KEYS:
            if key in search_raw:
                raise InputError(f"search.{key}: expected only with search.method 'halving' or 'hyperband', "
                                 f"got {search_raw[key]!r} with search.method {s['method']!r}")
        return
    every, epochs = train["eval_every"], train["epochs"]
    _int("search.eta", s.setdefault("eta", 3), 2, 100)
    first = s.setdefault("min_epochs", every)
    if not is_int(first) or not 0 < first < epochs or first % every:
        raise InputError(f"search.min_epochs: expected a multiple of train.eval_every ({every}) below train.epochs "
                         f"({epochs}): the first rung ranks configs on an evaluation, got {first!r}")
    if s["method"] == "hyperband":
        samples = halving_brackets(epochs, first, s["eta"])[0][0]
        # A resolved spec (a manifest's, rebuilt by jaxreg best) carries the count it resolved to.
        if "samples" in search_raw and search_raw["samples"] != samples:
            raise InputError(f"search.samples: expected none with search.method 'hyperband' (each bracket's "
                             f"configs follow from eta and the rungs), got {search_raw['samples']!r}")
        s["samples"] = samples
        if search_raw.get("round_method", "random") != "random":
            raise InputError(f"search.round_method: expected 'random' with search.method 'hyperband' (its brackets "
                             f"draw different counts), got {search_raw['round_method']!r}")


def _check_output(output_raw: dict, own: tuple[str, ...] = ()) -> dict:
    _check_keys("output", output_raw, OUTPUT_DEFAULTS)
    o = {**OUTPUT_DEFAULTS, **output_raw}
    for flag in ("params", "plots", "tensorboard"):
        _bool(f"output.{flag}", o[flag])
    if o["tensorboard"]:
        import importlib.util

        if importlib.util.find_spec("tensorboardX") is None:  # refused before training, not after
            raise InputError("output.tensorboard: expected false without tensorboardX installed "
                             "(pip install 'jaxreg[tensorboard]'), got true")
    csv_columns = o["curves_csv"]
    sources = CSV_SOURCES + METRICS + REGRESSION_METRICS + own
    if isinstance(csv_columns, dict):
        for column, source in csv_columns.items():
            if source not in sources:
                raise InputError(f"output.curves_csv.{column}: expected one of {', '.join(sources)}, "
                                 f"got {source!r}")
        if not csv_columns:
            raise InputError("output.curves_csv: expected true, false or a table {column = source}, got {}")
    elif not isinstance(csv_columns, bool):
        raise InputError(f"output.curves_csv: expected true, false or a table {{column = source}}, "
                         f"got {csv_columns!r}")
    extra = o["plot_metrics"]
    if not isinstance(extra, list) or any(m not in METRICS + REGRESSION_METRICS + own for m in extra):
        raise InputError(f"output.plot_metrics: expected a list of metrics among "
                         f"{', '.join(METRICS + REGRESSION_METRICS + own)}, "
                         f"got {extra!r}")
    return o
