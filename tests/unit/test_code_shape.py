"""The sweep and report layers stay readable: no function there over 60 lines of code (its
docstring not counted) or taking more than 8 parameters, but for the ones listed with why."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "jaxreg"
MAX_LINES, MAX_PARAMETERS = 60, 8
# name -> why it may exceed a limit
EXCEPTIONS = {
    "jaxreg/sweeps/api.py:sweep": "jaxreg.sweep's public keywords mirror `jaxreg run`'s options (data, out, "
                                  "overrides, overwrite, progress, log, checkpoint_seconds, plots)",
}


def _shape(node: ast.FunctionDef) -> tuple[int, int]:
    body = node.body
    has_docstring = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                     and isinstance(body[0].value.value, str) and len(body) > 1)
    first = body[1].lineno if has_docstring else body[0].lineno
    lines = node.end_lineno - first + 2  # the def line and the code after the docstring
    args = node.args
    parameters = [*args.posonlyargs, *args.args, *args.kwonlyargs, *filter(None, (args.vararg, args.kwarg))]
    if parameters and parameters[0].arg in ("self", "cls"):
        parameters = parameters[1:]
    return lines, len(parameters)


def test_no_function_of_sweeps_or_report_is_too_long_or_takes_too_many_parameters():
    over = []
    for path in sorted([*PACKAGE.glob("sweeps/*.py"), *PACKAGE.glob("report/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines, parameters = _shape(node)
                name = f"{path.relative_to(PACKAGE.parent).as_posix()}:{node.name}"
                if (lines > MAX_LINES or parameters > MAX_PARAMETERS) and name not in EXCEPTIONS:
                    over.append(f"{name} (line {node.lineno}): {lines} lines, {parameters} parameters")
    assert not over, "\n".join(over)


def test_the_shape_is_measured_as_described():
    tree = ast.parse('def f(self, a, *b, c=1, **d):\n    """doc\n    more"""\n    x = 1\n    return x\n')
    assert _shape(tree.body[0]) == (3, 4)
