"""Sweeps that outgrow one process: shards (``jaxreg run --shard I/N``) and Ray tasks (``--ray``).

Each compares against one process running the same spec: the merged journal must be the same
bytes (a trial's numbers depend only on its hparams, its seed and the chunk size, and shards
and Ray tasks train the same chunks), every trial once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from jaxreg import cli, report
from jaxreg.errors import InputError
from jaxreg.report.store import Shard, Store, parse_shard, shard_journals
from jaxreg.sweeps.run import _wait_for, owns
from jaxreg.sweeps.strategies import Ask, Trial

TINY = """
name = "tiny"
[data]
dataset = "digits"
n_train = 60
seed = 0
[model]
hidden = [8]
[train]
optimizer = "adam"
epochs = 4
eval_every = 2
batch_size = 20
[search]
seeds = 2
chunk_size = 4
"""
GRID = TINY + """
[hparams]
learning_rate = { values = [0.003, 0.01, 0.03] }
l2 = { values = [0.0, 0.001] }
"""
C2F = TINY.replace("[search]", """[hparams]
learning_rate = { log_uniform = [1e-3, 0.3] }
[search]
method = "coarse_to_fine"
rounds = 3
samples = 3
top_k = 2""")


def jaxreg(*args, cwd, env=None, background=False):
    command = [sys.executable, "-m", "jaxreg", *args]
    environment = {**os.environ, **(env or {})}
    if background:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)


def finish_together(processes, timeout):
    """The (stdout, stderr) of each process once all have ended; once one fails the others are
    killed (a shard that waits for a failed one would wait until the timeout)."""
    outputs = [None] * len(processes)

    def read(i):
        outputs[i] = processes[i].communicate()

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(processes))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline:
        if any(process.returncode not in (None, 0) for process in processes):
            break
        time.sleep(0.5)
    for process in processes:
        if process.poll() is None:
            process.kill()
    for thread in threads:
        thread.join()
    return outputs


def ok(process):
    assert process.returncode == 0, process.stderr[-3000:]
    return process


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """The specs, and each run once by one process: the journals to compare against."""
    root = tmp_path_factory.mktemp("scale")
    for name, text in (("grid", GRID), ("c2f", C2F)):
        (root / f"{name}.toml").write_text(text)
        # A `jaxreg` process, as the shards are: programs compiled inside this test session may
        # round differently (other tests change XLA's state), which no user's run ever sees.
        ok(jaxreg("run", f"{name}.toml", "--out", f"one-{name}", "--quiet", cwd=root))
    return root


def show(out: Path) -> str:
    """What `jaxreg show DIR` prints (in this process: it reads, it trains nothing)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["show", str(out)]) == 0
    return buffer.getvalue()


def table(out: Path) -> str:
    """What `jaxreg show` prints, less its first line (which names the folder)."""
    return show(out).split("\n", 1)[1]


def test_shard_parsing_names_the_option_and_the_value():
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard(" 0 / 1 ") == Shard(0, 1)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0", "1/2/3"):
        with pytest.raises(InputError) as error:
            parse_shard(bad)
        assert str(error.value) == (f"--shard: expected I/N with 0 <= I < N <= 10000 (shard I of N, counted "
                                    f"from 0, as SLURM_ARRAY_TASK_ID/N), got {bad!r}")


def test_chunks_are_dealt_round_robin_over_every_round():
    assert [owns(Shard(1, 3), i) for i in range(7)] == [False, True, False, False, True, False, False]
    assert all(owns(None, i) for i in range(5))


def test_two_shards_one_after_the_other_give_one_process_journal(specs):
    out = specs / "seq"
    first = ok(jaxreg("run", "grid.toml", "--out", "seq", "--shard", "0/2", cwd=specs))
    # Shard 0 dealt chunks 0 and 2 of 3 (12 trials in chunks of 4): 8 trials, in a journal of its own.
    assert "shard 0/2: 8 trials journaled so far" in first.stdout
    assert [s for s, _ in shard_journals(out)] == [Shard(0, 2)] and not (out / "trials.jsonl").exists()
    assert show(out).startswith("tiny: 8 trials in ")  # readers see what the shards journaled so far
    again = ok(jaxreg("run", "grid.toml", "--out", "seq", "--shard", "0/2", "--quiet", cwd=specs))
    assert "8 trials journaled so far" in again.stdout  # a rerun finishes only what its shard lacks: nothing
    last = ok(jaxreg("run", "grid.toml", "--out", "seq", "--shard", "1/2", "--quiet", cwd=specs))
    assert "results: seq/" in last.stdout  # the last shard merges, then writes the table and plots
    assert shard_journals(out) == [] and not list(out.glob("checkpoint*"))
    assert (out / "trials.jsonl").read_bytes() == (specs / "one-grid" / "trials.jsonl").read_bytes()
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert [(r["shard"], r["trials_trained"]) for r in runs] == [("0/2", 8), ("0/2", 0), ("1/2", 4)]
    assert table(out) == table(specs / "one-grid")


def test_coarse_to_fine_shards_at_once_wait_for_each_round_and_merge_to_one_process_journal(specs):
    shards = [jaxreg("run", "c2f.toml", "--out", "both", "--shard", f"{i}/2", cwd=specs, background=True)
              for i in (1, 0)]
    outputs = finish_together(shards, timeout=900)
    assert [process.returncode for process in shards] == [0, 0], outputs
    journal = (specs / "both" / "trials.jsonl").read_bytes()
    assert journal == (specs / "one-c2f" / "trials.jsonl").read_bytes()
    records = report.read_journal(specs / "both")
    assert len(records) == len({(r["config_id"], r["seed"]) for r in records}) == 3 * 3 * 2
    assert sorted({r["round"] for r in records}) == [0, 1, 2]
    runs = json.loads((specs / "both" / "manifest.json").read_text())["runs"]
    assert sorted(r["shard"] for r in runs) == ["0/2", "1/2"] and sum(r["trials_trained"] for r in runs) == 18


def test_a_shard_waiting_for_another_says_whether_that_one_is_running(tmp_path):
    said = []

    def log(line):
        said.append(line)
        raise KeyboardInterrupt  # one message is enough: the wait itself never ends here

    mine, other = Store(tmp_path, Shard(1, 2)), Store(tmp_path, Shard(0, 2))
    mine.lock()
    try:
        for running in (False, True):
            if running:
                other.lock()
            with pytest.raises(KeyboardInterrupt):
                _wait_for(Ask((Trial("abc", None, 0),), 8, 4, 1, "round 1/3"), mine, {}, Shard(1, 2), log)
    finally:
        other.unlock()
        mine.unlock()
    assert said == ["round 1/3: waiting for 1 trial from shard 0/2 before zooming in (not running now: start "
                    "0/2 with the same spec and --out)",
                    "round 1/3: waiting for 1 trial from shard 0/2 before zooming in"]


def test_a_shard_and_an_unsharded_run_never_overlap(tmp_path):
    out = tmp_path / "locked"
    shard, other = Store(out, Shard(0, 2)), Store(out, Shard(1, 2))
    shard.lock()
    try:
        with pytest.raises(InputError, match=r"locked by shard 0/2 \(pid \d+ on .+\) of a sharded run\)"):
            Store(out).lock()
        other.lock()  # another shard runs beside it
        with pytest.raises(InputError, match=r"locked by shards 0/2 \(pid \d+ on .+\), 1/2 \(pid"):
            Store(out).lock()
        with pytest.raises(InputError, match=r"--shard: expected shard 0/2 to be running nowhere else, got "
                                             r".* locked for it by jaxreg run --shard 0/2, pid \d+"):
            Store(out, Shard(0, 2)).lock()
    finally:
        other.unlock()
        shard.unlock()
    Store(out).lock()  # free again once the shards end


def test_a_shard_refuses_overwrite(specs):
    process = jaxreg("run", "grid.toml", "--out", "one-grid", "--shard", "0/2", "--overwrite", cwd=specs)
    assert process.returncode == 2
    assert process.stderr.strip() == ("jaxreg: error: --overwrite: expected no --shard with it (a shard must "
                                      "not remove the other shards' results), got both; overwrite with one "
                                      "unsharded run first")


# --- Ray ----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs, started as `ray start --head` (what a user's cluster is)."""
    pytest.importorskip("ray")
    port = _free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    # A short folder of its own, not tmp_path_factory's: Ray's socket paths below it must fit
    # AF_UNIX's 107 bytes, which pytest-xdist's /tmp/pytest-of-USER/pytest-N/popen-gwK/ray0/... does not.
    temp = Path(tempfile.mkdtemp(prefix="ray-"))
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(temp)}
    ok(subprocess.run([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                       "--include-dashboard=false", "--disable-usage-stats"], capture_output=True, text=True,
                      timeout=300, env=env))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=300, env=env)
        shutil.rmtree(temp, ignore_errors=True)


RAY_ENV = {"RAY_AUTH_MODE": "disabled"}  # a cluster of this test only, on the loopback address


def test_ray_tasks_killed_mid_chunk_are_retried_and_give_one_process_journal(specs, ray_cluster, tmp_path):
    marker = tmp_path / "kill-one-task"
    marker.write_text("the first task to find this file kills its worker mid-chunk")
    process = ok(jaxreg("run", "c2f.toml", "--out", "on-ray", "--ray", ray_cluster, "--quiet", cwd=specs,
                        env={**RAY_ENV, "JAXREG_TEST_KILL_MARKER": str(marker)}))
    assert not marker.exists()  # a task died, and was run again
    out = specs / "on-ray"
    assert (out / "trials.jsonl").read_bytes() == (specs / "one-c2f" / "trials.jsonl").read_bytes()
    assert "rank" in process.stdout
    assert table(out) == table(specs / "one-c2f")
    run = json.loads((out / "manifest.json").read_text())["runs"][-1]
    workers = run["ray"]["workers"]
    tasks = [task for worker in workers.values() for task in worker["tasks"]]
    assert sorted({label for label, _ in tasks}) == ["round 1/3", "round 2/3", "round 3/3"]
    assert len(tasks) == 6  # 2 chunks a round; the killed task returned nothing
    for worker in workers.values():  # a worker compiles in its first task at most: never across rounds
        assert all(compiles == 0 for _, compiles in worker["tasks"][1:]), workers
