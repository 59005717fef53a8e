"""What a sweep will cost before it runs: trials, compiled programs, memory and time per chunk.

The model is deliberately simple and documented (README, "What a sweep costs"):

- **memory** of a chunk: members x :func:`bytes_per_member` (params and their copies, optimizer
  state, one mini-batch's activations, the evaluation forward pass, the curves);
- **time** of a chunk: ``steps x step_seconds + evaluations x members x flops x examples /
  flop_rate``. ``step_seconds`` is measured (:func:`step_seconds`): the sweep's own training
  step, at the chunk's size, model, batch size and optimizer, timed over two short epochs of
  at most 16 mini-batches (one small program to compile, a few seconds). The evaluations,
  large batched forward passes, are counted in FLOPs (XLA's cost analysis of ``model.apply``)
  at the ``flop_rate`` of a float32 matmul loop measured on this machine (:func:`calibrate`).
  Compilation of the sweep itself is not included (seconds to a minute per program, once:
  the persistent cache serves reruns).

It is a rough estimate, meant to tell seconds from hours and megabytes from gigabytes; the
benchmark ``benchmarks/cost_model.py`` compares it with measured runs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.errors import InputError
from jaxreg.train import METRICS

WARN_SECONDS = 3600.0        # plan warns past an hour of training
WARN_MEMORY_FRACTION = 0.5   # plan warns past half the memory of a device; run refuses past all of it


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


def step_seconds(variant, chunk_size: int, hparams: dict) -> float:
    """Seconds one optimizer step of a chunk of ``chunk_size`` members takes on this machine:
    ``variant``'s training, shortened to 2 epochs of at most 16 mini-batches, timed on its
    second run (the first compiles)."""
    from jaxreg.batch import compiled_segments
    from jaxreg.hparams import make_hparams, stack_hparams
    from jaxreg.train import Data, as_data

    config, data = variant.config, as_data(variant.dataset)
    n_train = len(data.train.y)
    batch = n_train if config.batch_size is None else config.batch_size
    n = min(n_train, 16 * batch)
    short = Data(data.train._replace(x=data.train.x[:n], y=data.train.y[:n]),
                 data.val._replace(x=data.val.x[:1], y=data.val.y[:1]),
                 data.test._replace(x=data.test.x[:1], y=data.test.y[:1]))
    config = dataclasses.replace(config, epochs=2, eval_every=2, start_epoch=min(config.start_epoch, 2))
    segmented = compiled_segments(config)
    hps = stack_hparams([make_hparams(variant.model, **hparams)] * chunk_size)
    seeds, blocks = np.arange(chunk_size, dtype=np.uint32), np.arange(1, dtype=np.int32)
    carry, _ = jax.eval_shape(segmented, seeds, hps, short, variant.init_params, None, blocks)
    carry = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), carry)
    jax.block_until_ready(segmented(seeds, hps, short, variant.init_params, carry, blocks))  # compiles
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        jax.block_until_ready(segmented(seeds, hps, short, variant.init_params, carry, blocks))
        best = min(best, time.perf_counter() - started)
    return best / (2 * -(-n // batch))


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
    seconds_per_chunk: float

    @property
    def seconds(self) -> float:
        return self.chunks * self.seconds_per_chunk


def estimate(variant, trials: int, chunk_size: int, *, timed: bool = True) -> Cost:
    """The cost of training ``trials`` members of ``variant`` in chunks of ``chunk_size``
    (without ``timed``, the memory alone: no calibration, ``seconds_per_chunk`` NaN)."""
    config, data = variant.config, variant.dataset
    if not timed:
        return Cost(variant.cases, trials, chunk_size, -(-trials // chunk_size),
                    chunk_size * bytes_per_member(variant), math.nan)
    n_train = len(data.train.y)
    batch = n_train if config.batch_size is None else config.batch_size
    steps = config.epochs * -(-n_train // batch)
    step = step_seconds(variant, chunk_size, variant.space.first().hparams)
    evaluation = chunk_size * flops_per_example(variant) * config.n_evals * _n_eval(variant) / calibrate()
    return Cost(variant.cases, trials, chunk_size, -(-trials // chunk_size),
                chunk_size * bytes_per_member(variant), steps * step + evaluation)


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
    flop_rate = calibrate()
    limit = device_memory()
    lines = []
    total = rounds * sum(c.seconds for c in costs)
    for cost in costs:
        if (padding := padding_warning(cost.chunk_size, cost.trials)) is not None:
            lines.append(padding)
        name = "" if cost.cases == (None,) else f"[{', '.join(map(str, cost.cases))}] "
        lines.append(f"cost {name}per round: {cost.chunks} chunk{'s' * (cost.chunks > 1)} of {cost.chunk_size} "
                     f"members, about {_size(cost.bytes_per_chunk)} and {_duration(cost.seconds_per_chunk)} each")
    lines.append(f"estimated training time: {_duration(total)} for {rounds} round{'s' * (rounds > 1)}, "
                 f"compilation not included (measured on this machine: a chunk's steps, and "
                 f"{flop_rate / 1e9:.0f} GFLOP/s for evaluations)")
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
