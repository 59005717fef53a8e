"""The whole training loop of ``make_train`` against a plain NumPy loop written for the test.

A linear softmax model on a dozen examples, float64, so every number of the result (params,
curves, final metrics, best/stopped/diverged epochs) can be compared with a NumPy replay of
the documented rules: mini-batches with a smaller last one, the optax chain of
:mod:`jaxreg.optimizers` (L2 and L1 in the gradient, heavy-ball momentum, decoupled weight
decay, per-epoch learning-rate decay), proximal L1, Keras-style early stopping at evaluations
(``min_delta``, ``start_epoch``, ``eval_every``), restoring the best params, and the
divergence guard. Each configuration compiles one tiny program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import train as train_lib
from jaxreg.data import Split

N_FEATURES, N_CLASSES = 3, 3


def linear_model():
    init = lambda key: {"w": jnp.zeros((N_FEATURES, N_CLASSES)), "b": jnp.zeros((N_CLASSES,))}
    apply = lambda params, x: x @ params["w"] + params["b"]
    return jaxreg.adapters.from_functions(init, apply, input_shape=(N_FEATURES,))


def make_data(n_train=7, n_val=5, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    split = lambda n: Split(rng.normal(size=(n, N_FEATURES)), rng.integers(0, N_CLASSES, n).astype(np.int32))
    return train_lib.Data(split(n_train), split(n_val), split(n_test))


def init_params(seed=1):
    rng = np.random.default_rng(seed)
    return {"w": rng.normal(size=(N_FEATURES, N_CLASSES)), "b": rng.normal(size=N_CLASSES) * 0.5}


# ----------------------------------------------------------------------------- NumPy oracle

def np_forward(p, x):
    return x @ p["w"] + p["b"]


def np_loss_acc(p, x, y):
    z = np_forward(p, x)
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), np.mean(np.argmax(np_forward(p, x), 1) == y)


def np_grads(p, x, y):
    z = np_forward(p, x)
    e = np.exp(z - z.max(1, keepdims=True))
    delta = (e / e.sum(1, keepdims=True) - np.eye(N_CLASSES)[y]) / len(y)
    return {"w": x.T @ delta, "b": delta.sum(0)}


def np_train(cfg, hp, data, p0, order_of_epoch=None):
    """The loop of make_train as its documentation states it, for one member."""
    masks = {"w": 1.0, "b": 1.0 if cfg["penalize_bias"] else 0.0}
    p = {k: v.copy() for k, v in p0.items()}
    velocity = {k: np.zeros_like(v) for k, v in p.items()}
    x, y = data.train.x, data.train.y
    n = len(y)
    batch = n if cfg["batch_size"] is None else cfg["batch_size"]
    splits = [(name, split) for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
              if len(split.y) and (name != "test" or cfg["eval_test"])]  # an empty split stays NaN
    sign = 1.0 if cfg["minimize"] else -1.0
    best_value, best_epoch, wait, stopped_epoch = np.inf, 0, 0.0, 0
    frozen = diverged = False
    diverged_epoch = 0
    best = last = None
    curves = {name: [] for name in train_lib.METRICS}
    for block in range(cfg["epochs"] // cfg["eval_every"]):
        frozen_before = frozen
        for epoch in range(block * cfg["eval_every"], (block + 1) * cfg["eval_every"]):
            lr = hp["learning_rate"] * (1 - hp["lr_decay"]) ** epoch
            before = {k: v.copy() for k, v in p.items()}
            order = np.arange(n) if order_of_epoch is None else order_of_epoch(epoch)
            loss_sum = acc_sum = 0.0
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                loss, acc = np_loss_acc(p, x[idx], y[idx])
                loss_sum, acc_sum = loss_sum + loss * len(idx), acc_sum + acc * len(idx)
                g = np_grads(p, x[idx], y[idx])
                l1_grad = 0.0 if cfg["proximal"] else hp["l1"]
                for k in p:
                    u = g[k] + masks[k] * (hp["l2"] * p[k] + l1_grad * np.sign(p[k]))
                    if cfg["optimizer"] == "momentum":
                        velocity[k] = hp["momentum"] * velocity[k] + u
                        u = velocity[k]
                    u = u + hp["weight_decay"] * masks[k] * p[k]
                    p[k] = p[k] - lr * u
                    if cfg["proximal"] and masks[k]:
                        p[k] = np.sign(p[k]) * np.maximum(np.abs(p[k]) - lr * hp["l1"], 0.0)
            finite = np.isfinite(loss_sum) and all(np.isfinite(v).all() for v in p.values())
            if frozen or not finite:
                p = before
            if not frozen and not finite:
                diverged, diverged_epoch = True, epoch + 1
            frozen = frozen or not finite
        epoch = (block + 1) * cfg["eval_every"]
        m = dict.fromkeys(train_lib.METRICS, np.nan)
        for name, split in splits:
            m[f"{name}_loss"], m[f"{name}_accuracy"] = np_loss_acc(p, split.x, split.y)
        m["epoch_loss"], m["epoch_accuracy"] = loss_sum / n, acc_sum / n
        weights = np.concatenate([(p[k] * masks[k]).ravel() for k in p])
        selected = sum(np.size(p[k]) * masks[k] for k in p)
        m["penalty"] = 0.5 * hp["l2"] * np.sum(weights ** 2) + hp["l1"] * np.sum(np.abs(weights))
        m["weight_norm"] = np.sqrt(np.sum(weights ** 2))
        m["zero_fraction"] = (sum(np.sum((p[k] == 0) * masks[k]) for k in p)) / selected
        valid = not frozen_before and not diverged
        computed = set(train_lib.METRICS if cfg["metrics"] is None else cfg["metrics"]) | {cfg["monitor"]}
        if valid and epoch >= cfg["start_epoch"]:
            value = sign * m[cfg["monitor"]]
            if value < best_value - hp["min_delta"]:
                best_value, best_epoch, wait = value, epoch, 0.0
                best = ({k: v.copy() for k, v in p.items()}, {n: m[n] if n in computed else np.nan for n in m})
            else:
                wait += cfg["eval_every"]
                if wait >= hp["patience"]:
                    stopped_epoch, frozen = epoch, True
        m = {name: m[name] if name in computed else np.nan for name in train_lib.METRICS}
        if valid:
            last = dict(m)
        for name in train_lib.METRICS:
            curves[name].append(m[name] if valid else np.nan)
    restore = hp["restore_best"] > 0 and best_epoch > 0
    params, final = (best if restore else (p, last))
    return dict(params=params, final=final, curves={k: np.array(v) for k, v in curves.items()},
                best_epoch=best_epoch, stopped_epoch=stopped_epoch, diverged=diverged,
                diverged_epoch=diverged_epoch)


# ----------------------------------------------------------------------------- cases

BASE = dict(optimizer="sgd", epochs=6, batch_size=3, shuffle=False, eval_every=1, eval_test=False,
            monitor="val_loss", start_epoch=0, l1_mode="subgradient", penalize_bias=False, metrics=None)
HP = dict(learning_rate=0.5, momentum=0.0, lr_decay=0.0, l2=0.0, l1=0.0, weight_decay=0.0,
          patience=np.inf, min_delta=0.0, restore_best=0.0)

CASES = {
    # a smaller last batch, every penalty in the gradient, decay of the learning rate, an
    # evaluation every 2 epochs counted from epoch 3, restoring the best
    # (each case also leaves some metrics out: NaN in the result)
    "sgd-penalties-eval2": (dict(epochs=8, eval_every=2, eval_test=True, start_epoch=3,
                                 metrics=("epoch_loss", "penalty", "test_accuracy")),
                            dict(learning_rate=0.8, lr_decay=0.1, l2=0.03, l1=0.02, weight_decay=0.05,
                                 patience=4, min_delta=0.001, restore_best=1.0)),
    # heavy-ball momentum over biases too, a maximized monitor that stops early, no restore
    # (evaluations every 3 epochs: the epoch metrics are the block's last epoch's)
    "momentum-stops-on-accuracy": (dict(optimizer="momentum", batch_size=None, epochs=15, eval_every=3,
                                        monitor="val_accuracy", penalize_bias=True,
                                        metrics=("epoch_accuracy", "weight_norm")),
                                   dict(learning_rate=0.1, momentum=0.6, l2=0.01, patience=3)),
    # proximal L1 makes exact zeros; the training loss is monitored; stops with min_delta
    "proximal-train-loss": (dict(l1_mode="proximal", batch_size=2, monitor="train_loss", epochs=9,
                                 eval_every=3, metrics=("zero_fraction", "val_loss", "epoch_loss")),
                            dict(learning_rate=0.3, l1=0.15, min_delta=0.02, patience=1, restore_best=1.0)),
    # weight decay that multiplies the weights by about -1e110 a step: they overflow at the
    # third step, in epoch 2; the guard keeps the params of the end of epoch 1, curves go NaN
    "diverges": (dict(batch_size=4, epochs=5),
                 dict(learning_rate=1.0, weight_decay=1e110)),
    # a learning rate that overshoots: the best evaluation is the first, and it is restored
    "best-at-first": (dict(batch_size=None, epochs=4), dict(learning_rate=5.0, restore_best=1.0)),
    # no evaluation counts (start_epoch beyond the last): nothing to restore, the last params
    "no-best": (dict(epochs=3, start_epoch=10), dict(learning_rate=0.5, restore_best=1.0)),
}


DATA = {"momentum-stops-on-accuracy": dict(n_train=12, n_val=40, seed=2)}  # an accuracy that moves


def run_case(name, data=None, dtype=np.float64, **config_changes):
    cfg_over, hp_over = CASES[name]
    cfg = {**BASE, **cfg_over, **config_changes}
    hp = {**HP, **hp_over}
    data = data or make_data(**DATA.get(name, {}))
    model = linear_model()
    config = jaxreg.TrainConfig(model=model, loss="cross_entropy", dropout=False,
                                **{k: v for k, v in cfg.items()})
    p0 = jax.tree_util.tree_map(lambda a: a.astype(dtype), init_params())
    result = jax.jit(jaxreg.make_train(config))(jax.random.key(0), jaxreg.make_hparams(model, **hp), data,
                                       jax.tree_util.tree_map(jnp.asarray, p0))
    with np.errstate(all="ignore"):  # the diverging case overflows on purpose
        expected = np_train({**cfg, "proximal": cfg["l1_mode"] == "proximal", "minimize": config.minimize},
                            hp, data, p0)
    return result, expected


def assert_matches(result, expected):
    assert int(result.best_epoch) == expected["best_epoch"]
    assert int(result.stopped_epoch) == expected["stopped_epoch"]
    assert bool(result.diverged) == expected["diverged"]
    assert int(result.diverged_epoch) == expected["diverged_epoch"]
    for k in ("w", "b"):
        np.testing.assert_allclose(result.params[k], expected["params"][k], rtol=1e-9, atol=1e-12)
    for name in train_lib.METRICS:
        np.testing.assert_allclose(result.curves[name], expected["curves"][name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"curve {name}")
        np.testing.assert_allclose(result.final[name], expected["final"][name], rtol=1e-9, atol=1e-12,
                                   err_msg=f"final {name}")


@pytest.mark.parametrize("name", list(CASES))
def test_make_train_matches_the_numpy_loop(name, x64):
    result, expected = run_case(name)
    assert_matches(result, expected)
    # The cases exercise what they are named for.
    if name == "momentum-stops-on-accuracy":
        assert expected["stopped_epoch"] > 0 and expected["best_epoch"] > 3
    if name == "proximal-train-loss":
        assert expected["stopped_epoch"] > 0
        assert np.any(expected["params"]["w"] == 0) and expected["final"]["zero_fraction"] > 0
    if name == "sgd-penalties-eval2":
        assert expected["best_epoch"] >= 4 and expected["best_epoch"] % 2 == 0
    if name == "best-at-first":
        assert expected["best_epoch"] == 1
        assert not np.array_equal(expected["params"]["w"], run_case("no-best")[1]["params"]["w"])
    if name == "no-best":
        assert expected["best_epoch"] == 0 and np.isfinite(expected["final"]["val_loss"])
    if name == "diverges":
        assert expected["diverged_epoch"] == 2 and np.isnan(expected["curves"]["val_loss"][1:]).all()


def test_splits_of_one_example_are_evaluated(x64):
    # A validation and a test split of one example each still count (and are monitored).
    result, expected = run_case("sgd-penalties-eval2", make_data(n_val=1, n_test=1))
    assert_matches(result, expected)
    assert np.isfinite(expected["curves"]["test_accuracy"]).all()


def test_an_empty_validation_split_is_not_evaluated(x64):
    cfg_over, hp_over = CASES["proximal-train-loss"]
    CASES["no-val"] = ({**cfg_over, "metrics": None}, hp_over)
    try:
        result, expected = run_case("no-val", make_data(n_val=0))
    finally:
        del CASES["no-val"]
    assert_matches(result, expected)
    assert np.isnan(expected["curves"]["val_loss"]).all()


@pytest.mark.parametrize("shuffle", [False, True])
def test_float32_params_train_in_float32_whatever_the_x64_setting(shuffle):
    # The engine computes in the params' dtype: hparams, masks and data are cast to it, so
    # float32 params give the same bits with and without jax_enable_x64.
    runs = []
    for x64 in (False, True):
        with jax.enable_x64(x64):
            result, _ = run_case("sgd-penalties-eval2", dtype=np.float32, shuffle=shuffle)
            runs.append(jax.tree_util.tree_map(np.asarray, result))
    for a, b in zip(jax.tree_util.tree_leaves(runs[0]), jax.tree_util.tree_leaves(runs[1])):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert runs[1].params["w"].dtype == np.float32 and runs[1].curves["train_loss"].dtype == np.float32


def test_divergence_is_read_from_the_epoch_loss_when_it_is_computed(x64):
    # Weights of 1e160 give outputs whose squared error overflows while the weights stay finite
    # (a learning rate of 1e-300 barely moves them): the epoch's loss is inf. With the epoch
    # metrics computed that is divergence; without them only the params are checked.
    model = linear_model()
    data = make_data()
    p0 = {"w": jnp.full((N_FEATURES, N_CLASSES), 1e160), "b": jnp.zeros(N_CLASSES)}
    hp = jaxreg.make_hparams(model, learning_rate=1e-300)
    results = {}
    for metrics in (None, ("val_loss",)):
        config = jaxreg.TrainConfig(model=model, loss="squared_error", epochs=2, batch_size=None,
                                    dropout=False, metrics=metrics)
        results[metrics] = jax.jit(jaxreg.make_train(config))(jax.random.key(0), hp, data, p0)
    assert bool(results[None].diverged) and int(results[None].diverged_epoch) == 1
    assert not bool(results[("val_loss",)].diverged)
    assert np.isinf(results[("val_loss",)].curves["val_loss"]).all()


def test_evaluation_uses_the_trained_model_state(x64):
    # A stateful pair: training mode stores the batch mean of x in the state, evaluation
    # subtracts it. The final metrics must be those of the returned params and state.
    def init(key):
        return {"w": jnp.asarray(init_params()["w"])}, {"mean": jnp.zeros(N_FEATURES)}

    def apply(params, state, x, *, key=None, train=False):
        if train:
            state = {"mean": jnp.mean(x, axis=0)}
        return (x - state["mean"]) @ params["w"], state

    model = jaxreg.adapters.from_functions(init, apply, input_shape=(N_FEATURES,), stateful=True)
    data = make_data()
    config = jaxreg.TrainConfig(model=model, loss="cross_entropy", epochs=2, batch_size=None, shuffle=False,
                                dropout=False)
    result = jax.jit(jaxreg.make_train(config))(jax.random.key(0), jaxreg.make_hparams(model, learning_rate=0.5), data)
    mean = np.asarray(result.model_state["mean"])
    np.testing.assert_allclose(mean, data.train.x.mean(0), rtol=1e-12)
    params = {"w": np.asarray(result.params["w"]), "b": np.zeros(N_CLASSES)}
    for split in ("train", "val"):
        x, y = getattr(data, split)
        loss, acc = np_loss_acc(params, x - mean, y)
        np.testing.assert_allclose(result.final[f"{split}_loss"], loss, rtol=1e-9)
        np.testing.assert_allclose(result.final[f"{split}_accuracy"], acc, rtol=1e-12)
