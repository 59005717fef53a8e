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
# the columns of a curves CSV besides the metrics
CSV_SOURCES = ("case", "config_id", "seed", "round", "epoch", "epoch_index")


def metric_names(regression: bool) -> tuple[str, ...]:
    """The metrics a result holds: ``METRICS``, and ``REGRESSION_METRICS`` for a regression."""
    return METRICS + REGRESSION_METRICS if regression else METRICS


def result_metrics(metrics) -> tuple[str, ...]:
    """The metric names of a result's ``final`` or ``curves`` (regression's when it has them)."""
    return metric_names(REGRESSION_METRICS[0] in metrics)
