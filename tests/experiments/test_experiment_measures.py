"""results/measures: the README's table of Kendall's tau is what ``jaxreg show --measures``
prints for the committed journal (retraining it is the 39 s ``jaxreg run sweeps/measures.toml``;
the measures themselves are checked against NumPy in tests/unit/test_measures.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jaxreg.report.summary import measure_lines

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "results" / "measures"


def test_the_readme_table_is_what_show_measures_prints_for_the_committed_journal():
    records = [json.loads(line) for line in (FOLDER / "trials.jsonl").read_text().splitlines()]
    assert len(records) == 96 and {r["status"] for r in records} == {"ok"}
    printed = {}
    for line in measure_lines(records):
        row = re.match(r"\s+(\w+)\s+tau (\S+)\s+\[(\S+), (\S+)\]", line)
        if row:
            printed[row[1]] = row.group(2, 3, 4)
    table = {m[1]: m.group(2, 3, 4) for m in re.finditer(r"^\| (\w+) \| (\S+) \| \[(\S+), (\S+)\] \|$",
                                                          (FOLDER / "README.md").read_text(), flags=re.M)}
    assert set(table) == {"margin", "sharpness", "hessian", "path_norm", "norm_product", "mag_sharpness"}
    assert printed == table
