"""A chunk's training kept in its results folder while it runs: ``checkpoint.npz``.

The file is one of the results folder's (:mod:`jaxreg.report.store` names it and removes it
with ``--overwrite``); what it holds is the engine's loop state (:class:`jaxreg.ChunkState`),
saved and restored through its pytree structure, so it lives beside the sweep that trains.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import jax
import numpy as np

from jaxreg.batch import ChunkState
from jaxreg.report.store import CHECKPOINT, atomic_write

__all__ = ["ChunkCheckpoint"]


class ChunkCheckpoint:
    """Keeps the training of the chunk in progress in ``checkpoint.npz`` (a
    :class:`jaxreg.Checkpoint` for :func:`jaxreg.train_batch`).

    ``tag`` names what the chunk trains (its trials, chunk size and spec): a kept state with
    another tag, other shapes, or a damaged file is not used, and the chunk trains from its
    start. ``seconds``: the least time between two saves (0: after every segment).
    ``on_load(next_block, why_not)`` is called once load has looked (both None: nothing kept).
    """

    def __init__(self, out: Path, tag: str, seconds: float, on_load=None, name: str = CHECKPOINT):
        self.path, self.tag, self.seconds, self.on_load = Path(out) / name, tag, seconds, on_load
        self._saved = time.monotonic()
        self.resumed = None  # (next_block or None, why not or None) once load has looked
        self.saved = None    # the next_block of the last state saved or loaded

    def load(self, like):
        state, why = self._read(like)
        self.resumed = (state.next_block if state is not None else None, why)
        if state is not None:
            self.saved = state.next_block
        if self.on_load is not None:
            self.on_load(*self.resumed)
        return state

    def _read(self, like):
        if not self.path.exists():
            return None, None
        leaves_like, treedef = jax.tree_util.tree_flatten(like.carry)
        try:
            with open(self.path, "rb") as raw, np.load(raw) as file:
                if str(file["tag"]) != self.tag or int(file["start"]) != like.start:
                    return None, "it holds another chunk"
                next_block = int(file["next_block"])
                leaves = [file[f"carry/{i}"] for i in range(len(leaves_like))]
                curves = {name: file[f"curve/{name}"] for name in like.curves}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None, "it is damaged"
        wanted = [(tuple(l.shape), np.dtype(l.dtype)) for l in leaves_like]
        wanted += [((c.shape[0], next_block, *c.shape[2:]), np.dtype(c.dtype)) for c in like.curves.values()]
        if [(a.shape, a.dtype) for a in leaves + list(curves.values())] != wanted:
            return None, "its arrays have other shapes"
        return ChunkState(like.start, next_block, treedef.unflatten(leaves), curves), None

    def due(self) -> bool:
        return time.monotonic() - self._saved >= self.seconds

    def save(self, state) -> None:
        arrays = {"tag": np.asarray(self.tag), "start": np.asarray(state.start),
                  "next_block": np.asarray(state.next_block)}
        arrays.update({f"carry/{i}": np.asarray(leaf)
                       for i, leaf in enumerate(jax.tree_util.tree_leaves(state.carry))})
        arrays.update({f"curve/{name}": np.asarray(curve) for name, curve in state.curves.items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(self.path, buffer.getvalue())
        self._saved = time.monotonic()
        self.saved = state.next_block

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
