"""The training step and its pieces against NumPy oracles, and the engine against optax by hand.

Oracle tests (convention 8): a 3-4-2 tanh MLP with softmax cross-entropy is written out in
NumPy, forward, backward, penalty gradient and optimizer, and compared with
``jaxreg.step.train_step`` built from the public pieces the engine uses. Then the engine
(``make_train`` / ``train_batch``) is compared with the public optax chain applied by hand,
its divergence guard is pinned, the step is checked eager == jit == vmap, and equal configs
are checked to compile once. Everything runs in float64 on tiny arrays.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg
from jaxreg import optimizers, step
from jaxreg.data import Split
from jaxreg.hparams import as_dtype
from jaxreg.step import TrainState, divergence_guard, evaluate, objective, train_step

pytestmark = pytest.mark.usefixtures("x64")

SIZES = (3, 4, 2)
LEAVES = (("dense_0", "w"), ("dense_0", "b"), ("dense_1", "w"), ("dense_1", "b"))
OPTIMIZER_NAMES = ("sgd", "momentum", "ema_momentum", "adam", "adamw")
# name -> (hparams beyond learning_rate and momentum, l1_mode, penalize every param)
PENALTIES = {
    "none": ({}, "subgradient", False),
    "l2": ({"l2": 0.05}, "subgradient", False),
    "l1_subgradient": ({"l1": 0.02}, "subgradient", False),
    "l1_proximal": ({"l1": 1.5}, "proximal", False),
    "weight_decay": ({"weight_decay": 0.1}, "subgradient", False),
    "elastic_net": ({"l2": 0.05, "l1": 0.02}, "subgradient", False),
    "all_params": ({"l2": 0.05, "l1": 0.02, "weight_decay": 0.1}, "subgradient", True),
}
LEARNING_RATE, MOMENTUM = 0.1, 0.9
RELATIVE = 1e-12


def tiny_model():
    return jaxreg.mlp(SIZES, activation="tanh", dtype=jnp.float64)


def tiny_params(seed=0):
    """NumPy params with nonzero biases and a few small weights (for proximal L1's exact zeros)."""
    rng = np.random.default_rng(seed)
    params = {"dense_0": {"w": rng.normal(0.0, 0.7, (3, 4)), "b": rng.normal(0.0, 0.3, 4)},
              "dense_1": {"w": rng.normal(0.0, 0.7, (4, 2)), "b": rng.normal(0.0, 0.3, 2)}}
    params["dense_0"]["w"][0, :2] = [0.01, -0.02]
    params["dense_1"]["w"][1, 0] = 0.015
    return params


def tiny_batch(seed=1, n=6):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, SIZES[0])), rng.integers(0, SIZES[-1], n)


def leaves(tree):
    return [np.asarray(tree[layer][name], np.float64) for layer, name in LEAVES]


def relative_difference(a, b) -> float:
    """The largest ``max|a - b| / max|b|`` over the leaves of two params trees."""
    return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300))
               for x, y in zip(leaves(a), leaves(b)))


def tree_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def take(tree, i):
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[i], tree)


# ----------------------------------------------------------------------------- NumPy oracle

def numpy_loss_and_grads(params, x, y):
    """Softmax cross-entropy of the tanh MLP, averaged over the batch, and its gradient."""
    w0, b0, w1, b1 = leaves(params)
    h = np.tanh(x @ w0 + b0)
    z = h @ w1 + b1
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -log_p[np.arange(n), y].mean()
    dz = (np.exp(log_p) - np.eye(z.shape[1])[y]) / n
    dh = dz @ w1.T * (1.0 - h ** 2)
    grads = {"dense_0": {"w": x.T @ dh, "b": dh.sum(0)}, "dense_1": {"w": h.T @ dz, "b": dz.sum(0)}}
    return loss, grads


def numpy_mask(params, all_params: bool):
    return {layer: {name: np.ones_like(p) if all_params or p.ndim >= 2 else np.zeros_like(p)
                    for name, p in leaves_of.items()} for layer, leaves_of in params.items()}


def numpy_steps(params, x, y, name, hp: dict, l1_mode: str, all_params: bool, n_steps: int):
    """``n_steps`` steps of the oracle; returns the params after each."""
    lr, m = hp["learning_rate"], hp["momentum"]
    l2, l1, wd = hp.get("l2", 0.0), hp.get("l1", 0.0), hp.get("weight_decay", 0.0)
    params = {layer: {k: np.array(v, np.float64) for k, v in d.items()} for layer, d in params.items()}
    mask = numpy_mask(params, all_params)
    first = {layer: {k: np.zeros_like(v) for k, v in d.items()} for layer, d in params.items()}
    second = {layer: {k: np.zeros_like(v) for k, v in d.items()} for layer, d in params.items()}
    history = []
    for t in range(1, n_steps + 1):
        _, grads = numpy_loss_and_grads(params, x, y)
        for layer, k in LEAVES:
            w, mk = params[layer][k], mask[layer][k]
            g = grads[layer][k] + mk * l2 * w
            if l1_mode == "subgradient":
                g = g + mk * l1 * np.sign(w)
            if name == "sgd":
                d = g
            elif name == "momentum":
                first[layer][k] = m * first[layer][k] + g
                d = first[layer][k]
            elif name == "ema_momentum":
                first[layer][k] = m * first[layer][k] + (1.0 - m) * g
                d = first[layer][k]
            else:  # adam, adamw: optax.scale_by_adam(b1=momentum, b2=0.999, eps=1e-8)
                first[layer][k] = m * first[layer][k] + (1.0 - m) * g
                second[layer][k] = 0.999 * second[layer][k] + 0.001 * g * g
                mu_hat = first[layer][k] / (1.0 - m ** t)
                nu_hat = second[layer][k] / (1.0 - 0.999 ** t)
                d = mu_hat / (np.sqrt(nu_hat) + 1e-8)
            w = w - lr * (d + wd * mk * w)
            if l1_mode == "proximal":
                w = np.where(mk > 0, np.sign(w) * np.maximum(np.abs(w) - lr * l1, 0.0), w)
            params[layer][k] = w
        history.append({layer: {k: v.copy() for k, v in d.items()} for layer, d in params.items()})
    return history


# ----------------------------------------------------------------------- the step under test

def as_jax(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


@functools.cache
def jitted_step(name: str, l1_mode: str):
    """``train_step`` with the optimizer of ``name`` and every hparam (and the mask) traced."""
    model = tiny_model()
    loss_of = objective(model, jaxreg.softmax_cross_entropy)

    def run(state, x, y, hp, mask):
        tx = optimizers.optimizer(name, hp, hp.learning_rate, mask, l1_mode=l1_mode)
        project = (lambda w: jaxreg.prox_l1(w, hp.learning_rate * hp.l1, mask)) if l1_mode == "proximal" else None
        return train_step(state, x, y, jax.random.key(0), objective=loss_of, optimizer=tx, project=project)

    return jax.jit(run)


def start_state(name, hp, params, mask, l1_mode="subgradient"):
    opt_state = optimizers.optimizer(name, hp, hp.learning_rate, mask, l1_mode=l1_mode).init(params)
    return TrainState(params, {}, opt_state, jnp.zeros((), jnp.int32))


@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_train_step_matches_numpy_oracle_for_one_and_three_steps(name, penalty):
    extra, l1_mode, all_params = PENALTIES[penalty]
    values = {"learning_rate": LEARNING_RATE, "momentum": MOMENTUM, **extra}
    model = tiny_model()
    hp = as_dtype(jaxreg.make_hparams(model, **values), jnp.float64)
    x, y = tiny_batch()
    params = tiny_params()
    expected = numpy_steps(params, x, y, name, values, l1_mode, all_params, n_steps=3)

    jparams = as_jax(params)
    mask = as_jax(numpy_mask(params, all_params))
    state = start_state(name, hp, jparams, mask, l1_mode)
    step = jitted_step(name, l1_mode)
    for t in range(3):
        state, (loss, _) = step(state, jnp.asarray(x), jnp.asarray(y), hp, mask)
        assert int(state.step) == t + 1
        assert relative_difference(state.params, expected[t]) < RELATIVE, f"step {t + 1}"
    if l1_mode == "proximal":
        zeros = [leaf == 0 for leaf in leaves(expected[-1])]
        assert sum(z.sum() for z in zeros) > 0  # the oracle does reach exact zeros here
        for got, want in zip(leaves(state.params), zeros):
            np.testing.assert_array_equal(got == 0, want)


def test_step_loss_is_the_data_loss_before_the_step():
    model = tiny_model()
    hp = as_dtype(jaxreg.make_hparams(model, learning_rate=0.1, l2=0.05), jnp.float64)
    x, y = tiny_batch()
    params = tiny_params()
    mask = as_jax(numpy_mask(params, False))
    _, (loss, accuracy) = jitted_step("sgd", "subgradient")(start_state("sgd", hp, as_jax(params), mask),
                                                             jnp.asarray(x), jnp.asarray(y), hp, mask)
    want, _ = numpy_loss_and_grads(params, x, y)
    np.testing.assert_allclose(float(loss), want, rtol=RELATIVE)
    w0, b0, w1, b1 = leaves(params)
    logits = np.tanh(x @ w0 + b0) @ w1 + b1
    assert float(accuracy) == np.mean(logits.argmax(1) == y)


@pytest.mark.parametrize("all_params", [False, True])
def test_step_penalty_gradient_is_the_gradient_of_penalty(all_params):
    """With SGD at learning rate 1, the penalty's share of the step is ``-grad(penalty)``."""
    model = tiny_model()
    x, y = tiny_batch()
    params = as_jax(tiny_params())
    mask = as_jax(numpy_mask(tiny_params(), all_params))
    step = jitted_step("sgd", "subgradient")

    def moved(**penalty):
        hp = as_dtype(jaxreg.make_hparams(model, learning_rate=1.0, **penalty), jnp.float64)
        state, _ = step(start_state("sgd", hp, params, mask), jnp.asarray(x), jnp.asarray(y), hp, mask)
        return state.params

    plain = moved()
    for penalty in ({"l2": 0.3}, {"l1": 0.2}, {"l2": 0.3, "l1": 0.2}):
        share = jax.tree_util.tree_map(lambda a, b: b - a, plain, moved(**penalty))
        want = jax.grad(lambda p: jaxreg.penalty(p, mask=mask, **penalty))(params)
        np.testing.assert_allclose(np.concatenate([leaf.ravel() for leaf in leaves(share)]),
                                   -np.concatenate([leaf.ravel() for leaf in leaves(want)]),
                                   rtol=1e-10, atol=1e-13)
        # ``penalty`` itself is the documented 0.5 * l2 * sum(w^2) + l1 * sum|w| over the mask.
        np_mask = leaves(numpy_mask(tiny_params(), all_params))
        value = sum(0.5 * penalty.get("l2", 0.0) * np.sum(m * w ** 2) + penalty.get("l1", 0.0) * np.sum(m * np.abs(w))
                    for w, m in zip(leaves(params), np_mask))
        np.testing.assert_allclose(float(jaxreg.penalty(params, mask=mask, **penalty)), value, rtol=RELATIVE)


def test_step_works_on_the_flat_layout():
    """The engine's default layout: params carried as one vector, unpacked for the model."""
    model = tiny_model()
    values = {"learning_rate": LEARNING_RATE, "momentum": MOMENTUM, "l2": 0.05, "l1": 0.02, "weight_decay": 0.1}
    hp = as_dtype(jaxreg.make_hparams(model, **values), jnp.float64)
    x, y = tiny_batch()
    params = tiny_params()
    seam = jaxreg.make_layout("flat", as_jax(params))
    flat = seam.pack(as_jax(params))
    mask = seam.pack(as_jax(numpy_mask(params, False)))
    tx = optimizers.optimizer("adam", hp, hp.learning_rate, mask)
    state = TrainState(flat, {}, tx.init(flat), jnp.zeros((), jnp.int32))
    loss_of = objective(model, jaxreg.softmax_cross_entropy, seam.unpack)
    step = jax.jit(functools.partial(train_step, objective=loss_of, optimizer=tx))
    for _ in range(3):
        state, _ = step(state, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))
    assert state.params.ndim == 1
    want = numpy_steps(params, x, y, "adam", values, "subgradient", False, n_steps=3)[-1]
    assert relative_difference(seam.unpack(state.params), want) < RELATIVE


# ----------------------------------------------------------- evaluate and the divergence guard

def test_evaluate_matches_numpy_per_split():
    model = tiny_model()
    params = tiny_params()
    x_train, y_train = tiny_batch(seed=2, n=7)
    x_val, y_val = tiny_batch(seed=3, n=5)
    metrics = evaluate(model, as_jax(params), {}, jnp.asarray(np.concatenate([x_train, x_val])),
                       [("train", jnp.asarray(y_train)), ("val", jnp.asarray(y_val))],
                       jaxreg.softmax_cross_entropy)
    assert set(metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    w0, b0, w1, b1 = leaves(params)
    for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        loss, _ = numpy_loss_and_grads(params, x, y)
        logits = np.tanh(x @ w0 + b0) @ w1 + b1
        np.testing.assert_allclose(float(metrics[f"{split}_loss"]), loss, rtol=RELATIVE)
        np.testing.assert_allclose(float(metrics[f"{split}_accuracy"]), np.mean(logits.argmax(1) == y),
                                   rtol=RELATIVE)
    # The splits are distinguishable: a slicing mix-up would not go unnoticed.
    assert float(metrics["train_loss"]) != float(metrics["val_loss"])


def guard_state(value, state_value):
    return TrainState({"w": jnp.full((2, 2), value), "b": jnp.full((2,), value)},
                      {"mean": jnp.full((2,), state_value)}, (), jnp.asarray(5))


@pytest.mark.parametrize("batched", [False, True])
def test_divergence_guard(batched):
    # (after's params, frozen before, loss finite) -> (kept before, frozen after, newly diverged)
    cases = [(2.0, False, True, False, False, False),     # healthy: takes after
             (np.nan, False, True, True, True, True),     # params turn NaN: back to before, frozen
             (np.inf, False, True, True, True, True),     # inf too
             (2.0, False, False, True, True, True),       # loss NaN with finite params: also diverged
             (2.0, True, True, True, True, False),        # frozen stays at before though after differs
             (np.nan, True, True, True, True, False)]     # frozen and non-finite: not newly diverged
    before = guard_state(1.0, 10.0)
    results = []
    if batched:
        afters = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[guard_state(c[0], 20.0) for c in cases])
        out = jax.vmap(divergence_guard, in_axes=(None, 0, 0, 0))(
            before, afters, jnp.asarray([c[1] for c in cases]), jnp.asarray([c[2] for c in cases]))
        results = [take(out, i) for i in range(len(cases))]
    else:
        for value, frozen, finite, *_ in cases:
            results.append(divergence_guard(before, guard_state(value, 20.0), jnp.asarray(frozen), jnp.asarray(finite)))
    for (value, _, _, kept, frozen_after, newly), (state, frozen, new) in zip(cases, results):
        want = before if kept else guard_state(value, 20.0)
        assert tree_equal(state.params, want.params)
        assert tree_equal(state.model_state, want.model_state)
        assert bool(frozen) == frozen_after and bool(new) == newly


# ------------------------------------------------------------- the engine against optax by hand

def tiny_data(n_train=8, n_val=4, seed=4):
    x, y = tiny_batch(seed=seed, n=n_train + n_val)
    empty = Split(np.zeros((0, SIZES[0])), np.zeros((0,), np.int32))
    return jaxreg.Data(Split(x[:n_train], y[:n_train].astype(np.int32)),
                       Split(x[n_train:], y[n_train:].astype(np.int32)), empty)


def replay(model, config, hp_values: dict, data, seed=0):
    """The public optax chain applied by hand, epoch by epoch, from the engine's init.

    Returns the params and the data loss at the start of each epoch (index 0: the init) and
    whether each epoch stayed finite (the guard's rule: every step's loss and the params at
    the epoch's end).
    """
    init_key = jax.random.split(jaxreg.member_key(seed), 3)[0]
    params, _ = model.init(init_key)
    hp = as_dtype(jaxreg.make_hparams(model, **hp_values), jnp.float64)
    loss_fn = jaxreg.get_loss(config.loss)
    proximal = config.l1_mode == "proximal"
    mask = jaxreg.all_params_mask if config.penalize_bias else None
    state = optimizers.optimizer(config.optimizer, hp, hp.learning_rate, mask, l1_mode=config.l1_mode).init(params)
    x, y = jnp.asarray(data.train.x), jnp.asarray(data.train.y)
    batch = len(y) if config.batch_size is None else config.batch_size
    starts, finite = [params], []
    for epoch in range(config.epochs):
        lr = hp.learning_rate * (1.0 - hp.lr_decay) ** epoch  # epoch counted from 0
        tx = optimizers.optimizer(config.optimizer, hp, lr, mask, l1_mode=config.l1_mode)
        ok = True
        for start in range(0, len(y), batch):
            xb, yb = x[start:start + batch], y[start:start + batch]
            loss, grads = jax.value_and_grad(lambda p: loss_fn(model.apply(p, {}, xb)[0], yb))(params)
            ok = ok and bool(jnp.isfinite(loss))
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            if proximal:
                params = jaxreg.prox_l1(params, lr * hp.l1, mask)
        finite.append(ok and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(params)))
        starts.append(params)
    return starts, finite


@functools.cache
def jitted_train(config):
    return jax.jit(jaxreg.make_train(config))


ENGINE_CASES = [
    # (config fields, hparams)
    (dict(optimizer="sgd"), dict(learning_rate=0.5)),
    (dict(optimizer="sgd"), dict(learning_rate=0.3, l2=0.1, l1=0.05, weight_decay=0.2)),
    (dict(optimizer="momentum", penalize_bias=True), dict(learning_rate=0.2, momentum=0.8, l2=0.1, weight_decay=0.2)),
    (dict(optimizer="adamw", l1_mode="proximal"), dict(learning_rate=0.05, momentum=0.9, l1=10.0, weight_decay=0.1)),
    (dict(optimizer="adamw", l1_mode="proximal"), dict(learning_rate=0.02, momentum=0.5, l2=0.01)),
    (dict(optimizer="momentum", penalize_bias=True, epochs=3), dict(learning_rate=0.2, momentum=0.8, lr_decay=0.5)),
    (dict(optimizer="momentum", penalize_bias=True, epochs=3), dict(learning_rate=0.3, momentum=0.5, lr_decay=0.3,
                                                                    l2=0.05)),
]


@pytest.mark.parametrize("fields, hp_values", ENGINE_CASES)
def test_engine_update_is_the_public_optax_chain(fields, hp_values):
    model = tiny_model()
    data = tiny_data()
    config = jaxreg.TrainConfig(model=model, **{"epochs": 1, **fields}, batch_size=None, shuffle=False,
                                dropout=False)
    result = jitted_train(config)(jaxreg.member_key(0), jaxreg.make_hparams(model, **hp_values), data)
    starts, finite = replay(model, config, hp_values, data)
    assert all(finite)
    assert relative_difference(result.params, starts[-1]) < RELATIVE
    assert relative_difference(result.params, starts[0]) > 1e-3  # it did train
    if config.l1_mode == "proximal" and hp_values.get("l1"):
        assert any((leaf == 0).any() for leaf in leaves(result.params))


def test_learning_rate_decays_from_epoch_zero():
    hp = as_dtype(jaxreg.make_hparams(tiny_model(), learning_rate=0.2, lr_decay=0.5), jnp.float64)
    assert [float(optimizers.learning_rate(hp, e)) for e in range(3)] == [0.2, 0.1, 0.05]


# ------------------------------------------------------------------ the divergence guard, pinned

DIVERGENCE_BASE = dict(loss="squared_error", optimizer="momentum", batch_size=4, shuffle=False, dropout=False)
HEALTHY = [dict(learning_rate=0.1), dict(learning_rate=0.05, l2=0.01, momentum=0.5)]
DIVERGENT = dict(learning_rate=3.0, momentum=0.9)


def test_divergent_member_is_restored_frozen_and_isolated():
    model = jaxreg.mlp(SIZES, activation="relu", dtype=jnp.float64)
    data = tiny_data()
    configs = {epochs: jaxreg.TrainConfig(model=model, epochs=epochs, **DIVERGENCE_BASE) for epochs in (6, 8)}
    starts, finite = replay(model, configs[8], DIVERGENT, data, seed=1)  # member 1 of seeds 0, 1, 2
    diverged_epoch = finite.index(False) + 1
    assert 1 < diverged_epoch < 6  # diverges mid-run, after a finite epoch has moved its params

    members = [HEALTHY[0], DIVERGENT, HEALTHY[1]]
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(model, **values) for values in members])
    results = {epochs: jaxreg.train_batch(config, data, chunk_size=3)(np.arange(3), hps)
               for epochs, config in configs.items()}
    for epochs, result in results.items():
        assert result.diverged.tolist() == [False, True, False]
        assert result.diverged_epoch.tolist() == [0, diverged_epoch, 0]
        bad = take(result, 1)
        assert relative_difference(bad.params, starts[diverged_epoch - 1]) < RELATIVE
        for name, curve in bad.curves.items():
            assert np.isnan(curve[diverged_epoch - 1:]).all(), name
        assert np.isfinite(bad.curves["val_loss"][:diverged_epoch - 1]).all()
        assert np.isfinite(np.asarray(bad.final["val_loss"]))
    # Frozen: training longer does not move it.
    assert tree_equal(take(results[6].params, 1), take(results[8].params, 1))

    # The others are bitwise what they are without it, with the same chunk size.
    healthy = jaxreg.stack_hparams([jaxreg.make_hparams(model, **values) for values in HEALTHY])
    alone = jaxreg.train_batch(configs[8], data, chunk_size=3)(np.array([0, 2]), healthy)
    assert not alone.diverged.any()
    assert tree_equal(take(results[8], np.array([0, 2])), alone)


def test_divergence_guard_trusts_the_loss_by_default():
    before = step.TrainState(jnp.zeros(2), {}, (), jnp.zeros((), jnp.int32))
    after = before._replace(params=jnp.ones(2))
    state, frozen, diverged = step.divergence_guard(before, after, jnp.zeros((), bool))
    assert not bool(frozen) and not bool(diverged)
    np.testing.assert_array_equal(state.params, [1.0, 1.0])


# ------------------------------------------------------------ eager == jit == vmap of the step

def test_train_step_eager_jit_vmap_agree():
    model = tiny_model()
    x, y = tiny_batch()
    params = as_jax(tiny_params())
    members = [dict(learning_rate=0.1, momentum=0.9, l2=0.05, l1=0.02, weight_decay=0.1, dropout=[0.0, 0.3]),
               dict(learning_rate=0.05, momentum=0.5, l1=0.1, dropout=0.2),
               dict(learning_rate=0.2, momentum=0.0, weight_decay=0.3)]
    hps = [as_dtype(jaxreg.make_hparams(model, **values), jnp.float64) for values in members]
    key = jax.random.key(3)

    def two_steps(hp):
        loss_of = objective(model, jaxreg.softmax_cross_entropy, dropout=hp.dropout)
        tx = optimizers.optimizer("adamw", hp, hp.learning_rate)
        state = TrainState(params, {}, tx.init(params), jnp.zeros((), jnp.int32))
        for _ in range(2):
            state, metrics = train_step(state, jnp.asarray(x), jnp.asarray(y), jax.random.fold_in(key, state.step),
                                        objective=loss_of, optimizer=tx)
        return state.params, metrics

    eager = [two_steps(hp) for hp in hps]
    jitted = [jax.jit(two_steps)(hp) for hp in hps]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *hps)
    vmapped = jax.jit(jax.vmap(two_steps))(stacked)
    for i in range(len(members)):
        for other in (jitted[i], take(vmapped, i)):
            for a, b in zip(jax.tree_util.tree_leaves(eager[i]), jax.tree_util.tree_leaves(other)):
                np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=RELATIVE, atol=1e-15)
    # Dropout drew masks: the members' results differ from a dropout-free step.
    assert not tree_equal(eager[1][0], two_steps(hps[1]._replace(dropout=jnp.zeros(2)))[0])


# --------------------------------------------------------------------------- compile once

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    def __init__(self):
        self.names = []

    def __call__(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            self.names.append(kwargs.get("fun_name"))

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


def test_equal_configs_compile_once_and_a_changed_config_again():
    data = tiny_data()
    # Sizes no other test uses, so that the first call really compiles.
    sizes = (3, 7, 2)

    def config(model=None, **fields):
        return jaxreg.TrainConfig(model=model or jaxreg.mlp(sizes, dtype=jnp.float64), epochs=2, batch_size=4,
                                  dropout=False, **fields)

    first, second = config(), config()
    assert first is not second and first.model is not second.model and first == second
    hps = jaxreg.stack_hparams([jaxreg.make_hparams(first.model, learning_rate=lr) for lr in (0.1, 0.2)])
    program = f"jit({jaxreg.compiled_segments(first).__name__})"

    with CompileCounter() as counter:
        a = jaxreg.train_batch(first, data)(np.arange(2), hps)
    assert counter.names.count(program) == 1

    l2_hps = jaxreg.stack_hparams([jaxreg.make_hparams(first.model, learning_rate=lr, l2=0.01) for lr in (0.3, 0.4)])
    jaxreg.check_hparams(first, l2_hps)  # its eager key and shape checks compile on their own, once
    with CompileCounter() as counter:
        b = jaxreg.train_batch(second, data)(np.arange(2), hps)
        c = jaxreg.train_batch(config(model=first.model), data)(np.arange(2), l2_hps)
    assert counter.names == []
    assert tree_equal(a, b) and not tree_equal(a.params, c.params)

    with CompileCounter() as counter:
        jaxreg.train_batch(config(optimizer="momentum"), data)(np.arange(2), hps)
    assert counter.names.count(program) == 1
