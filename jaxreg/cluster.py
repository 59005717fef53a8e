"""A sweep's chunks as Ray tasks: ``jaxreg run SPEC --ray [ADDRESS]``.

The driver (the ``jaxreg run`` process) keeps everything that decides what is trained: the
journal and its lock, the rounds of a coarse-to-fine search, what is left to resume. Each
chunk of a round (the same chunks, of the same size, as one process trains) is one Ray task,
``jaxreg.sweeps.remote.train_on_worker``: it builds the spec from its resolved form (checked against the driver's
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
