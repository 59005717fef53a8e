"""Tests for jaxreg.layout: all_finite over every leaf, and the params layouts by name.

Both layouts are also trained side by side in test_train.py (the tree layout trains like the flat one)
and stepped in test_step.py (the step works on the flat layout).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg.layout import all_finite, layout


def test_all_finite_checks_every_leaf():
    ones = jnp.ones(2)
    assert bool(all_finite({"a": ones, "b": ones, "c": ones}))
    for bad in ("a", "b", "c"):
        tree = {"a": ones, "b": ones, "c": ones, bad: jnp.array([1.0, jnp.nan])}
        assert not bool(all_finite(tree)), bad


def test_tree_layout_carries_the_params_as_they_are_and_a_bad_name_is_refused():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    tree = layout("tree", params)
    assert tree.pack(params) is params and tree.unpack(params) is params
    flat = layout("flat", params)
    assert flat.pack(params).shape == (9,)
    np.testing.assert_array_equal(flat.unpack(flat.pack(params))["w"], params["w"])
    with pytest.raises(jaxreg.InputError) as error:
        layout("rows", params)
    assert str(error.value) == "layout: expected one of 'flat', 'tree', got 'rows'"
