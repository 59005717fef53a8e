"""The names a spec chooses among, each defined once, in a module that imports nothing.

:mod:`jaxreg.sweeps.spec` checks a spec against these before JAX loads (a bad spec is refused
at once), and :mod:`jaxreg.report` reads a results folder with them without loading JAX; the
modules that implement them (``losses``, ``models``, ``train``, ``report.summary``) import them
from here.
"""

LOSSES = ("squared_error", "sum_squared_error", "mse", "cross_entropy", "bce")
INITS = ("uniform", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform")
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
           "epoch_loss", "epoch_accuracy", "penalty", "weight_norm", "zero_fraction")
# Regression (a squared-error loss on float targets) adds these; classification results lack them.
REGRESSION_METRICS = tuple(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("rmse", "mae", "r2"))
# What a search may rank configs by: the monitors, and a regression's own measures.
SEARCH_METRICS = MONITORS + ("val_rmse", "val_mae", "val_r2", "train_rmse", "train_mae", "train_r2")
# Generalization measures (jaxreg.measures) that train.measures may ask the program to compute at
# the returned params of every member: journaled beside the metrics under these names.
MEASURES = ("norm_product", "path_norm", "margin", "sharpness", "mag_sharpness", "hessian")
# the columns of a curves CSV besides the metrics
CSV_SOURCES = ("case", "config_id", "seed", "round", "epoch", "epoch_index")


# The splits each evaluation measures, and the per-split measures jaxreg computes itself: an own
# metric (``train.extra_metrics``) may not take one of their names.
SPLITS = ("train", "val", "test")
BUILTIN_MEASURES = ("loss", "accuracy", "rmse", "mae", "r2")


def metric_names(regression: bool, extra=()) -> tuple[str, ...]:
    """The metrics a result holds: ``METRICS``, ``REGRESSION_METRICS`` for a regression, and
    ``SPLIT_NAME`` for each split and each own metric ``NAME`` in ``extra``."""
    return (METRICS + REGRESSION_METRICS if regression else METRICS) + own_metric_names(extra)


def own_metric_names(extra, splits=SPLITS) -> tuple[str, ...]:
    """``train_NAME``, ``val_NAME``, ``test_NAME`` of each own metric ``NAME`` (those of
    ``splits``: ``SPLITS[:2]`` are what a monitor or a search may name)."""
    extra = tuple(extra)
    return tuple(f"{split}_{name}" for split in splits for name in extra)


def result_metrics(metrics) -> tuple[str, ...]:
    """The metric names of a result's ``final`` or ``curves`` (or a journal line's ``metrics``):
    the built-in ones, regression's when it has them, then its own metrics' in their order."""
    base = metric_names(REGRESSION_METRICS[0] in metrics)
    own = [name for name in metrics if name not in base and "/" not in name]
    split = {name: name.partition("_")[0] for name in own}  # JAX returns dicts sorted: train, val, test again
    return base + tuple(sorted(own, key=lambda name: SPLITS.index(split[name]) if split[name] in SPLITS else 3))


def search_metrics(train) -> tuple[str, ...]:
    """What a search may rank configs by: ``SEARCH_METRICS``, and ``train_NAME``, ``val_NAME`` of
    each own metric of a ``[train]`` table (its ``extra_metrics``)."""
    own = train.get("extra_metrics") if isinstance(train, dict) else None
    return SEARCH_METRICS + own_metric_names(own if isinstance(own, dict) else (), SPLITS[:2])


def check_metric_name(field: str, name) -> str:
    """An own metric's name: a lower-case identifier that no built-in measure of a split has."""
    import re

    from jaxreg.errors import InputError

    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name) or name in BUILTIN_MEASURES:
        raise InputError(f"{field}: expected a lower-case name (letters, digits, _; at most 40) other than "
                         f"{', '.join(BUILTIN_MEASURES)} (the metric is journaled as train_NAME, val_NAME, "
                         f"test_NAME), got {name!r}")
    return name
