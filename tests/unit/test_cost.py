"""jaxreg.sweeps.cost: the cost model's terms against hand counts, timings kept and read back,
the program key, and the words of plan's lines, warnings and refusals."""

from __future__ import annotations

import json
import math

import pytest

from jaxreg.errors import InputError
from jaxreg.names import METRICS
from jaxreg.sweeps import build_spec, cost
from jaxreg.sweeps.cost import Cost

from test_sweep import tiny  # digits, 60 training examples, hidden [8], adam, 4 epochs, eval_every 2, batch 20

N_TRAIN, N_VAL, N_TEST, FEATURES, CLASSES = 60, 359, 359, 64, 10


def variant(**tables):
    return build_spec(tiny(**tables)).variants[0]


@pytest.fixture(scope="module")
def base():
    return variant()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty timings folder of this test's own, and a fixed FLOP rate (no calibration)."""
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "xla"))
    monkeypatch.setattr(cost, "calibrate", lambda: 2e9)
    return tmp_path / "xla"


def dense_flops(sizes) -> int:
    """A dense layer's matmul (a multiply and an add per weight) and its bias add."""
    return sum(2 * n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


# --- FLOPs and memory -----------------------------------------------------------------------------

@pytest.mark.parametrize("hidden, activation", [([8], "relu"), ([16, 8], "tanh"), ([], "relu"), ([32, 16], "relu")])
def test_flops_per_example_is_the_dense_layers_hand_count(hidden, activation):
    """XLA counts 2 x in x out per matmul and one per bias add; an activation adds at most one
    FLOP per hidden unit (relu's max; tanh is a transcendental, counted apart)."""
    v = variant(model={"hidden": hidden, "activation": activation})
    sizes = [FEATURES, *hidden, CLASSES]
    flops, hand = cost.flops_per_example(v), dense_flops(sizes)
    assert hand <= flops <= hand + sum(hidden), (flops, hand)
    assert flops == pytest.approx(hand, rel=0.02)
    assert cost.n_params(v) == sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


def test_member_epoch_flops_and_padding_budget_by_hand(base):
    forward, params = cost.flops_per_example(base), cost.n_params(base)
    assert params == 64 * 8 + 8 + 8 * 10 + 10
    # 60 examples in batches of 20: 3 steps of 3 x forward x 20 + 20 x params; an evaluation of
    # the 3 splits (eval_test is on) every 2 epochs.
    expected = 3 * (3 * forward * 20 + 20 * params) + forward * (N_TRAIN + N_VAL + N_TEST) / 2
    assert cost.member_epoch_flops(base) == pytest.approx(expected, rel=1e-12)
    assert cost.padding_budget(base) == pytest.approx(10.0 * 1e10 / expected, rel=1e-12)
    # Batches of 25: 3 steps (the last of 10 counted as full), no test split, every epoch.
    other = variant(train={"batch_size": 25, "eval_test": False, "eval_every": 1})
    expected = 3 * (3 * forward * 25 + 20 * params) + forward * (N_TRAIN + N_VAL)
    assert cost.member_epoch_flops(other) == pytest.approx(expected, rel=1e-12)
    full = variant(train={"batch_size": "full"})  # one step of the whole training set
    expected = 3 * forward * N_TRAIN + 20 * params + forward * (N_TRAIN + N_VAL + N_TEST) / 2
    assert cost.member_epoch_flops(full) == pytest.approx(expected, rel=1e-12)


def test_bytes_per_member_grows_by_each_documented_term(base):
    """Each term of the docstring, isolated by changing one setting (float32: 4 bytes an element)."""
    params, b = cost.n_params(base), cost.bytes_per_member(base)
    assert b % 4 == 0
    # Optimizer states: adam keeps two per param, momentum one, sgd none.
    sgd = cost.bytes_per_member(variant(train={"optimizer": "sgd"}))
    assert b - sgd == 4 * 2 * params
    assert cost.bytes_per_member(variant(train={"optimizer": "momentum"})) - sgd == 4 * params
    # A mini-batch's activations: 3 x batch x (elements of one example's forward pass); the
    # evaluation's forward pass over each evaluated split: the same elements per example.
    per_example_batch = (cost.bytes_per_member(variant(train={"batch_size": 40})) - b) / (4 * 3 * 20)
    per_example_eval = (b - cost.bytes_per_member(variant(train={"eval_test": False}))) / (4 * N_TEST)
    assert per_example_batch == per_example_eval == int(per_example_batch)
    assert per_example_batch >= 2 * (8 + CLASSES) + 8  # each layer's product and bias add, the relu
    # The shuffled copy of the training set.
    assert b - cost.bytes_per_member(variant(train={"shuffle": False})) == 4 * N_TRAIN * FEATURES
    # The curves (an entry per metric and evaluation) and the epoch losses of an evaluation block.
    longer = variant(train={"epochs": 8})  # 4 evaluations, not 2
    assert cost.bytes_per_member(longer) - b == 4 * 2 * len(METRICS)
    sparser = variant(train={"epochs": 8, "eval_every": 4})  # 2 evaluations, blocks of 4 epochs
    assert cost.bytes_per_member(sparser) - cost.bytes_per_member(longer) == 4 * (-2 * len(METRICS) + 2 * 2)
    # Everything else is params and their copies: 6 + 2 (adam) arrays of them.
    rest = b - 4 * (3 * 20 * per_example_batch + (N_TRAIN + N_VAL + N_TEST) * per_example_batch
                    + N_TRAIN * FEATURES + 2 * len(METRICS) + 2 * 2)
    assert rest == 4 * 8 * params


# --- estimates and the timings kept for them ----------------------------------------------------

def test_estimate_counts_flops_when_no_run_was_timed(base, cache):
    estimate = cost.estimate(base, trials=10, chunk_size=4)
    assert (estimate.cases, estimate.trials, estimate.chunk_size, estimate.chunks) == ((None,), 10, 4, 3)
    assert estimate.bytes_per_chunk == 4 * cost.bytes_per_member(base)
    assert estimate.seconds_per_chunk == pytest.approx(4 * 4 * cost.member_epoch_flops(base) / 2e9, rel=1e-12)
    assert estimate.seconds == 3 * estimate.seconds_per_chunk
    assert estimate.compile_seconds == cost.COMPILE_GUESS_SECONDS
    assert not estimate.measured and not estimate.compile_measured
    memory = cost.estimate(base, trials=8, chunk_size=4, timed=False)
    assert memory.chunks == 2 and memory.bytes_per_chunk == estimate.bytes_per_chunk
    assert math.isnan(memory.seconds_per_chunk) and math.isnan(memory.compile_seconds)


def test_estimate_uses_the_timings_a_run_recorded(base, cache):
    cost.record_timing(base, 4, compile_seconds=3.25, epoch_seconds=0.123456)
    kept = json.loads((cache / cost.TIMINGS).read_text())
    assert kept == {cost.program_key(base, 4): {"compile_seconds": 3.25, "epoch_seconds": 0.1235}}
    estimate = cost.estimate(base, trials=10, chunk_size=4)
    assert estimate.measured and estimate.compile_measured
    assert estimate.seconds_per_chunk == pytest.approx(4 * 0.1235)  # epochs x epoch_seconds
    assert estimate.seconds == pytest.approx(3 * 4 * 0.1235) and estimate.compile_seconds == 3.25
    # Another chunk size is another program: counted in FLOPs, compiled in this machine's typical time.
    cost.record_timing(base, 6, compile_seconds=9.0)
    cost.record_timing(base, 7, compile_seconds=1.0)
    other = cost.estimate(base, trials=10, chunk_size=8)
    assert not other.measured and not other.compile_measured
    assert other.compile_seconds == 3.25  # the median of 3.25, 9 and 1
    assert other.seconds_per_chunk == pytest.approx(8 * 4 * cost.member_epoch_flops(base) / 2e9, rel=1e-12)
    # A later measurement of the same program updates it, keeping what it does not replace.
    cost.record_timing(base, 4, epoch_seconds=0.5)
    assert cost.timings()[cost.program_key(base, 4)] == {"compile_seconds": 3.25, "epoch_seconds": 0.5}
    # What cannot be a time is not kept.
    for bad in (math.nan, math.inf, -1.0):
        cost.record_timing(base, 4, epoch_seconds=bad)
    assert cost.timings()[cost.program_key(base, 4)]["epoch_seconds"] == 0.5
    assert [p.name for p in cache.iterdir()] == [cost.TIMINGS]  # written atomically: no temporary left


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "", "\x00\xff"])
def test_a_corrupt_timings_file_counts_as_none_and_is_replaced(base, cache, text):
    cache.mkdir(parents=True)
    (cache / cost.TIMINGS).write_text(text, errors="surrogateescape")
    assert cost.timings() == {}
    assert not cost.estimate(base, trials=2, chunk_size=2).measured
    cost.record_timing(base, 2, epoch_seconds=0.25)
    assert cost.timings() == {cost.program_key(base, 2): {"epoch_seconds": 0.25}}


def test_cache_folder_and_off(base, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "here"))
    assert cost.cache_folder() == tmp_path / "here"
    monkeypatch.delenv("JAXREG_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cost.cache_folder() == tmp_path / "home" / ".cache" / "jaxreg" / "xla"
    for off in ("off", "OFF", "0", "none", "None"):
        monkeypatch.setenv("JAXREG_CACHE_DIR", off)
        assert cost.cache_folder() is None
        cost.record_timing(base, 4, epoch_seconds=1.0)  # nowhere to keep it: skipped
        assert cost.timings() == {}
    assert not (tmp_path / "home").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_program_key_follows_what_the_program_is_made_of(base):
    key = cost.program_key(base, 4)
    assert len(key) == 16 and int(key, 16) >= 0
    assert cost.program_key(variant(), 4) == key  # an equal spec, built again
    # Times are kept per epoch: the epoch count (and the first epoch that counts) is no part of it.
    assert cost.program_key(variant(train={"epochs": 8}), 4) == key
    assert cost.program_key(variant(train={"start_epoch": 2}), 4) == key
    assert cost.program_key(variant(hparams={"learning_rate": 0.5}), 4) == key  # hparams are arguments
    changed = [cost.program_key(base, 8),
               cost.program_key(variant(model={"hidden": [16]}), 4),
               cost.program_key(variant(train={"batch_size": 30}), 4),
               cost.program_key(variant(train={"optimizer": "sgd"}), 4),
               cost.program_key(variant(train={"eval_every": 4}), 4),
               cost.program_key(variant(data={"n_train": 80}), 4)]
    assert len({key, *changed}) == 1 + len(changed)


# --- plan's words -------------------------------------------------------------------------------

def test_padding_warning():
    assert cost.padding_warning(4, 4) is None and cost.padding_warning(4, 10) is None
    assert cost.padding_warning(2, 1) is None  # a chunk is never smaller than 2
    assert cost.padding_warning(10, 3) == (
        "warning: search.chunk_size 10 is larger than a round's 3 trials: each chunk trains 7 padding copies, "
        "about 3.3x the time of chunk_size = 3 (kept as given: results are bitwise comparable between equal "
        "chunk sizes)")
    assert cost.padding_warning(5, 1) == (
        "warning: search.chunk_size 5 is larger than a round's 1 trials: each chunk trains 4 padding copies, "
        "about 2.5x the time of chunk_size = 2 (kept as given: results are bitwise comparable between equal "
        "chunk sizes)")


def test_check_fits_refuses_a_chunk_larger_than_the_device(monkeypatch):
    costs = [Cost((None,), 8, 4, 2, 2000, 1.0), Cost(("wide",), 8, 4, 2, 3 * 2**30, 1.0)]
    monkeypatch.setattr(cost, "device_memory", lambda: 2**31)
    with pytest.raises(InputError) as info:
        cost.check_fits(costs)
    assert str(info.value) == (
        "search.chunk_size: expected a chunk that fits in the device's 2.0 GB, got 4 members of about 768.0 MB "
        "each (3.0 GB); lower search.chunk_size, train.epochs / eval_every (the curves), or the model")
    assert info.value.field == "search.chunk_size"
    with pytest.raises(InputError, match=r"^--chunk-size: expected a chunk that fits"):
        cost.check_fits(costs, where="--chunk-size")
    cost.check_fits(costs[:1])
    cost.check_fits([Cost((None,), 8, 4, 2, 2**31, 1.0)])  # exactly the device's memory fits
    monkeypatch.setattr(cost, "device_memory", lambda: None)  # unknown: nothing to refuse
    cost.check_fits(costs)


def test_describe_lines(cache, monkeypatch):
    monkeypatch.setattr(cost, "device_memory", lambda: 2**33)
    one = Cost((None,), 6, 4, 2, 3 * 2**20, 30.0, 12.0)
    assert cost.describe([one], rounds=2) == [
        "cost per round: 2 chunks of 4 members, about 3.0 MB and 30 s each",
        "estimated time: 2.2 min: 2.0 min training for 2 rounds (counted in FLOPs, at this machine's 2 GFLOP/s) "
        "+ 12 s compiling 1 program (a guess: no compilation recorded on this machine yet; 0 if the "
        "compilation cache holds it)"]
    # Named cases, padding, measured timings, an hour of training, more than half the device.
    padded = Cost(("a", "b"), 3, 8, 1, 5 * 2**30, 4000.0, 20.0, measured=True, compile_measured=True)
    measured = Cost(("c",), 16, 8, 2, 2**20, 1.5, 5.0, measured=True, compile_measured=True)
    monkeypatch.setattr(cost, "calibrate", lambda: pytest.fail("no FLOP rate needed when every time was measured"))
    assert cost.describe([padded, measured], rounds=1) == [
        cost.padding_warning(8, 3),
        "cost [a, b] per round: 1 chunk of 8 members, about 5.0 GB and 1.1 h each",
        "cost [c] per round: 2 chunks of 8 members, about 1.0 MB and 1.5 s each",
        "estimated time: 1.1 h: 1.1 h training for 1 round (as measured by an earlier run of the same "
        "program) + 25 s compiling 2 programs (as measured; 0 if the compilation cache holds them)",
        "warning: more than 1.0 h of training; fewer configs, seeds or epochs, or a larger device, would help",
        "warning: a chunk needs about 5.0 GB of the device's 8.0 GB: is more than half of it"]
    monkeypatch.setattr(cost, "device_memory", lambda: 2**32)
    monkeypatch.setattr(cost, "calibrate", lambda: 5e10)
    cost.record_timing(build_spec(tiny()).variants[0], 2, compile_seconds=7.0)  # some compilation recorded here
    lines = cost.describe([padded, Cost(("c",), 16, 8, 2, 2**20, 1.5, 5.0)], rounds=1)
    assert lines[3] == (
        "estimated time: 1.1 h: 1.1 h training for 1 round (counted in FLOPs, at this machine's 50 GFLOP/s, "
        "or as measured by an earlier run) + 25 s compiling 2 programs (typical of the compilations recorded on "
        "this machine; 0 if the compilation cache holds them)")
    assert lines[-1] == "warning: a chunk needs about 5.0 GB of the device's 4.0 GB: does not fit: run will refuse it"


def test_sizes_and_durations_as_plan_writes_them():
    sizes = {0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 1536: "1.5 KB", 2**20 - 1: "1024.0 KB", 2**20: "1.0 MB",
             5 * 2**30: "5.0 GB", 3 * 2**40: "3.0 TB", 2**50: "1024.0 TB"}
    assert {n: cost._size(n) for n in sizes} == sizes
    durations = {0.0: "0 s", 0.0123: "0.012 s", 2.5: "2.5 s", 9.4: "9.4 s", 10.0: "10 s", 59.4: "59 s",
                 60.0: "1.0 min", 90.0: "1.5 min", 3599.0: "60.0 min", 3600.0: "1.0 h", 86400.0: "24.0 h",
                 2 * 86400.0 - 1: "48.0 h", 2 * 86400.0: "2 days", 10.4 * 86400: "10 days"}
    assert {s: cost._duration(s) for s in durations} == durations


def test_memory_budget_mb(monkeypatch):
    assert cost.memory_budget_mb(256) == 256 and cost.memory_budget_mb(0.5) == 0.5
    assert cost.memory_budget_mb("auto") == cost.AUTO_BUDGET_CPU_MB == 1024  # the tests run on a CPU
