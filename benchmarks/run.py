"""Benchmark: jaxreg's performance workloads side by side with their peers, in one run.

Every number is measured in this process tree, in this run, so the ratios compare like with
like on whatever machine runs it (never compare absolute times across machines):

* machine: a float32 2048x2048 matmul in JAX (the matmul rate), memory bandwidth (a large
  elementwise update), and the three batched products of a 2-64-128-1 step at 64 members
  (forward, weight gradient, input gradient): the kernels a sweep of that network is made of.
* notebook: the notebook's 2-D experiment (2-64-128-1, batch 16, EMA momentum, lr decay,
  validation loss on 100 points every epoch: ``train.metrics = ["val_loss"]``, what the peers
  compute; once more with every metric), a 16 x 16 grid of learning rate x l2, one seed,
  through ``jaxreg run`` in a fresh process, compile included (persistent compilation cache
  off); against the notebook's NumPy loop (one config), PyTorch eager (one config, one thread)
  and PyTorch training all 256 members at once with ``baddbmm``.
* scaling: microseconds per member-step of the same network against members per compiled
  batch (1 = plain ``jit``), jaxreg and PyTorch batched; plotted.
* book: Grokking Deep Learning ch. 8 experiment 1 (784-40-10, per-example SGD on 1000 MNIST
  images, the 10,000 test images every 10th epoch), one config, float32 and float64, against
  the book's NumPy code in the same dtype.
* compile: XLA compile seconds of the notebook program, and the compilations of a
  coarse-to-fine sweep's later rounds (there should be none).
* memory (``--rss``): peak RSS of ``jaxreg run`` on 4096 configs of the notebook workload.

Prints a table and ends with one JSON line: the ratios and whether each target is met.
``--write`` also updates ``benchmarks/RESULTS.md`` and ``benchmarks/scaling.png``.

    python benchmarks/run.py [--epochs 2000] [--repeats 3] [--rss] [--write]
    python benchmarks/run.py --quick          # a smoke run: few epochs, one repeat

PyTorch is optional (``pip install -e '.[bench]'``); without it its columns are skipped. The
book workload uses MNIST when ``JAXREG_DATA_DIR`` (or ``~/.cache/jaxreg/mnist``) has it, else
random images of the same shape (the cost does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402

import jaxreg  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPE = peers.SHAPE
N_TRAIN, N_VAL = 100, 100  # the notebook's 100 points; 100 validation points
GRID = 16  # learning rates x l2 values: 256 configs
LEARNING_RATES = np.geomspace(0.01, 1.0, GRID)
L2S = np.concatenate([[0.0], np.geomspace(1e-5, 1e-1, GRID - 1)])
TARGETS = {  # name: (comparison, bound)
    "notebook: useful FLOP/s / matmul rate": (">=", 0.35),
    "notebook: NumPy one config / jaxreg per trial": (">=", 20.0),
    "notebook: PyTorch batched per member / jaxreg per trial": (">=", 3.0),
    "scaling: per member-step at 256 / at 1": ("<=", 1 / 3),
    "book float32: NumPy / jaxreg per epoch": (">=", 3.0),
    "book float64: NumPy / jaxreg per epoch": (">=", 1.0),
    "compile: seconds of the notebook program": ("<=", 10.0),
    "compile: programs compiled after a coarse-to-fine round 1": ("<=", 0),
    "memory: peak RSS GiB of 4096 configs": ("<=", 2.0),
}


COMPILES: list[float] = []  # seconds of every XLA compilation since it was last cleared
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **_: COMPILES.append(seconds) if event.endswith("backend_compile_duration") else None)


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times, out


def stats(times) -> dict:
    return {"min": min(times), "median": statistics.median(times), "max": max(times)}


def step_flops(n: int) -> float:
    """Forward and backward products of one step of ``n`` examples (backward = 2 x forward)."""
    return 3 * forward_flops(n)


def forward_flops(n: int) -> float:
    return 2.0 * n * sum(a * b for a, b in zip(SHAPE[:-1], SHAPE[1:]))


def notebook_flops(epochs: int) -> float:
    """Useful FLOPs of one member of the notebook workload: every step's products and the
    validation forward pass each epoch (jaxreg's extra train-split evaluation is not counted)."""
    return epochs * (step_flops(N_TRAIN) + forward_flops(N_VAL))


# ------------------------------------------------------------------------------------ machine

def machine(repeats: int) -> dict:
    rng = np.random.RandomState(0)
    a = jnp.asarray(rng.randn(2048, 2048), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(a))
    t, _ = timed(lambda: matmul(a), max(repeats, 5))
    big = jnp.asarray(rng.randn(2**25), jnp.float32)  # 128 MiB
    axpy = jax.jit(lambda x: x * 0.5 + 1.0)
    jax.block_until_ready(axpy(big))
    tb, _ = timed(lambda: axpy(big), max(repeats, 5))
    out = {"matmul GFLOP/s": 2 * 2048**3 / min(t) / 1e9, "memory GB/s": 2 * big.nbytes / min(tb) / 1e9}
    m, n = 64, 16
    x = jnp.asarray(rng.randn(m, n, 64), jnp.float32)
    w = jnp.asarray(rng.randn(m, 64, 128), jnp.float32)
    d = jnp.asarray(rng.randn(m, n, 128), jnp.float32)
    for name, fn, args in (("forward", lambda x, w: jnp.einsum("mbi,mij->mbj", x, w), (x, w)),
                           ("weight gradient", lambda x, d: jnp.einsum("mbi,mbj->mij", x, d), (x, d)),
                           ("input gradient", lambda d, w: jnp.einsum("mbj,mij->mbi", d, w), (d, w))):
        f = jax.jit(fn)
        jax.block_until_ready(f(*args))
        tk, _ = timed(lambda: f(*args), max(repeats, 20))
        out[f"64 x (16x64 @ 64x128) {name} GFLOP/s"] = 2 * m * n * 64 * 128 / min(tk) / 1e9
    return out


# ----------------------------------------------------------------------------------- notebook

def notebook_spec(epochs: int, grid: int = GRID, metrics: str = 'metrics = ["val_loss"]') -> str:
    lrs = ", ".join(f"{v:.6g}" for v in np.geomspace(0.01, 1.0, grid))
    l2s = ", ".join(f"{v:.6g}" for v in np.concatenate([[0.0], np.geomspace(1e-5, 1e-1, grid - 1)]))
    return textwrap.dedent(f"""\
        name = "bench-notebook"
        [data]
        dataset = "blobs"
        n_val = {N_VAL}
        n_test = 100
        [model]
        hidden = [64, 128]
        output = "sigmoid"
        [train]
        loss = "bce"
        optimizer = "ema_momentum"
        batch_size = 16
        shuffle = false
        epochs = {epochs}
        eval_every = 1
        {metrics}
        [hparams]
        learning_rate = {{ values = [{lrs}] }}
        l2 = {{ values = [{l2s}] }}
        lr_decay = 0.0005
        momentum = 0.9
        [search]
        seeds = 1
        [output]
        plots = false
        """)


def jaxreg_run(spec_text: str, folder: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``jaxreg run`` on ``spec_text`` in a fresh process."""
    spec = folder / "spec.toml"
    spec.write_text(spec_text)
    env = dict(os.environ, JAXREG_CACHE_DIR="off")
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "jaxreg", "run", str(spec),
                          "--out", str(folder / "out"), "--overwrite", "--quiet"],
                         env=env, check=True, capture_output=True, text=True)
    seconds, rss_kib = out.stdout.split()
    return float(seconds), int(rss_kib) / 2**20


def notebook(epochs: int, repeats: int, have_torch: bool) -> dict:
    ds = jaxreg.data.load("blobs", n_val=N_VAL, n_test=100)
    x, y = np.asarray(ds.train.x, np.float64), np.asarray(ds.train.y)
    xv, yv = np.asarray(ds.val.x, np.float64), np.asarray(ds.val.y)
    out = {"epochs": epochs, "configs": GRID * GRID}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [jaxreg_run(notebook_spec(epochs), Path(tmp)) for _ in range(repeats)]
        journal = [json.loads(line) for line in (Path(tmp) / "out" / "trials.jsonl").read_text().splitlines()]
    finite = sum(np.isfinite(r["metrics"]["val_loss"]) for r in journal)
    out["jaxreg run s"] = stats([s for s, _ in runs])
    out["jaxreg per trial s"] = stats([s / (GRID * GRID) for s, _ in runs])
    out["jaxreg trials with a finite val_loss"] = f"{finite}/{len(journal)}"
    with tempfile.TemporaryDirectory() as tmp:  # every metric, as a sweep records by default: once
        seconds, _ = jaxreg_run(notebook_spec(epochs, metrics=""), Path(tmp))
    out["jaxreg run, every metric s"] = seconds
    t, (costs, _) = timed(lambda: peers.numpy_notebook(x, y, xv, yv, epochs), repeats)
    out["NumPy one config s"] = stats(t)
    out["NumPy final val cost"] = float(costs[-1])
    if have_torch:
        t, losses = timed(lambda: peers.torch_notebook(x, y, xv, yv, epochs, [0.1], [0.0]), repeats)
        out["PyTorch eager one config s"] = stats(t)
        out["PyTorch final val loss"] = float(losses[-1, 0])
        lrs, l2s = np.meshgrid(LEARNING_RATES, L2S, indexing="ij")
        t, losses = timed(lambda: peers.torch_notebook(x, y, xv, yv, epochs, lrs.ravel(), l2s.ravel(),
                                                         threads=os.cpu_count()), repeats)
        out["PyTorch batched 256 s"] = stats(t)
        out["PyTorch batched per member s"] = stats([s / (GRID * GRID) for s in t])
    return out


# ------------------------------------------------------------------------------------ scaling

def scaling(sizes, epochs: int, repeats: int, have_torch: bool) -> dict:
    ds = jaxreg.data.load("blobs", n_val=N_VAL, n_test=100)
    data = jaxreg.as_data(ds)
    net = jaxreg.mlp(SHAPE, output="sigmoid")
    config = jaxreg.TrainConfig(model=net, loss="bce", optimizer="ema_momentum", epochs=epochs, batch_size=16,
                                shuffle=False, dropout=False, monitor="val_loss", penalties=("l2",))
    steps = epochs * -(-N_TRAIN // 16)
    out = {"epochs": epochs, "jaxreg us per member-step": {}, "PyTorch batched us per member-step": {}}
    compiles = COMPILES
    for size in sizes:
        hps = [jaxreg.make_hparams(net, learning_rate=float(LEARNING_RATES[i % GRID]), l2=float(L2S[i // GRID % GRID]),
                                   lr_decay=0.0005, momentum=0.9) for i in range(size)]
        if size == 1:
            train = jax.jit(jaxreg.make_train(config))
            run = lambda: train(jaxreg.member_key(0), hps[0], data, None)
        else:
            batch = jaxreg.train_batch(config, data, chunk_size=size)
            stacked = jaxreg.stack_hparams(hps)
            run = lambda: batch(np.arange(size), stacked)
        del compiles[:]
        jax.block_until_ready(run())
        if size == 64:
            out["compile s at 64 members"] = sum(compiles)
        t, _ = timed(run, repeats)
        out["jaxreg us per member-step"][size] = min(t) / size / steps * 1e6
        if have_torch:
            xs = (np.asarray(ds.train.x), np.asarray(ds.train.y), np.asarray(ds.val.x), np.asarray(ds.val.y))
            lrs = np.resize(LEARNING_RATES, size)
            t, _ = timed(lambda: peers.torch_notebook(*xs, epochs, lrs, np.zeros(size), threads=os.cpu_count()),
                         repeats)
            out["PyTorch batched us per member-step"][size] = min(t) / size / steps * 1e6
        print(f"  scaling: {size} members: jaxreg {out['jaxreg us per member-step'][size]:.1f} us per member-step",
              file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------------------- book

def book_data():
    try:
        ds = jaxreg.data.load("mnist", n_train=1000, n_val=0, n_test=10000)
        return ds, "MNIST"
    except Exception:  # no MNIST here: random images of the same shape cost the same
        rng = np.random.RandomState(0)
        split = lambda n: jaxreg.data.Split(rng.rand(n, 784).astype(np.float32), rng.randint(0, 10, n).astype(np.int32))
        return jaxreg.data.Dataset(split(1000), split(0), split(10000), {}), "random images (no MNIST found)"


def book(epochs: int, repeats: int) -> dict:
    ds, source = book_data()
    one_hot = lambda y: np.eye(10)[np.asarray(y)]
    out = {"epochs": epochs, "data": source}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            net = jaxreg.mlp((784, 40, 10), bias=False, dtype=dtype)
            config = jaxreg.TrainConfig(model=net, loss="sum_squared_error", optimizer="sgd", epochs=epochs,
                                        batch_size=1, shuffle=False, eval_every=10, eval_test=True,
                                        monitor="train_loss", dropout=False, penalties=())
            data = jaxreg.as_data(jaxreg.data.Dataset(
                *(jaxreg.data.Split(np.asarray(s.x, dtype), s.y) for s in (ds.train, ds.val, ds.test)), ds.info))
            hp = jaxreg.make_hparams(net, learning_rate=0.0025)
            train = jax.jit(jaxreg.make_train(config))
            key = jaxreg.member_key(0)
            jax.block_until_ready(train(key, hp, data, None))
            t, result = timed(lambda: train(key, hp, data, None), repeats)
            out[f"jaxreg {dtype} ms per epoch"] = stats([s / epochs * 1e3 for s in t])
            out[f"jaxreg {dtype} final test loss"] = float(result.curves["test_loss"][-1])
        t, history = timed(lambda: peers.numpy_book(np.asarray(ds.train.x), one_hot(ds.train.y), np.asarray(ds.test.x),
                                                     one_hot(ds.test.y), epochs, dtype=np.dtype(dtype).type),
                           repeats)
        out[f"NumPy {dtype} ms per epoch"] = stats([s / epochs * 1e3 for s in t])
        out[f"NumPy {dtype} final test error"] = float(history[-1][3])
    return out


# ------------------------------------------------------------------------------------ compile

def forget_programs() -> None:
    """Drops every compiled program of this process (jaxreg's memos and JAX's caches)."""
    import jaxreg.batch

    jaxreg.batch.compiled_members.cache_clear()
    jaxreg.batch.compiled_segments.cache_clear()
    jaxreg.batch._EXECUTABLES.clear()
    jax.clear_caches()


def recompiles() -> dict:
    """Backend compilations of a coarse-to-fine sweep with 3 rounds against the same with 1."""
    from jaxreg.sweeps import build_spec, run_sweep

    counts, events = {}, COMPILES
    for rounds in (1, 3):
        spec = build_spec({
            "name": f"c2f-{rounds}", "data": {"dataset": "blobs", "n_val": 100},
            "model": {"hidden": [64, 128], "output": "sigmoid"},
            "train": {"loss": "bce", "optimizer": "ema_momentum", "epochs": 20, "batch_size": 16},
            "hparams": {"learning_rate": {"log_uniform": [0.01, 1.0]}, "l2": {"log_uniform": [1e-5, 1e-1]}},
            "search": {"method": "coarse_to_fine", "rounds": rounds, "samples": 16, "seeds": 2, "seed": 0},
            "output": {"plots": False}})
        forget_programs()
        del events[:]
        with tempfile.TemporaryDirectory() as tmp:
            run_sweep(spec, tmp, progress=False)
        counts[rounds] = len(events)
    return {"compilations, 1 round": counts[1], "compilations, 3 rounds": counts[3],
            "after round 1": counts[3] - counts[1]}


# ---------------------------------------------------------------------------------- reporting

def ratios(results: dict) -> dict:
    r, m, nb, sc, bk = {}, results["machine"], results["notebook"], results["scaling"], results["book"]
    per_trial = nb["jaxreg per trial s"]["median"]
    r["notebook: useful FLOP/s / matmul rate"] = notebook_flops(nb["epochs"]) / per_trial / 1e9 / m["matmul GFLOP/s"]
    r["notebook: NumPy one config / jaxreg per trial"] = nb["NumPy one config s"]["median"] / per_trial
    if "PyTorch batched per member s" in nb:
        r["notebook: PyTorch batched per member / jaxreg per trial"] = nb["PyTorch batched per member s"]["median"] / per_trial
        r["notebook: PyTorch eager one config / jaxreg per trial"] = nb["PyTorch eager one config s"]["median"] / per_trial
    us = sc["jaxreg us per member-step"]
    if 256 in us and 1 in us:
        r["scaling: per member-step at 256 / at 1"] = us[256] / us[1]
    for dtype in ("float32", "float64"):
        r[f"book {dtype}: NumPy / jaxreg per epoch"] = (bk[f"NumPy {dtype} ms per epoch"]["median"]
                                                        / bk[f"jaxreg {dtype} ms per epoch"]["median"])
    if "compile s at 64 members" in sc:
        r["compile: seconds of the notebook program"] = sc["compile s at 64 members"]
    r["compile: programs compiled after a coarse-to-fine round 1"] = results["compile"]["after round 1"]
    if "memory" in results:
        r["memory: peak RSS GiB of 4096 configs"] = results["memory"]["peak RSS GiB"]
    return r


def verdicts(r: dict) -> dict:
    out = {}
    for name, (op, bound) in TARGETS.items():
        if name in r:
            out[name] = {"value": round(r[name], 4), "target": f"{op} {bound:.4g}",
                         "met": r[name] >= bound if op == ">=" else r[name] <= bound}
    return out


def plot(scaling_result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, style in (("jaxreg us per member-step", "o-"), ("PyTorch batched us per member-step", "s--")):
        points = scaling_result.get(name) or {}
        if points:
            sizes = sorted(points)
            ax.plot(sizes, [points[s] for s in sizes], style, label=name.replace(" us per member-step", ""))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("members per compiled batch")
    ax.set_ylabel("microseconds per member-step")
    ax.set_title("2-64-128-1, batch 16, EMA momentum: cost per member-step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)


def markdown(results: dict, r: dict, v: dict, command: str) -> str:
    m, nb, sc, bk = results["machine"], results["notebook"], results["scaling"], results["book"]
    fmt = lambda s, k=1: f"{s['min'] * k:.3g} / {s['median'] * k:.3g} / {s['max'] * k:.3g}"
    lines = ["# Benchmark results", "",
             f"Written by `{command}` on {results['when']} ({results['platform']}, {results['cpus']} CPUs, "
             f"jax {jax.__version__}, jaxlib {results['jaxlib']}{', torch ' + results['torch'] if results['torch'] else ''}). "
             "Times are min / median / max of the repeats; ratios use medians. Rerun it: the numbers of another "
             "machine are its own.", "",
             "## Machine, measured in the same run", "",
             "| what | value |", "|---|---|"]
    lines += [f"| {k} | {val:.1f} |" for k, val in m.items()]
    lines += ["", f"## Notebook 2-D workload, {nb['configs']} configs, {nb['epochs']} epochs", "",
              "| run | seconds | per config |", "|---|---|---|",
              f"| jaxreg run, whole sweep (fresh process, compile included; `train.metrics = [\"val_loss\"]`) | "
              f"{fmt(nb['jaxreg run s'])} | {nb['jaxreg per trial s']['median']:.4f} |",
              f"| the same, every metric (train and validation loss and accuracy, running epoch loss, weight "
              f"metrics), one run | {nb['jaxreg run, every metric s']:.3g} | "
              f"{nb['jaxreg run, every metric s'] / nb['configs']:.4f} |",
              f"| NumPy loop (the notebook's), one config | {fmt(nb['NumPy one config s'])} | {nb['NumPy one config s']['median']:.4f} |"]
    if "PyTorch batched 256 s" in nb:
        lines += [f"| PyTorch eager, one config, 1 thread | {fmt(nb['PyTorch eager one config s'])} | "
                  f"{nb['PyTorch eager one config s']['median']:.4f} |",
                  f"| PyTorch batched (baddbmm), 256 configs | {fmt(nb['PyTorch batched 256 s'])} | "
                  f"{nb['PyTorch batched per member s']['median']:.4f} |"]
    lines += ["", f"Useful work: {notebook_flops(nb['epochs']) / 1e9:.2f} GFLOP per config (every step's forward and "
              "backward products, the validation forward pass each epoch).", "",
              f"## Members per compiled batch ({sc['epochs']} epochs; microseconds per member-step)", "",
              "| members | " + " | ".join(str(s) for s in sorted(sc["jaxreg us per member-step"])) + " |",
              "|---|" + "---|" * len(sc["jaxreg us per member-step"]),
              "| jaxreg | " + " | ".join(f"{sc['jaxreg us per member-step'][s]:.1f}" for s in sorted(sc["jaxreg us per member-step"])) + " |"]
    if sc["PyTorch batched us per member-step"]:
        lines.append("| PyTorch batched | " + " | ".join(f"{sc['PyTorch batched us per member-step'][s]:.1f}"
                                                          for s in sorted(sc["PyTorch batched us per member-step"])) + " |")
    lines += ["", "![per member-step against members per batch](scaling.png)", "",
              f"## Book experiment 1, one config ({bk['epochs']} epochs, {bk['data']}; ms per epoch)", "",
              "| dtype | jaxreg | the book's NumPy code |", "|---|---|---|"]
    for dtype in ("float32", "float64"):
        lines.append(f"| {dtype} | {fmt(bk[f'jaxreg {dtype} ms per epoch'])} | {fmt(bk[f'NumPy {dtype} ms per epoch'])} |")
    lines += ["", "## Compile", "",
              f"Notebook program at 64 members: {sc.get('compile s at 64 members', float('nan')):.2f} s of XLA compilation. "
              f"A coarse-to-fine sweep compiled {results['compile']['compilations, 1 round']} programs with 1 round and "
              f"{results['compile']['compilations, 3 rounds']} with 3.", ""]
    if "memory" in results:
        mem = results["memory"]
        lines += ["## Memory", "", f"`jaxreg run` on {mem['configs']} configs of the notebook workload "
                  f"({mem['epochs']} epochs): peak RSS {mem['peak RSS GiB']:.2f} GiB, {mem['seconds']:.0f} s.", ""]
    lines += ["## Targets", "", "| target | value | bound | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {t['value']:.4g} | {t['target']} | {'yes' if t['met'] else '**no**'} |" for name, t in v.items()]
    lines += ["", "Other ratios: " + ", ".join(f"{k} {val:.3g}" for k, val in r.items() if k not in v), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000, help="epochs of the notebook workload")
    parser.add_argument("--book-epochs", type=int, default=20)
    parser.add_argument("--scaling-epochs", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="also run 4096 configs for the peak RSS")
    parser.add_argument("--rss-epochs", type=int, default=None, help="epochs of the 4096-config run (default: --epochs)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50 epochs, one repeat, sizes 1 4 16")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md and scaling.png")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.book_epochs, args.scaling_epochs, args.repeats = 50, 10, 5, 1
        args.sizes = [1, 4, 16]
    try:
        import torch
        torch_version = None if args.no_torch else torch.__version__
    except ImportError:
        torch_version = None
    have_torch = torch_version is not None
    import jaxlib

    results = {"when": time.strftime("%Y-%m-%d %H:%M"), "platform": platform.platform(), "cpus": os.cpu_count(),
               "jaxlib": jaxlib.__version__, "torch": torch_version, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
    steps = [("machine", lambda: machine(args.repeats)),
             ("scaling", lambda: scaling(args.sizes, args.scaling_epochs, args.repeats, have_torch)),
             ("book", lambda: book(args.book_epochs, args.repeats)),
             ("compile", recompiles),
             ("notebook", lambda: notebook(args.epochs, args.repeats, have_torch))]
    for name, fn in steps:
        start = time.perf_counter()
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = fn()
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if args.rss:
        epochs = args.rss_epochs or args.epochs
        with tempfile.TemporaryDirectory() as tmp:
            seconds, rss = jaxreg_run(notebook_spec(epochs, grid=64), Path(tmp))
        results["memory"] = {"configs": 4096, "epochs": epochs, "seconds": seconds, "peak RSS GiB": rss}
    r = ratios(results)
    v = verdicts(r)
    print(json.dumps(results, indent=1, default=str))
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    if args.write:
        (HERE / "RESULTS.md").write_text(markdown(results, r, v, command.strip()))
        plot(results["scaling"], HERE / "scaling.png")
    print(json.dumps({"ratios": {k: round(val, 4) for k, val in r.items()}, "targets": v}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
