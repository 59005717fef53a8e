"""Malformed specs and command lines, end to end through the CLI.

Each is refused with exit code 2, nothing on stdout and exactly one line on stderr,
``jaxreg: error: FIELD: expected ALLOWED, got VALUE``, before anything is trained or written:
the ``--out`` folder of ``run`` is never created, and an existing results folder is left as it
was. Nothing here trains: most cases run ``jaxreg.cli.main`` in-process (the base spec is a
40-example digits set, cheap to load); a few run ``python -m jaxreg`` to check the real exit
code and that no traceback escapes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxreg.cli import main
from jaxreg.sweeps import load_spec

N_TRAIN = 40  # the base spec's training set size; its MLP 64-8-10 has 2 dropout layers

BASE = {
    "name": "base",
    "data": {"dataset": "digits", "n_train": N_TRAIN},
    "model": {"hidden": [8]},
    "train": {"epochs": 2, "batch_size": 10},
    "hparams": {"learning_rate": 0.1},
    "search": {"seeds": 1},
}

DELETE = object()  # a patch value that removes the key


def _merged(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def _toml(spec: dict) -> str:
    """A spec as TOML: top-level tables as [sections], [cases.NAME] as sub-tables, hparams
    entries (axis tables included) as inline values."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    for section, table in spec.items():
        if not isinstance(table, dict):
            continue
        if section == "cases":
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
            for case, entries in table.items():
                if isinstance(entries, dict):
                    lines.append(f"[cases.{case}]")
                    lines += [f"{k} = {_toml_value(v)}" for k, v in entries.items()]
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _write_spec(folder: Path, patch: dict | None = None, text: str | None = None) -> Path:
    path = folder / "spec.toml"
    path.write_text(text if text is not None else _toml(_merged(BASE, patch or {})))
    return path


def _refused(capsys, argv: list[str], message: str) -> None:
    """``jaxreg ARGV`` exits with 2, prints nothing on stdout and exactly ``message`` on stderr."""
    code = main(argv)
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"jaxreg: error: {message}\n"


def _snapshot(folder: Path) -> dict:
    """Every file's bytes and mtime, and every folder, under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else "folder"
            for p in sorted(folder.rglob("*"))}


# (id, patch of the base spec, the message after "jaxreg: error: ")
SPEC_CASES = [
    # unknown keys, at every level
    ("unknown-top-level-key", {"epochs": 3},
     "spec: expected keys among cases, data, description, hparams, model, name, output, search, train, "
     "got 'epochs'"),
    ("unknown-train-key", {"train": {"lr": 0.1}},
     "train: expected keys among batch_size, blur_size, dtype, epochs, eval_every, eval_test, extra_metrics, histograms, l1_mode, loss, measure_sigma, measures, metrics, mode, "
     "monitor, optimizer, penalize_bias, penalty_mask, shuffle, start_epoch, got 'lr'"),
    ("unknown-model-key", {"model": {"width": 8}},
     "model: expected keys among activation, batch_norm, bias, channels, hidden, init, init_scale, init_seed, "
     "kernel_size, kind, options, output, pool, pretrained, pretrained_head, pretrained_seed, got 'width'"),
    ("unknown-search-key", {"search": {"trials": 8}},
     "search: expected keys among chunk_size, compact, eta, goal, memory_budget_mb, method, metric, min_epochs, "
     "min_width, path_epochs, path_max, path_mix, path_penalty, path_points, path_ratio, round_method, rounds, "
     "samples, seed, seeds, top_k, z, zoom, got 'trials'"),
    ("unknown-data-key", {"data": {"n_val": 10}},
     "data: expected keys among classes, data_dir, dataset, dtype, n_train, per_class, seed, test_fraction, "
     "val_fraction, got 'n_val'"),
    ("unknown-hparam", {"hparams": {"dropuot": 0.5}},
     "hparams: expected keys among blur, bn_epsilon, bn_momentum, brightness, contrast, dropcon"
     "nect, dropout, flip, l1, l2, layer_lr_decay, learning_rate, lr_decay, min_delta, momentum, noise, patience, restore_best, rotate, saturation, shear, shift, trainable_layers, weight_decay, zoom, got 'dropuot' (did you mean 'dropout'?)"),
    ("misspelt-search-key", {"search": {"metrc": "val_loss"}},
     "search: expected keys among chunk_size, compact, eta, goal, memory_budget_mb, method, metric, min_epochs, "
     "min_width, path_epochs, path_max, path_mix, path_penalty, path_points, path_ratio, round_method, rounds, "
     "samples, seed, seeds, top_k, z, zoom, got 'metrc' (did you mean 'metric'?)"),
    ("misspelt-hparam-in-case", {"cases": {"a": {"l2_": 0.1}}},
     "cases.a: expected hparams among blur, bn_epsilon, bn_momentum, brightness, contrast, dropcon"
     "nect, dropout, flip, l1, l2, layer_lr_decay, learning_rate, lr_decay, min_delta, momentum, noise, patience, restore_best, rotate, saturation, shear, shift, trainable_layers, weight_decay, zoom or the tables data, model, train, got 'l2_' (did you mean 'l2'?)"),
    ("unknown-hparam-in-case", {"cases": {"a": {"lr": 0.1}}},
     "cases.a: expected hparams among blur, bn_epsilon, bn_momentum, brightness, contrast, dropcon"
     "nect, dropout, flip, l1, l2, layer_lr_decay, learning_rate, lr_decay, min_delta, momentum, noise, patience, restore_best, rotate, saturation, shear, shift, trainable_layers, weight_decay, zoom or the tables data, model, train, got 'lr'"),
    # [data]
    ("unknown-dataset", {"data": {"dataset": "cifar10", "n_train": DELETE}},
     "data.dataset: expected one of 'blobs', 'digits', 'mnist', 'npz', 'csv', got 'cifar10'"),
    ("missing-dataset", {"data": {"dataset": DELETE, "n_train": DELETE}},
     "data.dataset: expected one of 'blobs', 'digits', 'mnist', 'npz', 'csv', got nothing"),
    ("n-train-0", {"data": {"n_train": 0}}, "data.n_train: expected an integer in [1, 1079], got 0"),
    # [hparams]: values
    ("dropout-1.5", {"hparams": {"dropout": 1.5}},
     "hparams.dropout: expected drop probabilities in [0, 1), got 1.5"),
    ("dropout-list-wrong-length", {"hparams": {"dropout": [0.1, 0.2, 0.3]}},
     "hparams.dropout: expected a scalar or 2 per-layer rates, got [0.1, 0.2, 0.3]"),
    ("negative-learning-rate", {"hparams": {"learning_rate": -0.1}},
     "hparams.learning_rate: expected a finite number > 0, got -0.1"),
    ("learning-rate-0-in-float32", {"hparams": {"learning_rate": 5e-324}},
     "hparams.learning_rate: expected a finite number > 0 that float32 holds (magnitudes 0 or 1.18e-38 to "
     "3.4e+38), got 5e-324"),
    ("learning-rate-inf-in-float32", {"hparams": {"learning_rate": {"values": [0.1, 1e300]}}},
     "hparams.learning_rate: expected a finite number > 0 that float32 holds (magnitudes 0 or 1.18e-38 to "
     "3.4e+38), got 1e+300"),
    ("momentum-1-in-float32", {"hparams": {"momentum": 0.999999999}},
     "hparams.momentum: expected a number in [0, 1) that float32 holds (magnitudes 0 or 1.18e-38 to "
     "3.4e+38), got 0.999999999"),
    ("learning-rate-true", {"hparams": {"learning_rate": True}},
     "hparams.learning_rate: expected a number, got true"),
    ("bool-in-values", {"hparams": {"l2": {"values": [0.0, True]}}}, "hparams.l2: expected a number, got true"),
    ("bool-in-per-layer-list", {"hparams": {"dropout": [False, 0.5]}},
     "hparams.dropout: expected a number, got false"),
    ("l2-string", {"hparams": {"l2": "big"}},
     "hparams.l2: expected a number, a list of per-layer rates or an axis table "
     "{ values | linspace | logspace | int | choice | uniform | log_uniform = ... }, got 'big'"),
    ("string-in-values", {"hparams": {"l2": {"values": [0.0, "big"]}}}, "hparams.l2: expected a number, got 'big'"),
    ("case-value-names-case", {"cases": {"strong": {"l2": -1.0}}},
     "cases.strong.l2: expected a finite number >= 0, got -1.0"),
    # [hparams]: axis tables
    ("logspace-from-0", {"hparams": {"l2": {"logspace": [0.0, 0.1, 3]}}},
     "hparams.l2.logspace: expected 0 < lo <= hi for a log scale, got [0.0, 0.1, 3]"),
    ("log-uniform-from-0", {"hparams": {"l2": {"log_uniform": [0.0, 0.1]}}, "search": {"method": "random"}},
     "hparams.l2.log_uniform: expected 0 < lo <= hi for a log scale, got [0.0, 0.1]"),
    ("lo-above-hi", {"hparams": {"momentum": {"linspace": [0.9, 0.1, 3]}}},
     "hparams.momentum.linspace: expected finite bounds with lo <= hi, got [0.9, 0.1, 3]"),
    ("linspace-n-0", {"hparams": {"l2": {"linspace": [0.0, 0.1, 0]}}},
     "hparams.l2.linspace: expected a count n >= 1 in [lo, hi, n], got 0"),
    ("empty-values", {"hparams": {"l2": {"values": []}}}, "hparams.l2.values: expected a non-empty list, got []"),
    ("empty-int-range", {"hparams": {"patience": {"int": [5, 2]}}},
     "hparams.patience.int: expected finite bounds with lo <= hi, got [5, 2]"),
    ("grid-too-large", {"hparams": {"patience": {"int": [1, 10**12]}}},
     "hparams: expected at most 1000000 configs in a grid, got 1000000000000"),
    ("uniform-under-grid", {"hparams": {"l2": {"uniform": [0.0, 0.1]}}},
     "hparams.l2: expected values, linspace, logspace, int or choice under a grid search (uniform is a "
     "distribution: it needs search.method 'random', or round_method 'random' with 'coarse_to_fine'), "
     "got uniform"),
    ("log-uniform-in-case-under-grid", {"cases": {"wide": {"l2": {"log_uniform": [1e-4, 0.1]}}}},
     "cases.wide.l2: expected values, linspace, logspace, int or choice under a grid search (log_uniform "
     "is a distribution: it needs search.method 'random', or round_method 'random' with "
     "'coarse_to_fine'), got log_uniform"),
    ("two-forms", {"hparams": {"l2": {"values": [0.0], "linspace": [0.0, 0.1, 2]}}},
     "hparams.l2: expected exactly one of values, linspace, logspace, int, choice, uniform, log_uniform "
     "(and optionally layers), got values and linspace"),
    ("unknown-form", {"hparams": {"l2": {"range": [0.0, 0.1]}}},
     "hparams.l2: expected exactly one of values, linspace, logspace, int, choice, uniform, log_uniform "
     "(and optionally layers), got 'range'"),
    ("layers-on-l2", {"hparams": {"l2": {"values": [0.1], "layers": [0]}}},
     "hparams.l2.layers: expected only for dropout or dropconnect, got [0]"),
    ("layer-index-out-of-range", {"hparams": {"dropout": {"values": [0.5], "layers": [2]}}},
     "hparams.dropout.layers: expected layer indices in [0, 1] (the model has 2), got [2]"),
    # [search]
    ("bad-method", {"search": {"method": "bayesian"}},
     "search.method: expected one of 'grid', 'random', 'coarse_to_fine', 'tpe', 'cmaes', 'gp', 'halving', 'hyperband', 'path', got 'bayesian'"),
    ("bad-metric", {"search": {"metric": "val_f1"}},
     "search.metric: expected one of 'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy', 'val_rmse', "
     "'val_mae', 'val_r2', 'train_rmse', 'train_mae', 'train_r2', got 'val_f1'"),
    ("bad-goal", {"search": {"goal": "max"}}, "search.goal: expected one of 'minimize', 'maximize', got 'max'"),
    ("seeds-0", {"search": {"seeds": 0}},
     "search.seeds: expected a count in [1, 100000] or a non-empty list of integers in [0, 2**32), got 0"),
    ("duplicate-seeds", {"search": {"seeds": [3, 1, 3]}}, "search.seeds: expected distinct seeds, got [3, 1, 3]"),
    ("chunk-size-0", {"search": {"chunk_size": 0}}, "search.chunk_size: expected an integer in [1, 1000000], got 0"),
    ("coarse-to-fine-with-cases", {"search": {"method": "coarse_to_fine"}, "cases": {"a": {}, "b": {"l2": 0.1}}},
     "search.method: expected one of 'grid', 'random', 'tpe', 'cmaes', 'gp' with [cases] (coarse_to_fine zooms one space), "
     "got 'coarse_to_fine' with cases 'a', 'b'"),
    # search.method = "path": each key's field, the values allowed and the value given
    ("path-without-max", {"search": {"method": "path"}},
     "search.path_max: expected the largest strength, a number > 0, got none"),
    ("path-max-0", {"search": {"method": "path", "path_max": 0}},
     "search.path_max: expected the largest strength, a number > 0, got 0"),
    ("path-max-text", {"search": {"method": "path", "path_max": "big"}},
     "search.path_max: expected the largest strength, a number > 0, got 'big'"),
    ("path-ratio-1", {"search": {"method": "path", "path_max": 0.1, "path_ratio": 1.0}},
     "search.path_ratio: expected a number in (0, 1) (each strength is the one before times it), got 1.0"),
    ("path-ratio-negative", {"search": {"method": "path", "path_max": 0.1, "path_ratio": -0.5}},
     "search.path_ratio: expected a number in (0, 1) (each strength is the one before times it), got -0.5"),
    ("path-points-1", {"search": {"method": "path", "path_max": 0.1, "path_points": 1}},
     "search.path_points: expected an integer in [2, 1000], got 1"),
    ("path-points-float", {"search": {"method": "path", "path_max": 0.1, "path_points": 2.5}},
     "search.path_points: expected an integer in [2, 1000], got 2.5"),
    ("path-points-underflow", {"search": {"method": "path", "path_max": 1e-300, "path_ratio": 1e-10,
                                          "path_points": 100}},
     "search.path_points: expected a path whose smallest strength is above 0 (path_max 1e-300 x path_ratio "
     "1e-10 ** 99 rounds to 0), got 100"),
    ("path-epochs-above-epochs", {"search": {"method": "path", "path_max": 0.1, "path_epochs": 3}},
     "search.path_epochs: expected a multiple of train.eval_every (1) in [1, 2] (train.epochs: the first "
     "point's), got 3"),
    ("path-epochs-off-evaluations", {"train": {"epochs": 8, "eval_every": 2},
                                     "search": {"method": "path", "path_max": 0.1, "path_epochs": 3}},
     "search.path_epochs: expected a multiple of train.eval_every (2) in [2, 8] (train.epochs: the first "
     "point's), got 3"),
    ("path-penalty-unknown", {"search": {"method": "path", "path_max": 0.1, "path_penalty": "dropout"}},
     "search.path_penalty: expected one of 'l2', 'l1', 'weight_decay', 'elastic_net', got 'dropout'"),
    ("path-penalty-swept-too", {"hparams": {"l2": {"values": [0.0, 0.1]}},
                                "search": {"method": "path", "path_max": 0.1}},
     "hparams.l2: expected none with search.method 'path' (search.path_penalty 'l2' sets it at each point), "
     "got {'values': [0.0, 0.1]}"),
    ("path-elastic-net-l1-fixed", {"hparams": {"l1": 0.01},
                                   "search": {"method": "path", "path_max": 0.1, "path_penalty": "elastic_net"}},
     "hparams.l1: expected none with search.method 'path' (search.path_penalty 'elastic_net' sets it at each "
     "point), got 0.01"),
    ("path-mix-out-of-range", {"search": {"method": "path", "path_max": 0.1, "path_penalty": "elastic_net",
                                          "path_mix": [0.5, 1.5]}},
     "search.path_mix: expected a non-empty list of distinct L1 fractions in [0, 1], got [0.5, 1.5]"),
    ("path-mix-without-elastic-net", {"search": {"method": "path", "path_max": 0.1, "path_mix": [0.5]}},
     "search.path_mix: expected only with search.path_penalty 'elastic_net', got [0.5] with 'l2'"),
    ("path-key-without-path", {"search": {"path_ratio": 0.5}},
     "search.path_ratio: expected only with search.method 'path', got 0.5 with search.method 'grid'"),
    ("path-with-cases", {"search": {"method": "path", "path_max": 0.1}, "cases": {"a": {}, "b": {"dropout": 0.1}}},
     "search.method: expected no [cases] with 'path' (each point warm-starts the same members), got 'path' with "
     "cases 'a', 'b'"),
    # [train]
    ("batch-size-above-train-set", {"train": {"batch_size": 41}},
     f'train.batch_size: expected an integer in [1, {N_TRAIN}] (the training set size) or "full", got 41'),
    ("batch-size-half", {"train": {"batch_size": "half"}},
     'train.batch_size: expected an integer >= 1 or "full", got \'half\''),
    ("batch-size-0", {"train": {"batch_size": 0}},
     'train.batch_size: expected an integer >= 1 or "full", got 0'),
    ("epochs-0", {"train": {"epochs": 0}}, "train.epochs: expected an integer >= 1, got 0"),
    ("eval-every-not-dividing-epochs", {"train": {"epochs": 5, "eval_every": 2}},
     "train.eval_every: expected a divisor of epochs=5, got 2"),
    ("bad-optimizer", {"train": {"optimizer": "adagrad"}},
     "train.optimizer: expected one of 'sgd', 'momentum', 'ema_momentum', 'adam', 'adamw', got 'adagrad'"),
    ("bad-loss", {"train": {"loss": "hinge"}},
     "train.loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', 'bce' or "
     "'module:function' (an own loss), got 'hinge'"),
    ("loss-a-list", {"train": {"loss": []}},
     "train.loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', 'bce' or "
     "'module:function' (an own loss), got []"),
    ("start-epoch-true", {"train": {"start_epoch": True}}, "train.start_epoch: expected an integer >= 0, got True"),
    # [model]
    ("bad-activation", {"model": {"activation": "gelu"}},
     "model.activation: expected one of 'relu', 'relu_book', 'tanh', 'sigmoid', 'linear', got 'gelu'"),
    ("bad-init", {"model": {"init": "zeros"}},
     "model.init: expected one of 'uniform', 'he_normal', 'he_uniform', 'glorot_normal', 'glorot_uniform', "
     "'book', got 'zeros'"),
    ("hidden-not-a-list", {"model": {"hidden": 128}},
     "model.hidden: expected a list of layer widths (integers >= 1), got 128"),
    ("hidden-width-0", {"model": {"hidden": [8, 0]}},
     "model.hidden: expected a list of layer widths (integers >= 1), got [8, 0]"),
    ("cnn-channels-not-a-list", {"model": {"kind": "cnn", "channels": 16}},
     "model.channels: expected a list of channel counts (integers >= 1), got 16"),
    ("init-scale-true", {"model": {"init_scale": True}}, "model.init_scale: expected a finite number > 0, got True"),
    ("book-init-with-bias", {"model": {"init": "book"}},
     "model.bias: expected false with init = 'book' (it draws bias-free weights), got true"),
    ("book-init-cnn", {"model": {"kind": "cnn", "init": "book", "bias": False}},
     "model.kind: expected 'mlp' with init = 'book' (it draws MLP weights), got 'cnn'"),
    ("cnn-without-bias", {"model": {"kind": "cnn", "bias": False}},
     "model.bias: expected true with kind 'cnn' (its layers always have biases), got false"),
    ("cnn-on-blobs", {"model": {"kind": "cnn"}, "data": {"dataset": "blobs", "n_train": DELETE}},
     "model.kind: expected 'mlp' with dataset 'blobs' (a cnn needs image data: 'digits', 'mnist', or images of shape (n, H, W[, C])), got 'cnn'"),
    ("metrics-unknown", {"train": {"metrics": ["val_loss", "val_los"]}},
     "train.metrics: expected a non-empty list of names among train_loss, train_accuracy, val_loss, val_accuracy, "
     "test_loss, test_accuracy, epoch_loss, epoch_accuracy, penalty, weight_norm, zero_fraction, got ['val_loss', 'val_los']"),
    ("metrics-empty", {"train": {"metrics": []}},
     "train.metrics: expected a non-empty list of names among train_loss, train_accuracy, val_loss, val_accuracy, "
     "test_loss, test_accuracy, epoch_loss, epoch_accuracy, penalty, weight_norm, zero_fraction, got []"),
    # top level
    ("name-with-slash", {"name": "runs/a"},
     "name: expected a folder name: a letter or digit first, then letters, digits, '.', '_' or '-', got 'runs/a'"),
    ("name-dot-dot", {"name": ".."},  # '.' is allowed, but not first: '..' is the folder above
     "name: expected a folder name: a letter or digit first, then letters, digits, '.', '_' or '-', got '..'"),
    ("output-plots-1", {"output": {"plots": 1}}, "output.plots: expected true or false, got 1"),
]


@pytest.mark.parametrize("patch, message", [pytest.param(p, m, id=i) for i, p, m in SPEC_CASES])
def test_bad_spec_is_refused_before_anything_is_written(tmp_path, capsys, patch, message):
    spec, out = _write_spec(tmp_path, patch), tmp_path / "out"
    _refused(capsys, ["run", str(spec), "--out", str(out)], message)
    assert not out.exists()
    _refused(capsys, ["plan", str(spec)], message)


def test_base_spec_and_near_misses_are_accepted(tmp_path, capsys):
    """The cases above fail because of their patch, and the checks don't refuse valid input:
    restore_best takes a bool, batch_size "full", seeds a list, a case its own dropout layers."""
    for patch in ({}, {"hparams": {"restore_best": True, "dropout": [0.0, 0.5]}, "train": {"batch_size": "full"},
                       "search": {"seeds": [7, 3]}, "cases": {"a": {"dropout": {"values": [0.5], "layers": [1]}}}}):
        assert main(["plan", str(_write_spec(tmp_path, patch))]) == 0
        assert capsys.readouterr().err == ""


def test_a_byte_order_mark_is_dropped(tmp_path, capsys):
    """A spec saved by an editor that writes a UTF-8 BOM reads as the same spec."""
    from jaxreg.sweeps import read_spec

    text = _toml(BASE)
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_spec(tmp_path / "bom.toml") == read_spec(_write_spec(tmp_path, text=text))
    assert main(["plan", str(tmp_path / "bom.toml")]) == 0
    assert capsys.readouterr().err == ""


# (id, argv with SPEC for a spec file, the message; the spec is the base one unless `text`)
CLI_CASES = [
    ("no-command", [], None, "command: expected one of 'run', 'plan', 'sanity', 'lr-find', 'show', 'plot', 'best', 'predict', 'compare', 'report', 'export', got nothing"),
    ("unknown-subcommand", ["train", "SPEC"], None,
     "command: expected one of 'run', 'plan', 'sanity', 'lr-find', 'show', 'plot', 'best', 'predict', 'compare', 'report', 'export', got 'train'"),
    ("run-without-spec", ["run"], None, "spec: expected a sweep spec (a TOML file), got nothing"),
    ("unknown-option", ["run", "SPEC", "--epochs", "3"], None,
     "arguments: expected only those listed by --help, got '--epochs 3'"),
    ("out-without-value", ["run", "SPEC", "--out"], None, "--out: expected a value, got nothing"),
    ("show-top-0", ["show", "TMP", "--top", "0"], None, "--top: expected an integer >= 1, got '0'"),
    ("missing-spec-file", ["run", "TMP/nope.toml"], None,
     "spec: expected an existing TOML file, got 'TMP/nope.toml' (not found)"),
    ("spec-is-a-folder", ["plan", "TMP"], None,
     "spec: expected a TOML file, got 'TMP' (not a regular file)"),
    ("invalid-toml", ["run", "SPEC"], 'name = "base"\n[data\ndataset = "digits"\n',
     "spec: expected valid TOML in 'TMP/spec.toml', got a syntax error: Expected ']' at the end of a table "
     "declaration (at line 2, column 6)"),
    ("set-without-equals", ["run", "SPEC", "--set", "train.epochs"], None,
     "--set: expected KEY=VALUE with a dotted KEY such as train.epochs=50, got 'train.epochs'"),
    ("set-invalid-toml-value", ["run", "SPEC", "--set", "hparams.l2=[0.1,"], None,
     "--set hparams.l2: expected a TOML value, got '[0.1,'"),
    ("set-into-a-non-table", ["run", "SPEC", "--set", "train.epochs.max=3"], None,
     "--set train.epochs.max: expected train.epochs to be a table, got 2"),
    ("set-makes-spec-invalid", ["run", "SPEC", "--set", "train.optimizer=adagrad"], None,
     "train.optimizer: expected one of 'sgd', 'momentum', 'ema_momentum', 'adam', 'adamw', got 'adagrad'"),
    ("set-table-to-a-number", ["plan", "SPEC", "--set", "search=3"], None,
     "search: expected a table [search], got 3"),
    ("show-not-a-results-folder", ["show", "TMP"], None,
     "DIR: expected a jaxreg results folder with manifest.json, got 'TMP'"),
    ("plot-missing-folder", ["plot", "TMP/missing"], None,
     "DIR: expected a jaxreg results folder with manifest.json, got 'TMP/missing'"),
    ("export-without-target", ["export"], None, "target: expected one of 'optuna', 'mlflow', 'tensorboard', got nothing"),
    ("export-unknown-target", ["export", "wandb", "TMP"], None,
     "target: expected one of 'optuna', 'mlflow', 'tensorboard', got 'wandb'"),
    ("export-not-a-results-folder", ["export", "tensorboard", "TMP"], None,
     "DIR: expected a jaxreg results folder with manifest.json, got 'TMP'"),
    ("export-optuna-without-storage", ["export", "optuna", "TMP"], None, "--storage: expected an Optuna storage URL (sqlite:///study.db), got nothing"),
]


@pytest.mark.parametrize("argv, text, message", [pytest.param(a, t, m, id=i) for i, a, t, m in CLI_CASES])
def test_bad_command_line_is_refused(tmp_path, capsys, monkeypatch, argv, text, message):
    monkeypatch.chdir(tmp_path)  # where run would put results/base without --out
    spec = _write_spec(tmp_path, text=text)
    (tmp_path / "notes.txt").write_text("not a results folder\n")
    before = _snapshot(tmp_path)
    argv = [a.replace("SPEC", str(spec)).replace("TMP", str(tmp_path)) for a in argv]
    _refused(capsys, argv, message.replace("TMP", str(tmp_path)))
    assert _snapshot(tmp_path) == before  # no results folder, no plots, nothing


def test_missing_mnist_without_download(tmp_path, capsys, monkeypatch):
    data_dir, env_dir, cache = (tmp_path / name for name in ("data", "env", "cache"))
    for folder in (data_dir, env_dir, cache):
        folder.mkdir()
    monkeypatch.setenv("JAXREG_DATA_DIR", str(env_dir))
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(cache))
    spec = _write_spec(tmp_path, {"data": {"dataset": "mnist", "n_train": 100, "n_val": 100, "n_test": 100,
                                           "data_dir": str(data_dir), "download": False}})
    out = tmp_path / "out"
    _refused(capsys, ["run", str(spec), "--out", str(out)],
             f"data.data_dir: expected a folder with readable mnist files (or $JAXREG_DATA_DIR, or "
             f"download = true), got '{data_dir}' (MNIST file train-images-idx3-ubyte not found)")
    assert not out.exists()
    assert [list(folder.iterdir()) for folder in (data_dir, env_dir, cache)] == [[], [], []]


def _results_folder(out: Path) -> None:
    """A results folder as a finished run of another spec leaves it."""
    (out / "curves").mkdir(parents=True)
    from jaxreg.report import store

    spec = {"name": "other", "search": {"method": "grid", "metric": "val_loss", "goal": "minimize"}, "train": {"epochs": 2}}
    manifest = {"spec_sha256": store.spec_sha256(spec), "spec": spec,
                "runs": [{"started": "2024-01-01T00:00:00+00:00", "finished": "2024-01-01T00:01:00+00:00"}]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "trials.jsonl").write_text(json.dumps({"config_id": "0123456789", "seed": 0}) + "\n")
    (out / "summary.csv").write_text("rank,config_id\n1,0123456789\n")
    (out / "curves" / "0123456789_0.npz").write_bytes(b"not really an npz")


@pytest.mark.parametrize("patch", [pytest.param({}, id="a-valid-other-spec"),
                                   pytest.param({"train": {"epochs": 0}}, id="a-malformed-spec")])
def test_results_folder_of_another_spec_is_untouched(tmp_path, capsys, patch):
    out = tmp_path / "results" / "other"
    _results_folder(out)
    before = _snapshot(out)
    spec = _write_spec(tmp_path, patch)
    if patch:
        message = "train.epochs: expected an integer >= 1, got 0"
    else:
        built = load_spec(spec)
        previous = json.loads((out / "manifest.json").read_text())["spec_sha256"]
        message = (f"--out: '{out}' holds results of a different spec (sha256 {previous[:12]}, this one "
                   f"{built.digest[:12]}: data is unset there, {built.resolved['data']!r} here): expected the "
                   f"same data, model, train and fixed hparams to resume or grow it (more seeds, configs or "
                   f"cases); use --overwrite to replace them, or another --out")
    _refused(capsys, ["run", str(spec), "--out", str(out)], message)
    assert _snapshot(out) == before


# A few through a real process: the exit code, and no traceback anywhere.
PROCESS_CASES = [
    ("unknown-subcommand", ["frobnicate"], "command: expected one of 'run', 'plan', 'sanity', 'lr-find', 'show', 'plot', 'best', 'predict', 'compare', 'report', 'export', got 'frobnicate'"),
    ("missing-spec-file", ["plan", "TMP/nope.toml"],
     "spec: expected an existing TOML file, got 'TMP/nope.toml' (not found)"),
    ("dropout-1.5", ["run", "SPEC", "--out", "TMP/out", "--set", "hparams.dropout=1.5"],
     "hparams.dropout: expected drop probabilities in [0, 1), got 1.5"),
    ("set-invalid-toml-value", ["run", "SPEC", "--set", "train.epochs=[1,"],
     "--set train.epochs: expected a TOML value, got '[1,'"),
]


@pytest.mark.parametrize("argv, message", [pytest.param(a, m, id=i) for i, a, m in PROCESS_CASES])
def test_refused_by_a_real_process(tmp_path, argv, message):
    spec = _write_spec(tmp_path)
    argv = [a.replace("SPEC", str(spec)).replace("TMP", str(tmp_path)) for a in argv]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "jaxreg", *argv], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert "Traceback" not in done.stderr
    expected = f"jaxreg: error: {message.replace('TMP', str(tmp_path))}\n"
    assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]  # no out/, no results/


def test_unset_removes_a_key_in_order_with_the_overrides(tmp_path, capsys):
    """A halving spec moved to another method with --set keeps search.eta, which that method
    refuses: --unset removes it (and a key the spec does not set is one line, not a no-op)."""
    from jaxreg import cli
    from jaxreg.errors import InputError
    from jaxreg.sweeps.spec import apply_overrides

    raw = {"search": {"method": "halving", "eta": 3, "min_epochs": 2}, "train": {"epochs": 8}}
    assert apply_overrides(raw, ["search.method=random", "!search.eta", "!search.min_epochs"]) == \
        {"search": {"method": "random"}, "train": {"epochs": 8}}
    assert apply_overrides(raw, ["!search.eta", "search.eta=2"])["search"]["eta"] == 2  # in order
    with pytest.raises(InputError, match=r"^--unset search\.etaa: expected a key the spec sets \(eta, method, "
                                         r"min_epochs\), got one it does not set \(did you mean 'eta'\?\)$"):
        apply_overrides(raw, ["!search.etaa"])
    spec = tmp_path / "h.toml"
    spec.write_text('[data]\ndataset = "digits"\n[train]\nepochs = 4\n[hparams]\nlearning_rate = { values = [0.1, 0.2] }\n'
                    '[search]\nmethod = "halving"\neta = 2\n')
    assert cli.main(["plan", str(spec), "--set", "search.method=random"]) == 2
    assert "search.eta" in capsys.readouterr().err
    assert cli.main(["plan", str(spec), "--set", "search.method=random", "--unset", "search.eta"]) == 0
    assert "(random search)" in capsys.readouterr().out


@pytest.mark.parametrize("train, message", [
    ({"measures": ["sharpnes"]}, "train.measures: expected a list of names among norm_product, path_norm, margin, "
                                 "sharpness, mag_sharpness, hessian, got ['sharpnes']"),
    ({"measures": "hessian"}, "train.measures: expected a list of names among norm_product, path_norm, margin, "
                              "sharpness, mag_sharpness, hessian, got 'hessian'"),
    ({"measures": ["sharpness"], "measure_sigma": 0}, "train.measure_sigma: expected a number > 0, got 0"),
    ({"measure_sigma": "0.1"}, "train.measure_sigma: expected a number > 0, got '0.1'"),
])
def test_bad_measures_are_refused_before_jax_loads(train, message):
    from jaxreg.errors import InputError
    from jaxreg.sweeps.spec import check_spec

    with pytest.raises(InputError) as error:
        check_spec({"name": "m", "data": {"dataset": "digits"}, "train": train})
    assert str(error.value) == message
