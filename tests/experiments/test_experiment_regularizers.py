"""The augmentation, transfer and batch-norm experiments: each committed results folder was made
by its spec as committed (resolved the same, trial for trial), so `jaxreg run` regenerates it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxreg.report import read_journal
from jaxreg.sweeps import config_id, load_spec
from jaxreg.sweeps.spec import compute_difference

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["augmentation", "transfer-pretrain", "transfer", "batch-norm", "lr-find"])
def test_results_folder_is_what_its_spec_computes(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # transfer.toml names results/transfer-pretrain from the repository root
    spec = load_spec(ROOT / "sweeps" / f"{name}.toml")
    manifest = json.loads((ROOT / "results" / name / "manifest.json").read_text())
    assert compute_difference(manifest["spec"], spec.resolved) is None
    journal = read_journal(ROOT / "results" / name)
    expected = {(config_id(c), seed) for c in spec.configs() for seed in spec.seeds}
    assert {(r["config_id"], r["seed"]) for r in journal} == expected
