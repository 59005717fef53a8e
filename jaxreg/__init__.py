"""jaxreg: study and tune regularization of neural networks, whole sweeps as one compiled program.

Layout, in the order data flows, each layer importing only from those before it:

- the library, re-exported here: ``data`` -> ``models`` (+ ``drop``) -> ``losses`` +
  ``penalties`` -> ``hparams`` + ``train``, with ``errors`` (``InputError``) for all of them;
- ``report`` (``store`` -> ``summary`` -> ``folder`` -> ``plots``, ``compare``): a results
  folder's files, their statistics and figures;
- ``sweeps`` (``space`` -> ``spec`` -> ``build`` -> ``run``): a TOML spec checked, built and
  trained, written through ``report.store``;
- ``cli``: the ``jaxreg`` command, on top.

The library never imports the tooling (``sweeps``, ``report``), and ``report`` never imports
``sweeps``; ``import jaxreg`` loads the library only.
"""

from jaxreg import data
from jaxreg.drop import dropconnect, dropout, spatial_dropout
from jaxreg.hparams import DEFAULTS, HParams, make_hparams, stack_hparams
from jaxreg.losses import (accuracy, get_loss, mean_squared_error, sigmoid_binary_cross_entropy,
                           softmax_cross_entropy, squared_error, sum_squared_error)
from jaxreg.models import Model, cnn, mlp, numpy_uniform_init, relu_book
from jaxreg.penalties import (all_params_mask, decoupled_weight_decay, l1_decay, penalty,
                              proximal_l1, soft_threshold, weight_norm, weights_mask)
from jaxreg.train import Data, Result, TrainConfig, make_train, member_key, train_batch

__version__ = "0.1.0"

__all__ = [
    "DEFAULTS", "Data", "HParams", "Model", "Result", "TrainConfig", "accuracy",
    "all_params_mask", "cnn", "data", "decoupled_weight_decay", "dropconnect", "dropout",
    "get_loss", "l1_decay", "make_hparams", "make_train", "mean_squared_error", "member_key",
    "mlp", "numpy_uniform_init", "penalty", "proximal_l1", "relu_book",
    "sigmoid_binary_cross_entropy", "soft_threshold", "softmax_cross_entropy", "spatial_dropout",
    "squared_error", "stack_hparams", "sum_squared_error", "train_batch", "weight_norm",
    "weights_mask",
]
