"""Fixtures of the sweeps tier.

``cases_folder`` is trained once a session, not once per module: the report tests of several
modules (compare, summary, plots, tables) read it, and a sweep's training dominates their time.
Its spec is ``cases_sweep.CASES``. Tests may add the reports' files to it (plots, trials.csv) as
the commands do, but must not edit what the sweep wrote: a test that needs a damaged folder
copies it.
"""

from __future__ import annotations

import pytest

from jaxreg.sweeps import build_spec, run_sweep
from cases_sweep import CASES


@pytest.fixture(scope="session")
def cases_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cases") / "r"
    run_sweep(build_spec(CASES), out, progress=False)
    return out
