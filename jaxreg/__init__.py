"""jaxreg: study and tune regularization of neural networks, whole sweeps as one compiled program.

Layout, in the order data flows, each layer importing only from those before it:

- the library, re-exported here: ``errors`` (``InputError``) -> ``data`` -> ``models``
  (+ ``drop``, ``adapters``) -> ``losses`` + ``penalties`` -> ``hparams`` -> ``optimizers``
  -> ``layout`` -> ``step`` + ``early_stopping`` -> ``train`` -> ``batch``;
- ``report`` (``store`` -> ``summary`` -> ``folder`` -> ``plots``, ``compare``): a results
  folder's files, their statistics and figures;
- ``sweeps`` (``space`` -> ``spec`` -> ``build`` -> ``run``): a TOML spec checked, built and
  trained, written through ``report.store``;
- ``cli``: the ``jaxreg`` command, on top.

The library never imports the tooling (``sweeps``, ``report``), and ``report`` never imports
``sweeps``; ``import jaxreg`` loads the library only.
"""

from jaxreg import adapters, data, early_stopping
from jaxreg.adapters import as_model, from_equinox, from_flax, from_functions
from jaxreg.batch import check_hparams, compiled_members, member_key, train_batch
from jaxreg.drop import dropconnect, dropout, spatial_dropout
from jaxreg.errors import InputError
from jaxreg.hparams import DEFAULTS, HParams, make_hparams, stack_hparams
from jaxreg.layout import LAYOUTS, Layout, layout
from jaxreg.losses import (accuracy, get_loss, mean_squared_error, sigmoid_binary_cross_entropy,
                           softmax_cross_entropy, squared_error, sum_squared_error)
from jaxreg.models import Model, cnn, mlp, numpy_uniform_init, relu_book
from jaxreg.optimizers import OPTIMIZERS, learning_rate, optimizer
from jaxreg.penalties import (add_penalty_gradient, all_params_mask, decoupled_weight_decay, l1_decay,
                              penalty, prox_l1, proximal_l1, soft_threshold, weight_norm, weights_mask,
                              zero_fraction)
from jaxreg.step import TrainState, divergence_guard, evaluate, objective, train_step
from jaxreg.train import METRICS, Data, Result, TrainConfig, as_data, make_train

__version__ = "0.1.0"

__all__ = [
    "DEFAULTS", "Data", "HParams", "InputError", "LAYOUTS", "Layout", "METRICS", "Model", "OPTIMIZERS",
    "Result", "TrainConfig", "TrainState", "accuracy", "adapters", "add_penalty_gradient",
    "all_params_mask", "as_data", "as_model", "check_hparams", "cnn", "compiled_members", "data",
    "decoupled_weight_decay", "divergence_guard", "dropconnect", "dropout", "early_stopping",
    "evaluate", "from_equinox", "from_flax", "from_functions", "get_loss", "l1_decay", "layout",
    "learning_rate", "make_hparams", "make_train", "mean_squared_error", "member_key", "mlp",
    "numpy_uniform_init", "objective", "optimizer", "penalty", "prox_l1", "proximal_l1", "relu_book",
    "sigmoid_binary_cross_entropy", "soft_threshold", "softmax_cross_entropy", "spatial_dropout",
    "squared_error", "stack_hparams", "sum_squared_error", "train_batch", "train_step", "weight_norm",
    "weights_mask", "zero_fraction",
]
