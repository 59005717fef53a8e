"""Sweeps: from a TOML spec to trained trials in a results folder.

In the order a sweep goes through them:

- ``space``: axes over hyperparameters and the grid, random and coarse-to-fine strategies.
- ``spec``: reading a TOML spec, applying ``--set`` overrides, checking every field.
- ``build``: the data set, model, :class:`jaxreg.TrainConfig` and search space of a checked spec.
- ``strategies`` (with ``samplers`` and ``halving``): what trains next, by ask and tell; they
  never train or write.
- ``executor``: the one place that trains what a strategy asks (chunks of one compiled
  program), keeps the members in flight in ``checkpoint.npz`` and journals them through
  :mod:`jaxreg.report.store` (``records`` makes each member's journal line and curves arrays);
  ``remote``: the same, each chunk a Ray task.
- ``run``: the study loop, ``run_sweep``: per variant, ask -> train -> tell until the strategy
  asks nothing.

Bad input raises :class:`jaxreg.errors.InputError` naming the field (``SpecError`` is kept as
another name for it). ``sweeps`` imports the library and :mod:`jaxreg.report`, never the CLI.

Names load on first use (:pep:`562`): ``space`` and ``spec`` import no JAX, so a spec is read and
checked (and a bad one refused) before JAX loads; ``build`` and ``run`` bring it in.
"""

import importlib

from jaxreg.errors import InputError

SpecError = InputError  # the name this error had before InputError replaced it

_EXPORTS = {
    "jaxreg.sweeps.build": ("Spec", "Variant", "build_spec", "load_spec"),
    "jaxreg.sweeps.run": ("choose_chunk_size", "config_id", "run_sweep", "search_rounds"),
    "jaxreg.sweeps.space": ("Axis", "Config", "Space", "parse_axis"),
    "jaxreg.sweeps.spec": ("apply_overrides", "check_spec", "parse_override", "read_spec"),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_SOURCE, "InputError", "SpecError"])


def __getattr__(name: str):
    module = _SOURCE.get(name)
    if module is None:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
