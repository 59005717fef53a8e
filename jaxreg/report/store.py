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
record of its files (:data:`jaxreg.report.files._LEGACY_FILES`). A folder holding any other ``manifest.json`` is not
jaxreg's, ``--overwrite`` included. jaxreg never follows a symbolic link it finds among its own
files or folders here: the folder is refused.

Problems with a folder (not one, another spec's, a broken file) raise
:class:`jaxreg.errors.InputError` naming ``--out`` or ``DIR``.

This module is the facade, :class:`Store`, and re-exports the names callers import from it;
each concern is a module of its own: :mod:`jaxreg.report.files` (names, atomic writes, what
jaxreg owns), :mod:`jaxreg.report.journal` (the journal and the curves files),
:mod:`jaxreg.report.manifest` (the manifest) and :mod:`jaxreg.report.locks` (the lock, shards).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from jaxreg.errors import InputError
from jaxreg.report.files import (CHECKPOINT, CURVES, CURVES_CSV, JOURNAL, LOCK, MANIFEST, SUMMARY, TENSORBOARD,
                                 atomic_write, check_folder, json_value, leftovers, owned_names, present,
                                 refuse_foreign, refuse_links, remove_owned, remove_stray_temporaries)
from jaxreg.report.journal import (append_records, drop_unreadable, journaled, load_curves, merge_journals,
                                   read_journal, save_curves, shard_journals)
from jaxreg.report.locks import (Shard, live_shards, locked_by_a_run, parse_shard, release_lock, remove_shard_locks,
                                 take_lock)
from jaxreg.report.manifest import (FORMAT, check_same_spec, finished, forget_files, load_manifest, new_run,
                                    own_manifest, record_files, run_end, spec_parts, spec_sha256, started,
                                    update_manifest, versions)

__all__ = [
    "CHECKPOINT", "CURVES", "CURVES_CSV", "FORMAT", "JOURNAL", "LOCK", "MANIFEST", "SUMMARY", "TENSORBOARD",
    "Shard", "Store", "atomic_write", "json_value", "load_curves", "load_manifest", "parse_shard",
    "read_journal", "record_files", "shard_journals", "spec_parts", "spec_sha256", "versions",
]


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
        check_folder(self.out)
        refuse_links(self.out, (self.journal_path.name, self.checkpoint_name))
        refuse_foreign(self.out, self.foreign_entries())
        if self.manifest_path.exists() and not overwrite:
            check_same_spec(self.out, spec, grows)
        self.lock()
        try:
            if self.manifest_path.exists():  # again under the lock: another run may have replaced it
                own_manifest(self.out) if overwrite else check_same_spec(self.out, spec, grows)
            owned = self._owned()
        except BaseException:
            self.unlock()
            raise
        if self.shard is None:  # shards run side by side: another one's temporaries are in use
            remove_stray_temporaries(self.out, owned)
        if overwrite:
            remove_owned(self.out, owned)

    def _owned(self) -> set[str]:
        """The files jaxreg wrote here (:func:`jaxreg.report.files.owned_names`); none when the
        folder holds no manifest of jaxreg's."""
        manifest = own_manifest(self.out)
        if not isinstance(manifest, dict):
            return set()
        return owned_names(self.out, manifest, *journaled(self.out))

    def foreign_entries(self) -> list[str]:
        """The entries of an existing folder without jaxreg's manifest (not jaxreg's), sorted; an
        empty ``curves`` folder and the lock files are jaxreg's own leftovers of an interrupted
        start. Raises naming what is wrong with a manifest of jaxreg's that was edited.

        A run starting beside another (the shards of one sweep) can see the folder while the
        other writes its first files: the listing comes first, then a manifest or a live holder of
        the folder's lock (only jaxreg takes it) makes the folder jaxreg's."""
        if not self.out.is_dir():
            return []
        manifest = own_manifest(self.out)
        if manifest:
            return []
        ours = leftovers(self.out)
        foreign = sorted(path.name for path in self.out.iterdir() if path.name not in ours)
        if manifest is False:
            return foreign
        if foreign and (own_manifest(self.out) or locked_by_a_run(self.out)):
            return []
        return foreign

    def lock(self) -> None:
        """Takes the folder's lock, or raises naming the run that holds it: exclusive for a run,
        shared for the shards of a sharded run, each of which also takes its own shard's lock
        (see :mod:`jaxreg.report.locks`)."""
        if getattr(self, "_lock", None) is not None:
            return
        self._lock = take_lock(self.out, self.shard)

    def running_shards(self) -> list[str]:
        """The shards whose lock a live process holds (``"0/2 (pid 123 on host)"``)."""
        return live_shards(self.out)

    def unlock(self) -> None:
        """Releases the lock (the process ending releases it too)."""
        handles, self._lock = getattr(self, "_lock", None), None
        release_lock(handles or ())

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
        run = new_run(chunk_size, extra, packages, devices)
        self._run_id = (run["started"], run.get("shard"))
        change = partial(started, path=self.manifest_path, spec=spec, run=run, chance=chance, scales=scales,
                         own={self.journal_path.name, self.checkpoint_name},
                         present=lambda: present(self.out, self._owned()))
        self._manifest = update_manifest(self.out, change)

    def finish_run(self, trained: int, seconds: float, extra: dict | None = None) -> None:
        """Records the end of the run :meth:`start_run` began in its entry of the manifest."""
        change = partial(finished, run_id=self._run_id, update=run_end(trained, seconds, extra))
        self._manifest = update_manifest(self.out, change)

    def read_journal(self) -> dict:
        """The finished trials by ``(config_id, seed)``, shards' journals merged in; cuts a torn
        last line off this run's own journal first (another shard's may be mid-append)."""
        return {(r["config_id"], r["seed"]): r for r in read_journal(self.out, repair=self.journal_path)}

    def drop_unreadable_curves(self, records: dict) -> list[str]:
        """Finds the trials of this run's own journal whose curves file is missing or damaged,
        removes them from ``records``, from the journal (rewritten atomically, under the lock)
        and their damaged files, so that they are trained again; returns the files' names.
        (A shard checks its own trials only: another shard's journal is that shard's to rewrite.)"""
        return drop_unreadable(self.out, self.journal_path, records)

    def merge_shards(self, order: list[tuple[str, int]], records: dict) -> bool:
        """Once every trial of ``order`` (the ``(config_id, seed)`` of the whole sweep, in the
        order one process journals them) is in ``records``, writes the journal as one process
        would have (``trials.jsonl``, atomically) and removes the shards' journals, checkpoints
        and the locks no live shard holds (:func:`jaxreg.report.journal.merge_journals`); returns
        whether the journal is now whole and in that order."""
        gone = merge_journals(self.out, order, records)
        if gone is None:
            return False
        remove_shard_locks(self.out, self.shard)
        forget_files(self.out, gone)
        return True

    def append(self, records: list[dict]) -> None:
        """Appends records to this run's journal as whole lines (:func:`jaxreg.report.journal.append_records`)."""
        append_records(self.journal_path, records)

    def write_curves(self, record: dict, arrays: dict) -> None:
        """Writes a trial's curves file, ``curves/CONFIG_SEED.npz`` (``record``'s id and seed),
        atomically: ``arrays`` by name (:func:`jaxreg.sweeps.records.curve_arrays`)."""
        save_curves(self.out, record, arrays)
