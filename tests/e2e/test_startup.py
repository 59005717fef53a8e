"""What a command does before JAX loads: a spec is read and checked without JAX, so a bad one is
refused at once (importing JAX alone takes seconds). Structural tests: which modules a process
imported, never how long it took."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

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
        "'cross_entropy', 'bce' or 'module:function' (an own loss), got 'hinge'"]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("table, line, message", [
    ("train", "epochs = 0", "train.epochs: expected an integer >= 1, got 0"),
    ("train", "batch_size = 0", 'train.batch_size: expected an integer >= 1 or "full", got 0'),
    ("train", "epochs = 10\neval_every = 3", "train.eval_every: expected a divisor of epochs=10, got 3"),
    ("hparams", "learning_rate = -1", "hparams.learning_rate: expected a finite number > 0, got -1.0"),
    ("hparams", "l2 = { values = [0.0, -0.1] }", "hparams.l2: expected a finite number >= 0, got -0.1"),
])
def test_bad_values_are_refused_before_importing_jax(table, line, message, tmp_path):
    """The schedule's rules (jaxreg.limits) and the hparams' ranges are checked on the spec's
    text, by the rules TrainConfig and make_hparams apply: a bad value costs no JAX import."""
    spec = tmp_path / "bad.toml"
    spec.write_text(f'name = "bad"\n[data]\ndataset = "digits"\n[{table}]\n{line}\n')
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "jaxreg", "run", str(spec)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = done.stderr.splitlines()
    assert "jax" not in [line.split("|")[-1].strip() for line in lines if line.startswith("import time:")]
    assert [line for line in lines if not line.startswith("import time:")] == [f"jaxreg: error: {message}"]
    assert done.returncode == 2 and not (tmp_path / "results").exists()


TINY = """
name = "tiny-plan"
[data]
dataset = "digits"
n_train = 40
[model]
hidden = [5]
[train]
epochs = 4
eval_every = 2
batch_size = 20
[hparams]
learning_rate = { values = [0.01, 0.1] }
[search]
seeds = 2
[output]
plots = false
"""


def _plan(spec, capsys) -> str:
    from jaxreg import cli

    assert cli.main(["plan", str(spec)]) == 0
    return capsys.readouterr().out.splitlines()[2]


def test_plan_compiles_no_training_program_and_says_what_compilation_adds(tmp_path, monkeypatch, capsys):
    import jaxreg.batch
    from jaxreg.sweeps import load_spec
    from jaxreg.sweeps.cost import record_timing

    def refuse(*args, **kwargs):
        raise AssertionError("plan compiled a training program")

    monkeypatch.setattr(jaxreg.batch, "compiled_segments", refuse)
    monkeypatch.setattr(jaxreg.batch, "compiled_members", refuse)
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "xla"))
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    line = _plan(spec, capsys)
    assert line.startswith("estimated time: ") and " training for 1 round (counted in FLOPs, at this machine's " in line
    assert line.endswith(" + 10 s compiling 1 program (a guess: no compilation recorded on this machine yet; 0 if "
                         "the compilation cache holds it)")
    # what a run of the same program measured (jaxreg run keeps it): the plan uses it as it is
    variant = load_spec(spec).variants[0]
    record_timing(variant, 4, compile_seconds=3.5, epoch_seconds=0.25)
    assert _plan(spec, capsys) == ("estimated time: 4.5 s: 1 s training for 1 round (as measured by an earlier run "
                                   "of the same program) + 3.5 s compiling 1 program (as measured; 0 if the "
                                   "compilation cache holds it)")
    # another program (another chunk size): its training counted, its compilation the one recorded
    from jaxreg import cli

    assert cli.main(["plan", str(spec), "--set", "search.seeds=3"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert "(counted in FLOPs, at this machine's " in line
    assert line.endswith(" + 3.5 s compiling 1 program (typical of the compilations recorded on this machine; 0 if "
                         "the compilation cache holds it)")


def test_run_keeps_what_its_program_cost_for_plan(tmp_path, monkeypatch, capsys):
    import json

    from jaxreg import cli
    from jaxreg.sweeps.cost import TIMINGS

    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "xla"))
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.replace("hidden = [5]", "hidden = [3]"))  # a program no other test compiled
    assert cli.main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    capsys.readouterr()
    (entry,) = json.loads((tmp_path / "xla" / TIMINGS).read_text()).values()
    assert sorted(entry) == ["compile_seconds", "epoch_seconds"] and all(v > 0 for v in entry.values())
    line = _plan(spec, capsys)
    assert "(as measured by an earlier run of the same program)" in line and "compiling 1 program (as measured;" in line
