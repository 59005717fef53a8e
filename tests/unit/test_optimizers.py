"""Tests for jaxreg.optimizers: names are checked with their field.

What each optimizer computes is checked against NumPy and against optax by hand in test_step.py
(every optimizer, every penalty) and test_engine_oracle.py.
"""

from __future__ import annotations

import pytest

import jaxreg


def test_optimizer_and_l1_mode_names_are_checked_with_their_field():
    hp = jaxreg.make_hparams(jaxreg.mlp((2, 2)))
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.optimizers.direction("adagrad", hp)
    assert str(error.value) == ("optimizer: expected one of 'sgd', 'momentum', 'ema_momentum', 'adam', 'adamw', "
                                "got 'adagrad'")
    with pytest.raises(jaxreg.InputError) as error:
        jaxreg.optimizers.optimizer("sgd", hp, 0.1, l1_mode="ista")
    assert str(error.value) == "l1_mode: expected one of 'subgradient', 'proximal', got 'ista'"
