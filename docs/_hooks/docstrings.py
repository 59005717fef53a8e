"""Griffe extension: jaxreg's docstrings, written for ``help()`` and doctest, read as Markdown.

The docstrings follow the Google style with reStructuredText inline markup, and their examples
are bare doctest lines (``>>>``); mkdocstrings renders Markdown, where a role shows as
``:func:`` before the name and ``>>>`` opens a nested quote. So a role becomes a code span and
a doctest block a ``pycon`` code block. ``double backticks`` need nothing: they are a code span
in Markdown too. The sources stay as they are.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|obj|exc|const):`~?([^`]+)`")
PEP = re.compile(r":pep:`(\d+)`")


def fence_doctests(text: str) -> str:
    """Each run of lines from a ``>>>`` line to the next blank line, fenced as ``pycon``."""
    out, indent = [], None
    for line in text.splitlines():
        if indent is None and line.lstrip().startswith(">>>"):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
        elif indent is not None and not line.strip():
            out.append(f"{indent}```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


def markdown(text: str) -> str:
    return fence_doctests(PEP.sub(r"PEP \1", ROLE.sub(r"`\1`", text)))


class DocstringsAsMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
