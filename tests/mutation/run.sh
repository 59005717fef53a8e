#!/usr/bin/env bash
# Mutation testing of jaxreg's decision logic with mutmut (configuration: [tool.mutmut] in
# pyproject.toml; modules, tests and results: tests/mutation/README.md).
#
#   tests/mutation/run.sh            # a fresh run: prints the score and the survivors
#   tests/mutation/run.sh --resume   # keep mutmut's results so far, check the rest
#   tests/mutation/run.sh --resume NAME...   # check these mutants again (after new tests)
#
# Needs mutmut (pip install mutmut) in the environment of the tests. Writes mutants/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
MUTMUT=${MUTMUT:-$(dirname "$PYTHON")/mutmut}
JOBS=${JOBS:-$(nproc)}

export JAX_PLATFORMS=cpu
# One persistent compilation cache for the run, shared by every worker: programs a mutant does
# not change (the tests' references, eager ops) load instead of compiling again, while a
# mutated program has other HLO and compiles. A 5x shorter run; fresh each run, so nothing
# compiled by an older jaxreg is read.
cache=$(mktemp -d -t jaxreg-mutation-xla-XXXXXX)
trap 'rm -rf "$cache"' EXIT
export JAX_COMPILATION_CACHE_DIR="$cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
export PYTHONPATH="$PWD/tests/mutation${PYTHONPATH:+:$PYTHONPATH}"  # mutation_plugin

if [[ "${1:-}" != "--resume" ]]; then
    rm -rf mutants
else
    shift
fi
start=$(date +%s)
"$MUTMUT" run --max-children "$JOBS" "$@" > mutants.log 2>&1 || { tail -c 3000 mutants.log; exit 1; }
mv mutants.log mutants/run.log
echo "mutmut run: $(( $(date +%s) - start )) s with $JOBS workers"
"$PYTHON" tests/mutation/report.py --diffs mutants/survivors.txt
