"""Malformed files, folders and sizes: each is refused with exit code 2 and one line on stderr,
before anything is trained or written, and nothing of the user's is touched.

``jaxreg.cli.main`` runs in-process (nothing here trains); each case builds what it needs in a
fresh folder, which is compared byte for byte before and after. Signals are tested in
``test_results_folder.py`` and ``test_checkpoint.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jaxreg.cli import main

BASE = '''name = "base"
[data]
dataset = "digits"
n_train = 40
[model]
hidden = [8]
[train]
epochs = 2
batch_size = 10
[hparams]
learning_rate = 0.1
[search]
seeds = 1
'''
LONG = "a" * 300


def spec(tmp: Path, text: str = BASE, name: str = "spec.toml") -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def with_set(tmp, *sets):
    argv = ["run", spec(tmp), "--out", str(tmp / "out")]
    for s in sets:
        argv += ["--set", s]
    return argv


RESOLVED = {"name": "base", "search": {"method": "grid", "metric": "val_loss", "goal": "minimize"},
            "train": {"epochs": 8, "eval_every": 1}}


def results(tmp: Path, name: str = "res", **fields) -> Path:
    """A finished results folder of the base spec (written by hand: nothing trains here); ``fields``
    replace the manifest's (as a hand edit would)."""
    from jaxreg.report import store

    out = tmp / name
    (out / "curves").mkdir(parents=True)
    manifest = {"format": store.FORMAT, "spec_sha256": store.spec_sha256(RESOLVED), "spec": RESOLVED,
                "spec_parts": store.spec_parts(RESOLVED), "files": ["trials.jsonl"], "runs": [], **fields}
    (out / "manifest.json").write_text(json.dumps(manifest))
    from jaxreg.train import METRICS

    record = {"config_id": "0123456789", "seed": 0, "round": 0, "case": None, "point": {}, "hparams": {},
              "status": "ok", "best_epoch": 0, "stopped_epoch": 0, "diverged_epoch": 0,
              "metrics": dict.fromkeys(METRICS, 0.5)}
    (out / "trials.jsonl").write_text(json.dumps(record) + "\n")
    return out


def idx_dir(tmp: Path) -> Path:
    d = tmp / "mnist"
    d.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    return d


def symlink(tmp: Path, name: str) -> str:
    os.symlink(name, tmp / name)
    return str(tmp / name)


CASES = [
    # files
    ("spec-missing", lambda t: ["run", str(t / "none.toml")]),
    ("spec-is-a-folder", lambda t: (t / "adir").mkdir() or ["run", str(t / "adir")]),
    ("spec-is-a-device", lambda t: ["plan", "/dev/null"]),
    ("spec-binary", lambda t: (t / "b.toml").write_bytes(b"\x00\xff\xfe") and ["run", str(t / "b.toml")]),
    ("spec-empty", lambda t: ["plan", spec(t, "")]),
    ("spec-not-toml", lambda t: ["plan", spec(t, "name = \n[data")]),
    ("spec-symlink-loop", lambda t: ["plan", symlink(t, "loop.toml")]),
    ("spec-name-too-long", lambda t: ["plan", str(t / (LONG + ".toml"))]),
    ("spec-under-proc", lambda t: ["plan", "/proc/none/spec.toml"]),
    ("spec-nested-deep", lambda t: ["plan", spec(t, "a = " + "[" * 100_000 + "]" * 100_000)]),
    ("spec-dotted-key-deep", lambda t: ["plan", spec(t, BASE + "a" + ".a" * 100_000 + " = 1")]),
    ("spec-over-a-mebibyte", lambda t: ["plan", spec(t, BASE + "# padding\n" * 110_000)]),
    ("set-nested-deep", lambda t: with_set(t, "hparams.l2=" + "[" * 50_000 + "]" * 50_000)),
    ("set-dotted-key-deep", lambda t: with_set(t, "a" + ".a" * 50_000 + "=1")),
    ("mnist-data-dir-is-a-file", lambda t: ["plan", spec(t, BASE.replace('dataset = "digits"\nn_train = 40',
        f'dataset = "mnist"\ndata_dir = "{spec(t, "x", "file.txt")}"\ndownload = false'))]),
    ("mnist-truncated-idx", lambda t: ["plan", spec(t, BASE.replace('dataset = "digits"\nn_train = 40',
        f'dataset = "mnist"\ndata_dir = "{idx_dir(t)}"\ndownload = false'))]),
    # folders
    ("out-is-a-file", lambda t: spec(t, "mine", "file.txt") and ["run", spec(t), "--out", str(t / "file.txt")]),
    ("out-symlink-loop", lambda t: ["run", spec(t), "--out", symlink(t, "loop")]),
    ("out-under-proc", lambda t: ["run", spec(t), "--out", "/proc/jaxreg-out"]),
    ("out-under-sys", lambda t: ["run", spec(t), "--out", "/sys/jaxreg-out"]),
    ("out-name-too-long", lambda t: ["run", spec(t), "--out", str(t / LONG)]),
    ("out-foreign-folder", lambda t: (t / "mine").mkdir() or (t / "mine" / "notes.txt").write_text("x") and
        ["run", spec(t), "--out", str(t / "mine")]),
    ("out-journal-without-manifest", lambda t: (results(t) / "manifest.json").unlink() or
        ["run", spec(t), "--out", str(t / "res")]),
    ("out-broken-manifest", lambda t: (results(t) / "manifest.json").write_text("{not json") and
        ["run", spec(t), "--out", str(t / "res")]),
    ("out-manifest-is-a-folder", lambda t: (results(t) / "manifest.json").unlink() or (t / "res" / "manifest.json").mkdir()
        or ["run", spec(t), "--out", str(t / "res")]),
    ("out-manifest-of-a-web-app", lambda t: (t / "site").mkdir() or [(t / "site" / n).write_text(n) for n in (
        "manifest.json", "summary.csv", "curves.png", "cats_vs_dogs.png")] and
        ["run", spec(t), "--out", str(t / "site"), "--overwrite"]),
    ("out-lock-a-symlink", lambda t: results(t) and (t / "outside.txt").write_text("keep me") and
        os.symlink(t / "outside.txt", t / "res" / ".jaxreg.lock") or ["run", spec(t), "--out", str(t / "res"), "--overwrite"]),
    ("out-curves-a-symlink", lambda t: results(t) and (t / "elsewhere").mkdir() or
        (t / "elsewhere" / "0123456789_0.npz").write_text("keep") and shutil.rmtree(t / "res" / "curves") or
        os.symlink(t / "elsewhere", t / "res" / "curves") or ["run", spec(t), "--out", str(t / "res"), "--overwrite"]),
    ("out-manifest-runs-a-string", lambda t: results(t, runs="x") and ["run", spec(t), "--out", str(t / "res")]),
    # results folders read by show, plot, best, compare
    ("show-manifest-sha-a-number", lambda t: results(t, spec_sha256=5) and ["show", str(t / "res")]),
    ("plot-spec-edited", lambda t: results(t, spec={**RESOLVED, "train": {"epochs": 40, "eval_every": 1}})
        and ["plot", str(t / "res")]),
    ("best-manifest-metric-bogus", lambda t: results(t, spec={**RESOLVED, "search": {**RESOLVED["search"], "metric": "bogus"}})
        and ["best", str(t / "res")]),
    ("compare-manifest-runs-a-string", lambda t: results(t, runs="x") and
        ["compare", str(results(t, "good")), str(t / "res"), "--out", str(t / "cmp")]),
    ("show-a-file", lambda t: ["show", spec(t)]),
    ("show-symlink-loop", lambda t: ["show", symlink(t, "loop")]),
    ("show-manifest-empty-object", lambda t: (results(t) / "manifest.json").write_text("{}") and ["show", str(t / "res")]),
    ("show-manifest-a-list", lambda t: (results(t) / "manifest.json").write_text("[1, 2]") and ["show", str(t / "res")]),
    ("show-journal-corrupt-middle", lambda t: (results(t) / "trials.jsonl").write_text(
        (t / "res" / "trials.jsonl").read_text() + "{oops\n" + (t / "res" / "trials.jsonl").read_text()) and ["show", str(t / "res")]),
    ("show-journal-line-not-a-record", lambda t: (results(t) / "trials.jsonl").write_text("{}\n") and ["show", str(t / "res")]),
    ("show-journal-null", lambda t: (results(t) / "trials.jsonl").write_text("null\n") and ["show", str(t / "res")]),
    ("show-top-zero", lambda t: ["show", str(results(t)), "--top", "0"]),
    ("plot-damaged-curves", lambda t: (results(t) / "curves" / "0123456789_0.npz").write_bytes(b"PK\x03\x04 torn")
        and ["plot", str(t / "res")]),
    ("compare-missing-folder", lambda t: ["compare", str(results(t)), str(t / "none"), "--out", str(t / "cmp")]),
    # sizes
    ("seeds-ten-million", lambda t: with_set(t, "search.seeds=10000000")),
    ("grid-of-ten-million", lambda t: with_set(t, 'hparams.learning_rate={ logspace = [1e-4, 1, 10000] }',
                                             'hparams.l2={ logspace = [1e-6, 1e-2, 1000] }')),
    ("trials-a-hundred-billion", lambda t: with_set(t, 'hparams.learning_rate={ logspace = [1e-4, 1, 1000] }',
                                                 'hparams.l2={ logspace = [1e-6, 1e-2, 1000] }', "search.seeds=100000")),
    ("epochs-a-billion", lambda t: with_set(t, "train.epochs=1000000000")),
    ("eval-every-a-billion", lambda t: with_set(t, "train.epochs=1000000000", "train.eval_every=1000000000")),
    ("epochs-past-int32", lambda t: with_set(t, "train.epochs=3000000000", "train.eval_every=1000000")),
    ("chunk-beyond-memory", lambda t: with_set(t, "train.epochs=1000000", "search.chunk_size=1000000")),
    ("checkpoint-every-negative", lambda t: ["run", spec(t), "--checkpoint-every", "-1"]),
    ("checkpoint-every-nan", lambda t: ["run", spec(t), "--checkpoint-every", "nan"]),
    ("memory-budget-zero", lambda t: with_set(t, "search.memory_budget_mb=0")),
]


LONG_TOML = "TMP/" + LONG + ".toml"
MNIST = "data.data_dir: expected a folder with readable mnist files (or $JAXREG_DATA_DIR, or download = true), got "
RECORD_FILE = "TMP/res/trials.jsonl"

MESSAGES = {
    "spec-missing": "spec: expected an existing TOML file, got 'TMP/none.toml' (not found)",
    "spec-is-a-folder": "spec: expected a TOML file, got 'TMP/adir' (not a regular file)",
    "spec-is-a-device": "spec: expected a TOML file, got '/dev/null' (not a regular file)",
    "spec-binary": "spec: expected a readable TOML file, got 'TMP/b.toml' ('utf-8' codec can't decode byte 0xff in "
                   "position 1: invalid start byte)",
    "spec-empty": "data.dataset: expected one of 'blobs', 'digits', 'mnist', 'npz', 'csv', got nothing",
    "spec-not-toml": "spec: expected valid TOML in 'TMP/spec.toml', got a syntax error: Invalid value (at line 1, "
                     "column 8)",
    "spec-symlink-loop": "spec: expected a readable TOML file, got 'TMP/loop.toml' ([Errno 40] Too many levels of "
                         "symbolic links: 'TMP/loop.toml')",
    "spec-name-too-long": f"spec: expected a readable TOML file, got '{LONG_TOML}' ([Errno 36] File name too long: "
                          f"'{LONG_TOML}')",
    "spec-under-proc": "spec: expected an existing TOML file, got '/proc/none/spec.toml' (not found)",
    "spec-nested-deep": "spec: expected tables, arrays and dotted keys nested at most 100 deep, got "
                        "'TMP/spec.toml' nested deeper at line 1",
    "spec-dotted-key-deep": "spec: expected tables, arrays and dotted keys nested at most 100 deep, got "
                            "'TMP/spec.toml' nested deeper at line 14",
    "spec-over-a-mebibyte": f"spec: expected a TOML file of at most 1048576 bytes (1 MiB), got 'TMP/spec.toml' of "
                            f"{len(BASE) + 1_100_000} bytes",
    "set-nested-deep": "--set: expected KEY=VALUE nested at most 100 deep, got 100011 characters nested deeper",
    "set-dotted-key-deep": "--set: expected KEY=VALUE nested at most 100 deep, got 100003 characters nested deeper",
    "mnist-data-dir-is-a-file": MNIST + "'TMP/file.txt' (MNIST file train-images-idx3-ubyte not found)",
    "mnist-truncated-idx": MNIST + "'TMP/mnist' (SHA-256 mismatch for TMP/mnist/train-images-idx3-ubyte: expected "
                           "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db, got "
                           "33f02d2375d5859b1c964685417986692c5a240b14c6c5361f39158d2671530b)",
    "out-is-a-file": "--out: expected a folder, got 'TMP/file.txt' (a file)",
    "out-symlink-loop": "--out: expected a folder, got 'TMP/loop' (a symbolic link to 'loop', which leads nowhere)",
    "out-under-proc": "/proc/jaxreg-out: No such file or directory",
    "out-under-sys": "/sys/jaxreg-out: Operation not permitted",
    "out-name-too-long": f"TMP/{LONG}: File name too long",
    "out-foreign-folder": "--out: expected a new or empty folder, or a jaxreg results folder (with manifest.json), "
                          "got 'TMP/mine' holding 1 entry jaxreg did not write (notes.txt); choose another --out",
    "out-journal-without-manifest": "--out: expected a jaxreg results folder with its manifest.json, got 'TMP/res' "
                                    "holding trials.jsonl without one; restore the manifest, or choose another --out",
    "out-broken-manifest": "--out: expected a new or empty folder, or a jaxreg results folder (with manifest.json), "
                           "got 'TMP/res' holding 2 entries jaxreg did not write (manifest.json, trials.jsonl); "
                           "choose another --out",
    "out-manifest-is-a-folder": "--out: expected a new or empty folder, or a jaxreg results folder (with "
                                "manifest.json), got 'TMP/res' holding 2 entries jaxreg did not write (manifest.json, "
                                "trials.jsonl); choose another --out",
    "show-a-file": "DIR: expected a jaxreg results folder with manifest.json, got 'TMP/spec.toml'",
    "show-symlink-loop": "DIR: expected a jaxreg results folder with manifest.json, got 'TMP/loop'",
    "out-manifest-of-a-web-app": "--out: expected a new or empty folder, or a jaxreg results folder (with "
                                 "manifest.json), got 'TMP/site' holding 4 entries jaxreg did not write (cats_vs_dogs.png, "
                                 "curves.png, manifest.json, ...); choose another --out",
    "out-lock-a-symlink": "TMP/res/.jaxreg.lock: expected a regular file, got a symbolic link",
    "out-curves-a-symlink": "TMP/res/curves: expected a folder, got a symbolic link",
    "out-manifest-runs-a-string": "--out: expected runs in TMP/res/manifest.json to be a list of runs (each a table "
                                  "with its start time), got \"x\"",
    "show-manifest-sha-a-number": "DIR: expected spec_sha256 in TMP/res/manifest.json to be a SHA-256 (64 hex "
                                  "digits), got 5",
    "plot-spec-edited": "DIR: expected the spec in TMP/res/manifest.json to match its spec_sha256, got "
                        "spec.train.epochs changed since jaxreg wrote it; restore the spec (its results were "
                        "computed with it)",
    "best-manifest-metric-bogus": "DIR: expected spec.search.metric in TMP/res/manifest.json to be one of val_loss, "
                                  "val_accuracy, train_loss, train_accuracy, val_rmse, val_mae, val_r2, train_rmse, train_mae, "
                                  "train_r2, got \"bogus\"",
    "compare-manifest-runs-a-string": "DIR: expected runs in TMP/res/manifest.json to be a list of runs (each a "
                                      "table with its start time), got \"x\"",
    "show-manifest-empty-object": "DIR: expected a manifest with spec, spec_sha256 and runs in "
                                  "TMP/res/manifest.json, got '{}'",
    "show-manifest-a-list": "DIR: expected a manifest with spec, spec_sha256 and runs in TMP/res/manifest.json, "
                            "got '[1, 2]'",
    "show-journal-corrupt-middle": f"{RECORD_FILE}: line 2: expected a JSON trial record, got b'{{oops'",
    "show-journal-line-not-a-record": f"{RECORD_FILE}: line 1: expected a JSON trial record, got b'{{}}'",
    "show-journal-null": f"{RECORD_FILE}: line 1: expected a JSON trial record, got b'null'",
    "show-top-zero": "--top: expected an integer >= 1, got '0'",
    "plot-damaged-curves": "TMP/res/curves/0123456789_0.npz: expected a curves file written by jaxreg, got a "
                           "damaged file (BadZipFile); rerun the same jaxreg run to train its trial again",
    "compare-missing-folder": "DIR: expected a jaxreg results folder with manifest.json, got 'TMP/none'",
    "seeds-ten-million": "search.seeds: expected a count in [1, 100000] or a non-empty list of integers in "
                         "[0, 2**32), got 10000000",
    "grid-of-ten-million": "hparams: expected at most 1000000 configs in a grid, got 10000000",
    "trials-a-hundred-billion": "search: expected at most 10000000 trials in a round (configs x seeds), got 1000000 "
                                "configs x 100000 seeds = 100000000000",
    "epochs-a-billion": "train.epochs / eval_every: expected at most 1000000 evaluations (each member holds every "
                        "metric at each), got 1000000000 (1000000000 / 1)",
    "eval-every-a-billion": "train.eval_every: expected at most 1000000 epochs between evaluations (each member "
                            "holds every epoch's loss until the evaluation), got 1000000000",
    "epochs-past-int32": "train.epochs: expected an integer in [1, 2147483647] (int32 epoch counters), got 3000000000",
    "chunk-beyond-memory": None,  # the device's memory is this machine's: checked by its start and end
    "checkpoint-every-negative": "--checkpoint-every: expected a number of seconds >= 0, got '-1'",
    "checkpoint-every-nan": "--checkpoint-every: expected a number of seconds >= 0, got 'nan'",
    "memory-budget-zero": "search.memory_budget_mb: expected a number > 0 or \"auto\", got 0",
}


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            if p.is_file() and not p.is_symlink() else ("link", os.readlink(p)) if p.is_symlink() else "folder"
            for p in sorted(folder.rglob("*"))}


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({name for name, _ in CASES}) == len(CASES) == len(MESSAGES)


@pytest.mark.parametrize("name, setup", CASES, ids=[name for name, _ in CASES])
def test_a_malformed_input_is_one_line_and_exit_2_with_nothing_touched(tmp_path, capsys, monkeypatch, name, setup):
    monkeypatch.chdir(tmp_path)  # a run without --out would write results/NAME here
    monkeypatch.setenv("JAXREG_DATA_DIR", str(tmp_path / "no-data"))  # MNIST only where the case puts it
    argv = setup(tmp_path)
    before = snapshot(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    message = MESSAGES[name]
    if message is None:
        assert captured.err.startswith("jaxreg: error: search.chunk_size: expected a chunk that fits in the device's ")
        assert captured.err.endswith("members of about 42.2 MB each (40.3 TB); lower search.chunk_size, "
                                     "train.epochs / eval_every (the curves), or the model\n")
    else:
        assert captured.err == f"jaxreg: error: {message.replace('TMP', str(tmp_path))}\n"
    assert snapshot(tmp_path) == before


def test_a_full_disk_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from jaxreg.report import files

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", no_space)
    code = main(["run", spec(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"jaxreg: error: {tmp_path / 'out' / 'manifest.json'}: No space left on device\n"
    # The manifest was never half written: only the lock and the empty curves folder remain.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".jaxreg.lock", "curves"]


def test_a_full_disk_at_the_journal_names_it(tmp_path, capsys, monkeypatch):
    """os.write's ENOSPC names no file: the line names the journal it was appending to."""
    from jaxreg.report import journal

    def no_space(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "write", no_space)  # the journal's append; other files go through open()
    code = main(["run", spec(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"jaxreg: error: {tmp_path / 'out' / 'trials.jsonl'}: No space left on device\n"
