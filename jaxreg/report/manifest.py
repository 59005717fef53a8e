"""A results folder's manifest: jaxreg's mark, the spec and its digests, the files jaxreg wrote
there, and one entry per run.

Every change goes through :func:`update_manifest`, under an exclusive ``flock`` of the folder
(the runs of concurrent shards all keep their entries), and is written atomically. The fields
and what they are for: :mod:`jaxreg.report.store`.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import platform
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from jaxreg.errors import InputError
from jaxreg.names import search_metrics
from jaxreg.report.files import _LINK, MANIFEST, atomic_write

# The manifest's mark: a manifest without it is jaxreg's only in the shape jaxreg wrote before
# the mark (see _manifest_problem); any other folder holding a manifest.json is not jaxreg's.
FORMAT = "jaxreg-results/1"


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


def read_manifest(out: Path) -> object:
    """The parsed manifest of ``out``; :class:`InputError` when it is a link or not JSON."""
    path = Path(out) / MANIFEST
    if path.is_symlink():
        raise InputError(f"{path}: {_LINK}")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"DIR: expected valid JSON in {path}, got a broken file") from None


def update_manifest(out: Path, change) -> dict | None:
    """Reads the manifest (None if there is none), applies ``change(manifest)`` and writes what it
    returns (nothing when None), all under an exclusive ``flock`` of the folder itself: the runs of
    concurrent shards all keep their entries."""
    handle = os.open(out, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        path = Path(out) / MANIFEST
        manifest = read_manifest(out) if path.exists() or path.is_symlink() else None
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
    record; see :data:`jaxreg.report.files._LEGACY_FILES`)."""
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
        update_manifest(out, change)
    except InputError:
        pass  # not jaxreg's manifest: nothing to record in it




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
        manifest = read_manifest(out)
    except OSError as error:
        raise InputError(f"DIR: expected a readable {path}, got {error.strerror}") from None
    problem = _manifest_problem(manifest, path, "DIR")
    if problem is not None:
        raise InputError(problem[0])
    return manifest




def own_manifest(out: Path):
    """The manifest of ``out`` when jaxreg wrote it, None when there is none, False when it is
    not jaxreg's (no mark and not jaxreg's shape, or not JSON); raises naming what is wrong
    with a manifest that is jaxreg's but was edited (a field, or its spec against its hash)."""
    path = out / MANIFEST
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        manifest = read_manifest(out)
    except (InputError, OSError):
        if path.is_symlink():
            raise InputError(f"{path}: {_LINK}") from None
        return False
    problem = _manifest_problem(manifest, path, "--out")
    if problem is None:
        return manifest
    if isinstance(manifest, dict) and (manifest.get("format") == FORMAT or problem[1]):
        raise InputError(problem[0])
    return False


def check_same_spec(out: Path, spec, grows=None) -> None:
    """An :class:`InputError` naming ``--out`` unless the manifest of ``out`` is jaxreg's and its
    spec is ``spec`` (by digest) or one ``spec`` may grow (``grows``: see
    :meth:`jaxreg.report.store.Store.prepare`)."""
    manifest = own_manifest(out)
    if not manifest:
        raise InputError(f"--out: expected a jaxreg results folder with its {MANIFEST}, got "
                         f"{str(out)!r} holding a {MANIFEST} jaxreg did not write; choose another --out")
    previous = manifest["spec_sha256"]
    if previous == spec.digest:
        return
    if grows is None:
        raise InputError(f"--out: {str(out)!r} holds results of a different spec "
                         f"(sha256 {previous[:12]}, this one {spec.digest[:12]}): expected the "
                         f"same spec to resume; use --overwrite to replace them, or another --out")
    why = grows(manifest["spec"])
    if why is not None:
        raise InputError(f"--out: {str(out)!r} holds results of a different spec "
                         f"(sha256 {previous[:12]}, this one {spec.digest[:12]}: {why}): expected the "
                         f"same data, model, train and fixed hparams to resume or grow it (more seeds, "
                         f"configs or cases); use --overwrite to replace them, or another --out")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_run(chunk_size: int, extra: dict | None, packages: tuple, devices: Iterable[str]) -> dict:
    """A run's entry in the manifest as it starts (see :meth:`jaxreg.report.store.Store.start_run`)."""
    return {"started": _now(), "versions": versions(packages), "devices": list(devices),
            "chunk_size": chunk_size, "finished": None, **(extra or {})}


def started(manifest: dict | None, *, path: Path, spec, run: dict, own: set[str], chance: dict | None,
            scales: dict | None, present: Callable[[], set[str]]) -> dict:
    """``manifest`` (None: there is none yet) with ``run`` added and the spec now ``spec``: a
    :func:`update_manifest` change. ``own``: the files this run writes (its journal and
    checkpoint); ``chance`` and ``scales`` are merged into the manifest's tables of those names;
    ``present()``: the files of jaxreg's already in the folder, the record of a manifest written
    before it (called only then)."""
    grew_from = None
    if manifest is not None:
        problem = _manifest_problem(manifest, path, "--out")
        if problem is not None:
            raise InputError(problem[0])
        if "files" not in manifest:  # written before the record: what of ours is here
            manifest = {"format": FORMAT, **manifest, "files": sorted(present())}
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


def run_end(trained: int, seconds: float, extra: dict | None) -> dict:
    """What a run's entry gets as it finishes (see :meth:`jaxreg.report.store.Store.finish_run`)."""
    return {"finished": _now(), "trials_trained": trained, "seconds": round(seconds, 3), **(extra or {})}


def finished(manifest: dict, *, run_id: tuple, update: dict) -> dict:
    """``manifest`` with ``update`` in the entry of the run ``run_id`` (its start time and shard)
    that has not finished: a :func:`update_manifest` change."""
    for run in reversed(manifest["runs"]):  # this run's entry: concurrent shards add theirs
        if (run.get("started"), run.get("shard")) == run_id and run.get("finished") is None:
            run.update(update)
            break
    return manifest


def forget_files(out: Path, gone: set[str]) -> None:
    """Removes ``gone`` (files jaxreg removed) from the manifest's record of its files."""

    def change(manifest):
        if not isinstance(manifest, dict) or not set(manifest.get("files") or ()) & gone:
            return None
        manifest["files"] = sorted(set(manifest["files"]) - gone)
        return manifest

    update_manifest(out, change)
