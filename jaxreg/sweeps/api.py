"""``jaxreg.sweep``: a sweep from Python, on a spec file or dict and (optionally) a user's own arrays,
with everything ``jaxreg run`` gives: the journal, resume and growth, the summary, the tables
and the plots.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from jaxreg import report
from jaxreg.errors import InputError
from jaxreg.report.summary import best_row
from jaxreg.report.tensorboard import write_tensorboard
from jaxreg.sweeps.build import Spec, build_spec
from jaxreg.sweeps.executor import Executor
from jaxreg.sweeps.run import run_sweep
from jaxreg.sweeps.spec import ARRAYS, apply_overrides, read_spec

__all__ = ["SweepResult", "finish", "sweep"]


class SweepResult(NamedTuple):
    """What :func:`sweep` returns.

    Attributes:
        out: the results folder.
        spec: the built :class:`jaxreg.sweeps.Spec`.
        records: the journal's trials (dicts, as in ``trials.jsonl``).
        rows: the summary's rows, best first (as in ``summary.csv``).
        written: the files written besides the journal (tables and plots).
        skipped: ``(plot, reason)`` for the plots that did not apply.
    """

    out: Path
    spec: Spec
    records: list
    rows: list
    written: list
    skipped: list

    def table(self, limit: int | None = 20) -> str:
        """The summary table as ``jaxreg run`` prints it."""
        return report.format_table(self.rows, self.spec.search, limit=limit)

    @property
    def best(self) -> dict:
        """The best config's summary row (:func:`jaxreg.report.summary.best_row`)."""
        return best_row(self.rows)


def _raw_spec(spec, overrides) -> tuple[dict, str]:
    if isinstance(spec, (str, Path)):
        return read_spec(spec, overrides), Path(spec).stem
    if isinstance(spec, Mapping):
        return apply_overrides(copy.deepcopy(dict(spec)), list(overrides)), "sweep"
    raise InputError(f"spec: expected a path to a TOML spec or a dict, got {type(spec).__name__}")


def sweep(spec, data=None, *, out: str | Path | None = None, overrides=(), overwrite: bool = False,
          progress: bool = True, plots: bool | None = None, checkpoint_seconds: float = 10.0,
          log: Callable[[str], None] | None = None) -> SweepResult:
    """Runs (or resumes, or grows) a sweep into a results folder, as ``jaxreg run`` does.

    Args:
        spec: a TOML spec's path, or the spec as a dict (the TOML's tables).
        data: your own data, for a spec whose ``data.dataset`` is ``"arrays"`` or absent: a pair
            ``(x, y)`` (split with the spec's ``[data]`` options: ``val_fraction``,
            ``test_fraction``, ``n_train``, ``standardize``, ``targets``, and ``data.seed``;
            see :func:`jaxreg.data.from_arrays`) or a ``jaxreg.data.Dataset`` (used as it is).
            The arrays' SHA-256 is part of the spec: resuming on other arrays is refused.
        out: the results folder (default ``results/NAME``).
        overrides: ``"KEY=VALUE"`` strings, as ``--set``.
        overwrite, checkpoint_seconds: as ``jaxreg run``'s ``--overwrite``, ``--checkpoint-every``.
        progress: progress bars and messages on stderr.
        plots: write the plots (default: the spec's ``output.plots``).
        log: where messages go (default: stderr).

    Returns:
        A :class:`SweepResult`: the folder, the records, the summary rows (``result.table()``
        prints them) and the files written.

    Raises:
        InputError: a bad spec, data or folder, naming the field, before anything is trained.
    """
    raw, default_name = _raw_spec(spec, overrides)
    if data is not None:
        table = raw.setdefault("data", {})
        if not isinstance(table, dict):
            raise InputError(f"data: expected a table [data], got {table!r}")
        table.setdefault("dataset", ARRAYS)
    built = build_spec(raw, default_name, data=data)
    out = Path(out) if out is not None else Path("results") / built.name
    records = run_sweep(built, out, overwrite=overwrite, progress=progress, log=log,
                        executor=Executor(checkpoint_seconds=checkpoint_seconds))
    rows, written, skipped = finish(built, out, records, plots=plots, data=data)
    return SweepResult(out, built, records, rows, written, skipped)


def finish(spec: Spec, out: Path, records: list, *, plots: bool | None = None, data=None):
    """The files derived from the journal: ``summary.csv``, ``trials.csv``, ``curves.csv`` (with
    ``output.curves_csv``), TensorBoard event files (``output.tensorboard``) and the plots
    (``output.plots``, or ``plots``).

    Returns ``(summary rows, paths written, [(plot, reason skipped)])``.
    """
    rows, written = finish_tables(spec, out, records)
    drawn, skipped = finish_plots(spec, out, plots=plots, data=data)
    return rows, written + drawn, skipped


def finish_tables(spec: Spec, out: Path, records: list):
    """The journal's tables: ``summary.csv``, ``trials.csv``, ``curves.csv`` (with
    ``output.curves_csv``) and TensorBoard event files (``output.tensorboard``); what ``jaxreg
    run`` prints comes from these, before the plots are drawn. Returns ``(rows, paths written)``."""
    rows = report.summarize(records, spec.search, report.load_manifest(out).get("chance"))
    written = [report.write_summary(out, rows), report.write_trials_csv(out, records)]
    columns = spec.output["curves_csv"]
    if columns:
        written.append(report.write_curves_csv(out, records, columns if isinstance(columns, dict) else None))
    if spec.output.get("tensorboard"):
        written.append(write_tensorboard(out, records))
    return rows, written


def finish_plots(spec: Spec, out: Path, *, plots: bool | None = None, data=None):
    """The plots (``output.plots``, or ``plots``). Returns ``(paths written, [(plot, reason skipped)])``."""
    skipped = []
    if not (spec.output["plots"] if plots is None else plots):
        return [], skipped
    from jaxreg.report import plots as plotting  # matplotlib: loaded only to draw

    # the folder's spec is the one just run: the user's own, trusted
    written = plotting.plot_dir(out, build=lambda resolved: build_spec(resolved, data=data),
                                on_skip=lambda name, why: skipped.append((name, why)), trust_code=True)
    return written, skipped
