"""The training engine: ``make_train(config)`` returns one pure, jittable, vmappable ``train``.

``train(key, hparams, data, init_params=None) -> Result`` runs a whole training job as nested
``lax.scan`` loops (evaluation blocks > epochs > mini-batches), composed of the pieces in
:mod:`jaxreg.step` (``train_step``, ``evaluate``, ``divergence_guard``) and
:mod:`jaxreg.early_stopping`, with the optimizer of :mod:`jaxreg.optimizers`. So
``jax.jit(jax.vmap(train, in_axes=(0, 0, None, None)))`` trains a whole grid of
configurations times seeds as ONE compiled program (:func:`jaxreg.train_batch` does that in
chunks). Each member stops early, restores its best params and guards against divergence on
its own, through masks: no Python control flow depends on traced values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxreg import early_stopping, losses, measures, penalties, transfer
from jaxreg.augment import augment
from jaxreg.data import Split
from jaxreg.errors import InputError, check_choice, check_positive_int, is_int
from jaxreg.hparams import AUGMENTATIONS, HParams, as_dtype
from jaxreg.layout import LAYOUTS, dense_mask, layout as make_layout, loop_mask, tree_where
from jaxreg.limits import (MAX_EPOCHS, MAX_EVAL_EVERY, MAX_EVALUATIONS, check_measure_sigma,  # noqa: F401
                           check_monitor, check_schedule)
from jaxreg.models import Model
from jaxreg.names import (MEASURES, METRICS, MONITORS, REGRESSION_METRICS, SEARCH_METRICS, check_metric_name,
                          metric_names, own_metric_names)
from jaxreg.optimizers import L1_MODES, OPTIMIZERS, PENALTIES, learning_rate, optimizer
from jaxreg.step import TrainState, divergence_guard, evaluate, objective, train_step, weight_metrics_of

Array = jax.Array
Params = Any


__all__ = ["Data", "Result", "TrainConfig", "as_data", "check_data", "check_values", "make_train", "metric_names", "METRICS",
           "REGRESSION_METRICS", "MONITORS", "SEARCH_METRICS",
           "OPTIMIZERS", "L1_MODES"]


class Data(NamedTuple):
    """The arrays a training job reads; they enter the compiled program as arguments."""

    train: Split
    val: Split
    test: Split


def as_data(dataset) -> Data:
    """Takes the train/val/test arrays of a ``jaxreg.data.Dataset`` (or anything with those splits).

    Integer labels become int32 class ids; float targets stay floats (regression: ``mse`` on
    targets ``[0.06, -1.3]`` trains on those values, not on their integer parts).
    """
    if isinstance(dataset, Data):
        return dataset
    for name in ("train", "val", "test"):
        if not hasattr(dataset, name):
            raise InputError(f"data: expected a jaxreg.data.Dataset or Data with train, val and test "
                             f"splits, got {type(dataset).__name__} without {name!r}")

    def labels(y):
        y = np.asarray(y)
        return y.astype(np.int32) if y.dtype.kind in "biu" else y

    return Data(*(Split(np.asarray(s.x), labels(s.y)) for s in (dataset.train, dataset.val, dataset.test)))


class FrozenMask:
    """A penalty mask pytree of bools, frozen so that a :class:`TrainConfig` can hash it."""

    def __init__(self, mask):
        leaves, self.treedef = jax.tree_util.tree_flatten(mask)
        if not all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
            raise InputError("penalty_mask: expected a pytree of bools (one per params leaf) or a "
                             f"callable params -> mask, got leaves {[type(x).__name__ for x in leaves][:3]}")
        self.leaves = tuple(bool(leaf) for leaf in leaves)

    def __call__(self, params):
        return jax.tree_util.tree_unflatten(self.treedef, self.leaves)

    def __eq__(self, other):
        return isinstance(other, FrozenMask) and (self.treedef, self.leaves) == (other.treedef, other.leaves)

    def __hash__(self):
        return hash((self.treedef, self.leaves))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static choices of a training job: changing any of them means a new compiled program.

    Frozen and hashable: equal configs share one compiled program (see
    :func:`jaxreg.train_batch`). The data are not part of it; they are an argument.

    Attributes:
        model: the :class:`jaxreg.Model` (any model meeting the contract; see
            :mod:`jaxreg.adapters` for Flax, Equinox and plain function pairs).
        loss: one of ``jaxreg.losses.LOSSES``, or an own loss function ``(outputs, labels) ->
            scalar`` of JAX arrays, the batch mean (see :func:`jaxreg.losses.get_loss`): traced
            into the program, differentiated by the step, and reported as ``SPLIT_loss``.
        optimizer: one of ``OPTIMIZERS`` (see :func:`jaxreg.optimizers.direction`); every
            optimizer honours ``hparams.weight_decay``, decoupled.
        epochs: number of passes over the training set (at most ``MAX_EPOCHS``).
        batch_size: examples per step; 1 is per-example SGD, ``None`` the full batch. A last,
            smaller batch is trained on, not dropped.
        shuffle: a new order each epoch from the member's key; False keeps the data order.
        eval_every: epochs between evaluations (must divide ``epochs``); early stopping is
            checked at evaluations. At most ``MAX_EVAL_EVERY``, and ``MAX_EVALUATIONS``
            evaluations: what one compiled program holds per member.
        eval_test: also evaluate the test split (costly on large test sets).
        monitor: the early-stopping metric, one of ``MONITORS`` (or ``train_NAME``, ``val_NAME``
            of an own metric in ``extra_metrics``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (min for losses, max for accuracies; an own
            metric's monitor says which).
        start_epoch: evaluations before this epoch neither count as best nor use up patience.
        l1_mode: ``"subgradient"`` adds ``l1 * sum(|w|)`` to the loss; ``"proximal"`` applies a
            soft-threshold step after each update, which produces exact zeros.
        dropout: compile the dropout path; set False when no member drops units, to skip
            drawing masks.
        dropconnect: compile the DropConnect path; False skips drawing weight masks.
        penalize_bias: apply L2, L1 and weight decay to every param, biases included; by
            default they touch weights only (leaves with two or more dimensions).
        penalty_mask: which params L2, L1 and weight decay touch, overriding the default: a
            pytree of bools shaped like params, or a callable ``params -> mask`` whose leaves
            may be 0/1 arrays (per element). See :mod:`jaxreg.penalties`.
        extra_metrics: own metrics, ``{NAME: function}`` (or ``(NAME, function)`` pairs), each
            ``function(outputs, labels) -> scalar`` of JAX arrays like an own loss, computed in
            the program at each evaluation on each split as ``train_NAME``, ``val_NAME`` and
            ``test_NAME`` (in ``Result.final``, ``Result.curves``, the journal and the tables).
            ``NAME``: a lower-case identifier other than the built-in measures (``loss``,
            ``accuracy``, ``rmse``, ``mae``, ``r2``).
        metrics: the names among ``METRICS`` to compute at each evaluation; ``None`` (the
            default) computes all. The others are NaN in the result, and what only they need
            is left out of the program: without ``epoch_loss`` and ``epoch_accuracy`` the
            training step skips its loss and accuracy reductions (about a fifth of the step
            time of a small network on a CPU) and divergence is detected from the params alone;
            without ``penalty``, ``weight_norm`` and ``zero_fraction`` no reduction over the
            params runs. The monitored metric is always computed.
        layout: how the loop carries params, one of ``jaxreg.layout.LAYOUTS``.
        augment: the augmentations to compile (names among ``jaxreg.hparams.AUGMENTATIONS``);
            their strengths are the hparams of those names. Each training batch is augmented
            inside the step with a fresh key per step and example, drawn from the member's key
            alone (every config of a seed sees the same draws: common random numbers);
            evaluation never augments. Empty (the default): no augmentation is compiled.
        image_shape: ``(H, W)`` or ``(H, W, C)`` of the images to augment; defaults to the
            model's input shape when it has three dimensions (a CNN's).
        blur_size: the Gaussian blur's kernel size in pixels (static; its sigma is ``hparams.blur``).
        layerwise: compile transfer learning's per-layer update scale
            (``hparams.trainable_layers`` and ``hparams.layer_lr_decay``): applied to the final
            update, after the whole optimizer chain, so weight decay does not move a frozen
            layer either. False (the default) leaves it out of the program.
        histograms: at each evaluation, per-layer histograms of the weights, the gradients (of
            the data loss on the first ``HISTOGRAM_EXAMPLES`` training examples, evaluation
            mode) and, for models with ``taps``, the hidden activations on those examples,
            with this many bins between each one's min and max (fixed bins: they vmap). In
            ``Result.curves`` as ``hist/KIND/LAYER`` (evaluations, bins) and
            ``hist/KIND/LAYER/stats`` (min, max, sum, sum of squares). 0 (the default): none.
        measures: generalization measures (:mod:`jaxreg.measures`) computed once, at the
            returned params, among ``MEASURES``: ``norm_product``, ``path_norm``, ``margin`` (the
            10th percentile of the output margin on the training split), ``sharpness`` and
            ``mag_sharpness`` (the mean rise of the training loss over ``MEASURE_SAMPLES``
            Gaussian perturbations of scale ``measure_sigma``, plain or magnitude-aware) and
            ``hessian`` (the training loss's top Hessian eigenvalue, ``HESSIAN_ITERATIONS``
            power iterations: costly). The training loss here is the data loss in evaluation
            mode on the whole training split. In ``Result.final`` under their names; empty (the
            default): the program is the same as without them.
        measure_sigma: the perturbations' scale of ``sharpness`` and ``mag_sharpness``.
        penalties: the penalty terms to compile, among ``("l2", "l1", "weight_decay")`` (all,
            by default). A sweep compiles only those some member uses: the others cost no
            kernel in the step. Training refuses a member whose left-out penalty is not 0
            (checked on the host by ``train_batch``, and by ``make_train`` when its hparams
            are concrete).
    """

    model: Model
    loss: str = "cross_entropy"
    optimizer: str = "sgd"
    epochs: int = 10
    batch_size: int | None = 32
    shuffle: bool = True
    eval_every: int = 1
    eval_test: bool = False
    monitor: str = "val_loss"
    mode: str = "auto"
    start_epoch: int = 0
    l1_mode: str = "subgradient"
    dropout: bool = True
    dropconnect: bool = False
    penalize_bias: bool = False
    penalty_mask: Hashable | None = None
    metrics: tuple[str, ...] | None = None
    extra_metrics: tuple[tuple[str, Callable], ...] = ()
    layout: str = "tree"
    augment: tuple[str, ...] = ()
    image_shape: tuple[int, ...] | None = None
    blur_size: int = 5
    layerwise: bool = False
    histograms: int = 0
    penalties: tuple[str, ...] = PENALTIES
    measures: tuple[str, ...] = ()
    measure_sigma: float = 0.01

    def __post_init__(self):
        if not isinstance(self.model, Model):
            raise InputError(f"model: expected a jaxreg.Model (see jaxreg.adapters.as_model for Flax, "
                             f"Equinox and function pairs), got {type(self.model).__name__}")
        losses.get_loss(self.loss)
        self._check_extra_metrics()
        for name, allowed in (("optimizer", OPTIMIZERS), ("l1_mode", L1_MODES), ("layout", LAYOUTS)):
            check_choice(name, getattr(self, name), allowed)
        check_monitor(self.monitor, self.mode, self.own_names)
        check_schedule(self.epochs, self.eval_every, self.batch_size)
        if not is_int(self.start_epoch) or self.start_epoch < 0:
            raise InputError(f"start_epoch: expected an integer >= 0, got {self.start_epoch!r}")
        if self.metrics is not None:
            allowed = METRICS + REGRESSION_METRICS + own_metric_names(self.own_names)
            unknown = ([self.metrics] if isinstance(self.metrics, str)
                       else [name for name in self.metrics if name not in allowed])
            if unknown:
                raise InputError(f"metrics: expected names among {', '.join(allowed)}, got {unknown[0]!r}")
            object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.penalty_mask is not None and not callable(self.penalty_mask):
            object.__setattr__(self, "penalty_mask", FrozenMask(self.penalty_mask))
        self._check_augment()
        named = (self.penalties,) if isinstance(self.penalties, str) else tuple(self.penalties)
        unknown = [name for name in named if name not in PENALTIES]
        if unknown:
            raise InputError(f"penalties: expected names among {', '.join(PENALTIES)}, got {unknown[0]!r}")
        object.__setattr__(self, "penalties", tuple(name for name in PENALTIES if name in named))
        if not is_int(self.histograms) or not 0 <= self.histograms <= 1000:
            raise InputError(f"histograms: expected a number of bins in [0, 1000] (0: none), got {self.histograms!r}")
        self._check_measures()
        if self.penalty_mask is not None and self.penalize_bias:
            raise InputError("penalize_bias: expected False when penalty_mask is given (the mask says "
                             "which params to penalize), got True")

    def _check_extra_metrics(self):
        given = self.extra_metrics
        pairs = tuple(given.items()) if isinstance(given, Mapping) else given
        if not isinstance(pairs, (tuple, list)) or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
            raise InputError(f"extra_metrics: expected {{name: function}} or (name, function) pairs, got {given!r}")
        for name, fn in pairs:
            check_metric_name("extra_metrics", name)
            if not callable(fn):
                raise InputError(f"extra_metrics.{name}: expected a function (outputs, labels) -> scalar, "
                                 f"got {fn!r}")
        if len({name for name, _ in pairs}) < len(pairs):
            raise InputError(f"extra_metrics: expected distinct names, got {[name for name, _ in pairs]}")
        object.__setattr__(self, "extra_metrics", tuple(pairs))

    def _check_measures(self):
        named = (self.measures,) if isinstance(self.measures, str) else tuple(self.measures)
        unknown = [name for name in named if name not in MEASURES]
        if unknown:
            raise InputError(f"measures: expected names among {', '.join(MEASURES)}, got {unknown[0]!r}")
        if "path_norm" in named and self.model.batch_norm:
            raise InputError("measures: expected 'path_norm' only for a model without batch norm (its statistics "
                             "make the paths depend on the data), got a model with batch norm")
        check_measure_sigma(self.measure_sigma)
        object.__setattr__(self, "measures", tuple(name for name in MEASURES if name in named))

    def _check_augment(self):
        augment = (self.augment,) if isinstance(self.augment, str) else tuple(self.augment)
        unknown = [name for name in augment if name not in AUGMENTATIONS]
        if unknown:
            raise InputError(f"augment: expected names among {', '.join(AUGMENTATIONS)}, got {unknown[0]!r}")
        object.__setattr__(self, "augment", tuple(name for name in AUGMENTATIONS if name in augment))
        check_positive_int("blur_size", self.blur_size)
        shape = self.image_shape
        if shape is None and len(self.model.input_shape) == 3:
            shape = self.model.input_shape
        if shape is not None:
            ok = (isinstance(shape, (tuple, list)) and len(shape) in (2, 3)
                  and all(is_int(n) and n > 0 for n in shape))
            if not ok:
                raise InputError(f"image_shape: expected (height, width) or (height, width, channels), got {shape!r}")
            shape = tuple(int(n) for n in shape) + (1,) * (len(shape) == 2)
            if math.prod(shape) != math.prod(self.model.input_shape):
                raise InputError(f"image_shape: expected {math.prod(self.model.input_shape)} values per image "
                                 f"(the model's input), got {shape}")
            object.__setattr__(self, "image_shape", shape)
        if self.augment and shape is None:
            raise InputError(f"image_shape: expected the images' (height, width[, channels]) to augment "
                             f"{self.augment[0]!r} for a model whose input is {tuple(self.model.input_shape)}, got None")
        if "saturation" in self.augment and shape[2] != 3:
            raise InputError(f"augment: expected 'saturation' only for colour images (3 channels), got "
                             f"images of shape {shape}")

    @property
    def minimize(self) -> bool:
        return self.mode == "min" or (self.mode == "auto" and self.monitor.endswith("loss"))

    @property
    def own_names(self) -> tuple[str, ...]:
        """The names of the own metrics (``extra_metrics``), in their order."""
        return tuple(name for name, _ in self.extra_metrics)

    @property
    def computed(self) -> frozenset[str]:
        """The metrics the program computes: ``metrics`` (default all) and the monitored one."""
        every = METRICS + REGRESSION_METRICS + own_metric_names(self.own_names)
        return frozenset(every if self.metrics is None else self.metrics) | {self.monitor}

    @property
    def n_evals(self) -> int:
        """How many evaluations training makes (one per ``eval_every`` epochs)."""
        return self.epochs // self.eval_every

    @property
    def eval_epochs(self) -> np.ndarray:
        """The epochs (counted from 1) after which each evaluation happens."""
        return np.arange(self.eval_every, self.epochs + 1, self.eval_every)

    def mask(self, params: Params) -> Params:
        """The penalty mask for ``params``: ``penalty_mask``, all params, or the weights."""
        if self.penalty_mask is not None:
            return self.penalty_mask(params)
        return (penalties.all_params_mask if self.penalize_bias else penalties.weights_mask)(params)


def check_penalties(config: TrainConfig, hparams: HParams) -> None:
    """Refuses concrete hparams whose penalty ``config.penalties`` leaves out (it would not train);
    traced ones are checked by ``train_batch`` on the host before it traces."""
    for name in PENALTIES:
        value = getattr(hparams, name)
        if name in config.penalties or isinstance(value, jax.core.Tracer):
            continue
        values = np.asarray(value)
        if np.any(values != 0):
            raise InputError(f"hparams.{name}: expected 0 when TrainConfig.penalties leaves {name!r} out "
                             f"(penalties = {list(config.penalties)}), got {values[values != 0].ravel()[0].item()}")


def check_data(config: TrainConfig, data: Data) -> None:
    """Raises :class:`InputError` if the shapes of ``data`` cannot train under ``config``.

    Shapes only, so it also runs while tracing; :func:`check_values` checks the values.
    """
    model = config.model
    for name, split in zip(Data._fields, data):
        rows, labels = np.shape(split.x)[0] if np.ndim(split.x) else 0, np.shape(split.y)[0] if np.ndim(split.y) else 0
        if rows != labels:
            raise InputError(f"data.{name}.y: expected one label per example ({rows} examples in "
                             f"data.{name}.x), got {labels}")
        example = tuple(np.shape(split.x)[1:])
        if rows and math.prod(example) != math.prod(model.input_shape):
            raise InputError(f"data.{name}.x: expected examples of shape {tuple(model.input_shape)} (or "
                             f"{math.prod(model.input_shape)} values) for the model, got {example}")
    n_train = len(data.train.y)
    if n_train == 0:
        raise InputError("data.train: expected at least one example, got 0")
    if config.batch_size is not None and config.batch_size > n_train:
        raise InputError(f"batch_size: expected an integer in [1, {n_train}] (the training "
                         f"set size) or None for full batch, got {config.batch_size}")
    if config.monitor.startswith("val") and len(data.val.y) == 0:
        raise InputError(f"monitor: expected 'train_loss' or 'train_accuracy' when the validation "
                         f"split is empty, got {config.monitor!r}")


def check_values(config: TrainConfig, data: Data) -> None:
    """Raises :class:`InputError` for values that would train silently wrong, before any compute.

    Features must be finite. Labels must fit the loss and the model's outputs: class ids in
    ``[0, outputs)`` for ``cross_entropy`` (and for a squared error on several outputs, which
    one-hot encodes them), 0 or 1 (or a probability) for ``bce``; float targets must be finite.
    Without these checks a NaN feature or a label of -1 shows up as a "diverging"
    hyperparameter or a plausible but wrong loss.
    """
    check_data(config, data)
    if config.augment:
        x = np.asarray(data.train.x)
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(f"data.train.x: expected image values in [0, 1] to augment "
                             f"({', '.join(config.augment)}), got values in [{x.min():g}, {x.max():g}]")
    outputs = config.model.output_size
    for name, split in zip(Data._fields, data):
        x, y = np.asarray(split.x), np.asarray(split.y)
        if x.size and not np.all(np.isfinite(x)):
            row, column = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0]
            raise InputError(f"data.{name}.x: expected finite features, got {x.reshape(len(x), -1)[row, column]} "
                             f"in row {row}")
        if not y.size:
            continue
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise InputError(f"data.{name}.y: expected finite targets, got {y[~np.isfinite(y)][0]}")
            if config.loss == "cross_entropy":
                raise InputError(f"data.{name}.y: expected integer class labels for loss 'cross_entropy' "
                                 f"(one integer >= 0 per example; data files: data.targets = \"classes\" says "
                                 f"which is not), got float targets")
            if config.loss == "bce" and (y.min() < 0 or y.max() > 1):
                bad = y[(y < 0) | (y > 1)][0]
                raise InputError(f"data.{name}.y: expected targets in [0, 1] for loss 'bce', got {bad}")
            continue
        high = 2 if config.loss == "bce" else outputs
        if config.loss in ("cross_entropy", "bce") or (y.ndim == 1 and outputs > 1):
            bad = y[(y < 0) | (y >= high)]
            if bad.size:
                raise InputError(f"data.{name}.y: expected class labels in [0, {high}) for loss "
                                 f"{losses.loss_name(config.loss)!r} and {outputs} output{'s' * (outputs > 1)}, got {bad[0]}")


class Result(NamedTuple):
    """What ``train`` returns for one member (every field gains a leading axis under vmap).

    Attributes:
        params: the best evaluation's params when ``hparams.restore_best`` is 1 (and a best
            exists), else the last params (for a diverged member: its last finite params).
        model_state: the model state that goes with ``params``.
        final: metrics of the returned params, a dict over ``METRICS`` (and ``REGRESSION_METRICS``
            for a squared-error loss on float targets; NaN where not evaluated).
        curves: a dict over the same names of arrays with one entry per evaluation; NaN after the
            member stopped or diverged.
        best_epoch: epoch of the best evaluation (0: none).
        stopped_epoch: epoch at which early stopping fired (0: never).
        diverged: whether the loss or params turned non-finite; the member then keeps its params
            from the start of that epoch, the last known finite.
        diverged_epoch: the epoch during which that happened (0: never).
    """

    params: Params
    model_state: Any
    final: dict
    curves: dict
    best_epoch: Array
    stopped_epoch: Array
    diverged: Array
    diverged_epoch: Array


class _Carry(NamedTuple):
    """The loop state between evaluations."""

    train: TrainState
    frozen: Array          # stopped or diverged: params no longer change
    diverged: Array
    diverged_epoch: Array
    stopping: early_stopping.EarlyStoppingState
    best: tuple            # (params, model_state) at the best evaluation
    best_metrics: dict
    last_metrics: dict


def _batches(x, y, n_full: int, batch: int):
    """The full mini-batches stacked for ``lax.scan``, and the last, smaller one."""
    full = (x[:n_full * batch].reshape(n_full, batch, *x.shape[1:]),
            y[:n_full * batch].reshape(n_full, batch))
    return full, (x[n_full * batch:], y[n_full * batch:])


HISTOGRAM_EXAMPLES = 256  # the training examples histograms of gradients and activations use
MEASURE_SAMPLES = 8  # train.measures: the random perturbations sharpness averages over
HESSIAN_ITERATIONS = 20  # train.measures: power iterations of the top Hessian eigenvalue
MARGIN_PERCENTILE = 10.0  # train.measures: the margin's percentile on the training split (Jiang et al. 2020)


def histogram(values, bins: int) -> dict:
    """``counts`` of ``values`` in ``bins`` equal bins between their min and max, and ``stats``
    (min, max, sum, sum of squares): fixed shapes, so it runs under jit and vmap."""
    v = values.ravel()
    low, high = v.min(), v.max()
    width = jnp.where(high > low, high - low, 1.0)
    index = jnp.clip(jnp.floor((v - low) / width * bins).astype(jnp.int32), 0, bins - 1)
    counts = jnp.zeros((bins,), v.dtype).at[index].add(1)
    return {"counts": counts, "stats": jnp.stack([low, high, v.sum(), (v * v).sum()])}


def _layer_groups(model, params) -> dict:
    """Each layer's leaves as one vector (one group ``params`` for params that are no dict)."""
    if isinstance(params, dict):
        names = model.layer_names(params)
        return {n: jnp.concatenate([leaf.ravel() for leaf in jax.tree_util.tree_leaves(params[n])]) for n in names
                if jax.tree_util.tree_leaves(params[n])}
    return {"params": jnp.concatenate([leaf.ravel() for leaf in jax.tree_util.tree_leaves(params)])}


def make_train(config: TrainConfig) -> Callable[..., Result]:
    """Builds the pure training function for ``config``.

    Args:
        config: the static :class:`TrainConfig`.

    Returns:
        ``train(key, hparams, data, init_params=None) -> Result``. ``key`` is the member's
        PRNG key (see :func:`jaxreg.member_key`): init, data order and dropout keys are split
        from it by name, so members that share a key share their initial weights. ``hparams``
        is an :class:`HParams` of arrays. ``data`` is a :class:`Data` (an argument, so it
        never becomes a compile-time constant). ``init_params`` (or a
        :class:`jaxreg.transfer.Pretrained` of params and model state) replaces the params of
        ``model.init`` (replaying a given init, or starting from pretrained weights).
    """
    model, loss_fn = config.model, losses.get_loss(config.loss)
    minimize = config.minimize
    proximal = config.l1_mode == "proximal" and "l1" in config.penalties
    epoch_metrics = bool({"epoch_loss", "epoch_accuracy"} & config.computed)
    weight_metrics = bool({"penalty", "weight_norm", "zero_fraction"} & config.computed)

    def program(key: Array, hparams: HParams, data: Data, init_params: Params):
        """The start carry, the evaluation block and the final step, for one member."""
        check_data(config, data)
        data = jax.tree_util.tree_map(jnp.asarray, data)  # NumPy arrays, when called without jit
        n_train = len(data.train.y)
        batch = n_train if config.batch_size is None else config.batch_size
        n_full, remainder = divmod(n_train, batch)
        init_key, order_key, dropout_key = jax.random.split(key, 3)
        augment_key = jax.random.fold_in(key, 3)  # used only when augmenting
        params, model_state = model.init(init_key)
        given_params, given_state = transfer.split_init(init_params)
        params = transfer.merge_params(params, given_params)
        model_state = transfer.merge_params(model_state, given_state)
        seam = make_layout(config.layout, params)
        carried = seam.pack(params)
        dtype = jax.tree_util.tree_leaves(carried)[0].dtype
        mask_tree = config.mask(params)
        mask = loop_mask(seam, config.layout, params, mask_tree, dtype)
        # The weight metrics reduce one vector in either layout, so they round alike.
        flat_mask = ravel_pytree(dense_mask(params, mask_tree, dtype))[0]
        hp = as_dtype(hparams, dtype)
        check_penalties(config, hparams)
        scale, bn_frozen = None, jnp.zeros((), dtype)
        if config.layerwise:
            names = model.layer_names(params)
            scale = seam.pack(transfer.update_scale(params, names, hp.trainable_layers, hp.layer_lr_decay))
            bn_frozen = (transfer.layer_scale(len(names), hp.trainable_layers, hp.layer_lr_decay) == 0).astype(dtype)
        norm = dict(bn_momentum=hp.bn_momentum, bn_epsilon=hp.bn_epsilon, bn_frozen=bn_frozen)
        loss_of = objective(model, loss_fn, seam.unpack,
                            dropout=hp.dropout if config.dropout else 0.0,
                            dropconnect=hp.dropconnect if config.dropconnect else 0.0, norm=norm)
        eval_options = {"bn_epsilon": hp.bn_epsilon} if model.batch_norm else {}
        project = (lambda w, lr: penalties.prox_l1(w, lr * hp.l1, mask)) if proximal else None
        if proximal and scale is not None:  # a layer's threshold scales with its learning rate
            project = (lambda w, lr: jax.tree_util.tree_map(
                lambda p, m, s: jnp.where(m > 0, penalties.soft_threshold(p, lr * hp.l1 * s), p), w, mask, scale))
        # Only the splits whose metrics are asked for go through the evaluation's forward pass.
        regression = losses.is_regression(config.loss, data.train.y.dtype)  # static: the targets' dtype
        names = metric_names(regression, config.own_names)
        asked = lambda split: any(n.startswith(f"{split}_") for n in config.computed & set(names))
        labelled = [("train", data.train)] * asked("train") + [("val", data.val)] * (asked("val") and len(data.val.y) > 0)
        labelled += [("test", data.test)] * (config.eval_test and asked("test") and len(data.test.y) > 0)
        eval_x = jnp.concatenate([split.x.astype(dtype) for _, split in labelled]) if labelled else None
        eval_labels = [(name, split.y) for name, split in labelled]
        nan = jnp.full((), jnp.nan, dtype)
        # A fixed order is sliced once, outside the loops: XLA would repeat it every epoch.
        fixed_order = _batches(data.train.x.astype(dtype), data.train.y, n_full, batch)

        def epoch_fn(carry: _Carry, epoch):
            lr = learning_rate(hp, epoch)
            tx = optimizer(config.optimizer, hp, lr, mask, l1_mode=config.l1_mode, penalties=config.penalties)
            step_project = None if project is None else (lambda w: project(w, lr))
            (xs, ys), (x_last, y_last) = fixed_order
            if config.shuffle:
                order = jax.random.permutation(jax.random.fold_in(order_key, epoch), n_train)
                (xs, ys), (x_last, y_last) = _batches(data.train.x.astype(dtype)[order], data.train.y[order],
                                                      n_full, batch)

            def step(inner, x, y):
                state, loss_sum, acc_sum = inner
                step_key = jax.random.fold_in(dropout_key, state.step)
                if config.augment:
                    images = x.reshape((x.shape[0], *config.image_shape))
                    x = augment(jax.random.fold_in(augment_key, state.step), images, hp, enabled=config.augment,
                                blur_size=config.blur_size).reshape(x.shape)
                state, (loss, acc) = train_step(state, x, y, step_key, objective=loss_of, optimizer=tx,
                                                project=step_project, update_scale=scale)
                if epoch_metrics:
                    loss_sum, acc_sum = loss_sum + loss * x.shape[0], acc_sum + acc * x.shape[0]
                return state, loss_sum, acc_sum

            zero = jnp.zeros((), dtype)
            inner, _ = jax.lax.scan(lambda inner, b: (step(inner, *b), None), (carry.train, zero, zero), (xs, ys))
            if remainder:
                inner = step(inner, x_last, y_last)
            state, loss_sum, acc_sum = inner
            state, frozen, newly_diverged = divergence_guard(carry.train, state, carry.frozen,
                                                             jnp.isfinite(loss_sum))
            carry = carry._replace(train=state, frozen=frozen, diverged=carry.diverged | newly_diverged,
                                   diverged_epoch=jnp.where(newly_diverged, epoch + 1, carry.diverged_epoch))
            if not epoch_metrics:
                return carry, (nan, nan)
            return carry, (loss_sum / n_train, acc_sum / n_train)

        def metrics_of(state: TrainState, epoch_loss, epoch_acc) -> dict:
            m = dict.fromkeys(names, nan)
            if labelled:
                m.update(evaluate(model, seam.unpack(state.params), state.model_state, eval_x, eval_labels, loss_fn,
                                  regression=regression, extra=config.extra_metrics, **eval_options))
            m["epoch_loss"], m["epoch_accuracy"] = epoch_loss, epoch_acc
            if weight_metrics:
                m.update(weight_metrics_of(ravel_pytree(state.params)[0], flat_mask, hp.l2, hp.l1))
            return {name: m[name].astype(dtype) if name in config.computed else nan for name in names}

        hist_n = min(n_train, HISTOGRAM_EXAMPLES)
        hist_x, hist_y = data.train.x[:hist_n].astype(dtype), data.train.y[:hist_n]

        def histograms_of(state: TrainState) -> dict:
            params = seam.unpack(state.params)
            groups = {"weights": _layer_groups(model, params)}

            def data_loss(p):
                return loss_fn(model.apply(p, state.model_state, hist_x, train=False, **eval_options)[0], hist_y)

            groups["gradients"] = _layer_groups(model, jax.grad(data_loss)(params))
            if model.taps:
                taps = {}
                model.apply(params, state.model_state, hist_x, train=False, taps=taps, **eval_options)
                groups["activations"] = taps
            out = {}
            for kind, layers in groups.items():
                for name, values in layers.items():
                    h = histogram(values.astype(dtype), config.histograms)
                    out[f"hist/{kind}/{name}"], out[f"hist/{kind}/{name}/stats"] = h["counts"], h["stats"]
            return out

        def block_fn(carry: _Carry, block):
            frozen_before = carry.frozen
            epochs = block * config.eval_every + jnp.arange(config.eval_every, dtype=jnp.int32)
            carry, (epoch_losses, epoch_accs) = jax.lax.scan(epoch_fn, carry, epochs)
            epoch = (block + 1) * config.eval_every
            metrics = metrics_of(carry.train, epoch_losses[-1], epoch_accs[-1])
            valid = ~frozen_before & ~carry.diverged
            stopping, improved = early_stopping.update(
                carry.stopping, metrics[config.monitor], epoch, patience=hp.patience, min_delta=hp.min_delta,
                minimize=minimize, start_epoch=config.start_epoch, epochs_since_last=config.eval_every,
                valid=valid)
            current = (carry.train.params, carry.train.model_state)
            carry = carry._replace(
                frozen=carry.frozen | early_stopping.stopped(stopping),
                stopping=stopping,
                best=tree_where(improved, current, carry.best),
                best_metrics=tree_where(improved, metrics, carry.best_metrics),
                last_metrics=tree_where(valid, metrics, carry.last_metrics))
            out = tree_where(valid, metrics, dict.fromkeys(names, nan))
            if config.histograms:
                hists = histograms_of(carry.train)
                out.update(tree_where(valid, hists, jax.tree_util.tree_map(lambda a: jnp.full_like(a, jnp.nan), hists)))
            return carry, out

        no_metrics = dict.fromkeys(names, nan)
        zero = jnp.zeros((), jnp.int32)
        start = TrainState(carried, model_state, optimizer(config.optimizer, hp, hp.learning_rate, mask,
                                                           l1_mode=config.l1_mode,
                                                           penalties=config.penalties).init(carried), zero)
        carry = _Carry(train=start, frozen=jnp.zeros((), bool), diverged=jnp.zeros((), bool),
                       diverged_epoch=zero, stopping=early_stopping.init(dtype),
                       best=(carried, model_state), best_metrics=no_metrics, last_metrics=no_metrics)

        if config.measures and regression and "margin" in config.measures:
            raise InputError("measures: expected 'margin' only for class labels, got float targets (a regression)")
        measure_key = jax.random.fold_in(key, 4)  # used only for train.measures

        def measures_of(params, model_state) -> dict:
            """``train.measures`` at ``params`` (the model's pytree): the training split in evaluation mode."""
            x, y = data.train.x.astype(dtype), data.train.y

            def train_loss(p):
                return loss_fn(model.apply(p, model_state, x, train=False, **eval_options)[0], y)

            kinds = {"norm_product": lambda: measures.norm_product(model, params),
                     "path_norm": lambda: measures.path_norm(model, params, model_state),
                     "margin": lambda: measures.output_margin(
                         model.apply(params, model_state, x, train=False, **eval_options)[0], y, MARGIN_PERCENTILE),
                     "sharpness": lambda: measures.sharpness(
                         train_loss, params, jax.random.fold_in(measure_key, 0), sigma=config.measure_sigma,
                         samples=MEASURE_SAMPLES),
                     "mag_sharpness": lambda: measures.sharpness(
                         train_loss, params, jax.random.fold_in(measure_key, 1), sigma=config.measure_sigma,
                         samples=MEASURE_SAMPLES, magnitude_aware=True),
                     "hessian": lambda: measures.top_hessian_eigenvalue(
                         train_loss, params, jax.random.fold_in(measure_key, 2), iterations=HESSIAN_ITERATIONS)}
            return {name: kinds[name]().astype(dtype) for name in config.measures}

        def finish(carry: _Carry, curves: dict, last=True) -> Result:
            restore = (hp.restore_best > 0) & (carry.stopping.best_epoch > 0)
            final_params, final_state = tree_where(restore, carry.best, (carry.train.params, carry.train.model_state))
            params = seam.unpack(final_params)
            final = tree_where(restore, carry.best_metrics, carry.last_metrics)
            if config.measures:  # once, at the returned params: a segment before the last skips them
                final = {**final, **(measures_of(params, final_state) if last is True else jax.lax.cond(
                    last, lambda: measures_of(params, final_state),
                    lambda: {name: jnp.full((), jnp.nan, dtype) for name in config.measures}))}
            return Result(params=params, model_state=final_state,
                          final=final, curves=curves,
                          best_epoch=carry.stopping.best_epoch, stopped_epoch=carry.stopping.stopped_epoch,
                          diverged=carry.diverged, diverged_epoch=carry.diverged_epoch)

        return carry, block_fn, finish

    def train(key: Array, hparams: HParams, data: Data, init_params: Params = None) -> Result:
        carry, block_fn, finish = program(key, hparams, data, init_params)
        carry, curves = jax.lax.scan(block_fn, carry, jnp.arange(config.n_evals, dtype=jnp.int32))
        return finish(carry, curves)

    def segment(key: Array, hparams: HParams, data: Data, init_params: Params, carry, blocks: Array):
        """Evaluation blocks ``blocks`` (consecutive, counted from 0) of the same training job.

        Returns ``(carry, result)``: the loop state after the last of ``blocks``, and the
        :class:`Result` as if training ended there, with the curves of these blocks only. When
        ``blocks`` starts at 0, the ``carry`` given is ignored (zeros of its shape will do) and
        training starts afresh. Running every block in consecutive segments gives bitwise what
        ``train`` gives; the carry between segments is what a checkpoint keeps.
        """
        start, block_fn, finish = program(key, hparams, data, init_params)
        carry = start if carry is None else tree_where(blocks[0] == 0, start, carry)
        carry, curves = jax.lax.scan(block_fn, carry, blocks)
        return carry, finish(carry, curves, last=blocks[-1] == config.n_evals - 1)

    def start(key: Array, hparams: HParams, data: Data, init_params: Params = None):
        """The loop state :func:`segment` starts from: what its ``carry`` looks like, traced
        without the training loop."""
        return program(key, hparams, data, init_params)[0]

    train.segment, train.start = segment, start
    return train
