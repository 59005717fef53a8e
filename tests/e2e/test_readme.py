"""The README's examples run as written (a newcomer copies them verbatim): every Python block,
and every ``jaxreg`` command of its shell blocks, in order, in a scratch folder. The README stays
a door: the two commands first, a quickstart, links to docs/ (tests/e2e/test_docs.py checks those
pages the same way)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
# `jaxreg ...` lines of the shell blocks (the first block's install commands are what CI runs)
COMMANDS = [re.sub(r"\s{2,}#.*$", "", line).strip()
            for block in re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)
            for line in block.splitlines() if line.startswith("jaxreg ")]


def test_the_readme_has_python_examples_and_commands():
    assert len(BLOCKS) >= 1
    assert [c.split()[1] for c in COMMANDS if c.split()[1] != "run"] == ["plan", "show", "best", "plot", "compare", "report"]


def test_the_readme_opens_with_one_sentence_then_the_two_commands():
    """The project's rule: after the title and one sentence saying what jaxreg is, the README
    starts with the command that runs the main job and the one that runs the tests (as .ci/run
    does), and it stays short: the rest lives in docs/."""
    lines = TEXT.splitlines()
    assert lines[0] == "# jaxreg" and lines[1] == ""
    assert lines[2].startswith("jaxreg is ") and lines[2].count(". ") == 0 and lines[2].endswith(".")
    first = re.search(r"```bash\n(.*?)```", TEXT, flags=re.S)
    assert TEXT.index(first[0]) == len("\n".join(lines[:4])) + 1
    assert first[1].splitlines() == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/jaxreg run sweeps/demo.toml",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"]
    assert len(lines) <= 160


def test_the_readme_links_to_pages_that_exist():
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", TEXT):
        if "://" not in target:
            assert (ROOT / target).exists(), target


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
    """Each command exits 0 (the demo trains, is shown, exported, plotted, compared with a
    variant), and the table `run` prints is the README's: its title line (but the time) and
    its columns."""
    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    journal = tmp_path / "results" / "demo" / "trials.jsonl"
    for command in COMMANDS:
        args = [sys.executable, "-m", "jaxreg", *shlex.split(command)[1:]]
        done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        if command == "jaxreg run sweeps/demo.toml":
            printed = done.stdout.splitlines()
    assert (tmp_path / "demo-best.npz").is_file()
    assert len(journal.read_bytes().splitlines()) == 35
    shown = re.search(r"```text\n(.*?)```", TEXT, flags=re.S)[1].splitlines()
    untimed = lambda line: re.sub(r" in [0-9.]+ s;", " in T s;", line)
    assert untimed(printed[0]) == untimed(shown[0])
    assert printed[2:4] == shown[2:4]  # the columns, and the rule under them
    assert len([line for line in printed if re.match(r"\d+ ", line)]) == len(shown) - 4
