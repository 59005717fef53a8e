"""Benchmark: time to first result, before and after, side by side in the same minutes.

Runs each command as its own process, alternating a checkout of the code before (``--base``,
e.g. ``git worktree add /tmp/base COMMIT``) and this tree, ``--repeats`` times, and prints the
wall time and the CPU time (user + sys of the process and its children, which load on a shared
machine affects less than wall time) of each, then the ratios after / before:

- ``refuse``: ``jaxreg run bad.toml``, a spec with ``train.loss = "hinge"`` (exit 2);
- ``plan``: ``jaxreg plan sweeps/demo.toml`` with an empty compilation cache folder (a spec
  never seen before);
- ``first-run``: ``jaxreg run sweeps/demo.toml`` with ``JAXREG_CACHE_DIR=off`` (a cold
  compilation cache), into a fresh folder; the two journals must be byte-identical.

    python benchmarks/startup.py --base /tmp/base [--repeats 2] [--only refuse plan first-run]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(code: Path, args: list[str], env: dict, cwd: Path) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jaxreg", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(code)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, type=Path, help="a checkout of the code before")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=["refuse", "plan", "first-run"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jaxreg-startup-"))
    bad = work / "bad.toml"
    bad.write_text('name = "bad"\n[data]\ndataset = "digits"\n[train]\nloss = "hinge"\n')
    demo = str(ROOT / "sweeps" / "demo.toml")
    rows = []
    for repeat in range(args.repeats):
        for which in args.only:
            for label, code in (("before", args.base.resolve()), ("after", ROOT)):
                tag = f"{which}-{label}-{repeat}"
                if which == "refuse":
                    command, env = ["run", str(bad)], {"JAXREG_CACHE_DIR": "off"}
                elif which == "plan":
                    command, env = ["plan", demo], {"JAXREG_CACHE_DIR": str(work / f"cache-{tag}")}
                else:
                    command, env = ["run", demo, "--out", str(work / tag), "--quiet"], {"JAXREG_CACHE_DIR": "off"}
                wall, cpu, code_ = timed(code, command, env, work)
                row = {"what": which, "code": label, "repeat": repeat, "wall_s": round(wall, 2),
                       "cpu_s": round(cpu, 2), "exit": code_, "load": round(os.getloadavg()[0], 1)}
                if which == "first-run":
                    journal = (work / tag / "trials.jsonl").read_bytes()
                    reference = (work / f"{which}-before-{repeat}" / "trials.jsonl").read_bytes()
                    row["journal_identical_to_before"] = journal == reference
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\nwhat        before wall / cpu    after wall / cpu    ratio wall / cpu (after / before, best of each)")
    for which in args.only:
        best = {label: (min(r["wall_s"] for r in rows if r["what"] == which and r["code"] == label),
                        min(r["cpu_s"] for r in rows if r["what"] == which and r["code"] == label))
                for label in ("before", "after")}
        (bw, bc), (aw, ac) = best["before"], best["after"]
        print(f"{which:10}  {bw:6.2f} s / {bc:6.2f} s    {aw:6.2f} s / {ac:6.2f} s    {aw / bw:.2f} / {ac / bc:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
