"""Experiment 8, repeated: every search method over many sampling seeds, not one lucky draw.

    python experiments/search_repeats.py                  # momentum, as in the search-*.toml specs
    python experiments/search_repeats.py --set train.optimizer=adam --runs results/search-repeats-adam \
        --name repeats-adam --landscape results/search-landscape-adam   # the same with Adam
    python experiments/search_repeats.py --seeds 5 --methods random random-linear-lr ...   # a subset
    python experiments/search_repeats.py --first-seed 20 --methods random coarse-to-fine \
        --runs results/search-repeats-20 --name repeats-20       # 20 more draws (a folder of their own)
    python experiments/search_repeats.py --all-configs          # + every config seen, retrained

For each sampling seed s (``search.seed = s``) it runs search-random, search-random-linear-lr,
search-coarse-to-fine (zoom rule ``not_worse``) and the same with ``search.zoom = "top_k"`` (the
rule before it: ``coarse-to-fine-top-k``), the same 3 rounds of 5 asked from Optuna's TPE
(``tpe``), successive halving with the member-epochs of random search (``halving``: 36 configs from
epoch 5, eta 3), and a *shifted grid*: the 4 x 4 grid of search-grid.toml with its four
learning rates at ``10 ** (-4 + i + u)``, i = 0..3, one per decade, ``u ~ U(0, 1)`` drawn from s
(the fixed grid is one placement, the same for every s). Each results folder goes to
``RUNS/METHOD/seed-S`` (rerunning resumes them: nothing is trained twice).

A search's best config mean is the minimum of noisy means, biased low, the more so the more
near-optimal configs it tried. So each draw's chosen config is also retrained on fresh seeds
(100..109), all of them in one sweep (``RUNS/reeval``: one case per distinct config; it is
recomputed when the set of chosen configs changes), and again on 30 seeds no search or choice
used (200..229, ``RUNS/truth``). The same two retrainings measure the ceiling: how often one fixed
config (the landscape's best, ``--landscape``, and the best chosen config on either seed set) beats
each method's choice: what a search that always found it would reach.

Writes into ``--out``: ``NAME_draws.csv`` (one row per method and draw), ``NAME.csv`` and
``NAME.md`` (per method: median and quartiles, wins), ``NAME_best_so_far.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

from jaxreg import report
from jaxreg.report.compare import per_decade
from jaxreg.report.folder import load_folder
from jaxreg.sweeps import apply_overrides, build_spec, load_spec, run_sweep

SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"  # the TOML specs it runs
METHODS = ("grid", "grid-shifted", "random", "coarse-to-fine", "coarse-to-fine-top-k", "random-linear-lr", "tpe",
           "halving")
EXTRA_METHODS = ("gp",)  # Optuna's GP sampler needs PyTorch: run it by name
FRESH_SEEDS = list(range(100, 110))
TRUTH_SEEDS = list(range(200, 230))  # a second, larger retraining: no search or choice used them


def shifted_grid(seed: int, low: float = 1e-4, decades: int = 4) -> list[float]:
    """One learning rate per decade of [low, low * 10**decades], all at the same offset u ~ U(0, 1)."""
    u = np.random.default_rng(np.random.SeedSequence([seed, 8])).uniform()
    return [float(low * 10 ** (i + u)) for i in range(decades)]


def run_method(method: str, seed: int, overrides: list[str], runs: Path) -> Path:
    spec_file = SWEEPS / ("search-grid.toml" if method.startswith("grid") else
                          "search-coarse-to-fine.toml" if method.startswith("coarse-to-fine") or method in ("tpe", "gp")
                          else "search-random.toml" if method == "halving" else f"search-{method}.toml")
    extra = ["output.plots=false"]
    if method == "halving":  # 36 configs from epoch 5, the best third to 15, the best ninth to 20: the
        # member-epochs of random search's 16 configs x 20 epochs (36 x 5 + 12 x 10 + 4 x 5 = 16 x 20)
        extra += ['search.method="halving"', "search.samples=36", "search.eta=3", "search.min_epochs=5",
                  'name="search-halving"', 'description="digits, MLP 64-64-10, momentum: successive halving, '
                  '36 random configs from epoch 5, the best 1/3 on to 15, then 20; 3 seeds per config"']
    if method == "tpe":  # Optuna's TPE, the same 3 rounds of 5: round 1 random, then asked from the results
        extra += ['search.method="tpe"', 'name="search-tpe"', 'description="digits, MLP 64-64-10: Optuna TPE, '
                  '3 rounds x 5 configs (round 1 random, then asked from the results), 3 seeds per config"']
    if method == "gp":  # Optuna's Gaussian-process sampler, the same 3 rounds of 5
        extra += ['search.method="gp"', 'name="search-gp"', 'description="digits, MLP 64-64-10: Optuna GP, '
                  '3 rounds x 5 configs (round 1 random, then asked from the results), 3 seeds per config"']
    if method == "coarse-to-fine-top-k":  # the zoom rule before not_worse: around the round's top 3
        extra += ['search.zoom="top_k"']
    if method == "grid-shifted":
        extra += ["name=search-grid-shifted", f"hparams.learning_rate={{ values = {shifted_grid(seed)} }}"]
    elif method != "grid":
        extra += [f"search.seed={seed}"]
    out = runs / method / f"seed-{seed}"
    spec = load_spec(spec_file, [*overrides, *extra])
    if ended(out, spec):  # read as it is: run_sweep would add a run entry to its manifest
        return out
    start = time.perf_counter()
    run_sweep(spec, out, progress=False)
    print(f"{method} seed {seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return out


def ended(folder: Path, spec) -> bool:
    """Whether ``folder`` holds a finished run of ``spec``."""
    if not (folder / report.MANIFEST).exists():
        return False
    manifest = report.load_manifest(folder)
    return manifest["spec_sha256"] == spec.digest and bool(manifest["runs"][-1].get("finished"))


def reevaluate(configs, overrides: list[str], runs: Path, seeds=FRESH_SEEDS, name: str = "reeval") -> dict:
    """Retrains every (learning_rate, l2) of ``configs`` on ``seeds`` (one sweep, a case a config,
    into ``RUNS/NAME``); returns its summary row by config."""
    chosen = sorted(set(configs))
    raw = apply_overrides(tomllib.loads((SWEEPS / "search-grid.toml").read_text()), overrides)
    raw["name"] = f"search-{name}"
    raw["description"] = f"the configs chosen by the repeated searches, retrained on seeds {seeds[0]}..{seeds[-1]}"
    raw["hparams"] = {k: v for k, v in raw["hparams"].items() if k not in ("learning_rate", "l2")}
    raw["cases"] = {f"c{i}": {"learning_rate": lr, "l2": l2} for i, (lr, l2) in enumerate(chosen)}
    raw["search"] = {"method": "grid", "seeds": list(seeds), "metric": raw["search"]["metric"]}
    raw["output"] = {"plots": False}
    spec = build_spec(raw)
    start = time.perf_counter()
    manifest = runs / name / report.MANIFEST
    stale = manifest.exists() and report.load_manifest(runs / name)["spec_sha256"] != spec.digest
    if ended(runs / name, spec):
        records = report.read_journal(runs / name)
    else:
        records = run_sweep(spec, runs / name, overwrite=stale, progress=False)
    print(f"{name} of {len(chosen)} configs: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows = report.summarize(records, spec.search)
    report.write_summary(runs / name, rows)
    by_case = {row["case"]: row for row in rows}
    return {config: by_case[f"c{i}"] for i, config in enumerate(chosen)}


def ceiling(draws: list[dict], fresh: dict, truth: dict, landscape: tuple[float, float], methods: list[str]) -> list[str]:
    """How often a FIXED good config beats each method's choice, on either set of fresh seeds: the
    landscape's best config and the best of the configs the searches chose on FRESH_SEEDS (both
    chosen there, so favoured there), and the best of those on TRUTH_SEEDS (favoured there). On the
    seeds that did not choose it, a config's number is a fair measure; a search that always found
    it would beat each method in that many draws."""
    on_fresh = min(fresh, key=lambda c: fresh[c]["val_loss_mean"])
    on_truth = min(fresh, key=lambda c: truth[c]["val_loss_mean"])
    lines = ["| fixed config | " + " | ".join(f"< {m} (seeds {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]} / "
                                              f"{TRUTH_SEEDS[0]}-{TRUTH_SEEDS[-1]})" for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for label, config in ((f"landscape best, lr {landscape[0]:.3g}, L2 {landscape[1]:.2g}", landscape),
                          (f"best on seeds {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]}, lr {on_fresh[0]:.3g}, "
                           f"L2 {on_fresh[1]:.2g}", on_fresh),
                          (f"best on seeds {TRUTH_SEEDS[0]}-{TRUTH_SEEDS[-1]}, lr {on_truth[0]:.3g}, "
                           f"L2 {on_truth[1]:.2g}", on_truth)):
        cells = []
        for m in methods:
            mine = [d for d in draws if d["method"] == m]
            a = sum(fresh[config]["val_loss_mean"] < d["reeval_val_loss"] for d in mine)
            b = sum(truth[config]["val_loss_mean"] < d["truth_val_loss"] for d in mine)
            cells.append(f"{a} / {len(mine)} ; {b} / {len(mine)}")
        lines.append(f"| {label}: {fresh[config]['val_loss_mean']:.4f} / {truth[config]['val_loss_mean']:.4f} | "
                     + " | ".join(cells) + " |")
    return lines


def seen_configs(draws: list[dict], overrides: list[str], runs: Path, seeds) -> list[str]:
    """Every config random search and coarse-to-fine evaluated, retrained on TRUTH_SEEDS: was a
    better config than random's choice among those a search evaluated (exploration), and did the
    search choose its best one (selection)?"""
    methods = [m for m in ("random", "coarse-to-fine") if any(d["method"] == m for d in draws)]
    table = {(d["method"], d["seed"]): d for d in draws}
    seen = {(m, s): table[(m, s)]["seen"] for m in methods for s in seeds}
    truth = reevaluate([c for configs in seen.values() for c in configs], overrides, runs, TRUTH_SEEDS, "all-truth")
    value = lambda config: truth[config]["val_loss_mean"]
    lines = [f"Every config the searches evaluated, retrained on seeds {TRUTH_SEEDS[0]}-{TRUTH_SEEDS[-1]} "
             f"({len(set(c for configs in seen.values() for c in configs))} configs): the best one each search "
             f"saw, and how often it chose that one.", "",
             "| method | best config seen (median) | chose its best config seen | best seen beats random's choice |"
             " configs seen better than random's choice (median) |", "|---|---|---|---|---|"]
    for m in methods:
        best = [min(value(c) for c in seen[(m, s)]) for s in seeds]
        chose = sum(value((table[(m, s)]["best_learning_rate"], table[(m, s)]["best_l2"])) == b
                    for s, b in zip(seeds, best))
        if "random" in methods:
            rival = [value((table[("random", s)]["best_learning_rate"], table[("random", s)]["best_l2"]))
                     for s in seeds]  # from the same retraining as the configs seen
            beats = f"{sum(b < r for b, r in zip(best, rival))} / {len(best)}"
            better = f"{np.median([sum(value(c) < r for c in seen[(m, s)]) for s, r in zip(seeds, rival)]):g}"
        else:
            beats = better = "-"
        lines.append(f"| {m} | {np.median(best):.4f} | {chose} / {len(best)} | {beats} | {better} |")
    return lines


def draw_row(method: str, seed: int, folder: Path) -> dict:
    f = load_folder(folder)
    metric, best = f.search["metric"], f.rows[0]
    curve = f.best_so_far()
    return {"method": method, "seed": seed, "configs": len(f.rows), "trials": len(f.records),
            "best": best[f"{metric}_mean"], "best_at_15": float(curve[min(15, len(curve)) - 1]),
            "best_learning_rate": best["learning_rate"], "best_l2": best["l2"],
            "learning_rates_per_decade": per_decade([r["learning_rate"] for r in f.rows],
                                                     min(f.extent("learning_rate")), max(f.extent("learning_rate"))),
            "seconds": sum(r.get("seconds") or 0.0 for r in report.load_manifest(folder)["runs"]),
            "member_epochs": sum(r.get("trained_epochs", report.load_manifest(folder)["spec"]["train"]["epochs"])
                                 for r in f.records),
            "curve": curve, "seen": [(float(r["learning_rate"]), float(r["l2"])) for r in f.rows]}


def quartiles(values) -> str:
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:.4f} [{q1:.4f}, {q3:.4f}]"


def statistics(draws: list[dict], methods: list[str]) -> list[dict]:
    seeds = sorted({d["seed"] for d in draws if d["method"] != "grid"})
    table = {(d["method"], d["seed"]): d for d in draws}
    get = lambda m, s, key: table[(m, s if m != "grid" else seeds[0])][key]
    rows = []
    for m in methods:
        mine = [table[(m, s if m != "grid" else seeds[0])] for s in seeds]
        row = {"method": m, "draws": len({d["seed"] for d in mine}), "configs": mine[0]["configs"]}
        for key, label in (("best", "best_found"), ("reeval_val_loss", "reeval_val_loss"),
                           ("reeval_test_accuracy", "reeval_test_accuracy")):
            values = [d[key] for d in mine]
            row[f"{label}_median"] = float(np.median(values))
            row[f"{label}_q1"], row[f"{label}_q3"] = (float(v) for v in np.percentile(values, [25, 75]))
        for key, label in (("best", "wins_best_found"), ("reeval_val_loss", "wins_reeval")):
            # A tie (two methods chose the same config) counts for each of them.
            row[label] = sum(get(m, s, key) == min(get(o, s, key) for o in methods) for s in seeds)
        row["median_seconds"] = float(np.median([d["seconds"] for d in mine]))
        rows.append(row)
    return rows


def pairwise(draws: list[dict], methods: list[str]) -> list[str]:
    """'A beats B in k of n draws' for the pairs the experiment is about."""
    seeds = sorted({d["seed"] for d in draws if d["method"] != "grid"})
    table = {(d["method"], d["seed"]): d for d in draws}
    get = lambda m, s, key: table[(m, s if m != "grid" else seeds[0])][key]
    lines = []
    for a, b in (("random", "grid"), ("random", "grid-shifted"), ("coarse-to-fine", "random"),
                 ("coarse-to-fine-top-k", "random"), ("coarse-to-fine", "coarse-to-fine-top-k"),
                 ("coarse-to-fine", "grid"), ("random", "random-linear-lr"), ("tpe", "random"),
                 ("tpe", "coarse-to-fine"), ("halving", "random"), ("gp", "random")):
        if a in methods and b in methods:
            cells = []
            for key in ("best", "reeval_val_loss", "truth_val_loss"):
                wins = sum(get(a, s, key) < get(b, s, key) for s in seeds)
                ties = sum(get(a, s, key) == get(b, s, key) for s in seeds)
                cells.append(f"{wins} / {len(seeds)}" + (f" ({ties} tied: the same config)" if ties else ""))
            lines.append(f"| {a} < {b} | {' | '.join(cells)} |")
    return lines


def plot_curves(draws: list[dict], methods: list[str], metric: str) -> Figure:
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for i, m in enumerate(methods):
        mine = [list(d["curve"]) for d in draws if d["method"] == m]
        longest = max(map(len, mine))  # a draw whose rounds repeated a config has fewer: it keeps its best
        curves = np.array([c + c[-1:] * (longest - len(c)) for c in mine])
        n = np.arange(1, curves.shape[1] + 1)
        q1, q2, q3 = np.percentile(curves, [25, 50, 75], axis=0)
        draws_m = len(curves)
        ax.step(n, q2, where="post", color=f"C{i}", lw=2, label=f"{m} ({draws_m} draw{'s' * (draws_m > 1)})")
        if draws_m > 1:
            ax.fill_between(n, q1, q3, step="post", color=f"C{i}", alpha=0.15, lw=0)
    finals = [np.median([d["curve"][-1] for d in draws if d["method"] == m]) for m in methods]
    ax.set_ylim(0.97 * min(finals), max(finals) + 2.5 * (max(finals) - min(finals)) + 0.01)
    ax.set(xlabel="configs evaluated", ylabel=f"best config mean of {metric} so far",
           title="Best so far over sampling seeds: median, band = quartiles (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="how many sampling seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="the first sampling seed (then the next ones)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + EXTRA_METHODS)
    parser.add_argument("--all-configs", action="store_true",
                        help="also retrain every config random search and coarse-to-fine evaluated (not only the "
                             "chosen ones) on the 30 truth seeds, into RUNS/all-truth: how good the best config each "
                             "search saw was, and how often its choice was that one")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every run, e.g. train.optimizer=adam")
    parser.add_argument("--runs", type=Path, default=Path("results/search-repeats"))
    parser.add_argument("--out", type=Path, default=Path("results/search-comparison"))
    parser.add_argument("--name", default="repeats")
    parser.add_argument("--landscape", type=Path, default=Path("results/search-landscape"),
                        help="the grid whose best config is the fixed reference (results/search-landscape-adam for Adam)")
    args = parser.parse_args(argv)
    # Every run compiles the same few programs: keep them across runs of this process.
    jax.config.update("jax_compilation_cache_dir", "/tmp/jaxreg-xla-cache")
    started = time.perf_counter()
    draws = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        for method in args.methods:
            if method == "grid" and seed > args.first_seed:
                continue  # the fixed grid does not depend on the sampling seed
            draws.append(draw_row(method, seed, run_method(method, seed, args.set, args.runs)))
    best_row = load_folder(args.landscape).rows[0]
    landscape = (float(best_row["learning_rate"]), float(best_row["l2"]))
    chosen = [(d["best_learning_rate"], d["best_l2"]) for d in draws]
    fresh = reevaluate([*chosen, landscape], args.set, args.runs)
    truth = reevaluate([*chosen, landscape, *fresh], args.set, args.runs, TRUTH_SEEDS, "truth")
    for d in draws:
        row = fresh[(d["best_learning_rate"], d["best_l2"])]
        d["reeval_val_loss"], d["reeval_test_accuracy"] = row["val_loss_mean"], row["test_accuracy_mean"]
        d["truth_val_loss"] = truth[(d["best_learning_rate"], d["best_l2"])]["val_loss_mean"]
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_csv(args.out / f"{args.name}_draws.csv", [{k: v for k, v in d.items() if k not in ("curve", "seen")} for d in draws])
    stats = statistics(draws, args.methods)
    report.write_csv(args.out / f"{args.name}.csv", stats)
    metric = load_spec(SWEEPS / "search-grid.toml").search["metric"]
    plot_curves(draws, args.methods, metric).savefig(args.out / f"{args.name}_best_so_far.png", dpi=120)
    lines = [f"# {args.name}: sampling seeds {seeds[0]}..{seeds[-1]}" + (f", {' '.join(args.set)}" if args.set else ""), "",
             f"Best {metric} found (config mean over 3 seeds) and the chosen config retrained on seeds "
             f"{FRESH_SEEDS[0]}..{FRESH_SEEDS[-1]}: median [quartiles] over draws; wins: draws where the "
             f"method is the best of those run (the fixed grid is one draw, counted in every one; a tie "
             f"counts for each tied method).", "",
             f"| method | configs | best found | retrained val_loss | retrained test acc % | wins (found) | wins (retrained) "
             f"| retrained on seeds {TRUTH_SEEDS[0]}..{TRUTH_SEEDS[-1]} |",
             "|---|---|---|---|---|---|---|---|"]
    for row in stats:
        accuracy = f"{100 * row['reeval_test_accuracy_median']:.2f}"
        found = [d["best"] for d in draws if d["method"] == row["method"]]
        fresh_values = [d["reeval_val_loss"] for d in draws if d["method"] == row["method"]]
        lines.append(f"| {row['method']} | {row['configs']} | {quartiles(found)} | {quartiles(fresh_values)} | "
                     f"{accuracy} | {row['wins_best_found']} | {row['wins_reeval']} | "
                     f"{quartiles([d['truth_val_loss'] for d in draws if d['method'] == row['method']])} |")
    pairs = pairwise(draws, args.methods)
    if pairs:
        lines += ["", f"| lower is better | draws (best found) | draws (retrained, seeds {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]}) "
                      f"| draws (retrained, seeds {TRUTH_SEEDS[0]}-{TRUTH_SEEDS[-1]}) |", "|---|---|---|---|", *pairs]
    lines += ["", "How often one fixed config beats each method's choice, on each set of fresh seeds (a config "
              "is favoured on the seeds that chose it; on the other set its number is fair):", "",
              *ceiling(draws, fresh, truth, landscape, [m for m in args.methods if m != "grid"])]
    if args.all_configs:
        lines += ["", *seen_configs(draws, args.set, args.runs, seeds)]
    seconds = [d["seconds"] for d in draws]
    lines += ["", f"Run time recorded in the {len(draws)} searches' manifests: {sum(seconds):.0f} s "
              f"(median {np.median(seconds):.1f} s a search, compiling included); this call: "
              f"{time.perf_counter() - started:.0f} s (searches already in {args.runs} are read, not retrained)."]
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
