"""The optimizer of a training step, built with optax from the public penalty transforms.

``optimizer(name, hparams, learning_rate, mask)`` is the whole update rule as one optax
chain; the engine applies exactly this chain, so applying it by hand reproduces a step:

    add_penalty_gradient(l2, l1)  ->  direction (sgd / momentum / ema / adam)
    ->  decoupled_weight_decay(weight_decay)  ->  scale(-learning_rate)

Proximal L1 (``l1_mode="proximal"``) is not a gradient: the engine applies
:func:`jaxreg.penalties.prox_l1` to the params after the update.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from jaxreg.errors import check_choice
from jaxreg.hparams import HParams
from jaxreg.penalties import Mask, add_penalty_gradient, decoupled_weight_decay

OPTIMIZERS = ("sgd", "momentum", "ema_momentum", "adam", "adamw")
L1_MODES = ("subgradient", "proximal")
PENALTIES = ("l2", "l1", "weight_decay")


def direction(name: str, hparams: HParams) -> optax.GradientTransformation:
    """The update direction, before decoupled weight decay and the learning rate.

    ``"momentum"`` is heavy-ball ``v = m * v + g`` (``optax.trace``); ``"ema_momentum"`` the
    notebook's ``v = beta * v + (1 - beta) * g`` (``optax.ema`` without debiasing); ``"adam"``
    and ``"adamw"`` are ``optax.scale_by_adam`` with ``b1 = hparams.momentum``.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return optax.identity()
    if name == "momentum":
        return optax.trace(decay=hparams.momentum)
    if name == "ema_momentum":
        return optax.ema(decay=hparams.momentum, debias=False)
    return optax.scale_by_adam(b1=hparams.momentum)


def learning_rate(hparams: HParams, epoch) -> jnp.ndarray:
    """The learning rate of ``epoch`` (from 0): ``learning_rate * (1 - lr_decay) ** epoch``."""
    return hparams.learning_rate * (1.0 - hparams.lr_decay) ** jnp.asarray(epoch).astype(
        jnp.asarray(hparams.learning_rate).dtype)


def optimizer(name: str, hparams: HParams, learning_rate, mask: Mask | None = None, *,
              l1_mode: str = "subgradient", penalties: tuple[str, ...] = PENALTIES) -> optax.GradientTransformation:
    """The update rule of one training step as an optax chain.

    Args:
        name: one of ``OPTIMIZERS``.
        hparams: the member's :class:`HParams` (arrays, possibly traced).
        learning_rate: this step's learning rate (see :func:`learning_rate`).
        mask: the params that L2, L1 and weight decay touch (see :mod:`jaxreg.penalties`).
        l1_mode: ``"subgradient"`` puts ``l1 * sign(w)`` into the gradient; ``"proximal"``
            leaves L1 out of the chain (apply :func:`jaxreg.penalties.prox_l1` after it).
        penalties: the terms among ``PENALTIES`` to compile; the others are left out of the
            chain, as if their hparams were 0 (no kernel runs for them). The engine passes
            the ones some member of a sweep uses (``TrainConfig.penalties``).

    Returns:
        An ``optax.GradientTransformation`` whose ``update(grads, state, params)`` needs params.
    """
    check_choice("l1_mode", l1_mode, L1_MODES)
    l2 = hparams.l2 if "l2" in penalties else 0.0
    l1 = hparams.l1 if "l1" in penalties and l1_mode == "subgradient" else 0.0
    chain = []
    if not (isinstance(l2, float) and isinstance(l1, float)):
        chain.append(add_penalty_gradient(l2, l1, mask))
    chain.append(direction(name, hparams))
    if "weight_decay" in penalties:
        chain.append(decoupled_weight_decay(hparams.weight_decay, mask))
    return optax.chain(*chain, optax.scale(-learning_rate))
