"""What code jaxreg may import while it reads a results folder or an exported model.

A spec is the user's own file: the ``module:function`` names in it (``model.kind``,
``train.penalty_mask``) are imported. A results folder or an export may come from anyone, and
importing a module runs it: while one is read (inside :func:`foreign`), nothing it names is
imported unless the caller trusts its author (``trust_code=True``, ``--trust-code``), the
convention of other tools that load code along with weights.
"""

from __future__ import annotations

import contextlib
import contextvars

from jaxreg.errors import InputError

__all__ = ["check_import", "foreign"]

# None: anything may be imported (the user's own spec); else (where, names, remedy): only those
# "module:function" names, while the results folder or export `where` is read.
_RESTRICTED: contextvars.ContextVar = contextvars.ContextVar("jaxreg_restricted_imports", default=None)


@contextlib.contextmanager
def foreign(where: str, trust_code: bool = False, allowed=frozenset(), remedy: str | None = None):
    """Within it, :func:`check_import` refuses the names that ``where`` (a results folder or an
    export) gives, unless ``trust_code`` (the caller trusts its author) or they are in ``allowed``.
    Nested, restrictions add up: trusting a folder read while an untrusted one is read lifts nothing.
    ``remedy``: what the refusal tells the user to do (default: pass --trust-code).
    """
    outer = _RESTRICTED.get()
    if trust_code:
        yield
        return
    names = frozenset(allowed) if outer is None else frozenset(allowed) & outer[1]
    token = _RESTRICTED.set((where, names, remedy or f"pass --trust-code, or trust_code=True in Python, "
                                                         f"if you trust the author of {where}"))
    try:
        yield
    finally:
        _RESTRICTED.reset(token)


def check_import(field: str, text: str) -> None:
    """Refuses, in one line, to import ``text`` (``"module:function"``) for ``field`` while an
    untrusted folder or export is read."""
    restricted = _RESTRICTED.get()
    if restricted is None or text in restricted[1]:
        return
    where, _, remedy = restricted
    expected = "'mlp' or 'cnn' (a built-in model)" if field.endswith("model.kind") else "none"
    raise InputError(f"{field}: expected {expected} in {where}, read without trusting its code, got "
                     f"{text!r} (it would import and run module {text.partition(':')[0]!r}: {remedy})")
