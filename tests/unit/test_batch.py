"""jaxreg.batch: member keys from seeds, the memo of compiled programs, segments, the checks of
hparams against the model, exact accuracies, and train_batch against each member trained alone."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import batch
from jaxreg.data import Split
from jaxreg.errors import InputError
from jaxreg.train import Data, Result

from test_train import max_relative_difference, take, tree_equal


def key_bits(key) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


# --- member_key ---------------------------------------------------------------------------------

def test_member_key_is_fold_in_of_the_seed_and_nothing_else():
    base = jax.random.key(0)
    for seed in (0, 1, 7, 2**31 - 1, 2**32 - 1):
        expected = key_bits(jax.random.fold_in(base, seed))
        assert np.array_equal(key_bits(batch.member_key(seed)), expected)
        assert np.array_equal(key_bits(batch.member_key(np.uint32(seed))), expected)  # train_batch's seeds
        assert np.array_equal(key_bits(jax.jit(batch.member_key)(np.uint32(seed))), expected)
    other = jax.random.key(42)
    assert np.array_equal(key_bits(batch.member_key(3, other)), key_bits(jax.random.fold_in(other, 3)))
    assert not np.array_equal(key_bits(batch.member_key(3, other)), key_bits(batch.member_key(3)))
    assert len({key_bits(batch.member_key(seed)).tobytes() for seed in range(50)}) == 50


def test_member_key_is_the_same_alone_and_inside_vmap_in_any_position():
    seeds = np.array([5, 0, 9, 5, 2**32 - 1], np.uint32)
    keys = key_bits(jax.jit(jax.vmap(batch.member_key))(seeds))
    for position, seed in enumerate(seeds):
        assert np.array_equal(keys[position], key_bits(batch.member_key(int(seed))))
    assert np.array_equal(keys[0], keys[3])  # equal seeds, equal keys, whatever the position
    shuffled = key_bits(jax.vmap(batch.member_key)(seeds[::-1]))
    np.testing.assert_array_equal(shuffled, keys[::-1])


# --- segment_blocks -----------------------------------------------------------------------------

def _segment_blocks_oracle(n: int, segments: int) -> int:
    """The largest divisor d of n whose segments number at least ``segments`` when rounded up:
    (d - 1) * segments < n, i.e. d <= ceil(n / segments)."""
    return max(d for d in range(1, n + 1) if n % d == 0 and (d - 1) * segments < n)


@pytest.mark.parametrize("segments", [1, 2, 3, 8, 13])
def test_segment_blocks_against_a_divisor_search(segments):
    for n in range(1, 260):
        k = batch.segment_blocks(n, segments)
        assert k == _segment_blocks_oracle(n, segments), (n, segments)
        assert n % k == 0  # every segment runs the same compiled program


def test_segment_blocks_defaults_to_about_eight_segments():
    assert [batch.segment_blocks(n) for n in (1, 7, 8, 9, 16, 24, 25, 64, 100, 97, 1000)] == [
        1, 1, 1, 1, 2, 3, 1, 8, 10, 1, 125]
    assert batch.segment_blocks(12, segments=1) == 12  # one segment: the whole chunk


# --- a tiny config ------------------------------------------------------------------------------

NET = jaxreg.mlp((2, 8, 1))


@pytest.fixture(scope="module")
def data():
    return jaxreg.as_data(jaxreg.data.load("blobs", key=3))  # 100 train, 100 val, 1000 test, 2 features


def config(**changes):
    settings = dict(model=NET, loss="bce", optimizer="momentum", epochs=4, eval_every=1, batch_size=25,
                    dropout=True)
    return jaxreg.TrainConfig(**{**settings, **changes})


VALUES = [dict(learning_rate=0.3, dropout=[0.0, 0.3], patience=2),
          dict(learning_rate=0.05, l2=1e-2),
          dict(learning_rate=0.1, momentum=0.5, lr_decay=0.2),
          dict(learning_rate=0.2, dropout=0.1, weight_decay=1e-3)]
SEEDS = np.array([3, 0, 3, 11], np.uint32)


def members(values=VALUES):
    return jaxreg.stack_hparams([jaxreg.make_hparams(NET, **v) for v in values])


def test_compiled_members_and_segments_are_memoized_by_equal_configs():
    a, b = config(), config(model=jaxreg.mlp((2, 8, 1)))  # equal, not the same objects
    assert a == b and a is not b
    assert batch.compiled_members(a) is batch.compiled_members(b)
    assert batch.compiled_segments(a) is batch.compiled_segments(b)
    for different in (config(epochs=8), config(batch_size=20), config(model=jaxreg.mlp((2, 4, 1))),
                      config(optimizer="adam")):
        assert batch.compiled_members(different) is not batch.compiled_members(a)
        assert batch.compiled_segments(different) is not batch.compiled_segments(a)


@pytest.fixture(scope="module")
def reference(data):
    """The four members trained together in one chunk of 4."""
    return batch.train_batch(config(), data, chunk_size=4)(SEEDS, members())


def test_each_member_alone_in_a_chunk_of_the_same_size_is_bitwise_the_batch(data, reference):
    run = batch.train_batch(config(), data, chunk_size=4)
    hp = members()
    for i in range(4):
        alone = run(SEEDS[i:i + 1], take(hp, slice(i, i + 1)))  # padded with three copies of itself
        assert tree_equal(take(alone, 0), take(reference, i)), i


def test_member_order_and_chunking_do_not_change_a_members_result(data, reference):
    order = np.array([2, 0, 3, 1])
    hp = members()
    run = batch.train_batch(config(), data, chunk_size=4)
    moved = run(SEEDS[order], take(hp, order))
    assert tree_equal(moved, take(reference, order))
    # Three chunks of 4 (the last padded), members in a new order among new companions.
    more = [dict(learning_rate=0.01 * (i + 1)) for i in range(6)]
    seeds = np.concatenate([np.array([1, 2, 4, 5, 6, 7], np.uint32), SEEDS[order]])
    chunked = run(seeds, members(more + [VALUES[i] for i in order]))
    assert tree_equal(take(chunked, slice(6, 10)), take(reference, order))
    assert run.chunk_size(10) == 4


def test_another_chunk_size_agrees_to_1e_6_and_compiles_once(data, reference):
    """A different batch shape lets XLA CPU round a reduction differently: the docstring promises
    bitwise results only for equal chunk sizes, and agreement to about 1e-6 otherwise. (One
    jitted train per member, and the whole program against its segments: tests/unit/test_train.py
    and tests/e2e/test_checkpoint.py.)"""
    run, calls = batch.train_batch(config(), data, chunk_size=2), []
    result = run(SEEDS, members(), compiling=calls.append)
    assert max_relative_difference(result, reference) < 1e-6
    np.testing.assert_array_equal(result.best_epoch, reference.best_epoch)
    assert len(calls) == 2 and calls[0] is None and calls[1] > 0  # before and after its one compilation
    again = run(SEEDS[::-1], take(members(), slice(None, None, -1)), compiling=calls.append)
    assert len(calls) == 2  # the same program: compiled already
    assert tree_equal(again, take(result, slice(None, None, -1)))


def test_chunk_sizes_and_progress(data, reference):
    run = batch.train_batch(config(), data, chunk_size=4)
    assert [batch.train_batch(config(), data).chunk_size(n) for n in (1, 2, 5)] == [2, 2, 5]  # never one
    assert [run.chunk_size(n) for n in (1, 4, 10)] == [4, 4, 4]
    progress = []
    result = run(SEEDS[1:2], take(members(), slice(1, 2)), progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]  # segment_blocks(4) = 1: one evaluation per segment
    assert result.curves["val_loss"].shape == (1, 4) and result.best_epoch.shape == (1,)
    assert tree_equal(take(result, 0), take(reference, 1))


# --- check_hparams and train_batch's refusals -----------------------------------------------------

def refusal(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


def test_check_hparams_refusals_name_the_field_what_is_allowed_and_the_value():
    hp = lambda **v: jaxreg.stack_hparams([jaxreg.make_hparams(NET), jaxreg.make_hparams(NET, **v)])
    assert refusal(lambda: batch.check_hparams(config(dropout=False), hp(dropout=0.5))) == (
        "hparams.dropout: expected 0 when TrainConfig.dropout is False, got 0.5")
    assert refusal(lambda: batch.check_hparams(config(), hp(dropconnect=[0.0, 0.25]))) == (
        "hparams.dropconnect: expected 0 when TrainConfig.dropconnect is False, got 0.25")
    assert refusal(lambda: batch.check_hparams(config(), hp(flip=0.5))) == (
        "hparams.flip: expected 0 when TrainConfig.augment does not name 'flip' (augment = []), got 0.5")
    assert refusal(lambda: batch.check_hparams(config(), hp(bn_epsilon=1e-3))) == (
        "hparams.bn_epsilon: expected the default (1e-05) for a model without batch norm, got 0.001")
    assert refusal(lambda: batch.check_hparams(config(), hp(bn_momentum=0.9))) == (
        "hparams.bn_momentum: expected the default (0.99) for a model without batch norm, got 0.9")
    for values in (dict(trainable_layers=1), dict(layer_lr_decay=0.5)):
        assert refusal(lambda: batch.check_hparams(config(), hp(**values))) == (
            "hparams.trainable_layers: expected inf (and layer_lr_decay 1) when TrainConfig.layerwise is False, "
            "got a member that freezes or decays layers")
    assert refusal(lambda: batch.check_hparams(config(penalties=("l2",)), hp(l1=1e-3))) == (
        "hparams.l1: expected 0 when TrainConfig.penalties leaves 'l1' out (penalties = ['l2']), got 0.001")
    assert refusal(lambda: batch.check_hparams(config(), hp(learning_rate=1e-45))) == (
        "hparams.learning_rate: expected a finite number > 0 that float32 holds (magnitudes 0 or 1.18e-38 to "
        "3.4e+38), got 1e-45")
    # Allowed: rates with the paths compiled, defaults everywhere else.
    batch.check_hparams(config(), hp(dropout=0.5, l2=1e-3, learning_rate=1.0))


def test_rates_and_penalties_a_model_cannot_take_are_refused():
    # A plain function pair: no dropout rates, and no leaf with two dimensions for a penalty.
    net = jaxreg.from_functions(lambda key: {"b": jnp.zeros(2)}, lambda params, x: x + params["b"],
                                input_shape=(2,))
    cfg = jaxreg.TrainConfig(model=net, loss="squared_error", dropout=True)
    other = jaxreg.stack_hparams([jaxreg.make_hparams(NET, dropout=0.2)])  # rates shaped for another model
    assert refusal(lambda: batch.check_hparams(cfg, other)) == (
        "hparams.dropout: expected 0 for a model that takes no dropout rates (num_dropout = 0), got 0.2")
    assert refusal(lambda: batch.check_hparams(cfg, jaxreg.stack_hparams([jaxreg.make_hparams(net, l2=0.1)]))) == (
        "hparams.l2: expected 0 when the penalty mask selects no params (the model has no leaf with two or more "
        "dimensions, or penalty_mask selects none), got 0.1")
    batch.check_hparams(cfg, jaxreg.stack_hparams([jaxreg.make_hparams(net)]))


def test_train_batch_refuses_bad_chunk_sizes_and_a_count_of_hparams_unlike_the_seeds(data):
    for bad in (0, -1, 2.0, True):
        assert refusal(lambda: batch.train_batch(config(), data, chunk_size=bad)) == (
            f"chunk_size: expected an integer >= 1, got {bad!r}")
    run = batch.train_batch(config(), data, chunk_size=2)
    assert refusal(lambda: run(np.arange(3), members(VALUES[:2]))) == (
        "hparams: expected 3 members (one per seed), got 2")
    assert refusal(lambda: run(np.arange(1), members(VALUES[:1])._replace(
        bn_momentum=np.array([0.5])))) == "hparams.bn_momentum: expected the default (0.99) for a model without batch norm, got 0.5"


# --- exact_accuracies ---------------------------------------------------------------------------

def _split(n: int) -> Split:
    return Split(np.zeros((n, 2), np.float32), np.zeros(n, np.int32))


def test_exact_accuracies_are_counts_over_n_correctly_rounded():
    sizes = {"train": 1000, "val": 49, "test": 0}
    data = Data(*(_split(n) for n in sizes.values()))
    counts = {split: np.arange(n + 1) for split, n in sizes.items()}
    # As XLA computes them: a count times the float32 reciprocal of n, possibly an ulp off.
    approx = {split: (c.astype(np.float32) * np.float32(1 / max(sizes[split], 1))).astype(np.float32)
              for split, c in counts.items()}
    final = {"train_accuracy": approx["train"], "epoch_accuracy": approx["train"], "val_accuracy": approx["val"],
             "test_accuracy": np.full(3, np.nan, np.float32), "val_loss": approx["val"].copy()}
    curves = {"val_accuracy": approx["val"][None, :], "train_accuracy": approx["train"][None, :]}
    result = Result(**{name: None for name in Result._fields})._replace(final=final, curves=curves)
    exact = batch.exact_accuracies(result, data)
    for name, split in (("train_accuracy", "train"), ("epoch_accuracy", "train"), ("val_accuracy", "val")):
        expected = np.array([np.float32(c / sizes[split]) for c in counts[split]], np.float32)
        assert exact.final[name].dtype == np.float32
        np.testing.assert_array_equal(exact.final[name], expected)
    np.testing.assert_array_equal(exact.curves["val_accuracy"][0], exact.final["val_accuracy"])
    np.testing.assert_array_equal(exact.curves["train_accuracy"][0], exact.final["train_accuracy"])
    assert np.isnan(exact.final["test_accuracy"]).all()  # an empty split: left as it was
    np.testing.assert_array_equal(exact.final["val_loss"], approx["val"])  # not an accuracy: untouched
    # The reciprocal's product is off for some counts: the recovery is not a no-op.
    assert not np.array_equal(approx["train"], exact.final["train_accuracy"])


def test_train_batch_accuracies_are_numpy_counts_of_the_returned_params(data, reference):
    for member in range(4):
        params = take(reference.params, member)
        assert np.isnan(reference.final["test_accuracy"][member])  # eval_test is off
        for split in ("train", "val"):
            x, y = getattr(data, split)
            logits = np.asarray(NET.apply(params, {}, x)[0]).reshape(-1)
            count = int(np.sum((logits > 0).astype(np.int32) == np.asarray(y)))
            assert reference.final[f"{split}_accuracy"][member] == np.float32(count / len(y)), (member, split)


# --- needs_x64 ----------------------------------------------------------------------------------

def test_needs_x64_says_whether_the_params_hold_64_bit_values(x64):
    assert batch.needs_x64(NET) is False
    assert batch.needs_x64(jaxreg.mlp((2, 8, 1), dtype=jnp.float64)) is True
    mixed = jaxreg.from_functions(lambda key: {"w": jnp.zeros((2, 1), jnp.float32), "n": jnp.zeros((), jnp.int64)},
                                  lambda params, x: x @ params["w"], input_shape=(2,))
    assert batch.needs_x64(mixed) is True
