"""Prints the score of the last ``mutmut run`` and the diff of every mutant that was not killed.

Run from the repository root after ``mutmut run`` (``tests/mutation/run.sh`` does both).
``--diffs FILE`` also writes each survivor's diff to FILE.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--diffs", type=Path, help="write the survivors' diffs here")
    args = parser.parse_args()

    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    counts: collections.Counter = collections.Counter()
    by_module: dict = collections.defaultdict(collections.Counter)
    not_killed = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            status = status_by_exit_code[code] if code is not None else "not checked"
            counts[status] += 1
            by_module[str(path)][status] += 1
            if status not in ("killed", "not checked"):
                not_killed.append((name, status, path))
    total = sum(counts.values())
    killed = counts["killed"]
    print(f"mutants: {total}")
    for status, n in counts.most_common():
        print(f"  {status}: {n}")
    for module, c in sorted(by_module.items()):
        print(f"  {module}: {c['killed']}/{sum(c.values())} killed")
    print(f"score: {killed}/{total} = {100.0 * killed / max(total, 1):.1f}%")
    out = open(args.diffs, "w") if args.diffs else None
    for name, status, path in sorted(not_killed):
        print(f"{status}: {name}")
        if out:
            diff = get_diff_for_mutant(name, path=path)
            lines = [l for l in diff.splitlines() if l[:1] in "+-" and l[:3] not in ("+++", "---")]
            out.write(f"## {name} ({status})\n" + "\n".join(lines) + "\n\n")
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
