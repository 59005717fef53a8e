"""The files of a sweep's results folder: a journal that is the source of truth, and what is derived from it.

- ``manifest.json``: jaxreg's mark (``"format": "jaxreg-results/1"``), the resolved spec and
  its SHA-256 (:func:`spec_sha256`, checked on every read) with a short digest of each of its
  fields (``spec_parts``: an edited field is named), the names of the files jaxreg wrote in the
  folder (``files``: ``--overwrite`` removes those, the journaled trials' curves files and
  TensorBoard runs, and nothing else), and one entry per run of the sweep (start and end time,
  jaxreg/jax/jaxlib/optax/numpy versions, devices, chunk size, trials trained). A folder
  holds one study: a rerun with a spec that only adds trials (more seeds, configs or cases;
  other output settings) grows it, reusing every journaled trial, and the
  manifest then holds the new spec; a spec that computes trials differently is refused.
- ``trials.jsonl``: append-only, one JSON line per finished (config, seed): ``config_id``,
  ``seed``, ``round``, ``case``, ``point`` (the swept values), ``hparams`` (all of them),
  ``status`` (``ok`` or ``diverged``), ``best_epoch``, ``stopped_epoch``, ``diverged_epoch``
  and ``metrics`` at the returned params (``null`` where not evaluated). Lines are flushed and
  fsynced as each chunk finishes; a torn last line (a crash mid-write) is dropped on resume.
- ``curves/CONFIG_SEED.npz``: per-evaluation curves of every metric (and the params and model
  state, if ``output.params``), written before the trial's journal line.
- ``checkpoint.npz``: while members train, each one's loop state (params, optimizer and
  early-stopping state), curves so far and last result, with the strategy's state, at the end
  of a segment at most every few seconds and whenever an ask ends with members in flight; a
  rerun resumes them from it, and it is removed once they are journaled (written and read by
  :class:`jaxreg.sweeps.executor.Executor`).
- ``summary.csv``: one row per config, best first, rewritten atomically from the journal
  (its rows and text: :mod:`jaxreg.report.summary`).
- ``trials.shard-I-of-N.jsonl`` (and ``checkpoint.shard-I-of-N.npz``): the journal (and chunk
  checkpoint) of shard ``I`` of a sweep run as ``N`` processes (``jaxreg run --shard I/N``).
  Every reader merges the shards' journals with ``trials.jsonl``; once the sweep is complete
  the run that completes it writes them into ``trials.jsonl`` in the order one process would
  have journaled them, and removes the shard files (and the shards' lock files no live
  process holds).

A manifest without the mark (written before it) is jaxreg's when it has exactly the shape jaxreg
wrote and its spec matches its SHA-256; a run that resumes such a folder adds the mark and the
record of its files (:data:`_LEGACY_FILES`). A folder holding any other ``manifest.json`` is not
jaxreg's, ``--overwrite`` included. jaxreg never follows a symbolic link it finds among its own
files or folders here: the folder is refused.

Problems with a folder (not one, another spec's, a broken file) raise
:class:`jaxreg.errors.InputError` naming ``--out`` or ``DIR``.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import METRICS, search_metrics

MANIFEST, JOURNAL, SUMMARY, CURVES = "manifest.json", "trials.jsonl", "summary.csv", "curves"
CURVES_CSV, LOCK, CHECKPOINT = "curves.csv", ".jaxreg.lock", "checkpoint.npz"
TENSORBOARD = "tensorboard"  # a folder of one TensorBoard run per trial (report.tensorboard)
# The manifest's mark: a manifest without it is jaxreg's only in the shape jaxreg wrote before
# the mark (see _manifest_problem); any other folder holding a manifest.json is not jaxreg's.
FORMAT = "jaxreg-results/1"
# What jaxreg wrote into a folder whose manifest predates the record of its files ("files"):
# these exact names (no suffix variants), the shards' files, the plots by their exact names
# (metric_vs_AXIS.png and METRIC_vs_AXIS.png for the journal's swept axes), and every
# journaled trial's curves file and TensorBoard run.
_LEGACY_FILES = frozenset({MANIFEST, JOURNAL, SUMMARY, CURVES_CSV, "trials.csv", CHECKPOINT, "halving.npz",
                           "curves.png", "test_curves.png", "generalization_gap.png", "best_so_far.png",
                           "search_space.png", "rungs.png", "augmentation.png", "histograms.png",
                           "weights_hist.png", "decision_boundary.png"})
_SHARD_FILE = re.compile(r"(trials\.shard-\d+-of-\d+\.jsonl|checkpoint\.shard-\d+-of-\d+\.npz)")
_SHARD_JOURNAL = re.compile(r"trials\.shard-(\d+)-of-(\d+)\.jsonl")
_SHARD_LOCK = re.compile(r"\.jaxreg\.shard-(\d+)-of-(\d+)\.lock")
# An atomic write's temporary: "." + the file's name + "." + tempfile.mkstemp's 8 characters.
_TEMPORARY = re.compile(r"\.(.+)\.[a-z0-9_]{8}")
_TRIAL_FILE = re.compile(r"[0-9a-f]{10}_\d+\.npz")  # a curves file: run.config_id + "_" + seed
_LINK = "expected a regular file, got a symbolic link"


class Shard(NamedTuple):
    """Shard ``index`` of ``count`` (counted from 0): see :func:`jaxreg.sweeps.run.shard_of`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> :class:`Shard`; :class:`InputError` naming ``--shard`` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 0 < int(match[2]) <= 10_000 or int(match[1]) >= int(match[2]):
        raise InputError(f"--shard: expected I/N with 0 <= I < N <= 10000 (shard I of N, counted from 0, "
                         f"as SLURM_ARRAY_TASK_ID/N), got {text!r}")
    return Shard(int(match[1]), int(match[2]))


def shard_journals(out: str | Path) -> list[tuple[Shard, Path]]:
    """The shards' journals in ``out``, by shard."""
    found = []
    for path in Path(out).iterdir() if Path(out).is_dir() else ():
        match = _SHARD_JOURNAL.fullmatch(path.name)
        if match and path.is_file():
            found.append((Shard(int(match[1]), int(match[2])), path))
    return sorted(found)


def json_value(value):
    """Strict JSON: NaN becomes null, infinities the strings "inf" and "-inf"."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def versions(more: tuple = ()) -> dict:
    """Versions of the packages a run's numbers depend on (``more``: those of its search method)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("jaxreg", "jax", "jaxlib", "optax", "numpy", *more):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    out["python"] = platform.python_version()
    return out


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, content: str | bytes) -> None:
    """Writes ``content`` to ``path`` through a temporary file and a rename: never half a file.

    The file gets the mode a plain ``open`` would give it (group-readable under the usual umask),
    not the temporary file's 0600, so a teammate can read the results.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, _file_mode())
        with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as error:
        Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _naming(error, path) from error
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` naming ``path`` when it names no file (a full disk at ``write`` or ``fsync``):
    the CLI's one line says which file could not be written."""
    return OSError(error.errno, error.strerror, str(path)) if error.filename is None else error


def spec_sha256(resolved: dict) -> str:
    """The SHA-256 of a resolved spec's canonical JSON (sorted keys, no spaces): a manifest's
    ``spec_sha256``, recomputable from its ``spec`` alone."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def spec_parts(resolved: dict) -> dict:
    """A short digest of each field of a resolved spec, two levels deep (``train.epochs``): what
    a manifest keeps to name the field of a spec edited since jaxreg wrote it."""
    parts = {}
    for key, value in resolved.items():
        for name, part in (value.items() if isinstance(value, dict) and value else [(None, value)]):
            parts[key if name is None else f"{key}.{name}"] = spec_sha256({"": part})[:12]
    return parts


def _open(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that never follows a symbolic link: a link (which a tar archive keeps) would
    have jaxreg write, truncate or lock a file outside the folder."""
    try:
        handle = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP and os.path.islink(path):
            raise InputError(f"{path}: {_LINK}") from None
        raise
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise InputError(f"{path}: expected a regular file, got something else (a folder, a pipe or a device)")
    return handle


def _manifest_problem(manifest, path: Path, name: str) -> tuple[str, bool] | None:
    """What makes ``manifest`` (parsed JSON) not a manifest jaxreg wrote, as one line, and whether
    it is only that its spec no longer matches its ``spec_sha256`` (the rest has jaxreg's shape);
    None when it is jaxreg's.

    A manifest without :data:`FORMAT` is jaxreg's (written before the mark) only when it has
    jaxreg's shape and its spec matches its ``spec_sha256``."""
    if not (isinstance(manifest, dict) and isinstance(manifest.get("spec"), dict)
            and "spec_sha256" in manifest and "runs" in manifest):
        return (f"{name}: expected a manifest with spec, spec_sha256 and runs in {path}, got "
                f"{str(manifest)[:60]!r}", False)
    spec, runs = manifest["spec"], manifest["runs"]
    search = spec.get("search")
    checks = [
        ("format", "format" not in manifest or manifest["format"] == FORMAT, repr(FORMAT)),
        ("spec_sha256", isinstance(manifest["spec_sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", manifest["spec_sha256"]),
         "a SHA-256 (64 hex digits)"),
        ("runs", isinstance(runs, list) and all(isinstance(r, dict) and isinstance(r.get("started"), str)
                                                  and isinstance(r.get("versions", {}), dict) for r in runs),
         "a list of runs (each a table with its start time)"),
        ("spec.name", isinstance(spec.get("name"), str), "a string"),
        ("spec.search", isinstance(search, dict), "a table"),
        ("spec.search.metric", not isinstance(search, dict) or search.get("metric") in search_metrics(spec.get("train")),
         f"one of {', '.join(search_metrics(spec.get('train')))}"),
        ("spec.search.goal", not isinstance(search, dict) or search.get("goal") in ("minimize", "maximize"), "minimize or maximize"),
        ("spec.search.method", not isinstance(search, dict) or isinstance(search.get("method"), str), "a string"),
        ("spec.train", isinstance(spec.get("train"), dict), "a table"),
        *((f"spec.{key}", isinstance(spec.get(key) or {}, dict), "a table") for key in ("output", "hparams", "cases")),
        ("scales", isinstance(manifest.get("scales", {}), dict), "a table"),
        ("chance", isinstance(manifest.get("chance", {}), dict)
         and all(isinstance(v, (int, float)) for v in manifest.get("chance", {}).values()), "a table of numbers"),
        ("files", _is_names(manifest.get("files", [])), "a list of file names in the folder"),
        ("spec_parts", isinstance(manifest.get("spec_parts", {}), dict), "a table"),
    ]
    for field, ok, allowed in checks:
        if not ok:
            value = manifest
            for key in field.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            return f"{name}: expected {field} in {path} to be {allowed}, got {json.dumps(value)[:60]}", False
    if spec_sha256(spec) == manifest["spec_sha256"]:
        return None
    kept = manifest.get("spec_parts") or {}
    now = spec_parts(spec)
    changed = sorted(k for k in set(kept) | set(now) if kept.get(k) != now.get(k)) if kept else []
    what = (f"spec.{', spec.'.join(changed[:3])}{', ...' if len(changed) > 3 else ''} changed since jaxreg wrote it"
            if changed else "a spec that does not match its sha256 (edited since jaxreg wrote it)")
    return (f"{name}: expected the spec in {path} to match its spec_sha256, got {what}; restore the spec "
            f"(its results were computed with it)", True)


def _is_names(names) -> bool:
    """A manifest's ``files``: names relative to the folder, none leading out of it."""
    return isinstance(names, list) and all(
        isinstance(n, str) and n and not n.startswith("/") and all(p not in ("", ".", "..") for p in n.split("/"))
        for n in names)


def _read_manifest(out: Path) -> object:
    """The parsed manifest of ``out``; :class:`InputError` when it is a link or not JSON."""
    path = Path(out) / MANIFEST
    if path.is_symlink():
        raise InputError(f"{path}: {_LINK}")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"DIR: expected valid JSON in {path}, got a broken file") from None


def _update_manifest(out: Path, change) -> dict | None:
    """Reads the manifest (None if there is none), applies ``change(manifest)`` and writes what it
    returns (nothing when None), all under an exclusive ``flock`` of the folder itself: the runs of
    concurrent shards all keep their entries."""
    handle = os.open(out, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        path = Path(out) / MANIFEST
        manifest = _read_manifest(out) if path.exists() or path.is_symlink() else None
        manifest = change(manifest)
        if manifest is not None:
            atomic_write(path, json.dumps(manifest, indent=2) + "\n")
        return manifest
    finally:
        os.close(handle)


def record_files(out: str | Path, names) -> None:
    """Records ``names`` (relative to ``out``) in its manifest as files jaxreg writes there, before
    they are written: ``--overwrite`` removes those and nothing else. Nothing is recorded where
    ``out`` has no manifest with jaxreg's mark (a comparison's folder, a folder written before the
    record; see :data:`_LEGACY_FILES`)."""
    out = Path(out)
    names = sorted(set(names))
    if not names or not (out / MANIFEST).is_file():
        return

    def change(manifest):
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not _is_names(manifest.get("files")):
            return None
        if set(names) <= set(manifest["files"]):
            return None
        manifest["files"] = sorted(set(manifest["files"]) | set(names))
        return manifest

    try:
        _update_manifest(out, change)
    except InputError:
        pass  # not jaxreg's manifest: nothing to record in it


def _holder(path: Path, probe: int) -> str | None:
    """What a lock file says of the live process holding it (its text, maybe empty), or None when
    no process does (or there is no file); ``probe``: the lock mode that a holder would block."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(handle, probe | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(handle, 200, 0).decode(errors="replace").strip()
    finally:
        os.close(handle)  # releases the probe's lock when it got one
    return None


def _journaled(out: Path) -> tuple[set[str], set[str]]:
    """The names ``CONFIG_SEED`` of the trials the folder's journals hold, and the swept axes of
    their points: read line by line, skipping what is not a record (the files to remove must be
    found even in a damaged journal)."""
    trials, axes = set(), set()
    for path in [out / JOURNAL, *(path for _, path in shard_journals(out))]:
        try:
            data = b"" if path.is_symlink() else path.read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("config_id"), str) and type(record.get("seed")) is int:
                name = f"{record['config_id']}_{record['seed']}"
                if "/" not in name and not name.startswith("."):
                    trials.add(name)
                if isinstance(record.get("point"), dict):
                    axes |= {a for a in record["point"] if isinstance(a, str) and "/" not in a and a}
    return trials, axes


class Store:
    """The files of one results folder."""

    def __init__(self, out: Path, shard: Shard | None = None):
        self.out = Path(out)
        self.shard = shard
        self.manifest_path = self.out / MANIFEST
        # A shard appends to a journal of its own (and keeps its own chunk checkpoint).
        self.journal_path = self.out / (JOURNAL if shard is None else f"trials.{shard.suffix}.jsonl")
        self.checkpoint_name = CHECKPOINT if shard is None else f"checkpoint.{shard.suffix}.npz"
        self.curves_dir = self.out / CURVES

    def prepare(self, spec, *, overwrite: bool, grows=None) -> None:
        """Checks the folder can take this spec, takes its lock, and clears it with ``overwrite``.

        ``grows(previous_resolved_spec)`` says in words where the folder's spec computes trials
        differently from ``spec``, or None when the folder may grow into ``spec`` (more seeds or
        configs); without it only the same spec (by digest) resumes.

        A folder is jaxreg's when it holds a manifest jaxreg wrote (see :func:`load_manifest`);
        any other existing folder must be empty (``--overwrite`` included: jaxreg never touches
        files it did not write). With ``overwrite``, only the files the manifest records (and the
        journaled trials' curves files and TensorBoard runs) are removed. No file or folder jaxreg
        writes here may be a symbolic link. The lock (:meth:`lock`) is held from here until the
        process ends or :meth:`unlock`.
        """
        if self.out.is_symlink() and not self.out.exists():
            raise InputError(f"--out: expected a folder, got {str(self.out)!r} (a symbolic link to "
                             f"{os.readlink(self.out)!r}, which leads nowhere)")
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"--out: expected a folder, got {str(self.out)!r} (a file)")
        self._refuse_links()
        foreign = self.foreign_entries()
        if JOURNAL in foreign and not self.manifest_path.exists():
            # Without the manifest nothing says which spec the journal's trials ran: resuming
            # from it could mix results of another spec under this one's name.
            raise InputError(f"--out: expected a jaxreg results folder with its {MANIFEST}, got "
                             f"{str(self.out)!r} holding {JOURNAL} without one; restore the manifest, "
                             f"or choose another --out")
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise InputError(f"--out: expected a new or empty folder, or a jaxreg results folder (with "
                             f"{MANIFEST}), got {str(self.out)!r} holding {len(foreign)} "
                             f"entr{'y' if len(foreign) == 1 else 'ies'} jaxreg did not write ({shown}); "
                             f"choose another --out")
        if self.manifest_path.exists() and not overwrite:
            self._check_same_spec(spec, grows)
        self.lock()
        try:
            if self.manifest_path.exists():  # again under the lock: another run may have replaced it
                self._own_manifest() if overwrite else self._check_same_spec(spec, grows)
            owned = self._owned()
        except BaseException:
            self.unlock()
            raise
        if self.shard is None:  # shards run side by side: another one's temporaries are in use
            self._remove_stray_temporaries(owned)
        if overwrite:
            self._remove(owned)

    def _refuse_links(self) -> None:
        """An :class:`InputError` naming the first of jaxreg's files or folders here that is a
        symbolic link: jaxreg would write, truncate or delete through it, outside the folder."""
        if not self.out.is_dir():
            return
        names = {LOCK, MANIFEST, JOURNAL, CHECKPOINT, "halving.npz", self.journal_path.name, self.checkpoint_name}
        names |= {p.name for p in self.out.iterdir() if _SHARD_FILE.fullmatch(p.name) or _SHARD_LOCK.fullmatch(p.name)}
        for name in sorted(names):
            if (self.out / name).is_symlink():
                raise InputError(f"{self.out / name}: {_LINK}")
        for name in (CURVES, TENSORBOARD):
            if (self.out / name).is_symlink():
                raise InputError(f"{self.out / name}: expected a folder, got a symbolic link")

    def _own_manifest(self):
        """The folder's manifest when jaxreg wrote it, None when there is none, False when it is
        not jaxreg's (no mark and not jaxreg's shape, or not JSON); raises naming what is wrong
        with a manifest that is jaxreg's but was edited (a field, or its spec against its hash)."""
        if not (self.manifest_path.exists() or self.manifest_path.is_symlink()):
            return None
        try:
            manifest = _read_manifest(self.out)
        except (InputError, OSError):
            if self.manifest_path.is_symlink():
                raise InputError(f"{self.manifest_path}: {_LINK}") from None
            return False
        problem = _manifest_problem(manifest, self.manifest_path, "--out")
        if problem is None:
            return manifest
        if isinstance(manifest, dict) and (manifest.get("format") == FORMAT or problem[1]):
            raise InputError(problem[0])
        return False

    def _owned(self) -> set[str]:
        """The files jaxreg wrote here, relative to the folder: those the manifest records (for
        a manifest written before that record, :data:`_LEGACY_FILES` and the plots of the
        journal's axes), every journaled trial's curves file, and its TensorBoard run if jaxreg
        wrote the ``tensorboard`` folder."""
        manifest = self._own_manifest()
        if not isinstance(manifest, dict):
            return set()
        trials, axes = _journaled(self.out)
        if "files" in manifest:
            names = set(manifest["files"]) | {MANIFEST}
        else:
            names = set(_LEGACY_FILES) | {p.name for p in self.out.iterdir() if _SHARD_FILE.fullmatch(p.name)}
            names |= {f"{metric}_vs_{axis}.png" for metric in ("metric", *METRICS) for axis in axes}
            if (self.out / TENSORBOARD).is_dir():
                names.add(TENSORBOARD)
        names |= {f"{CURVES}/{trial}.npz" for trial in trials}
        if TENSORBOARD in names:
            names |= {f"{TENSORBOARD}/{trial}" for trial in trials} | {f"{TENSORBOARD}/.{trial}.tmp" for trial in trials}
        return names

    def _remove(self, owned: set[str]) -> None:
        """Removes the files of ``owned`` (never a link: jaxreg writes none), and the
        ``tensorboard`` folder once it is empty."""
        for name in sorted(owned):
            path = self.out / name
            if name in (TENSORBOARD, LOCK) or path.is_symlink():
                continue
            if path.is_file():
                path.unlink()
            elif path.is_dir() and name.startswith(TENSORBOARD + "/"):
                shutil.rmtree(path)  # a trial's run, written whole by jaxreg
        board = self.out / TENSORBOARD
        if TENSORBOARD in owned and board.is_dir() and not board.is_symlink() and not any(board.iterdir()):
            board.rmdir()

    def _remove_stray_temporaries(self, owned: set[str]) -> None:
        """Temporary files of atomic writes that a killed run left (``.summary.csv.x1y2z3w4``, for
        a file jaxreg writes here, or for a trial's curves file in ``curves``): under the lock no
        other run is writing, so any of jaxreg's temporaries is stray."""
        if not owned:
            return
        for folder in (self.out, self.curves_dir):
            for path in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
                match = _TEMPORARY.fullmatch(path.name)
                if not match or path.is_symlink() or not path.is_file():
                    continue
                name = match[1] if folder == self.out else f"{CURVES}/{match[1]}"
                if name in owned or (folder == self.curves_dir and _TRIAL_FILE.fullmatch(match[1])):
                    path.unlink()

    def foreign_entries(self) -> list[str]:
        """The entries of an existing folder without jaxreg's manifest (not jaxreg's), sorted; an
        empty ``curves`` folder and the lock files are jaxreg's own leftovers of an interrupted
        start. Raises naming what is wrong with a manifest of jaxreg's that was edited.

        A run starting beside another (the shards of one sweep) can see the folder while the
        other writes its first files: the listing comes first, then a manifest or a live holder of
        the folder's lock (only jaxreg takes it) makes the folder jaxreg's."""
        if not self.out.is_dir():
            return []
        manifest = self._own_manifest()
        if manifest:
            return []
        leftovers = {LOCK} | {path.name for path in self.out.iterdir() if _SHARD_LOCK.fullmatch(path.name)}
        if self.curves_dir.is_dir() and not self.curves_dir.is_symlink() and not any(self.curves_dir.iterdir()):
            leftovers.add(CURVES)
        foreign = sorted(path.name for path in self.out.iterdir() if path.name not in leftovers)
        if manifest is False:
            return foreign
        # Shards hold the folder's lock shared, a run exclusively: only an exclusive probe sees both.
        if foreign and (self._own_manifest() or _holder(self.out / LOCK, fcntl.LOCK_EX) is not None):
            return []
        return foreign

    def _check_same_spec(self, spec, grows=None) -> None:
        manifest = self._own_manifest()
        if not manifest:
            raise InputError(f"--out: expected a jaxreg results folder with its {MANIFEST}, got "
                             f"{str(self.out)!r} holding a {MANIFEST} jaxreg did not write; choose another --out")
        previous = manifest["spec_sha256"]
        if previous == spec.digest:
            return
        if grows is None:
            raise InputError(f"--out: {str(self.out)!r} holds results of a different spec "
                             f"(sha256 {previous[:12]}, this one {spec.digest[:12]}): expected the "
                             f"same spec to resume; use --overwrite to replace them, or another --out")
        why = grows(manifest["spec"])
        if why is not None:
            raise InputError(f"--out: {str(self.out)!r} holds results of a different spec "
                             f"(sha256 {previous[:12]}, this one {spec.digest[:12]}: {why}): expected the "
                             f"same data, model, train and fixed hparams to resume or grow it (more seeds, "
                             f"configs or cases); use --overwrite to replace them, or another --out")

    def lock(self) -> None:
        """Takes the folder's lock, or raises naming the run that holds it.

        ``fcntl.flock`` on ``.jaxreg.lock``: the system releases it when the process ends, even
        on SIGKILL, so a stale lock never blocks; the file records who holds it, for the message.
        A run takes it exclusively; the shards of a sharded run (``--shard I/N``) share it, and
        each also takes its own shard's lock exclusively: shards run side by side, a shard never
        runs twice at once, and no unsharded run overlaps them. Readers (``show``, ``plot``)
        never need it. A lock file that is a symbolic link is refused, never followed.
        """
        if getattr(self, "_lock", None) is not None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        handle = _open(self.out / LOCK, os.O_RDWR | os.O_CREAT, _file_mode())
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if self.shard is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(handle)
            running = self.running_shards()
            if running:
                holder = f"shard{'s' * (len(running) > 1)} {', '.join(running)} of a sharded run"
            raise InputError(f"--out: expected a folder no other jaxreg run is writing, got {str(self.out)!r} "
                             f"(locked by {holder}); wait for that run or choose another --out") from None
        if self.shard is None:
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"jaxreg run, pid {os.getpid()} on {platform.node()}\n".encode(), 0)
            self._lock = (handle,)
            return
        try:
            own = _open(self.out / f".jaxreg.{self.shard.suffix}.lock", os.O_RDWR | os.O_CREAT, _file_mode())
        except BaseException:
            os.close(handle)
            raise
        try:
            fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(own, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(own)
            os.close(handle)
            raise InputError(f"--shard: expected shard {self.shard} to be running nowhere else, got "
                             f"{str(self.out)!r} locked for it by {holder}; wait for that run") from None
        os.ftruncate(own, 0)
        os.pwrite(own, f"jaxreg run --shard {self.shard}, pid {os.getpid()} on {platform.node()}\n".encode(), 0)
        self._lock = (handle, own)

    def running_shards(self) -> list[str]:
        """The shards whose lock a live process holds (``"0/2 (pid 123 on host)"``)."""
        running = []
        for path in sorted(self.out.glob(".jaxreg.shard-*-of-*.lock")):
            match = _SHARD_LOCK.fullmatch(path.name)
            if not match:
                continue
            text = _holder(path, fcntl.LOCK_SH)
            if text is not None:
                pid = re.search(r"pid .*", text)
                running.append(f"{match[1]}/{match[2]}" + (f" ({pid[0]})" if pid else ""))
        return running

    def unlock(self) -> None:
        """Releases the lock (the process ending releases it too)."""
        handles, self._lock = getattr(self, "_lock", None), None
        for handle in reversed(handles or ()):
            fcntl.flock(handle, fcntl.LOCK_UN)
            os.close(handle)

    def _update_manifest(self, change) -> dict:
        """:func:`_update_manifest` of this folder."""
        return _update_manifest(self.out, change)

    def start_run(self, spec, chunk_size: int, chance: dict | None = None, extra: dict | None = None,
                  packages: tuple = (), scales: dict | None = None, devices: Sequence[str] = ()) -> None:
        """Records a run's start in the manifest; ``chance``: ``{case or "": the training
        accuracy of always predicting the most frequent class}`` (see ``report.summary.at_chance``);
        ``extra``: more fields of the run's entry (its shard, the Ray cluster); ``packages``: more
        packages whose versions the numbers depend on (Optuna, for its samplers); ``scales``:
        ``{case or "": {"feature_std": [smallest, largest], "standardized": bool}}``, the raw
        training features' spread (``report.findings`` reads it); ``devices``: the names of the
        devices the run trains on (:func:`jaxreg.sweeps.records.local_devices`).

        The manifest gets jaxreg's mark (:data:`FORMAT`), each spec field's digest
        (:func:`spec_parts`) and the record of the files jaxreg writes here (``files``); a
        manifest written before them gets them now, its files being those of :meth:`_owned` that
        are there."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.curves_dir.is_symlink():
            raise InputError(f"{self.curves_dir}: expected a folder, got a symbolic link")
        self.curves_dir.mkdir(exist_ok=True)
        run = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "versions": versions(packages), "devices": list(devices),
               "chunk_size": chunk_size, "finished": None, **(extra or {})}
        self._run_id = (run["started"], run.get("shard"))
        own = {self.journal_path.name, self.checkpoint_name}

        def change(manifest):
            grew_from = None
            if manifest is not None:
                problem = _manifest_problem(manifest, self.manifest_path, "--out")
                if problem is not None:
                    raise InputError(problem[0])
                if "files" not in manifest:  # written before the record: what of ours is here
                    files = {n for n in self._owned() if "/" not in n and (self.out / n).exists()} - {MANIFEST}
                    manifest = {"format": FORMAT, **manifest, "files": sorted(files)}
                if manifest["spec_sha256"] != spec.digest:  # a grown study: the spec is now this one
                    grew_from = manifest["spec_sha256"]
                    manifest.update(spec_sha256=spec.digest, spec=spec.resolved)
                manifest["spec_parts"] = spec_parts(manifest["spec"])
            else:
                manifest = {"format": FORMAT, "spec_sha256": spec.digest, "spec": spec.resolved,
                            "spec_parts": spec_parts(spec.resolved), "files": [], "runs": []}
            manifest["files"] = sorted(set(manifest["files"]) | own)
            if chance:
                manifest["chance"] = {**manifest.get("chance", {}), **chance}
            if scales:
                manifest["scales"] = {**manifest.get("scales", {}), **scales}
            manifest["runs"].append(dict(run))
            if grew_from is not None:
                manifest["runs"][-1]["grew_from"] = grew_from
            return manifest

        self._manifest = self._update_manifest(change)

    def finish_run(self, trained: int, seconds: float, extra: dict | None = None) -> None:
        update = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "trials_trained": trained, "seconds": round(seconds, 3), **(extra or {})}

        def change(manifest):
            for run in reversed(manifest["runs"]):  # this run's entry: concurrent shards add theirs
                if (run.get("started"), run.get("shard")) == self._run_id and run.get("finished") is None:
                    run.update(update)
                    break
            return manifest

        self._manifest = self._update_manifest(change)

    def read_journal(self) -> dict:
        """The finished trials by ``(config_id, seed)``, shards' journals merged in; cuts a torn
        last line off this run's own journal first (another shard's may be mid-append)."""
        return {(r["config_id"], r["seed"]): r for r in read_journal(self.out, repair=self.journal_path)}

    def drop_unreadable_curves(self, records: dict) -> list[str]:
        """Finds the trials of this run's own journal whose curves file is missing or damaged,
        removes them from ``records``, from the journal (rewritten atomically, under the lock)
        and their damaged files, so that they are trained again; returns the files' names.
        (A shard checks its own trials only: another shard's journal is that shard's to rewrite.)"""
        own = _read_lines(self.journal_path)
        bad = []
        for key in {(r["config_id"], r["seed"]) for r in own} & set(records):
            try:
                load_curves(self.out, *key)
            except (FileNotFoundError, InputError):
                bad.append(key)
        if not bad:
            return []
        bad.sort()
        for key in bad:
            del records[key]
        kept = [r for r in own if (r["config_id"], r["seed"]) in records]
        atomic_write(self.journal_path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
        names = [f"{cid}_{seed}.npz" for cid, seed in bad]
        for name in names:
            (self.curves_dir / name).unlink(missing_ok=True)
        return names

    def merge_shards(self, order: list[tuple[str, int]], records: dict) -> bool:
        """Once every trial of ``order`` (the ``(config_id, seed)`` of the whole sweep, in the
        order one process journals them) is in ``records``, writes the journal as one process
        would have (``trials.jsonl``, atomically) and removes the shards' journals and
        checkpoints; returns whether the journal is now whole and in that order.

        Safe beside running shards: they have nothing left to append, and readers read the
        shards' journals before ``trials.jsonl`` (see :func:`read_journal`), so a reader in
        between still finds every trial.
        """
        if any(key not in records for key in order):
            return False
        shards = shard_journals(self.out)
        wanted = [records[key] for key in order]
        wanted += [r for key, r in records.items() if key not in set(order)]  # trials of a grown spec's past
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in wanted)
        current = self.out / JOURNAL
        if not current.exists() or current.read_text() != text:
            atomic_write(current, text)
        gone = set()
        for shard, path in shards:
            path.unlink(missing_ok=True)
            (self.out / f"checkpoint.{shard.suffix}.npz").unlink(missing_ok=True)
            gone |= {path.name, f"checkpoint.{shard.suffix}.npz"}
        self._remove_shard_locks()

        def change(manifest):
            if not isinstance(manifest, dict) or not set(manifest.get("files") or ()) & gone:
                return None
            manifest["files"] = sorted(set(manifest["files"]) - gone)
            return manifest

        self._update_manifest(change)
        return True

    def _remove_shard_locks(self) -> None:
        """Removes the shards' lock files once their journals are merged: this shard's own (it
        holds it), and each other one no live process holds (taken here first, so that no shard
        starting now is fooled)."""
        for path in sorted(self.out.iterdir()):
            if not _SHARD_LOCK.fullmatch(path.name) or path.is_symlink():
                continue
            if self.shard is not None and path.name == f".jaxreg.{self.shard.suffix}.lock":
                path.unlink(missing_ok=True)
                continue
            try:
                handle = _open(path, os.O_RDONLY | os.O_NONBLOCK)
            except (OSError, InputError):
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
            except BlockingIOError:
                pass  # a live shard holds it
            finally:
                os.close(handle)

    def append(self, records: list[dict]) -> None:
        """Appends records as whole lines: one ``write`` on an ``O_APPEND`` descriptor under an
        exclusive ``flock`` of the journal, then ``fsync``; so writers in several processes
        (shards) never interleave, lose or tear each other's lines."""
        data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records).encode()
        handle = _open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _file_mode())
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
            os.fsync(handle)
        except OSError as error:
            raise _naming(error, self.journal_path) from error
        finally:
            os.close(handle)  # releases the flock

    def write_curves(self, record: dict, arrays: dict) -> None:
        """Writes a trial's curves file, ``curves/CONFIG_SEED.npz`` (``record``'s id and seed),
        atomically: ``arrays`` by name (:func:`jaxreg.sweeps.records.curve_arrays`)."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(self.curves_dir / f"{record['config_id']}_{record['seed']}.npz", buffer.getvalue())


def read_journal(out: str | Path, *, repair: bool | Path = False) -> list[dict]:
    """The journal's records: ``trials.jsonl`` in order, then those of the shards' journals
    (``trials.shard-I-of-N.jsonl``, by shard) not already there, each trial once.

    A last line without its newline is a torn write (or another process mid-append): it is
    ignored, and cut off the file when ``repair`` is True or names that file; a broken line
    elsewhere is an error. Shards' journals are read before ``trials.jsonl``, so a merge
    (:meth:`Store.merge_shards`) between the two reads loses no trial.
    """
    out = Path(out)
    shards = [_read_lines(path, repair=repair is True or repair == path) for _, path in shard_journals(out)]
    records, seen = [], set()
    for record in _read_lines(out / JOURNAL, repair=repair is True or repair == out / JOURNAL) + \
            [r for lines in shards for r in lines]:
        key = (record["config_id"], record["seed"])
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


def _read_lines(path: Path, *, repair: bool = False) -> list[dict]:
    """The records of one journal file (see :func:`read_journal`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:
        handle = _open(path, os.O_WRONLY)
        try:
            os.ftruncate(handle, end)
        finally:
            os.close(handle)
    records = []
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not _is_record(record):
            raise InputError(f"{path}: line {number}: expected a JSON trial record, got {line[:60]!r}")
        records.append(record)
    return records


def _is_record(record) -> bool:
    """A journal line's shape: what every reader of the journal relies on (its ids, every
    metric, the status, the swept point, the case and round, the epochs)."""
    return (isinstance(record, dict) and isinstance(record.get("config_id"), str)
            and isinstance(record.get("seed"), int) and isinstance(record.get("metrics"), dict)
            and all(name in record["metrics"] for name in METRICS)
            and isinstance(record.get("hparams"), dict) and isinstance(record.get("point"), dict)
            and record.get("status") in ("ok", "diverged") and "case" in record
            and isinstance(record.get("round"), int)
            and all(isinstance(record.get(k), int) for k in ("best_epoch", "stopped_epoch", "diverged_epoch")))


def load_manifest(out: str | Path) -> dict:
    """The manifest of a results folder, checked field by field and its spec against its
    ``spec_sha256``: :class:`InputError` naming ``DIR`` and the field otherwise (a manifest
    without jaxreg's mark is read when it has exactly the shape jaxreg wrote before the mark)."""
    path = Path(out) / MANIFEST
    if not path.is_file() or path.is_symlink():
        if path.is_symlink():
            raise InputError(f"{path}: {_LINK}")
        raise InputError(f"DIR: expected a jaxreg results folder with {MANIFEST}, got {str(out)!r}")
    try:
        manifest = _read_manifest(out)
    except OSError as error:
        raise InputError(f"DIR: expected a readable {path}, got {error.strerror}") from None
    problem = _manifest_problem(manifest, path, "DIR")
    if problem is not None:
        raise InputError(problem[0])
    return manifest


def load_curves(out: str | Path, config_id: str, seed: int) -> dict:
    """One trial's curves (and saved params) file; FileNotFoundError if it was never written,
    :class:`InputError` naming the file if it is damaged (it is not skipped: a plot without it
    would silently show fewer seeds)."""
    path = Path(out) / CURVES / f"{config_id}_{seed}.npz"
    try:
        with open(path, "rb") as raw, np.load(raw) as file:
            return {name: file[name] for name in file.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"{path}: expected a curves file written by jaxreg, got a damaged file "
                         f"({type(error).__name__}); rerun the same jaxreg run to train its trial again") from None
