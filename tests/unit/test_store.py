"""The results folder's writer, piece by piece, against what its files must hold byte for byte."""

from __future__ import annotations

import json
import math
import os
import platform
import stat
import types

import numpy as np
import pytest

from jaxreg.errors import InputError
from jaxreg.hparams import HParams
from jaxreg.names import METRICS
from jaxreg.report import files, journal, store
from jaxreg.sweeps import records

def full_record(config_id="c", seed=0, **fields) -> dict:
    """A journal record with every field a reader relies on."""
    return {"config_id": config_id, "seed": seed, "round": 0, "case": None, "point": {}, "hparams": {},
            "status": "ok", "best_epoch": 0, "stopped_epoch": 0, "diverged_epoch": 0,
            "metrics": dict.fromkeys(METRICS, 0.5), **fields}


def tiny_spec(name: str, **train) -> types.SimpleNamespace:
    """What the store reads of a spec: its resolved form (in the shape a manifest checks) and digest."""
    resolved = {"name": name, "search": {"method": "grid", "metric": "val_loss", "goal": "minimize"},
                "train": {"epochs": 2, **train}}
    return types.SimpleNamespace(resolved=resolved, digest=store.spec_sha256(resolved))


SPEC, OTHER = tiny_spec("s"), tiny_spec("t")


def test_json_value_is_strict_json():
    value = {"a": [np.float32(1.5), float("nan"), float("inf"), -math.inf],
             "b": (np.int64(3), np.bool_(True)), "c": np.array([[0.25, np.nan]]), "d": "x", "e": None}
    assert store.json_value(value) == {"a": [1.5, None, "inf", "-inf"], "b": [3, True],
                                       "c": [[0.25, None]], "d": "x", "e": None}
    assert type(store.json_value(np.int64(3))) is int
    assert type(store.json_value(np.float64(2.0))) is float
    assert json.dumps(store.json_value([math.nan, math.inf]), allow_nan=False) == '[null, "inf"]'


def test_versions_names_every_package_and_python():
    versions = store.versions()
    assert list(versions) == ["jaxreg", "jax", "jaxlib", "optax", "numpy", "python"]
    assert versions["numpy"] == np.__version__
    assert all(isinstance(v, str) for v in versions.values())


def test_atomic_write_makes_parents_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "b" / "file.txt"
    store.atomic_write(path, "text\n")
    assert path.read_text() == "text\n"
    store.atomic_write(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        store.atomic_write(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o640


def test_atomic_write_that_fails_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.csv"
    path.write_text("old\n")
    seen = []

    def failing_fsync(fd):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError) as error:
        store.atomic_write(path, "new\n")
    assert (error.value.errno, error.value.strerror, error.value.filename) == (28, "No space left on device", str(path))
    # While writing, the temporary sat beside the file, hidden, named after it.
    assert len(seen) == 1 and len(seen[0]) == 2 and seen[0][1] == "summary.csv"
    assert files._TEMPORARY.fullmatch(seen[0][0])[1] == "summary.csv"
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_start_and_finish_run_write_the_manifest(tmp_path):
    out = tmp_path / "deep" / "out"
    s = store.Store(out)
    s.start_run(SPEC, chunk_size=7, devices=["cpu:0"])
    assert (out / store.CURVES).is_dir()
    text = (out / store.MANIFEST).read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=2) + "\n"
    assert manifest["spec_sha256"] == SPEC.digest and manifest["spec"] == SPEC.resolved
    (run,) = manifest["runs"]
    assert run["chunk_size"] == 7 and run["finished"] is None and run["versions"] == store.versions()
    assert run["devices"] == ["cpu:0"] and run["started"].endswith("+00:00")
    s.finish_run(trained=5, seconds=1.23456)
    run = json.loads((out / store.MANIFEST).read_text())["runs"][0]
    assert run["trials_trained"] == 5 and run["seconds"] == 1.235 and run["finished"] is not None
    again = store.Store(out)
    again.start_run(SPEC, chunk_size=3)
    runs = json.loads((out / store.MANIFEST).read_text())["runs"]
    assert [r["chunk_size"] for r in runs] == [7, 3] and runs[0]["trials_trained"] == 5


def test_append_writes_one_line_per_record_and_refuses_nan(tmp_path):
    s = store.Store(tmp_path)
    records = [full_record(seed=i) for i in range(3)]
    s.append(records[:2])
    s.append(records[2:])
    assert (tmp_path / store.JOURNAL).read_text() == "".join(json.dumps(r) + "\n" for r in records)
    assert store.read_journal(tmp_path) == records
    assert s.read_journal() == {("c", i): r for i, r in enumerate(records)}
    with pytest.raises(ValueError):
        s.append([full_record(seed=3, metrics={"x": float("nan")})])
    assert store.read_journal(tmp_path) == records


def test_blank_journal_lines_are_skipped_and_a_long_bad_line_is_cut_to_60_characters(tmp_path):
    record = full_record()
    path = tmp_path / store.JOURNAL
    path.write_text("\n" + json.dumps(record) + "\n  \n")
    assert store.read_journal(tmp_path) == [record]
    bad = "x" * 100
    path.write_text(json.dumps(record) + "\n\n" + bad + "\n")
    with pytest.raises(InputError) as error:
        store.read_journal(tmp_path)
    assert str(error.value) == f"{path}: line 3: expected a JSON trial record, got {('x' * 60).encode()!r}"


# Every field at values of the wrong type (a case may be any value: not checked).
BROKEN = [(name, value) for name in full_record() if name != "case"
          for value in ((None, 1, "x" * (name == "status") or None) if name in ("config_id", "status") else (None, "x", 1.5))]


@pytest.mark.parametrize("field, value", BROKEN + [("missing", name) for name in full_record()]
                         + [("metric_missing", name) for name in METRICS])
def test_every_field_of_a_record_is_checked(tmp_path, field, value):
    record = full_record()
    if field == "missing":
        del record[value]
    elif field == "metric_missing":
        del record["metrics"][value]
    else:
        record[field] = value
    assert record != full_record()
    (tmp_path / store.JOURNAL).write_text(json.dumps(full_record()) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError, match="line 2: expected a JSON trial record"):
        store.read_journal(tmp_path)


def test_a_journal_ending_on_a_whole_line_is_not_truncated(tmp_path):
    record = full_record()
    path = tmp_path / store.JOURNAL
    path.write_text(json.dumps(record) + "\n")
    assert store.read_journal(tmp_path, repair=True) == [record]
    assert path.read_text() == json.dumps(record) + "\n"


def test_trial_record_reads_member_i():
    n = 3
    hparams = HParams(**{name: np.arange(n, dtype=np.float32) + 0.5 for name in HParams._fields})
    result = types.SimpleNamespace(
        diverged=np.array([False, True, False]), best_epoch=np.array([4, 5, 6]),
        stopped_epoch=np.array([7, 8, 9]), diverged_epoch=np.array([0, 3, 0]),
        final={name: np.array([0.1, float("nan"), float("inf")]) + k for k, name in enumerate(METRICS)})
    config = types.SimpleNamespace(round=2, case="a", point={"l2": np.float32(0.25)})
    record = records.trial_record("cid", config, np.int64(11), 1, result, hparams)
    assert record == {
        "config_id": "cid", "seed": 11, "round": 2, "case": "a", "point": {"l2": 0.25},
        "hparams": {name: 1.5 for name in HParams._fields}, "status": "diverged",
        "best_epoch": 5, "stopped_epoch": 8, "diverged_epoch": 3,
        "metrics": {name: None for name in METRICS}}
    assert type(record["seed"]) is int and type(record["best_epoch"]) is int
    ok = records.trial_record("cid", config, 0, 2, result, hparams)
    assert ok["status"] == "ok" and ok["metrics"] == {name: "inf" for name in METRICS}
    assert records.trial_record("cid", config, 0, 0, result, hparams)["metrics"] == {
        name: 0.1 + k for k, name in enumerate(METRICS)}


def test_write_curves_holds_every_metric_the_epochs_and_the_params(tmp_path):
    s = store.Store(tmp_path)
    s.curves_dir.mkdir()
    result = types.SimpleNamespace(
        curves={name: np.arange(6.0).reshape(2, 3) + k for k, name in enumerate(METRICS)},
        params={"dense_0": {"w": np.arange(8.0).reshape(2, 2, 2), "b": np.zeros((2, 2))}},
        model_state={"bn_0": {"mean": np.array([[1.0], [2.0]])}})
    s.write_curves({"config_id": "0123456789", "seed": 4}, records.curve_arrays(result, 1, True, [5, 10, 15]))
    loaded = store.load_curves(tmp_path, "0123456789", 4)
    assert sorted(loaded) == sorted([f"curve/{n}" for n in METRICS] + ["epochs", "params/['dense_0']['b']",
                                                                      "params/['dense_0']['w']",
                                                                      "state/['bn_0']['mean']"])
    np.testing.assert_array_equal(loaded["state/['bn_0']['mean']"], [2.0])
    np.testing.assert_array_equal(loaded["epochs"], [5, 10, 15])
    np.testing.assert_array_equal(loaded[f"curve/{METRICS[1]}"], [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(loaded["params/['dense_0']['w']"], [[4.0, 5.0], [6.0, 7.0]])
    s.write_curves({"config_id": "0123456789", "seed": 5}, records.curve_arrays(result, 0, False, [5, 10, 15]))
    assert not any(k.startswith(("params/", "state/")) for k in store.load_curves(tmp_path, "0123456789", 5))
    assert all(files._TRIAL_FILE.fullmatch(p.name) for p in s.curves_dir.iterdir())


def test_a_file_as_out_is_refused(tmp_path):
    path = tmp_path / "results"
    path.write_text("mine")
    with pytest.raises(InputError) as error:
        store.Store(path).prepare(SPEC, overwrite=True)
    assert str(error.value) == f"--out: expected a folder, got {str(path)!r} (a file)"
    assert path.read_text() == "mine"


def test_foreign_entries_are_counted_and_the_first_three_shown(tmp_path):
    for name in ["d.txt", "a.txt", "c.txt", "b.txt"]:
        (tmp_path / name).write_text("")
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(SPEC, overwrite=False)
    assert str(error.value).endswith(f"got {str(tmp_path)!r} holding 4 entries jaxreg did not write "
                                     f"(a.txt, b.txt, c.txt, ...); choose another --out")
    for name in ["b.txt", "c.txt", "d.txt"]:
        (tmp_path / name).unlink()
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(SPEC, overwrite=False)
    assert "holding 1 entry jaxreg did not write (a.txt); " in str(error.value)


def test_an_empty_curves_folder_and_the_lock_are_leftovers_not_foreign(tmp_path):
    s = store.Store(tmp_path)
    (tmp_path / store.CURVES).mkdir()
    (tmp_path / store.LOCK).write_text("")
    assert s.foreign_entries() == []
    (tmp_path / store.CURVES / "x").write_text("")
    assert s.foreign_entries() == ["curves"]
    (tmp_path / store.MANIFEST).write_text("{}")  # not jaxreg's manifest: the folder is not jaxreg's
    assert s.foreign_entries() == ["curves", "manifest.json"]
    (tmp_path / store.MANIFEST).unlink()
    s.start_run(SPEC, 1)
    assert s.foreign_entries() == []


def test_a_folder_another_run_is_starting_in_is_not_foreign(tmp_path):
    # Two shards started at once: the first holds the lock and has written its manifest's
    # temporary, not the manifest yet; the second must join it, not call the folder foreign.
    first = store.Store(tmp_path / "out", store.Shard(1, 2))
    first.lock()
    (tmp_path / "out" / ".manifest.json.k2x9").write_text("{")
    try:
        assert store.Store(tmp_path / "out", store.Shard(0, 2)).foreign_entries() == []
    finally:
        first.unlock()
    # Once no run holds the lock, the same files without a manifest are foreign again.
    assert store.Store(tmp_path / "out").foreign_entries() == [".manifest.json.k2x9"]


def test_resuming_checks_the_spec_and_overwrite_clears_only_ours(tmp_path):
    s = store.Store(tmp_path)
    s.prepare(SPEC, overwrite=False)
    s.start_run(SPEC, 1)
    s.unlock()
    store.atomic_write(tmp_path / "summary.csv", "x")  # a file jaxreg writes, recorded as it writes it
    store.record_files(tmp_path, ["summary.csv"])
    s.append([full_record("0123456789", 0)])
    (tmp_path / store.CURVES / "0123456789_0.npz").write_bytes(b"x")
    (tmp_path / store.CURVES / "0123456789_1.npz").write_bytes(b"a trial not journaled: not known as jaxreg's")
    (tmp_path / store.CURVES / "keep.npz").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("mine")
    (tmp_path / ".hidden").write_text("mine")
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(OTHER, overwrite=False)
    assert str(error.value) == (f"--out: {str(tmp_path)!r} holds results of a different spec (sha256 "
                                f"{SPEC.digest[:12]}, this one {OTHER.digest[:12]}): expected the same spec to resume; "
                                f"use --overwrite to replace them, or another --out")
    same = store.Store(tmp_path)
    same.prepare(SPEC, overwrite=False)  # the same spec resumes, nothing removed
    same.unlock()
    assert (tmp_path / "summary.csv").exists()
    o = store.Store(tmp_path)
    o.prepare(OTHER, overwrite=True)
    o.unlock()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", store.LOCK, "curves", "notes.md"]
    assert sorted(p.name for p in (tmp_path / store.CURVES).iterdir()) == ["0123456789_1.npz", "keep.npz"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_manifest_jaxreg_did_not_write_makes_the_folder_foreign(tmp_path, overwrite):
    (tmp_path / store.MANIFEST).write_text('{"runs": []}')
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(SPEC, overwrite=overwrite)
    assert str(error.value) == (f"--out: expected a new or empty folder, or a jaxreg results folder (with "
                                f"manifest.json), got {str(tmp_path)!r} holding 1 entry jaxreg did not write "
                                f"(manifest.json); choose another --out")
    assert not (tmp_path / store.LOCK).exists()  # refused before taking the lock


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    first = store.Store(tmp_path)
    first.lock()
    first.lock()  # taking it twice in one process is a no-op
    assert (tmp_path / store.LOCK).read_text() == f"jaxreg run, pid {os.getpid()} on {platform.node()}\n"
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).lock()
    assert str(error.value) == (f"--out: expected a folder no other jaxreg run is writing, got {str(tmp_path)!r} "
                                f"(locked by jaxreg run, pid {os.getpid()} on {platform.node()}); wait "
                                f"for that run or choose another --out")
    first.unlock()
    first.unlock()
    second = store.Store(tmp_path)
    second.lock()
    second.unlock()


def test_stray_temporaries_are_removed_but_not_a_users_dotfiles(tmp_path):
    s = store.Store(tmp_path)
    s.prepare(SPEC, overwrite=False)
    s.start_run(SPEC, 1)
    s.unlock()
    strays = [tmp_path / ".manifest.json.ab12_xyz", tmp_path / ".trials.jsonl.q9q9q9q9",
              tmp_path / store.CURVES / ".0123456789_3.npz.zz1abcde"]
    # Not a temporary of a file jaxreg writes here (summary.csv is not written yet), or not a
    # temporary's exact name (tempfile's 8 characters).
    mine = [tmp_path / ".gitignore", tmp_path / store.CURVES / ".keep", tmp_path / ".summary.csv.ab12_xyz",
            tmp_path / ".trials.jsonl.q9", tmp_path / ".trials.jsonl.orig", tmp_path / ".trials.jsonl.ab12_xyz.bak"]
    for path in strays + mine:
        path.write_text("x")
    again = store.Store(tmp_path)
    again.prepare(SPEC, overwrite=False)
    again.unlock()
    assert not any(p.exists() for p in strays)
    assert all(p.exists() for p in mine)


def _append_many(out: str, writer: int, batches: int, per_batch: int) -> None:
    s = store.Store(out)
    for b in range(batches):
        s.append([full_record(f"w{writer}", b * per_batch + i, point={"pad": "x" * 1500}) for i in range(per_batch)])


def test_ten_processes_appending_to_one_journal_lose_and_duplicate_nothing(tmp_path):
    import multiprocessing

    import warnings

    context = multiprocessing.get_context("fork")  # the writers only write files: no JAX runs in them
    writers = [context.Process(target=_append_many, args=(str(tmp_path), w, 3, 16)) for w in range(10)]
    with warnings.catch_warnings():  # JAX's warning that forking a multithreaded process is unsafe for JAX
        warnings.simplefilter("ignore", RuntimeWarning)
        for w in writers:
            w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0] * 10
    records = store.read_journal(tmp_path)  # every line whole: a torn or interleaved one would be refused
    keys = [(r["config_id"], r["seed"]) for r in records]
    assert len(keys) == 480 and set(keys) == {(f"w{w}", s) for w in range(10) for s in range(48)}
    for w in range(10):  # each writer's records in its own order
        assert [s for c, s in keys if c == f"w{w}"] == list(range(48))


# --- what the mutation run found untested -----------------------------------------------------

def test_versions_of_a_missing_package_is_none(monkeypatch):
    from importlib import metadata

    real = metadata.version

    def version(package):
        if package == "optax":
            raise metadata.PackageNotFoundError(package)
        return real(package)

    monkeypatch.setattr(metadata, "version", version)
    assert store.versions()["optax"] is None and store.versions()["numpy"] == np.__version__


def test_a_dangling_symlink_as_out_is_named_and_a_symlink_to_a_folder_is_used(tmp_path):
    os.symlink("nowhere", tmp_path / "link")
    with pytest.raises(InputError) as error:
        store.Store(tmp_path / "link").prepare(SPEC, overwrite=False)
    assert str(error.value) == (f"--out: expected a folder, got {str(tmp_path / 'link')!r} (a symbolic link to "
                                f"'nowhere', which leads nowhere)")
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "good")
    s = store.Store(tmp_path / "good")
    s.prepare(SPEC, overwrite=False)
    s.unlock()
    assert (tmp_path / "real" / store.LOCK).exists()


def test_three_foreign_entries_are_all_shown_without_an_ellipsis(tmp_path):
    for name in ["a.txt", "b.txt", "c.txt"]:
        (tmp_path / name).write_text("")
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(SPEC, overwrite=False)
    assert "holding 3 entries jaxreg did not write (a.txt, b.txt, c.txt); " in str(error.value)


def test_a_new_nested_folder_is_created_and_its_lock_has_the_files_mode(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    s = store.Store(out)
    s.prepare(SPEC, overwrite=False)
    s.unlock()
    assert stat.S_IMODE((out / store.LOCK).stat().st_mode) == files._file_mode()
    store.Store(tmp_path / "never").unlock()  # unlocking what was never locked does nothing


@pytest.mark.parametrize("content, holder", [(b"", "another process"),
                                             (b"\xff\xfe run 7\n", "\ufffd\ufffd run 7")])
def test_a_lock_held_without_a_readable_holder_is_still_named(tmp_path, content, holder):
    import fcntl

    (tmp_path / store.LOCK).write_bytes(content)
    handle = os.open(tmp_path / store.LOCK, os.O_RDWR)
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        with pytest.raises(InputError) as error:
            store.Store(tmp_path).lock()
    finally:
        os.close(handle)
    assert f"(locked by {holder}); wait for that run" in str(error.value)


def test_finish_run_keeps_the_manifest_format_and_utc_times(tmp_path):
    import jax

    s = store.Store(tmp_path)
    s.start_run(SPEC, chunk_size=2, devices=records.local_devices())
    s.finish_run(trained=1, seconds=0.5)
    text = (tmp_path / store.MANIFEST).read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=2) + "\n"
    (run,) = manifest["runs"]
    assert run["finished"].endswith("+00:00") and run["devices"] == [str(d) for d in jax.local_devices()]


def test_resuming_cuts_a_torn_line_before_appending(tmp_path):
    path = tmp_path / store.JOURNAL
    path.write_text(json.dumps(full_record(seed=0)) + "\n" + '{"config_id": "c", "se')
    s = store.Store(tmp_path)
    assert list(s.read_journal()) == [("c", 0)]
    s.append([full_record(seed=1)])
    assert [r["seed"] for r in store.read_journal(tmp_path)] == [0, 1]  # no torn line left in the middle


def test_a_diverged_record_is_a_record():
    assert journal._is_record(full_record(status="diverged")) and not journal._is_record(full_record(status="DIVERGED"))


def test_a_long_manifest_is_shown_cut_to_60_characters(tmp_path):
    manifest = {"x": "y" * 100}
    (tmp_path / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value).endswith(f"got {str(manifest)[:60]!r}")


def test_atomic_write_passes_an_interrupt_and_a_named_error_through_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.atomic_write(path, "x")
    monkeypatch.undo()

    def refused(src, dst):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(files.os, "replace", refused)
    with pytest.raises(PermissionError) as error:
        store.atomic_write(path, "x")
    assert (error.value.errno, error.value.strerror) == (13, "Permission denied")
    assert error.value.filename.startswith(str(tmp_path / ".manifest.json."))  # the system's own words, kept
    assert list(tmp_path.iterdir()) == []  # no temporary left either way


# --- A folder owns exactly what jaxreg wrote, and no link is followed out of it ---------------

def tree_digest(root) -> str:
    """Every entry under ``root`` (names, bytes, link targets): what must not change."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes() if path.is_file() else b"/")
    return digest.hexdigest()


def sentinel(tmp_path):
    """A tree outside the results folder, with files named like jaxreg's."""
    outside = tmp_path / "outside"
    (outside / "curves").mkdir(parents=True)
    for name in ("victim.txt", "trials.jsonl"):
        (outside / name).write_text("the user's, outside the folder\n{torn")
    (outside / "curves" / "0123456789_0.npz").write_bytes(b"not the folder's")
    return outside


def started(out, spec=SPEC, shard=None):
    s = store.Store(out, shard)
    s.prepare(spec, overwrite=False)
    s.start_run(spec, 1)
    s.append([full_record("0123456789", 0, point={"learning_rate": 0.1})])
    s.unlock()
    return s


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("name", [store.LOCK, ".jaxreg.shard-0-of-2.lock", store.JOURNAL, "trials.shard-1-of-2.jsonl",
                                  store.CHECKPOINT, store.MANIFEST, store.CURVES, store.TENSORBOARD])
def test_a_link_among_jaxregs_own_files_is_refused_and_nothing_outside_changes(tmp_path, name, overwrite):
    out = tmp_path / "out"
    started(out)
    outside = sentinel(tmp_path)
    target = outside / ("curves" if name in (store.CURVES, store.TENSORBOARD) else "victim.txt")
    if (out / name).is_dir():
        for path in (out / name).iterdir():
            path.unlink()
        (out / name).rmdir()
    (out / name).unlink(missing_ok=True)
    (out / name).symlink_to(target)
    before, inside = tree_digest(outside), tree_digest(out)
    with pytest.raises(InputError) as error:
        store.Store(out).prepare(SPEC, overwrite=overwrite)
    kind = "a folder" if name in (store.CURVES, store.TENSORBOARD) else "a regular file"
    assert str(error.value) == f"{out / name}: expected {kind}, got a symbolic link"
    assert (tree_digest(outside), tree_digest(out)) == (before, inside)


def test_the_lock_the_journal_and_its_repair_never_follow_a_link(tmp_path):
    outside = sentinel(tmp_path)
    before = tree_digest(outside)
    for shard, name in [(None, store.LOCK), (store.Shard(0, 2), ".jaxreg.shard-0-of-2.lock")]:
        out = tmp_path / f"lock-{name}"
        out.mkdir()
        (out / name).symlink_to(outside / "victim.txt")
        with pytest.raises(InputError) as error:
            store.Store(out, shard).lock()  # a link taken as the lock was truncated, and a pid written in it
        assert str(error.value) == f"{out / name}: expected a regular file, got a symbolic link"
    out = tmp_path / "journal"
    out.mkdir()
    (out / store.JOURNAL).symlink_to(outside / "trials.jsonl")
    with pytest.raises(InputError) as error:
        store.Store(out).append([full_record()])
    assert str(error.value) == f"{out / store.JOURNAL}: expected a regular file, got a symbolic link"
    with pytest.raises(InputError) as error:
        store.read_journal(out, repair=True)  # the torn last line is not cut off the file outside
    assert str(error.value) == f"{out / store.JOURNAL}: expected a regular file, got a symbolic link"
    assert tree_digest(outside) == before


def test_overwrite_removes_the_recorded_files_and_never_a_suffix_variant(tmp_path):
    from matplotlib.figure import Figure

    from jaxreg.report.plots import save_figure
    from jaxreg.report.summary import write_csv

    out = tmp_path / "out"
    started(out)
    write_csv(out / "summary.csv", [{"rank": 1}])
    save_figure(Figure(), out / "curves.png")
    store.atomic_write(out / store.CURVES / "0123456789_0.npz", b"the journaled trial's curves")
    manifest = store.load_manifest(out)
    assert manifest["format"] == store.FORMAT
    assert manifest["files"] == ["checkpoint.npz", "curves.png", "summary.csv", "trials.jsonl"]
    mine = ["trials.jsonl.bak", "summary.csv.orig", "curves.png.old", "manifest.json.save", "before_vs_after.png",
            "metric_vs_learning_rate.png", ".summary.csv.orig", ".summary.csv.abcdefgh.bak", "notes.md"]
    for name in mine:
        (out / name).write_text("mine")
    (out / store.CURVES / "keep.npz").write_text("mine")
    (out / ".curves.png.x1y2z3w4").write_bytes(b"a killed run's temporary of a recorded file")
    s = store.Store(out)
    s.prepare(OTHER, overwrite=True)
    s.unlock()
    assert sorted(p.name for p in out.iterdir()) == sorted([store.LOCK, store.CURVES, *mine])
    assert [p.name for p in (out / store.CURVES).iterdir()] == ["keep.npz"]


def test_a_plot_or_csv_written_outside_a_results_folder_records_nothing(tmp_path):
    from jaxreg.report.summary import write_csv

    write_csv(tmp_path / "comparison.csv", [{"a": 1}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.csv"]


def legacy_folder(out, spec=SPEC):
    """A folder as jaxreg wrote it before the manifest's mark and record of files."""
    (out / store.CURVES).mkdir(parents=True)
    manifest = {"spec_sha256": spec.digest, "spec": spec.resolved,
                "runs": [{"started": "2025-01-01T00:00:00+00:00", "finished": None}]}
    (out / store.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    record = full_record("0123456789", 0, point={"learning_rate": 0.1})
    (out / store.JOURNAL).write_text(json.dumps(record) + "\n")
    ours = ["summary.csv", "trials.csv", "curves.png", "metric_vs_learning_rate.png", "val_loss_vs_learning_rate.png"]
    mine = ["summary.csv.orig", "before_vs_after.png", "val_loss_vs_momentum.png", "README.md", "curves.png.old"]
    for name in ours + mine:
        (out / name).write_text(name)
    (out / store.CURVES / "0123456789_0.npz").write_bytes(b"x")
    (out / store.CURVES / "0123456789_1.npz").write_bytes(b"no journaled trial: kept")
    return ours, mine


def test_a_folder_written_before_the_mark_is_read_resumed_and_marked(tmp_path):
    out = tmp_path / "old"
    ours, mine = legacy_folder(out)
    assert store.load_manifest(out)["spec"] == SPEC.resolved
    s = store.Store(out)
    s.prepare(SPEC, overwrite=False)
    s.start_run(SPEC, 1)
    s.unlock()
    manifest = store.load_manifest(out)
    assert manifest["format"] == store.FORMAT and len(manifest["runs"]) == 2
    # What the exact names of jaxreg's files find there, and this run's own journal and checkpoint.
    assert manifest["files"] == sorted([*ours, store.JOURNAL, store.CHECKPOINT])


def test_overwrite_of_a_folder_written_before_the_mark_removes_jaxregs_exact_names(tmp_path):
    out = tmp_path / "old"
    ours, mine = legacy_folder(out)
    s = store.Store(out)
    s.prepare(OTHER, overwrite=True)
    s.unlock()
    assert sorted(p.name for p in out.iterdir()) == sorted([store.LOCK, store.CURVES, *mine])
    assert [p.name for p in (out / store.CURVES).iterdir()] == ["0123456789_1.npz"]


def test_a_manifest_of_jaxregs_shape_without_the_mark_whose_hash_fails_is_not_read(tmp_path):
    legacy_folder(tmp_path)
    manifest = json.loads((tmp_path / store.MANIFEST).read_text())
    manifest["spec"]["train"]["epochs"] = 40
    (tmp_path / store.MANIFEST).write_text(json.dumps(manifest))
    before = tree_digest(tmp_path)
    message = (f"expected the spec in {tmp_path / store.MANIFEST} to match its spec_sha256, got a spec that does "
               f"not match its sha256 (edited since jaxreg wrote it); restore the spec (its results were computed "
               f"with it)")
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == f"DIR: {message}"
    with pytest.raises(InputError) as error:
        store.Store(tmp_path).prepare(SPEC, overwrite=True)
    assert str(error.value) == f"--out: {message}"
    assert tree_digest(tmp_path) == before


def test_an_edited_spec_is_named_by_its_field(tmp_path):
    started(tmp_path)
    manifest = json.loads((tmp_path / store.MANIFEST).read_text())
    manifest["spec"]["train"]["epochs"] = 40
    manifest["spec"]["name"] = "renamed"
    (tmp_path / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == (f"DIR: expected the spec in {tmp_path / store.MANIFEST} to match its spec_sha256, "
                                f"got spec.name, spec.train.epochs changed since jaxreg wrote it; restore the spec "
                                f"(its results were computed with it)")


@pytest.mark.parametrize("field, value, allowed", [
    ("spec_sha256", 5, "a SHA-256 (64 hex digits)"),
    ("spec_sha256", "A" * 64, "a SHA-256 (64 hex digits)"),
    ("runs", "x", "a list of runs (each a table with its start time)"),
    ("runs", [1], "a list of runs (each a table with its start time)"),
    ("format", "jaxreg-results/9", "'jaxreg-results/1'"),
    ("files", ["../escape.txt"], "a list of file names in the folder"),
    ("chance", {"": "x"}, "a table of numbers"),
])
def test_each_manifest_field_is_checked(tmp_path, field, value, allowed):
    started(tmp_path)
    manifest = json.loads((tmp_path / store.MANIFEST).read_text())
    manifest[field] = value
    (tmp_path / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError) as error:
        store.load_manifest(tmp_path)
    assert str(error.value) == f"DIR: expected {field} in {tmp_path / store.MANIFEST} to be {allowed}, got {json.dumps(value)[:60]}"


def test_the_committed_results_folders_are_read_as_jaxregs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "results"
    folders = sorted(path.parent for path in root.rglob(store.MANIFEST))
    assert len(folders) > 100
    for folder in folders:
        assert store.load_manifest(folder)["runs"]
        assert store.Store(folder).foreign_entries() == []


def test_merging_removes_the_shards_lock_files_that_no_live_process_holds(tmp_path):
    first = store.Store(tmp_path, store.Shard(0, 2))
    first.prepare(SPEC, overwrite=False)
    first.start_run(SPEC, 1)
    recorded = set(store.load_manifest(tmp_path).get("files", ()))
    first.append([full_record("0123456789", 0)])
    (tmp_path / ".jaxreg.shard-1-of-2.lock").write_text("jaxreg run --shard 1/2, pid 999999 on elsewhere\n")
    live = store.Store(tmp_path, store.Shard(0, 3))  # another sweep's shard, still running
    live.lock()
    try:
        assert first.merge_shards([("0123456789", 0)], first.read_journal())
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")) == [
            store.LOCK, ".jaxreg.shard-0-of-3.lock"]
        # The shard's files were recorded as jaxreg's while they were there, and no longer are.
        assert {"trials.shard-0-of-2.jsonl", "checkpoint.shard-0-of-2.npz"} <= recorded
        assert not {"trials.shard-0-of-2.jsonl", "checkpoint.shard-0-of-2.npz"} & set(store.load_manifest(tmp_path)["files"])
    finally:
        live.unlock()
        first.unlock()


def test_atomic_write_replaces_a_link_never_what_it_points_to(tmp_path):
    outside = sentinel(tmp_path)
    before = tree_digest(outside)
    (tmp_path / "summary.csv").symlink_to(outside / "victim.txt")
    store.atomic_write(tmp_path / "summary.csv", "rank\n")
    assert not (tmp_path / "summary.csv").is_symlink() and (tmp_path / "summary.csv").read_text() == "rank\n"
    assert tree_digest(outside) == before
