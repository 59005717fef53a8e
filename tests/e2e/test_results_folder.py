"""A results folder owns itself: no foreign file is ever touched, one writer at a time,
files readable by the group."""

from __future__ import annotations

import os
import stat
import tomllib

import numpy as np
import pytest

from jaxreg.errors import InputError
from jaxreg.report import store
from jaxreg.sweeps import build_spec, run_sweep

SPEC = {"name": "owned", "data": {"dataset": "blobs"}, "model": {"hidden": [4]},
        "train": {"loss": "bce", "epochs": 2, "batch_size": 25}, "hparams": {"learning_rate": 0.1},
        "output": {"plots": False}}


@pytest.fixture(scope="module")
def spec():
    return build_spec(SPEC)


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_overwrite_removes_only_what_jaxreg_wrote(tmp_path, spec):
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    written = sorted(p.name for p in out.iterdir())
    # The user's files, some named like jaxreg's with a suffix; curves.png is not jaxreg's here
    # (plots are off in this spec: jaxreg never wrote one).
    mine = {"logo.png": b"a user's image", "notes.txt": b"mine", "trials.jsonl.bak": b"1", "summary.csv.orig": b"2",
            "curves.png.old": b"3", "manifest.json.save": b"4", "before_vs_after.png": b"5", "curves.png": b"6",
            ".summary.csv.orig": b"7"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    (out / store.CURVES / "mine.npz").write_bytes(b"mine too")
    removed = []
    real_unlink = store.Path.unlink
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.Path, "unlink", lambda self, *a, **k: removed.append(self.name) or real_unlink(self, *a, **k))
        run_sweep(spec, out, overwrite=True, progress=False)
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert (out / store.CURVES / "mine.npz").read_bytes() == b"mine too"
    trial = f"{store.read_journal(out)[0]['config_id']}_0.npz"
    # What the first run wrote went (and came back), nothing else did (the run clears its own
    # chunk checkpoint as it goes).
    assert sorted(set(removed) - {store.CHECKPOINT}) == sorted([store.MANIFEST, store.JOURNAL, trial])
    assert sorted(p.name for p in out.iterdir()) == sorted(written + list(mine))
    assert len(store.read_journal(out)) == 1


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_jaxreg_did_not_create_is_refused_and_left_as_it_was(tmp_path, spec, overwrite):
    project = tmp_path / "project"
    project.mkdir()
    (project / "summary.csv").write_text("a,b\n")
    (project / "logo.png").write_bytes(b"logo")
    before = snapshot(project)
    with pytest.raises(InputError) as error:
        run_sweep(spec, project, overwrite=overwrite, progress=False)
    assert str(error.value) == (f"--out: expected a new or empty folder, or a jaxreg results folder (with "
                                f"manifest.json), got {str(project)!r} holding 2 entries jaxreg did not "
                                f"write (logo.png, summary.csv); choose another --out")
    assert snapshot(project) == before and sorted(p.name for p in project.iterdir()) == ["logo.png", "summary.csv"]


def test_an_empty_folder_is_used(tmp_path, spec):
    out = tmp_path / "empty"
    out.mkdir()
    run_sweep(spec, out, progress=False)
    assert len(store.read_journal(out)) == 1


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path, spec):
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    first = store.Store(out)
    first.lock()
    try:
        before = snapshot(out)
        with pytest.raises(InputError) as error:
            run_sweep(spec, out, overwrite=True, progress=False)
        assert str(error.value) == (f"--out: expected a folder no other jaxreg run is writing, got {str(out)!r} "
                                    f"(locked by jaxreg run, pid {os.getpid()} on {os.uname().nodename}); "
                                    f"wait for that run or choose another --out")
        assert snapshot(out) == before
    finally:
        first.unlock()
    run_sweep(spec, out, overwrite=True, progress=False)  # free again
    assert len(store.read_journal(out)) == 1


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path, spec):
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    (out / store.LOCK).write_text("jaxreg run, pid 999999 on elsewhere\n")  # no process holds it
    run_sweep(spec, out, overwrite=True, progress=False)
    assert len(store.read_journal(out)) == 1


def test_results_files_are_readable_by_the_group(tmp_path, spec):
    old = os.umask(0o022)
    try:
        run_sweep(spec, tmp_path / "out", progress=False)
    finally:
        os.umask(old)
    for name in (store.MANIFEST, store.JOURNAL):
        mode = stat.S_IMODE((tmp_path / "out" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))
    curves = next((tmp_path / "out" / store.CURVES).iterdir())
    assert stat.S_IMODE(curves.stat().st_mode) == 0o644


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_journal_without_its_manifest_is_never_resumed_nor_deleted(tmp_path, spec, overwrite):
    """Without the manifest nothing says which spec the journal ran: a different spec (fewer
    epochs) must not "resume" from it and print its numbers under its own name."""
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    (out / store.MANIFEST).unlink()
    before = snapshot(out)
    shorter = build_spec({**SPEC, "train": {**SPEC["train"], "epochs": 1}})
    with pytest.raises(InputError) as error:
        run_sweep(shorter, out, overwrite=overwrite, progress=False)
    assert str(error.value) == (f"--out: expected a jaxreg results folder with its manifest.json, got "
                                f"{str(out)!r} holding trials.jsonl without one; restore the manifest, "
                                f"or choose another --out")
    assert snapshot(out) == before


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_sigint_and_sigterm_mid_run_exit_with_one_line_and_the_signals_code(tmp_path, signum, code):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    spec = tmp_path / "slow.toml"
    spec.write_text('name = "slow"\n[data]\ndataset = "blobs"\n[model]\nhidden = [64, 64]\n'
                    '[train]\nloss = "bce"\nepochs = 4000\nbatch_size = 1\n[output]\nplots = false\n')
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "jaxreg", "run", str(spec), "--out", str(out), "--quiet"],
                           cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / store.MANIFEST).exists() and time.monotonic() < deadline:  # training has started
        time.sleep(0.05)
    time.sleep(0.5)
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == code
    assert err.strip().splitlines()[-1] == (f"jaxreg: interrupted ({signal.Signals(signum).name}); kept 0 "
                                            f"trials in the journal: rerun the same command to resume")


def test_a_fifo_as_the_spec_is_refused_instead_of_hanging(tmp_path, capsys):
    from jaxreg import cli

    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    assert cli.main(["run", str(fifo)]) == 2
    assert capsys.readouterr().err == f"jaxreg: error: spec: expected a TOML file, got {str(fifo)!r} (not a regular file)\n"


def test_an_out_the_system_cannot_create_is_one_line_and_exit_2(tmp_path, capsys):
    from jaxreg import cli

    spec = tmp_path / "tiny.toml"
    spec.write_text('[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n[train]\nloss = "bce"\nepochs = 1\n'
                    '[output]\nplots = false\n')
    out = tmp_path / ("a" * 300)  # longer than a file name may be
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"jaxreg: error: {out}: File name too long\n"


def test_temporaries_a_killed_run_left_are_removed_at_the_next_run(tmp_path, spec):
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    strays = [out / ".trials.jsonl.k3j2x9ab", out / ".manifest.json.a8b7c6de", out / store.CURVES / ".0123456789_0.npz.q1w2e3r4"]
    for path in strays:
        path.write_bytes(b"half a file")
    (out / ".my-own-dotfile").write_text("kept")
    run_sweep(spec, out, progress=False)  # resumes: nothing to train
    assert not any(path.exists() for path in strays)
    assert (out / ".my-own-dotfile").read_text() == "kept"


def test_a_damaged_or_missing_curves_file_is_trained_again_bitwise_at_the_next_run(tmp_path):
    spec = build_spec({**SPEC, "hparams": {"learning_rate": {"values": [0.05, 0.1, 0.2]}}, "search": {"seeds": 2}})
    out = tmp_path / "out"
    run_sweep(spec, out, progress=False)
    before = {(r["config_id"], r["seed"]): r for r in store.read_journal(out)}
    files = {p.name: p.read_bytes() for p in (out / store.CURVES).iterdir()}
    damaged, missing = sorted(files)[1], sorted(files)[4]
    (out / store.CURVES / damaged).write_bytes(files[damaged][:100])
    (out / store.CURVES / missing).unlink()
    logged = []
    records = run_sweep(spec, out, log=logged.append)
    assert logged[0] == (f"{out / store.CURVES}: 2 curves files missing or damaged ({damaged}, {missing}): "
                         f"their trials are trained again")
    journal = store.read_journal(out)
    assert len(journal) == 6 and {(r["config_id"], r["seed"]): r for r in journal} == before
    assert [f"{r['config_id']}_{r['seed']}.npz" for r in journal[-2:]] == [damaged, missing]
    assert {p.name: p.read_bytes() for p in (out / store.CURVES).iterdir()} == files
    assert len(records) == 6


def test_a_finite_trial_at_chance_is_flagged_not_passed_as_ok(tmp_path):
    from jaxreg import report

    spec = build_spec({**SPEC, "model": {"hidden": [8]}, "train": {"loss": "bce", "epochs": 20, "batch_size": 10},
                       "hparams": {"learning_rate": {"values": [1e3, 0.1]}}, "search": {"seeds": 2}})
    records = run_sweep(spec, tmp_path / "out", progress=False)
    manifest = report.load_manifest(tmp_path / "out")
    labels = np.asarray(spec.dataset.train.y)
    rate = max(np.mean(labels == 0), np.mean(labels == 1))
    assert manifest["chance"] == {"": rate}
    wild = [r for r in records if r["point"]["learning_rate"] == 1e3]
    assert all(r["status"] == "ok" and np.isfinite(r["metrics"]["train_loss"]) for r in wild)  # finite...
    assert all(r["metrics"]["train_accuracy"] <= rate + 0.01 for r in wild)                   # ...at chance
    rows = report.summarize(records, spec.search, manifest["chance"])
    assert {r["learning_rate"]: r["at_chance"] for r in rows} == {1e3: 2, 0.1: 0}
    table = report.format_table(rows, spec.search)
    assert "2 (2 at chance)" in table
    assert table.splitlines()[-1] == ("1 config with trials at chance: their train accuracy is within 1 point of "
                                      "always predicting the most frequent class, though finite (a learning rate "
                                      "far too large or too small, too few epochs, or a penalty far too strong?)")
    assert "at_chance" not in report.summarize(records, spec.search)[0]  # a manifest without rates: no column


def test_ctrl_c_while_jax_is_still_loading_is_one_line_and_exit_130(tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    spec = tmp_path / "spec.toml"
    spec.write_text('name = "early"\n[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n[train]\nloss = "bce"\n')
    run = subprocess.Popen([sys.executable, "-m", "jaxreg", "run", str(spec), "--out", str(tmp_path / "out")],
                           cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    maps, deadline = Path(f"/proc/{run.pid}/maps"), time.monotonic() + 60
    # The command's handlers are in place before JAX loads: wait until jaxlib's library is mapped.
    while "jaxlib" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(2)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.splitlines() == ["jaxreg: interrupted (SIGINT); nothing was trained yet: rerun the same command "
                                "to resume"]
    assert not (tmp_path / "out").exists()


def test_a_chunk_size_larger_than_a_round_is_warned_in_plan_and_run(tmp_path, capsys):
    from jaxreg import cli
    from jaxreg.sweeps.cost import padding_warning

    assert padding_warning(21, 21) is None and padding_warning(2, 1) is None
    warning = ("warning: search.chunk_size 400 is larger than a round's 21 trials: each chunk trains 379 padding "
               "copies, about 19.0x the time of chunk_size = 21 (kept as given: results are bitwise comparable "
               "between equal chunk sizes)")
    assert padding_warning(400, 21) == warning
    spec = tmp_path / "padded.toml"
    spec.write_text('name = "padded"\n[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n[train]\nloss = "bce"\n'
                    'epochs = 2\n[hparams]\nlearning_rate = { values = [0.1, 0.2, 0.3] }\n[search]\nseeds = 1\n'
                    'chunk_size = 8\n[output]\nplots = false\n')
    assert cli.main(["plan", str(spec)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == padding_warning(8, 3) and lines[2].startswith("cost per round: 1 chunk of 8 members, about ")
    logged = []
    run_sweep(build_spec(tomllib.loads(spec.read_text())), tmp_path / "out", progress=False, log=logged.append)
    assert logged == [padding_warning(8, 3)]
