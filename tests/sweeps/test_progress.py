"""Live progress inside a compiled chunk: a callback after every segment (from Python, the program
unchanged), the compilation announced and timed apart from training, and the sweep's bar moving
in epochs while a chunk trains."""

from __future__ import annotations

import re

import numpy as np

import jaxreg
from jaxreg.sweeps import build_spec, run_sweep

SPEC = {"name": "progress", "data": {"dataset": "blobs"}, "model": {"hidden": [5, 3]},
        "train": {"loss": "bce", "epochs": 16, "eval_every": 2, "batch_size": 25},
        "hparams": {"learning_rate": {"values": [0.05, 0.2]}, "dropout": [0.0, 0.1, 0.0]},
        "search": {"seeds": 2, "chunk_size": 3}}


def _members():
    spec = build_spec(SPEC)
    configs = spec.configs()
    seeds = np.array([seed for _ in configs for seed in spec.seeds])
    hparams = jaxreg.stack_hparams(jaxreg.make_hparams(spec.model, **c.hparams) for c in configs for _ in spec.seeds)
    return spec, seeds, hparams


def test_progress_is_reported_per_segment_and_changes_no_number():
    spec, seeds, hparams = _members()
    run = jaxreg.train_batch(spec.config, spec.dataset, 3)
    calls, compiles = [], []
    watched = run(seeds, hparams, progress=lambda done, total: calls.append((done, total)),
                  compiling=compiles.append)
    plain = run(seeds, hparams)
    per = jaxreg.segment_blocks(spec.config.n_evals)
    n_evals = spec.config.n_evals
    one_chunk = [(done, n_evals) for done in range(per, n_evals + 1, per)]
    assert calls == one_chunk * 2  # two chunks of 3 members
    for name in ("final", "curves"):
        for metric, values in getattr(watched, name).items():
            np.testing.assert_array_equal(values, getattr(plain, name)[metric])
    np.testing.assert_array_equal(watched.params["dense_0"]["w"], plain.params["dense_0"]["w"])
    # compiled at most once in this process, and never again for the second run or chunk
    assert compiles in ([], [None, compiles[-1]]) and (not compiles or compiles[-1] > 0)
    again = []
    run(seeds, hparams, compiling=again.append)
    assert again == []


def test_the_sweep_bar_moves_inside_a_chunk_and_the_compilation_is_announced(tmp_path, capsys):
    spec = build_spec({**SPEC, "model": {"hidden": [7, 2]}})  # a program no other test compiles
    run_sweep(spec, tmp_path / "out", progress=True)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert re.search(r"compiling the training program \(3 members per chunk\) \.\.\.\n", err)
    assert re.search(r"compiled in \d+\.\d s\n", err)
    counts = {int(n) for n in re.findall(r"\| (\d+)/32 \[", err)}  # 2 chunks x 16 epochs
    assert counts & set(range(1, 16)) and 32 in counts  # moved within the first chunk
    assert "4/4 trials" in err
    capsys.readouterr()
    run_sweep(build_spec({**SPEC, "model": {"hidden": [7, 2]}, "search": {**SPEC["search"], "seeds": 3}}),
              tmp_path / "out", progress=True)  # grown: the same program, already compiled
    assert "compiling" not in capsys.readouterr().err
