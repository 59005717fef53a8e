"""A results folder's journal, the source of truth, and each journaled trial's curves file.

``trials.jsonl`` is append-only, one JSON line per finished (config, seed); a shard of a sharded
run appends to its own ``trials.shard-I-of-N.jsonl``, and every reader merges them. A trial's
curves file, ``curves/CONFIG_SEED.npz``, is written before its journal line. (The fields of a
line, and what the folder's other files hold: :mod:`jaxreg.report.store`.)
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import METRICS
from jaxreg.report.files import CURVES, JOURNAL, _file_mode, _naming, _open, atomic_write
from jaxreg.report.locks import Shard

_SHARD_JOURNAL = re.compile(r"trials\.shard-(\d+)-of-(\d+)\.jsonl")


def shard_journals(out: str | Path) -> list[tuple[Shard, Path]]:
    """The shards' journals in ``out``, by shard."""
    found = []
    for path in Path(out).iterdir() if Path(out).is_dir() else ():
        match = _SHARD_JOURNAL.fullmatch(path.name)
        if match and path.is_file():
            found.append((Shard(int(match[1]), int(match[2])), path))
    return sorted(found)


def read_journal(out: str | Path, *, repair: bool | Path = False) -> list[dict]:
    """The journal's records: ``trials.jsonl`` in order, then those of the shards' journals
    (``trials.shard-I-of-N.jsonl``, by shard) not already there, each trial once.

    A last line without its newline is a torn write (or another process mid-append): it is
    ignored, and cut off the file when ``repair`` is True or names that file; a broken line
    elsewhere is an error. Shards' journals are read before ``trials.jsonl``, so a merge
    (:meth:`jaxreg.report.store.Store.merge_shards`) between the two reads loses no trial.
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


def _lines(records: list[dict]) -> str:
    """Records as the journal's text: one strict-JSON line each."""
    return "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)


def append_records(path: Path, records: list[dict]) -> None:
    """Appends records to the journal ``path`` as whole lines: one ``write`` on an ``O_APPEND``
    descriptor under an exclusive ``flock`` of the journal, then ``fsync``; so writers in several
    processes (shards) never interleave, lose or tear each other's lines."""
    data = _lines(records).encode()
    handle = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _file_mode())
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view):]
        os.fsync(handle)
    except OSError as error:
        raise _naming(error, path) from error
    finally:
        os.close(handle)  # releases the flock


def journaled(out: Path) -> tuple[set[str], set[str]]:
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


def merge_journals(out: Path, order: list[tuple[str, int]], records: dict) -> set[str] | None:
    """Once every trial of ``order`` (the ``(config_id, seed)`` of the whole sweep, in the order
    one process journals them) is in ``records``, writes the journal as one process would have
    (``trials.jsonl``, atomically) and removes the shards' journals and checkpoints; returns the
    names of the files removed, or None while trials are missing.

    Safe beside running shards: they have nothing left to append, and readers read the shards'
    journals before ``trials.jsonl`` (see :func:`read_journal`), so a reader in between still
    finds every trial.
    """
    if any(key not in records for key in order):
        return None
    shards = shard_journals(out)
    wanted = [records[key] for key in order]
    wanted += [r for key, r in records.items() if key not in set(order)]  # trials of a grown spec's past
    text = _lines(wanted)
    current = out / JOURNAL
    if not current.exists() or current.read_text() != text:
        atomic_write(current, text)
    gone = set()
    for shard, path in shards:
        path.unlink(missing_ok=True)
        (out / f"checkpoint.{shard.suffix}.npz").unlink(missing_ok=True)
        gone |= {path.name, f"checkpoint.{shard.suffix}.npz"}
    return gone


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


def save_curves(out: Path, record: dict, arrays: dict) -> None:
    """Writes a trial's curves file, ``curves/CONFIG_SEED.npz`` (``record``'s id and seed) in
    ``out``, atomically: ``arrays`` by name (:func:`jaxreg.sweeps.records.curve_arrays`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(out / CURVES / f"{record['config_id']}_{record['seed']}.npz", buffer.getvalue())


def drop_unreadable(out: Path, path: Path, records: dict) -> list[str]:
    """Finds the trials of the journal ``path`` (this run's own) whose curves file is missing or
    damaged, removes them from ``records``, from the journal (rewritten atomically, under the
    lock) and their damaged files, so that they are trained again; returns the files' names."""
    own = _read_lines(path)
    bad = []
    for key in {(r["config_id"], r["seed"]) for r in own} & set(records):
        try:
            load_curves(out, *key)
        except (FileNotFoundError, InputError):
            bad.append(key)
    if not bad:
        return []
    bad.sort()
    for key in bad:
        del records[key]
    atomic_write(path, _lines([r for r in own if (r["config_id"], r["seed"]) in records]))
    names = [f"{cid}_{seed}.npz" for cid, seed in bad]
    for name in names:
        (out / CURVES / name).unlink(missing_ok=True)
    return names
