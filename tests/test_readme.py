"""The README's examples run as written (a newcomer copies them verbatim): every Python block,
and every ``jaxreg`` command of its shell blocks, in order, in a scratch folder."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
# `jaxreg ...` lines of the shell blocks (the first block's install commands are what CI runs)
COMMANDS = [re.sub(r"\s{2,}#.*$", "", line).strip()
            for block in re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)
            for line in block.splitlines() if line.startswith("jaxreg ")]


def test_the_readme_has_python_examples_and_commands():
    assert len(BLOCKS) >= 3
    assert len(COMMANDS) >= 8 and any(c.startswith("jaxreg best ") for c in COMMANDS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})


def test_the_load_best_example_predicts_on_raw_rows(capsys):
    """What the example prints is checked: predict standardizes the new raw rows as the training
    split was (the model applied to the rows standardized by hand gives the same classes), and
    scores them well; without it, the model on raw rows predicts much worse."""
    import numpy as np

    (block,) = [b for b in BLOCKS if "jaxreg.load_best(" in b]
    scope = {"__name__": "readme"}
    exec(compile(block, "README.md load_best example", "exec"), scope)
    printed = capsys.readouterr().out.strip().splitlines()
    best, new, truth = scope["best"], scope["new"], scope["truth"]
    scaling = best.info["data"]["standardize"]
    standardized = ((new - np.asarray(scaling["mean"])) / np.asarray(scaling["std"])).astype(np.float32)
    logits, _ = best.model.apply(best.params, best.state, standardized)
    np.testing.assert_array_equal(best.predict(new), np.argmax(np.asarray(logits), -1))
    accuracy = float((best.predict(new) == truth).mean())
    assert printed[-1] == f"{best.hparams['l2']} {accuracy}"
    # on more new rows: predict scores well, the model applied to raw rows does not
    more = np.random.default_rng(1).normal(size=(2000, 4)) * scope["scale"]
    right = (more[:, 0] + (more[:, 1] / 50) ** 2 > 1).astype(int)
    raw, _ = best.model.apply(best.params, best.state, more.astype(np.float32))
    predicted, unscaled = (best.predict(more) == right).mean(), (np.argmax(np.asarray(raw), -1) == right).mean()
    assert predicted >= 0.85 and unscaled < predicted - 0.1, (predicted, unscaled)


@pytest.mark.slow
def test_readme_commands_run_verbatim_in_order(tmp_path):
    """Each command exits 0 (the demo trains once, then is grown, shown, plotted, exported)."""
    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    journal = tmp_path / "results" / "demo" / "trials.jsonl"
    for command in COMMANDS:
        args = [sys.executable, "-m", "jaxreg", *shlex.split(command)[1:]]
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        if command == "jaxreg run sweeps/demo.toml":
            first = journal.read_bytes()
    assert (tmp_path / "demo-best.npz").is_file()
    # grown from 5 to 7 seeds: the 35 lines as they were, then the 14 new trials
    grown = journal.read_bytes()
    assert len(first.splitlines()) == 35 and grown[:len(first)] == first
    assert len(grown.splitlines()) == 49


def test_the_spec_block_gives_every_key_its_default():
    """The README's "every key, with its default" block against the defaults check_spec fills in
    (a coarse-to-fine and a halving spec for the keys only they resolve), and HParams' DEFAULTS.
    Keys whose default is derived say so in their comment; [cases] is an example."""
    import tomllib

    from jaxreg.hparams import DEFAULTS
    from jaxreg.sweeps.spec import SEARCH_DEFAULTS, check_spec

    block = re.search(r"Every key, with its default:\n\n```toml\n(.*?)```", TEXT, flags=re.S)[1]
    given = tomllib.loads(block)
    derived = {"name": "default: the file name", "data.dataset": "required, no default",
               "search.round_method": "default: random", "search.min_epochs": "default eval_every",
               "search.goal": "default: minimize for losses", "search.chunk_size": "default: as many as fit"}
    minimal = {"data": {"dataset": "digits"}, "train": {"epochs": 10}}
    resolved = {method: check_spec({**minimal, "search": {"method": method}})
                for method in ("grid", "coarse_to_fine", "halving")}
    defaults = {"name": "sweep", "description": resolved["grid"].description,
                "data": {"dataset": None, "seed": resolved["grid"].base.data_seed},
                "model": resolved["grid"].base.model, "train": resolved["grid"].base.train,
                "hparams": DEFAULTS, "output": resolved["grid"].output,
                "search": {**resolved["halving"].search, **resolved["coarse_to_fine"].search,
                           **{k: v for k, v in resolved["grid"].search.items() if k not in ("rounds", "round_method")},
                           "seeds": SEARCH_DEFAULTS["seeds"],  # a count, resolved to the list of seeds
                           "compact": False}}  # resolved specs leave it out at its default
    lines = block.splitlines()
    checked = 0
    for table, value in given.items():
        entries = value.items() if isinstance(value, dict) and table != "cases" else [] if table == "cases" else [(None, value)]
        for key, shown in entries:
            name = table if key is None else f"{table}.{key}"
            if name in derived:
                line = next(line for line in lines if re.match(rf"{key or table}\s*=", line))
                assert derived[name] in line, name
                continue
            default = defaults[table] if key is None else defaults[table][key]
            assert shown == default, f"{name}: the README says {shown!r}, the code {default!r}"
            checked += 1
    assert checked >= 45
