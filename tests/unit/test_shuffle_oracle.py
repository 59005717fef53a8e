"""Shuffled training against the NumPy loop of ``test_engine_oracle.py``.

The oracle's cases train with ``shuffle=False``; here the same loop replays a fresh order each
epoch, drawn as the keys rule asks (split by name, ``fold_in`` of the loop counter: STYLE.md 3):
``permutation(fold_in(order_key, epoch), n)``, with ``order_key`` the second of the three keys
``make_train`` splits from the member's key (init, data order, dropout). Checked to catch a shuffle that reuses ``order_key`` every epoch (one order for
the whole run) instead of folding the epoch in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg
from test_engine_oracle import BASE, HP, assert_matches, init_params, linear_model, make_data, np_train


def test_each_epoch_shuffles_afresh_and_training_follows_those_orders(x64):
    cfg = {**BASE, "shuffle": True, "batch_size": 3, "epochs": 4}
    hp = {**HP, "learning_rate": 0.5, "l2": 0.01}
    data = make_data()
    model = linear_model()
    config = jaxreg.TrainConfig(model=model, loss="cross_entropy", dropout=False, **cfg)
    key = jax.random.key(7)
    p0 = init_params()
    result = jax.jit(jaxreg.make_train(config))(key, jaxreg.make_hparams(model, **hp), data,
                                               jax.tree_util.tree_map(jnp.asarray, p0))
    order_key = jax.random.split(key, 3)[1]
    n = len(data.train.y)

    def order_of_epoch(epoch):
        return np.asarray(jax.random.permutation(jax.random.fold_in(order_key, epoch), n))

    orders = {tuple(order_of_epoch(e).tolist()) for e in range(cfg["epochs"])}
    assert len(orders) > 1  # the epochs' orders differ: the replay tests the order of each epoch
    expected = np_train({**cfg, "proximal": False, "minimize": config.minimize}, hp, data, p0,
                        order_of_epoch=order_of_epoch)
    assert_matches(result, expected)
