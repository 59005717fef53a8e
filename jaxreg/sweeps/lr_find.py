"""A learning-rate probe that does not change its mind between runs.

The slides: "find a learning rate that shows a good decrease in cost". fastai's ``lr_find`` and
Lightning's ``Tuner.lr_find`` run ONE exponential ramp (the learning rate grows every step) and
read the smoothed batch loss, and their suggestion moves from run to run and with the ramp's
length (fastai#3295, pytorch-lr-finder#68). ``lr_find(spec)`` instead trains K log-spaced
*constant* learning rates x seeds for a short horizon, every member from its seed's init on its
seed's batches (so learning rates differ by nothing else), in ONE compiled program with a
divergence mask per member, and reads the training loss at the horizon against the learning
rate, averaged over seeds. It suggests:

* ``largest_stable``: the largest learning rate that no seed diverged at and that ended below
  the loss at init;
* fastai's three rules on the seed-mean curve: ``minimum`` (the lowest loss's rate / 10),
  ``steep`` (the steepest descent) and ``valley`` (2/3 down the longest descending run);
* ``range``: from ``minimum`` to the lowest loss's rate, capped at ``largest_stable``: the rates
  worth a grid search.

:func:`ramp` is the classic single ramp, for comparison.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import losses
from jaxreg.batch import member_key, train_batch
from jaxreg.errors import InputError
from jaxreg.hparams import as_dtype, make_hparams, stack_hparams
from jaxreg.layout import layout as make_layout, loop_mask
from jaxreg.optimizers import optimizer
from jaxreg.sweeps.sanity import OFF, init_loss, member_init
from jaxreg.sweeps.space import geomspace
from jaxreg.train import as_data

__all__ = ["Probe", "fastai_rules", "lr_find", "plot_probe", "ramp"]


@dataclasses.dataclass
class Probe:
    """The outcome of :func:`lr_find` (or :func:`ramp`).

    Attributes:
        learning_rates: the rates tried, ascending.
        losses: ``(seeds, rates)`` training loss at the horizon (inf where a member diverged).
        init_loss: the loss at init (seed mean).
        suggestions: ``largest_stable``, ``minimum``, ``steep``, ``valley`` (floats or NaN) and
            ``range`` (low, high).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    init_loss: float
    suggestions: dict


def fastai_rules(learning_rates: np.ndarray, loss: np.ndarray) -> dict:
    """fastai's ``minimum``, ``steep`` and ``valley`` suggestions on a loss-vs-rate curve (the
    finite part; log-rate gradients)."""
    finite = np.isfinite(loss)
    lrs, loss = np.asarray(learning_rates)[finite], np.asarray(loss)[finite]
    if len(loss) < 3:
        return {"minimum": math.nan, "steep": math.nan, "valley": math.nan}
    minimum = float(lrs[int(np.argmin(loss))] / 10)
    steep = float(lrs[int(np.argmin(np.gradient(loss, np.log(lrs))))])
    n, longest, max_start, max_end = len(loss), [1] * len(loss), 0, 0
    for i in range(1, n):  # fastai's valley: the longest descending run, 2/3 of the way down
        for j in range(i):
            if loss[i] < loss[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[max_end] < longest[i]:
                max_end, max_start = i, i - longest[i]
    sections = (max_end - max_start) / 3
    valley = float(lrs[max_start + int(sections) + int(sections / 2)])
    return {"minimum": minimum, "steep": steep, "valley": valley}


def _suggest(learning_rates, losses_by_seed, init_loss) -> dict:
    mean = np.mean(np.where(np.isfinite(losses_by_seed), losses_by_seed, np.inf), axis=0)
    stable = np.all(np.isfinite(losses_by_seed), axis=0) & (mean < init_loss)
    largest = float(learning_rates[np.flatnonzero(stable)[-1]]) if stable.any() else math.nan
    rules = fastai_rules(learning_rates, np.where(np.isfinite(mean), mean, np.nan))
    best = float(learning_rates[int(np.argmin(mean))]) if np.isfinite(mean).any() else math.nan
    high = min(best, largest) if math.isfinite(largest) else best
    return {"largest_stable": largest, **rules, "range": (best / 10 if math.isfinite(best) else math.nan, high)}


def _setup(spec):
    variant = spec.variants[0]
    first = variant.space.first().hparams
    hparams = {k: v for k, v in first.items() if k not in ("learning_rate", "lr_decay")}
    off = {k: v for k, v in OFF.items() if k in ("patience", "restore_best")}  # regularizers stay as the spec says
    return variant, {**hparams, **off, "lr_decay": 0.0}


def lr_find(spec, *, low: float = 1e-5, high: float = 10.0, rates: int = 24, seeds=(0, 1, 2),
            epochs: int = 2) -> Probe:
    """Trains ``rates`` log-spaced constant learning rates in ``[low, high]`` x ``seeds`` for
    ``epochs`` epochs as one compiled program (module docstring)."""
    if not (0 < low < high < math.inf):
        raise InputError(f"--low, --high: expected 0 < low < high, got {low!r}, {high!r}")
    for name, value in (("rates", rates), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 3 - 2 * (name == "epochs"):
            raise InputError(f"--{name}: expected an integer >= {3 - 2 * (name == 'epochs')}, got {value!r}")
    variant, base = _setup(spec)
    seeds = np.asarray(list(seeds), dtype=np.int64)
    learning_rates = np.array(geomspace(low, high, rates))
    config = dataclasses.replace(variant.config, epochs=epochs, eval_every=epochs, eval_test=False,
                                 monitor="train_loss", metrics=("train_loss",))
    members = [make_hparams(variant.model, **{**base, "learning_rate": lr}) for _ in seeds for lr in learning_rates]
    result = train_batch(config, variant.dataset)(np.repeat(seeds, rates), stack_hparams(members), variant.init_params)
    final = np.asarray(result.final["train_loss"], float).reshape(len(seeds), rates)
    final = np.where(np.asarray(result.diverged).reshape(len(seeds), rates), np.inf, final)
    train = as_data(variant.dataset).train
    init = float(np.mean([init_loss(variant, int(s), train) for s in seeds]))
    return Probe(learning_rates, final, init, _suggest(learning_rates, final, init))


def ramp(spec, *, low: float = 1e-5, high: float = 10.0, steps: int = 100, seed: int = 0,
         beta: float = 0.98) -> Probe:
    """The classic range test: ONE run whose learning rate grows exponentially from ``low`` to
    ``high`` over ``steps`` mini-batches; the loss is the debiased moving average of the batch
    losses (``beta``, fastai's smoothing), cut where it passes 4 x its minimum (fastai's stop)."""
    variant, base = _setup(spec)
    config, model = variant.config, variant.model
    data = as_data(variant.dataset)
    params, state = member_init(variant, seed)
    seam = make_layout(config.layout, params)
    carried = seam.pack(params)
    dtype = jax.tree_util.tree_leaves(carried)[0].dtype
    mask = loop_mask(seam, config.layout, params, config.mask(params), dtype)
    hp = as_dtype(make_hparams(model, **{**base, "learning_rate": low}), dtype)
    loss_fn = losses.get_loss(config.loss)
    x_all, y_all = jnp.asarray(data.train.x, dtype), jnp.asarray(data.train.y)
    n, batch = len(data.train.y), config.batch_size or len(data.train.y)
    learning_rates = np.array(geomspace(low, high, steps))
    keys = jax.random.split(jax.random.fold_in(member_key(seed), 7), steps)
    rates = {"dropout": hp.dropout} if model.num_dropout and config.dropout else {}

    def step(carry, inputs):
        w, model_state, opt_state = carry
        lr, key = inputs
        order = jax.random.choice(key, n, (batch,), replace=False)
        drop_key = jax.random.fold_in(key, 1)

        def objective(w):
            logits, new_state = model.apply(seam.unpack(w), model_state, x_all[order], key=drop_key, train=True,
                                            **rates)
            return loss_fn(logits, y_all[order]), new_state

        (loss, new_state), grads = jax.value_and_grad(objective, has_aux=True)(w)
        tx = optimizer(config.optimizer, hp, lr, mask, l1_mode=config.l1_mode, penalties=config.penalties)
        updates, opt_state = tx.update(grads, opt_state, w)
        return (optax.apply_updates(w, updates), new_state, opt_state), loss

    opt_state = optimizer(config.optimizer, hp, hp.learning_rate, mask, l1_mode=config.l1_mode,
                          penalties=config.penalties).init(carried)
    _, batch_losses = jax.jit(lambda c, xs: jax.lax.scan(step, c, xs))(
        (carried, state, opt_state), (jnp.asarray(learning_rates, dtype), keys))
    batch_losses = np.asarray(batch_losses, float)
    smooth, average = np.empty(steps), 0.0
    for i, value in enumerate(batch_losses):
        average = beta * average + (1 - beta) * value
        smooth[i] = average / (1 - beta ** (i + 1))
    finite = np.isfinite(smooth)
    lowest = np.minimum.accumulate(np.where(finite, smooth, np.inf))
    cut = np.flatnonzero(~finite | (smooth > 4 * lowest))
    if cut.size:
        smooth[cut[0]:] = np.inf
    init = init_loss(variant, seed, data.train)
    return Probe(learning_rates, smooth[None], init, _suggest(learning_rates, smooth[None], init))


def plot_probe(probe: Probe, ramped: Probe | None, path, title: str) -> None:
    """``path`` (PNG): the loss at the horizon against the learning rate (log axis), the seed
    mean and band, diverged rates marked, the suggestions as lines, and the ramp for comparison."""
    from matplotlib.figure import Figure

    from jaxreg.report.plots import save_figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    lrs, values = probe.learning_rates, probe.losses
    finite = np.where(np.isfinite(values), values, np.nan)
    mean = np.mean(np.where(np.isfinite(values), values, np.inf), axis=0)
    shown = np.isfinite(mean)
    ax.plot(lrs[shown], mean[shown], "o-", color="C0", label=f"probe: loss after the horizon, mean of {len(values)} seeds")
    if len(values) > 1:
        ax.fill_between(lrs, np.nanmin(np.where(np.isnan(finite), np.inf, finite), axis=0),
                        np.nanmax(np.where(np.isnan(finite), -np.inf, finite), axis=0),
                        where=np.all(np.isfinite(values), axis=0), color="C0", alpha=0.2, lw=0)
    diverged = ~np.all(np.isfinite(values), axis=0)
    if diverged.any():
        top = np.nanmax(mean[shown]) if shown.any() else probe.init_loss
        ax.plot(lrs[diverged], np.full(diverged.sum(), top), "x", color="red", label="a seed diverged")
    if ramped is not None:
        curve = ramped.losses[0]
        keep = np.isfinite(curve)
        ax.plot(ramped.learning_rates[keep], curve[keep], color="grey", lw=1,
                label="classic ramp: smoothed batch loss (one run)")
    ax.axhline(probe.init_loss, color="black", lw=0.8, ls=":", label=f"loss at init {probe.init_loss:.3g}")
    low, high = probe.suggestions["range"]
    if np.isfinite(low) and np.isfinite(high):
        ax.axvspan(low, high, color="C2", alpha=0.15, label=f"suggested range {low:.3g} - {high:.3g}")
    for rule, style in (("largest_stable", "--"), ("steep", ":"), ("valley", "-.")):
        value = probe.suggestions[rule]
        if np.isfinite(value):
            ax.axvline(value, color="C3", ls=style, lw=1, label=f"{rule.replace('_', ' ')} {value:.3g}")
    ax.set_xscale("log")
    ymax = max(probe.init_loss * 1.5, np.nanmin(mean[shown]) * 2) if shown.any() else None
    if ymax:
        ax.set_ylim(0, ymax)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title, fontsize="medium")
    save_figure(fig, Path(path))
