"""Sweeps: from a TOML spec to trained trials in a results folder.

In the order a sweep goes through them:

- ``space``: axes over hyperparameters and the grid, random and coarse-to-fine strategies.
- ``spec``: reading a TOML spec, applying ``--set`` overrides, checking every field.
- ``build``: the data set, model, :class:`jaxreg.TrainConfig` and search space of a checked spec.
- ``run``: every (config, seed) through one compiled program, journaled through
  :mod:`jaxreg.report.store`.

Bad input raises :class:`jaxreg.errors.InputError` naming the field (``SpecError`` is kept as
another name for it). ``sweeps`` imports the library and :mod:`jaxreg.report`, never the CLI.
"""

from jaxreg.errors import InputError
from jaxreg.sweeps.build import Spec, Variant, build_spec, load_spec
from jaxreg.sweeps.run import choose_chunk_size, config_id, run_sweep, search_rounds
from jaxreg.sweeps.space import Axis, Config, Space, parse_axis
from jaxreg.sweeps.spec import apply_overrides, check_spec, parse_override, read_spec

SpecError = InputError  # the name this error had before InputError replaced it

__all__ = [
    "Axis", "Config", "InputError", "Space", "Spec", "SpecError", "Variant", "apply_overrides",
    "build_spec", "check_spec", "choose_chunk_size", "config_id", "load_spec", "parse_axis",
    "parse_override", "read_spec",
    "run_sweep", "search_rounds",
]
