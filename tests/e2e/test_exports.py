"""`jaxreg export`: a results folder in Optuna, MLflow and TensorBoard, read back by each tool.

Two small sweeps, trained once for the module: one with cases (a log-scaled axis, a listed
numeric axis, per-layer dropout lists) ranked by a loss to minimize, one by successive halving
ranked by an accuracy to maximize (pruned configs). Every expectation is computed here from the
journal and the curves files, not from jaxreg.report.exports.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from jaxreg import cli, report

ROOT = Path(__file__).resolve().parents[2]
CASES = {"name": "exp", "data": {"dataset": "blobs"}, "model": {"hidden": [4]},
         "train": {"loss": "bce", "epochs": 6, "eval_every": 2, "batch_size": 25},
         "hparams": {"learning_rate": {"logspace": [0.01, 1.0, 3]}},
         "cases": {"plain": {},
                   "reg": {"learning_rate": {"values": [0.1, 1.0]},
                           "dropout": {"values": [[0.0, 0.0], [0.0, 0.3]]}}},
         "search": {"seeds": 2}, "output": {"plots": False}}
HALVING = {"name": "exp-halving", "data": {"dataset": "blobs"}, "model": {"hidden": [4]},
           "train": {"loss": "bce", "epochs": 8, "batch_size": 25},
           "hparams": {"learning_rate": {"log_uniform": [0.001, 1.0]}, "l2": {"uniform": [0.0, 0.01]}},
           "search": {"method": "halving", "samples": 4, "eta": 2, "min_epochs": 2, "seeds": 2,
                      "metric": "val_accuracy", "goal": "maximize"},
           "output": {"plots": False}}


def _train(raw: dict, out: Path) -> Path:
    from jaxreg.sweeps import build_spec, run_sweep

    run_sweep(build_spec(raw), out, progress=False)
    return out


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory) -> Path:
    return _train(CASES, tmp_path_factory.mktemp("cases") / "exp")


@pytest.fixture(scope="module")
def halving_dir(tmp_path_factory) -> Path:
    return _train(HALVING, tmp_path_factory.mktemp("halving") / "exp-halving")


def _snapshot(folder: Path) -> dict:
    """Every file of a folder by its path and the SHA-256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _configs(folder: Path) -> dict[str, list[dict]]:
    """The journal's trials of each config id."""
    configs: dict[str, list[dict]] = {}
    for record in report.read_journal(folder):
        configs.setdefault(record["config_id"], []).append(record)
    return configs


def _seed_mean(trials: list[dict], metric: str) -> float:
    return sum(t["metrics"][metric] for t in trials) / len(trials)


def _curve_means(folder: Path, trials: list[dict], metric: str) -> dict[int, float]:
    """The seed mean of a curve at each evaluation epoch every seed reached."""
    loaded = [report.load_curves(folder, t["config_id"], t["seed"]) for t in trials]
    values = np.mean([np.asarray(c[f"curve/{metric}"], float) for c in loaded], axis=0)
    return {int(e): float(v) for e, v in zip(loaded[0]["epochs"], values) if math.isfinite(v)}


def _pruned(trials: list[dict]) -> bool:
    return any(t.get("pruned_epoch") is not None for t in trials)


# ---------------------------------------------------------------- Optuna

optuna = pytest.importorskip("optuna")


def test_optuna_a_study_per_case_holds_the_journals_seed_means(cases_dir, tmp_path, capsys):
    before = _snapshot(cases_dir)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert cli.main(["export", "optuna", str(cases_dir), "--storage", storage]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"study 'exp/plain' in {storage}: 3 trials added, 0 already there",
        f"study 'exp/reg' in {storage}: 4 trials added, 0 already there"]
    configs = _configs(cases_dir)
    studies = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert studies == {"exp/plain", "exp/reg"}
    for case in ("plain", "reg"):
        study = optuna.load_study(study_name=f"exp/{case}", storage=storage)
        assert study.direction == optuna.study.StudyDirection.MINIMIZE
        trials = study.get_trials()
        assert [t.user_attrs["config_id"] for t in trials] == [c for c, ts in configs.items() if ts[0]["case"] == case]
        for trial in trials:
            journal = configs[trial.user_attrs["config_id"]]
            point = {k: json.dumps(v) if isinstance(v, list) else v for k, v in journal[0]["point"].items()}
            assert trial.params == point
            assert trial.state == optuna.trial.TrialState.COMPLETE
            assert trial.value == pytest.approx(_seed_mean(journal, "val_loss"), rel=1e-12)
            expected = _curve_means(cases_dir, journal, "val_loss")
            assert list(trial.intermediate_values) == [2, 4, 6] == list(expected)
            assert trial.intermediate_values == pytest.approx(expected, rel=1e-12)
            assert trial.user_attrs["seeds"] == [0, 1] and trial.user_attrs["status"] == "finished"
            values = [t["metrics"]["val_loss"] for t in journal]
            assert trial.user_attrs["val_loss_sem"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(2))
    plain = optuna.load_study(study_name="exp/plain", storage=storage).trials[0].distributions
    assert plain == {"learning_rate": optuna.distributions.FloatDistribution(0.01, 1.0, log=True)}
    reg = optuna.load_study(study_name="exp/reg", storage=storage).trials[0].distributions
    assert reg == {"learning_rate": optuna.distributions.CategoricalDistribution([0.1, 1.0]),
                   "dropout": optuna.distributions.CategoricalDistribution(["[0.0, 0.0]", "[0.0, 0.3]"])}
    # Again: nothing added twice, and the results folder was never written.
    assert cli.main(["export", "optuna", str(cases_dir), "--storage", storage]) == 0
    assert "0 trials added, 4 already there" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="exp/reg", storage=storage).trials) == 4
    assert _snapshot(cases_dir) == before


def test_optuna_tools_read_the_study(cases_dir, tmp_path):
    pytest.importorskip("plotly")
    from jaxreg.report.exports import export_optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    export_optuna(cases_dir, storage)
    study = optuna.load_study(study_name="exp/reg", storage=storage)
    importances = optuna.importance.get_param_importances(study)
    assert set(importances) == {"learning_rate", "dropout"}
    assert sum(importances.values()) == pytest.approx(1.0)
    figure = optuna.visualization.plot_optimization_history(study)
    objective = next(d for d in figure.data if d.name == "Objective Value")
    assert list(objective.y) == [t.value for t in study.trials]
    figure = optuna.visualization.plot_intermediate_values(study)
    assert [list(d.x) for d in figure.data] == [[2, 4, 6]] * 4


def test_optuna_halving_prunes_and_maximizes(halving_dir, tmp_path):
    from jaxreg.report.exports import export_optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert export_optuna(halving_dir, storage) == [("exp-halving", 4, 0)]
    study = optuna.load_study(study_name="exp-halving", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    configs = _configs(halving_dir)
    states = set()
    for trial in study.trials:
        journal = configs[trial.user_attrs["config_id"]]
        assert trial.params == journal[0]["point"]
        assert trial.distributions == {"learning_rate": optuna.distributions.FloatDistribution(0.001, 1.0, log=True),
                                       "l2": optuna.distributions.FloatDistribution(0.0, 0.01)}
        rung = max(t["rungs"][-1]["epoch"] for t in journal)
        assert trial.user_attrs["rung"] == rung and max(trial.intermediate_values) == rung
        assert trial.intermediate_values == pytest.approx(_curve_means(halving_dir, journal, "val_accuracy"))
        if _pruned(journal):
            assert trial.state == optuna.trial.TrialState.PRUNED and trial.value is None
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE
            assert trial.value == pytest.approx(_seed_mean(journal, "val_accuracy"), rel=1e-12)
        states.add(trial.state)
    assert states == {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE}
    assert study.best_trial.user_attrs["status"] == "finished"


def test_optuna_refuses_a_study_of_another_sweep_and_a_database_in_the_folder(cases_dir, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=storage, study_name="exp/plain", direction="maximize")
    assert cli.main(["export", "optuna", str(cases_dir), "--storage", storage]) == 2
    error = capsys.readouterr().err
    assert error.startswith("jaxreg: error: --storage: expected study 'exp/plain' to be this sweep's") and error.count("\n") == 1
    assert optuna.load_study(study_name="exp/plain", storage=storage).trials == []
    inside = f"sqlite:///{cases_dir / 'study.db'}"
    assert cli.main(["export", "optuna", str(cases_dir), "--storage", inside]) == 2
    assert "expected a store outside the results folder" in capsys.readouterr().err
    assert not (cases_dir / "study.db").exists()
    assert cli.main(["export", "optuna", str(cases_dir), "--storage", "no-such-url"]) == 2
    assert capsys.readouterr().err.startswith("jaxreg: error: --storage: expected a database URL")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait_for_studies(base: str, server, deadline: float) -> list:
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read()
        try:
            return _get_json(f"{base}/api/studies")["study_summaries"]
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"optuna-dashboard did not answer on {base}")


def test_optuna_dashboard_lists_the_trials_and_shows_the_study(halving_dir, tmp_path):
    pytest.importorskip("optuna_dashboard")
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not dashboard.is_file() or not Path(chromium).is_file():
        pytest.skip("needs the optuna-dashboard command and chromium")
    from jaxreg.report.exports import export_optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    export_optuna(halving_dir, storage)
    base = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen([str(dashboard), storage, "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1]],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        (summary,) = _wait_for_studies(base, server, time.monotonic() + 90)
        assert summary["study_name"] == "exp-halving" and summary["directions"] == ["maximize"]
        detail = _get_json(f"{base}/api/studies/{summary['study_id']}")
        shown = {next(a["value"] for a in t["user_attrs"] if a["key"] == "config_id"): t
                 for t in detail["trials"]}
        configs = _configs(halving_dir)
        assert set(shown) == set(configs)
        for config_id, trial in shown.items():
            assert trial["state"] == ("Pruned" if _pruned(configs[config_id]) else "Complete")
            steps = {v["step"]: v["value"] for v in trial["intermediate_values"]}
            assert steps == pytest.approx(_curve_means(halving_dir, configs[config_id], "val_accuracy"))
        page = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
             "--dump-dom", "--virtual-time-budget=5000", f"{base}/dashboard/studies/{summary['study_id']}"],
            capture_output=True, text=True, timeout=120).stdout
        assert "<title>Optuna Dashboard</title>" in page and "exp-halving" in page and "val_accuracy" in page
    finally:
        server.kill()
        server.communicate(timeout=30)


# ---------------------------------------------------------------- MLflow

# MLflow's SQL store asks SQLAlchemy 2.1 for a loader it deprecates: MLflow's to change, not ours.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
def test_mlflow_a_run_per_config_with_the_journals_numbers_and_again_nothing_changes(cases_dir, halving_dir,
                                                                                      tmp_path, capsys):
    mlflow = pytest.importorskip("mlflow")
    before = _snapshot(cases_dir)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cli.main(["export", "mlflow", str(cases_dir), "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.rstrip().endswith("7 config runs added, 0 already there")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("exp")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("jaxreg.role") == "sweep"]
    children = {r.data.tags["jaxreg.config_id"]: r for r in runs if r.data.tags.get("jaxreg.role") == "config"}
    configs = _configs(cases_dir)
    assert set(children) == set(configs) and len(runs) == 8
    histories = {}
    for config_id, run in children.items():
        journal = configs[config_id]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        point = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in journal[0]["point"].items()}
        assert run.data.params == {**point, "config_id": config_id, "case": journal[0]["case"], "round": "0",
                                   "seeds": "[0, 1]"}
        for seed, trial in zip((0, 1), journal):
            assert run.data.metrics[f"val_loss/seed_{seed}"] == pytest.approx(trial["metrics"]["val_loss"], rel=1e-12)
            assert f"test_loss/seed_{seed}" not in run.data.metrics  # test metrics stay out
        history = client.get_metric_history(run.info.run_id, "val_loss")
        expected = _curve_means(cases_dir, journal, "val_loss")
        assert {m.step: m.value for m in history} == pytest.approx(expected, rel=1e-12) and len(history) == 3
        histories[config_id] = [(m.step, m.value, m.timestamp) for m in history]
    # Again: the same runs, the same histories; the folder untouched.
    assert cli.main(["export", "mlflow", str(cases_dir), "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 config runs added, 7 already there")
    again = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in again) == sorted(r.info.run_id for r in runs)
    for config_id, run in children.items():
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [(m.step, m.value, m.timestamp) for m in history] == histories[config_id]
    assert _snapshot(cases_dir) == before
    # A run an interrupted export left (no config id yet) is replaced; a pruned config is KILLED.
    left = next(iter(children.values()))
    client.delete_tag(left.info.run_id, "jaxreg.config_id")
    from jaxreg.report.exports import export_mlflow

    assert export_mlflow(cases_dir, uri)[1:] == (1, 6)
    assert client.get_run(left.info.run_id).info.lifecycle_stage == "deleted"
    _, added, _ = export_mlflow(halving_dir, uri)
    halving = client.search_runs([client.get_experiment_by_name("exp-halving").experiment_id],
                                 filter_string="tags.`jaxreg.role` = 'config'")
    assert added == 4 and {r.info.status for r in halving} == {"KILLED", "FINISHED"}
    for run in halving:
        pruned = _pruned(_configs(halving_dir)[run.data.tags["jaxreg.config_id"]])
        assert (run.info.status == "KILLED") == pruned == (run.data.tags["jaxreg.status"] == "pruned")


def test_mlflow_default_store_is_in_the_working_directory(monkeypatch):
    from jaxreg.report.exports import default_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_tracking_uri() == "http://127.0.0.1:5000"


# ---------------------------------------------------------------- TensorBoard


def _hparams_plugin(logdir: Path):
    """TensorBoard's own HParams plugin over ``logdir``: its /experiment and /session_groups."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug.test import Client

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    context = base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer,
                                    data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    apps = hparams_plugin.HParamsPlugin(context).get_plugin_apps()
    experiment = Client(apps["/experiment"]).post("/", json={"experimentName": ""})
    groups = Client(apps["/session_groups"]).post("/", json={
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
        "colParams": [], "startIndex": 0, "sliceSize": 100, "aggregationType": "AGGREGATION_AVG"})
    assert experiment.status_code == groups.status_code == 200
    return experiment.get_json(), groups.get_json()["sessionGroups"], multiplexer


def test_tensorboard_hparams_plugin_lists_a_session_group_per_config(cases_dir, capsys):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard.plugins.hparams.hparams_plugin")
    pytest.importorskip("werkzeug")
    assert cli.main(["export", "tensorboard", str(cases_dir)]) == 0
    logdir = cases_dir / "tensorboard-configs"
    assert capsys.readouterr().out.startswith(f"{logdir}: a session per config")
    from tensorboard.plugins.hparams import metadata

    configs = _configs(cases_dir)
    events = "events.out.tfevents.jaxreg-export"
    recorded = {f"tensorboard-configs/{name}" for name in ("jaxreg-export.json", events,
                                                           *(f"{c}/{events}" for c in configs))}
    assert recorded <= set(report.load_manifest(cases_dir)["files"])  # jaxreg's: --overwrite removes them
    assert {p.relative_to(cases_dir).as_posix() for p in logdir.rglob("*") if p.is_file()} == recorded
    experiment, groups, multiplexer = _hparams_plugin(logdir)
    infos = {h["name"]: h for h in experiment["hparamInfos"]}
    assert set(infos) == {"learning_rate", "dropout", "case", "status"}
    assert infos["learning_rate"]["domainInterval"] == {"minValue": 0.01, "maxValue": 1.0}
    assert infos["dropout"]["domainDiscrete"] == ["[0.0, 0.0]", "[0.0, 0.3]"]
    assert infos["case"]["domainDiscrete"] == ["plain", "reg"]
    tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert tags[0] == "final/val_loss" and "final/val_loss_sem" in tags and not any("test" in t for t in tags)
    assert sorted(g["name"] for g in groups) == sorted(configs)
    starts = {run: metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
              for run, tags in multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).items()
              if metadata.SESSION_START_INFO_TAG in tags}
    assert {run: start.group_name for run, start in starts.items()} == {c: c for c in configs}
    for group in groups:
        journal = configs[group["name"]]
        assert [s["name"] for s in group["sessions"]] == [group["name"]]
        point = {k: json.dumps(v) if isinstance(v, list) else v for k, v in journal[0]["point"].items()}
        assert group["hparams"] == {**point, "case": journal[0]["case"], "status": "finished"}
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for metric in ("val_loss", "val_accuracy", "train_loss"):
            assert values[f"final/{metric}"] == pytest.approx(_seed_mean(journal, metric), rel=1e-6)
    # Again: the same files, rewritten; a file of the user's there is left.
    (logdir / "notes.txt").write_text("mine")
    assert cli.main(["export", "tensorboard", str(cases_dir)]) == 0
    files = {p.relative_to(cases_dir).as_posix() for p in logdir.rglob("*") if p.is_file()}
    assert files == recorded | {"tensorboard-configs/notes.txt"}
    assert (logdir / "notes.txt").read_text() == "mine"
    (logdir / "notes.txt").unlink()


def test_tensorboard_pruned_configs_say_so_and_the_logdir_is_checked(halving_dir, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard.plugins.hparams.hparams_plugin")
    before = _snapshot(halving_dir)
    logdir = tmp_path / "board"
    assert cli.main(["export", "tensorboard", str(halving_dir), "--logdir", str(logdir)]) == 0
    assert _snapshot(halving_dir) == before  # elsewhere: the folder untouched
    _, groups, _ = _hparams_plugin(logdir)
    configs = _configs(halving_dir)
    for group in groups:
        pruned = _pruned(configs[group["name"]])
        assert group["hparams"]["status"] == ("pruned" if pruned else "finished")
    assert cli.main(["export", "tensorboard", str(halving_dir), "--logdir", str(logdir)]) == 0  # its own: rewritten
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    capsys.readouterr()
    for where in (tmp_path / "notes", halving_dir / "curves"):
        assert cli.main(["export", "tensorboard", str(halving_dir), "--logdir", str(where)]) == 2
        assert capsys.readouterr().err.startswith("jaxreg: error: --logdir: expected ")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine" and _snapshot(halving_dir) == before


def test_tensorboard_a_folder_written_before_the_record_of_files_exports_elsewhere(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    folder = tmp_path / "search-grid"
    shutil.copytree(ROOT / "results" / "search-grid", folder)
    assert cli.main(["export", "tensorboard", str(folder)]) == 2
    assert "predates jaxreg's record of its files" in capsys.readouterr().err
    assert not (folder / "tensorboard-configs").exists()
    assert cli.main(["export", "tensorboard", str(folder), "--logdir", str(tmp_path / "board")]) == 0
    assert len([p for p in (tmp_path / "board").iterdir() if p.is_dir()]) == 16


def test_tensorboard_overwrite_removes_the_exported_files(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\n[data]\ndataset = "blobs"\n[model]\nhidden = [4]\n[train]\nloss = "bce"\n'
                    'epochs = 2\nbatch_size = 50\n[hparams]\nlearning_rate = { values = [0.1, 0.2] }\n'
                    '[output]\nplots = false\n')
    out = tmp_path / "out"
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    assert cli.main(["export", "tensorboard", str(out)]) == 0
    assert len([p for p in (out / "tensorboard-configs").rglob("*") if p.is_file()]) == 4
    (out / "tensorboard-configs" / "mine.txt").write_text("not jaxreg's")
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet", "--overwrite"]) == 0
    left = [p.relative_to(out).as_posix() for p in (out / "tensorboard-configs").rglob("*") if p.is_file()]
    assert left == ["tensorboard-configs/mine.txt"]


# ---------------------------------------------------------------- missing extras


@pytest.mark.parametrize("target, module, extra", [("optuna", "optuna", "optuna"), ("mlflow", "mlflow", "mlflow"),
                                                   ("tensorboard", "tensorboardX", "tensorboard")])
def test_a_missing_extra_is_one_line_naming_it(target, module, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    folder = tmp_path / "search-grid"
    shutil.copytree(ROOT / "results" / "search-grid", folder)
    more = ["--storage", f"sqlite:///{tmp_path / 'x.db'}"] if target == "optuna" else []
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", target, str(folder), *more]) == 2
    assert capsys.readouterr().err == (f"jaxreg: error: export {target}: expected {module} installed, got none "
                                       f"(pip install 'jaxreg[{extra}]')\n")
    assert not any(p.name.endswith(".db") for p in tmp_path.iterdir())
