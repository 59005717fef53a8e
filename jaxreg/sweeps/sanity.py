"""The slides' first sanity check: can the network fit a small subset with regularization off?

``sanity_check(spec)`` trains the spec's network (its first static setup, its first config's
learning rate and optimizer) on the first ``examples`` training examples with every regularizer
off (L2, L1, weight decay, dropout, DropConnect, augmentation, early stopping, freezing), for a
few seeds, as one compiled program, and reports whether every seed reaches 100% training
accuracy (for regression: a training loss under 1% of its first value). It also compares the
loss at initialization with what an uninformed network scores (``log(classes)`` for
cross-entropy): much higher means an init scale too large. A run that fails says what
:func:`jaxreg.diagnose` reads in its curves.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from jaxreg import losses
from jaxreg.batch import member_key, train_batch
from jaxreg.data import Dataset, Split
from jaxreg.diagnosis import diagnose
from jaxreg.errors import InputError
from jaxreg.hparams import AUGMENTATIONS, make_hparams, stack_hparams
from jaxreg.transfer import merge_params, split_init

__all__ = ["Sanity", "sanity_check"]

OFF = dict(l2=0.0, l1=0.0, weight_decay=0.0, dropout=0.0, dropconnect=0.0, patience=math.inf, restore_best=0.0,
           trainable_layers=math.inf, layer_lr_decay=1.0, **dict.fromkeys(AUGMENTATIONS, 0.0))
INIT_TOLERANCE = 1.5  # a loss at init above this many times log(classes) flags the init scale


@dataclasses.dataclass
class Sanity:
    """The outcome of :func:`sanity_check`.

    Attributes:
        passed: every seed fitted the subset.
        lines: what to print, one finding a line.
        train_accuracy: the best training accuracy of each seed (NaN for regression).
        init_loss: the loss at initialization of each seed; ``chance_loss``: log(classes) for
            cross-entropy, else None.
    """

    passed: bool
    lines: list
    train_accuracy: list
    init_loss: list
    chance_loss: float | None


def member_init(variant, seed: int):
    """``(params, state)`` a member trained with ``seed`` starts from: the model's init from the
    seed's init key (as the engine splits it), with the variant's fixed or pretrained layers."""
    params, state = variant.model.init(jax.random.split(member_key(seed), 3)[0])
    given_params, given_state = split_init(variant.init_params)
    return merge_params(params, given_params), merge_params(state, given_state)


def init_loss(variant, seed: int, split) -> float:
    """The data loss of ``seed``'s initial model on ``split`` (evaluation mode)."""
    params, state = member_init(variant, seed)
    x = np.asarray(split.x, dtype=jax.tree_util.tree_leaves(params)[0].dtype)
    logits = variant.model.apply(params, state, x)[0]
    return float(losses.get_loss(variant.config.loss)(logits, np.asarray(split.y)))


def _subset(dataset, n: int) -> Dataset:
    train = Split(np.asarray(dataset.train.x)[:n], np.asarray(dataset.train.y)[:n])
    return Dataset(train, dataset.val, Split(train.x[:0], train.y[:0]), dataset.info)


def sanity_check(spec, *, examples: int = 100, seeds: int = 3, epochs: int = 200) -> Sanity:
    """Fits the first ``examples`` training examples with regularization off (module docstring).

    Args:
        spec: a built :class:`jaxreg.sweeps.Spec`.
        examples: the subset's size (at most the training split's).
        seeds: how many seeds (0, 1, ...).
        epochs: training epochs on the subset.
    """
    for name, value, low in (("examples", examples, 1), ("seeds", seeds, 1), ("epochs", epochs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"--{name}: expected an integer >= {low}, got {value!r}")
    variant = spec.variants[0]
    n_train = len(variant.dataset.train.y)
    n = min(examples, n_train)
    data = _subset(variant.dataset, n)
    every = max(d for d in range(1, min(epochs, max(1, epochs // 20)) + 1) if epochs % d == 0)
    batch = variant.config.batch_size
    config = dataclasses.replace(variant.config, epochs=epochs, eval_every=every, eval_test=False,
                                 batch_size=None if batch is None else min(batch, n), monitor="train_loss",
                                 dropout=False, dropconnect=False, augment=(), layerwise=False, metrics=None)
    first = variant.space.first().hparams
    hparams = make_hparams(variant.model, **{**first, **OFF})
    result = train_batch(config, data)(np.arange(seeds), stack_hparams([hparams] * seeds), variant.init_params)

    init_losses = [init_loss(variant, seed, data.train) for seed in range(seeds)]
    classes = variant.dataset.info.get("num_classes")
    chance = math.log(classes) if config.loss == "cross_entropy" and classes else None

    regression = np.asarray(data.train.y).dtype.kind == "f"
    accuracy = [float(np.nanmax(result.curves["train_accuracy"][s])) for s in range(seeds)]
    loss_curves = result.curves["train_loss"]
    if regression:
        fitted = [bool(np.nanmin(loss_curves[s]) < 0.01 * init_losses[s]) for s in range(seeds)]
    else:
        fitted = [a == 1.0 for a in accuracy]
    passed = all(fitted)
    what = (f"{n} training examples, regularization off, {seeds} seed{'s' * (seeds > 1)}, {epochs} epochs, "
            f"{config.optimizer} at learning rate {first.get('learning_rate', hparams.learning_rate.item()):g}")
    lines = []
    if regression:
        best = ", ".join(f"{np.nanmin(loss_curves[s]):.3g}" for s in range(seeds))
        lines.append(f"sanity: {what}: lowest training loss {best} (fits below 1% of the loss at init: "
                     f"{'passes' if passed else 'fails'})")
    else:
        lines.append(f"sanity: {what}: best training accuracy "
                     + ", ".join(f"{100 * a:.1f}%" for a in accuracy) + f" ({'passes' if passed else 'fails'}: "
                     f"expected 100% on every seed)")
    mean_init = float(np.mean(init_losses))
    if chance is not None:
        verdict = ("as expected" if mean_init <= INIT_TOLERANCE * chance else
                   f"above {INIT_TOLERANCE} x log({classes}): the init scale may be too large")
        lines.append(f"loss at init {mean_init:.4g} (mean of {seeds} seeds); log({classes}) = {chance:.4g}: {verdict}")
    else:
        lines.append(f"loss at init {mean_init:.4g} (mean of {seeds} seeds)")
    if not passed:
        lines += _why_not_fitted(result, hparams, config, fitted, accuracy)
    return Sanity(passed, lines, accuracy, init_losses, chance)


def _why_not_fitted(result, hparams, config, fitted: list, accuracy: list) -> list[str]:
    """What jaxreg.diagnose reads in the curves of each seed that did not fit, and advice."""
    lines = []
    for s, fits in enumerate(fitted):
        if fits:
            continue
        curves = {k: result.curves[k][s] for k in ("train_loss", "val_loss", "train_accuracy")}
        rate, decay = float(hparams.learning_rate), float(hparams.lr_decay)
        findings = diagnose(curves, epochs=config.eval_epochs, diverged_epoch=int(result.diverged_epoch[s]),
                            learning_rate=lambda e: rate * (1 - decay) ** e, reference=1.0)  # 100 examples fit
        said = "; ".join(f.text for f in findings) or (
            f"best training accuracy {100 * accuracy[s]:.1f}% and no failure mode of jaxreg.diagnose in its "
            f"curves: a network too small for the data, or too few epochs")
        lines.append(f"seed {s}: {said}")
    lines.append("a network that cannot fit 100 examples will not fit the data: check the model's size, "
                 "the learning rate, the init and the labels before tuning regularization")
    return lines
