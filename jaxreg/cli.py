"""The ``jaxreg`` command line.

    jaxreg run SPEC [--out DIR] [--set KEY=VALUE ...] [--overwrite] [--quiet] [--shard I/N] [--ray [ADDRESS]]
    jaxreg plan SPEC [--set KEY=VALUE ...]
    jaxreg show DIR [--top N]
    jaxreg plot DIR [--trust-code]
    jaxreg best DIR [--export FILE] [--trust-code]
    jaxreg predict DIR_OR_FILE DATA --out FILE [--seed N] [--trust-code]
    jaxreg compare DIR [DIR ...] --out DIR
    jaxreg report DIR [DIR ...] [--out FILE]
    jaxreg export optuna DIR --storage URL
    jaxreg export mlflow DIR [--tracking-uri URI]
    jaxreg export tensorboard DIR [--logdir DIR]
    jaxreg --version

Bad input of any kind (the spec, an override, the output folder, missing data) prints one
line on stderr and exits with code 2, before anything is trained or written.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import signal
import sys
import time
from pathlib import Path

from jaxreg.errors import InputError


class UsageError(InputError):
    """Bad input from the command line: reported as one line and exit code 2."""


PLAN_LISTED = 1000  # configs jaxreg plan lists; it says how many more there are
COMMANDS = ("run", "plan", "sanity", "lr-find", "show", "plot", "best", "predict", "compare", "report", "export")  # in --help's order
EXPORTS = ("optuna", "mlflow", "tensorboard")  # jaxreg export TARGET (jaxreg.report.exports)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(_house_style(message))


def _house_style(message: str) -> str:
    """Argparse's messages as ``FIELD: expected ALLOWED, got VALUE``, like every other error."""
    if match := re.fullmatch(r"argument (.+?): invalid choice: (.+) \(choose from (.+)\)", message):
        choices = ", ".join(repr(c.strip().strip("'\"")) for c in match[3].split(","))
        return f"{match[1]}: expected one of {choices}, got {match[2]}"
    if match := re.fullmatch(r"argument (.+?): expected one argument", message):
        return f"{match[1]}: expected a value, got nothing"
    if match := re.fullmatch(r"argument (.+?): (expected .*)", message):
        return f"{match[1]}: {match[2]}"
    if match := re.fullmatch(r"the following arguments are required: (.+)", message):
        name = match[1].split(",")[0].strip()
        allowed = {"command": f"one of {', '.join(map(repr, COMMANDS))}", "target": f"one of {', '.join(map(repr, EXPORTS))}",
                   "spec": "a sweep spec (a TOML file)",
                   "dir": "a results folder", "DIR_OR_FILE": "a results folder or a file of jaxreg best --export",
                   "DATA": "a .csv or .npz file", "--out": "a path to write to (predict: the predictions' CSV; "
                                                           "compare: a folder)",
                   "--storage": "an Optuna storage URL (sqlite:///study.db)"}.get(name, "a value")
        return f"{name}: expected {allowed}, got nothing"
    if match := re.fullmatch(r"unrecognized arguments: (.+)", message):
        return f"arguments: expected only those listed by --help, got {match[1]!r}"
    return message


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jaxreg")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


class _Unset(argparse.Action):
    """``--unset KEY``: removes KEY from the spec, in order with the ``--set`` overrides."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), "!" + value])  # spec.UNSET


def _override_options(command) -> None:
    """``--set KEY=VALUE`` and ``--unset KEY``, applied in the order given."""
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a spec value with a TOML value, e.g. --set train.epochs=50")
    command.add_argument("--unset", action=_Unset, dest="set", metavar="KEY",
                         help="remove a key the spec sets (e.g. search.eta when --set search.method=random)")


TRUST_CODE = ("import the code the folder or export names (model.kind or train.penalty_mask = "
              "'module:function'), which runs it: only for one whose author you trust")


def _parser() -> _Parser:
    parser = _Parser(prog="jaxreg", description="Study and tune regularization with JAX: whole "
                     "sweeps of configs x seeds as one compiled program.")
    parser.add_argument("--version", action="version", version=f"jaxreg {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="train a sweep spec (resumes an interrupted one)")
    run.add_argument("spec", help="a sweep spec (TOML), e.g. sweeps/demo.toml")
    run.add_argument("--out", help="results folder (default: results/NAME)")
    _override_options(run)
    run.add_argument("--overwrite", action="store_true",
                     help="replace the results in --out instead of resuming them")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--shard", metavar="I/N",
                     help="train only shard I of N (counted from 0) into the same --out; run each shard once, "
                          "one after another or at once (a Slurm array: --shard $SLURM_ARRAY_TASK_ID/N)")
    run.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="train the chunks as Ray tasks, on a local Ray cluster or the one at ADDRESS "
                          "(pip install 'jaxreg[ray]')")
    run.add_argument("--checkpoint-every", type=_seconds, default=10.0, metavar="SECONDS",
                     help="keep the chunk in training at most this often (default 10; 0: after every "
                          "segment); a rerun resumes it")
    plan = commands.add_parser("plan", help="print the configs a spec expands to; trains nothing")
    plan.add_argument("spec")
    _override_options(plan)
    sanity = commands.add_parser("sanity", help="can the spec's network fit a small subset with regularization "
                                 "off? (exit 1 if not)")
    sanity.add_argument("spec")
    _override_options(sanity)
    sanity.add_argument("--examples", type=_positive, default=100, help="training examples (default 100)")
    sanity.add_argument("--seeds", type=_positive, default=3, help="seeds (default 3)")
    sanity.add_argument("--epochs", type=_positive, default=200, help="epochs (default 200)")
    probe = commands.add_parser("lr-find", help="probe the learning rate: K constant rates x seeds for a "
                                "short horizon, one compiled program; suggests a range and plots it")
    probe.add_argument("spec")
    _override_options(probe)
    probe.add_argument("--low", type=float, default=1e-5, help="smallest learning rate (default 1e-5)")
    probe.add_argument("--high", type=float, default=10.0, help="largest learning rate (default 10)")
    probe.add_argument("--rates", type=_positive, default=24, help="log-spaced rates (default 24)")
    probe.add_argument("--seeds", type=_positive, default=3, help="seeds (default 3)")
    probe.add_argument("--epochs", type=_positive, default=2, help="the horizon, in epochs (default 2)")
    probe.add_argument("--plot", metavar="FILE", help="the figure (default: lr-find-NAME.png here)")
    show = commands.add_parser("show", help="print the summary table of a results folder")
    show.add_argument("dir")
    show.add_argument("--top", type=_positive, default=None, help="only the best N configs")
    show.add_argument("--measures", action="store_true", help="Kendall's tau between each generalization measure "
                      "(train.measures) and the generalization gap over the configs, with a seed-bootstrap interval")
    plot = commands.add_parser("plot", help="write the plots of a results folder as PNG files")
    plot.add_argument("dir")
    plot.add_argument("--trust-code", action="store_true", help=TRUST_CODE)
    best = commands.add_parser("best", help="print the best config of a results folder; --export its params")
    best.add_argument("dir")
    best.add_argument("--export", metavar="FILE", help="write the best config's params (every seed) and a "
                      "manifest that rebuilds its model to FILE (.npz; jaxreg.load_best reads it); "
                      "trains the config again, bitwise, when the sweep kept no params")
    best.add_argument("--trust-code", action="store_true", help=TRUST_CODE)
    predict = commands.add_parser("predict", help="predict raw rows of a .csv or .npz with the best config of a "
                                  "results folder or of a best --export file")
    predict.add_argument("source", metavar="DIR_OR_FILE", help="a results folder or a file of jaxreg best --export")
    predict.add_argument("data", metavar="DATA", help="a .csv (the training file's columns by header name; without "
                         "a header the feature columns alone or all the training file's) or an .npz")
    predict.add_argument("--out", required=True, metavar="FILE", help="the predictions' CSV: one row per input, "
                         "the predicted class (or value) and each class's probability")
    predict.add_argument("--seed", type=int, default=None, help="whose params predict (default: the best seed)")
    predict.add_argument("--trust-code", action="store_true", help=TRUST_CODE)
    compare = commands.add_parser("compare", help="compare results folders: best so far, sampled points, "
                                  "comparison.csv")
    compare.add_argument("dir", nargs="+", help="results folders ranked by the same metric")
    compare.add_argument("--out", required=True, help="folder for the comparison's files")
    report = commands.add_parser("report", help="write one self-contained HTML page of results folders (tables, "
                                 "interactive plots, findings; opens offline)")
    report.add_argument("dir", nargs="+", help="results folders (several: ranked by the same metric)")
    report.add_argument("--out", default="report.html", metavar="FILE", help="the page (default: report.html)")
    _export_parser(commands)
    return parser


def _export_parser(commands) -> None:
    """``jaxreg export TARGET DIR``: a results folder in Optuna, MLflow or TensorBoard."""
    export = commands.add_parser("export", help="a results folder in Optuna, MLflow or TensorBoard's HPARAMS tab "
                                 "(one entry per config; exporting again adds nothing twice)")
    targets = export.add_subparsers(dest="target", required=True, parser_class=_Parser)
    optuna = targets.add_parser("optuna", help="a study per case, a trial per config (pip install 'jaxreg[optuna]')")
    optuna.add_argument("dir")
    optuna.add_argument("--storage", required=True, metavar="URL",
                        help="the Optuna storage, e.g. sqlite:///study.db (optuna-dashboard sqlite:///study.db shows it)")
    mlflow = targets.add_parser("mlflow", help="a parent run per sweep, a child run per config "
                                "(pip install 'jaxreg[mlflow]')")
    mlflow.add_argument("dir")
    mlflow.add_argument("--tracking-uri", metavar="URI", help="the MLflow tracking store (default "
                        "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory)")
    board = targets.add_parser("tensorboard", help="TensorBoard's HPARAMS tab, a session per config "
                               "(pip install 'jaxreg[tensorboard]')")
    board.add_argument("dir")
    board.add_argument("--logdir", metavar="DIR", help="where (default DIR/tensorboard-configs, recorded in the "
                       "folder's manifest); elsewhere: a new or empty folder, or an earlier export's")


def _built(args):
    """The spec ``main`` read and checked before JAX loaded (``args.raw``), built."""
    from jaxreg.sweeps import build_spec

    return build_spec(args.raw, default_name=Path(args.spec).stem)


def _run(args) -> None:
    from jaxreg import report
    from jaxreg.sweeps import run_sweep
    from jaxreg.sweeps.api import finish_plots, finish_tables
    from jaxreg.sweeps.spec import spread_hparams

    from jaxreg.report.journal import shard_journals
    from jaxreg.report.locks import parse_shard

    shard = parse_shard(args.shard) if args.shard is not None else None
    from jaxreg.sweeps.executor import Executor, Progress

    executor = Executor(checkpoint_seconds=args.checkpoint_every)
    if args.ray is not None:
        from jaxreg.sweeps.remote import RayExecutor
        executor = RayExecutor(args.ray_cluster, os.environ.get("JAXREG_CACHE_DIR_USED"))
    spec = _built(args)
    for line in spread_hparams(args.raw, args.set):  # the spec main read, overrides applied
        print(f"jaxreg: {line}", file=sys.stderr)
    out = Path(args.out) if args.out else Path("results") / spec.name
    start = time.perf_counter()
    _RUNNING.append(Progress(bars=not args.quiet))
    records = run_sweep(spec, out, overwrite=args.overwrite, progress=_RUNNING[-1],
                        shard=shard, executor=executor)
    seconds = time.perf_counter() - start
    if shard_journals(out):  # other shards still to run: their trials are not in yet
        print(f"{spec.name}: shard {shard}: {len(records)} trials journaled so far in {out}/ ({seconds:.1f} s); "
              f"the run of the last shard merges the journals and writes the table and plots "
              f"(jaxreg show {out} reads them at any time)")
        return
    rows, written = finish_tables(spec, out, records)
    print(_header(spec, len(records), seconds))
    print()
    print(report.format_table(rows, spec.search, limit=20))
    _print_best_lines(rows, records, spec.search)
    _print_findings(out)  # each block after one blank line
    print(flush=True)  # the table is the first result: shown while the plots are drawn
    drawn, skipped = finish_plots(spec, out)
    written += drawn
    print(f"results: {out}/ ({', '.join([report.JOURNAL] + [p.name for p in written])})")
    if skipped:
        print("plots skipped: " + "; ".join(f"{name} ({why})" for name, why in skipped))


def _header(spec, n_trials: int, seconds: float) -> str:
    from jaxreg.sweeps.spec import is_factory

    info = spec.dataset.info
    # Cases that change the data (digits' per_class, say) train on splits of other sizes: each said.
    sizes = []
    for variant in spec.variants:
        n = (len(variant.dataset.train.y), len(variant.dataset.val.y), len(variant.dataset.test.y))
        if n not in sizes:
            sizes.append(n)
    if len(sizes) == 1:
        split = f"{sizes[0][0]} train / {sizes[0][1]} val / {sizes[0][2]} test"
    else:
        split = ("per case: " + ", ".join(f"{a} train / {b} val / {c} test" for a, b, c in sizes[:3])
                 + (", ..." if len(sizes) > 3 else ""))
    return (f"{spec.name}: {info['name']} ({split}), "
            f"{spec.resolved['model']['kind']} "
            + (f"{spec.resolved['model']['channels']} conv + " if spec.resolved['model']['kind'] == "cnn" else "")
            + (f"{spec.resolved['model'].get('options', {})}, " if is_factory(spec.resolved['model']['kind']) else
               f"{spec.resolved['model']['hidden']}, ") +
            f"{spec.config.optimizer}, {spec.config.epochs} epochs; {n_trials} trials "
            f"({len(spec.seeds)} seeds per config) in {seconds:.1f} s; "
            f"best first by {spec.search['metric']} (mean +- std over seeds), "
            f"test metrics for the selected configs only")


def _plan(args) -> None:
    from jaxreg.sweeps import choose_chunk_size, config_id
    from jaxreg.sweeps.cost import describe, estimate

    from jaxreg.sweeps.halving import METHODS as HALVING, words as halving_words
    from jaxreg.sweeps.space import MODEL_METHODS
    from jaxreg.sweeps.path import words as path_words
    from jaxreg.sweeps.spec import spread_hparams, zoom_words

    spec = _built(args)
    for line in spread_hparams(args.raw, args.set):  # the spec main read, overrides applied
        print(line)
    s = spec.search
    # hyperband: every bracket (a round each) draws its own configs, listed bracket by bracket; a
    # grid is counted and its first PLAN_LISTED configs listed as they come (a million take minutes)
    if s["method"] in ("hyperband", *MODEL_METHODS):
        listed = [c for r in range(s["rounds"] if s["method"] == "hyperband" else 1) for c in spec.configs(r)]
        n_configs = len(listed)
    else:
        listed = itertools.chain.from_iterable(v.space.iter_configs(0) for v in spec.variants)
        n_configs = sum(v.space.count(0) for v in spec.variants)
    members = n_configs * len(spec.seeds)
    draws = sum(v.space.draws() for v in spec.variants)
    per_round = [v.space.count(0) * len(spec.seeds) for v in spec.variants]
    chunks = [choose_chunk_size(spec, n, v) for v, n in zip(spec.variants, per_round)]
    programs = (f"{chunks[0]} members per compiled chunk" if len(chunks) == 1 else
                f"{len(chunks)} compiled programs (cases with their own data, model or train "
                f"settings), {', '.join(map(str, chunks))} members per chunk")
    print(f"{spec.name}: {n_configs} configs x {len(spec.seeds)} seeds = {members} trials"
          + (f" in {s['rounds']} brackets" if s["method"] == "hyperband" else "")
          + (f" per round, {s['rounds']} rounds ({s['round_method']}, {zoom_words(s)})"
             if s["method"] == "coarse_to_fine" else
             f" per round at most, {s['rounds']} rounds ({s['method']} through Optuna: round 1 its "
             f"independent draws, listed below; each later round asked from the results)"
             if s["method"] in MODEL_METHODS else
             f" ({halving_words(spec.variants[0].config.epochs, s)})" if s["method"] in HALVING
             else f" per point and mix ({path_words(s, spec.variants[0].config.epochs)})" if s["method"] == "path"
             else f" ({s['method']} search)")
          + f"; {programs}")
    if draws > n_configs:
        print(f"note: {draws - n_configs} of {draws} random draws repeat a config of their case (a case "
              f"without axes, or fewer values than search.samples): each config is trained once")
    costs = [estimate(v, n, size) for v, n, size in zip(spec.variants, per_round, chunks)]
    for line in describe(costs, s["rounds"] if s["method"] in ("coarse_to_fine", "hyperband", *MODEL_METHODS) else 1):
        print(line)
    if s["method"] in HALVING:
        print(f"(an upper bound for {s['method']}: every {'bracket' if s['method'] == 'hyperband' else 'config'} "
              f"costed as if it trained all epochs; pruned members stop at their rung)")
    names = []
    for variant in spec.variants:
        names.extend(n for n in variant.space.varying() if n not in names)
    for config in itertools.islice(listed, PLAN_LISTED):
        values = "  ".join(f"{n}={config.point[n]!r}" for n in names if n in config.point)
        case = f"[{config.case}]  " if config.case is not None else ""
        bracket = f"[bracket {config.round + 1}]  " if s["method"] == "hyperband" else ""
        print(f"{config_id(config)}  {bracket}{case}{values}".rstrip())
    if n_configs > PLAN_LISTED:
        print(f"... and {n_configs - PLAN_LISTED} more configs (plan lists the first {PLAN_LISTED})")


def _sanity(args) -> int:
    from jaxreg.sweeps.sanity import sanity_check

    result = sanity_check(_built(args), examples=args.examples, seeds=args.seeds,
                          epochs=args.epochs)
    for line in result.lines:
        print(line)
    return 0 if result.passed else 1


def _lr_find(args) -> None:
    from jaxreg.sweeps.lr_find import lr_find, plot_probe, ramp

    spec = _built(args)
    start = time.perf_counter()
    probe = lr_find(spec, low=args.low, high=args.high, rates=args.rates, seeds=range(args.seeds),
                    epochs=args.epochs)
    ramped = ramp(spec, low=args.low, high=args.high)
    seconds = time.perf_counter() - start
    s, r = probe.suggestions, ramped.suggestions
    print(f"{spec.name}: {args.rates} learning rates {args.low:g} to {args.high:g} x {args.seeds} seeds, "
          f"{args.epochs} epochs each, {spec.config.optimizer} ({seconds:.1f} s with the ramp)")
    print(f"suggested range: {s['range'][0]:.3g} to {s['range'][1]:.3g} (the lowest mean loss's rate / 10 to that "
          f"rate, at most the largest stable one)")
    print(f"largest stable rate {s['largest_stable']:.3g} (no seed diverged, below the loss at init "
          f"{probe.init_loss:.3g}); fastai's rules on the seed mean: minimum {s['minimum']:.3g}, steep "
          f"{s['steep']:.3g}, valley {s['valley']:.3g}")
    print(f"the classic ramp (one run, {len(ramped.learning_rates)} steps) for comparison: minimum {r['minimum']:.3g}, "
          f"steep {r['steep']:.3g}, valley {r['valley']:.3g}")
    path = Path(args.plot) if args.plot else Path(f"lr-find-{spec.name}.png")
    plot_probe(probe, ramped, path, f"{spec.name}: training loss after {args.epochs} epochs at each learning rate")
    print(f"plot: {path}")


def _show(args) -> None:
    from jaxreg import report

    manifest = report.load_manifest(args.dir)
    records = report.read_journal(args.dir)
    search = manifest["spec"]["search"]
    rows = report.summarize(records, search, manifest.get("chance"))
    measures = report.measure_lines(records) if args.measures else []  # refused before anything is printed
    print(f"{manifest['spec']['name']}: {len(records)} trials in {args.dir}"
          + (f", best first by {search['metric']} (mean +- std over seeds)" if records else ""))
    print(report.format_table(rows, search, limit=args.top))
    _print_best_lines(rows, records, search)
    _print_findings(args.dir)
    if measures:
        print()
        print("\n".join(measures))


def _print_best_lines(rows: list[dict], records: list[dict], search: dict) -> None:
    """Under the table, after a blank line: how sure its best is (report.summary.best_lines)."""
    from jaxreg.report.summary import best_lines

    lines = best_lines(rows, records, search)
    if lines:
        print()
        print("\n".join(lines))


def _print_findings(out) -> None:
    from jaxreg.report.findings import finding_lines
    from jaxreg.report.folder import load_folder

    lines = finding_lines(load_folder(out))
    if lines:
        print("\nfindings (jaxreg.diagnose; thresholds in jaxreg.diagnosis.Thresholds):")
        for line in lines:
            print(f"  {line}")


def _plot(args) -> None:
    from jaxreg.report import plots
    from jaxreg.sweeps import build_spec

    skipped = []
    for path in plots.plot_dir(args.dir, build=build_spec, on_skip=lambda name, why: skipped.append((name, why)),
                               trust_code=args.trust_code):
        print(path)
    for name, why in skipped:
        print(f"skipped {name}: {why}")


def _best(args) -> None:
    from jaxreg.report import load_manifest, read_journal, summarize
    from jaxreg.report.summary import csv_value
    from jaxreg.sweeps.best import best_config, export_best

    best = best_config(args.dir)
    manifest = load_manifest(args.dir)
    spec = manifest["spec"]
    seeds = [t["seed"] for t in best.trials]
    case = f", case {best.case}" if best.case is not None else ""
    print(f"{spec['name']}: best config {best.config_id}{case} by {best.metric} "
          f"(mean over {len(seeds)} seed{'s' * (len(seeds) != 1)}: {', '.join(map(str, seeds))}, best seed first)")
    if best.point:
        print("swept:   " + "  ".join(f"{k}={csv_value(v)}" for k, v in best.point.items()))
    print("hparams: " + "  ".join(f"{k}={csv_value(v)}" for k, v in best.hparams.items()))
    shown = {k: v for k, v in best.metrics.items() if not math.isnan(v)}
    print("metrics: " + "  ".join(f"{k}={v:.6g}" for k, v in shown.items()))
    records = read_journal(args.dir)
    _print_best_lines(summarize(records, spec["search"], manifest.get("chance")), records, spec["search"])
    if args.export:
        export = export_best(args.dir, args.export, log=lambda text: print(text, file=sys.stderr),
                             trust_code=args.trust_code)
        for note in export["notes"]:
            print(f"jaxreg: warning: {note}", file=sys.stderr)
        print(f"exported: {args.export} (params of {len(export['seeds'])} seeds; jaxreg.load_best"
              f"({str(args.export)!r}) rebuilds the model)")


def _predict(args) -> None:
    import csv
    import io

    import numpy as np

    from jaxreg.data import read_features
    from jaxreg.report.files import atomic_write
    from jaxreg.report.summary import csv_value
    from jaxreg.sweeps.best import load_best
    from jaxreg.sweeps.trained import _loss

    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out: expected a file path, got {str(out)!r} (a folder)")
    best = load_best(args.source, seed=args.seed, log=lambda text: print(text, file=sys.stderr),
                     trust_code=args.trust_code)
    data = best.info["data"]
    x, y = read_features(args.data, data)
    predicted = best.predict(x)
    names = data.get("classes") or list(range(data["num_classes"] or 0))
    probabilities = best.predict_proba(x) if names and _loss(best.info) in ("cross_entropy", "bce") else None
    values = predicted.reshape(len(predicted), -1)
    header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{i}" for i in range(values.shape[1])]
    header += [f"p_{name}" for name in names] if probabilities is not None else []
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(values.tolist()):
        writer.writerow([csv_value(v) for v in row]
                        + ([csv_value(float(p)) for p in probabilities[i]] if probabilities is not None else []))
    atomic_write(out, text.getvalue())
    scored = ""
    if y is not None and len(y) and np.size(y) == values.size:  # an .npz's y may be anything
        if names:
            numbers = np.asarray(y).dtype.kind in "biuf" and predicted.dtype.kind in "biuf"  # 3.0 is class 3
            right = (np.asarray(y, np.float64) == predicted) if numbers else (np.asarray(y).astype(str) == predicted.astype(str))
            scored = f"; accuracy {float(np.mean(right)):.4g} against the file's targets"
        elif np.asarray(y).dtype.kind in "iuf":
            error = np.asarray(y, np.float64).reshape(values.shape) - values
            scored = f"; mean squared error {float(np.mean(error ** 2)):.4g} against the file's targets"
    print(f"predicted {len(values)} row{'s' * (len(values) != 1)} of {args.data} with best config "
          f"{best.info['config_id']} (seed {best.seed}){scored}: {out}")


def _compare(args) -> None:
    from jaxreg.report.compare import compare

    for path in compare(args.dir, args.out):
        print(path)


def _export(args) -> None:
    from jaxreg.report import exports

    if args.target == "optuna":
        try:  # not Optuna's "study created" lines: this command's say what it did
            import optuna
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        except ImportError:
            optuna = None  # export_optuna says which extra to install
        try:
            done = exports.export_optuna(args.dir, args.storage)
        finally:
            if optuna is not None:
                optuna.logging.set_verbosity(verbosity)
        for name, added, held in done:
            print(f"study {name!r} in {args.storage}: {added} trials added, {held} already there")
    elif args.target == "mlflow":
        uri = args.tracking_uri or exports.default_tracking_uri()
        parent, added, held = exports.export_mlflow(args.dir, uri)
        print(f"{uri}: sweep run {parent}: {added} config runs added, {held} already there")
    else:
        root = exports.export_tensorboard(args.dir, args.logdir)
        print(f"{root}: a session per config (tensorboard --logdir {root})")


def _report(args) -> None:
    from jaxreg.report.html import write_report

    print(write_report(args.dir, args.out))


def _start_ray(argv: list[str] | None) -> dict | None:
    """Starts Ray for ``jaxreg run ... --ray [ADDRESS]`` before anything imports JAX; None for
    any other command line (a command line that does not parse is left to the parser)."""
    words = sys.argv[1:] if argv is None else list(argv)
    if not words or words[0] != "run" or not any(w == "--ray" or w.startswith("--ray=") for w in words):
        return None
    try:
        args = _parser().parse_args(words)
    except SystemExit:
        return None
    if args.ray is None:
        return None
    from jaxreg.cluster import start

    return start(args.ray)


def enable_compilation_cache() -> str | None:
    """Turns on JAX's persistent compilation cache, so a rerun loads its programs from disk.

    The folder is ``$JAXREG_CACHE_DIR``, else ``~/.cache/jaxreg/xla``; ``JAXREG_CACHE_DIR=off``
    turns it off. A cached program is the same executable, so results do not change.
    """
    from jaxreg.sweeps.cost import cache_folder

    where = cache_folder()
    if where is None:
        return None
    where = str(where)
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return where


_SIGNALS: list[int] = []  # the signals that interrupted this command


def _interrupt(signum, frame):
    """SIGINT and SIGTERM alike: end the command now, with one line (:func:`_interrupted_exit`).

    Nothing is unwound: an exception raised at an arbitrary moment can land inside JAX's own
    import or a garbage-collection callback (which swallows it, so training would go on) or
    leave a C extension half-initialised (a crash). Ending at once is safe for the results
    folder, because every file in it is written atomically or appended as whole lines: what a
    write in flight leaves (a temporary, a torn last journal line) the next run removes.
    """
    _SIGNALS.append(signum)
    _interrupted_exit()


_RUNNING: list = []  # the progress of the sweep this command runs: what a Ctrl-C says was kept


def _interrupted_exit() -> int:
    """One line saying what was kept, then the shell's code for the signal (130, 143).

    The process ends with ``os._exit``: XLA may still be compiling on its own threads, and
    tearing the interpreter down under them can crash; the journal is already on disk.
    """
    signum = _SIGNALS[-1] if _SIGNALS else signal.SIGINT
    try:  # the handler must never raise
        kept = _RUNNING[-1].kept() if _RUNNING else "nothing was trained yet"
    except Exception:
        kept = "nothing was trained yet"
    print(f"jaxreg: interrupted ({signal.Signals(signum).name}); {kept}: rerun the same command "
          f"to resume", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the command line: a caller's main([...]) keeps its own signal handling
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
    ray_cluster = None
    try:
        ray_cluster = _start_ray(argv)  # before JAX loads (see jaxreg.cluster)
        from jaxreg.data import DatasetError  # NumPy loads here: a Ctrl-C is already ours
    except InputError as error:
        print(f"jaxreg: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if argv is None:
            _interrupted_exit()
        raise
    try:
        args = _parser().parse_args(argv)
        args.ray_cluster = ray_cluster
        if args.command in ("run", "plan", "sanity", "lr-find"):  # a bad spec is refused before JAX loads
            from jaxreg.sweeps.spec import check_spec, read_spec
            args.raw = read_spec(args.spec, args.set)  # read once: the command builds this
            check_spec(args.raw, Path(args.spec).stem)
        if argv is None and args.command in ("run", "plot", "best", "predict", "sanity", "lr-find"):  # the command line, not a caller's main([...])
            cache = enable_compilation_cache()
            if cache:
                os.environ["JAXREG_CACHE_DIR_USED"] = cache  # Ray workers share it
        code = {"run": _run, "plan": _plan, "show": _show, "plot": _plot, "best": _best, "predict": _predict,
                "sanity": _sanity,
                "lr-find": _lr_find,
                "compare": _compare, "report": _report, "export": _export}[args.command](args)
        if code:
            return code
    except (InputError, DatasetError) as error:
        print(f"jaxreg: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # an unwritable --out, a full disk, a name too long: the system's word
        where = f"{error.filename}: " if error.filename else ""
        print(f"jaxreg: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if argv is None:
            _interrupted_exit()
        print("jaxreg: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if _SIGNALS and argv is None:  # a signal whose KeyboardInterrupt a callback swallowed
        _interrupted_exit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
