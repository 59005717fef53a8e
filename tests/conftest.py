"""Fixtures shared by the model, loss and regularizer tests.

Compiling dominates the run time on a small CPU, so the tiny training models used by
test_models.py and test_common.py are compiled once per session: rates are traced
per-layer vectors, so one trace serves every rate either file tries. Their layers are shaped
alike (batch 8, width 8: every dense mask is 8x8, the CNN flattens to 8 features) because
eager calls compile jax.random's sampler once per shape, at ~0.5 s a shape.

``mnist_dir`` finds real MNIST where jaxreg's own setting points (``$JAXREG_DATA_DIR``), else
in ``../shared/data`` next to the repository, and skips naming every folder it searched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

# XLA's default LLVM level (3) doubles the compile time that dominates these tests on a small CPU
# (a training program of test_train.py: 128 s of CPU for three tests at level 3, 65 s at level 2),
# and level 2 gives bitwise the same results here: the committed experiment numbers and the
# eager == jit checks still hold. Set before JAX starts its backend, so every in-process program and
# every `jaxreg` process a test starts (they inherit the environment) compiles at level 2; a level
# already given in $XLA_FLAGS is kept.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(["--xla_backend_optimization_level=2", os.environ.get("XLA_FLAGS", "")]).strip()

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg

# The tiers, by folder: unit/ (a module's own tests), sweeps/ (in-process sweeps on small folders),
# e2e/ (whatever starts a jaxreg process, a server or a browser, or sends a signal), experiments/
# (the reproductions). Each test is marked with its folder's tier; a test elsewhere that starts a
# process is marked e2e too, so `pytest -m "not e2e and not experiment"` runs no process at all.
TESTS = Path(__file__).resolve().parent
TIERS = {"unit": "unit", "sweeps": "sweeps", "e2e": "e2e", "experiments": "experiment"}
PROCESS = ("subprocess.", "Popen(", "os.kill(", ".send_signal(", "run_cli_process(")
for _folder in (TESTS, *(TESTS / name for name in TIERS)):  # shared helpers import across tiers
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))


def _source(function) -> str:
    import inspect

    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _starts_a_process(item) -> bool:
    """Whether the test's code, or a function of its module that it calls, starts a process."""
    import inspect

    source = _source(getattr(item, "function", None))
    module = getattr(item, "module", None)
    helpers = [name for name, f in inspect.getmembers(module, inspect.isfunction)
               if f.__module__ == module.__name__ and not name.startswith("test_")
               and any(token in _source(f) for token in PROCESS)] if module is not None else []
    return any(token in source for token in PROCESS) or any(f"{name}(" in source for name in helpers)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    for item in items:
        # One worker trains the session's shared sweep and runs every test that reads it.
        if "cases_folder" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("cases_folder"))
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS.parent).parts
        tier = TIERS.get(parts[1]) if len(parts) > 2 and parts[0] == "tests" else None
        if tier is not None:
            item.add_marker(tier)
        if tier != "e2e" and _starts_a_process(item):
            item.add_marker("e2e")


# `jaxreg` commands run by the tests share one persistent compilation cache, new for each test
# session: equal programs compile once across the subprocesses of a run, and no test reads a
# program cached by another run. (In-process calls of cli.main([...]) leave the cache off, so
# the tests that count compilations count real ones.)
# Under pytest-xdist the workers inherit the folder their controller made, so they share it too.
if not (os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("JAXREG_TEST_SESSION_CACHE")):
    os.environ["JAXREG_TEST_SESSION_CACHE"] = tempfile.mkdtemp(prefix="jaxreg-test-xla-")
os.environ["JAXREG_CACHE_DIR"] = os.environ["JAXREG_TEST_SESSION_CACHE"]

# The tiny models' own option, kept so a run with another $XLA_FLAGS level still compiles them fast.
FAST_COMPILE = {"xla_backend_optimization_level": 2}


@pytest.fixture
def x64():
    """Float64 for oracle tests; the config is restored when the test ends, even on failure."""
    with jax.enable_x64(True):
        yield


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mnist_roots() -> list[Path]:
    """Where the tests look for MNIST, in order: ``$JAXREG_DATA_DIR``, then ``../shared/data``."""
    env = os.environ.get("JAXREG_DATA_DIR")
    return ([Path(env).expanduser()] if env else []) + [SHARED_DATA]


def find_mnist() -> Path | None:
    """The first folder holding all four MNIST files (raw or ``.gz``), searched as jaxreg does:
    ``ROOT/mnist/`` then ``ROOT/`` for each root of :func:`mnist_roots`."""
    for root in mnist_roots():
        for folder in (root / "mnist", root):
            if all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in MNIST_FILES):
                return folder
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding real MNIST; skips, naming the folders searched, when there is none.

    Session-scoped so it reads ``$JAXREG_DATA_DIR`` before any function-scoped fixture
    (test_data.py's ``isolated``) removes it.
    """
    folder = find_mnist()
    if folder is None:
        env = os.environ.get("JAXREG_DATA_DIR")
        searched = ", ".join(str(f) for root in mnist_roots() for f in (root / "mnist", root))
        pytest.skip(f"real MNIST not found: JAXREG_DATA_DIR is {env or 'unset'}; looked for "
                    f"{', '.join(MNIST_FILES)} (raw or .gz) in {searched}")
    return folder


class Tiny(NamedTuple):
    net: jaxreg.Model
    params: Any  # float32, drawn in NumPy with nonzero biases: init is tested on its own
    x: jax.Array
    train: Any  # jitted training-mode logits of (params, x, key, dropout[num_dropout], dropconnect[num_dropconnect])
    train_keys: Any  # the same, vmapped over a batch of keys
    traces: list  # traces[0] counts how often `train` was traced


def _tiny(net, x, seed) -> Tiny:
    rng = np.random.default_rng(seed)
    params_shape, state_shape = jax.eval_shape(net.init, jax.random.key(0))
    assert state_shape == {}  # jaxreg's own models keep no state: apply gets {}
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(0.0, 0.5, p.shape), jnp.float32),
                                    params_shape)
    traces = [0]

    def train(params, x, key, dropout, dropconnect):
        traces[0] += 1  # runs only while tracing
        return net.apply(params, {}, x, key=key, train=True, dropout=dropout, dropconnect=dropconnect)[0]

    def plain(params, x, key, dropout, dropconnect):
        return net.apply(params, {}, x, key=key, train=True, dropout=dropout, dropconnect=dropconnect)[0]

    return Tiny(net, params, x, jax.jit(train, compiler_options=FAST_COMPILE),
                jax.jit(jax.vmap(plain, in_axes=(None, None, 0, None, None)), compiler_options=FAST_COMPILE),
                traces)


@pytest.fixture(scope="session")
def tiny_mlp() -> Tiny:
    x = np.random.default_rng(0).uniform(0.5, 2.0, (8, 8))
    return _tiny(jaxreg.mlp((8, 8, 8, 8), activation="tanh"), jnp.asarray(x, jnp.float32), seed=1)


@pytest.fixture(scope="session")
def tiny_cnn() -> Tiny:
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 1))
    return _tiny(jaxreg.cnn((4, 4, 1), 8, channels=(2,), hidden=(8,)), jnp.asarray(x, jnp.float32), seed=2)
