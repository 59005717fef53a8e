"""A pytest plugin for the mutation run: each mutant runs only its module's tests, fastest first.

mutmut already passes a mutant only the tests that called its function while it recorded
them, but nearly every training test calls the penalty, optimizer and layout functions, so a
mutant of ``penalties.py`` would also run every slow engine test. ``TESTS`` narrows that to
the tests aimed at each module. Sorting by the recorded durations lets ``-x`` stop at the
first, cheapest test that kills. Outside a mutant (mutmut's stats, clean and forced-fail
runs) it does nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Module -> the test files that judge its mutants.
ENGINE = ["tests/unit/test_engine_oracle.py", "tests/unit/test_step.py"]
TESTS = {
    "jaxreg.step": ENGINE,
    "jaxreg.layout": ENGINE + ["tests/unit/test_layout.py"],
    "jaxreg.optimizers": ENGINE + ["tests/unit/test_optimizers.py"],
    "jaxreg.early_stopping": ["tests/unit/test_early_stopping.py", "tests/unit/test_engine_oracle.py"],
    "jaxreg.penalties": ["tests/unit/test_losses_penalties.py", "tests/unit/test_engine_oracle.py"],
    "jaxreg.drop": ["tests/unit/test_drop.py"],
    "jaxreg.train": ["tests/unit/test_data_checks.py", "tests/unit/test_engine_oracle.py", "tests/e2e/test_checkpoint.py",
                     "tests/unit/test_train.py"],
    "jaxreg.sweeps.space": ["tests/sweeps/test_sweep.py", "tests/unit/test_space.py", "tests/unit/test_spec_errors.py"],
    **dict.fromkeys([f"jaxreg.report.{name}" for name in ("store", "files", "journal", "manifest", "locks")],
                    ["tests/unit/test_store.py", "tests/e2e/test_store_errors.py", "tests/e2e/test_checkpoint.py",
                     "tests/e2e/test_results_folder.py"]),
    "jaxreg.sweeps.records": ["tests/unit/test_store.py", "tests/e2e/test_results_folder.py"],
    "jaxreg.sweeps.executor": ["tests/sweeps/test_study.py", "tests/sweeps/test_halving.py", "tests/e2e/test_checkpoint.py"],
}


def _module_of(mutant: str) -> str | None:
    # "jaxreg.train.x_make_train__mutmut_12" or "jaxreg.sweeps.space.xǁAxisǁgrid__mutmut_3"
    module, _, function = mutant.rpartition(".")
    return module if function.startswith("x") and "__mutmut_" in function else None


def pytest_collection_modifyitems(session, config, items):
    module = _module_of(os.environ.get("MUTANT_UNDER_TEST", ""))
    if module is None:
        return
    allowed = tuple(TESTS.get(module, ()))
    kept = [item for item in items if item.nodeid.startswith(allowed)]
    dropped = [item for item in items if not item.nodeid.startswith(allowed)]
    stats = Path("mutmut-stats.json")
    durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.exists() else {}
    kept.sort(key=lambda item: durations.get(item.nodeid, 0.0))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
