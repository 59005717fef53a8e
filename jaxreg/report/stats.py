"""How sure a "best" is: seed noise, a paired comparison, a more regularized choice, and what more
trials would buy. Pure NumPy functions of per-seed and per-config values, for the text table
(:mod:`jaxreg.report.summary`), ``jaxreg show``, ``jaxreg best`` and the HTML report.

- :func:`mean_se`: a config's mean over seeds and its standard error.
- :func:`paired_bootstrap`: the probability that one config beats another, from the seeds both ran.
- :func:`one_se_choice`: glmnet's ``lambda.1se`` rule, the most regularized config within one
  standard error of the best.
- :func:`expected_best`: Dodge et al. (2019), "Show your work": the expected best of ``n``
  configs drawn at random, for ``n = 1 .. n_max``.
- :func:`kendall_tau` and :func:`measure_taus`: how well each generalization measure ranks the
  configs by their generalization gap (Jiang et al. 2020), with a seed-bootstrap interval.

The rule for NaN (a diverged seed) is the table's: a config with a NaN seed has a NaN mean, and
so a NaN standard error and a NaN comparison; it ranks last (``summary.rank_key``). Only
:func:`expected_best`, whose values are configs rather than seeds, leaves NaN configs out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["REGULARIZATION", "expected_best", "kendall_tau", "mean_se", "measure_taus", "one_se_choice",
           "paired_bootstrap",
           "regularization_key"]


def mean_se(values) -> tuple[float, float, int]:
    """The mean of ``values`` (one per seed) and its standard error.

    ``se = s / sqrt(n)`` with ``s`` the sample standard deviation (``ddof=1``):
    ``s**2 = sum((x - mean)**2) / (n - 1)``. The table's ``+-`` is ``s`` itself (the spread of
    seeds); ``summary.csv``'s ``METRIC_sem`` column is this ``se``.

    Args:
        values: one number per seed; a NaN (a diverged seed) makes the mean and the SE NaN.

    Returns:
        ``(mean, se, n)``: ``se`` is NaN for ``n < 2`` (one seed says nothing of the noise),
        ``mean`` NaN for ``n == 0``.

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896258, 3)
    """
    values = np.asarray(values, dtype=float).ravel()
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(values.mean())
    # std / sqrt(n), in this order: summary.csv's METRIC_sem has always been computed so (bit for bit)
    se = float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return mean, se, n


def paired_bootstrap(best: Mapping, other: Mapping, *, maximize: bool, n_boot: int = 10000, seed: int = 0) -> float:
    """The probability that ``best`` beats ``other``, by a paired bootstrap over their shared seeds.

    With ``d_s = best[s] - other[s]`` on each seed ``s`` both ran (``other[s] - best[s]`` to
    minimize, so that ``d_s > 0`` means ``best`` did better), draw ``n_boot`` resamples of the
    ``k`` shared seeds with replacement (``numpy.random.default_rng(seed).integers(0, k,
    size=(n_boot, k))``, seeds in sorted order) and return
    ``P = (#{b: mean_b(d) > 0} + 0.5 * #{b: mean_b(d) == 0}) / n_boot``: ties count half.
    Pairing by seed removes what the seed does to both (the same initialization and batches).

    Args:
        best, other: ``{seed: value}`` of the search metric, one per config.
        maximize: whether a larger value is better.
        n_boot: resamples; ``seed``: the generator's seed (the answer is a pure function of these).

    Returns:
        ``P`` in [0, 1]; NaN with fewer than 2 shared seeds or a NaN value on one of them.
    """
    shared = sorted(set(best) & set(other))
    if len(shared) < 2:
        return math.nan
    diff = np.array([float(best[s]) - float(other[s]) for s in shared])
    if not maximize:
        diff = -diff
    if not np.all(np.isfinite(diff)):
        return math.nan
    draws = np.random.default_rng(seed).integers(0, len(shared), size=(n_boot, len(shared)))
    means = diff[draws].mean(axis=1)
    return float((np.sum(means > 0) + 0.5 * np.sum(means == 0)) / n_boot)


# Regularizers by how a larger value acts: +1 it regularizes more (a stronger penalty, more
# dropped units, stronger augmentation), -1 less (a larger patience trains longer; more
# trainable layers fit more). The order is the tie-break order of regularization_key.
REGULARIZATION = {"l2": 1, "l1": 1, "weight_decay": 1, "dropout": 1, "dropconnect": 1, "patience": -1,
                  "trainable_layers": -1, "flip": 1, "shift": 1, "rotate": 1, "zoom": 1, "shear": 1,
                  "blur": 1, "brightness": 1, "contrast": 1, "saturation": 1, "noise": 1}


def _strength(value) -> float:
    """A swept value as one number: a per-layer list by its sum, "inf" as infinity, anything else
    (missing, a category) as -inf, the weakest."""
    if isinstance(value, (list, tuple)):
        parts = [_strength(v) for v in value]
        return float(sum(parts)) if parts else -math.inf
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(number) else number


def regularization_key(names: Sequence[str]) -> Callable[[dict], tuple] | None:
    """The ordering "more regularized" over swept axes ``names``: a key of a row (a dict of swept
    values) that is larger the more regularized it is; None when no name is a regularizer.

    The key is the tuple ``(direction * strength(row[name]) for name in REGULARIZATION if name in
    names)``, compared lexicographically: the first regularizer of :data:`REGULARIZATION`'s order
    decides, the next breaks its ties. ``strength`` is the value, a per-layer list's sum.
    """
    axes = [(name, direction) for name, direction in REGULARIZATION.items() if name in names]
    if not axes:
        return None
    return lambda row: tuple(direction * _strength(row.get(name)) for name, direction in axes)


def one_se_choice(rows: Sequence[dict], *, maximize: bool, regularization: Callable[[dict], tuple] | None,
                  metric: str | None = None) -> dict:
    """glmnet's ``lambda.1se`` rule: of the configs whose mean is within one standard error of the
    best's (the best's SE), the most regularized.

    A config qualifies when ``mean >= best_mean - best_se`` (``<= best_mean + best_se`` to
    minimize) and it is of the best's case (other cases train other axes). Among those, the
    largest ``regularization(row)`` wins, the better-ranked on a tie.

    Args:
        rows: summary rows (:func:`jaxreg.report.summarize`), best first; ``rows[0]`` is the best.
        maximize: whether a larger metric is better.
        regularization: a key, larger for a more regularized row (:func:`regularization_key`);
            None (no regularization axis swept) returns the best itself.
        metric: the metric whose ``METRIC_mean`` and ``METRIC_sem`` the rows hold; default the one
            metric with a ``_sem`` column (the search metric: ``summarize`` writes no other).

    Returns:
        The chosen row: the best itself without a regularization axis, with one seed (no SE), or
        when nothing more regularized is within one SE.
    """
    best = rows[0]
    metric = metric or next(key[:-len("_sem")] for key in best if key.endswith("_sem"))
    mean, se = best[f"{metric}_mean"], best[f"{metric}_sem"]
    if regularization is None or best.get("seeds", 2) < 2 or not (math.isfinite(mean) and math.isfinite(se)):
        return best
    bound = mean - se if maximize else mean + se
    within = [row for row in rows if row["case"] == best["case"] and not row.get("pruned")
              and (row[f"{metric}_mean"] >= bound if maximize else row[f"{metric}_mean"] <= bound)]
    # max keeps the first of equal keys: rows come best first
    return max(within, key=regularization) if within else best


def expected_best(values, n_max: int, *, maximize: bool) -> np.ndarray:
    """Dodge et al. (2019), "Show your work": the expected best of ``n`` configs drawn i.i.d. with
    replacement from ``values`` (one per config), for ``n = 1 .. n_max``.

    With ``v_(1) <= ... <= v_(N)`` sorted, the best of ``n`` draws is at most ``v_(i)`` with
    probability ``(i / N)**n``, so ``E[max of n] = sum_i v_(i) * ((i / N)**n - ((i - 1) / N)**n)``;
    to minimize, the mirror: ``E[min of n] = -E[max of n](-values)``. It rises (falls) with
    ``n`` towards the best value: where it has flattened out by ``n = N``, more configs drawn
    from the same space would barely help.

    Args:
        values: the per-config means; NaN (a config that diverged) and infinities are left out,
            as the best-so-far curve skips diverged configs.
        n_max: the largest ``n``.
        maximize: whether a larger value is better.

    Returns:
        ``n_max`` expectations, for ``n = 1 .. n_max``; NaN where no value is finite.
    """
    values = np.asarray(values, dtype=float).ravel()
    values = np.sort(values[np.isfinite(values)] if maximize else -values[np.isfinite(values)])
    if not len(values):
        return np.full(n_max, math.nan)
    below = np.arange(len(values) + 1) / len(values)  # P(one draw <= v_(i)) = i / N
    n = np.arange(1, n_max + 1)[:, None]
    weights = np.diff(below[None, :] ** n, axis=1)  # P(the best of n draws is v_(i))
    expected = weights @ values
    return expected if maximize else -expected


def kendall_tau(x, y) -> float:
    """Kendall's rank correlation tau-b of ``x`` and ``y`` (ties counted as
    :func:`scipy.stats.kendalltau` counts them): ``(concordant - discordant) / sqrt((n0 - ties_x)
    (n0 - ties_y))`` over the ``n0 = n (n - 1) / 2`` pairs. NaN with fewer than 2 values or
    when either side is constant.

    >>> kendall_tau([1, 2, 3, 4], [10, 30, 20, 40])
    0.6666666666666666
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    n = len(x)
    if n < 2:
        return math.nan
    concordant = discordant = ties_x = ties_y = 0
    for start in range(0, n, 512):  # 512 rows of pairs at a time: 10,000 configs in bounded memory
        dx = np.sign(x[start:start + 512, None] - x[None, :])
        dy = np.sign(y[start:start + 512, None] - y[None, :])
        upper = np.arange(start, min(start + 512, n))[:, None] < np.arange(n)[None, :]  # each pair once
        product = (dx * dy)[upper]
        concordant += int((product > 0).sum())
        discordant += int((product < 0).sum())
        ties_x += int((dx[upper] == 0).sum())
        ties_y += int((dy[upper] == 0).sum())
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    return (concordant - discordant) / denominator if denominator > 0 else math.nan


def measure_taus(per_seed: Mapping[str, Mapping[str, Sequence[float]]], gap: Sequence[Sequence[float]], *,
                 n_boot: int = 200, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Kendall's tau between each measure's config means and the configs' mean generalization
    gap, with the 5th and 95th percentiles of tau over resamples of each config's seeds.

    Args:
        per_seed: ``{measure: [config's values, one per seed], ...}`` (configs in one order).
        gap: each config's gap per seed (``val_loss - train_loss``), in that order.
        n_boot: bootstrap resamples; each draws every config's seeds with replacement
            (``numpy.random.default_rng(seed)``), the same draws for every measure, so the
            measures' intervals compare.

    Returns:
        ``{measure: (tau, low, high)}``.
    """
    gap_rows = [np.asarray(g, float) for g in gap]
    rng = np.random.default_rng(seed)
    draws = [[rng.integers(0, len(g), len(g)) for g in gap_rows] for _ in range(n_boot)]
    out = {}
    for name, rows in per_seed.items():
        rows = [np.asarray(r, float) for r in rows]
        tau = kendall_tau([r.mean() for r in rows], [g.mean() for g in gap_rows])
        taus = [kendall_tau([r[d].mean() for r, d in zip(rows, draw)], [g[d].mean() for g, d in zip(gap_rows, draw)])
                for draw in draws]
        low, high = np.nanpercentile(taus, [5, 95]) if np.isfinite(taus).any() else (math.nan, math.nan)
        out[name] = (tau, float(low), float(high))
    return out
