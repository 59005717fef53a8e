"""Successive halving's and hyperband's schedules: plain arithmetic, no JAX (the spec checks them
before JAX loads; :mod:`jaxreg.sweeps.halving` trains them)."""

from __future__ import annotations

import math

METHODS = ("halving", "hyperband")


def rung_epochs(epochs: int, first: int, eta: int) -> list[int]:
    """The epochs at which a halving starting at ``first`` ranks its configs; the last is ``epochs``."""
    rungs, at = [], first
    while at < epochs:
        rungs.append(at)
        at *= eta
    return rungs + [epochs]


def brackets(epochs: int, min_epochs: int, eta: int) -> list[tuple[int, list[int]]]:
    """Hyperband's brackets, most exploratory first: ``(configs, rung epochs)`` each."""
    s_max = len(rung_epochs(epochs, min_epochs, eta)) - 1
    return [(math.ceil((s_max + 1) / (s + 1) * eta**s), rung_epochs(epochs, min_epochs * eta**(s_max - s), eta))
            for s in range(s_max, -1, -1)]
