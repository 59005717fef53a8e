"""jaxreg.sweeps.spec: what a valid spec becomes. Defaults filled in, paths resolved against the
spec's folder (an override's against the working directory), --set and --unset overrides, and
cases grouped by their static setup. (Refusals: test_spec_errors.py.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jaxreg.errors import InputError
from jaxreg.sweeps import spec as spec_lib
from jaxreg.sweeps.spec import (MODEL_DEFAULTS, OUTPUT_DEFAULTS, TRAIN_DEFAULTS, anchor_paths, apply_overrides,
                                check_spec, parse_override, read_spec, spread_hparams)

MINIMAL = {"data": {"dataset": "digits"}}


@pytest.fixture(autouse=True)
def own_sys_path(monkeypatch):
    """read_spec appends the spec's folder to sys.path: each test's appends are undone."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(spec_lib, "SEARCHED_LAST", [])


# --- defaults -----------------------------------------------------------------------------------

def test_a_minimal_spec_gets_every_default():
    s = check_spec(MINIMAL, default_name="from-the-file")
    assert (s.name, s.description, s.seeds) == ("from-the-file", "", (0,))
    assert (s.base.dataset, s.base.data_seed, s.base.data_dir) == ("digits", 0, None)
    assert s.base.options == {"dtype": "float32"}  # the data come in the train dtype
    assert s.base.model == MODEL_DEFAULTS and s.base.model is not MODEL_DEFAULTS
    assert s.base.train == TRAIN_DEFAULTS and s.output == OUTPUT_DEFAULTS
    assert s.base.raw == ({"dataset": "digits"}, {}, {})
    assert s.search == {"method": "grid", "seeds": [0], "samples": 16, "rounds": 1, "top_k": 3,
                        "round_method": "grid", "min_width": 0.01, "seed": 0, "metric": "val_loss",
                        "goal": "minimize", "chunk_size": None, "memory_budget_mb": "auto"}
    assert s.groups == (((None,), None),) and s.axes == {} and s.cases == {}
    assert check_spec(MINIMAL).name == "sweep"


def test_given_values_win_over_defaults_and_the_rest_stay():
    s = check_spec({"name": "mine", "description": "why", "data": {"dataset": "digits", "seed": 4, "n_train": 60},
                    "model": {"hidden": [8, 4], "activation": "tanh"},
                    "train": {"optimizer": "adam", "epochs": 4, "dtype": "float64"},
                    "search": {"seeds": 3, "chunk_size": 8}, "output": {"plots": False}})
    assert (s.name, s.description, s.base.data_seed, s.seeds) == ("mine", "why", 4, (0, 1, 2))
    assert s.base.options == {"n_train": 60, "dtype": "float64"}
    assert s.base.model == {**MODEL_DEFAULTS, "hidden": [8, 4], "activation": "tanh"}
    assert s.base.train == {**TRAIN_DEFAULTS, "optimizer": "adam", "epochs": 4, "dtype": "float64"}
    assert s.search["chunk_size"] == 8 and s.output == {**OUTPUT_DEFAULTS, "plots": False}
    assert check_spec({**MINIMAL, "search": {"seeds": [7, 3]}}).seeds == (7, 3)  # a list: as given, in order


@pytest.mark.parametrize("metric, goal", [("val_loss", "minimize"), ("val_accuracy", "maximize"),
                                          ("val_rmse", "minimize"), ("val_mae", "minimize"),
                                          ("val_r2", "maximize"), ("train_loss", "minimize")])
def test_the_goal_follows_the_metric_unless_given(metric, goal):
    assert check_spec({**MINIMAL, "search": {"metric": metric}}).search["goal"] == goal
    other = "maximize" if goal == "minimize" else "minimize"
    assert check_spec({**MINIMAL, "search": {"metric": metric, "goal": other}}).search["goal"] == other


@pytest.mark.parametrize("method, given, expected", [("grid", None, "grid"), ("grid", "random", "grid"),
                                                     ("random", None, "random"), ("random", "grid", "random"),
                                                     ("coarse_to_fine", None, "random"),
                                                     ("coarse_to_fine", "grid", "grid")])
def test_round_method_follows_the_method(method, given, expected):
    search = {"method": method, **({"round_method": given} if given else {})}
    assert check_spec({**MINIMAL, "search": search}).search["round_method"] == expected


# --- paths --------------------------------------------------------------------------------------

def test_anchor_paths_resolves_relative_paths_of_the_spec_and_its_cases(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    raw = {"data": {"dataset": "csv", "path": "d/train.csv", "val_path": "../v.csv", "test_path": "/abs/t.csv",
                    "target": "y"},
           "model": {"pretrained": "w.npz", "hidden": [8]},
           "cases": {"a": {"data": {"path": "~/a.csv"}}, "b": {"l2": 0.1}}}
    anchored = anchor_paths(raw, tmp_path / "specs")
    assert anchored["data"] == {"dataset": "csv", "path": str(tmp_path / "specs" / "d" / "train.csv"),
                                "val_path": str(tmp_path / "v.csv"), "test_path": "/abs/t.csv", "target": "y"}
    assert anchored["model"] == {"pretrained": str(tmp_path / "specs" / "w.npz"), "hidden": [8]}
    assert anchored["cases"] == {"a": {"data": {"path": str(tmp_path / "home" / "a.csv")}}, "b": {"l2": 0.1}}
    assert raw["data"]["path"] == "d/train.csv"  # a copy: what was given is untouched
    assert anchor_paths({"data": {"path": ""}, "cases": "not a table"}, tmp_path) == {
        "data": {"path": ""}, "cases": "not a table"}


def test_read_spec_anchors_the_specs_paths_at_its_folder_and_an_overrides_at_the_working_directory(
        tmp_path, monkeypatch):
    folder, here = tmp_path / "specs", tmp_path / "here"
    folder.mkdir(), here.mkdir()
    path = folder / "spec.toml"
    path.write_text('name = "s"\n[data]\ndataset = "csv"\npath = "train.csv"\nval_path = "val.csv"\n',
                    encoding="utf-8-sig")  # with a byte order mark, as some editors write
    monkeypatch.chdir(here)
    raw = read_spec(path, ["data.val_path=other/val.csv", "train.epochs=3"])
    assert raw == {"name": "s", "data": {"dataset": "csv", "path": str(folder / "train.csv"),
                                         "val_path": str(here / "other" / "val.csv")}, "train": {"epochs": 3}}
    assert str(folder.resolve()) in sys.path[-2:] and str(Path.cwd()) in sys.path[-2:]  # searched last
    assert read_spec(Path(os.path.relpath(path)))["data"]["path"] == str(folder / "train.csv")


# --- overrides ----------------------------------------------------------------------------------

def test_parse_override_reads_toml_values_and_bare_words_as_strings():
    cases = {"train.epochs=50": (["train", "epochs"], 50),
             "train.shuffle=false": (["train", "shuffle"], False),
             " hparams.l2 = 1e-3 ": (["hparams", "l2"], 1e-3),
             "hparams.learning_rate={ values = [0.1, 0.01] }": (["hparams", "learning_rate"], {"values": [0.1, 0.01]}),
             "model.hidden=[8, 8]": (["model", "hidden"], [8, 8]),
             'name="quoted"': (["name"], "quoted"),
             "data.dataset=mnist": (["data", "dataset"], "mnist"),
             "data.data_dir=../data": (["data", "data_dir"], "../data"),
             "train.penalty_mask=pkg.module:function": (["train", "penalty_mask"], "pkg.module:function"),
             "cases.wide-1.l2=0": (["cases", "wide-1", "l2"], 0)}
    assert {text: parse_override(text) for text in cases} == cases
    for text, message in [("train.epochs", "--set: expected KEY=VALUE with a dotted KEY such as train.epochs=50, "
                                           "got 'train.epochs'"),
                          ("train..epochs=1", "--set: expected KEY=VALUE with a dotted KEY such as train.epochs=50, "
                                              "got 'train..epochs=1'"),
                          ("name=two words", "--set name: expected a TOML value, got 'two words'")]:
        with pytest.raises(InputError) as info:
            parse_override(text)
        assert str(info.value) == message


def test_apply_overrides_sets_in_order_makes_tables_and_unsets():
    raw = {"train": {"epochs": 10}, "search": {"eta": 3, "seeds": 2}}
    out = apply_overrides(raw, ["train.epochs=5", "hparams.l2=0.1", "train.epochs=7", "!search.eta",
                                "cases.a.model.hidden=[4]"])
    assert out == {"train": {"epochs": 7}, "search": {"seeds": 2}, "hparams": {"l2": 0.1},
                   "cases": {"a": {"model": {"hidden": [4]}}}}
    assert raw == {"train": {"epochs": 10}, "search": {"eta": 3, "seeds": 2}}  # a copy
    assert apply_overrides(raw, ["search.eta=2", "!search.eta"])["search"] == {"seeds": 2}
    for overrides, message in [
            (["train.epochs.x=1"], "--set train.epochs.x: expected train.epochs to be a table, got 10"),
            (["!search.seed"], "--unset search.seed: expected a key the spec sets (eta, seeds), got one it does "
                               "not set (did you mean 'seeds'?)"),
            (["!output.plots"], "--unset output.plots: expected a key the spec sets, got one it does not set")]:
        with pytest.raises(InputError) as info:
            apply_overrides(raw, overrides)
        assert str(info.value) == message


def test_an_hparams_override_lands_in_every_case_that_does_not_set_it():
    raw = {"cases": {"a": {"l2": 0.1}, "b": {}, "c": {"dropout": 0.5}}}
    assert spread_hparams(raw, ["hparams.l2=0.2", "train.epochs=3", "!hparams.l1"]) == [
        "note: --set hparams.l2 applies to every case that does not set l2 itself: b, c "
        "(use --set cases.NAME.l2=... for one case)"]
    assert spread_hparams(raw, ["hparams.dropout=0.1"])[0].startswith(
        "note: --set hparams.dropout applies to every case that does not set dropout itself: a, b ")
    assert spread_hparams({"cases": {"a": {"l2": 0.1}}}, ["hparams.l2=0.2"]) == []
    assert spread_hparams({}, ["hparams.l2=0.2"]) == []


def test_overrides_reach_the_checked_spec():
    raw = apply_overrides(MINIMAL, ["train.epochs=4", "search.seeds=[3, 1]", "hparams.l2={ values = [0.0, 0.1] }"])
    s = check_spec(raw)
    assert (s.base.train["epochs"], s.seeds, list(s.axes)) == (4, (3, 1), ["l2"])


# --- cases and variants -------------------------------------------------------------------------

def test_cases_sharing_a_static_setup_share_a_group_in_case_order():
    s = check_spec({**MINIMAL, "model": {"hidden": [8]}, "train": {"epochs": 4},
                    "hparams": {"learning_rate": 0.1},
                    "cases": {"plain": {"l2": 0.01},
                              "wide": {"model": {"hidden": [16]}, "dropout": 0.5},
                              "none": {},
                              "wide_long": {"model": {"hidden": [16]}, "train": {"epochs": 8}},
                              "wide_again": {"model": {"hidden": [16]}, "l1": 0.001}}})
    names = [group[0] for group in s.groups]
    assert names == [("plain", "none"), ("wide", "wide_again"), ("wide_long",)]
    assert s.groups[0][1] is None  # the spec's own tables
    wide, long = s.groups[1][1], s.groups[2][1]
    assert wide.model == {**MODEL_DEFAULTS, "hidden": [16]} and wide.train == {**TRAIN_DEFAULTS, "epochs": 4}
    assert long.model == wide.model and long.train == {**TRAIN_DEFAULTS, "epochs": 8}
    assert wide.raw == ({"dataset": "digits"}, {"hidden": [16]}, {"epochs": 4})
    assert list(s.cases) == ["plain", "wide", "none", "wide_long", "wide_again"]
    assert list(s.cases["plain"]) == ["l2"] and list(s.cases["wide"]) == ["dropout"] and s.cases["none"] == {}
    assert list(s.axes) == ["learning_rate"]


def test_a_cases_static_override_is_checked_and_blamed_on_the_case():
    with pytest.raises(InputError) as info:
        check_spec({**MINIMAL, "cases": {"ok": {}, "bad": {"train": {"optimizer": "adam", "shuffle": 1}}}})
    assert str(info.value) == "cases.bad.train.shuffle: expected true or false, got 1"
