"""Data sets as NumPy arrays: the notebook's 2-D blobs, scikit-learn's 8x8 digits, and MNIST.

``load(name, key=..., **options)`` returns a ``Dataset`` of float32 (or, with the option
``dtype="float64"``, float64) features and int32 labels
split into train, validation and test. Every random choice comes from ``key``, so the same key
gives the same arrays bit for bit. Options are checked before any file is read.

MNIST is looked for, file by file, in ``data_dir/mnist/``, ``data_dir/``,
``$JAXREG_DATA_DIR/mnist/``, ``$JAXREG_DATA_DIR/``, then the cache ``$JAXREG_CACHE_DIR/mnist/``
(``JAXREG_CACHE_DIR`` defaults to ``$XDG_CACHE_HOME/jaxreg``, i.e. ``~/.cache/jaxreg``), and
downloaded into the cache from ``MNIST_MIRRORS`` if missing. Each file may be gzipped
(``.gz``) or raw, and its decompressed content must match ``MNIST_SHA256`` wherever it was
found. Anything wrong with the files raises ``DatasetError``, an ``OSError``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

# Of the decompressed IDX files: the gzip wrappers differ between mirrors, the content doesn't.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_MNIST_TRAIN, _MNIST_TEST, _DIGITS_SIZE = 60_000, 10_000, 1797
_DOWNLOAD_TIMEOUT_S = 60.0


class DatasetError(OSError):
    """A data file is missing, unreadable, corrupt, or could not be downloaded."""


class Split(NamedTuple):
    """One split: ``x`` float32 of shape (n, *input_shape), ``y`` int32 labels of shape (n,)."""

    x: np.ndarray
    y: np.ndarray


class Dataset(NamedTuple):
    """Train, validation (possibly empty) and test splits, and a description in ``info``.

    ``info`` holds ``name``, ``num_classes``, ``input_shape`` (tuple), ``image_shape`` (tuple or
    None), ``source`` (a folder, ``"generated"`` or ``"scikit-learn"``), ``options`` (every
    option, defaults filled in) and ``key_data`` (the key's integers, or None if unused).
    """

    train: Split
    val: Split
    test: Split
    info: dict


_DEFAULTS: dict[str, dict[str, Any]] = {
    "blobs": {"n_val": 100, "n_test": 1000, "seed": 1234, "dtype": "float32"},
    "digits": {"val_fraction": 0.2, "test_fraction": 0.2, "n_train": None, "dtype": "float32"},
    "mnist": {"n_train": 1000, "n_val": 1000, "n_test": 10_000, "flatten": True,
              "download": True, "opener": None, "dtype": "float32"},
}


def load(name: str, *, key=None, data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """Loads a data set and splits it into train, validation and test.

    Args:
        name: ``"blobs"``, ``"digits"`` or ``"mnist"``.
        key: a jax PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``) or an integer
            seed, which stands for ``jax.random.key(seed)``. Required by ``digits``, and by
            ``mnist`` when ``n_val > 0``; ``blobs`` is seeded by its ``seed`` option instead.
        data_dir: a folder to search for MNIST before ``$JAXREG_DATA_DIR`` and the cache.
        **options: per data set (defaults in brackets):
            blobs: ``n_val`` [100], ``n_test`` [1000], ``seed`` [1234]. Train is the notebook's
                100 points; val and test are fresh draws from ``RandomState(seed + 1)`` and
                ``RandomState(seed + 2)``, rescaled with train's min and max.
            digits: ``val_fraction`` [0.2], ``test_fraction`` [0.2] (stratified), ``n_train``
                [None: all the rest; else a random subsample of that size].
            mnist: ``n_train`` [1000]: the first training images in file order; ``n_val``
                [1000]: drawn with ``key`` from the other training images; ``n_test``
                [10000]: the first test images; ``flatten`` [True]: (n, 784) rather than
                (n, 28, 28); ``download`` [True]; ``opener`` [None]: ``opener(url) -> bytes``,
                replacing the HTTP fetch.
            all: ``dtype`` ["float32"] or "float64": the features' type, computed in it (MNIST's
                float64 ``x / 255`` is the book's own arithmetic).

    Returns:
        A ``Dataset``; pixels are scaled to [0, 1].

    Raises:
        ValueError: unknown name or option, or a bad option value (before any I/O).
        DatasetError: MNIST files missing and not downloadable, or corrupt.
    """
    if name not in _DEFAULTS:
        raise ValueError(f"dataset: expected one of {_quoted(_DEFAULTS)}, got {name!r}")
    defaults = _DEFAULTS[name]
    for option in options:
        if option not in defaults:
            raise ValueError(f"option: expected one of {_quoted(sorted(defaults))} for dataset"
                             f" {name!r}, got {option!r}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise ValueError(f"data_dir: expected a path or None, got {data_dir!r}")
    key_data = _key_data(key)
    opts = {**defaults, **options}
    loader = {"blobs": _load_blobs, "digits": _load_digits, "mnist": _load_mnist}[name]
    return loader(opts, key_data, data_dir)


def _quoted(names) -> str:
    return ", ".join(repr(n) for n in names)


def _check_int(name: str, value, low: int, high: int) -> int:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not (is_int and low <= value <= high):
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _check_dtype(value) -> np.dtype:
    if value not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {value!r}")
    return np.dtype(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _key_data(key) -> list[int] | None:
    """The integers inside a jax PRNG key (or ``jax.random.key(seed)`` for an int seed)."""
    if key is None:
        return None
    import jax  # only here: NumPy is all the rest of this module needs

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < 2**32:
        key = jax.random.key(int(key))
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == np.uint32 and np.shape(key) in ((2,), (4,))  # threefry or rbg raw keys
    if not (typed and np.ndim(key) == 0 or raw):
        given = repr(key) if dtype is None else f"an array of shape {np.shape(key)}, dtype {dtype}"
        raise ValueError("key: expected a single jax PRNG key or an integer seed in"
                         f" [0, {2**32 - 1}], got {given}")
    return np.asarray(jax.random.key_data(key)).ravel().tolist()


def _rng(key_data: list[int] | None, name: str, why: str) -> np.random.Generator:
    if key_data is None:
        raise ValueError(f"key: expected a jax PRNG key or an integer seed ({name} {why}),"
                         " got None")
    return np.random.default_rng(key_data)


def _info(name, num_classes, input_shape, image_shape, source, opts, key_data) -> dict:
    return {"name": name, "num_classes": num_classes, "input_shape": tuple(input_shape),
            "image_shape": image_shape, "source": source, "key_data": key_data,
            "options": {k: v for k, v in opts.items() if k != "opener"}}


# ---------------------------------------------------------------------------------------------
# blobs


def _blobs_points(rs: np.random.RandomState, n: int) -> tuple[np.ndarray, np.ndarray]:
    # The notebook's generative process and draw order: for n = 100 the calls are identical.
    n0 = n // 2
    n1 = n - n0
    x0 = rs.normal(loc=[0, 0], scale=[2, 0.5], size=(n0, 2))
    x11 = rs.normal(loc=[1, 2], scale=[0.5, 1], size=(n1 - n1 // 2, 2))
    x12 = rs.normal(loc=[0, -2], scale=[0.5, 1], size=(n1 // 2, 2))
    x = np.vstack([x0, np.vstack([x11, x12])])
    y = np.concatenate([np.zeros(n0, np.int32), np.ones(n1, np.int32)])
    return x, y


def _load_blobs(opts: dict, key_data, data_dir) -> Dataset:
    n_val = _check_int("n_val", opts["n_val"], 0, 10**6)
    n_test = _check_int("n_test", opts["n_test"], 1, 10**6)
    seed = _check_int("seed", opts["seed"], 0, 2**32 - 3)  # seed + 2 must still be valid
    dtype = _check_dtype(opts["dtype"])

    train_rs = np.random.RandomState(seed)
    x, y = _blobs_points(train_rs, 100)
    lo, hi = x.min(axis=0), x.max(axis=0)

    def rescale_and_shuffle(rs: np.random.RandomState, points, labels) -> Split:
        scaled = 2 * ((points - lo) / (hi - lo)) - 1  # the notebook's float64 arithmetic
        order = rs.permutation(np.arange(len(labels)))
        return Split(scaled[order].astype(dtype), labels[order])

    def fresh(seed: int, n: int) -> Split:
        rs = np.random.RandomState(seed)
        return rescale_and_shuffle(rs, *_blobs_points(rs, n))

    train = rescale_and_shuffle(train_rs, x, y)
    info = _info("blobs", 2, (2,), None, "generated", opts, None)
    return Dataset(train, fresh(seed + 1, n_val), fresh(seed + 2, n_test), info)


# ---------------------------------------------------------------------------------------------
# digits


def _load_digits(opts: dict, key_data, data_dir) -> Dataset:
    val_fraction = _check_fraction("val_fraction", opts["val_fraction"], 1.0, None)
    n_val = round(val_fraction * _DIGITS_SIZE)
    test_fraction = _check_fraction("test_fraction", opts["test_fraction"], 1.0 - val_fraction,
                                    lambda f: _DIGITS_SIZE - n_val - round(f * _DIGITS_SIZE) >= 1)
    n_test = round(test_fraction * _DIGITS_SIZE)
    n_rest = _DIGITS_SIZE - n_val - n_test
    n_train = opts["n_train"]
    if n_train is not None:
        n_train = _check_int("n_train", n_train, 1, n_rest)
    dtype = _check_dtype(opts["dtype"])
    rng = _rng(key_data, "digits", "splits at random")

    from sklearn.datasets import load_digits  # imported late: it is slow and only digits needs it

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(dtype)  # pixels are counts 0..16
    y = bunch.target.astype(np.int32)

    # Sorting a random permutation by each example's rank within its class, as a fraction of
    # the class size, interleaves the classes: every contiguous block is stratified.
    perm = rng.permutation(len(y))
    rank = np.empty(len(y))
    for label in range(10):
        members = y[perm] == label
        rank[members] = (np.arange(members.sum()) + 0.5) / members.sum()
    order = perm[np.argsort(rank, kind="stable")]
    test_idx, val_idx, train_idx = np.split(order, [n_test, n_test + n_val])
    train_idx = rng.permutation(train_idx)[:n_train]

    info = _info("digits", 10, (64,), (8, 8), "scikit-learn", opts, key_data)
    return Dataset(*(Split(x[i], y[i]) for i in (train_idx, val_idx, test_idx)), info)


def _check_fraction(name: str, value, high: float, fits: Callable[[float], bool] | None) -> float:
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and 0 <= value < high and (fits is None or fits(float(value))))
    if not ok:
        bound = f"{high:g}" if fits is None else f"1 - val_fraction = {high:g}"
        raise ValueError(f"{name}: expected a number in [0, {bound}), got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# mnist

_TRAIN_IMAGES, _TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
_TEST_IMAGES, _TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
_MNIST_NAMES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)


def _load_mnist(opts: dict, key_data, data_dir) -> Dataset:
    n_train = _check_int("n_train", opts["n_train"], 1, _MNIST_TRAIN)
    n_val = _check_int("n_val", opts["n_val"], 0, _MNIST_TRAIN - n_train)
    n_test = _check_int("n_test", opts["n_test"], 1, _MNIST_TEST)
    flatten = _check_bool("flatten", opts["flatten"])
    download = _check_bool("download", opts["download"])
    dtype = _check_dtype(opts["dtype"])
    opener = opts["opener"]
    if opener is not None and not callable(opener):
        raise ValueError("opener: expected None or a callable opener(url) -> bytes,"
                         f" got {opener!r}")
    rng = _rng(key_data, "mnist", "draws the n_val validation images") if n_val else None

    paths = {name: _find_mnist_file(name, data_dir, download, opener).resolve()
             for name in _MNIST_NAMES}
    arrays = {name: _read_mnist_file(path, name) for name, path in paths.items()}

    # Validation images come from the training images that the train split doesn't use.
    val_idx = np.arange(0)
    if rng is not None:
        val_idx = np.sort(rng.choice(np.arange(n_train, _MNIST_TRAIN), size=n_val, replace=False))

    def split(images: np.ndarray, labels: np.ndarray, idx) -> Split:
        x = images[idx].astype(dtype) / 255  # float64: the book's own x / 255
        return Split(x.reshape(len(x), 28 * 28) if flatten else x, labels[idx].astype(np.int32))

    train_x, train_y = arrays[_TRAIN_IMAGES], arrays[_TRAIN_LABELS]
    info = _info("mnist", 10, (784,) if flatten else (28, 28), (28, 28),
                 str(paths[_TRAIN_IMAGES].parent), opts, key_data if n_val else None)
    info["files"] = {name: str(path) for name, path in paths.items()}
    return Dataset(split(train_x, train_y, slice(0, n_train)),
                   split(train_x, train_y, val_idx),
                   split(arrays[_TEST_IMAGES], arrays[_TEST_LABELS], slice(0, n_test)), info)


def _cache_dir() -> Path:
    root = os.environ.get("JAXREG_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "jaxreg"
    return Path(root).expanduser() / "mnist"


def _find_mnist_file(name: str, data_dir, download: bool, opener) -> Path:
    """The first of ``name`` or ``name.gz`` in the search folders, else a fresh download."""
    folders = []
    for root in (data_dir, os.environ.get("JAXREG_DATA_DIR")):
        if root:
            folders += [Path(root).expanduser() / "mnist", Path(root).expanduser()]
    folders.append(_cache_dir())
    candidates = [folder / file for folder in folders for file in (name, name + ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    if download:
        path, failures = _download(name, _cache_dir(), opener)
        if path is not None:
            return path
        outcome = "downloading it failed:\n" + "\n".join(f"  {f}" for f in failures)
    else:
        outcome = "download=False, so it was not downloaded."
    files = ", ".join(_MNIST_NAMES)
    raise DatasetError(
        f"MNIST file {name} not found; looked for:\n" + "\n".join(f"  {p}" for p in candidates)
        + f"\nand {outcome}\nTo provide MNIST, put the four files ({files}; each raw or gzipped"
        " with a .gz suffix) in a folder and set the JAXREG_DATA_DIR environment variable or"
        " pass data_dir= to that folder.")


def _urlopen(url: str) -> bytes:
    """Fetches ``url``; the default opener (tests replace it, or pass ``opener=``)."""
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        err.close()  # it holds the open response, which would warn when garbage-collected
        raise


def _download(name: str, cache: Path, opener) -> tuple[Path | None, list[str]]:
    """Fetches ``name.gz`` from the first mirror whose content verifies; returns its path."""
    fetch = opener if opener is not None else _urlopen
    failures = [] if MNIST_MIRRORS else ["MNIST_MIRRORS is empty"]
    for mirror in MNIST_MIRRORS:
        url = mirror.rstrip("/") + "/" + name + ".gz"
        try:
            packed = bytes(fetch(url))
            # Verified in memory, so a bad download never reaches the cache.
            _check_sha256(_gunzip(packed, url), MNIST_SHA256[name], url)
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"{url}: {err}")
            continue
        path = cache / (name + ".gz")
        try:
            cache.mkdir(parents=True, exist_ok=True)
            # Written beside its final name and renamed into place: no reader sees half a file.
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=path.name + ".", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(packed)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            raise DatasetError(f"{path}: cannot save the downloaded file ({err})") from None
        return path, failures
    return None, failures


def _gunzip(packed: bytes, where: str) -> bytes:
    try:
        return gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{where}: not a valid gzip file ({err})") from None


def _check_sha256(content: bytes, expected: str, where: str) -> None:
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise DatasetError(f"SHA-256 mismatch for {where}: expected {expected}, got {actual}")


def _read_mnist_file(path: Path, name: str) -> np.ndarray:
    try:
        stat = path.stat()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the file ({err})") from None
    return _read_idx(str(path), stat.st_mtime_ns, stat.st_size, name, MNIST_SHA256[name])


@functools.lru_cache(maxsize=8)
def _read_idx(path: str, mtime_ns: int, size: int, name: str, sha256: str) -> np.ndarray:
    """Reads, verifies and parses an IDX file; mtime and size in the key catch a replaced file."""
    try:
        content = Path(path).read_bytes()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the file ({err})") from None
    if path.endswith(".gz"):
        content = _gunzip(content, path)
    _check_sha256(content, sha256, path)  # before parsing: a verified file parses

    images = "images" in name
    count = _MNIST_TRAIN if name.startswith("train") else _MNIST_TEST
    magic, shape = (2051, (count, 28, 28)) if images else (2049, (count,))
    header = 4 * (1 + len(shape))
    if len(content) < header:
        raise DatasetError(f"{path}: {len(content)} bytes is too short for the {header}-byte"
                           " IDX header")
    fields = np.frombuffer(content, ">u4", count=1 + len(shape))
    if fields[0] != magic:
        raise DatasetError(f"{path}: bad magic number {fields[0]}, expected {magic} for IDX"
                           f" {'images' if images else 'labels'}")
    if tuple(fields[1:]) != shape:
        raise DatasetError(f"{path}: header gives dimensions {tuple(fields[1:].tolist())},"
                           f" expected {shape}")
    if len(content) - header != np.prod(shape):
        raise DatasetError(f"{path}: payload is {len(content) - header} bytes, but dimensions"
                           f" {shape} need {np.prod(shape)}")
    # A read-only view of the bytes: the cached array can't be changed by a caller.
    return np.frombuffer(content, np.uint8, offset=header).reshape(shape)
