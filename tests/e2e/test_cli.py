"""The command line end to end: plan, run, show and plot on a tiny digits spec, and a sweep
killed with SIGKILL mid-run that resumes to the same results as an uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxreg import report

SPEC = """
name = "tiny-cli"
[data]
dataset = "digits"
n_train = 60
[model]
hidden = [8]
[train]
optimizer = "adam"
epochs = 4
eval_every = 2
batch_size = 20
[hparams]
learning_rate = { logspace = [1e-3, 1e-1, 3] }
l2 = { values = [0.0, 0.001] }
[search]
seeds = 2
chunk_size = 4
"""


def jaxreg_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxreg", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(SPEC)
    return path


def test_plan_lists_the_configs_and_trains_nothing(spec_file, tmp_path):
    done = jaxreg_cli("plan", str(spec_file), "--set", "search.seeds=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tiny-cli: 6 configs x 3 seeds = 18 trials (grid search); 4 members per compiled chunk"
    assert re.fullmatch(r"cost per round: 5 chunks of 4 members, about [0-9.]+ MB and [0-9.]+ s each", lines[1])
    assert re.fullmatch(r"estimated time: [0-9.]+ s: [0-9.]+ s training for 1 round \((counted in FLOPs, at this "
                        r"machine's \d+ GFLOP/s|as measured by an earlier run of the same program)\) \+ [0-9.]+ s "
                        r"compiling 1 program \(.+; 0 if the compilation cache holds it\)", lines[2])
    assert len(lines) == 9 and "learning_rate=0.001  l2=0.0" in lines[3]
    assert list(tmp_path.iterdir()) == []


def test_plan_counts_a_large_grid_and_lists_its_first_configs(spec_file, capsys):
    """A grid is counted, not listed (l2's repeated value is one config), and plan lists its first
    1000 configs and says how many more: a million-config grid printed nothing for minutes."""
    from jaxreg.cli import main
    from jaxreg.sweeps import load_spec

    sets = ["--set", "hparams.learning_rate={ logspace = [1e-4, 1, 1200] }", "--set", "hparams.l2={ values = [0.0, 0.001, 0.001] }"]
    assert main(["plan", str(spec_file), *sets]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny-cli: 2400 configs x 2 seeds = 4800 trials (grid search)")
    assert len(load_spec(spec_file, sets[1::2]).configs()) == 2400
    assert len([line for line in lines if re.match(r"[0-9a-f]{10}  learning_rate=", line)]) == 1000
    assert lines[-1] == "... and 1400 more configs (plan lists the first 1000)"


def test_a_ctrl_c_while_the_command_starts_is_one_line_and_130(tmp_path):
    """SIGINT from 0 to 0.5 s after the first NumPy module has loaded (the first heavy import: JAX
    follows): one line, exit 130. The handler was installed once jaxreg.cli had imported NumPy;
    a Ctrl-C before that printed a traceback."""
    spec = Path(__file__).resolve().parents[2] / "sweeps" / "demo.toml"
    for delay in (0.0, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5):
        # -X importtime writes a line, unbuffered, as each module has been imported
        child = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "jaxreg", "plan", str(spec)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        for line in child.stderr:
            if re.search(r"\|\s+numpy[.\w]*$", line.rstrip()):
                break
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=600)
        err = "\n".join(line for line in err.splitlines() if not line.startswith("import time:"))
        assert (child.returncode, err) == (130, "jaxreg: interrupted (SIGINT); nothing was trained yet: rerun the "
                                                "same command to resume"), delay


def test_run_show_plot(spec_file, tmp_path):
    done = jaxreg_cli("run", str(spec_file), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results" / "tiny-cli"  # the default folder: results/NAME
    assert "12 trials (2 seeds per config)" in done.stdout
    assert len(report.read_journal(out)) == 12
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("rank,config_id,case,round,learning_rate,l2,seeds")

    show = jaxreg_cli("show", str(out))
    assert show.returncode == 0, show.stderr
    # the table, then how sure its best is (report.summary.best_lines), then what jaxreg.diagnose says
    table, stats = (block.splitlines() for block in show.stdout.split("\n\n")[:2])
    assert table[0].startswith("tiny-cli: 12 trials in")
    assert table[1].split()[:4] == ["rank", "learning_rate", "l2", "val_loss"]
    assert table[3].split()[0] == "1" and table[8].split()[0] == "6"
    # 4 epochs at lr 0.001 learn nothing yet: flagged, under the table.
    assert len(table) == 3 + 6 + 2 and table[-1].endswith("or a penalty far too strong?)")
    assert table[-2].startswith("best_ep: mean epoch of the best monitored value")
    assert "(2 at chance)" in "\n".join(table[3:9])
    assert stats[0].startswith("best: ") and stats[0].endswith("(mean +- SE over 2 seeds)")
    assert "P(best beats runner-up) = " in "\n".join(stats) and stats[-1].startswith("expected best val_loss ")

    (out / "curves.png").unlink(missing_ok=True)
    plot = jaxreg_cli("plot", str(out))
    assert plot.returncode == 0, plot.stderr
    written = [Path(line) for line in plot.stdout.splitlines() if not line.startswith("skipped ")]
    assert "skipped weights_hist.png, decision_boundary.png: no params saved: output.params is false" in plot.stdout
    assert written and all(p.suffix == ".png" and p.stat().st_size > 1000 for p in written)
    assert (out / "curves.png") in written


def test_set_overrides_and_a_different_spec_is_refused(spec_file, tmp_path):
    out = tmp_path / "r"
    done = jaxreg_cli("run", str(spec_file), "--out", str(out), "--quiet", "--set", "train.epochs=2",
                      "--set", "hparams.learning_rate={ values = [0.01] }")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["spec"]["train"]["epochs"] == 2 and len(report.read_journal(out)) == 4
    refused = jaxreg_cli("run", str(spec_file), "--out", str(out), "--quiet")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "holds results of a different spec" in refused.stderr


def _killed_then_resumed(spec_file: Path, out: Path) -> None:
    args = [sys.executable, "-m", "jaxreg", "run", str(spec_file), "--out", str(out), "--quiet",
            "--set", "search.chunk_size=2"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / report.JOURNAL
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= 4:
            break
        if process.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = journal.read_text().count("\n")
    assert 4 <= done_at_kill < 12, f"the kill should land mid-sweep, {done_at_kill} trials were done"
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [run["trials_trained"] for run in manifest["runs"][1:]] == [12 - done_at_kill]
    assert manifest["runs"][0]["finished"] is None  # the killed run never finished


def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_run(spec_file, tmp_path):
    _killed_then_resumed(spec_file, tmp_path / "killed")
    uninterrupted = jaxreg_cli("run", str(spec_file), "--out", str(tmp_path / "once"), "--quiet",
                               "--set", "search.chunk_size=2")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    killed, once = report.read_journal(tmp_path / "killed"), report.read_journal(tmp_path / "once")
    keys = [(r["config_id"], r["seed"]) for r in killed]
    assert len(keys) == len(set(keys)) == 12  # every (config, seed) exactly once
    by_key = {(r["config_id"], r["seed"]): r for r in once}
    for record in killed:
        assert record == by_key[(record["config_id"], record["seed"])]  # bitwise: metrics are floats
    summary = lambda folder: (tmp_path / folder / report.SUMMARY).read_text()
    assert summary("killed") == summary("once")
