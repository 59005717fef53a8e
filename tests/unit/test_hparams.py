"""jaxreg.hparams: what make_hparams builds, every range check at and beyond its bounds, the
check in the params' dtype, stacking and casting."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg
from jaxreg import hparams as hparams_lib
from jaxreg.errors import InputError
from jaxreg.hparams import DEFAULTS, RANGED, HParams, as_dtype, check_dtype, check_range, make_hparams, stack_hparams

NET = jaxreg.mlp((2, 8, 8, 1))  # 3 dropout rates (input and two hidden layers), 3 DropConnect rates

# Written out here, not read from the module: for each field, values that must pass (its bounds
# where they are allowed), values that must be refused (its bounds where they are not, and just
# beyond), and the words of the message.
RANGES = {
    "learning_rate": ([1e-300, 1e300], [0.0, -1e-9, math.inf, math.nan], "a finite number > 0"),
    "momentum": ([0.0, 0.999], [1.0, -1e-9, 1.5], "a number in [0, 1)"),
    "lr_decay": ([0.0, 0.999], [1.0, -1e-9], "a number in [0, 1)"),
    "l2": ([0.0, 1e300], [-1e-9, math.inf], "a finite number >= 0"),
    "l1": ([0.0, 1e300], [-1e-9, math.inf], "a finite number >= 0"),
    "weight_decay": ([0.0, 1e300], [-1e-9, math.inf], "a finite number >= 0"),
    "dropout": ([0.0, 0.999], [1.0, -1e-9], "drop probabilities in [0, 1)"),
    "dropconnect": ([0.0, 0.999], [1.0, -1e-9], "drop probabilities in [0, 1)"),
    "patience": ([1e-9, 3.0, math.inf], [0.0, -1.0, math.nan], "a number > 0 (inf: never stop)"),
    "min_delta": ([0.0, 1e300], [-1e-9, math.inf], "a finite number >= 0"),
    "restore_best": ([0.0, 1.0], [0.5, -1.0, 2.0], "0 or 1 (or a bool)"),
    "bn_momentum": ([0.0, 0.999], [1.0, -1e-9], "a number in [0, 1)"),
    "bn_epsilon": ([1e-300, 1e300], [0.0, -1e-9, math.inf], "a finite number > 0"),
    "trainable_layers": ([1.0, 7.0, math.inf], [0.0, 1.5, -1.0, -math.inf], "a whole number >= 1 (inf: every layer)"),
    "layer_lr_decay": ([1e-9, 1.0], [0.0, 1.0 + 1e-9, -0.5], "a number in (0, 1]"),
    "flip": ([0.0, 1.0], [1.0 + 1e-9, -1e-9], "a probability in [0, 1]"),
    "shift": ([0.0, 3.0, 1e6], [0.5, -1.0, math.inf], "a whole number of pixels >= 0"),
    "rotate": ([0.0, 180.0], [180.0 + 1e-9, -1e-9], "degrees in [0, 180]"),
    "zoom": ([0.0, 0.999], [1.0, -1e-9], "a number in [0, 1)"),
    "shear": ([0.0, 89.9], [90.0, -1e-9], "degrees in [0, 90)"),
    "blur": ([0.0, 1e300], [-1e-9, math.inf], "a finite sigma >= 0 (pixels)"),
    "brightness": ([0.0, 1.0], [1.0 + 1e-9, -1e-9], "a number in [0, 1]"),
    "contrast": ([0.0, 0.999], [1.0, -1e-9], "a number in [0, 1)"),
    "saturation": ([0.0, 0.999], [1.0, -1e-9], "a number in [0, 1)"),
    "noise": ([0.0, 1e300], [-1e-9, math.inf], "a finite standard deviation >= 0"),
}


def message(name: str, value: float, where: str | None = None) -> str:
    return f"{where or f'hparams.{name}'}: expected {RANGES[name][2]}, got {value}"


def test_every_field_is_ranged_and_covered_here():
    assert RANGED == set(HParams._fields) == set(RANGES)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_check_range_accepts_the_bounds_it_includes_and_refuses_the_rest(name):
    allowed, refused, _ = RANGES[name]
    for value in allowed:
        check_range(name, np.asarray(value))
        check_range(name, np.asarray([value, value]))
    for value in refused:
        with pytest.raises(InputError) as info:
            check_range(name, np.asarray(value))
        assert str(info.value) == message(name, value)
        assert info.value.field == f"hparams.{name}"


@pytest.mark.parametrize("name", sorted(RANGES))
def test_make_hparams_refuses_what_check_range_refuses_with_the_same_message(name):
    for value in RANGES[name][1]:
        with pytest.raises(InputError) as info:
            make_hparams(NET, **{name: value})
        assert str(info.value) == message(name, value)


def test_check_range_names_where_and_the_first_refused_element():
    values = np.array([[0.1, 0.2], [1.5, -3.0]])
    with pytest.raises(InputError) as info:
        check_range("dropout", values, where="cases.wide.dropout")
    assert str(info.value) == "cases.wide.dropout: expected drop probabilities in [0, 1), got 1.5"
    with pytest.raises(KeyError):  # a name check_range does not know is a programming error, not input
        check_range("lr", np.asarray(0.1))


def test_make_hparams_defaults_and_shapes():
    hp = make_hparams(NET)
    assert isinstance(hp, HParams)
    for name in HParams._fields:
        value = getattr(hp, name)
        assert value.dtype == np.float64, name
        if name in ("dropout", "dropconnect"):
            assert value.shape == (3,), name
            np.testing.assert_array_equal(value, np.zeros(3))
        elif name == "restore_best":
            assert value.shape == () and value == 0.0  # patience is inf: no early stopping, last params
        else:
            assert value.shape == (), name
            assert value == DEFAULTS[name], name
    assert (hp.learning_rate, hp.momentum, hp.patience, hp.bn_momentum, hp.bn_epsilon, hp.trainable_layers) == (
        0.01, 0.9, math.inf, 0.99, 1e-5, math.inf)


def test_make_hparams_takes_a_scalar_rate_for_every_layer_or_one_per_layer():
    assert make_hparams(NET, dropout=0.25).dropout.tolist() == [0.25, 0.25, 0.25]
    assert make_hparams(NET, dropconnect=[0.0, 0.1, 0.2]).dropconnect.tolist() == [0.0, 0.1, 0.2]
    assert make_hparams(NET, restore_best=True).restore_best == 1.0
    assert make_hparams(NET, patience=5).restore_best == 1.0  # early stopping on: the best params
    assert make_hparams(NET, patience=5, restore_best=0).restore_best == 0.0
    for name, value, said in [("dropout", [0.1, 0.2], "a scalar or 3 per-layer rates, got [0.1, 0.2]"),
                              ("dropconnect", [[0.1, 0.1, 0.1]], "a scalar or 3 per-layer rates, got [[0.1, 0.1, 0.1]]"),
                              ("learning_rate", [0.1], "a number, got [0.1]"),
                              ("momentum", "fast", "a number, got 'fast'"),
                              ("l2", {"a": 1}, "a number, got {'a': 1}")]:
        with pytest.raises(InputError) as info:
            make_hparams(NET, **{name: value})
        assert str(info.value) == f"hparams.{name}: expected {said}"


def test_make_hparams_refuses_an_unknown_name_listing_the_fields():
    with pytest.raises(InputError) as info:
        make_hparams(NET, learning_rate=0.1, lr=0.1, zz=1)
    assert str(info.value) == f"hparams: expected names among {', '.join(HParams._fields)}, got 'lr'"


def test_check_dtype_refuses_what_the_params_dtype_cannot_hold():
    tiny32 = np.finfo(np.float32).tiny
    limits = f"(magnitudes 0 or {tiny32:.3g} to {np.finfo(np.float32).max:.3g})"
    assert limits == "(magnitudes 0 or 1.18e-38 to 3.4e+38)"
    for name, value in [("learning_rate", 1e-45), ("learning_rate", 1e39), ("bn_epsilon", float(tiny32) / 2),
                        ("patience", 1e-40), ("l2", 1e39), ("layer_lr_decay", 1e-39)]:
        hp = make_hparams(NET, **{name: value})
        check_dtype(hp, np.float64)  # float64 holds it
        with pytest.raises(InputError) as info:
            check_dtype(hp, np.float32)
        assert str(info.value) == (f"hparams.{name}: expected {RANGES[name][2]} that float32 holds {limits}, "
                                   f"got {value!r}")
    # What rounds to an allowed value passes: 1e-50 is 0 in float32 and l2 may be 0; tiny is normal.
    check_dtype(make_hparams(NET, l2=1e-50, learning_rate=float(tiny32), patience=1e39), np.float32)
    check_dtype(stack_hparams([make_hparams(NET), make_hparams(NET, dropout=0.5)]), np.float32)


def test_stack_hparams_is_np_stack_of_each_field():
    members = [make_hparams(NET, learning_rate=0.1 * (i + 1), dropout=[0.1 * i, 0.0, 0.2], patience=3 + i)
               for i in range(4)]
    stacked = stack_hparams(members)
    assert isinstance(stacked, HParams)
    for name in HParams._fields:
        expected = np.stack([getattr(m, name) for m in members])
        got = getattr(stacked, name)
        assert got.shape == (4, *getattr(members[0], name).shape)
        np.testing.assert_array_equal(got, expected)
    assert stacked.learning_rate.tolist() == [0.1, 0.2, 0.30000000000000004, 0.4]
    assert stack_hparams(m for m in members[:1]).dropout.shape == (1, 3)  # any iterable
    with pytest.raises(InputError) as info:
        stack_hparams([])
    assert str(info.value) == "hparams: expected at least one member, got an empty list"


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_as_dtype_casts_every_field_to_jax_arrays(dtype):
    hp = stack_hparams([make_hparams(NET, learning_rate=0.1, dropout=0.3), make_hparams(NET, learning_rate=1 / 3)])
    cast = as_dtype(hp, dtype)
    assert isinstance(cast, HParams)
    for name in HParams._fields:
        got = getattr(cast, name)
        assert isinstance(got, jax.Array) and got.dtype == dtype, name
        np.testing.assert_array_equal(np.asarray(got), getattr(hp, name).astype(dtype), err_msg=name)


def test_the_module_needs_no_jax_to_check_a_spec():
    # The spec is checked before JAX loads: only as_dtype may import it, inside the function.
    tree = ast.parse(Path(hparams_lib.__file__).read_text())
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert top == {"__future__", "math", "typing", "numpy", "jaxreg"}
