"""Who writes a results folder: its lock, the shards of a sharded run, and their locks.

``fcntl.flock`` on ``.jaxreg.lock``: the system releases it when the process ends, even on
SIGKILL, so a stale lock never blocks; the file records who holds it, for the message. A run
takes it exclusively; the shards of a sharded run (``--shard I/N``) share it, and each also
takes its own shard's lock (``.jaxreg.shard-I-of-N.lock``) exclusively: shards run side by
side, a shard never runs twice at once, and no unsharded run overlaps them. Readers (``show``,
``plot``) never need it. A lock file that is a symbolic link is refused, never followed.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
from pathlib import Path
from typing import NamedTuple

from jaxreg.errors import InputError
from jaxreg.report.files import _SHARD_LOCK, LOCK, _file_mode, _open


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


def locked_by_a_run(out: Path) -> bool:
    """Whether a live process (a run, or a shard of one) holds the folder's lock."""
    # Shards hold the folder's lock shared, a run exclusively: only an exclusive probe sees both.
    return _holder(out / LOCK, fcntl.LOCK_EX) is not None


def take_lock(out: Path, shard: Shard | None) -> tuple[int, ...]:
    """Takes the folder's lock (and ``shard``'s own), or raises naming the run that holds it;
    returns the open handles that hold them, for :func:`release_lock`."""
    out.mkdir(parents=True, exist_ok=True)
    handle = _open(out / LOCK, os.O_RDWR | os.O_CREAT, _file_mode())
    try:
        fcntl.flock(handle, (fcntl.LOCK_EX if shard is None else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(handle, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(handle)
        running = live_shards(out)
        if running:
            holder = f"shard{'s' * (len(running) > 1)} {', '.join(running)} of a sharded run"
        raise InputError(f"--out: expected a folder no other jaxreg run is writing, got {str(out)!r} "
                         f"(locked by {holder}); wait for that run or choose another --out") from None
    if shard is None:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"jaxreg run, pid {os.getpid()} on {platform.node()}\n".encode(), 0)
        return (handle,)
    try:
        own = _open(out / f".jaxreg.{shard.suffix}.lock", os.O_RDWR | os.O_CREAT, _file_mode())
    except BaseException:
        os.close(handle)
        raise
    try:
        fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(own, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(own)
        os.close(handle)
        raise InputError(f"--shard: expected shard {shard} to be running nowhere else, got "
                         f"{str(out)!r} locked for it by {holder}; wait for that run") from None
    os.ftruncate(own, 0)
    os.pwrite(own, f"jaxreg run --shard {shard}, pid {os.getpid()} on {platform.node()}\n".encode(), 0)
    return (handle, own)


def release_lock(handles: tuple[int, ...]) -> None:
    """Releases the locks :func:`take_lock` took (the process ending releases them too)."""
    for handle in reversed(handles):
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def live_shards(out: Path) -> list[str]:
    """The shards whose lock a live process holds (``"0/2 (pid 123 on host)"``)."""
    running = []
    for path in sorted(out.glob(".jaxreg.shard-*-of-*.lock")):
        match = _SHARD_LOCK.fullmatch(path.name)
        if not match:
            continue
        text = _holder(path, fcntl.LOCK_SH)
        if text is not None:
            pid = re.search(r"pid .*", text)
            running.append(f"{match[1]}/{match[2]}" + (f" ({pid[0]})" if pid else ""))
    return running


def remove_shard_locks(out: Path, shard: Shard | None) -> None:
    """Removes the shards' lock files once their journals are merged: ``shard``'s own (this
    process holds it), and each other one no live process holds (taken here first, so that no
    shard starting now is fooled)."""
    for path in sorted(out.iterdir()):
        if not _SHARD_LOCK.fullmatch(path.name) or path.is_symlink():
            continue
        if shard is not None and path.name == f".jaxreg.{shard.suffix}.lock":
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
