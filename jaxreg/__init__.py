"""jaxreg: study and tune regularization of neural networks, whole sweeps as one compiled program.

Layout, in the order data flows, each layer importing only from those before it:

- the library, re-exported here: ``errors`` (``InputError``) + ``names`` (what a spec chooses
  among, JAX-free) -> ``data`` -> ``models``
  (+ ``drop``, ``adapters``, batch norm) -> ``losses`` + ``penalties`` (+ ``measures``) -> ``hparams`` ->
  ``augment`` + ``transfer`` -> ``optimizers`` -> ``layout`` -> ``step`` + ``early_stopping``
  -> ``train`` -> ``batch``;
- ``report`` (``store`` -> ``summary`` -> ``folder`` -> ``plots``, ``compare``): a results
  folder's files, their statistics and figures, read without JAX;
- ``sweeps`` (``space`` -> ``spec`` -> ``build`` -> the study loop: ``strategies``, ``samplers``
  and ``halving`` decide, ``executor`` trains and journals, ``run`` loops): a TOML spec checked,
  built and trained, written through ``report.store``;
- ``cli``: the ``jaxreg`` command, on top.

The library never imports the tooling (``sweeps``, ``report``), and ``report`` never imports
``sweeps``; ``import jaxreg`` loads the library only. Two names reach into the tooling, for
Python users: ``jaxreg.sweep`` (a whole sweep, as ``jaxreg run``) and ``jaxreg.load_best`` (with
``jaxreg.load_model`` for its export).

Names load on first use (:pep:`562`): ``import jaxreg`` itself imports neither JAX nor NumPy's
heavier users, so the ``jaxreg`` command answers ``--help`` at once and takes a Ctrl-C cleanly
while JAX is still loading. ``jaxreg.layout`` is the module of the params layout (its function
is ``jaxreg.make_layout``); ``jaxreg.augment`` the module of data augmentation (its function is
``jaxreg.augment.augment``).
"""

import importlib

__version__ = "0.1.0"

# Where each public name lives; the modules themselves (``jaxreg.data``, ...) load on use too.
_EXPORTS = {
    "jaxreg.adapters": ("as_model", "from_equinox", "from_flax", "from_functions"),
    "jaxreg.batch": ("Checkpoint", "ChunkState", "check_hparams", "compiled_members", "compiled_segments",
                     "member_key", "segment_blocks", "train_batch"),
    "jaxreg.drop": ("dropconnect", "dropout", "spatial_dropout"),
    "jaxreg.errors": ("InputError",),
    "jaxreg.hparams": ("DEFAULTS", "HParams", "make_hparams", "stack_hparams"),
    "jaxreg.measures": ("edge_of_stability", "layer_norms", "norm_product", "output_margin", "path_norm", "sharpness",
                        "top_hessian_eigenvalue"),
    "jaxreg.layout": ("LAYOUTS", "Layout", "make_layout"),
    "jaxreg.losses": ("accuracy", "get_loss", "mean_squared_error", "sigmoid_binary_cross_entropy",
                      "softmax_cross_entropy", "squared_error", "sum_squared_error"),
    "jaxreg.models": ("Model", "batch_norm", "cnn", "mlp", "numpy_uniform_init", "relu_book"),
    "jaxreg.optimizers": ("OPTIMIZERS", "learning_rate", "optimizer"),
    "jaxreg.penalties": ("add_penalty_gradient", "all_params_mask", "decoupled_weight_decay", "l1_decay",
                         "penalty", "prox_l1", "proximal_l1", "soft_threshold", "weight_norm", "weights_mask",
                         "zero_fraction"),
    "jaxreg.step": ("TrainState", "divergence_guard", "evaluate", "objective", "train_step"),
    "jaxreg.train": ("METRICS", "Data", "Result", "TrainConfig", "as_data", "make_train"),
    "jaxreg.transfer": ("Pretrained", "layer_scale", "merge_params", "pretrained_layers", "update_scale"),
    "jaxreg.data": ("Dataset", "from_arrays"),
    "jaxreg.diagnosis": ("Finding", "Thresholds", "diagnose"),
    # The tooling's two entry points for Python users; loaded only when used.
    "jaxreg.sweeps.api": ("SweepResult", "sweep"),
    "jaxreg.sweeps.best": ("Best", "load_best", "load_model"),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}
_RENAMED = {"make_layout": "layout"}

__all__ = sorted([*_SOURCE, "adapters", "augment", "data", "early_stopping", "layout", "transfer", "diagnosis"])


def __getattr__(name: str):
    module = _SOURCE.get(name)
    if module is None:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
