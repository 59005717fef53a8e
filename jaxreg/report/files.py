"""A results folder's files as files: their names, atomic writes, opening without following a
link, and which of them jaxreg owns (what ``--overwrite`` removes, what a stray temporary is).

The rules of ownership here take what they need as values (the folder's manifest, the trials
its journals name): :class:`jaxreg.report.store.Store` reads those through
:mod:`jaxreg.report.manifest` and :mod:`jaxreg.report.journal`, which write through this module.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import METRICS

MANIFEST, JOURNAL, SUMMARY, CURVES = "manifest.json", "trials.jsonl", "summary.csv", "curves"
CURVES_CSV, LOCK, CHECKPOINT = "curves.csv", ".jaxreg.lock", "checkpoint.npz"
TENSORBOARD = "tensorboard"  # a folder of one TensorBoard run per trial (report.tensorboard)
# What jaxreg wrote into a folder whose manifest predates the record of its files ("files"):
# these exact names (no suffix variants), the shards' files, the plots by their exact names
# (metric_vs_AXIS.png and METRIC_vs_AXIS.png for the journal's swept axes), and every
# journaled trial's curves file and TensorBoard run. "halving.npz" (the halving checkpoint of
# versions before the study loop's checkpoint.npz) stays: folders those versions wrote still
# hold it, and --overwrite must still remove it.
_LEGACY_FILES = frozenset({MANIFEST, JOURNAL, SUMMARY, CURVES_CSV, "trials.csv", CHECKPOINT, "halving.npz",
                           "curves.png", "test_curves.png", "generalization_gap.png", "best_so_far.png",
                           "search_space.png", "rungs.png", "augmentation.png", "histograms.png",
                           "weights_hist.png", "decision_boundary.png"})
_SHARD_FILE = re.compile(r"(trials\.shard-\d+-of-\d+\.jsonl|checkpoint\.shard-\d+-of-\d+\.npz)")
_SHARD_LOCK = re.compile(r"\.jaxreg\.shard-(\d+)-of-(\d+)\.lock")
# An atomic write's temporary: "." + the file's name + "." + tempfile.mkstemp's 8 characters.
_TEMPORARY = re.compile(r"\.(.+)\.[a-z0-9_]{8}")
_TRIAL_FILE = re.compile(r"[0-9a-f]{10}_\d+\.npz")  # a curves file: run.config_id + "_" + seed
_LINK = "expected a regular file, got a symbolic link"


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


def check_folder(out: Path) -> None:
    """An :class:`InputError` naming ``--out`` when it is a link that leads nowhere, or a file."""
    if out.is_symlink() and not out.exists():
        raise InputError(f"--out: expected a folder, got {str(out)!r} (a symbolic link to "
                         f"{os.readlink(out)!r}, which leads nowhere)")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: expected a folder, got {str(out)!r} (a file)")


def refuse_links(out: Path, own: Iterable[str]) -> None:
    """An :class:`InputError` naming the first of jaxreg's files or folders in ``out`` that is a
    symbolic link (``own``: this run's journal and checkpoint, beside the folder's fixed names):
    jaxreg would write, truncate or delete through it, outside the folder."""
    if not out.is_dir():
        return
    names = {LOCK, MANIFEST, JOURNAL, CHECKPOINT, "halving.npz", *own}
    names |= {p.name for p in out.iterdir() if _SHARD_FILE.fullmatch(p.name) or _SHARD_LOCK.fullmatch(p.name)}
    for name in sorted(names):
        if (out / name).is_symlink():
            raise InputError(f"{out / name}: {_LINK}")
    for name in (CURVES, TENSORBOARD):
        if (out / name).is_symlink():
            raise InputError(f"{out / name}: expected a folder, got a symbolic link")


def refuse_foreign(out: Path, foreign: list[str]) -> None:
    """An :class:`InputError` naming ``--out`` when it holds entries jaxreg did not write
    (``foreign``, from :meth:`jaxreg.report.store.Store.foreign_entries`)."""
    if JOURNAL in foreign and not (out / MANIFEST).exists():
        # Without the manifest nothing says which spec the journal's trials ran: resuming
        # from it could mix results of another spec under this one's name.
        raise InputError(f"--out: expected a jaxreg results folder with its {MANIFEST}, got "
                         f"{str(out)!r} holding {JOURNAL} without one; restore the manifest, "
                         f"or choose another --out")
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InputError(f"--out: expected a new or empty folder, or a jaxreg results folder (with "
                         f"{MANIFEST}), got {str(out)!r} holding {len(foreign)} "
                         f"entr{'y' if len(foreign) == 1 else 'ies'} jaxreg did not write ({shown}); "
                         f"choose another --out")


def leftovers(out: Path) -> set[str]:
    """What an interrupted start leaves in a folder before its manifest: the lock files and an
    empty ``curves`` folder (jaxreg's own, so they do not make a folder foreign)."""
    found = {LOCK} | {path.name for path in out.iterdir() if _SHARD_LOCK.fullmatch(path.name)}
    curves = out / CURVES
    if curves.is_dir() and not curves.is_symlink() and not any(curves.iterdir()):
        found.add(CURVES)
    return found


def owned_names(out: Path, manifest: dict, trials: set[str], axes: set[str]) -> set[str]:
    """The files jaxreg wrote in ``out``, relative to it: those ``manifest`` (jaxreg's) records
    (for a manifest written before that record, :data:`_LEGACY_FILES` and the plots of the
    journal's ``axes``), every journaled trial's curves file (``trials``: their ``CONFIG_SEED``),
    and its TensorBoard run if jaxreg wrote the ``tensorboard`` folder."""
    if "files" in manifest:
        names = set(manifest["files"]) | {MANIFEST}
    else:
        names = set(_LEGACY_FILES) | {p.name for p in out.iterdir() if _SHARD_FILE.fullmatch(p.name)}
        names |= {f"{metric}_vs_{axis}.png" for metric in ("metric", *METRICS) for axis in axes}
        if (out / TENSORBOARD).is_dir():
            names.add(TENSORBOARD)
    names |= {f"{CURVES}/{trial}.npz" for trial in trials}
    if TENSORBOARD in names:
        names |= {f"{TENSORBOARD}/{trial}" for trial in trials} | {f"{TENSORBOARD}/.{trial}.tmp" for trial in trials}
    return names


def remove_owned(out: Path, owned: set[str]) -> None:
    """Removes the files of ``owned`` (never a link: jaxreg writes none), and the
    ``tensorboard`` folder once it is empty."""
    for name in sorted(owned):
        path = out / name
        if name in (TENSORBOARD, LOCK) or path.is_symlink():
            continue
        if path.is_file():
            path.unlink()
        elif path.is_dir() and name.startswith(TENSORBOARD + "/"):
            shutil.rmtree(path)  # a trial's run, written whole by jaxreg
    board = out / TENSORBOARD
    if TENSORBOARD in owned and board.is_dir() and not board.is_symlink() and not any(board.iterdir()):
        board.rmdir()


def remove_stray_temporaries(out: Path, owned: set[str]) -> None:
    """Temporary files of atomic writes that a killed run left (``.summary.csv.x1y2z3w4``, for
    a file jaxreg writes here, or for a trial's curves file in ``curves``): under the lock no
    other run is writing, so any of jaxreg's temporaries is stray."""
    if not owned:
        return
    curves = out / CURVES
    for folder in (out, curves):
        for path in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
            match = _TEMPORARY.fullmatch(path.name)
            if not match or path.is_symlink() or not path.is_file():
                continue
            name = match[1] if folder == out else f"{CURVES}/{match[1]}"
            if name in owned or (folder == curves and _TRIAL_FILE.fullmatch(match[1])):
                path.unlink()


def present(out: Path, owned: set[str]) -> set[str]:
    """The files of ``owned`` at the top of ``out`` that are there, the manifest aside: the record
    of its files that a manifest written before that record gets."""
    return {n for n in owned if "/" not in n and (out / n).exists()} - {MANIFEST}
