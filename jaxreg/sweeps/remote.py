"""The Ray executor: each chunk of an ask is a Ray task (see :mod:`jaxreg.cluster`, which starts
Ray before JAX loads)."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path

import jax

from jaxreg.batch import train_batch
from jaxreg.cluster import KILL_MARKER, RETRIES
from jaxreg.errors import InputError
from jaxreg.report.store import Store
from jaxreg.sweeps.build import build_spec
from jaxreg.sweeps.executor import Executor, advance_chunk, journal_lines, outcome
from jaxreg.sweeps.spec import SEARCHED_LAST, search_last
from jaxreg.sweeps.strategies import Ask, Told


class RayExecutor(Executor):
    """Trains each chunk of an ask as a Ray task (see the module docstring): a
    :class:`jaxreg.sweeps.executor.Executor` whose chunks run in Ray workers, for
    :func:`jaxreg.sweeps.run_sweep`'s ``executor``."""

    remote = True

    def __init__(self, cluster: dict, cache_dir: str | None):
        import ray

        super().__init__()
        self.cluster, self.cache_dir = cluster, cache_dir
        self.use_gpu = cluster.get("gpus", 0) >= 1
        self.task = ray.remote(max_retries=RETRIES, retry_exceptions=[OSError])(train_on_worker).options(
            num_cpus=0 if self.use_gpu else 1, num_gpus=1 if self.use_gpu else 0)
        self.workers: dict = {}  # "pid@node" -> {"tasks": [[label, compiles], ...]}
        self.spec, self.lines = None, {}

    def check(self, spec) -> None:
        self.spec = spec

    def describe(self) -> dict:
        return {"ray": dict(self.cluster)}

    def finish(self) -> dict:
        """The run's entry in the manifest: the cluster, and each worker's tasks with the XLA
        compilations each one ran (a worker compiles in its first task at most)."""
        return {"ray": {**self.cluster, "workers": self.workers}}

    def resumed(self, ask: Ask) -> Ask:
        return ask  # a task's chunk trains whole: nothing is kept between segments

    def train(self, ask: Ask) -> Iterator[list]:
        import ray

        pending = self._pending(ask)
        if not pending:
            yield []
            return
        chunks = [pending[start:start + ask.chunk_size] for start in range(0, len(pending), ask.chunk_size)]
        job = {"resolved": self.spec.resolved, "digest": self.spec.digest, "cwd": os.getcwd(),
               "search_last": [os.getcwd(), *SEARCHED_LAST], "out": str(Path(self.store.out).resolve()),
               "variant": self.index, "ask": ask._replace(trials=()), "save_params": self.save_params,
               "cache_dir": self.cache_dir}
        self.progress.start(ask.label, len(chunks) * self.variant.config.epochs, len(pending))
        waiting = {self.task.remote(job, chunk): chunk for chunk in chunks}
        done = 0
        try:
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1)
                chunk = waiting.pop(ready[0])
                try:
                    lines, outcomes, worker = ray.get(ready[0])
                except ray.exceptions.RayTaskError as error:
                    cause = error.cause if isinstance(getattr(error, "cause", None), Exception) else None
                    if isinstance(cause, InputError):
                        raise cause from None
                    raise
                self.lines.update(((line["config_id"], line["seed"]), line) for line in lines)
                entry = self.workers.setdefault(worker["id"], {"tasks": []})
                entry["tasks"].append([ask.label, worker["compiles"]])
                done += len(chunk)
                self.progress.advance(done // ask.chunk_size * self.variant.config.epochs,
                                      f"{done}/{len(pending)} trials on Ray")
                yield outcomes
        finally:
            self.progress.close()
            for ref in waiting:
                ray.cancel(ref, force=True)

    def journal(self, told: Told, segment: int) -> int:
        lines = [self.lines.pop(key) for key in told.leaving if key not in self.records]
        if lines:
            self.store.append(lines)
        for line in lines:
            self.records[(line["config_id"], line["seed"])] = line
        self.trained += len(lines)
        self.progress.journaled = len(self.records)
        return len(lines)


_WORKER: dict = {"specs": {}, "compiles": 0, "listening": False}


def _count_compiles(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _WORKER["compiles"] += 1


def train_on_worker(job: dict, chunk: list) -> tuple[list[dict], list, dict]:
    """One chunk, in a Ray worker, trained by :func:`jaxreg.sweeps.executor.advance_chunk`: its
    journal lines (curves files written), its outcomes, and the worker's id and the XLA
    compilations this task ran."""
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
    variant, ask = spec.variants[job["variant"]], job["ask"]
    runner = train_batch(variant.config, variant.dataset, ask.chunk_size)
    marker = os.environ.get(KILL_MARKER)
    dies = bool(marker) and os.path.exists(marker)
    if dies:
        os.unlink(marker)

    def die_mid_chunk(members, blocks_run):  # the test hook: die after the chunk's first segment
        os._exit(1)

    members = advance_chunk(runner, variant, chunk, [None] * len(chunk), variant.config.n_evals, ask,
                            on_segment=die_mid_chunk if dies else None)
    lines = journal_lines(Store(Path(job["out"])), chunk, members, [{}] * len(chunk), variant, job["save_params"])
    return (lines, [outcome(t, m) for t, m in zip(chunk, members)],
            {"id": f"{os.getpid()}@{platform.node()}", "compiles": _WORKER["compiles"] - compiles_before})
