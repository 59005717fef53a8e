"""The command line: the demo end to end, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


def jaxreg_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxreg", *args], capture_output=True, text=True,
                          timeout=600)


def test_demo_prints_one_row_per_config():
    done = jaxreg_cli("demo", "--epochs", "4", "--seeds", "2", "--n-train", "100")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "2 seeds x 4 configs = 8 members in one compiled program" in lines[0]
    rows = {line.split()[0] for line in lines[5:] if line.strip()}
    assert rows == {"none", "l2", "dropout", "early_stopping"}


@pytest.mark.parametrize("args, message", [
    (("demo", "--epochs", "0"), "jaxreg: error: argument --epochs: expected an integer >= 1, got '0'"),
    (("demo", "--epochs", "5"), "jaxreg: error: --epochs: expected an even number (evaluated every 2 epochs), got 5"),
    (("demo", "--seeds", "x"), "jaxreg: error: argument --seeds: expected an integer >= 1, got 'x'"),
    (("fit",), "jaxreg: error: argument command: invalid choice: 'fit' (choose from 'demo')"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    done = jaxreg_cli(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == message
