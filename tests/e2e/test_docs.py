"""The documentation site (docs/, mkdocs.yml) builds, and its examples hold, as the README's do.

* ``mkdocs build --strict`` passes: every page is in the nav, every link and anchor resolves,
  every ``::: name`` of the API page is found by griffe in the sources.
* The API page lists every name of ``jaxreg.__all__``, and each of its entries is a real object.
* Every ```python block of docs/*.md runs, unless an HTML comment right before it says
  ``<!-- no-run: REASON -->``.
* Every ``jaxreg`` command of a ```bash block parses; the spec commands (``run``, ``plan``,
  ``sanity``, ``lr-find``) are checked by ``jaxreg plan`` on the same spec and ``--set``s (the
  spec and its overrides are valid, nothing trains); the commands that read a results folder
  or an export read one that a documented command writes or the repository holds. The
  README's commands, which do train, run verbatim in tests/e2e/test_readme.py.
* The spec reference's "every key, with its default" block gives the code's defaults.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import jaxreg

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TEXTS = {page.name: page.read_text() for page in PAGES}
NO_RUN = re.compile(r"<!--\s*no-run:\s*(\S[^>]*?)\s*-->\s*$")


def _no_run_reason(before: str) -> str | None:
    """The reason of a ``<!-- no-run: REASON -->`` comment right before a block, else None."""
    marker = NO_RUN.search(before.rstrip())
    return marker[1] if marker else None


# every ```python block: (page, index on the page, code, the reason it does not run or None)
BLOCKS = [(name, index, match[1], _no_run_reason(text[:match.start()]))
          for name, text in TEXTS.items()
          for index, match in enumerate(re.finditer(r"```python\n(.*?)```", text, flags=re.S))]
COMMANDS = [(name, re.sub(r"\s{2,}#.*$", "", line).strip())
            for name, text in TEXTS.items()
            for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
            for line in block.splitlines() if line.startswith("jaxreg ")]
SPEC_COMMANDS = ("run", "plan", "sanity", "lr-find")


def test_the_docs_have_pages_examples_and_commands():
    assert {"index.md", "api.md", "spec.md", "cli.md", "architecture.md"} <= set(TEXTS)
    assert len(BLOCKS) >= 5 and len(COMMANDS) >= 15


def test_mkdocs_build_strict_passes(tmp_path):
    for package in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(package)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def _api_entries() -> list[str]:
    return re.findall(r"^::: ([\w.]+)$", TEXTS["api.md"], flags=re.M)


def test_every_public_name_is_in_the_api_page():
    entries = set(_api_entries())
    missing = []
    for name in jaxreg.__all__:
        module = jaxreg._SOURCE.get(name)
        entry = f"jaxreg.{name}" if module is None else f"{module}.{jaxreg._RENAMED.get(name, name)}"
        if entry not in entries:
            missing.append(f"{name} (as ::: {entry})")
    assert not missing, f"docs/api.md lacks: {', '.join(missing)}"


def test_every_api_entry_is_a_real_object():
    for entry in _api_entries():
        if _is_module(entry):
            continue
        module, _, attribute = entry.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), entry


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module that is not a package
        return False


def test_no_run_markers_give_a_reason():
    for text in TEXTS.values():
        for marker in re.findall(r"<!--\s*no-run\b[^>]*-->", text):
            assert NO_RUN.search(marker), f"{marker}: say why it does not run: <!-- no-run: REASON -->"


@pytest.mark.parametrize("page, index", [(name, index) for name, index, _, _ in BLOCKS])
def test_docs_python_example_runs(page, index, tmp_path, monkeypatch, capsys):
    (code, reason), = [(c, r) for n, i, c, r in BLOCKS if (n, i) == (page, index)]
    if reason:
        pytest.skip(f"docs/{page} python block {index}: {reason}")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/{page} python block {index}", "exec"), {"__name__": "docs"})


def test_docs_commands_parse():
    from jaxreg import cli

    for page, command in COMMANDS:
        words = shlex.split(command)[1:]
        if words == ["--version"]:
            continue
        try:
            cli._parser().parse_args(words)
        except SystemExit as error:
            pytest.fail(f"docs/{page}: {command}: exits {error.code} while its arguments are read")


def _spec_check(words: list[str]) -> tuple[str, list[str]] | None:
    """The spec and the --set/--unset arguments of a spec command, as `plan` takes them."""
    if words[0] not in SPEC_COMMANDS:
        return None
    spec, overrides, rest = words[1], [], iter(words[2:])
    for word in rest:
        if word in ("--set", "--unset"):
            overrides += [word, next(rest)]
    return spec, overrides


def test_docs_spec_commands_plan(tmp_path, monkeypatch, capsys):
    """`jaxreg plan` accepts the spec and the overrides of every documented spec command."""
    from jaxreg import cli

    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    monkeypatch.chdir(tmp_path)
    checked = set()
    for page, command in COMMANDS:
        found = _spec_check(shlex.split(command)[1:])
        if found is None or (found[0], *found[1]) in checked:
            continue
        checked.add((found[0], *found[1]))
        code = cli.main(["plan", found[0], *found[1]])
        assert code == 0, f"docs/{page}: {command}: plan exits {code}\n{capsys.readouterr().err[-2000:]}"
    assert len(checked) >= 5


def _written() -> set[str]:
    """What the documented commands write: run's results folders, best's exports."""
    written = set()
    for _, command in COMMANDS:
        words = shlex.split(command)[1:]
        if words[0] == "run":
            out = words[words.index("--out") + 1] if "--out" in words else None
            written.add(out or f"results/{tomllib.loads((ROOT / words[1]).read_text()).get('name', Path(words[1]).stem)}")
        if words[0] == "best" and "--export" in words:
            written.add(words[words.index("--export") + 1])
    return written


def test_docs_folder_commands_read_what_a_documented_command_writes():
    """show, plot, best, compare, report, predict and export read a folder (or export) that a documented command
    writes, or one the repository holds: following the docs in order works."""
    written = _written()
    for page, command in COMMANDS:
        words = shlex.split(command)[1:]
        if words[0] in ("show", "plot", "best", "predict"):
            read = [words[1]]
        elif words[0] == "export":
            read = [words[2]]
        elif words[0] in ("compare", "report"):
            read = [w for w in words[1:words.index("--out") if "--out" in words else None] if not w.startswith("-")]
        else:
            continue
        for folder in read:
            assert folder in written or (ROOT / folder / "manifest.json").is_file(), f"docs/{page}: {command}: {folder}"


def test_the_spec_block_gives_every_key_its_default():
    """The spec reference's "every key, with its default" block against the defaults check_spec
    fills in (a coarse-to-fine and a halving spec for the keys only they resolve), and HParams'
    DEFAULTS. Keys whose default is derived say so in their comment; [cases] is an example."""
    from jaxreg.hparams import DEFAULTS
    from jaxreg.sweeps.spec import SEARCH_DEFAULTS, check_spec

    block = re.search(r"Every key, with its default:\n\n```toml\n(.*?)```", TEXTS["spec.md"], flags=re.S)[1]
    given = tomllib.loads(block)
    derived = {"name": "default: the file name", "data.dataset": "required, no default",
               "search.round_method": "default: random", "search.min_epochs": "default eval_every",
               "search.goal": "default: minimize for losses", "search.chunk_size": "default: as many as fit",
               "search.path_max": "required, no default", "search.path_epochs": "default: train.epochs",
               "search.path_mix": "default [0.5]"}
    minimal = {"data": {"dataset": "digits"}, "train": {"epochs": 10}}
    resolved = {method: check_spec({**minimal, "search": {"method": method, **extra}})
                for method, extra in (("grid", {}), ("coarse_to_fine", {}), ("halving", {}),
                                      ("path", {"path_max": 1.0}))}
    defaults = {"name": "sweep", "description": resolved["grid"].description,
                "data": {"dataset": None, "seed": resolved["grid"].base.data_seed},
                "model": resolved["grid"].base.model, "train": resolved["grid"].base.train,
                "hparams": DEFAULTS, "output": resolved["grid"].output,
                "search": {**resolved["path"].search, **resolved["halving"].search, **resolved["coarse_to_fine"].search,
                           **{k: v for k, v in resolved["grid"].search.items() if k not in ("rounds", "round_method")},
                           "seeds": SEARCH_DEFAULTS["seeds"],  # a count, resolved to the list of seeds
                           "compact": False}}  # resolved specs leave it out at its default
    lines = block.splitlines()
    checked = 0
    for table, value in given.items():
        entries = value.items() if isinstance(value, dict) and table != "cases" else [] if table == "cases" else [(None, value)]
        for key, shown in entries:
            name = table if key is None else f"{table}.{key}"
            if name in derived:
                line = next(line for line in lines if re.match(rf"{key or table}\s*=", line))
                assert derived[name] in line, name
                continue
            default = defaults[table] if key is None else defaults[table][key]
            assert shown == default, f"{name}: docs/spec.md says {shown!r}, the code {default!r}"
            checked += 1
    assert checked >= 45


OPTIONAL = ("ray", "optuna", "cmaes", "flax", "equinox", "pandas", "tensorboardX", "tensorboard", "torch", "mlflow")


def test_doctests_collect_without_the_optional_packages():
    """`pytest jaxreg/` (the doctests) imports every module of the package: none may need an
    optional extra to be imported."""
    script = (f"import sys\nfor name in {OPTIONAL!r}:\n    sys.modules[name] = None\n"
              "import pytest\nsys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'jaxreg']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
