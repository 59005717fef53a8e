"""The Optuna export in both goals, with a metric whose name does not say the goal.

``e2e/test_exports.py`` exports a sweep that minimizes ``val_loss`` and one that maximizes
``val_accuracy``: a direction guessed from the metric's name passes both. Here ``val_loss`` is
ranked with ``search.goal`` set either way (as ``test_goals.py`` does), and the study Optuna
reads back must have the goal's direction and the summary's best config as its best trial.
Checked to catch the study's direction taken from the metric's name instead of ``search.goal``.
"""

from __future__ import annotations

import json

import pytest

from jaxreg.report.exports import export_optuna
from jaxreg.report.summary import summarize
from test_goals import GOALS, _means, _sweep, ranked
from test_sweep import tiny

optuna = pytest.importorskip("optuna")


@pytest.mark.parametrize("goal", GOALS)
def test_the_optuna_study_has_the_goals_direction_and_the_summarys_best_as_its_best_trial(goal, tmp_path):
    out = tmp_path / "r"
    spec = tiny(hparams={"learning_rate": {"values": [0.001, 0.1, 0.5]}},
                search={"metric": "val_loss", "goal": goal, "seeds": 2, "chunk_size": 6})
    journal = _sweep(out, spec)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    ((name, added, there),) = export_optuna(out, storage)
    assert (added, there) == (3, 0)
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.direction == optuna.study.StudyDirection[goal.upper()]
    means = _means(journal)
    best = ranked(means, goal)[0]  # the journal's means ranked by hand in the goal's direction
    search = json.loads((out / "manifest.json").read_text())["spec"]["search"]
    assert summarize(journal, search)[0]["config_id"] == best
    assert study.best_trial.user_attrs["config_id"] == best
    assert study.best_value == pytest.approx(means[best], rel=1e-12)
