"""Experiment 8 (grid vs random vs coarse-to-fine search, log vs linear scale) on the committed
specs, with fewer epochs: the qualitative claims that do not hinge on one lucky draw.

- A log-uniform learning rate puts samples in every decade of [1e-4, 1]; a uniform one puts
  about 90% of them in the top decade (sampling only, nothing trained).
- The learning rate matters far more than L2 over the swept ranges (the grid, 5 epochs).
- Coarse-to-fine's later rounds sample inside the bracket of the configs not significantly
  worse than the best (5 epochs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxreg import report
from jaxreg.sweeps import load_spec, run_sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
SHORT = ["train.epochs=5", "output.plots=false"]


def _decades(spec_name: str, seed: int, samples: int) -> np.ndarray:
    spec = load_spec(SWEEPS / spec_name, [f"search.seed={seed}", f"search.samples={samples}"])
    rates = np.array([c.point["learning_rate"] for c in spec.configs(0)])
    assert rates.min() >= 1e-4 and rates.max() <= 1.0
    return np.bincount(np.minimum(np.floor(np.log10(rates) + 4).astype(int), 3), minlength=4) / len(rates)


@pytest.mark.parametrize("seed", range(5))
def test_log_scale_covers_every_decade_linear_scale_the_top_one(seed):
    log = _decades("search-random.toml", seed, 200)
    linear = _decades("search-random-linear-lr.toml", seed, 200)
    assert np.all((log > 0.15) & (log < 0.35)), log        # 1/4 each
    assert linear[3] > 0.85 and linear[:2].sum() < 0.03, linear  # 0.9 in [0.1, 1], 0.01 below 0.01
    committed = _decades("search-random.toml", seed, 16)
    assert (committed > 0).sum() >= 3  # even 16 draws reach at least 3 of the 4 decades


@pytest.mark.slow
def test_learning_rate_matters_far_more_than_l2(tmp_path):
    spec = load_spec(SWEEPS / "search-grid.toml", SHORT)
    rows = report.summarize(run_sweep(spec, tmp_path, progress=False), spec.search)
    rates, l2s = sorted({r["learning_rate"] for r in rows}), sorted({r["l2"] for r in rows})
    table = np.full((len(rates), len(l2s)), np.nan)
    for row in rows:
        table[rates.index(row["learning_rate"]), l2s.index(row["l2"])] = row["val_loss_mean"]
    assert np.isfinite(table).all()
    # Moving the learning rate over its range, at any fixed L2, changes the loss by far more than
    # moving L2 over its range at a typical fixed learning rate (lr = 1 is unstable: noisy).
    effect_of_rate = np.ptp(table, axis=0).min()
    effect_of_l2 = np.median(np.ptp(table, axis=1))
    assert effect_of_rate > 1.0 and effect_of_rate > 50 * effect_of_l2, table


@pytest.mark.slow
def test_coarse_to_fine_brackets_the_configs_not_worse_than_the_best(tmp_path):
    """Each later round samples inside the learning-rate bracket worked out here from the
    journal: the configs within 1 standard error of the best mean (seed noise: the median
    variance over configs), out to the nearest rejected config on each side."""
    from test_zoom import oracle

    spec = load_spec(SWEEPS / "search-coarse-to-fine.toml", SHORT)
    records = run_sweep(spec, tmp_path, progress=False)
    by_config = {}
    for r in records:
        by_config.setdefault(r["config_id"], (r["round"], r["point"]["learning_rate"], {}))[2][r["seed"]] = \
            r["metrics"]["val_loss"]
    rounds = {k: [(lr, [v[s] for s in sorted(v)]) for rnd, lr, v in by_config.values() if rnd == k] for k in range(3)}
    assert [len(v) for v in rounds.values()] == [5, 5, 5]
    spans = []
    for k in (1, 2):
        before = [item for j in range(k) for item in rounds[j]]
        kept = oracle([values for _, values in before])
        lrs = [lr for lr, _ in before]
        kept_lrs = [lr for lr, keep in zip(lrs, kept) if keep]
        assert kept_lrs and len(kept_lrs) < len(lrs)  # some configs are significantly worse
        low = max([lr for lr in lrs if lr < min(kept_lrs)], default=1e-4)
        high = min([lr for lr in lrs if lr > max(kept_lrs)], default=1.0)
        later = [lr for lr, _ in rounds[k]]
        assert low <= min(later) and max(later) <= high, (k, low, high, later)
        spans.append(np.log10(high / low))
    assert min(spans) < 0.75 * 4  # a zoom: narrower than the 4 decades searched


@pytest.mark.slow
def test_landscape_learning_rate_matters_far_more_than_l2():
    """sweeps/search-landscape.toml on 5 learning rates x its 3 L2 values, 1 seed, 5 epochs:
    the spread of the validation loss across learning rates dwarfs the spread across L2."""
    import tempfile

    spec = load_spec(SWEEPS / "search-landscape.toml",
                     ["train.epochs=5", "search.seeds=[100]", "hparams.learning_rate={ logspace = [1e-4, 1.0, 5] }"])
    with tempfile.TemporaryDirectory() as out:
        records = run_sweep(spec, out, progress=False)
    loss = {(r["point"]["learning_rate"], r["point"]["l2"]): r["metrics"]["val_loss"] for r in records}
    rates, l2s = sorted({k[0] for k in loss}), sorted({k[1] for k in loss})
    across_rates = np.mean([np.ptp([loss[lr, l2] for lr in rates]) for l2 in l2s])
    across_l2 = np.mean([np.ptp([loss[lr, l2] for l2 in l2s]) for lr in rates[:-1]])  # lr 1 may be unstable
    assert across_rates > 20 * across_l2
