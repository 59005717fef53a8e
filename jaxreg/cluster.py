"""A sweep's chunks as Ray tasks: ``jaxreg run SPEC --ray [ADDRESS]``.

The driver (the ``jaxreg run`` process) keeps everything that decides what is trained: the
journal and its lock, the rounds of a coarse-to-fine search, what is left to resume. Each
chunk of a round (the same chunks, of the same size, as one process trains) is one Ray task,
``train_chunk``: it builds the spec from its resolved form (checked against the driver's
digest), trains the chunk with the compiled program it keeps between tasks (one compile per
worker process, served from the shared persistent compilation cache where another worker
compiled it first), writes the trials' curves files into the results folder and returns their
journal lines. The driver appends them as tasks end, so a task that dies (its worker killed,
its node lost) journals nothing; Ray runs it again (``max_retries``) and its curves files are
rewritten with the same bytes. No trial is journaled twice, and each gives bitwise what one
process gives.

Ray is an optional extra (``pip install 'jaxreg[ray]'``). JAX must not be loaded in the driver
before Ray starts its processes (ray issue 44087: forking a process whose JAX threads are
running), so the command line calls :func:`start` before it imports anything of JAX; workers
never preallocate a GPU's memory (``XLA_PYTHON_CLIENT_PREALLOCATE=false``), and a task takes
one GPU when the cluster has GPUs, else one CPU.

The results folder (and any data files) must be reachable at the same path from every node:
on one machine it is; on a cluster, a shared filesystem.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from jaxreg.errors import InputError

RETRIES = 3  # a task whose worker died is run again this many times
# A test hook: when this environment variable names an existing file, the next task to find it
# removes it and kills its own worker after the chunk's first segment (a node lost mid-chunk).
KILL_MARKER = "JAXREG_TEST_KILL_MARKER"


def start(address: str | None) -> dict:
    """Starts a local Ray cluster (``address`` None or ``"local"``) or connects to one; call it
    before JAX is imported. Returns what the manifest records of it."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray: expected Ray installed (pip install 'jaxreg[ray]'), got no module 'ray'") from None
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    for name in ("JAXREG_CACHE_DIR", KILL_MARKER, "JAX_ENABLE_X64", "JAX_PLATFORMS"):
        if name in os.environ:
            env[name] = os.environ[name]
    local = address in (None, "", "local")
    try:
        ray.init(address=None if local else address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": env})
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise InputError(f"--ray: expected a Ray cluster at {address!r} (or none, for a local one), "
                         f"got {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    resources = ray.cluster_resources()
    return {"address": "local" if local else address, "cpus": resources.get("CPU", 0),
            "gpus": resources.get("GPU", 0), "nodes": len(ray.nodes())}


class RayExecutor:
    """Trains a round's chunks as Ray tasks (see the module docstring); for
    :func:`jaxreg.sweeps.run_sweep`'s ``executor``."""

    def __init__(self, cluster: dict, cache_dir: str | None):
        import ray

        self.cluster, self.cache_dir = cluster, cache_dir
        self.use_gpu = cluster.get("gpus", 0) >= 1
        self.task = ray.remote(max_retries=RETRIES, retry_exceptions=[OSError])(train_chunk).options(
            num_cpus=0 if self.use_gpu else 1, num_gpus=1 if self.use_gpu else 0)
        self.workers: dict = {}  # "pid@node" -> {"tasks": [[label, compiles], ...]}
        self.spec = None

    def check(self, spec) -> None:
        self.spec = spec

    def describe(self) -> dict:
        return {"ray": dict(self.cluster)}

    def finish(self) -> dict:
        """The run's entry in the manifest: the cluster, and each worker's tasks with the XLA
        compilations each one ran (a worker compiles in its first task at most)."""
        return {"ray": {**self.cluster, "workers": self.workers}}

    def train_round(self, variant_index: int, variant, chunk_size: int, pending: list, store, records: dict,
                    label: str, progress: bool, save_params: bool, log) -> int:
        import ray

        chunks = [pending[start:start + chunk_size] for start in range(0, len(pending), chunk_size)]
        from jaxreg.sweeps.spec import SEARCHED_LAST

        job = {"resolved": self.spec.resolved, "digest": self.spec.digest, "cwd": os.getcwd(),
               "search_last": [os.getcwd(), *SEARCHED_LAST],
               "out": str(Path(store.out).resolve()), "variant": variant_index, "chunk_size": chunk_size,
               "save_params": save_params, "label": label, "cache_dir": self.cache_dir}
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(chunks), desc=label or "sweep", unit="chunk", file=sys.stderr, dynamic_ncols=True,
                       postfix=f"0/{len(pending)} trials on Ray")
        waiting = {self.task.remote(job, [(cid, config, int(seed)) for cid, config, seed in chunk]): chunk
                   for chunk in chunks}
        done = 0
        try:
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1)
                chunk = waiting.pop(ready[0])
                try:
                    new, worker = ray.get(ready[0])
                except ray.exceptions.RayTaskError as error:
                    cause = error.cause if isinstance(getattr(error, "cause", None), Exception) else None
                    if isinstance(cause, InputError):
                        raise cause from None
                    raise
                store.append(new)
                for record in new:
                    records[(record["config_id"], record["seed"])] = record
                entry = self.workers.setdefault(worker["id"], {"tasks": []})
                entry["tasks"].append([label, worker["compiles"]])
                done += len(chunk)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{done}/{len(pending)} trials on Ray")
        finally:
            if bar is not None:
                bar.close()
            for ref in waiting:
                ray.cancel(ref, force=True)
        return len(pending)


_WORKER: dict = {"specs": {}, "compiles": 0, "listening": False}


def _count_compiles(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _WORKER["compiles"] += 1


def train_chunk(job: dict, chunk: list) -> tuple[list[dict], dict]:
    """One chunk, in a Ray worker: its journal lines (curves files written) and the worker's
    id and the XLA compilations this task ran."""
    import jax
    import numpy as np

    from jaxreg.batch import train_batch
    from jaxreg.hparams import make_hparams, stack_hparams
    from jaxreg.report.store import Store
    from jaxreg.sweeps.build import build_spec
    from jaxreg.sweeps.records import curve_arrays, trial_record
    from jaxreg.sweeps.spec import search_last

    if not _WORKER["listening"]:
        jax.monitoring.register_event_duration_secs_listener(_count_compiles)
        if job["cache_dir"]:
            jax.config.update("jax_compilation_cache_dir", job["cache_dir"])
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        _WORKER["listening"] = True
    compiles_before = _WORKER["compiles"]
    os.chdir(job["cwd"])  # the spec's relative paths (data files, a pretrained folder) are the driver's
    search_last(*job["search_last"])  # and its modules: those beside the spec, searched last
    spec = _WORKER["specs"].get(job["digest"])
    if spec is None:
        spec = build_spec(job["resolved"])
        if spec.digest != job["digest"]:
            raise InputError(f"--ray: expected the worker to build the driver's spec (sha256 {job['digest'][:12]}), "
                             f"got sha256 {spec.digest[:12]}: is jaxreg the same version on every node?")
        _WORKER["specs"][job["digest"]] = spec
    variant = spec.variants[job["variant"]]
    runner = train_batch(variant.config, variant.dataset, job["chunk_size"])
    seeds = np.array([seed for _, _, seed in chunk])
    hparams = stack_hparams(make_hparams(variant.model, **config.hparams) for _, config, _ in chunk)
    marker = os.environ.get(KILL_MARKER)
    dies = bool(marker) and os.path.exists(marker)
    if dies:
        os.unlink(marker)

    def die_mid_chunk(done, total):  # the test hook: die after the chunk's first segment
        if done < total:
            os._exit(1)

    progress = die_mid_chunk if dies else None

    result = runner(seeds, hparams, variant.init_params, progress=progress)
    store = Store(Path(job["out"]))
    new = [trial_record(cid, config, seed, i, result, hparams) for i, (cid, config, seed) in enumerate(chunk)]
    for i, record in enumerate(new):
        store.write_curves(record, curve_arrays(result, i, job["save_params"], variant.config.eval_epochs))
    return new, {"id": f"{os.getpid()}@{platform.node()}", "compiles": _WORKER["compiles"] - compiles_before}
