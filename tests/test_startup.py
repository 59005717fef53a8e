"""What a command does before JAX loads: a spec is read and checked without JAX, so a bad one is
refused at once (importing JAX alone takes seconds). Structural tests: which modules a process
imported, never how long it took."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HALVING = """
name = "halving-startup"
[data]
dataset = "digits"
[train]
epochs = 9
[hparams]
learning_rate = { logspace = [1e-3, 1e-1, 9] }
[search]
method = "hyperband"
"""


def test_reading_and_checking_a_spec_imports_no_jax(tmp_path):
    (tmp_path / "halving.toml").write_text(HALVING)
    code = f"""
import sys
from jaxreg.sweeps.spec import check_spec, read_spec
for path in ({str(ROOT / 'sweeps' / 'demo.toml')!r}, {str(tmp_path / 'halving.toml')!r}):
    checked = check_spec(read_spec(path, ["search.seeds=2"]))
print(checked.search["rounds"], sorted(m for m in sys.modules if m == "jax" or m.startswith("jax.")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "[]"]  # hyperband: brackets from rungs 1, 3, 9


@pytest.mark.parametrize("command", ["run", "plan", "sanity", "lr-find"])
def test_the_cli_refuses_a_bad_spec_before_importing_jax(command, tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\n[data]\ndataset = "digits"\n[train]\nloss = "hinge"\n')
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "jaxreg", command, str(spec)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    imported = [line.split("|")[-1].strip() for line in lines if line.startswith("import time:")]
    assert "jaxreg.sweeps.spec" in imported and "jax" not in imported
    assert [line for line in lines if not line.startswith("import time:")] == [
        "jaxreg: error: train.loss: expected one of 'squared_error', 'sum_squared_error', 'mse', "
        "'cross_entropy', 'bce', got 'hinge'"]
    assert not (tmp_path / "results").exists()
