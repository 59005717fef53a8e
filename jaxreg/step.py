"""The pieces of a training loop, each a module-level function: step, evaluation, guard.

``train_step`` is one optimizer step on one mini-batch; ``evaluate`` the metrics of params on
labelled splits (a dict of arrays); ``divergence_guard`` the rule that freezes a member whose
loss or params stop being finite. :func:`jaxreg.make_train` composes them with
:mod:`jaxreg.early_stopping` into nested ``lax.scan`` loops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import optax

from jaxreg import losses, penalties
from jaxreg.layout import all_finite, tree_where

Array = jax.Array


class TrainState(NamedTuple):
    """What a training loop carries from step to step.

    Attributes:
        params: the trainable params, in the loop's layout (see :mod:`jaxreg.layout`).
        model_state: the model's non-trainable state (batch statistics; ``{}`` if none).
        opt_state: the optax state of the optimizer chain.
        step: steps taken; the dropout key of a step is ``fold_in(dropout_key, step)``.
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: Array


Objective = Callable[..., tuple[Array, tuple[Any, Array]]]


def objective(model, loss_fn: Callable, unpack: Callable = lambda params: params, *,
              dropout=0.0, dropconnect=0.0, norm: dict | None = None) -> Objective:
    """The data loss of a mini-batch in training mode, as :func:`train_step` differentiates it.

    Returns ``f(params, model_state, x, y, key) -> (loss, (model_state, logits))``; ``params``
    are in the loop's layout and ``unpack`` turns them into the model's pytree. Rates are
    passed to ``model.apply`` only for the models that take them (``num_dropout`` > 0);
    ``norm`` (``bn_momentum``, ``bn_epsilon``, ``bn_frozen``) only to models with batch norm.
    """
    rates = {}
    if model.num_dropout:
        rates["dropout"] = dropout
    if model.num_dropconnect:
        rates["dropconnect"] = dropconnect
    if model.batch_norm and norm:
        rates.update(norm)

    def f(params, model_state, x, y, key):
        logits, model_state = model.apply(unpack(params), model_state, x, key=key, train=True, **rates)
        return losses.checked_scalar("loss", loss_fn(logits, y)), (model_state, logits)

    return f


def train_step(state: TrainState, x: Array, y: Array, key: Array, *, objective: Objective,
               optimizer: optax.GradientTransformation,
               project: Callable[[Any], Any] | None = None,
               update_scale: Any = None) -> tuple[TrainState, tuple[Array, Array]]:
    """One optimizer step on the mini-batch ``(x, y)``.

    Args:
        state: the :class:`TrainState` before the step.
        x, y: the mini-batch.
        key: the step's key (dropout and DropConnect masks).
        objective: see :func:`objective`.
        optimizer: the optax chain (see :func:`jaxreg.optimizers.optimizer`).
        project: applied to the params after the update (proximal L1), or None.
        update_scale: multiplies the final update, leaf by leaf (transfer learning's frozen
            layers and layer-wise learning rates: see :mod:`jaxreg.transfer`), or None.

    Returns:
        ``(state, (loss, accuracy))``: the mini-batch's data loss and accuracy before the step.
    """
    (loss, (model_state, logits)), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params, state.model_state, x, y, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    if update_scale is not None:
        updates = jax.tree_util.tree_map(lambda u, s: u * s, updates, update_scale)
    params = optax.apply_updates(state.params, updates)
    if project is not None:
        params = project(params)
    return TrainState(params, model_state, opt_state, state.step + 1), (loss, losses.accuracy(logits, y))


def evaluate(model, params, model_state, x: Array, labels: Sequence[tuple[str, Array]],
             loss_fn: Callable, *, regression: bool = False, extra: Sequence[tuple[str, Callable]] = (),
             **apply_options) -> dict[str, Array]:
    """The loss and accuracy of ``params`` on labelled splits, in evaluation mode.

    Args:
        model: the model; ``params`` are its pytree (unpacked).
        x: the inputs of every split, concatenated in the order of ``labels`` (one forward
            pass serves them all).
        labels: ``(name, y)`` pairs; each adds ``NAME_loss`` and ``NAME_accuracy``.
        loss_fn: the data loss.
        regression: also ``NAME_rmse``, ``NAME_mae`` and ``NAME_r2``
            (:func:`jaxreg.losses.regression_metrics`).
        extra: own metrics, ``(METRIC, function(outputs, labels) -> scalar)`` pairs; each adds
            ``NAME_METRIC``.
        **apply_options: passed to ``model.apply`` (batch norm's ``bn_epsilon``).

    Returns:
        A dict of scalars.
    """
    logits, _ = model.apply(params, model_state, x, train=False, **apply_options)
    metrics, start = {}, 0
    for name, y in labels:
        n = len(y)
        metrics[f"{name}_loss"] = loss_fn(logits[start:start + n], y)
        metrics[f"{name}_accuracy"] = losses.accuracy(logits[start:start + n], y)
        if regression:
            for kind, value in losses.regression_metrics(logits[start:start + n], y).items():
                metrics[f"{name}_{kind}"] = value
        for kind, fn in extra:
            metrics[f"{name}_{kind}"] = losses.checked_scalar(f"extra_metrics.{kind}", fn(logits[start:start + n], y))
        start += n
    return metrics


def weight_metrics_of(params, mask, l2, l1) -> dict[str, Array]:
    """``penalty``, ``weight_norm`` and ``zero_fraction`` of ``params`` under ``mask``.

    The engine passes the params and the mask in the loop's layout, so with the flat layout
    each is one reduction over one vector.
    """
    return {"penalty": penalties.penalty(params, l2, l1, mask),
            "weight_norm": penalties.weight_norm(params, mask),
            "zero_fraction": penalties.zero_fraction(params, mask)}


def divergence_guard(before: TrainState, after: TrainState, frozen: Array,
                     loss_is_finite: Array = True) -> tuple[TrainState, Array, Array]:
    """Keeps a frozen or newly diverged member at its params from before.

    Checked once per epoch, not per step (per-step masks would double the kernels of the hot
    loop): a member whose loss or params turned non-finite during the epoch goes back to its
    params and model state at the start of the epoch, the last ones known finite, and is
    frozen from then on. A frozen member never trains again, so its optimizer state is not
    restored.

    Args:
        before: the state at the start of the epoch.
        after: the state at its end.
        frozen: whether the member had stopped or diverged before this epoch.
        loss_is_finite: whether the epoch's running loss stayed finite.

    Returns:
        ``(state, frozen, newly_diverged)``.
    """
    ok = loss_is_finite & all_finite(after.params)
    keep = frozen | ~ok
    state = after._replace(params=tree_where(keep, before.params, after.params),
                           model_state=tree_where(keep, before.model_state, after.model_state))
    return state, keep, ~frozen & ~ok
