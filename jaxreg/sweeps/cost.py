"""What a sweep will cost before it runs: trials, compiled programs, memory, compilation and time.

The model is deliberately simple and documented (docs/scale-out.md, "What a sweep costs"):

- **memory** of a chunk: members x :func:`bytes_per_member` (params and their copies, optimizer
  state, one mini-batch's activations, the evaluation forward pass, the curves);
- **time** of a chunk: its training, plus once per program its compilation. Both come from
  :func:`timings`, this machine's record of earlier runs of the same program (same shapes,
  static settings and chunk size: what ``jaxreg run`` measured and kept beside the compilation
  cache), when there is one; otherwise training is counted in FLOPs (:func:`flops_per_example`,
  XLA's cost analysis of ``model.apply``, no compilation): ``steps x members x (3 x forward
  FLOPs x batch + PARAM_FLOPS x params) + evaluations x members x forward FLOPs x examples``,
  at the ``flop_rate`` of a float32 matmul loop measured on this machine (:func:`calibrate`),
  and compilation is the median of the compilations this machine recorded (or
  ``COMPILE_GUESS_SECONDS`` before any). ``plan`` never compiles the sweep's program, so it
  answers in about the time JAX takes to load.

It is a rough estimate, meant to tell seconds from hours and megabytes from gigabytes; the
benchmark ``benchmarks/cost_model.py`` compares it with measured runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import METRICS

WARN_SECONDS = 3600.0        # plan warns past an hour of training
WARN_MEMORY_FRACTION = 0.5   # plan warns past half the memory of a device; run refuses past all of it
PARAM_FLOPS = 20             # per param and step: gradient accumulation, the optimizer's update, penalties
COMPILE_GUESS_SECONDS = 10.0  # a compilation's time before this machine recorded any (a 2-core CPU's, rounded)
# What a member-epoch's FLOPs cost in halving's choice of chunk sizes (padding_budget): a fixed
# rate, not this machine's, so that a spec picks the same sizes (and numbers) everywhere. About
# what batched training reached on the 2-core CPU: 11 GFLOP/s for digits on a 64-unit MLP, 17
# for a 512-512 one (benchmarks/halving_compile.py); an accelerator pads more cheaply.
PADDING_FLOP_RATE = 1e10
TIMINGS = "jaxreg-timings.json"  # in the compilation cache folder: measured compilations and epochs


def bytes_per_member(variant) -> int:
    """An estimate of the device memory one member of a chunk needs while training.

    Params, their best copy, gradients, updates and optimizer state; the activations of one
    mini-batch (every intermediate of one example's forward pass, traced once, times the batch,
    times 3 for the backward pass and dropout masks); the evaluation forward pass over every
    evaluated split; the shuffled copy of the training set; the curves and the epoch losses of an
    evaluation block. ``variant`` is a :class:`jaxreg.sweeps.Variant` (or a spec: its first
    variant).
    """
    config, model, data = variant.config, variant.model, variant.dataset
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    itemsize = np.dtype(jax.tree_util.tree_leaves(params)[0].dtype).itemsize
    n_params = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
    states = {"sgd": 0, "momentum": 1, "ema_momentum": 1, "adam": 2, "adamw": 2}[config.optimizer]
    x1 = jax.ShapeDtypeStruct((1, *data.train.x.shape[1:]), np.float32)
    jaxpr = jax.make_jaxpr(lambda p, s, x: model.apply(p, s, x))(params, state, x1)
    per_example = sum(math.prod(v.aval.shape) for eqn in jaxpr.eqns for v in eqn.outvars
                      if hasattr(v.aval, "shape"))
    n_train = len(data.train.y)
    batch = n_train if config.batch_size is None else config.batch_size
    features = math.prod(data.train.x.shape[1:])
    elements = (n_params * (6 + states) + 3 * batch * per_example + _n_eval(variant) * per_example
                + (n_train * features if config.shuffle else 0) + config.n_evals * len(METRICS)
                + 2 * config.eval_every)  # each epoch's loss and accuracy, until the evaluation
    return int(elements * itemsize)


def _n_eval(variant) -> int:
    data = variant.dataset
    return len(data.train.y) + len(data.val.y) + (len(data.test.y) if variant.config.eval_test else 0)


def flops_per_example(variant) -> float:
    """Forward FLOPs of ``model.apply`` on one example, from XLA's cost analysis (no compile)."""
    model, data = variant.model, variant.dataset
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    x1 = jax.ShapeDtypeStruct((1, *data.train.x.shape[1:]), np.float32)
    analysis = jax.jit(lambda p, s, x: model.apply(p, s, x)[0]).lower(params, state, x1).cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


@functools.lru_cache(maxsize=1)
def calibrate() -> float:
    """This machine's FLOP/s on a float32 matmul loop (measured once per process, ~0.1 s)."""
    n, reps = 256, 64
    a = jnp.ones((n, n), jnp.float32) / n

    @jax.jit
    def matmuls(x):
        return jax.lax.fori_loop(0, reps, lambda _, y: jnp.tanh(y @ a), x)

    matmuls(a).block_until_ready()
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        matmuls(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * reps / best


AUTO_BUDGET_CPU_MB = 1024


def memory_budget_mb(value) -> float:
    """``search.memory_budget_mb`` in MB: a number as given; ``"auto"``: 1024 on a CPU (where
    a larger chunk buys little), half the device's memory on an accelerator."""
    if value != "auto":
        return value
    device = jax.local_devices()[0]
    if device.platform == "cpu":
        return AUTO_BUDGET_CPU_MB
    return (device_memory() or 2 * AUTO_BUDGET_CPU_MB * 2**20) / 2 / 2**20


def device_memory() -> int | None:
    """Bytes of memory of the first device: its allocator's limit, or the host's RAM on a CPU."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


@dataclasses.dataclass(frozen=True)
class Cost:
    """The estimated cost of one variant (one compiled program) of a sweep, per round."""

    cases: tuple
    trials: int             # configs x seeds in a round
    chunk_size: int
    chunks: int
    bytes_per_chunk: int
    seconds_per_chunk: float  # training alone
    compile_seconds: float = math.nan  # once per program (the persistent cache serves a rerun)
    measured: bool = False  # training timed by an earlier run of the same program here, not counted in FLOPs
    compile_measured: bool = False  # compilation timed by an earlier run of the same program here

    @property
    def seconds(self) -> float:
        return self.chunks * self.seconds_per_chunk


def estimate(variant, trials: int, chunk_size: int, *, timed: bool = True) -> Cost:
    """The cost of training ``trials`` members of ``variant`` in chunks of ``chunk_size``
    (without ``timed``, the memory alone: no calibration, the seconds NaN)."""
    config, data = variant.config, variant.dataset
    chunks, memory = -(-trials // chunk_size), chunk_size * bytes_per_member(variant)
    if not timed:
        return Cost(variant.cases, trials, chunk_size, chunks, memory, math.nan)
    known = timings()
    kept = known.get(program_key(variant, chunk_size), {})
    compiles = [entry["compile_seconds"] for entry in known.values() if "compile_seconds" in entry]
    compile_seconds = kept.get("compile_seconds", statistics.median(compiles) if compiles else COMPILE_GUESS_SECONDS)
    if "epoch_seconds" in kept:
        seconds = config.epochs * kept["epoch_seconds"]
    else:
        seconds = chunk_size * config.epochs * member_epoch_flops(variant) / calibrate()
    return Cost(variant.cases, trials, chunk_size, chunks, memory, seconds, compile_seconds,
                measured="epoch_seconds" in kept, compile_measured="compile_seconds" in kept)


def member_epoch_flops(variant) -> float:
    """FLOPs of one member's epoch: its steps (``3 x forward FLOPs x batch + PARAM_FLOPS x
    params`` each) and its share of the evaluations (forward passes over the evaluated splits,
    every ``eval_every`` epochs)."""
    config, data = variant.config, variant.dataset
    n_train = len(data.train.y)
    batch = n_train if config.batch_size is None else config.batch_size
    forward = flops_per_example(variant)
    step = 3 * forward * min(batch, n_train) + PARAM_FLOPS * n_params(variant)
    return -(-n_train // batch) * step + forward * _n_eval(variant) / config.eval_every


def padding_budget(variant) -> float:
    """Member-epochs of training that cost about what one compilation does:
    ``COMPILE_GUESS_SECONDS x PADDING_FLOP_RATE / member_epoch_flops``. Successive halving pads
    a rung's chunks up to a size already compiled while the copies cost less
    (:func:`jaxreg.sweeps.halving.rung_size`). Fixed rates, never this machine's measurements:
    the chunk sizes, and so the numbers, follow from the spec alone."""
    return COMPILE_GUESS_SECONDS * PADDING_FLOP_RATE / member_epoch_flops(variant)


def n_params(variant) -> int:
    """The number of params of ``variant``'s model (from shapes: nothing is initialized)."""
    params, _ = jax.eval_shape(variant.model.init, jax.random.key(0))
    return sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))


def cache_folder() -> Path | None:
    """The persistent compilation cache's folder: ``$JAXREG_CACHE_DIR``, else
    ``~/.cache/jaxreg/xla``; None for ``JAXREG_CACHE_DIR=off``."""
    where = os.environ.get("JAXREG_CACHE_DIR") or str(Path.home() / ".cache" / "jaxreg" / "xla")
    return None if where.lower() in ("off", "0", "none") else Path(where)


def program_key(variant, chunk_size: int) -> str:
    """What makes a training program cost what it does: its device, the data's and params'
    shapes and dtypes, the static settings but the epoch count (times are kept per epoch), and
    the chunk size."""
    config, data = variant.config, variant.dataset
    params, _ = jax.eval_shape(variant.model.init, jax.random.key(0))
    device = jax.local_devices()[0]
    settings = {field.name: repr(getattr(config, field.name)) for field in dataclasses.fields(config)
                if field.name not in ("model", "penalty_mask", "epochs", "start_epoch")}
    text = json.dumps([device.platform, device.device_kind, jax.__version__, chunk_size, settings,
                       [(split.x.shape, str(split.x.dtype), split.y.shape) for split in (data.train, data.val, data.test)],
                       [(p.shape, str(p.dtype)) for p in jax.tree_util.tree_leaves(params)]], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def timings() -> dict:
    """This machine's measured programs: ``program_key -> {"compile_seconds", "epoch_seconds"}``
    ({} without a cache folder, or when the file is unreadable: it is only a cache)."""
    folder = cache_folder()
    try:
        known = json.loads((folder / TIMINGS).read_text()) if folder is not None else {}
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


_CACHE_HITS = [0]  # programs the persistent compilation cache served in this process
jax.monitoring.register_event_listener(
    lambda event, **_: _CACHE_HITS.__setitem__(0, _CACHE_HITS[0] + (event == "/jax/compilation_cache/cache_hits")))


def cache_hits() -> int:
    """How many compilations the persistent cache served so far in this process (a load from
    disk is not a compilation: its time is not recorded as one)."""
    return _CACHE_HITS[0]


def record_timing(variant, chunk_size: int, **seconds: float) -> None:
    """Keeps what a run measured of a program (``compile_seconds``, ``epoch_seconds``) for
    :func:`estimate`; written atomically, and silently skipped when it cannot be."""
    folder = cache_folder()
    if folder is None or not all(math.isfinite(v) and v >= 0 for v in seconds.values()):
        return
    known = timings()
    key = program_key(variant, chunk_size)
    known[key] = {**known.get(key, {}), **{name: round(v, 4) for name, v in seconds.items()}}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".timings-", delete=False) as f:
            json.dump(known, f, indent=0, sort_keys=True)
        os.replace(f.name, folder / TIMINGS)
    except OSError:
        pass


def padding_warning(chunk_size: int, trials: int) -> str | None:
    """A warning when an explicit ``search.chunk_size`` pads every chunk of a round."""
    if chunk_size <= max(trials, 2):
        return None
    return (f"warning: search.chunk_size {chunk_size} is larger than a round's {trials} trials: each chunk "
            f"trains {chunk_size - trials} padding copies, about {chunk_size / max(trials, 2):.1f}x the time of "
            f"chunk_size = {max(trials, 2)} (kept as given: results are bitwise comparable between equal chunk sizes)")


def check_fits(costs: list[Cost], where: str = "search.chunk_size") -> None:
    """Refuses a sweep whose chunk cannot fit in the device's memory, before anything runs."""
    limit = device_memory()
    for cost in costs:
        if limit is not None and cost.bytes_per_chunk > limit:
            per_member = cost.bytes_per_chunk / cost.chunk_size
            raise InputError(f"{where}: expected a chunk that fits in the device's {_size(limit)}, got "
                             f"{cost.chunk_size} members of about {_size(per_member)} each "
                             f"({_size(cost.bytes_per_chunk)}); lower search.chunk_size, "
                             f"train.epochs / eval_every (the curves), or the model")


def describe(costs: list[Cost], rounds: int) -> list[str]:
    """Lines for ``jaxreg plan``: the estimate and its warnings."""
    flop_rate = calibrate() if not all(c.measured for c in costs) else math.nan
    limit = device_memory()
    lines = []
    total = rounds * sum(c.seconds for c in costs)
    for cost in costs:
        if (padding := padding_warning(cost.chunk_size, cost.trials)) is not None:
            lines.append(padding)
        name = "" if cost.cases == (None,) else f"[{', '.join(map(str, cost.cases))}] "
        lines.append(f"cost {name}per round: {cost.chunks} chunk{'s' * (cost.chunks > 1)} of {cost.chunk_size} "
                     f"members, about {_size(cost.bytes_per_chunk)} and {_duration(cost.seconds_per_chunk)} each")
    compiling = sum(c.compile_seconds for c in costs)
    training = ("as measured by an earlier run of the same program" if all(c.measured for c in costs) else
                f"counted in FLOPs, at this machine's {flop_rate / 1e9:.0f} GFLOP/s"
                + (", or as measured by an earlier run" if any(c.measured for c in costs) else ""))
    compiled = ("as measured" if all(c.compile_measured for c in costs) else
                "typical of the compilations recorded on this machine" if any(
                    "compile_seconds" in entry for entry in timings().values()) else
                "a guess: no compilation recorded on this machine yet")
    lines.append(f"estimated time: {_duration(total + compiling)}: {_duration(total)} training for {rounds} "
                 f"round{'s' * (rounds > 1)} ({training}) + {_duration(compiling)} compiling {len(costs)} "
                 f"program{'s' * (len(costs) > 1)} ({compiled}; 0 if the compilation cache holds "
                 f"{'them' if len(costs) > 1 else 'it'})")
    if total > WARN_SECONDS:
        lines.append(f"warning: more than {_duration(WARN_SECONDS)} of training; fewer configs, seeds or "
                     f"epochs, or a larger device, would help")
    biggest = max(c.bytes_per_chunk for c in costs)
    if limit is not None and biggest > WARN_MEMORY_FRACTION * limit:
        verdict = "does not fit: run will refuse it" if biggest > limit else "is more than half of it"
        lines.append(f"warning: a chunk needs about {_size(biggest)} of the device's {_size(limit)}: {verdict}")
    return lines


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
