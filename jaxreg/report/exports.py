"""A results folder in the tools people already use: an Optuna study, MLflow runs, TensorBoard's HPARAMS tab.

Each export reads the folder (:func:`jaxreg.report.folder.load_folder`) and writes one entry per
config, with the numbers of ``summary.csv``: the seed mean of each metric at the returned params
(the journal's), and the seed mean of each curve at every evaluation epoch (the curves files'):

- :func:`export_optuna`: one study per case (``NAME``, or ``NAME/CASE``) in an Optuna storage, one
  trial per config: its swept values with their distributions (``FloatDistribution(log=True)``
  where the spec samples an axis on a log scale, categorical for lists), the search metric as its
  value and its curve as intermediate values; pruned configs are ``PRUNED``, diverged ones ``FAIL``.
- :func:`export_mlflow`: a parent run per sweep and a child run per config in an MLflow tracking
  store: the swept values as params, each curve as a metric history (``step`` = epoch), each
  seed's final value as ``METRIC/seed_S``.
- :func:`export_tensorboard`: the HParams plugin's files, an experiment declaring every swept
  hparam (with its domain) and metric, and one session per config (group name: its config id)
  holding the seed means: ``tensorboard --logdir DIR/tensorboard-configs``.

Every export may run again: Optuna and MLflow entries are found by their config id and never
added twice (an entry already there is left as it is), and the TensorBoard files an export wrote
are replaced (nothing else in the logdir is touched). Test metrics stay out: jaxreg reports them for the selected configs only, so that the
test set plays no part in choosing (``jaxreg best``). Nothing here writes into the results folder
but ``tensorboard-configs/``, its files recorded in the manifest as jaxreg's. The libraries are optional
extras, imported when an export runs (``pip install 'jaxreg[optuna]'``, ``'jaxreg[mlflow]'``,
``'jaxreg[tensorboard]'``).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import numpy as np

from jaxreg.errors import InputError
from jaxreg.names import REGRESSION_METRICS, metric_names
from jaxreg.report.folder import LOG_FORMS, Folder, distinct, load_folder
from jaxreg.report.store import FORMAT, MANIFEST, load_manifest, record_files, spec_sha256
from jaxreg.report.summary import REPORTED, REPORTED_REGRESSION, as_float, is_number

__all__ = ["TENSORBOARD_CONFIGS", "ConfigResult", "config_results", "export_mlflow", "export_optuna",
           "export_tensorboard", "study_name"]

TENSORBOARD_CONFIGS = "tensorboard-configs"  # the default logdir of export_tensorboard, in the folder
RANGE_FORMS = ("linspace", "logspace", "uniform", "log_uniform")
MARK = "jaxreg-export.json"  # what tells a logdir export_tensorboard wrote (it may write there again)
# Each run's one event file, under a fixed name (TensorBoard reads any file whose name holds
# "tfevents"): an export into the results folder records the same names in its manifest every time.
EVENTS = "events.out.tfevents.jaxreg-export"
TAG = "jaxreg."  # MLflow tags jaxreg sets: sweep, role, config_id, status, folder


class ConfigResult(NamedTuple):
    """One config of a results folder, as the exports write it.

    Attributes:
        config_id, case, round, point: as in the journal (``point``: the swept values).
        seeds: the seeds trained, in journal order.
        value: the seed mean of the search metric (``summary.csv``'s ``METRIC_mean``); ``sem``:
            its standard error.
        status: ``finished``, ``pruned`` (successive halving stopped it at ``rung``: its metrics
            are from that epoch) or ``diverged`` (a seed diverged: ``value`` is NaN).
        rung: the last rung's epoch it reached (halving), else None.
        epochs: completed epochs at each evaluation; ``curves``: ``{metric: seed mean at each
            evaluation}`` (NaN where some seed was not evaluated there).
        finals: ``{metric: [value of each seed]}`` from the journal.
    """

    config_id: str
    case: str | None
    round: int
    point: dict
    seeds: list
    value: float
    sem: float
    status: str
    rung: int | None
    epochs: list
    curves: dict
    finals: dict


def exported_metrics(folder: Folder) -> list[str]:
    """The metrics an export carries: the journal's, test metrics left out."""
    regression = any(REGRESSION_METRICS[0] in r["metrics"] for r in folder.records)
    return [m for m in metric_names(regression) if not m.startswith("test_")]


def config_results(folder: Folder, metrics: list[str]) -> list[ConfigResult]:
    """Every config of ``folder``, in journal order, with the curves of ``metrics``."""
    by_id = {row["config_id"]: row for row in folder.rows}
    results = []
    for config_id, trials in folder.trials.items():
        row = by_id[config_id]
        value = row[f"{folder.metric}_mean"]
        status = "pruned" if row.get("pruned") else "finished" if math.isfinite(value) else "diverged"
        curves = folder.curves(config_id, metrics)
        epochs = [] if curves is None else [int(e) for e in curves["epochs"]]
        means = {} if curves is None else {m: np.mean(curves[m], axis=0).tolist() for m in metrics}
        finals = {m: [as_float(t["metrics"].get(m)) for t in trials] for m in metrics
                  if any(m in t["metrics"] for t in trials)}
        results.append(ConfigResult(config_id, row["case"], row["round"], trials[0]["point"],
                                    [t["seed"] for t in trials], value, row[f"{folder.metric}_sem"], status,
                                    row.get("rung"), epochs, means, finals))
    return results


def _need(module: str, extra: str, command: str):
    """Imports an optional package, or says in one line which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"export {command}: expected {module.split('.')[0]} installed, got none "
                         f"(pip install 'jaxreg[{extra}]')") from None


def _inside(folder: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _check_store_outside(folder: Path, url: str, flag: str) -> None:
    """Refuses a store whose files would lie inside the results folder: its files are jaxreg's.

    Reads SQLAlchemy's SQLite URLs (``sqlite:///relative.db``, ``sqlite:////absolute.db``) and
    MLflow's file stores (a path, ``file:///path``); other URLs name a server, not a file here."""
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        name = parsed.path[1:]  # the one slash after the empty host
    elif parsed.scheme in ("", "file"):
        name = parsed.path
    else:
        return
    if name and _inside(folder, Path(name)):
        raise InputError(f"{flag}: expected a store outside the results folder {str(folder)!r}, got {url!r}")


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _spec_sha(folder: Folder) -> str:
    manifest = load_manifest(folder.path)
    return manifest.get("spec_sha256") or spec_sha256(folder.spec)


# ---------------------------------------------------------------- Optuna

def study_name(sweep: str, case: str | None) -> str:
    """The Optuna study of a sweep's case: ``NAME``, or ``NAME/CASE`` in a spec with cases."""
    return sweep if case is None else f"{sweep}/{case}"


def _axis_table(spec: dict, case: str | None, name: str):
    """Axis ``name`` as the spec writes it for ``case``: the case's own entry, else [hparams]'."""
    own = (spec.get("cases") or {}).get(case) or {} if case is not None else {}
    return own[name] if name in own else (spec.get("hparams") or {}).get(name)


def _choice(value):
    """A value as an Optuna category: lists and tables (per-layer rates) as their JSON text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def optuna_distribution(table, values: list):
    """The Optuna distribution of a swept axis: ``FloatDistribution`` for a range (``log=True``
    for ``logspace`` and ``log_uniform``), ``IntDistribution`` for ``int``, else categorical over
    the listed values; the bounds stretched to every value drawn (a zoomed coarse-to-fine round).

    Args:
        table: the axis as the spec writes it (``{"logspace": [lo, hi, n]}``), or anything else
            for an axis the spec does not describe (its values become the categories).
        values: the values the journal holds for it.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    form = next((k for k in table if k != "layers"), None) if isinstance(table, dict) else None
    if form in (*RANGE_FORMS, "int") and all(is_number(v) for v in values):
        ends = [*table[form][:2], *values]
        if form == "int" and all(isinstance(v, int) for v in ends):
            return IntDistribution(min(ends), max(ends))
        return FloatDistribution(float(min(ends)), float(max(ends)), log=form in LOG_FORMS)
    listed = table[form] if form in ("values", "choice") else []
    return CategoricalDistribution([_choice(v) for v in distinct([*listed, *values])])


def _optuna_trial(result: ConfigResult, distributions: dict, metric: str):
    """One config as a finished Optuna trial (``optuna.trial.create_trial``)."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    state = {"finished": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "diverged": TrialState.FAIL}[result.status]
    params = {name: _choice(v) if isinstance(distributions[name], CategoricalDistribution) else v
              for name, v in result.point.items()}
    curve = result.curves.get(metric, [])
    return optuna.trial.create_trial(
        state=state, value=result.value if state == TrialState.COMPLETE else None, params=params,
        distributions={name: distributions[name] for name in result.point},
        intermediate_values={e: v for e, v in zip(result.epochs, curve) if math.isfinite(v)},
        user_attrs={"config_id": result.config_id, "case": result.case, "round": result.round,
                    "seeds": result.seeds, f"{metric}_sem": _finite(result.sem), "status": result.status,
                    "rung": result.rung})


def _open_study(storage: str, name: str, folder: Folder, sha: str):
    """The study ``name`` in ``storage``, created if new; refused if it holds another sweep."""
    import optuna

    direction = "minimize" if folder.minimize else "maximize"
    from sqlalchemy.exc import SQLAlchemyError  # Optuna's RDB storage is SQLAlchemy's

    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    except (ValueError, ImportError, SQLAlchemyError) as error:  # a URL it can't parse or open
        raise InputError(f"--storage: expected a database URL Optuna can open (sqlite:///study.db), got "
                         f"{storage!r} ({str(error).splitlines()[0]})") from None
    held = study.user_attrs.get("jaxreg.spec_sha256")
    if held not in (None, sha) or study.direction.name.lower() != direction:
        raise InputError(f"--storage: expected study {name!r} to be this sweep's (spec {sha[:12]}, {direction}), "
                         f"got one of another sweep (spec {str(held)[:12]}, {study.direction.name.lower()}): "
                         f"export into another storage or delete that study")
    for key, value in (("jaxreg.spec_sha256", sha), ("jaxreg.folder", str(folder.path.resolve())),
                       ("jaxreg.metric", folder.metric)):
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study


def export_optuna(path: str | Path, storage: str) -> list[tuple[str, int, int]]:
    """Writes a results folder into Optuna ``storage`` (a URL, ``sqlite:///study.db``): a study
    per case, a trial per config (see the module's docstring). A config whose trial is already
    there (the ``config_id`` user attribute) is not added again.

    Returns:
        ``(study name, trials added, trials already there)`` per study.

    Raises:
        InputError: Optuna is not installed, the URL can't be opened, the database lies inside
            the folder, or a study of that name holds another sweep.
    """
    _need("optuna", "optuna", "optuna")
    folder = load_folder(path)
    _check_store_outside(folder.path, storage, "--storage")
    sha = _spec_sha(folder)
    by_case: dict = {}
    for result in config_results(folder, [folder.metric]):
        by_case.setdefault(result.case, []).append(result)
    done = []
    for case, results in by_case.items():
        study = _open_study(storage, study_name(folder.spec["name"], case), folder, sha)
        held = {t.user_attrs.get("config_id") for t in study.get_trials(deepcopy=False)}
        distributions = {name: optuna_distribution(_axis_table(folder.spec, case, name),
                                                   [r.point[name] for r in results if name in r.point])
                         for name in dict.fromkeys(n for r in results for n in r.point)}
        new = [_optuna_trial(r, distributions, folder.metric) for r in results if r.config_id not in held]
        study.add_trials(new)
        done.append((study.study_name, len(new), len(results) - len(new)))
    return done


# ---------------------------------------------------------------- MLflow

def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` (in the working directory)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def _all_runs(client, experiment_id: str, query: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _parent_run(client, experiment_id: str, folder: Folder, sha: str) -> str:
    """The run of the sweep (tag ``jaxreg.sweep`` = its spec's SHA-256), created if new."""
    found = _all_runs(client, experiment_id, f"tags.`{TAG}sweep` = '{sha}' and tags.`{TAG}role` = 'sweep'")
    if found:
        return found[0].info.run_id
    from mlflow.entities import Param

    search = folder.search
    run = client.create_run(experiment_id, run_name=folder.spec["name"],
                            tags={f"{TAG}folder": str(folder.path.resolve()), f"{TAG}spec_sha256": sha})
    params = {"metric": search["metric"], "goal": search["goal"], "method": search["method"],
              "seeds": json.dumps(search["seeds"]), "epochs": folder.spec["train"]["epochs"]}
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(run.info.run_id, "FINISHED")
    # Tagged last: a run without its tags is one an interrupted export left, never found as done.
    client.set_tag(run.info.run_id, f"{TAG}sweep", sha)
    client.set_tag(run.info.run_id, f"{TAG}role", "sweep")
    return run.info.run_id


def _mlflow_metrics(result: ConfigResult, stamp: int) -> list:
    """Each curve's seed mean at each evaluation (``step`` = epoch), each seed's final value."""
    from mlflow.entities import Metric

    metrics = [Metric(name, float(v), stamp, e) for name, curve in result.curves.items()
               for e, v in zip(result.epochs, curve) if math.isfinite(v)]
    last = result.epochs[-1] if result.epochs else 0
    metrics += [Metric(f"{name}/seed_{seed}", v, stamp, last) for name, values in result.finals.items()
                for seed, v in zip(result.seeds, values) if math.isfinite(v)]
    return metrics


def _child_run(client, experiment_id: str, parent: str, sha: str, result: ConfigResult) -> str:
    """One config as a run under ``parent``: params, metric histories, status."""
    from mlflow.entities import Param

    run = client.create_run(experiment_id, run_name=result.config_id,
                            tags={"mlflow.parentRunId": parent, f"{TAG}sweep": sha, f"{TAG}role": "config"})
    run_id = run.info.run_id
    params = {**{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in result.point.items()},
              "config_id": result.config_id, "case": result.case, "round": result.round,
              "seeds": json.dumps(result.seeds)}
    metrics = _mlflow_metrics(result, int(time.time() * 1000))
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items() if v is not None])
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    client.set_tag(run_id, f"{TAG}status", result.status)
    client.set_terminated(run_id, {"finished": "FINISHED", "pruned": "KILLED", "diverged": "FAILED"}[result.status])
    client.set_tag(run_id, f"{TAG}config_id", result.config_id)  # last: the mark of a run written whole
    return run_id


def export_mlflow(path: str | Path, tracking_uri: str | None = None) -> tuple[str, int, int]:
    """Writes a results folder into an MLflow tracking store: experiment ``NAME`` (the sweep's
    name), a parent run for the sweep and a child run per config (see the module's docstring).
    A config whose run is already there (tag ``jaxreg.config_id`` under the sweep's parent) is
    not written again; a run an interrupted export left unfinished is deleted and written anew.

    Args:
        path: the results folder.
        tracking_uri: default :func:`default_tracking_uri`; not inside the results folder.

    Returns:
        ``(parent run id, runs added, runs already there)``.
    """
    mlflow = _need("mlflow", "mlflow", "mlflow")
    folder = load_folder(path)
    uri = tracking_uri or default_tracking_uri()
    _check_store_outside(folder.path, uri, "--tracking-uri")
    sha = _spec_sha(folder)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = folder.spec["name"]
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    parent = _parent_run(client, experiment_id, folder, sha)
    held = {}
    for run in _all_runs(client, experiment_id, f"tags.`{TAG}sweep` = '{sha}' and tags.`{TAG}role` = 'config'"):
        if f"{TAG}config_id" in run.data.tags:
            held[run.data.tags[f"{TAG}config_id"]] = run.info.run_id
        else:
            client.delete_run(run.info.run_id)
    results = config_results(folder, exported_metrics(folder))
    added = [_child_run(client, experiment_id, parent, sha, r) for r in results if r.config_id not in held]
    return parent, len(added), len(results) - len(added)


# ---------------------------------------------------------------- TensorBoard

def _plugin_summary(tag: str, **content):
    """A summary holding the hparams plugin's data (tensorboardX's copies of TensorBoard's protos)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    data = HParamsPluginData(version=0, **content).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=data))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def _hparam_info(folder: Folder, name: str, values: list):
    """A swept hparam's declaration: an interval for a numeric range, else its listed values."""
    from google.protobuf.struct_pb2 import ListValue
    from tensorboardX.proto.api_pb2 import DataType, HParamInfo, Interval

    tables = folder.axis_tables(name)
    if values and all(is_number(v) for v in values):
        if any(set(t) & {*RANGE_FORMS, "int"} for t in tables):
            ends = folder.extent(name)
            return HParamInfo(name=name, type=DataType.DATA_TYPE_FLOAT64,
                              domain_interval=Interval(min_value=min(ends), max_value=max(ends)))
        return HParamInfo(name=name, type=DataType.DATA_TYPE_FLOAT64,
                          domain_discrete=ListValue(values=[{"number_value": float(v)} for v in sorted(values)]))
    texts = sorted({_text(v) for v in values})
    return HParamInfo(name=name, type=DataType.DATA_TYPE_STRING,
                      domain_discrete=ListValue(values=[{"string_value": t} for t in texts]))


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def hparams_metrics(folder: Folder) -> list[str]:
    """The metrics the HPARAMS tab shows, search metric first: the summary's reported ones."""
    names = [folder.metric, *REPORTED, *REPORTED_REGRESSION]
    held = {m for r in folder.records for m in r["metrics"]}
    return [m for m in dict.fromkeys(names) if m in held and not m.startswith("test_")]


def _experiment(folder: Folder, results: list[ConfigResult]):
    """The experiment summary: every swept hparam (and ``case``, ``status``) and every metric."""
    from tensorboardX.proto.api_pb2 import DatasetType, Experiment, MetricInfo, MetricName

    names = list(dict.fromkeys(n for r in results for n in r.point))
    infos = [_hparam_info(folder, n, distinct(r.point[n] for r in results if n in r.point)) for n in names]
    infos += [_hparam_info(folder, extra, distinct(getattr(r, extra) for r in results))
              for extra in (("case",) if folder.has_case else ()) + ("status",)]
    kinds = {"val": DatasetType.DATASET_VALIDATION, "train": DatasetType.DATASET_TRAINING}
    metrics = [MetricInfo(name=MetricName(tag=f"final/{m}"), display_name=f"{m} (seed mean)",
                          dataset_type=kinds.get(m.split("_")[0], DatasetType.DATASET_UNKNOWN))
               for m in hparams_metrics(folder)]
    metrics.append(MetricInfo(name=MetricName(tag=f"final/{folder.metric}_sem"),
                              display_name=f"{folder.metric} (standard error)"))
    return _plugin_summary("_hparams_/experiment", experiment=Experiment(
        name=folder.spec["name"], description=folder.spec.get("description") or "",
        hparam_infos=infos, metric_infos=metrics))


def _write_session(writer, folder: Folder, result: ConfigResult) -> None:
    """One config's session: its values, group name = config id, seed means as scalars."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo, SessionStartInfo

    from jaxreg.report.tensorboard import metric_tag

    start = SessionStartInfo(group_name=result.config_id)
    values = {**result.point, **({"case": result.case} if folder.has_case else {}), "status": result.status}
    for name, value in values.items():
        if is_number(value):
            start.hparams[name].number_value = float(value)
        else:
            start.hparams[name].string_value = _text(value)
    writer.file_writer.add_summary(_plugin_summary("_hparams_/session_start_info", session_start_info=start))
    for name, curve in result.curves.items():  # the scalars tab: each curve's seed mean
        for epoch, value in zip(result.epochs, curve):
            if math.isfinite(value):
                writer.add_scalar(metric_tag(name), value, epoch)
    last = result.epochs[-1] if result.epochs else 0
    finals = {m: float(np.mean(result.finals[m])) for m in hparams_metrics(folder) if m in result.finals}
    finals[f"{folder.metric}_sem"] = result.sem
    for name, value in finals.items():  # the HPARAMS tab reads each metric's last scalar
        if math.isfinite(value):
            writer.add_scalar(f"final/{name}", value, last)
    status = Status.STATUS_FAILURE if result.status == "diverged" else Status.STATUS_SUCCESS
    writer.file_writer.add_summary(_plugin_summary("_hparams_/session_end_info",
                                                   session_end_info=SessionEndInfo(status=status)))


def _logdir(folder: Folder, logdir: str | Path | None) -> Path:
    """Where the sessions go: ``DIR/tensorboard-configs`` (in a folder whose manifest records
    jaxreg's files), or a folder outside DIR that is new, empty or an earlier export's."""
    root = folder.path / TENSORBOARD_CONFIGS if logdir is None else Path(logdir)
    if root.is_symlink():
        raise InputError(f"--logdir: expected a folder, got a symbolic link {str(root)!r}")
    if _inside(folder.path, root):
        if root.resolve() != (folder.path / TENSORBOARD_CONFIGS).resolve():
            raise InputError(f"--logdir: expected a folder outside the results folder or "
                             f"{str(folder.path / TENSORBOARD_CONFIGS)!r}, got {str(root)!r}")
        if load_manifest(folder.path).get("format") != FORMAT:
            raise InputError(f"--logdir: expected a folder outside {str(folder.path)!r}: its {MANIFEST} predates "
                             f"jaxreg's record of its files (jaxreg run on it adds it), got {str(root)!r}")
    elif root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / MARK).is_file())):
        raise InputError(f"--logdir: expected a new or empty folder, or one jaxreg export tensorboard wrote "
                         f"(it holds {MARK}), got {str(root)!r}")
    return root


def _write_run(tensorboardX, run: Path, write) -> None:
    """One TensorBoard run: ``write(writer)`` into a new event file, named :data:`EVENTS`."""
    run.mkdir(exist_ok=True)
    before = set(run.glob("events.out.tfevents.*"))
    writer = tensorboardX.SummaryWriter(logdir=str(run))
    try:
        write(writer)
    finally:
        writer.close()
    (written,) = set(run.glob("events.out.tfevents.*")) - before
    written.rename(run / EVENTS)


def _clear(root: Path) -> None:
    """Removes what an earlier export wrote in ``root`` (its fixed names, and the runs that held
    nothing else), leaving anything else there."""
    for path in (root / MARK, root / EVENTS, *root.glob(f"*/{EVENTS}")):
        if path.is_file() and not path.is_symlink():
            path.unlink()
    for run in root.iterdir():
        if run.is_dir() and not run.is_symlink() and not any(run.iterdir()):
            run.rmdir()


def export_tensorboard(path: str | Path, logdir: str | Path | None = None) -> Path:
    """Writes the HParams plugin's files of a results folder (see the module's docstring) into
    ``logdir`` (default ``DIR/tensorboard-configs``); returns it.

    Beside ``DIR/tensorboard`` (``output.tensorboard``: one run per trial, each its own session),
    not in it: TensorBoard's HPARAMS tab lists every session of a logdir, so the two would mix.
    In the results folder, its files are recorded in the manifest first (``--overwrite`` removes
    them). Again, it replaces the files an earlier export wrote there, and nothing else.
    """
    tensorboardX = _need("tensorboardX", "tensorboard", "tensorboard")
    folder = load_folder(path)
    root = _logdir(folder, logdir)
    results = config_results(folder, exported_metrics(folder))
    if _inside(folder.path, root):
        names = [MARK, EVENTS, *(f"{r.config_id}/{EVENTS}" for r in results)]
        record_files(folder.path, [f"{TENSORBOARD_CONFIGS}/{name}" for name in names])
    if root.is_dir():
        _clear(root)
    root.mkdir(parents=True, exist_ok=True)
    for result in results:
        if (root / result.config_id).is_symlink():
            raise InputError(f"{root / result.config_id}: expected a folder, got a symbolic link")
    (root / MARK).write_text(json.dumps({"folder": str(folder.path.resolve()), "spec_sha256": _spec_sha(folder)}) + "\n")
    _write_run(tensorboardX, root, lambda writer: writer.file_writer.add_summary(_experiment(folder, results)))
    for result in results:
        _write_run(tensorboardX, root / result.config_id, functools.partial(_write_session, folder=folder, result=result))
    return root
