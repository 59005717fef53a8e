"""The statistics of a "best" (jaxreg.report.stats) against oracles written here in plain NumPy,
and what `jaxreg show` and `jaxreg best` print of them on committed results folders."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from jaxreg import report
from jaxreg.report.stats import expected_best, mean_se, one_se_choice, paired_bootstrap, regularization_key
from jaxreg.report.summary import as_float

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "results" / "search-grid"  # 16 configs x 3 seeds, val_loss minimized
ONE_SEED = ROOT / "results" / "grokking-book"  # 1 seed per config
HALVING = ROOT / "results" / "search-repeats" / "halving" / "seed-0"  # configs pruned by successive halving


# --- mean_se ------------------------------------------------------------------------------------

def test_mean_se_on_known_numbers():
    mean, se, n = mean_se([1.0, 2.0, 3.0, 4.0])
    # sum of squares about 2.5: 2.25 + 0.25 + 0.25 + 2.25 = 5; s^2 = 5 / 3; se = s / 2
    assert (mean, n) == (2.5, 4)
    assert se == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-15)
    assert mean_se([7.0, 7.0]) == (7.0, 0.0, 2)


def test_mean_se_of_one_seed_has_no_se_and_a_diverged_seed_makes_both_nan():
    mean, se, n = mean_se([0.3])
    assert (mean, n) == (0.3, 1) and math.isnan(se)
    mean, se, n = mean_se([0.3, math.nan, 0.2])
    assert n == 3 and math.isnan(mean) and math.isnan(se)
    mean, se, n = mean_se([])
    assert n == 0 and math.isnan(mean) and math.isnan(se)


def test_summary_sem_is_mean_se_and_its_csv_bytes_are_the_committed_ones():
    """The one SE rule: summary.csv's METRIC_sem is mean_se's (0.0 for one seed, as always
    written), and the committed summary.csv reads back the same."""
    manifest, records = report.load_manifest(GRID), report.read_journal(GRID)
    rows = report.summarize(records, manifest["spec"]["search"], manifest.get("chance"))
    for row in rows:
        values = [r["metrics"]["val_loss"] for r in records if r["config_id"] == row["config_id"]]
        assert (row["val_loss_mean"], row["val_loss_sem"]) == mean_se(values)[:2]
        assert row["val_loss_sem"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(len(values)), rel=1e-12)
    committed = (GRID / report.SUMMARY).read_text().splitlines()
    by_id = {line.split(",")[1]: line for line in committed[1:]}
    column = committed[0].split(",").index("val_loss_sem")
    assert all(by_id[r["config_id"]].split(",")[column] == repr(r["val_loss_sem"]) for r in rows)


# --- paired_bootstrap ---------------------------------------------------------------------------

def loop_bootstrap(best: dict, other: dict, maximize: bool, n_boot: int, seed: int) -> float:
    """The paired bootstrap, one resample and one seed at a time."""
    shared = sorted(set(best) & set(other))
    draws = np.random.default_rng(seed).integers(0, len(shared), size=(n_boot, len(shared)))
    wins = 0.0
    for resample in draws:
        total = 0.0
        for i in resample:
            gain = best[shared[i]] - other[shared[i]]
            total += gain if maximize else -gain
        wins += 1.0 if total > 0 else 0.5 if total == 0 else 0.0
    return wins / n_boot


@pytest.mark.parametrize("maximize", [False, True])
def test_paired_bootstrap_equals_a_loop_with_the_same_seed(maximize):
    rng = np.random.default_rng(3)
    # whole numbers: every sum is exact, so ties (a resample's mean difference of 0) are exact too
    best = {int(s): float(v) for s, v in zip(rng.permutation(7), rng.integers(-3, 4, 7))}
    other = {s: float(v) for s, v in zip(range(9), rng.integers(-3, 4, 9))}  # seeds 7, 8: not shared
    for seed in (0, 1, 42):
        got = paired_bootstrap(best, other, maximize=maximize, n_boot=2000, seed=seed)
        assert got == loop_bootstrap(best, other, maximize, 2000, seed)
    assert paired_bootstrap(best, other, maximize=maximize) == loop_bootstrap(best, other, maximize, 10000, 0)


def test_paired_bootstrap_on_obvious_cases():
    best = {0: 0.10, 1: 0.30, 2: 0.20, 3: 0.25}
    worse = {s: v + 0.01 * (s + 1) for s, v in best.items()}  # a larger loss on every seed
    assert paired_bootstrap(best, worse, maximize=False) == 1.0
    assert paired_bootstrap(worse, best, maximize=False) == 0.0
    assert paired_bootstrap(best, worse, maximize=True) == 0.0
    assert paired_bootstrap(best, dict(best), maximize=False) == 0.5  # every resample a tie: half each
    # Unpaired, best's seed-to-seed spread (0.1 to 0.3) would swamp the 0.01-0.04 gaps: paired, it can't.
    shifted = {s: v + 0.001 for s, v in best.items()}
    assert paired_bootstrap(best, shifted, maximize=False) == 1.0


def test_paired_bootstrap_needs_two_shared_finite_seeds():
    assert math.isnan(paired_bootstrap({0: 1.0, 1: 2.0}, {1: 0.0, 2: 3.0}, maximize=True))
    assert math.isnan(paired_bootstrap({0: 1.0}, {0: 0.0}, maximize=True))
    assert math.isnan(paired_bootstrap({0: 1.0, 1: math.nan}, {0: 0.0, 1: 0.0}, maximize=True))


# --- one_se_choice ------------------------------------------------------------------------------

def _row(config_id, mean, sem, case=None, seeds=3, **point):
    return {"config_id": config_id, "case": case, **point, "seeds": seeds, "val_loss_mean": mean,
            "val_loss_std": sem * math.sqrt(seeds), "val_loss_sem": sem}


def test_one_se_choice_takes_the_most_regularized_within_one_se():
    rows = [_row("a", 0.100, 0.010, l2=0.001, learning_rate=0.1),
            _row("b", 0.105, 0.002, l2=0.010, learning_rate=0.01),
            _row("c", 0.110, 0.002, l2=0.100, learning_rate=0.1),  # exactly best + SE: within
            _row("d", 0.111, 0.002, l2=1.000, learning_rate=0.1),  # just outside
            _row("e", 0.104, 0.002, case="other", l2=9.0, learning_rate=0.1)]  # another case
    key = regularization_key(["l2", "learning_rate"])
    assert one_se_choice(rows, maximize=False, regularization=key)["config_id"] == "c"
    assert one_se_choice(rows, maximize=False, regularization=key, metric="val_loss")["config_id"] == "c"
    assert regularization_key(["learning_rate", "momentum"]) is None
    assert one_se_choice(rows, maximize=False, regularization=None)["config_id"] == "a"
    single = [dict(r, seeds=1, val_loss_sem=0.0) for r in rows]
    assert one_se_choice(single, maximize=False, regularization=key)["config_id"] == "a"


def test_one_se_choice_maximizes_and_orders_each_regularizer_its_own_way():
    def acc(config_id, mean, sem, **point):
        return {k.replace("val_loss", "val_accuracy"): v for k, v in _row(config_id, mean, sem, **point).items()}
    rows = [acc("a", 0.950, 0.01, patience=20, dropout=[0.2, 0.2]),
            acc("b", 0.945, 0.01, patience=5, dropout=[0.2, 0.2]),   # as much dropout, stops sooner
            acc("c", 0.930, 0.01, patience=2, dropout=[0.5, 0.5])]   # outside one SE (0.94)
    key = regularization_key(["patience", "dropout"])
    assert key(rows[1]) == pytest.approx((0.4, -5.0))  # dropout (a per-layer list: its sum) first, then patience
    assert one_se_choice(rows, maximize=True, regularization=key)["config_id"] == "b"
    more = acc("d", 0.941, 0.01, patience=100, dropout=[0.0, 0.5])  # more dropout in all decides first
    assert one_se_choice([*rows, more], maximize=True, regularization=key)["config_id"] == "d"
    assert one_se_choice([rows[0], rows[2]], maximize=True, regularization=key)["config_id"] == "a"


# --- expected_best ------------------------------------------------------------------------------

def brute_force_expected(values, n, maximize):
    """The mean of the best over every one of the N**n equally likely draws."""
    pick = max if maximize else min
    return np.mean([pick(draw) for draw in itertools.product(values, repeat=n)])


@pytest.mark.parametrize("maximize", [False, True])
def test_expected_best_equals_enumerating_every_draw(maximize):
    values = [0.31, 0.12, 0.57, 0.12, 0.9]  # a tie, unsorted
    got = expected_best(values, 4, maximize=maximize)
    want = [brute_force_expected(values, n, maximize) for n in range(1, 5)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx(np.mean(values), rel=1e-12)  # one draw: the mean


@pytest.mark.parametrize("maximize", [False, True])
def test_expected_best_is_monotone_towards_the_best_and_skips_diverged(maximize):
    values = np.random.default_rng(0).normal(size=30)
    got = expected_best(values, 400, maximize=maximize)
    steps = np.diff(got) if maximize else -np.diff(got)
    assert np.all(steps >= -1e-12) and np.any(steps > 0)
    best = values.max() if maximize else values.min()
    assert abs(got[-1] - best) < 1e-3  # 400 draws of 30 values: the best is all but surely among them
    assert np.all(got <= best + 1e-12) if maximize else np.all(got >= best - 1e-12)
    with_nan = np.append(values, [math.nan, math.nan])
    np.testing.assert_array_equal(expected_best(with_nan, 10, maximize=maximize), expected_best(values, 10, maximize=maximize))
    assert np.isnan(expected_best([math.nan], 3, maximize=maximize)).all()


# --- what show and best print -------------------------------------------------------------------

def _per_seed(folder: Path, metric: str) -> dict[str, dict]:
    seeds: dict[str, dict] = {}
    for record in report.read_journal(folder):
        seeds.setdefault(record["config_id"], {})[record["seed"]] = as_float(record["metrics"][metric])
    return seeds


def _closed_form(values, n):
    """Dodge et al.'s sum for a minimized metric, one term at a time."""
    v = sorted(-x for x in values)
    N = len(v)
    return -sum(v[i - 1] * ((i / N) ** n - ((i - 1) / N) ** n) for i in range(1, N + 1))


def _stats_block(out: str) -> list[str]:
    blocks = out.split("\n\n")
    (block,) = [b for b in blocks if b.startswith("best: ")]
    return block.splitlines()


def test_show_prints_the_statistics_of_the_best(capsys):
    from jaxreg import cli

    assert cli.main(["show", str(GRID)]) == 0
    lines = _stats_block(capsys.readouterr().out)
    rows = report.summarize(report.read_journal(GRID), report.load_manifest(GRID)["spec"]["search"])
    seeds = _per_seed(GRID, "val_loss")
    best, second = (seeds[r["config_id"]] for r in rows[:2])
    values = list(best.values())
    se = np.std(values, ddof=1) / np.sqrt(len(values))
    assert lines[0] == (f"best: learning_rate=0.0464, l2=0.000333: val_loss {np.mean(values):.4f} +- {se:.4f} "
                        f"(mean +- SE over 3 seeds)")
    # l2 0.000667 (rank 2) is within 0.0020 of 0.1158; l2 0.001 (0.1185) is not
    assert lines[1].startswith("1-SE choice: learning_rate=0.0464, l2=0.000667: val_loss 0.1167 (the most "
                               "regularized by l2 within one SE of the best")
    p = loop_bootstrap(best, second, False, 10000, 0)
    won = sum(best[s] < second[s] for s in best)
    assert lines[2].endswith(f"P(best beats runner-up) = {p:.2f} (paired bootstrap over 3 shared seeds; "
                             f"better on {won} of them)")
    means = [r["val_loss_mean"] for r in rows]
    expected = re.findall(r"n=(\d+): ([0-9.]+)", lines[3])
    assert [int(n) for n, _ in expected] == [1, 2, 5, 10, 16]
    assert all(float(text) == round(_closed_form(means, int(n)), 4) for n, text in expected)
    assert lines[3].startswith("expected best val_loss after n configs drawn at random from these 16")


def test_show_of_one_seed_says_the_statistics_need_two(capsys):
    from jaxreg import cli

    assert cli.main(["show", str(ONE_SEED)]) == 0
    lines = _stats_block(capsys.readouterr().out)
    assert "need >= 2 seeds per config, the best has 1 (search.seeds)" in lines[0]
    assert not any("nan" in line.lower() or "P(best" in line for line in lines)
    assert lines[-1].startswith("expected best ")


def test_halving_says_which_configs_the_expected_best_is_of(capsys):
    from jaxreg import cli

    assert cli.main(["show", str(HALVING)]) == 0
    rows = report.summarize(report.read_journal(HALVING), report.load_manifest(HALVING)["spec"]["search"])
    finished = sum(not r.get("pruned") for r in rows)
    assert finished < len(rows)
    (line,) = [x for x in _stats_block(capsys.readouterr().out) if x.startswith("expected best")]
    assert f"from the {finished} trained to the end (of {len(rows)})" in line


def test_best_prints_the_same_statistics(capsys):
    from jaxreg import cli

    assert cli.main(["show", str(GRID)]) == 0
    shown = _stats_block(capsys.readouterr().out)
    assert cli.main(["best", str(GRID)]) == 0
    assert _stats_block(capsys.readouterr().out) == shown


def test_the_search_page_shows_what_show_prints(capsys):
    """docs/search.md's example under "How sure the best is" is show's output, verbatim."""
    from jaxreg import cli

    text = (ROOT / "docs" / "search.md").read_text().split("## How sure the best is", 1)[1]
    documented = re.search(r"```text\n(.*?)```", text, flags=re.S)[1].splitlines()
    assert cli.main(["show", str(GRID)]) == 0
    assert _stats_block(capsys.readouterr().out) == documented


def test_the_lines_of_a_maximized_metric():
    """Every line the other way round: val_accuracy maximized, in percent, ties counted."""
    from jaxreg.report.summary import best_lines

    folder = ROOT / "results" / "search-random"
    records = report.read_journal(folder)
    search = {**report.load_manifest(folder)["spec"]["search"], "metric": "val_accuracy", "goal": "maximize"}
    rows = report.summarize(records, search)
    lines = best_lines(rows, records, search)
    seeds = _per_seed(folder, "val_accuracy")
    best, second = (seeds[r["config_id"]] for r in rows[:2])
    values = list(best.values())
    se = np.std(values, ddof=1) / np.sqrt(len(values))
    assert lines[0].endswith(f"val_accuracy {100 * np.mean(values):.2f} +- {100 * se:.2f} % (mean +- SE over 3 seeds)")
    won, tied = sum(best[s] > second[s] for s in best), sum(best[s] == second[s] for s in best)
    p = loop_bootstrap(best, second, True, 10000, 0)
    assert lines[-2].endswith(f"P(best beats runner-up) = {p:.2f} (paired bootstrap over 3 shared seeds; better on "
                              f"{won}" + (f", equal on {tied}" if tied else "") + " of them)")
    means = [r["val_accuracy_mean"] for r in rows]
    top = -_closed_form([-m for m in means], len(means))  # the mirror of the minimized form
    assert f"n={len(means)}: {100 * top:.2f}%" in lines[-1]


# --- Kendall's tau of generalization measures ----------------------------------------------------

def _tau_by_pairs(x, y):
    """tau-b by enumerating every pair, the textbook definition."""
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        concordant += sx * sy > 0
        discordant += sx * sy < 0
        ties_x += sx == 0
        ties_y += sy == 0
    pairs = len(x) * (len(x) - 1) // 2
    return (concordant - discordant) / math.sqrt((pairs - ties_x) * (pairs - ties_y))


def test_kendall_tau_against_every_pair_and_scipy():
    from jaxreg.report.stats import kendall_tau
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 40, 600):  # 600: more than one 512-row block of pairs
        x = rng.integers(0, 6, n).astype(float)  # ties on both sides
        y = np.round(x + rng.normal(size=n) * 2)
        if n <= 40:
            assert kendall_tau(x, y) == pytest.approx(_tau_by_pairs(x, y), rel=1e-12)
        assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic, rel=1e-12)
    assert math.isnan(kendall_tau([1.0], [2.0])) and math.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0


def test_measure_taus_bootstrap_equals_a_numpy_loop_with_the_same_draws():
    from jaxreg.report.stats import kendall_tau, measure_taus
    rng = np.random.default_rng(1)
    seeds = [3, 2, 3, 3, 1]
    gap = [rng.normal(size=k) for k in seeds]
    values = {"a": [g * 2 + rng.normal(size=len(g)) * 0.1 for g in gap], "b": [rng.normal(size=len(g)) for g in gap]}
    got = measure_taus(values, gap, n_boot=50, seed=7)
    draw_rng = np.random.default_rng(7)
    draws = [[draw_rng.integers(0, len(g), len(g)) for g in gap] for _ in range(50)]
    for name, rows in values.items():
        taus = [kendall_tau([r[d].mean() for r, d in zip(rows, draw)], [g[d].mean() for g, d in zip(gap, draw)])
                for draw in draws]
        tau = kendall_tau([r.mean() for r in rows], [g.mean() for g in gap])
        assert got[name] == pytest.approx((tau, *np.nanpercentile(taus, [5, 95])), rel=1e-12)
    assert got["a"][0] == 1.0  # a measure that is the gap, up to small noise, ranks configs as it does


def test_show_measures_prints_each_measure_by_tau_and_refuses_a_journal_without_them():
    from jaxreg.errors import InputError
    from jaxreg.report.summary import measure_lines

    def line(config, seed, train, val, **measures):
        return {"config_id": config, "seed": seed, "status": "ok",
                "metrics": {"train_loss": train, "val_loss": val, **measures}}

    records = [line(f"c{k}", s, 0.1, 0.1 + 0.1 * k + 0.01 * s, path_norm=10.0 * k + s, sharpness=-1.0 * k)
               for k in range(4) for s in range(2)]
    lines = measure_lines(records)
    assert lines[0].startswith("generalization measures against the gap (val_loss - train_loss) over 4 configs")
    assert lines[1].split()[:3] == ["path_norm", "tau", "+1.00"] and lines[2].split()[:3] == ["sharpness", "tau", "-1.00"]
    records[0]["status"] = "diverged"  # that config is left out
    assert "over 3 configs" in measure_lines(records)[0]
    assert measure_lines(records[:4]) == ["measures: 1 config with every seed finished and measured; Kendall's "
                                          "tau needs 3 or more"]
    with pytest.raises(InputError) as error:
        measure_lines([line("c", 0, 0.1, 0.2)])
    assert str(error.value) == ("--measures: expected a sweep trained with train.measures (any of norm_product, "
                                "path_norm, margin, sharpness, mag_sharpness, hessian), got none in its journal")


def test_show_measures_on_a_folder_without_them_exits_2_before_printing(capsys):
    from jaxreg import cli

    assert cli.main(["show", str(GRID), "--measures"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("jaxreg: error: --measures: expected a sweep trained with train.measures")


def test_measures_png_draws_a_panel_a_measure_by_tau_at_the_configs_seed_means():
    """``measures.png``: a panel a measure, the strongest |tau| first, titled with the tau and
    interval of ``show --measures``; its dots are the configs' seed means (gap against measure)."""
    from types import SimpleNamespace

    from jaxreg.report.plots import _measures
    from jaxreg.report.summary import measured_configs

    rng = np.random.default_rng(3)

    def line(config, seed, train, val, **measures):
        return {"config_id": config, "seed": seed, "status": "ok",
                "metrics": {"train_loss": train, "val_loss": val, **measures}}

    records = [line(f"c{k}", s, 0.1, 0.2 + 0.05 * k + 0.01 * s, path_norm=float(rng.normal()),
                    margin=1.0 + k + 0.1 * s) for k in range(5) for s in range(3)]
    fig = _measures(SimpleNamespace(records=records, spec={"name": "toy"}))
    _, kept, taus = measured_configs(records)
    axes = fig.axes
    assert [ax.get_title().split(":")[0] for ax in axes] == ["margin", "path_norm"]  # |tau| 1 first
    tau, low, high = taus["margin"]
    assert axes[0].get_title() == f"margin: tau {tau:+.2f} [{low:+.2f}, {high:+.2f}]" and tau == 1.0
    x, y = axes[0].lines[0].get_data()
    np.testing.assert_allclose(x, [np.mean([1.0 + k + 0.1 * s for s in range(3)]) for k in range(5)])
    np.testing.assert_allclose(y, [np.mean([0.1 + 0.05 * k + 0.01 * s for s in range(3)]) for k in range(5)])
    assert _measures(SimpleNamespace(records=records[:6], spec={"name": "toy"})) is None  # 2 configs: no tau
