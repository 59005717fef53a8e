"""The one reader of a results folder, shared by the plots of a folder and the comparisons of several.

``load_folder(path)`` reads the manifest's resolved spec and the journal (``load_folders(paths)``:
several, checked to compare, as ``compare`` and the HTML report read them); the :class:`Folder` it
returns derives what figures and tables need from them: the summary rows (best first), the
trials of each config, the swept axes (distinct values, which are numeric, which the spec samples
on a log scale, their extent), the best-so-far curve, and a trial's curves and saved params.

Values of an axis are told apart as the journal writes them (``json.dumps``): ``0.1`` and
``[0.1]`` differ, and so do ``1`` and ``1.0``. Nothing here draws: matplotlib stays in
:mod:`jaxreg.report.plots` and :mod:`jaxreg.report.compare`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from jaxreg.errors import InputError
from jaxreg.report.files import JOURNAL
from jaxreg.report.journal import load_curves, read_journal
from jaxreg.report.manifest import load_manifest
from jaxreg.report.summary import as_float, best_so_far, is_number, summarize

LOG_FORMS = ("logspace", "log_uniform")
MAX_SHOWN = 6  # configs shown without cases: more lines than this are unreadable
MAX_CASES = 10  # the colour cycle's length


def distinct(values: Iterable) -> list:
    """The distinct values, in order of first appearance, told apart as the journal writes them."""
    return list({json.dumps(v, sort_keys=True): v for v in values}.values())


def load_folder(path: str | Path, *, build: Callable[[dict], object] | None = None) -> Folder:
    """Reads one results folder (its journal may be empty).

    Args:
        path: a folder written by :func:`jaxreg.sweeps.run_sweep`.
        build: rebuilds the spec's models and data from its resolved form, for what applies a
            model (:func:`jaxreg.sweeps.build_spec`); without it :attr:`Folder.built` is None.

    Raises:
        InputError: ``DIR: ...`` when it is not a results folder or its manifest has no spec.
    """
    path = Path(path)
    manifest = load_manifest(path)
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("search"), dict):
        raise InputError(f"DIR: expected a manifest.json with the resolved spec, got {str(path)!r} without one")
    return Folder(path, spec, read_journal(path), build=build, runs=manifest.get("runs") or [],
                  chance=manifest.get("chance"), scales=manifest.get("scales"))


def load_folders(paths: list) -> list[Folder]:
    """Reads the folders, checks they compare (distinct, one metric and goal) and labels each by
    its spec name, or by its folder name when spec names repeat."""
    resolved = [Path(p).resolve() for p in paths]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise InputError(f"DIR: expected distinct results folders, got {str(paths[i])!r} twice")
    folders = []
    for path in paths:
        folder = load_folder(path)
        if not folder.records:
            raise InputError(f"DIR: expected a results folder with finished trials, got {str(path)!r} "
                             f"(no trials in {JOURNAL})")
        folders.append(folder)
    for key in ("metric", "goal"):
        first = folders[0].search[key]
        for folder in folders[1:]:
            if folder.search[key] != first:
                raise InputError(f"search.{key}: expected the same {key} in every folder, got {first!r} in "
                                f"{str(folders[0].path)!r} and {folder.search[key]!r} in {str(folder.path)!r}")
    for labels in ([f.spec["name"] for f in folders], [f.path.name for f in folders], list(map(str, paths))):
        if len(set(labels)) == len(labels):
            break
    for folder, label in zip(folders, labels):
        folder.label = label
    return folders



@dataclasses.dataclass(eq=False)
class Folder:
    """One results folder, read.

    Attributes:
        path: the folder; ``spec``: the manifest's resolved spec; ``records``: the journal's
            trials in order; ``label``: a name to show it by (comparisons set it).
        build: see :func:`load_folder`; ``runs``: the manifest's runs (start, end, seconds);
            ``chance``: the manifest's chance rates (``report.summary.at_chance``); ``scales``:
            the spread of each case's raw features (``jaxreg.sweeps.run.feature_scales``).
        rows: the summary, one row per config, best first (:func:`jaxreg.report.summarize`).
        trials: the records of each config id, configs in journal order.
    """

    path: Path
    spec: dict
    records: list
    label: str = ""
    build: Callable[[dict], object] | None = None
    runs: list = dataclasses.field(default_factory=list)
    chance: dict | None = None
    scales: dict | None = None
    build_error: str = ""  # why ``built`` is None, once it was tried

    def __post_init__(self):
        self.path = Path(self.path)
        self.rows = summarize(self.records, self.search, self.chance)
        self.trials: dict[str, list[dict]] = {}
        for record in self.records:
            self.trials.setdefault(record["config_id"], []).append(record)
        values: dict[str, list] = {}
        for record in self.records:
            for name, value in record["point"].items():
                values.setdefault(name, []).append(value)
        self.varying = [n for n, v in values.items() if _varies(v)]
        # Lists (per-layer dropout rates) and strings are categories: labels, never an axis.
        self.numeric = [n for n in self.varying if all(is_number(x) for x in values[n])]

    @property
    def search(self) -> dict:
        return self.spec["search"]

    @property
    def metric(self) -> str:
        return self.search["metric"]

    @property
    def minimize(self) -> bool:
        return self.search["goal"] == "minimize"

    @property
    def method(self) -> str:
        s = self.search
        if s["method"] in ("tpe", "cmaes", "gp"):  # Optuna's samplers (jaxreg.sweeps.samplers)
            return f"{s['method']} ({s['rounds']} rounds of {s['samples']} asked from Optuna)"
        if s["method"] in ("halving", "hyperband"):
            return f"{s['method']} (eta {s['eta']}, from epoch {s['min_epochs']})"
        if s["method"] != "coarse_to_fine":
            return s["method"]
        zoom = f"top {s['top_k']}" if s.get("zoom", "top_k") == "top_k" else f"not worse by {s['z']:g} SE"
        return f"coarse_to_fine ({s['rounds']} rounds of {s['round_method']}, {zoom})"

    @functools.cached_property  # read per config label: once, not once per label
    def has_case(self) -> bool:
        return any(r["case"] is not None for r in self.records)

    @functools.cached_property  # read per config label: once, not once per label
    def has_rounds(self) -> bool:
        return len({r["round"] for r in self.records}) > 1

    @property
    def plot_metrics(self) -> list[str]:
        """``output.plot_metrics`` but the search metric (manifests written before it lack it)."""
        extra = self.spec.get("output", {}).get("plot_metrics", [])
        return [m for m in dict.fromkeys(extra) if m != self.metric]

    @property
    def has_params(self) -> bool:
        return bool(self.spec.get("output", {}).get("params"))

    def config_label(self, row: dict) -> str:
        """A config by its case and swept values, ``"l2=0.001, dropout=0.5"``."""
        parts = [str(row["case"])] if self.has_case else []
        parts += [f"{name}={_short(row[name])}" for name in self.varying if name in row]
        return ", ".join(parts) or row["config_id"]

    def shown(self) -> list[dict]:
        """The best config of each case, or the best few configs."""
        if not self.has_case:
            return self.rows[:MAX_SHOWN]
        best = {}
        for row in self.rows:
            best.setdefault(row["case"], row)
        return list(best.values())[:MAX_CASES]

    def axis_tables(self, name: str) -> list[dict]:
        """Axis ``name`` as the spec writes it, e.g. ``{"logspace": [lo, hi, n]}``, in [hparams] and cases."""
        tables = [self.spec.get("hparams") or {}, *(self.spec.get("cases") or {}).values()]
        return [t[name] for t in tables if isinstance(t.get(name), dict)]

    def log_form(self, name: str) -> bool:
        """Whether the spec samples axis ``name`` on a log scale, in any case."""
        return any(set(axis) & set(LOG_FORMS) for axis in self.axis_tables(name))

    def extent(self, name: str) -> list[float]:
        """The ends of axis ``name``'s range in the spec (or its listed values), and every value drawn."""
        ends = [v for axis in self.axis_tables(name) for form, args in axis.items() if form != "layers"
                for v in (args[:2] if form in ("linspace", "logspace") else args)]  # not the count n
        drawn = [r["point"][name] for r in self.records if name in r["point"]]
        return [float(v) for v in ends + drawn if is_number(v)]

    def in_journal_order(self) -> list[dict]:
        """The summary rows, configs in the order they first appear in the journal."""
        by_id = {r["config_id"]: r for r in self.rows}
        return [by_id[cid] for cid in self.trials]

    def best_so_far(self) -> np.ndarray:
        """The running best config mean of the search metric, configs in journal order, by the
        rule of :func:`jaxreg.report.summary.best_so_far` (diverged and pruned configs skipped):
        it ends at the best row's mean."""
        return best_so_far(self.in_journal_order(), self.metric, self.minimize)

    def mean_of(self, config_id: str, metric: str) -> float:
        """The mean of ``metric`` over a config's seeds (NaN if a seed has none), as in summary.csv."""
        return float(np.mean([as_float(r["metrics"][metric]) for r in self.trials[config_id]]))

    def seconds(self) -> float:
        """Run time recorded in the manifest, over every run (a resumed sweep has several)."""
        return sum(run.get("seconds") or 0.0 for run in self.runs)

    def curves(self, config_id: str, names: Iterable[str]) -> dict[str, np.ndarray] | None:
        """The curves ``names`` of one config, one row per seed (NaN where not evaluated or not
        finite), and ``epochs`` (completed epochs at each evaluation); None if no curves file
        was found."""
        loaded = []
        for record in self.trials[config_id]:
            try:
                loaded.append(load_curves(self.path, config_id, record["seed"]))
            except FileNotFoundError:
                continue
        if not loaded:
            return None
        names = list(names)
        curves = {n: _finite(np.stack([c[f"curve/{n}"] for c in loaded]).astype(float)) for n in names}
        # Each file records its epochs (a case may override train.eval_every); older files don't.
        n_evals = curves[names[0]].shape[1]
        epochs = loaded[0].get("epochs")
        if epochs is None or len(epochs) != n_evals:
            epochs = np.arange(1, n_evals + 1) * self.spec["train"]["eval_every"]
        curves["epochs"] = np.asarray(epochs)
        return curves

    def params(self, config_id: str, seed: int) -> dict[str, np.ndarray] | None:
        """One trial's saved params by key path (``"[0]['w']"``); None if none were saved."""
        try:
            saved = load_curves(self.path, config_id, seed)
        except FileNotFoundError:
            return None
        params = {k.removeprefix("params/"): v for k, v in saved.items() if k.startswith("params/")}
        return params or None

    @functools.cached_property
    def built(self):
        """The spec rebuilt from the manifest (models and data) by ``build``, or None without
        one or where it can't be (data files missing on this machine, a spec from another
        jaxreg version)."""
        if self.build is None:
            return None
        try:
            return self.build(self.spec)
        except (ValueError, OSError) as error:  # InputError, or DatasetError for data not on this machine
            self.build_error = str(error)
            return None


def _varies(values: list) -> bool:
    """Whether ``values`` hold two distinct values (as :func:`distinct` tells them apart); stops at
    the first that differs (a 10,000-config sweep's axes are read in milliseconds)."""
    first = json.dumps(values[0], sort_keys=True)
    return any(json.dumps(v, sort_keys=True) != first for v in values)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.2g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.nan)
