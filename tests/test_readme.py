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
