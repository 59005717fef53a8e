"""Reports: what a sweep leaves in its results folder, and what is read and drawn from it.

In the order they build on each other:

- ``store``: the folder's files (manifest, the trial journal, curves ``.npz``), written atomically,
  through the ``Store`` facade over ``files`` (names, atomic writes, what jaxreg owns), ``journal``
  (the journal and curves files), ``manifest`` and ``locks`` (the folder's lock, shards).
- ``summary``: per-config statistics of the journal, ``summary.csv`` and the text table;
  ``tables``: the journal as one flat table, a row per trial (``trials.csv``, a DataFrame).
- ``folder``: the one reader of a results folder that plots and comparisons share.
- ``plots``: the PNG files of one folder; ``compare``: several folders side by side.
- ``exports``: one folder in Optuna, MLflow and TensorBoard's HPARAMS tab (``jaxreg export``).

``report`` never imports :mod:`jaxreg.sweeps`: sweeps write through ``store``, and the one plot
that applies a model (the decision boundary) is handed a function that rebuilds the spec.
Nor does it import JAX: reading, summarizing and plotting a folder load only NumPy (and
matplotlib); the store takes plain values (journal lines, named arrays, device names) that
:mod:`jaxreg.sweeps.records` makes of the engine's results.
``plots`` and ``compare`` load matplotlib, ``exports`` the tools it writes for: import them as
modules, they are not re-exported here.
"""

from jaxreg.report.files import CURVES, JOURNAL, MANIFEST, SUMMARY, atomic_write
from jaxreg.report.journal import load_curves, read_journal
from jaxreg.report.manifest import load_manifest
from jaxreg.report.store import Store
from jaxreg.report.summary import (CSV_SOURCES, as_float, format_table, is_number, measure_lines, rank_key, summarize,
                                   write_csv, write_curves_csv, write_summary)
from jaxreg.report.tables import TRIALS_CSV, trials_dataframe, trials_rows, write_trials_csv

__all__ = [
    "CSV_SOURCES", "CURVES", "JOURNAL", "MANIFEST", "SUMMARY", "Store", "TRIALS_CSV", "as_float", "atomic_write",
    "format_table", "is_number", "load_curves", "load_manifest", "measure_lines", "rank_key", "read_journal",
    "summarize", "trials_dataframe", "trials_rows", "write_csv", "write_curves_csv", "write_summary",
    "write_trials_csv",
]
