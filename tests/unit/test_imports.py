"""How jaxreg's modules import each other: no cycles, and reading a results folder without JAX.

Structural tests: the import graph as the source states it (read with ``ast``, imports inside
functions included), and which modules a process that reads a folder loaded.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jaxreg"
FOLDER = ROOT / "results" / "notebook-2d"  # a committed results folder: 15 trials, their curves and params
HEAVY = ("jax", "jaxlib", "optax", "dm_pix")  # what reading a folder must not load


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """``{name: module}`` of a package that loads its names on first use (:pep:`562`) from an
    ``_EXPORTS = {module: (name, ...)}`` table: importing such a name imports that module."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["_EXPORTS"]:
            table = ast.literal_eval(node.value)
            return {name: module for module, names in table.items() for name in names}
    return {}


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict, lazy: dict) -> set[str]:
    """The package's modules one import statement of module ``name`` loads: the module it names
    (a relative one resolved), each imported name that is a submodule (``from jaxreg import
    losses``), and the module a lazy package loads an imported name from (``from jaxreg.sweeps
    import build_spec``: ``jaxreg.sweeps.build``)."""
    if isinstance(node, ast.Import):
        targets = {alias.name for alias in node.names}
    else:
        if node.level:
            base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        targets = {target} | {f"{target}.{alias.name}" for alias in node.names}
        targets |= {lazy[target][alias.name] for alias in node.names if alias.name in lazy.get(target, {})}
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {module it imports: line}}`` over every ``import`` of the package's modules,
    at module level or inside a function, class or ``if``."""
    modules = _modules()
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in modules.items()}
    lazy = {name: _lazy_exports(tree) for name, tree in trees.items()}
    graph = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for node in ast.walk(trees[name]):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(name, path, node, modules, lazy):
                    edges.setdefault(target, node.lineno)
    return graph


def find_cycles(graph: dict[str, dict]) -> list[list[str]]:
    """One cycle through each group of modules that reach one another by imports (a strongly
    connected component, Tarjan's algorithm), as in :func:`find_cycle`; empty without cycles."""
    index, low, stack, groups = {}, {}, [], []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set(stack[stack.index(node):])
            del stack[stack.index(node):]
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [find_cycle({a: {b: n for b, n in graph[a].items() if b in group} for a in sorted(group)})
            for group in groups]


def find_cycle(graph: dict[str, dict]) -> list[str] | None:
    """One cycle of ``graph`` as the modules along it (the first repeated last), or None."""
    state = {}  # module -> "open" while on the path, "done" once every path from it is explored
    path = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_every_cycle_and_resolves_imports():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1, "b": 1}}) is None
    two = {"a": {"b": 1}, "b": {"a": 1, "c": 1}, "c": {"d": 1}, "d": {"c": 1}, "e": {"a": 1}}
    assert sorted(find_cycles(two)) == [["a", "b", "a"], ["c", "d", "c"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []
    graph = import_graph()
    assert "jaxreg.errors" in graph["jaxreg.sweeps"]  # a package's __init__, absolute import
    assert {"jaxreg.losses", "jaxreg.penalties"} <= set(graph["jaxreg.step"])  # from jaxreg import losses
    assert "jaxreg.cli" in graph["jaxreg.__main__"]  # an import inside a function
    assert "jaxreg.sweeps.build" in graph["jaxreg.cli"]  # from jaxreg.sweeps import build_spec (PEP 562)


def test_the_package_imports_without_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join("; ".join(
        f"{a} imports {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) for cycle in cycles)


READ = f"""
import sys

import jaxreg.report
from jaxreg import report
from jaxreg.report import compare, findings, folder, plots, tables, tensorboard

out = sys.argv[1]
manifest = report.load_manifest(out)
records = report.read_journal(out)
search = manifest["spec"]["search"]
rows = report.summarize(records, search, manifest.get("chance"))
print(report.format_table(rows, search).splitlines()[0])
report.write_summary(out, rows)
curves = report.load_curves(out, records[0]["config_id"], records[0]["seed"])
assert "curve/val_loss" in curves and len(curves["epochs"]) == len(curves["curve/val_loss"])
assert len(tables.trials_rows(records)) == len(records)
sweep = folder.load_folder(out)
findings.finding_lines(sweep)
print("plots", *(path.name for path in plots.plot_dir(out)))
print("loaded", sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_reading_and_plotting_a_results_folder_imports_no_jax(tmp_path):
    """What ``jaxreg show`` and a plot without the rebuilt spec do, in a fresh process."""
    out = tmp_path / FOLDER.name  # plot_dir writes its PNGs into the folder: a copy
    shutil.copytree(FOLDER, out)
    done = subprocess.run([sys.executable, "-c", READ, str(out)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[0] == "rank"  # the summary table's header
    assert {"curves.png", "weights_hist.png"} <= set(lines[-2].split()[1:])  # the saved params read too
    assert lines[-1] == "loaded []"
    assert (out / "summary.csv").read_bytes() == (FOLDER / "summary.csv").read_bytes()  # rewritten, the same


def test_jaxreg_show_imports_no_jax(tmp_path):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "jaxreg", "show", str(FOLDER)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "jaxreg.report.findings" in imported and not imported & set(HEAVY)
    assert done.stdout.startswith(f"notebook-2d: 15 trials in {FOLDER}")
