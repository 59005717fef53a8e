"""Work kept inside a chunk: training in segments, a chunk's state kept and resumed bitwise."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg.report import store

ROOT = Path(__file__).resolve().parents[2]


def test_segment_blocks_divides_the_evaluations_into_at_most_about_eight():
    table = {1: 1, 2: 1, 7: 1, 8: 1, 9: 1, 12: 2, 16: 2, 40: 5, 100: 10, 200: 25, 1000: 125, 97: 1}
    assert {n: jaxreg.segment_blocks(n) for n in table} == table
    for n in range(1, 300):
        k, most = jaxreg.segment_blocks(n), -(-n // 8)
        assert n % k == 0 and k <= most and not any(n % d == 0 for d in range(k + 1, most + 1))


def data_and_configs():
    ds = jaxreg.data.load("blobs", key=3)
    net = jaxreg.mlp((2, 8, 1))
    config = jaxreg.TrainConfig(model=net, loss="bce", epochs=12, eval_every=1, batch_size=25, shuffle=True)
    values = [dict(learning_rate=0.3, dropout=0.2, patience=2, restore_best=1.0),
              dict(learning_rate=1e30),  # diverges in its first epoch: frozen in every kept state
              dict(learning_rate=0.1, l2=1e-2, lr_decay=0.1, min_delta=0.01, patience=3),
              dict(learning_rate=0.05, l1=1e-3)]
    return ds, config, jaxreg.stack_hparams([jaxreg.make_hparams(net, **v) for v in values])


def whole_program(config, hps, data, seeds):
    train = jaxreg.make_train(config)
    run = jax.jit(jax.vmap(lambda s, hp, d: train(jaxreg.member_key(s), hp, d), in_axes=(0, 0, None)))
    return jaxreg.batch.exact_accuracies(jax.device_get(run(seeds, hps, jaxreg.as_data(data))), jaxreg.as_data(data))


def assert_bitwise(a, b):
    same = jax.tree_util.tree_map(lambda x, y: np.array_equal(x, y, equal_nan=True)
                                  and np.asarray(x).dtype == np.asarray(y).dtype, a, b)
    assert all(jax.tree_util.tree_leaves(same))


def test_training_in_segments_is_bitwise_one_uninterrupted_train():
    ds, config, hps = data_and_configs()
    seeds = np.arange(4, dtype=np.uint32)
    result = jaxreg.train_batch(config, ds)(seeds, hps)
    assert_bitwise(result, whole_program(config, hps, ds, seeds))
    assert result.diverged.tolist() == [False, True, False, False]
    assert result.curves["val_loss"].shape == (4, 12)


class MemoryCheckpoint:
    """Keeps every saved state; ``stop_after`` saves, it interrupts training as a signal would."""

    def __init__(self, kept=None, stop_after=None):
        self.kept, self.stop_after, self.saves, self.likes = kept, stop_after, [], []

    def load(self, like):
        self.likes.append(like)
        return self.kept

    def due(self):
        return True

    def save(self, state):
        self.saves.append(jax.tree_util.tree_map(np.copy, state))
        if self.stop_after is not None and len(self.saves) >= self.stop_after:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_a_chunk_resumed_from_its_kept_state_gives_bitwise_the_uninterrupted_result(stop_after):
    ds, config, hps = data_and_configs()
    seeds = np.arange(4, dtype=np.uint32)
    run = jaxreg.train_batch(config, ds)
    uninterrupted = run(seeds, hps)
    first = MemoryCheckpoint(stop_after=stop_after)
    with pytest.raises(KeyboardInterrupt):
        run(seeds, hps, checkpoint=first)
    kept, at = first.saves[-1], 2 * stop_after  # 12 evaluations: 6 segments of 2
    assert jaxreg.segment_blocks(12) == 2 and kept.start == 0 and kept.next_block == at
    assert kept.curves["val_loss"].shape == (4, at)
    np.testing.assert_array_equal(kept.curves["val_loss"], uninterrupted.curves["val_loss"][:, :at])
    second = MemoryCheckpoint(kept=kept)
    resumed = run(seeds, hps, checkpoint=second)
    assert_bitwise(resumed, uninterrupted)
    # Only the segments after the kept one ran (and were saved) again; the last is never saved.
    assert [s.next_block for s in second.saves] == list(range(at + 2, 12, 2))
    like = second.likes[0]
    assert like.start == 0 and like.next_block is None
    assert jax.tree_util.tree_structure(like.carry) == jax.tree_util.tree_structure(kept.carry)


def test_a_kept_state_that_does_not_fit_is_ignored_and_the_chunk_trains_from_its_start():
    ds, config, hps = data_and_configs()
    seeds = np.arange(4, dtype=np.uint32)
    run = jaxreg.train_batch(config, ds)
    uninterrupted = run(seeds, hps)
    first = MemoryCheckpoint(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(seeds, hps, checkpoint=first)
    for bad in (12, 0, 14, 3):  # the end, the start, past the end, inside a segment: not between segments
        assert_bitwise(run(seeds, hps, checkpoint=MemoryCheckpoint(kept=first.saves[-1]._replace(next_block=bad))),
                       uninterrupted)


# --- a sweep killed at random moments ----------------------------------------------------------

KILL_SPEC = """name = "killed"
[data]
dataset = "blobs"
[model]
hidden = [96, 96]
[train]
loss = "bce"
epochs = 200
eval_every = 5
batch_size = 1
[hparams]
learning_rate = { values = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0] }
patience = 6
[search]
seeds = 2
chunk_size = 8
[output]
plots = false
"""


def start(spec: Path, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jaxreg", "run", str(spec), "--out", str(out),
                             "--checkpoint-every", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def journal_and_curves(out: Path):
    records = sorted(store.read_journal(out), key=lambda r: (r["config_id"], r["seed"]))
    curves = {p.name: p.read_bytes() for p in sorted((out / store.CURVES).iterdir())}
    return json.dumps(records, sort_keys=True), curves


def _checkpoint_stamp(out: Path):
    try:
        return (out / store.CHECKPOINT).stat().st_mtime_ns
    except FileNotFoundError:
        return None


def kill_at(run: subprocess.Popen, out: Path, moment: tuple, rng: random.Random) -> None:
    """SIGKILLs ``run`` at ``moment``: ``("starting", s)`` s seconds after its start (imports,
    compilation), or ``("training", s)`` s seconds after it next keeps a segment (mid-chunk)."""
    kind, delay = moment
    if kind == "training":
        stamp, deadline = _checkpoint_stamp(out), time.monotonic() + 120
        while _checkpoint_stamp(out) in (stamp, None) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    time.sleep(delay)
    run.send_signal(signal.SIGKILL)


def test_a_sweep_killed_at_ten_random_moments_keeps_every_trial_once_and_every_kept_segment(tmp_path):
    spec = tmp_path / "killed.toml"
    spec.write_text(KILL_SPEC)
    reference = start(spec, tmp_path / "reference", dict(os.environ))
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    expected = journal_and_curves(tmp_path / "reference")

    # 3 chunks of 8 members, 8 segments each, kept after every segment. The killed runs share a
    # compilation cache of their own: until one gets through compiling, each compiles afresh.
    env = dict(os.environ, JAXREG_CACHE_DIR=str(tmp_path / "xla"))
    out, rng = tmp_path / "out", random.Random(20261202)
    moments = [("starting", rng.uniform(0.0, 2.5)) if rng.random() < 0.3 else ("training", rng.uniform(0.0, 0.3))
               for _ in range(10)]
    assert {kind for kind, _ in moments} == {"starting", "training"}
    resumed_at = []
    for moment in [*moments, None]:
        before = store.read_journal(out) if (out / store.JOURNAL).exists() else []
        kept_block = None
        if (out / store.CHECKPOINT).exists():
            with np.load(out / store.CHECKPOINT) as file:
                kept_block = int(file["blocks"].max())
        run = start(spec, out, env)
        if moment is not None:
            kill_at(run, out, moment, rng)
        _, err = run.communicate(timeout=300)
        assert run.returncode == (0 if moment is None else -signal.SIGKILL), err
        after = store.read_journal(out) if (out / store.JOURNAL).exists() else []
        # Nothing journaled before this start was trained again: the journal only grew, by new trials.
        assert after[:len(before)] == before
        assert len({(r["config_id"], r["seed"]) for r in after}) == len(after)
        if kept_block is not None and "resumed a chunk" in err:  # the kept segments were not run again
            assert f"resumed a chunk of 8 trials from checkpoint.npz at evaluation {kept_block} of 40" in err
            resumed_at.append(kept_block)
    assert journal_and_curves(out) == expected  # every trial once, bitwise the uninterrupted run's
    assert not (out / store.CHECKPOINT).exists()
    assert len(resumed_at) >= 3, resumed_at


def test_given_initial_params_train_in_segments_as_in_one_program():
    ds, config, hps = data_and_configs()
    seeds = np.arange(4, dtype=np.uint32)
    init = jax.tree_util.tree_map(lambda p: np.full(p.shape, 0.05, p.dtype),
                                  config.model.init(jax.random.key(9))[0])
    train = jaxreg.make_train(config)
    whole = jax.jit(jax.vmap(lambda s, hp, d, i: train(jaxreg.member_key(s), hp, d, i), in_axes=(0, 0, None, None)))
    data = jaxreg.as_data(ds)
    expected = jaxreg.batch.exact_accuracies(jax.device_get(whole(seeds, hps, data, init)), data)
    given = jaxreg.train_batch(config, ds)(seeds, hps, init)
    assert_bitwise(given, expected)
    assert not np.array_equal(given.params["dense_0"]["w"], jaxreg.train_batch(config, ds)(seeds, hps).params["dense_0"]["w"])


def test_a_signal_interrupts_the_wait_for_a_long_segment_at_once():
    """The wait for a compiled segment is interruptible: a signal's handler runs within a
    fraction of a second, not when the segment ends (a Ctrl-C must not wait out a long chunk);
    and a short segment's result is returned as soon as it is ready."""
    import signal
    import time

    import jax
    import jax.numpy as jnp

    from jaxreg.batch import _responsive

    @jax.jit
    def slow(x):  # seconds of work on this machine
        return jax.lax.fori_loop(0, 2000, lambda i, x: jnp.tanh(x @ x.T) / 512.0, x)

    x = jnp.ones((512, 512))
    compiled = slow.lower(x).compile()  # compiling is not what is measured

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Stop):
            _responsive(compiled, x)
        assert time.perf_counter() - start < 1.5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    quick = jax.jit(lambda x: x + 1)
    jax.block_until_ready(quick(x))
    # The best of three: a test of the wait, not of the scheduler, while the interrupted segment
    # still runs on XLA's threads and the suite's other workers share the cores.
    took = []
    for _ in range(3):
        start = time.perf_counter()
        assert float(_responsive(quick, x)[0, 0]) == 2.0
        took.append(time.perf_counter() - start)
    assert min(took) < 0.2, took
