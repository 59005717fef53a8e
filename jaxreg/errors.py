"""One error type for bad input, and the validators every layer shares.

Every message reads ``FIELD: expected ALLOWED, got VALUE``; :class:`InputError` keeps the
field so callers (the CLI, a spec reader that prefixes a path) can tell which input was bad.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence


class InputError(ValueError):
    """Bad input: an argument, a spec field, a results folder. The message names the field.

    Attributes:
        field: the part of the message before the first ``": "`` (``"hparams.l2"``, ``"--out"``).
    """

    @property
    def field(self) -> str:
        return str(self).split(": ", 1)[0]


def quoted(values: Sequence) -> str:
    """``'a', 'b', 'c'``: allowed values as an error message lists them."""
    return ", ".join(map(repr, values))


def check_choice(field: str, value, allowed: Sequence) -> None:
    """Raises unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputError(f"{field}: expected one of {quoted(allowed)}, got {value!r}")


def is_int(value) -> bool:
    """A Python or NumPy integer, never a bool."""
    # numbers.Integral, which NumPy's integers register as: no NumPy import here, so the jaxreg
    # command installs its signal handlers at once (see jaxreg.cli.main)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(field: str, value, allowed: str = "an integer >= 1") -> int:
    """Returns ``value`` as an int >= 1, or raises naming ``field``."""
    if not is_int(value) or value < 1:
        raise InputError(f"{field}: expected {allowed}, got {value!r}")
    return int(value)


def check_positive_ints(field: str, values: Sequence) -> tuple[int, ...]:
    """Returns ``values`` as a tuple of ints >= 1, or raises naming ``field``."""
    values = tuple(values)
    if not all(is_int(v) and v > 0 for v in values):
        raise InputError(f"{field}: expected positive integers, got {list(values)}")
    return tuple(int(v) for v in values)
