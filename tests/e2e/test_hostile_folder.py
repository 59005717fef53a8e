"""A results folder from anyone is safe to open: one built with every trick at once (links out of
it where jaxreg writes, deletes or reads, code it ships and names, a tampered manifest, files
jaxreg did not write beside its own) is opened by every command that reads a folder. No file
outside the folder changes (every file of a sentinel tree hashed before and after), no code from
the folder runs, and each command exits 0 or 2 with one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]  # tests/: spec_models.py

AUTHOR_SPEC = """
name = "theirs"
[data]
dataset = "blobs"
n_val = 20
n_test = 20
[model]
kind = "helpers:plain_mlp"
options = { width = 4 }
[train]
epochs = 2
batch_size = 20
[hparams]
learning_rate = { values = [0.05, 0.1] }
[output]
params = true
"""

# What the folder's author ships: importing it would leave PAYLOAD beside the test's folders.
HELPERS = """
import pathlib
(pathlib.Path(__file__).resolve().parents[{depth}] / "PAYLOAD").write_text("the folder's code ran")
{model}"""
MODEL = """
import spec_models


def plain_mlp(input_shape, num_outputs, width=32):
    return spec_models.plain_mlp(input_shape, num_outputs, width)
"""

# The user's own spec, run against the folder (resume, --overwrite): a built-in model.
USER_SPEC = """
name = "mine"
[data]
dataset = "blobs"
n_val = 20
n_test = 20
[model]
hidden = [4]
[train]
epochs = 1
batch_size = 20
[hparams]
learning_rate = 0.1
[output]
plots = false
"""

# Files jaxreg did not write, with names like its own: --overwrite must leave them.
BYSTANDERS = ("trials.jsonl.bak", "summary.csv.orig", "curves.png.old", "manifest.json.save",
              "before_vs_after.png", "notes.txt")


def jaxreg(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxreg", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def tree_hashes(folder: Path) -> dict:
    """Every entry below ``folder`` (links as their targets' text, never followed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = "link -> " + os.readlink(path)
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path)] = "folder"
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """``theirs/``: a results folder trained by its author with a model of their own code, then
    armed; ``outside/``: the sentinel tree; ``user/``: where the user works."""
    base = tmp_path_factory.mktemp("hostile")
    author, outside, user = base / "author", base / "outside", base / "user"
    for folder in (author, outside, user):
        folder.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "JAXREG_CACHE_DIR": os.environ.get("JAXREG_CACHE_DIR", "off")}
    # The author trains it (their helpers.py is theirs and harmless while they train).
    (author / "helpers.py").write_text(MODEL)
    (author / "spec.toml").write_text(AUTHOR_SPEC)
    done = jaxreg("run", "spec.toml", "--out", base / "theirs", "--quiet", cwd=author, env=env)
    assert done.returncode == 0, done.stderr
    theirs = base / "theirs"
    done = jaxreg("best", theirs, "--export", base / "theirs.npz", "--trust-code", cwd=author, env=env)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(author)  # the author's copy of their code is gone: only what they ship remains

    # What they ship: code named by the folder and the export, in the folder and beside the export.
    (theirs / "helpers.py").write_text(HELPERS.format(depth=1, model=MODEL))
    (base / "helpers.py").write_text(HELPERS.format(depth=0, model=MODEL))
    # Links out of the folder where jaxreg locks, writes and deletes.
    (outside / "victim.txt").write_text("not jaxreg's\n")
    lock = theirs / ".jaxreg.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside / "victim.txt")
    away = outside / "curves"
    shutil.copytree(theirs / "curves", away)  # files named as jaxreg names its own
    shutil.rmtree(theirs / "curves")
    (theirs / "curves").symlink_to(away)
    (outside / "summary.csv").write_text("theirs,not jaxreg's\n")
    (theirs / "checkpoint.npz").symlink_to(outside / "summary.csv")
    for name in BYSTANDERS:
        (theirs / name).write_text(f"{name}: the user's file\n")

    # A second folder whose manifest was edited by hand: its spec no longer matches its hash.
    edited = base / "edited"
    shutil.copytree(theirs, edited, symlinks=True)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["spec"]["train"]["epochs"] = 40
    (edited / "manifest.json").write_text(json.dumps(manifest, indent=2))

    (user / "spec.toml").write_text(USER_SPEC)
    (user / "helpers.py").write_text(HELPERS.format(depth=1, model=MODEL))  # the working directory is no safer
    return {"base": base, "theirs": theirs, "edited": edited, "outside": outside, "user": user, "env": env,
            "export": base / "theirs.npz"}


def check(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode in (0, 2), (what, result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, (what, result.stderr[-2000:])
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("jaxreg: error: "), (what, result.stderr)


def test_every_command_opens_a_hostile_folder_safely(world):
    base, outside, env = world["base"], world["outside"], world["env"]
    before = tree_hashes(outside)
    ours = {name: (world["theirs"] / name).read_bytes() for name in BYSTANDERS}
    results = {}
    for folder in (world["theirs"], world["edited"]):
        for cwd in (folder, world["user"]):
            scratch = base / f"out-{folder.name}-{cwd.name}"
            commands = {
                "show": ["show", folder],
                "plot": ["plot", folder],
                "best": ["best", folder],
                "best --export": ["best", folder, "--export", scratch / "best.npz"],
                "compare": ["compare", folder, "--out", scratch / "compare"],
                "predict": ["predict", folder, world["user"] / "spec.toml", "--out", scratch / "p.csv"],
            }
            for what, args in commands.items():
                result = jaxreg(*args, cwd=cwd, env=env)
                check(result, f"{what} in {cwd.name} of {folder.name}")
                results[(what, folder.name, cwd.name)] = result
    # the export names their code: load_best and load_model refuse it without importing it
    probe = ("import jaxreg, sys\n"
             "for load in (jaxreg.load_best, jaxreg.load_model):\n"
             "    try:\n"
             "        load(sys.argv[1])\n"
             "    except jaxreg.InputError as error:\n"
             "        print(str(error).split(':')[0])\n")
    for cwd in (base, world["user"]):
        loaded = subprocess.run([sys.executable, "-c", probe, str(world["export"])], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=600)
        assert loaded.returncode == 0 and loaded.stdout.split() == ["model.kind", "model.kind"], loaded.stderr
    # resume and --overwrite with the user's own spec, last: --overwrite changes the folder
    for folder in (world["edited"], world["theirs"]):
        for extra in ([], ["--overwrite"]):
            result = jaxreg("run", "spec.toml", "--out", folder, "--quiet", *extra, cwd=world["user"], env=env)
            check(result, f"run {' '.join(extra)} on {folder.name}")
            results[("run" + "".join(extra), folder.name)] = result

    assert not (base / "PAYLOAD").exists() and not (world["user"].parent / "PAYLOAD").exists()
    assert tree_hashes(outside) == before  # nothing outside the folder changed
    for name, content in ours.items():
        assert (world["theirs"] / name).read_bytes() == content  # nor the user's files inside it
    # What still works does: the table, and the best config, need neither their code nor a link.
    assert results[("show", "theirs", "user")].returncode == 0
    assert results[("best", "theirs", "user")].returncode == 0
    # What would import their code, or trust an edited spec, is refused.
    assert results[("best --export", "theirs", "user")].returncode == 2
    assert "--trust-code" in results[("best --export", "theirs", "user")].stderr
    for what in ("show", "best", "best --export"):
        assert results[(what, "edited", "user")].returncode == 2, results[(what, "edited", "user")].stdout
        assert "sha256" in results[(what, "edited", "user")].stderr
    assert results[("run--overwrite", "theirs")].returncode == 2  # its lock is a link out of it
