"""Many members, one compiled program: ``train_batch(config, data)`` trains seeds x hparams in chunks.

Host-side only: keys from seeds, fixed-size chunks, sharding over devices, a memo of compiled
programs keyed by the (hashable) config, checks of the hparams against the model before any
compute, and accuracies recovered exactly as counts over ``n``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from jaxreg import penalties, transfer
from jaxreg.errors import InputError, check_positive_int
from jaxreg.hparams import AUGMENTATIONS, DEFAULTS, HParams, check_dtype
from jaxreg.train import Data, Result, TrainConfig, as_data, check_penalties, check_values, make_train

Array = jax.Array
Params = Any


def member_key(seed, base_key: Array | None = None) -> Array:
    """The PRNG key of the member trained with ``seed``: ``fold_in(base_key, seed)``.

    Derived from the seed alone, never from the member's position in a batch, so a
    (hparams, seed) pair gives the same result alone, in any sweep, in any chunk.

    Args:
        seed: an integer seed (or an int array of seeds, under vmap).
        base_key: defaults to ``jax.random.key(0)``.
    """
    base_key = jax.random.key(0) if base_key is None else base_key
    return jax.random.fold_in(base_key, seed)


@functools.lru_cache(maxsize=64)
def compiled_members(config: TrainConfig) -> Callable[..., Result]:
    """``jit(vmap(train))`` for ``config``, memoized: equal configs get the SAME jitted function.

    JAX caches the compiled program of a jitted function per argument shapes, so an equal
    config with data of the same shapes compiles once per process; across processes JAX's
    persistent compilation cache (which the CLI and the tests turn on) serves it from disk.
    """
    train = make_train(config)
    return jax.jit(jax.vmap(lambda seed, hp, data, init: train(member_key(seed), hp, data, init),
                            in_axes=(0, 0, None, None)))


@functools.lru_cache(maxsize=64)
def compiled_segments(config: TrainConfig, own_init: bool = False) -> Callable[..., tuple[Any, Result]]:
    """``jit(vmap(train.segment))`` for ``config``, memoized like :func:`compiled_members`:
    ``(seeds, hparams, data, init_params, carry, blocks) -> (carry, result)``. ``own_init``:
    ``init_params`` has a member axis (each member starts from its own params: a warm start),
    else one ``init_params`` is shared by all; a program of its own, so a sweep without warm
    starts compiles what it always did."""
    train = make_train(config)
    program = jax.jit(jax.vmap(lambda seed, hp, data, init, carry, blocks:
                               train.segment(member_key(seed), hp, data, init, carry, blocks),
                               in_axes=(0, 0, None, 0 if own_init else None, 0, None)))
    # the carry's shapes, from the loop state's start alone (tracing the loop once, to compile it, is enough)
    program.carry_like = lambda seed, hp, data, init: jax.eval_shape(
        jax.vmap(lambda s, h: train.start(member_key(s), h, data, init)), seed, hp)
    return program


# (jitted program, argument types) -> its executable; the oldest is dropped past 64, as
# compiled_segments' memo does, and a program that memo forgot is compiled afresh.
_EXECUTABLES: dict = {}


def _signature(args) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return treedef, tuple((np.shape(x), np.result_type(x), getattr(x, "sharding", None)) for x in leaves)


def compiled_segment(config: TrainConfig, args: tuple, compiling: Callable[[float | None], None] | None = None,
                     own_init: bool = False):
    """The executable of :func:`compiled_segments` ``(config, own_init)`` for arguments like ``args``,
    compiled ahead of time once per process (the persistent compilation cache may serve it
    from disk).

    Compiling ahead of time (``jit(...).lower(...).compile()``) rather than on the first call
    lets the caller say that a compilation is under way and how long it took, apart from the
    training it precedes; the executable is the one the jitted call would have built, so the
    numbers are the same. ``compiling(None)`` is called before a compilation, and
    ``compiling(seconds)`` after it; nothing when the program is already compiled.
    """
    program = compiled_segments(config, own_init) if own_init else compiled_segments(config)
    key = (program, _signature(args))
    executable = _EXECUTABLES.get(key)
    if executable is None:
        if compiling is not None:
            compiling(None)
        start = time.perf_counter()
        executable = program.lower(*args).compile()
        if len(_EXECUTABLES) >= 64:
            del _EXECUTABLES[next(iter(_EXECUTABLES))]
        _EXECUTABLES[key] = executable
        if compiling is not None:
            compiling(time.perf_counter() - start)
    return executable


def segment_blocks(n_evals: int, segments: int = 8) -> int:
    """Evaluation blocks per segment: the largest divisor of ``n_evals`` not above
    ``ceil(n_evals / segments)``, so that every segment runs the same compiled program."""
    target = -(-n_evals // segments)
    return max(k for k in range(1, target + 1) if n_evals % k == 0)


class ChunkState(NamedTuple):
    """A chunk's training between two segments: what a checkpoint keeps.

    ``start`` is the chunk's first member, ``next_block`` the evaluation block to run next,
    ``carry`` the loop state of every member (NumPy arrays, member axis first) and ``curves``
    the metrics of the blocks run so far (``(members, next_block)`` each).
    """

    start: int
    next_block: int
    carry: Any
    curves: dict


class Checkpoint(Protocol):
    """Where :func:`train_batch` keeps a chunk's training between segments (the sweep runner
    keeps it in the results folder).

    ``load(like)`` returns the kept :class:`ChunkState` of the chunk starting at ``like.start``,
    or None; ``like`` holds the shapes and dtypes (``jax.ShapeDtypeStruct``) the state must
    have (the curves' second axis, 0 in ``like``, is the kept state's ``next_block``). ``due()`` says whether to keep the state now (after a segment), ``save(state)``
    keeps it.
    """

    def load(self, like: ChunkState) -> ChunkState | None: ...

    def due(self) -> bool: ...

    def save(self, state: ChunkState) -> None: ...


def check_hparams(config: TrainConfig, hparams: HParams, init_params: Params = None) -> None:
    """Raises :class:`InputError` for hparams the model cannot honour, before any compute.

    A penalty (``l2``, ``l1`` or ``weight_decay`` above 0) whose mask selects no params would
    silently train without it; dropout or DropConnect rates above 0 for a model that takes no
    rates, likewise. Values are checked in the params' dtype too: a learning rate of 1e-50 is 0
    in float32.
    """
    model = config.model
    for name, n, compiled in (("dropout", model.num_dropout, config.dropout),
                              ("dropconnect", model.num_dropconnect, config.dropconnect)):
        rates = np.asarray(getattr(hparams, name))
        if rates.size and np.any(rates > 0):
            if not n:
                raise InputError(f"hparams.{name}: expected 0 for a model that takes no {name} rates "
                                 f"(num_{name} = 0), got {rates.max().item()}")
            if not compiled:
                raise InputError(f"hparams.{name}: expected 0 when TrainConfig.{name} is False, "
                                 f"got {rates.max().item()}")
    for name in AUGMENTATIONS:
        strength = np.asarray(getattr(hparams, name))
        if np.any(strength > 0) and name not in config.augment:
            raise InputError(f"hparams.{name}: expected 0 when TrainConfig.augment does not name {name!r} "
                             f"(augment = {list(config.augment)}), got {strength.max().item()}")
    if not model.batch_norm:
        for name in ("bn_momentum", "bn_epsilon"):
            values = np.asarray(getattr(hparams, name))
            if np.any(values != DEFAULTS[name]):
                raise InputError(f"hparams.{name}: expected the default ({DEFAULTS[name]:g}) for a model without "
                                 f"batch norm, got {values[values != DEFAULTS[name]].ravel()[0].item()}")
    layered = (np.any(np.isfinite(np.asarray(hparams.trainable_layers)))
               or np.any(np.asarray(hparams.layer_lr_decay) != 1))
    fresh = jax.eval_shape(model.init, jax.random.key(0))[0]
    if layered and not config.layerwise:
        raise InputError("hparams.trainable_layers: expected inf (and layer_lr_decay 1) when "
                         "TrainConfig.layerwise is False, got a member that freezes or decays layers")
    if config.layerwise:
        names = model.layer_names()
        transfer.check_layers(fresh, names)
        transfer.check_trainable_layers(hparams.trainable_layers, len(names))
    init_params, _ = transfer.split_init(init_params)
    if init_params is not None and isinstance(init_params, dict) and isinstance(fresh, dict) \
            and set(init_params) < set(fresh):
        transfer.pretrained_layers(init_params, fresh, keep_head=True, where="init_params")
    check_penalties(config, hparams)
    params = transfer.merge_params(fresh, init_params)
    check_dtype(hparams, jax.tree_util.tree_leaves(params)[0].dtype)  # the dtype train casts them to
    asked = [name for name in ("l2", "l1", "weight_decay") if np.any(np.asarray(getattr(hparams, name)) > 0)]
    if asked:
        if not penalties.selects_anything(config.mask(params)):
            raise InputError(f"hparams.{asked[0]}: expected 0 when the penalty mask selects no params "
                             f"(the model has no leaf with two or more dimensions, or penalty_mask "
                             f"selects none), got {np.max(getattr(hparams, asked[0])).item()}")


def exact_accuracies(result: Result, data: Data) -> Result:
    """Accuracies as ``count / n``, correctly rounded (946 / 1000 is 0.946, as Python prints it).

    In the compiled program XLA divides by a constant ``n`` as a multiplication by ``1 / n``,
    which can land one ulp off (0.9460000000000001); an accuracy is a count of whole
    examples, so the count is recovered exactly and divided again on the host.
    """
    sizes = {"train_accuracy": len(data.train.y), "epoch_accuracy": len(data.train.y),
             "val_accuracy": len(data.val.y), "test_accuracy": len(data.test.y)}

    def exact(name, values):
        n = sizes.get(name)
        return values if n is None or n == 0 else (np.round(values * n) / n).astype(values.dtype)

    return result._replace(final={k: exact(k, v) for k, v in result.final.items()},
                           curves={k: exact(k, v) for k, v in result.curves.items()})


def _responsive(fn: Callable, *args):
    """``fn(*args)`` computed to the end, waited for so that a Ctrl-C is not held up.

    A signal's Python handler runs only when the main thread is between bytecodes, not while
    it is blocked on a result inside XLA: a Ctrl-C would wait for the whole segment. JAX
    dispatches the computation asynchronously; a helper thread blocks on the result and sets
    an event, and this thread waits on the event, which a signal interrupts. The wait ends
    the moment the result is ready (polling ``is_ready`` with growing sleeps overshot a short
    segment by up to its own length: a quarter of a 64-member sweep's time). The call itself
    runs in this thread: JAX's thread-local settings, such as ``enable_x64``, apply; a
    compilation still holds the thread until it returns.
    """
    out = fn(*args)
    done = threading.Event()

    def wait():
        try:
            jax.block_until_ready(out)
        except Exception:  # noqa: BLE001 - the caller meets the error when it reads the result
            pass
        finally:
            done.set()

    threading.Thread(target=wait, daemon=True).start()
    while not done.wait(0.25):
        pass
    return out


def _joined(curves: list[dict]) -> dict:
    """Curves of consecutive segments as one dict of NumPy arrays, evaluations along axis 1."""
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts, axis=1), *jax.device_get(curves))


def train_batch(config: TrainConfig, data, chunk_size: int | None = None, *,
                devices=None) -> Callable[..., Result]:
    """One compiled program that trains members in fixed-size chunks: ``run(seeds, hparams, init_params=None)``.

    ``seeds`` is an int array ``(members,)`` and ``hparams`` an :class:`HParams` stacked along the
    same axis (:func:`jaxreg.stack_hparams`); ``init_params``, if given, is shared by all. The
    data enter as an argument. Every chunk has exactly ``chunk_size`` members (the last one is
    padded with copies of its last member, whose results are dropped), so all chunks run the
    same compiled program, and a member's result is bitwise the same whatever chunk, position
    or companions it has. XLA CPU may round a few reductions differently for a different batch
    shape, so results are bitwise comparable between runs with the same ``chunk_size`` (and
    agree to about 1e-6 otherwise). Equal configs share one compiled program
    (:func:`compiled_segments`).

    A chunk trains in segments of evaluation blocks (:func:`segment_blocks`: at most about 8
    per chunk, all of one length), each a call of the same program, so that its training can
    be kept between segments and resumed mid-chunk (``checkpoint``). Segments give bitwise the
    numbers of one uninterrupted ``train`` (``make_train(config).segment``).

    With several devices, each chunk's member axis is sharded over them (``jax.sharding``) and
    the data are replicated; ``chunk_size`` is then rounded up to a multiple of the device count.

    Args:
        config: the :class:`TrainConfig`.
        data: a ``jaxreg.data.Dataset`` or :class:`Data`.
        chunk_size: members per compiled batch; default: all members at once (at least 2, since
            XLA simplifies a batch of one into a differently rounded program).
        devices: the devices to shard members over; default ``jax.local_devices()``.

    Returns:
        ``run(seeds, hparams, init_params=None, *, checkpoint=None) -> Result`` of NumPy arrays
        with a leading member axis. ``checkpoint`` (a :class:`Checkpoint`) keeps each chunk's
        training between segments when it says so, and a chunk resumes from what it kept.
        ``run.chunk_size(members)`` tells the chunk size used for that many members.
        ``progress(done, total)`` is called after each segment with the chunk's evaluations done
        so far (from Python: the program is unchanged), and ``compiling`` as in
        :func:`compiled_segment`.
    """
    data = as_data(data)
    check_values(config, data)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    devices = list(jax.local_devices() if devices is None else devices)
    segmented = compiled_segments(config)
    # Float32 models train with JAX's x64 mode off whatever the process has set (a float64 spec
    # turns it on process-wide): traced with x64 on, the same float32 program rounds otherwise.
    x64 = needs_x64(config.model)
    if len(devices) > 1:
        mesh = jax.sharding.Mesh(np.array(devices), ("members",))
        split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("members"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        on_device = jax.device_put(data, replicated)
    else:
        split = replicated = None
        on_device = data

    def placed(init_params: Params) -> Params:
        return init_params if replicated is None or init_params is None else jax.device_put(init_params, replicated)

    def padded_chunks(size: int, *trees):
        """``(start, trees)`` of each chunk of ``size`` members (the leading axis of every leaf),
        the last padded with copies of the last member, placed on the devices."""
        members = len(jax.tree_util.tree_leaves(trees[0])[0])
        for start in range(0, members, size):
            index = np.minimum(np.arange(start, start + size), members - 1)
            chunk = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[index], trees)
            yield start, chunk if split is None else jax.device_put(chunk, split)

    def size_for(members: int) -> int:
        size = chunk_size or max(members, 2)
        return -(-size // len(devices)) * len(devices)

    def _run(seeds, hparams: HParams, init_params: Params = None, *, checkpoint: Checkpoint | None = None,
            progress: Callable[[int, int], None] | None = None,
            compiling: Callable[[float | None], None] | None = None) -> Result:
        seeds = np.asarray(seeds, np.uint32)
        members = len(seeds)
        given = np.shape(hparams.learning_rate)[0]
        if given != members:
            raise InputError(f"hparams: expected {members} members (one per seed), got {given}")
        check_hparams(config, hparams, init_params)
        init = placed(init_params)
        chunks = [run_chunk(start, *chunk, init, checkpoint, progress, compiling)
                  for start, chunk in padded_chunks(size_for(members), seeds, hparams)]
        # Assembled in NumPy: eager jnp ops would compile once per distinct number of chunks.
        result = jax.tree_util.tree_map(lambda *parts: np.concatenate(parts)[:members], *chunks)
        return exact_accuracies(result, data)

    def segments(executable, chunk: tuple, init, carry, first: int, stop: int, per: int | None = None):
        """The one loop over a chunk's segments: calls of ``executable`` from evaluation block
        ``first`` to ``stop``, ``per`` blocks a call (default :func:`segment_blocks`); yields
        ``(next block, carry, result)`` after each call."""
        per = per or segment_blocks(config.n_evals)
        for block in range(first, stop, per):
            carry, result = _responsive(executable, *chunk, on_device, init, carry,
                                        np.arange(block, block + per, dtype=np.int32))
            yield block + per, carry, result

    def run_chunk(start: int, seeds, hparams: HParams, init, checkpoint: Checkpoint | None,
                  progress, compiling) -> Result:
        """One chunk, segment by segment; from its kept state when ``checkpoint`` has one."""
        n_evals, per = config.n_evals, segment_blocks(config.n_evals)
        carry_like = segmented.carry_like(seeds, hparams, on_device, init)
        zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), carry_like)
        executable = compiled_segment(config, (seeds, hparams, on_device, init,
                                               zeros if split is None else jax.device_put(zeros, split),
                                               np.arange(per, dtype=np.int32)), compiling)
        result_like = executable.out_info[1]
        state = None
        if checkpoint is not None:
            curves_like = {name: jax.ShapeDtypeStruct((len(seeds), 0, *c.shape[2:]), c.dtype)
                           for name, c in result_like.curves.items()}
            state = checkpoint.load(ChunkState(start, None, carry_like, curves_like))
        if state is None or not (0 < state.next_block < n_evals and state.next_block % per == 0):
            state = ChunkState(start, 0, zeros,
                               {name: np.zeros((len(seeds), 0, *c.shape[2:]), c.dtype)
                                for name, c in result_like.curves.items()})
        carry = state.carry if split is None else jax.device_put(state.carry, split)
        curves = [state.curves]
        if progress is not None and state.next_block:
            progress(state.next_block, n_evals)
        for block, carry, result in segments(executable, (seeds, hparams), init, carry, state.next_block, n_evals):
            curves.append(result.curves)
            if progress is not None:
                progress(block, n_evals)
            if checkpoint is not None and block < n_evals and checkpoint.due():
                curves = [_joined(curves)]
                checkpoint.save(ChunkState(start, block, jax.device_get(carry), curves[0]))
        return jax.device_get(result)._replace(curves=_joined(curves))

    def _advance(seeds, hparams: HParams, init_params: Params, carry, blocks: range, size: int, per: int,
                compiling: Callable[[float | None], None] | None = None, own_init: bool = False) -> tuple[Any, Result]:
        """Members from ``carry`` (None: their start) through evaluation blocks ``blocks``, in
        chunks of ``size`` (the last padded, as :func:`train_batch` pads), ``per`` blocks a call.

        Returns ``(carry, result)`` as NumPy arrays with a leading member axis: the loop state
        after the last block (what a later call continues from, for any subset of the members,
        in chunks of any size) and the :class:`Result` as if training ended there, with the
        curves of ``blocks`` only. The members of a chunk are gathered on the host, so members
        that stopped or were pruned need not be trained further: the caller picks the chunk
        size for the members left (one compilation per size; the last chunk is padded, so a
        size compiled already serves fewer members).

        ``own_init``: ``init_params`` has a member axis, each member's own start (a warm start
        from params another member returned); it is chunked and padded with the members.
        """
        seeds = np.asarray(seeds, np.uint32)
        members = len(seeds)
        shared = None if own_init else placed(init_params)
        arange = lambda first: np.arange(first, first + per, dtype=np.int32)
        if carry is None:  # ignored by a first segment (block 0): zeros of its shape
            first = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[0], init_params) if own_init else shared
            carry = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                           _carry_like(seeds, hparams, first, per))
        own = (init_params,) if own_init else ()
        carries, results = [], []
        for _, (chunk_seeds, chunk_hparams, part, *inits) in padded_chunks(-(-size // len(devices)) * len(devices),
                                                                           seeds, hparams, carry, *own):
            chunk, init = (chunk_seeds, chunk_hparams), inits[0] if own_init else shared
            executable = compiled_segment(config, (*chunk, on_device, init, part, arange(0)), compiling, own_init)
            curves = []
            for _, part, result in segments(executable, chunk, init, part, blocks.start, blocks.stop, per):
                curves.append(result.curves)
            carries.append(jax.device_get(part))
            results.append(jax.device_get(result)._replace(curves=_joined(curves)))
        cut = lambda *parts: np.concatenate(parts)[:members]
        return (jax.tree_util.tree_map(cut, *carries),
                exact_accuracies(jax.tree_util.tree_map(cut, *results), data))

    def _shapes(seeds, hparams: HParams, init_params: Params, per: int):
        """Shapes and dtypes (``jax.ShapeDtypeStruct``) of :func:`advance`'s ``(carry, result)``
        for these members, ``per`` blocks a call."""
        return jax.eval_shape(segmented, np.asarray(seeds, np.uint32), hparams, on_device, init_params, None,
                              np.arange(per, dtype=np.int32))

    def _carry_like(seeds, hparams: HParams, init_params: Params, per: int):
        return _shapes(seeds, hparams, init_params, per)[0]

    def in_mode(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with jax.enable_x64(x64):
                return fn(*args, **kwargs)
        return wrapped

    run = in_mode(_run)
    run.chunk_size = size_for
    run.advance, run.shapes = in_mode(_advance), in_mode(_shapes)
    return run


def needs_x64(model) -> bool:
    """Whether ``model``'s params hold 64-bit values (so training needs JAX's x64 mode)."""
    leaves = jax.tree_util.tree_leaves(jax.eval_shape(model.init, jax.random.key(0)))
    return any(np.dtype(leaf.dtype).itemsize == 8 for leaf in leaves)
