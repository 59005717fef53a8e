"""Early stopping as a small array state and an ``update``, like optax's ``reduce_on_plateau``.

Works inside ``jit`` and ``vmap``: every decision is a ``jnp.where``, so each member of a
batch stops on its own. The semantics are Keras' ``EarlyStopping`` (checked against a table
in the tests), counted in epochs at evaluations:

* an evaluation improves when ``value < best - min_delta`` (after flipping the sign of a
  metric to maximize); an improvement resets the wait, anything else adds the epochs since
  the last evaluation to it;
* the member stops when, without improvement, the wait reaches ``patience``;
* evaluations before ``start_epoch`` neither count as best nor use up patience (epochs count
  from 1 here and from 0 in Keras: ``start_epoch = N + 1`` is Keras' ``start_from_epoch=N``);
* the engine returns the best evaluation's params when ``restore_best`` is on, also when
  stopping never fired (where Keras restores only on stopping).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class EarlyStoppingState(NamedTuple):
    """The state of one member's early stopping.

    Attributes:
        best_value: the best monitored value so far, sign-flipped so lower is better (inf
            before the first counted evaluation).
        best_epoch: the epoch of that evaluation (0: none yet).
        wait: epochs since the last improvement, counted at evaluations.
        stopped_epoch: the epoch at which stopping fired (0: still running).
    """

    best_value: Array
    best_epoch: Array
    wait: Array
    stopped_epoch: Array


def init(dtype=jnp.float32) -> EarlyStoppingState:
    """A state with no evaluation counted yet."""
    zero = jnp.zeros((), jnp.int32)
    return EarlyStoppingState(best_value=jnp.full((), jnp.inf, dtype), best_epoch=zero,
                              wait=jnp.zeros((), dtype), stopped_epoch=zero)


def update(state: EarlyStoppingState, value, epoch, *, patience, min_delta=0.0, minimize: bool = True,
           start_epoch: int = 0, epochs_since_last: int = 1, valid=True) -> tuple[EarlyStoppingState, Array]:
    """Counts one evaluation of the monitored metric.

    Args:
        state: the state before this evaluation.
        value: the monitored metric at this evaluation.
        epoch: the epoch (from 1) after which this evaluation happened.
        patience: epochs without improvement before stopping (``inf``: never).
        min_delta: the least change that counts as an improvement.
        minimize: True for losses, False for accuracies.
        start_epoch: evaluations before this epoch are not counted.
        epochs_since_last: epochs between evaluations (``eval_every``), added to the wait.
        valid: False for a member that has already stopped or diverged: nothing is counted.

    Returns:
        ``(state, improved)``; ``state.stopped_epoch`` is ``epoch`` if stopping fired now.
    """
    value = value if minimize else -value
    epoch = jnp.asarray(epoch, state.best_epoch.dtype)
    active = valid & (epoch >= start_epoch)
    improved = active & (value < state.best_value - min_delta)
    wait = jnp.where(improved, 0.0, jnp.where(active, state.wait + epochs_since_last, state.wait))
    stop_now = active & ~improved & (wait >= patience)
    return EarlyStoppingState(
        best_value=jnp.where(improved, value, state.best_value),
        best_epoch=jnp.where(improved, epoch, state.best_epoch),
        wait=wait,
        stopped_epoch=jnp.where(stop_now, epoch, state.stopped_epoch)), improved


def stopped(state: EarlyStoppingState) -> Array:
    """Whether stopping has fired."""
    return state.stopped_epoch > 0
