"""The training engine: batch invariance, book replay, early stopping, divergence, no retrace."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import train as train_lib


def tree_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def take(tree, i):
    return jax.tree_util.tree_map(lambda leaf: leaf[i], tree)


@pytest.fixture(scope="module")
def digits():
    return jaxreg.data.load("digits", key=0, n_train=200)


@pytest.fixture(scope="module")
def data(digits):
    """The digits arrays as the engine takes them: an argument of ``train``, not part of the config."""
    return jaxreg.as_data(digits)


@pytest.fixture(scope="module")
def small_config():
    net = jaxreg.mlp((64, 32, 10))
    return jaxreg.TrainConfig(model=net, loss="cross_entropy", optimizer="momentum",
                              epochs=6, batch_size=32, eval_every=2, dropout=True)


def member_hparams(net, i: int):
    """A distinct, valid configuration for member ``i``."""
    return jaxreg.make_hparams(net, learning_rate=0.02 + 0.01 * (i % 7), l2=1e-4 * (i % 3),
                               dropout=[0.0, 0.1 * (i % 5)], momentum=0.5 + 0.05 * (i % 4))


def max_relative_difference(a, b) -> float:
    """The largest ``max|a - b| / max|b|`` over leaves (NaNs must coincide)."""
    worst = 0.0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        both = np.isfinite(x) & np.isfinite(y)
        assert np.array_equal(np.isnan(x), np.isnan(y))
        scale = max(float(np.max(np.abs(y[both]), initial=0)), 1e-30)
        worst = max(worst, float(np.max(np.abs(x - y)[both], initial=0)) / scale)
    return worst


def test_batch_invariance(small_config, data):
    net = small_config.model
    run = jaxreg.train_batch(small_config, data, chunk_size=64)
    hps = [member_hparams(net, i) for i in range(64)]
    seeds = np.arange(64) % 5
    batch = run(seeds, jaxreg.stack_hparams(hps))
    target = 37
    reference = take(batch, target)

    # Bitwise, with the same chunk size: alone, at another position among other companions,
    # and as one of several chunks of a larger sweep.
    alone = take(run(seeds[target:target + 1], jaxreg.stack_hparams([hps[target]])), 0)
    moved = [member_hparams(net, 100 + i) for i in range(63)]
    moved.insert(5, hps[target])
    moved_seeds = np.insert(np.arange(63) % 3, 5, seeds[target])
    other = take(run(moved_seeds, jaxreg.stack_hparams(moved)), 5)
    bigger = [member_hparams(net, 200 + i) for i in range(99)] + [hps[target]]
    bigger_seeds = np.append(np.arange(99) % 4, seeds[target])
    chunked = take(run(bigger_seeds, jaxreg.stack_hparams(bigger)), 99)
    for result in (alone, other, chunked):
        assert tree_equal(result, reference)

    # A different batch shape (a batch of 8, or no vmap at all) lets XLA CPU round the softmax
    # cross-entropy's log-sum-exp reduction differently: equal to 1e-6 relative, not bitwise.
    small = take(jaxreg.train_batch(small_config, data)(np.full(8, seeds[target]),
                                                        jaxreg.stack_hparams([hps[target]] * 8)), 5)
    single = jax.jit(jaxreg.make_train(small_config))(
        jaxreg.member_key(int(seeds[target])), hps[target], data, None)
    for result in (small, single):
        assert max_relative_difference(result, reference) < 1e-6
        assert int(result.best_epoch) == int(reference.best_epoch)


def test_shared_seed_shares_initial_weights(small_config, data):
    net = small_config.model
    train = jaxreg.make_train(small_config)
    init, state = net.init(jax.random.split(jaxreg.member_key(3), 3)[0])
    assert state == {}
    a = jax.jit(train)(jaxreg.member_key(3), member_hparams(net, 1), data, None)
    b = jax.jit(train)(jaxreg.member_key(3), member_hparams(net, 1), data, init)
    assert tree_equal(a.params, b.params)


def test_changing_hparams_values_does_not_retrace(small_config, data):
    traces = []
    train = jaxreg.make_train(small_config)

    def counted(seed, hp, data, init):
        traces.append(1)
        return train(jaxreg.member_key(seed), hp, data, init)

    batched = jax.jit(jax.vmap(counted, in_axes=(0, 0, None, None)))
    net = small_config.model
    for offset in (0, 10, 20):
        hp = jaxreg.stack_hparams([member_hparams(net, offset + i) for i in range(4)])
        jax.block_until_ready(batched(jnp.arange(4), hp, data, None))
    assert len(traces) == 1


def test_last_smaller_batch_is_trained_on(digits, data):
    # 200 examples in batches of 64: three full batches and one of 8, all of them used.
    net = jaxreg.mlp((64, 10))
    config = jaxreg.TrainConfig(model=net, loss="squared_error", optimizer="sgd",
                                epochs=1, batch_size=64, shuffle=False, dropout=False)
    hp = jaxreg.make_hparams(net, learning_rate=0.1)
    result = jax.jit(jaxreg.make_train(config))(jaxreg.member_key(0), hp, data, None)
    w = np.asarray(net.init(jax.random.split(jaxreg.member_key(0), 3)[0])[0]["dense_0"]["w"], np.float64)
    b = np.zeros(10)
    x, y = np.asarray(digits.train.x, np.float64), np.eye(10)[digits.train.y]
    for start in range(0, 200, 64):
        xb, yb = x[start:start + 64], y[start:start + 64]
        delta = (xb @ w + b - yb) / len(xb)
        w, b = w - 0.1 * xb.T @ delta, b - 0.1 * delta.sum(0)
    np.testing.assert_allclose(result.params["dense_0"]["w"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.params["dense_0"]["b"], b, rtol=1e-5, atol=1e-6)


def book_numpy(images, labels, weights, alpha, epochs, book_derivative=False):
    """Per-example SGD exactly as Grokking Deep Learning ch. 8 writes it, float64.

    With ``book_derivative`` the ReLU mask is the book's ``relu2deriv(layer_1)``, computed on the
    layer's output (always true); otherwise the true gradient's ``layer_1_input > 0``.
    """
    w01, w12 = (w.copy() for w in weights)
    one_hot = np.eye(10)[labels]
    history = []
    for _ in range(epochs):
        error, correct = 0.0, 0
        for i in range(len(images)):
            layer_0 = images[i:i + 1]
            z1 = layer_0.dot(w01)
            layer_1 = (z1 >= 0) * z1
            layer_2 = layer_1.dot(w12)
            error += np.sum((one_hot[i:i + 1] - layer_2) ** 2)
            correct += int(np.argmax(layer_2) == labels[i])
            layer_2_delta = one_hot[i:i + 1] - layer_2
            mask = (layer_1 >= 0) if book_derivative else (z1 > 0)
            layer_1_delta = layer_2_delta.dot(w12.T) * mask
            w12 += alpha * layer_1.T.dot(layer_2_delta)
            w01 += alpha * layer_0.T.dot(layer_1_delta)
        out = np.maximum(images.dot(w01), 0).dot(w12)
        history.append(dict(epoch_err=error / len(images), epoch_acc=correct / len(images),
                            train_err=np.mean(np.sum((one_hot - out) ** 2, axis=1)),
                            train_acc=np.mean(np.argmax(out, 1) == labels), w01=w01.copy(),
                            w12=w12.copy()))
    return history


# mnist_dir (conftest.py): $JAXREG_DATA_DIR, then ../shared/data; skips naming where it looked.
@pytest.mark.parametrize("activation", ["relu", "relu_book"])
def test_book_replay_matches_numpy_epoch_by_epoch(activation, mnist_dir):
    ds = jaxreg.data.load("mnist", data_dir=mnist_dir, n_train=200, n_val=0, n_test=100)
    init = jaxreg.numpy_uniform_init((784, 40, 10), seed=1)
    with jax.enable_x64(True):
        data = jaxreg.Data(*(jaxreg.data.Split(np.asarray(s.x, np.float64), s.y)
                             for s in (ds.train, ds.val, ds.test)))
        net = jaxreg.mlp((784, 40, 10), activation=activation, bias=False, dtype=jnp.float64)
        config = jaxreg.TrainConfig(model=net, loss="squared_error", optimizer="sgd",
                                    epochs=1, batch_size=1, shuffle=False, dropout=False,
                                    monitor="train_loss")
        train = jax.jit(jaxreg.make_train(config))
        hp = jaxreg.make_hparams(net, learning_rate=0.005)
        params, replay = init, []
        for _ in range(3):  # one epoch per call, so every epoch's params can be compared
            result = train(jaxreg.member_key(0), hp, data, params)
            params = result.params
            replay.append(result)
    expected = book_numpy(data.train.x, np.asarray(ds.train.y), [init["dense_0"]["w"], init["dense_1"]["w"]],
                          0.005, 3, book_derivative=activation == "relu_book")
    for got, want in zip(replay, expected):
        np.testing.assert_allclose(got.params["dense_0"]["w"], want["w01"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.params["dense_1"]["w"], want["w12"], rtol=0, atol=1e-9)
        # The book prints the summed squared error; jaxreg's loss is half of it.
        np.testing.assert_allclose(2 * np.asarray(got.curves["epoch_loss"])[-1], want["epoch_err"], atol=1e-9)
        np.testing.assert_allclose(got.curves["epoch_accuracy"][-1], want["epoch_acc"], atol=1e-12)
        np.testing.assert_allclose(2 * np.asarray(got.curves["train_loss"])[-1], want["train_err"], atol=1e-9)
        np.testing.assert_allclose(got.curves["train_accuracy"][-1], want["train_acc"], atol=1e-12)


def test_early_stopping_restores_each_members_own_best(data):
    net = jaxreg.mlp((64, 64, 10))
    base = dict(model=net, loss="cross_entropy", optimizer="adam", epochs=40,
                batch_size=20, eval_every=1, dropout=False)
    config = jaxreg.TrainConfig(**base)
    patiences = [1, 3, 8, np.inf]
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(net, learning_rate=0.01, patience=p, restore_best=1)
                                for p in patiences])
    result = jaxreg.train_batch(config, data)(np.zeros(len(patiences), int), hps)
    best, stopped = np.asarray(result.best_epoch), np.asarray(result.stopped_epoch)
    assert (best > 0).all()
    assert stopped[0] > 0 and stopped[-1] == 0  # patience 1 fires, patience inf never does
    assert len(set(stopped.tolist())) > 2
    for i, p in enumerate(patiences):
        if stopped[i]:
            assert stopped[i] - best[i] == p
            assert np.isnan(result.curves["val_loss"][i, stopped[i]:]).all()
        # Replaying the member for exactly its best epoch count gives its returned params.
        replay_config = jaxreg.TrainConfig(**{**base, "epochs": int(best[i])})
        replay = jaxreg.train_batch(replay_config, data, chunk_size=len(patiences))(np.zeros(1, int), jaxreg.stack_hparams(
            [jaxreg.make_hparams(net, learning_rate=0.01)]))
        assert tree_equal(take(replay.params, 0), take(result.params, i))
        assert float(result.final["val_loss"][i]) == float(result.curves["val_loss"][i, best[i] - 1])


def test_divergent_member_is_isolated(small_config, data):
    net = small_config.model
    # Squared error on a linear output: a learning rate of 50 overflows within a few steps.
    config = dataclasses.replace(small_config, loss="squared_error")
    run = jaxreg.train_batch(config, data, chunk_size=16)
    hps = [member_hparams(net, i) for i in range(16)]
    seeds = np.arange(16)
    blown = list(hps)
    blown[6] = jaxreg.make_hparams(net, learning_rate=50.0, momentum=0.9)
    with_bad = run(seeds, jaxreg.stack_hparams(blown))
    keep = [i for i in range(16) if i != 6]
    without = run(seeds[keep], jaxreg.stack_hparams([hps[i] for i in keep]))
    assert bool(with_bad.diverged[6]) and int(with_bad.diverged_epoch[6]) >= 1
    assert not np.asarray(with_bad.diverged)[keep].any()
    assert all(np.isfinite(leaf[6]).all() for leaf in jax.tree_util.tree_leaves(with_bad.params))
    assert tree_equal(take(with_bad, np.array(keep)), without)


def test_leaving_metrics_out_changes_nothing_but_those_metrics(small_config, data):
    net = small_config.model
    hps = [member_hparams(net, i) for i in range(4)]
    hps[3] = jaxreg.make_hparams(net, learning_rate=50.0, momentum=0.9)  # diverges
    kept = ("train_loss", "train_accuracy", "val_accuracy", "test_loss")  # + the monitor, val_loss
    configs = [dataclasses.replace(small_config, loss="squared_error", eval_test=True, metrics=metrics)
               for metrics in (None, kept)]
    every, few = (jaxreg.train_batch(config, data, chunk_size=4)(np.arange(4), jaxreg.stack_hparams(hps))
                  for config in configs)
    computed = set(kept) | {"val_loss"}
    for name in train_lib.METRICS:
        assert np.isfinite(every.curves[name][:3]).all(), name
        if name not in computed:
            assert np.isnan(few.curves[name]).all() and np.isnan(few.final[name]).all(), name
    # The healthy members: every other number bitwise the same.
    healthy = np.arange(3)
    part = lambda r: {**r._asdict(), "final": {k: r.final[k] for k in computed},
                      "curves": {k: r.curves[k] for k in computed}}
    assert tree_equal(take(part(few), healthy), take(part(every), healthy))
    # The divergent one is caught either way; without the running epoch loss, only once its
    # params overflow, which may be an epoch or two after its loss did.
    assert bool(every.diverged[3]) and bool(few.diverged[3])
    assert int(few.diverged_epoch[3]) >= int(every.diverged_epoch[3]) >= 1
    assert all(np.isfinite(leaf[3]).all() for leaf in jax.tree_util.tree_leaves(few.params))


def test_config_errors_name_field_allowed_and_given(digits, data):
    net = jaxreg.mlp((64, 10))
    cases = [
        (dict(optimizer="rmsprop"),
         "optimizer: expected one of 'sgd', 'momentum', 'ema_momentum', 'adam', 'adamw', got 'rmsprop'"),
        (dict(epochs=0), "epochs: expected an integer >= 1, got 0"),
        (dict(epochs=10, eval_every=3), "eval_every: expected a divisor of epochs=10, got 3"),
        (dict(epochs=10**9), "epochs / eval_every: expected at most 1000000 evaluations (each member holds every "
                             "metric at each), got 1000000000 (1000000000 / 1)"),
        (dict(epochs=10**9, eval_every=10**9), "eval_every: expected at most 1000000 epochs between evaluations "
                                               "(each member holds every epoch's loss until the evaluation), got 1000000000"),
        (dict(epochs=2**31, eval_every=2**16), "epochs: expected an integer in [1, 2147483647] (int32 epoch counters), "
                                               "got 2147483648"),
        (dict(loss="hinge"), "loss: expected one of 'squared_error', 'sum_squared_error', 'mse', 'cross_entropy', 'bce' or a function "
                                "(outputs, labels) -> scalar, got 'hinge'"),
        (dict(monitor="val_f1"),
         "monitor: expected one of 'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy', got 'val_f1'"),
        (dict(metrics=("val_loss", "f1")),
         "metrics: expected names among " + ", ".join(train_lib.METRICS + train_lib.REGRESSION_METRICS) + ", got 'f1'"),
        (dict(metrics="val_loss"),
         "metrics: expected names among " + ", ".join(train_lib.METRICS + train_lib.REGRESSION_METRICS) + ", got 'val_loss'"),
    ]
    for overrides, message in cases:
        with pytest.raises(jaxreg.InputError) as info:
            jaxreg.TrainConfig(model=net, **overrides)
        assert str(info.value) == message

    # What depends on the data is checked against the data: by train_batch before any compute,
    # and by train itself when it is traced. The config alone is fine.
    no_val = jaxreg.Data(data.train, jaxreg.data.Split(data.val.x[:0], data.val.y[:0]), data.test)
    data_cases = [
        (dict(batch_size=5000), data,
         "batch_size: expected an integer in [1, 200] (the training set size) or None for full batch, got 5000"),
        (dict(monitor="val_loss"), no_val,
         "monitor: expected 'train_loss' or 'train_accuracy' when the validation split is empty, got 'val_loss'"),
        (dict(monitor="val_accuracy"), no_val,
         "monitor: expected 'train_loss' or 'train_accuracy' when the validation split is empty, got 'val_accuracy'"),
    ]
    for overrides, given, message in data_cases:
        config = jaxreg.TrainConfig(model=net, **overrides)
        with pytest.raises(jaxreg.InputError) as info:
            jaxreg.train_batch(config, given)
        assert str(info.value) == message
        with pytest.raises(jaxreg.InputError) as info:
            jax.eval_shape(jaxreg.make_train(config), jaxreg.member_key(0), jaxreg.make_hparams(net), given)
        assert str(info.value) == message
    # Given a Dataset rather than Data, train_batch checks it the same way.
    with pytest.raises(jaxreg.InputError) as info:
        jaxreg.train_batch(jaxreg.TrainConfig(model=net, batch_size=5000), digits)
    assert str(info.value) == data_cases[0][2]


def test_hparams_errors_name_field_allowed_and_given():
    net = jaxreg.mlp((2, 8, 8, 1))
    cases = [
        (dict(learning_rate=0.0), "hparams.learning_rate: expected a finite number > 0, got 0.0"),
        (dict(dropout=[0.0, 1.5, 0.0]), "hparams.dropout: expected drop probabilities in [0, 1), got 1.5"),
        (dict(dropout=[0.0, 0.5]), "hparams.dropout: expected a scalar or 3 per-layer rates, got [0.0, 0.5]"),
        (dict(momentum=1.0), "hparams.momentum: expected a number in [0, 1), got 1.0"),
        (dict(l2=-1e-3), "hparams.l2: expected a finite number >= 0, got -0.001"),
        (dict(patience=0), "hparams.patience: expected a number > 0 (inf: never stop), got 0.0"),
        (dict(restore_best=0.5), "hparams.restore_best: expected 0 or 1 (or a bool), got 0.5"),
        (dict(weight_decy=0.1), "hparams: expected names among learning_rate, momentum, lr_decay, l2, "
                                "l1, weight_decay, dropout, dropconnect, patience, min_delta, restore_best, "
                                "bn_momentum, bn_epsilon, trainable_layers, layer_lr_decay, flip, shift, rotate, "
                                "zoom, shear, blur, brightness, contrast, saturation, noise, got 'weight_decy'"),
        (dict(shift=0.5), "hparams.shift: expected a whole number of pixels >= 0, got 0.5"),
        (dict(rotate=200), "hparams.rotate: expected degrees in [0, 180], got 200.0"),
        (dict(bn_epsilon=0), "hparams.bn_epsilon: expected a finite number > 0, got 0.0"),
        (dict(layer_lr_decay=0), "hparams.layer_lr_decay: expected a number in (0, 1], got 0.0"),
    ]
    for values, message in cases:
        with pytest.raises(jaxreg.InputError) as info:
            jaxreg.make_hparams(net, **values)
        assert str(info.value) == message


def test_hparams_are_checked_in_the_params_dtype():
    """5e-324 is > 0 in float64 but 0 in float32 (1e-40 too: XLA flushes subnormals), and 1e300
    is inf there: check_hparams refuses them for float32 params, before any compute."""
    config = jaxreg.TrainConfig(model=jaxreg.mlp((2, 8, 1)))
    limits = "that float32 holds (magnitudes 0 or 1.18e-38 to 3.4e+38)"
    for values, message in [
        (dict(learning_rate=5e-324), f"hparams.learning_rate: expected a finite number > 0 {limits}, got 5e-324"),
        (dict(learning_rate=1e-40), f"hparams.learning_rate: expected a finite number > 0 {limits}, got 1e-40"),
        (dict(learning_rate=1e300), f"hparams.learning_rate: expected a finite number > 0 {limits}, got 1e+300"),
        (dict(l2=1e39), f"hparams.l2: expected a finite number >= 0 {limits}, got 1e+39"),
    ]:
        hps = jaxreg.stack_hparams([jaxreg.make_hparams(config.model, learning_rate=0.1),
                                    jaxreg.make_hparams(config.model, **values)])
        with pytest.raises(jaxreg.InputError) as info:
            jaxreg.check_hparams(config, hps)
        assert str(info.value) == message
    # What rounds to an allowed value is fine: l2 1e-50 is 0 in float32, and l2 may be 0.
    jaxreg.check_hparams(config, jaxreg.stack_hparams([jaxreg.make_hparams(config.model, l2=1e-50)]))


def test_dropout_rates_for_a_model_that_takes_none_are_an_error():
    # A plain function pair through the adapter takes no rates (num_dropout = num_dropconnect = 0).
    net = jaxreg.from_functions(lambda key: {"w": jax.random.normal(key, (3, 2))},
                                lambda params, x: x @ params["w"], input_shape=(3,))
    assert net.num_dropout == net.num_dropconnect == 0
    assert jaxreg.make_hparams(net, dropout=0.0).dropout.shape == (0,)
    for name in ("dropout", "dropconnect"):
        with pytest.raises(jaxreg.InputError) as info:
            jaxreg.make_hparams(net, **{name: 0.5})
        assert str(info.value) == (f"hparams.{name}: expected 0 for a model that takes no {name} rates "
                                   f"(num_{name} = 0), got 0.5")


def test_restore_best_defaults_to_early_stopping():
    net = jaxreg.mlp((2, 4, 1))
    assert jaxreg.make_hparams(net).restore_best == 0
    assert jaxreg.make_hparams(net, patience=10).restore_best == 1
    assert jaxreg.make_hparams(net, patience=10, restore_best=False).restore_best == 0


def test_proximal_l1_makes_exact_zeros_and_penalize_bias_decays_biases():
    data = jaxreg.data.load("digits", key=0, n_train=100)
    net = jaxreg.mlp((64, 16, 10))
    hp = jaxreg.stack_hparams([jaxreg.make_hparams(net, learning_rate=0.05, l1=0.02),
                               jaxreg.make_hparams(net, learning_rate=0.05, weight_decay=1.0)])
    out = {}
    for mode in ("subgradient", "proximal"):
        for penalize_bias in (False, True):
            config = jaxreg.TrainConfig(model=net, optimizer="sgd", epochs=4, batch_size=25,
                                        l1_mode=mode, penalize_bias=penalize_bias)
            out[mode, penalize_bias] = jaxreg.train_batch(config, data)(np.zeros(2, int), hp)
    proximal = out["proximal", False]
    w = np.concatenate([np.ravel(layer["w"][0]) for layer in proximal.params.values()])
    assert proximal.final["zero_fraction"][0] == pytest.approx(np.mean(w == 0), abs=1e-7)
    assert proximal.final["zero_fraction"][0] > 0.03
    assert out["subgradient", False].final["zero_fraction"][0] < 0.01  # subgradient steps rarely hit 0
    # Weight decay leaves biases alone by default and shrinks them with penalize_bias.
    bias = lambda result: np.concatenate([np.ravel(layer["b"][1]) for layer in result.params.values()])
    assert np.linalg.norm(bias(out["subgradient", True])) < 0.9 * np.linalg.norm(bias(out["subgradient", False]))


def test_accuracies_are_counts_over_n_correctly_rounded():
    data = jaxreg.data.load("digits", key=0, n_train=100)
    net = jaxreg.mlp((64, 16, 10))
    config = jaxreg.TrainConfig(model=net, optimizer="adam", epochs=2, batch_size=25,
                                eval_test=True)
    result = jaxreg.train_batch(config, data)(np.array([0, 1]), jaxreg.stack_hparams(
        [jaxreg.make_hparams(net, learning_rate=1e-2)] * 2))
    for member in range(2):
        params = jax.tree_util.tree_map(lambda leaf: leaf[member], result.params)
        for split in ("train", "val", "test"):
            x, y = getattr(data, split)
            count = int(np.sum(np.argmax(np.asarray(net.apply(params, {}, x)[0]), axis=1) == y))
            assert result.final[f"{split}_accuracy"][member] == np.float32(count / len(y))  # not 1 ulp off


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_tree_layout_trains_like_the_flat_one(dtype, x64):
    """The params layout is one seam: the per-layer ("tree") layout, the default, gives the
    flat layout's results up to the rounding of XLA's fusions (the same products and
    elementwise updates; XLA contracts ``u + l2 * w`` into one FMA where a bool mask leaves no
    multiply, and rounds the flat layout's ``u + m * (l2 * w)`` twice), with every optimizer
    path that touches the layout: momentum, L2, proximal L1, weight decay, penalize_bias, early
    stopping's best copy and the divergence guard's restore."""
    digits = jaxreg.as_data(jaxreg.data.load("digits", key=0, n_train=120, dtype=dtype))
    net = jaxreg.mlp((64, 16, 10), dtype=dtype)
    hps = jaxreg.stack_hparams([
        jaxreg.make_hparams(net, learning_rate=0.05, momentum=0.9, l2=1e-3, l1=1e-3, weight_decay=1e-3,
                            patience=2),
        jaxreg.make_hparams(net, learning_rate=1e200 if dtype == "float64" else 1e30)])  # overflows at once
    results = {}
    for layout, penalize_bias in (("flat", True), ("tree", True), ("flat", False), ("tree", False)):
        config = jaxreg.TrainConfig(model=net, optimizer="momentum", epochs=6, batch_size=40, eval_every=2,
                                    l1_mode="proximal", penalize_bias=penalize_bias, layout=layout, dropout=False)
        results[layout, penalize_bias] = jaxreg.train_batch(config, digits)(np.array([0, 1]), hps)
    assert jaxreg.TrainConfig(model=net).layout == "tree"
    for penalize_bias in (True, False):
        flat, tree = results["flat", penalize_bias], results["tree", penalize_bias]
        assert flat.diverged.tolist() == tree.diverged.tolist() == [False, True]
        assert flat.best_epoch.tolist() == tree.best_epoch.tolist()
        tolerance = 1e-12 if dtype == "float64" else 1e-5
        assert max_relative_difference(tree.params, flat.params) < tolerance
        assert max_relative_difference(tree.curves, flat.curves) < tolerance
        assert jax.tree_util.tree_structure(tree.params) == jax.tree_util.tree_structure(net.init(jax.random.key(0))[0])
    # penalize_bias changes the numbers (the mask reaches the biases in both layouts)
    assert max_relative_difference(results["tree", True].params, results["tree", False].params) > 1e-6


def _primitives(config, hparams, data) -> list[str]:
    jaxpr = jax.make_jaxpr(jaxreg.make_train(config))(jaxreg.member_key(0), hparams, data, None)
    names = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.append(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)
    walk(jaxpr.jaxpr)
    return names


def test_penalties_no_member_uses_are_left_out_of_the_program(data):
    """``TrainConfig.penalties`` compiles only the named terms: without L1 there is no sign()
    in the program, without any penalty fewer multiplies; the numbers are those of the full
    program with those hparams at 0 (up to XLA's rounding: it contracts u + l2 * w into one FMA
    where the full program adds 0 * sign(w) first)."""
    net = jaxreg.mlp((64, 16, 10))
    full = jaxreg.TrainConfig(model=net, optimizer="momentum", epochs=4, batch_size=50, dropout=False)
    hp = jaxreg.make_hparams(net, learning_rate=0.1, momentum=0.9, l2=1e-3)
    counts = {}
    for penalties in (("l2", "l1", "weight_decay"), ("l2",), ()):
        config = dataclasses.replace(full, penalties=penalties)
        names = _primitives(config, hp if penalties else hp._replace(l2=jnp.zeros(())), data)
        counts[penalties] = (names.count("sign"), names.count("mul"))
    assert counts[("l2",)][0] == counts[()][0] < counts[("l2", "l1", "weight_decay")][0]  # no L1: no sign(w)
    assert counts[()][1] < counts[("l2",)][1] < counts[("l2", "l1", "weight_decay")][1]
    seeds = np.array([0, 1])
    for penalties, l2 in ((("l2",), 1e-3), ((), 0.0)):
        hps = jaxreg.stack_hparams([jaxreg.make_hparams(net, learning_rate=0.1, momentum=0.9, l2=l2)] * 2)
        want = jaxreg.train_batch(full, data)(seeds, hps)
        got = jaxreg.train_batch(dataclasses.replace(full, penalties=penalties), data)(seeds, hps)
        assert max_relative_difference(got.curves, want.curves) < 1e-5
        assert max_relative_difference(got.params, want.params) < 1e-5


def test_a_penalty_left_out_refuses_a_member_that_asks_for_it(data):
    net = jaxreg.mlp((64, 16, 10))
    config = jaxreg.TrainConfig(model=net, epochs=2, penalties=("l1",))
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(net, l2=0.0), jaxreg.make_hparams(net, l2=0.01)])
    message = "hparams.l2: expected 0 when TrainConfig.penalties leaves 'l2' out (penalties = ['l1']), got 0.01"
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.train_batch(config, data)(np.array([0, 1]), hps)
    assert str(error.value) == message
    with pytest.raises(jaxreg.InputError) as error:  # concrete hparams, no jit: refused as well
        jaxreg.make_train(config)(jaxreg.member_key(0), jaxreg.make_hparams(net, l2=0.01), data)
    assert str(error.value) == message
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.TrainConfig(model=net, penalties=("l2", "dropout"))
    assert str(error.value) == "penalties: expected names among l2, l1, weight_decay, got 'dropout'"
    assert jaxreg.TrainConfig(model=net, penalties="weight_decay").penalties == ("weight_decay",)


def test_a_per_example_step_rewrites_each_weight_once():
    """Per-example SGD (the book's experiment) in the per-layer layout: the compiled step
    updates each weight matrix in ONE fused kernel (the outer product of the gradient fused
    into the update), with no concatenation or slicing of a params vector. The flat layout,
    for contrast, concatenates the gradient every step."""
    import re

    net = jaxreg.mlp((64, 24, 10), bias=False)
    digits = jaxreg.as_data(jaxreg.data.load("digits", key=0, n_train=50))
    hp = jaxreg.make_hparams(net, learning_rate=0.01)

    def innermost_body(layout):
        config = jaxreg.TrainConfig(model=net, loss="sum_squared_error", optimizer="sgd", epochs=2, batch_size=1,
                                    shuffle=False, dropout=False, monitor="train_loss", layout=layout, penalties=())
        text = jax.jit(jaxreg.make_train(config)).lower(jaxreg.member_key(0), hp, digits, None).compile().as_text()
        bodies = [c for c in re.split(r"\n(?=\S)", text) if "f32[50,1,64]" in c.split("\n", 1)[0]
                  and " while(" not in c and "dot(" in c]
        assert len(bodies) == 1, [b.split("\n", 1)[0][:80] for b in bodies]
        return [line for line in bodies[0].splitlines()[1:] if "parameter(" not in line
                and "get-tuple-element(" not in line and " tuple(" not in line and "constant(" not in line]

    tree = innermost_body("tree")
    writes = [line for line in tree if re.search(r"= f32\[64,24\]\{1,0\} (fusion|add|subtract|multiply|dot|copy)", line)]
    assert len(writes) == 1 and "fusion(" in writes[0], writes
    sliced = lambda lines: [line for line in lines if re.search(r"%\S*(slice|concatenate)\S* = f32\[64,24\]", line)]
    assert not sliced(tree) and not [line for line in tree if "concatenate" in line]
    assert sliced(innermost_body("flat"))  # the flat layout copies the layer out of its vector every step


# --------------------------------- TrainConfig, as_data, check_data, the rates that reach the model

MODEL = jaxreg.mlp((3, 2))


@pytest.mark.parametrize("changes, message", [
    (dict(model="mlp"), "model: expected a jaxreg.Model (see jaxreg.adapters.as_model for Flax, Equinox and "
                        "function pairs), got str"),
    (dict(eval_every=0), "eval_every: expected an integer >= 1, got 0"),
    (dict(batch_size=0), "batch_size: expected an integer >= 1, got 0"),
    (dict(start_epoch=-1), "start_epoch: expected an integer >= 0, got -1"),
    (dict(start_epoch=1.5), "start_epoch: expected an integer >= 0, got 1.5"),
    (dict(penalty_mask={"dense_0": {"w": True, "b": False}}, penalize_bias=True),
     "penalize_bias: expected False when penalty_mask is given (the mask says which params to penalize), "
     "got True"),
])
def test_train_config_refusals(changes, message):
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.TrainConfig(**{"model": MODEL, **changes})
    assert str(error.value) == message


def test_train_config_accepts_min_and_max_modes_lists_of_metrics_and_callable_masks():
    assert jaxreg.TrainConfig(model=MODEL, mode="min", monitor="val_accuracy").minimize
    assert not jaxreg.TrainConfig(model=MODEL, mode="max", monitor="val_loss").minimize
    config = jaxreg.TrainConfig(model=MODEL, metrics=["val_loss", "penalty"])
    assert config.metrics == ("val_loss", "penalty") and hash(config) == hash(config)
    params = MODEL.init(jax.random.key(0))[0]
    bias_only = lambda p: jax.tree_util.tree_map(lambda leaf: leaf.ndim == 1, p)
    masked = jaxreg.TrainConfig(model=MODEL, penalty_mask=bias_only)
    assert masked.penalty_mask is bias_only
    assert masked.mask(params) == {"dense_0": {"w": False, "b": True}}


def test_a_pytree_penalty_mask_is_frozen_hashable_and_returned_whole():
    model = jaxreg.mlp((3, 2))
    mask = {"dense_0": {"w": True, "b": np.bool_(False)}}
    config = jaxreg.TrainConfig(model=model, penalty_mask=mask)
    same = jaxreg.TrainConfig(model=model, penalty_mask={"dense_0": {"w": True, "b": False}})
    other = jaxreg.TrainConfig(model=model, penalty_mask={"dense_0": {"w": False, "b": True}})
    assert config == same and hash(config) == hash(same) and config != other
    assert config.penalty_mask != mask  # a FrozenMask equals only a FrozenMask
    params = model.init(jax.random.key(0))[0]
    assert config.mask(params) == {"dense_0": {"w": True, "b": False}}
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.TrainConfig(model=model, penalty_mask={"a": 1.0, "b": True, "c": "x", "d": 2})
    assert str(error.value) == ("penalty_mask: expected a pytree of bools (one per params leaf) or a callable "
                                "params -> mask, got leaves ['float', 'bool', 'str']")


def test_as_data_takes_the_three_splits_with_int32_labels():
    split = lambda n: SimpleNamespace(x=np.ones((n, 2)), y=np.arange(n, dtype=np.int64))
    data = jaxreg.as_data(SimpleNamespace(train=split(3), val=split(2), test=split(1)))
    assert [s.y.dtype for s in data] == [np.int32] * 3 and data.val.y.tolist() == [0, 1]
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.as_data(SimpleNamespace(train=split(3), test=split(1)))
    assert str(error.value) == ("data: expected a jaxreg.data.Dataset or Data with train, val and test splits, "
                                "got SimpleNamespace without 'val'")


def _data(n_train, n_val=2):
    split = lambda n: jaxreg.data.Split(np.ones((n, 3), np.float32), np.zeros(n, np.int32))
    return jaxreg.train.Data(split(n_train), split(n_val), split(0))


def test_check_data_bounds():
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL), _data(0))
    assert str(error.value) == "data.train: expected at least one example, got 0"
    jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL, batch_size=None), _data(1))  # one example is enough
    jaxreg.train.check_data(jaxreg.TrainConfig(model=MODEL, batch_size=4), _data(4))     # batch == training set


def _train_members(config, rates):
    """Trains one member per (dropout, dropconnect) pair from the same key and init."""
    model = config.model
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, learning_rate=0.5, dropout=d, dropconnect=c)
                                for d, c in rates])
    rng = np.random.default_rng(0)
    split = lambda n: jaxreg.data.Split(rng.normal(size=(n, 3)).astype(np.float32),
                                        rng.integers(0, 3, n).astype(np.int32))
    data = jaxreg.train.Data(split(8), split(4), split(0))
    train = jax.jit(jax.vmap(jaxreg.make_train(config), in_axes=(None, 0, None, None)))
    return train(jax.random.key(0), hps, data, None).params


def test_the_dropout_and_dropconnect_flags_decide_whether_rates_reach_the_model():
    model = jaxreg.mlp((3, 4, 3))
    base = dict(model=model, loss="cross_entropy", epochs=2, batch_size=None)
    on = _train_members(jaxreg.TrainConfig(**base, dropout=True, dropconnect=True),
                        [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)])
    w = np.asarray(on["dense_0"]["w"])
    assert not np.array_equal(w[1], w[0]) and not np.array_equal(w[2], w[0])
    off = _train_members(jaxreg.TrainConfig(**base, dropout=False, dropconnect=False),
                         [(0.0, 0.0), (0.5, 0.5)])
    np.testing.assert_array_equal(off["dense_0"]["w"][1], off["dense_0"]["w"][0])
