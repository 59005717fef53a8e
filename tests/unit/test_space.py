"""Search spaces, pure Python: bound parsing, sampling of every form, and coarse-to-fine zooming
of linear, log and integer axes, checked against windows worked out by hand."""

from __future__ import annotations

import math

import pytest

from jaxreg.errors import InputError
from jaxreg.sweeps import Space, parse_axis
from jaxreg.sweeps.space import Axis


def refused(call, message):
    with pytest.raises(InputError) as info:
        call()
    assert str(info.value) == message


# --- bounds ----------------------------------------------------------------------------------

def test_bounds_must_be_numbers_and_the_message_names_the_shape():
    refused(lambda: parse_axis("l2", {"uniform": [float("nan"), 1.0]}),
            "hparams.l2.uniform: expected numbers [lo, hi], got nan")
    refused(lambda: parse_axis("l2", {"linspace": [0.0, "1", 3]}),
            "hparams.l2.linspace: expected numbers [lo, hi, n], got '1'")
    refused(lambda: parse_axis("l2", {"uniform": [True, 1.0]}),
            "hparams.l2.uniform: expected numbers [lo, hi], got True")


# --- sampling --------------------------------------------------------------------------------

def test_random_sampling_keeps_fixed_values_and_draws_values_and_both_int_bounds():
    space = Space({"learning_rate": parse_axis("learning_rate", 0.25),
                   "l2": parse_axis("l2", {"values": [0.5, 0.75]}),
                   "patience": parse_axis("patience", {"int": [2, 3]})},
                  method="random", samples=40, seed=3)
    configs = space.configs(0)
    assert {c.hparams["learning_rate"] for c in configs} == {0.25}
    assert {c.hparams["l2"] for c in configs} == {0.5, 0.75}
    assert {c.hparams["patience"] for c in configs} == {2, 3}
    assert all(isinstance(c.hparams["patience"], int) for c in configs)
    assert space.varying() == ["l2", "patience"]


def test_varying_lists_each_swept_name_once_across_cases_in_order():
    space = Space({"learning_rate": parse_axis("learning_rate", 0.1)},
                  cases={"a": {"l2": parse_axis("l2", {"values": [0.0, 0.1]})},
                         "b": {"l2": parse_axis("l2", {"values": [0.2]}),
                               "learning_rate": parse_axis("learning_rate", {"values": [0.1, 0.2]})}})
    assert space.varying() == ["l2", "learning_rate"]


# --- zooming ---------------------------------------------------------------------------------

def grid_space(**axes):
    return Space({name: parse_axis(name, raw) for name, raw in axes.items()},
                 method="coarse_to_fine", round_method="grid")


def top_where(space, **point):
    return [c for c in space.configs(0) if all(c.point[k] == v for k, v in point.items())]


def test_linear_grid_axis_zooms_one_grid_step_each_side_and_slides_inside():
    space = grid_space(l2={"linspace": [0.0, 10.0, 11]})
    zoomed = lambda *values: space.zoom(None, [c for c in space.configs(0) if c.point["l2"] in values])[None]["l2"]
    assert (zoomed(3.0, 5.0).low, zoomed(3.0, 5.0).high) == (2.0, 6.0)
    assert (zoomed(0.0).low, zoomed(0.0).high) == (0.0, 2.0)   # [-1, 1] slid up to the bound
    assert (zoomed(10.0).low, zoomed(10.0).high) == (8.0, 10.0)
    assert zoomed(3.0, 5.0).form == "linspace" and zoomed(3.0, 5.0).num == 11


def test_min_width_widens_a_narrow_window_around_its_center():
    axis = parse_axis("l2", {"linspace": [0.0, 10.0, 11]})
    zoomed = axis.zoomed([5.0], axis, 0.1, 0.5)
    assert (zoomed.low, zoomed.high) == (2.5, 7.5)


def test_log_axis_keeps_its_exact_bounds_when_the_window_reaches_them():
    # exp(log(0.1)) is 0.10000000000000002 and exp(log(0.005)) 0.005000000000000002: the
    # original bounds must come back exactly, not through the log round trip.
    axis = parse_axis("l2", {"logspace": [0.005, 0.1, 3]})
    assert axis.zoomed([0.1], axis, 1.0, 0.0).high == 0.1
    assert axis.zoomed([0.005], axis, 1.0, 0.0).low == 0.005
    inside = axis.zoomed([0.02, 0.03], axis, 0.1, 0.0)  # in log space: padded by 0.1 of the width
    pad = 0.1 * math.log(0.1 / 0.005)
    assert inside.low == pytest.approx(0.02 * math.exp(-pad), rel=1e-12)
    assert inside.high == pytest.approx(0.03 * math.exp(pad), rel=1e-12)


def test_int_axis_zooms_to_whole_numbers_inside_the_original_range():
    space = grid_space(patience={"int": [2, 10]})   # a grid step is 1/8 of the width: 1
    zoomed = lambda *values: space.zoom(None, [c for c in space.configs(0) if c.point["patience"] in values])[None]["patience"]
    assert (zoomed(5, 7).low, zoomed(5, 7).high) == (4.0, 8.0)
    assert (zoomed(10).low, zoomed(10).high) == (8.0, 10.0)
    assert (zoomed(2).low, zoomed(2).high) == (2.0, 4.0)
    assert zoomed(5, 7).form == "int" and zoomed(5, 7).grid() == [4, 5, 6, 7, 8]
    # Random rounds pad by 5% of the width: [3.5, 6.5] rounds inwards to [4, 6].
    axis = parse_axis("shift", {"int": [0, 10]})
    narrow = axis.zoomed([4, 6], axis, 0.05, 0.0)
    assert (narrow.low, narrow.high) == (4.0, 6.0)
    assert isinstance(narrow.low, float) and isinstance(narrow.high, float)


def test_zoom_keeps_used_values_fixed_axes_and_cases_without_top_configs():
    space = Space({"learning_rate": parse_axis("learning_rate", 0.1)},
                  cases={"a": {"l2": parse_axis("l2", {"values": [0.0, 0.1, 0.2]}),
                               "momentum": parse_axis("momentum", {"choice": [0.5, 0.9]})},
                         "b": {"l2": parse_axis("l2", {"linspace": [0.0, 1.0, 5]})}},
                  method="coarse_to_fine", round_method="grid")
    configs = space.configs(0)
    top = [c for c in configs if c.case == "a" and c.point["l2"] in (0.0, 0.2) and c.point["momentum"] == 0.9]
    new = space.zoom(None, top)
    assert new["a"]["l2"].values == (0.0, 0.2)
    assert new["a"]["momentum"].values == (0.9,)
    assert new["a"]["learning_rate"] == space.cases["a"]["learning_rate"]
    assert new["b"] == space.cases["b"]
    # Only case b among the top: a keeps its axes, b zooms, and a second zoom starts from the first.
    top_b = [c for c in configs if c.case == "b" and c.point["l2"] == 0.5]
    once = space.zoom(None, top_b)
    assert once["a"] == space.cases["a"]
    assert (once["b"]["l2"].low, once["b"]["l2"].high) == (0.25, 0.75)
    second = space.configs(1, once)
    twice = space.zoom(once, [c for c in second if c.case == "b" and c.point["l2"] == 0.5])
    assert (twice["b"]["l2"].low, twice["b"]["l2"].high) == (0.375, 0.625)


def test_a_distribution_has_no_grid_and_says_so():
    refused(lambda: parse_axis("l2", {"uniform": [0.0, 1.0]}).grid(),
            "hparams.l2: { uniform = ... } is a distribution: expected search.method 'random' or "
            "'coarse_to_fine' with round_method 'random', got a grid search")


def test_defaults_grid_method_and_round_zero():
    space = Space({"l2": parse_axis("l2", {"values": [1.0, 2.0, 3.0]})})
    assert [c.hparams["l2"] for c in space.configs()] == [1.0, 2.0, 3.0]
    drawn = Space({"l2": parse_axis("l2", {"uniform": [0.0, 1.0]})}, method="random", samples=3, seed=1)
    assert drawn.configs() == drawn.configs(0) and drawn.configs() != drawn.configs(1)
    assert {c.round for c in drawn.configs()} == {0}


def test_grid_size_limits_are_inclusive_and_an_empty_grid_is_refused():
    big = {"patience": parse_axis("patience", {"int": [1, 1000]}),
           "l2": parse_axis("l2", {"linspace": [0.0, 1.0, 1000]})}
    Space(big)  # exactly MAX_GRID configs: accepted without listing them
    refused(lambda: Space({**big, "l1": parse_axis("l1", {"values": [0.0, 1.0]})}),
            "hparams: expected at most 1000000 configs in a grid, got 2000000")
    refused(lambda: Space({"l2": Axis("l2", "values", ())}),
            "hparams: expected at least one config, got an empty grid")


def test_a_zoomed_round_lists_the_zoomed_grid_of_each_case():
    space = Space({}, cases={"a": {"l2": parse_axis("l2", {"linspace": [0.0, 1.0, 5]})},
                             "b": {"l1": parse_axis("l1", {"values": [0.1, 0.2]})}},
                  method="coarse_to_fine", round_method="grid")
    top = [c for c in space.configs(0) if c.case == "a" and c.point["l2"] == 0.5]
    zoomed = space.zoom(None, top)
    later = space.configs(1, zoomed)
    assert [c.point["l2"] for c in later if c.case == "a"] == [0.25, 0.375, 0.5, 0.625, 0.75]
    assert [c.point["l1"] for c in later if c.case == "b"] == [0.1, 0.2]
    assert {c.round for c in later} == {1}


# --- parsing: every refusal with its exact message ------------------------------------------

FORMS = "values, linspace, logspace, int, choice, uniform, log_uniform"


@pytest.mark.parametrize("name, raw, message", [
    ("l2", {"uniform": [0.0]}, "hparams.l2.uniform: expected [lo, hi], got [0.0]"),
    ("l2", {"linspace": [0.0, 1.0]}, "hparams.l2.linspace: expected [lo, hi, n], got [0.0, 1.0]"),
    ("l2", {"uniform": [0.0, math.inf]}, "hparams.l2.uniform: expected finite bounds with lo <= hi, got [0.0, inf]"),
    ("l2", {"uniform": [-math.inf, 0.0]}, "hparams.l2.uniform: expected finite bounds with lo <= hi, got [-inf, 0.0]"),
    ("l2", {"uniform": [1.0, 0.5]}, "hparams.l2.uniform: expected finite bounds with lo <= hi, got [1.0, 0.5]"),
    ("l2", {"linspace": [0.0, 1.0, 2.0]}, "hparams.l2.linspace: expected a count n >= 1 in [lo, hi, n], got 2.0"),
    ("l2", {"linspace": [0.0, 1.0, True]}, "hparams.l2.linspace: expected a count n >= 1 in [lo, hi, n], got True"),
    ("patience", {"int": [1.5, 3]}, "hparams.patience.int: expected integers [lo, hi], got [1.5, 3]"),
    ("l2", {"values": 0.5}, "hparams.l2.values: expected a list, got 0.5"),
    ("l2", {"range": 1, "span": 2}, f"hparams.l2: expected exactly one of {FORMS} (and optionally layers), got 'range'"),
    ("dropout", {"layers": [0]}, f"hparams.dropout: expected exactly one of {FORMS} (and optionally layers), got nothing"),
    ("dropout", {"values": [0.5], "layers": []},
     "hparams.dropout.layers: expected a non-empty list of layer indices >= 0, got []"),
    ("dropout", {"values": [0.5], "layers": 5},
     "hparams.dropout.layers: expected a non-empty list of layer indices >= 0, got 5"),
    ("dropout", {"values": [0.5], "layers": [-1]},
     "hparams.dropout.layers: expected a non-empty list of layer indices >= 0, got [-1]"),
    ("dropout", {"values": [0.5], "layers": [True]},
     "hparams.dropout.layers: expected a non-empty list of layer indices >= 0, got [True]"),
    ("dropout", {"values": [0.5], "layers": [1.5]},
     "hparams.dropout.layers: expected a non-empty list of layer indices >= 0, got [1.5]"),
])
def test_parse_axis_refusals(name, raw, message):
    refused(lambda: parse_axis(name, raw), message)


def test_parse_axis_builds_the_axis_it_reads():
    assert parse_axis("l2", {"values": [1, 2]}, "cases.a.l2") == Axis("l2", "values", (1, 2))
    assert parse_axis("l2", {"values": [1, 2]}, "cases.a.l2").where == "cases.a.l2"
    assert parse_axis("l2", {"uniform": [0.5, 0.5]}, "cases.a.l2").where == "cases.a.l2"
    uniform = parse_axis("l2", {"uniform": [0.5, 0.5]})   # lo == hi is a range of one value
    assert (uniform.values, uniform.low, uniform.high, uniform.num, uniform.layers) == ((), 0.5, 0.5, 0, None)
    assert parse_axis("l2", {"linspace": [0, 1, 1]}).num == 1
    layered = parse_axis("dropout", {"uniform": [0.0, 0.5], "layers": [0, 2]})
    assert layered == Axis("dropout", "uniform", (), 0.0, 0.5, 0, (0, 2))
    assert parse_axis("dropout", {"choice": [0.1], "layers": [0]}).layers == (0,)
    # restore_best alone takes booleans, in a list too
    assert parse_axis("restore_best", {"values": [True, False]}).values == (True, False)


@pytest.mark.parametrize("name, raw, where, message", [
    ("patience", {"int": [0, 10]}, None, "hparams.patience: expected a number > 0 (inf: never stop), got 0.0"),
    ("dropout", {"values": [[0.0, 0.5], [0.2, 1.0]]}, "cases.a.dropout",
     "cases.a.dropout: expected drop probabilities in [0, 1), got 1.0"),
    ("learning_rate", -0.1, None, "hparams.learning_rate: expected a finite number > 0, got -0.1"),
    ("momentum", {"uniform": [0.5, 1.0]}, None, "hparams.momentum: expected a number in [0, 1), got 1.0"),
    ("shift", {"choice": [1, 2.5]}, None, "hparams.shift: expected a whole number of pixels >= 0, got 2.5"),
])
def test_parse_axis_refuses_a_value_out_of_its_fields_range(name, raw, where, message):
    """Each value an axis may take is checked when the spec is read (before JAX loads, see
    test_startup), with the message make_hparams gives, naming where the spec gives it."""
    with pytest.raises(InputError) as info:
        parse_axis(name, raw, where)
    assert str(info.value) == message


def test_space_defaults_and_a_layers_axis_on_a_model_without_those_layers():
    refused(lambda: Space({"dropout": parse_axis("dropout", {"values": [0.5], "layers": [0]})}),
            "hparams.dropout.layers: expected layer indices in [0, -1] (the model has 0), got [0]")
    c2f = Space({"l2": parse_axis("l2", {"values": [1.0, 2.0]})}, method="coarse_to_fine")  # grid rounds
    assert [c.point["l2"] for c in c2f.configs(0)] == [1.0, 2.0]
    drawn = Space({"l2": parse_axis("l2", {"uniform": [0.0, 1.0]})}, method="random")
    assert len(drawn.configs(0)) == 1
    assert drawn.configs(0) == Space(drawn.axes, method="random", samples=1, seed=0).configs(0)


def test_a_layers_axis_sets_its_layers_and_leaves_the_others_at_zero():
    space = Space({"dropout": parse_axis("dropout", {"values": [0.5], "layers": [0, 2]})},
                  layer_counts={"dropout": 3})
    assert [c.hparams["dropout"] for c in space.configs(0)] == [[0.5, 0.0, 0.5]]
