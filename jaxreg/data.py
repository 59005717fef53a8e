"""Data sets as NumPy arrays: the notebook's 2-D blobs, scikit-learn's 8x8 digits, MNIST, and
a user's own arrays (``from_arrays``) or files (``"npz"``, ``"csv"``).

``load(name, key=..., **options)`` returns a ``Dataset`` of float32 (or, with the option
``dtype="float64"``, float64) features and int32 labels (float targets for regression)
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
import math
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxreg.errors import InputError

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


# A user's data: a file (or arrays) split with the key, or splits given as files of their own.
_SPLIT_OPTIONS = {"val_path": None, "test_path": None, "val_fraction": None, "test_fraction": None,
                  "n_train": None, "standardize": "auto", "targets": "auto", "dtype": "float32"}
TARGETS = ("auto", "classes", "values")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "blobs": {"n_val": 100, "n_test": 1000, "seed": 1234, "dtype": "float32"},
    "digits": {"val_fraction": 0.2, "test_fraction": 0.2, "n_train": None, "classes": None, "per_class": None,
               "dtype": "float32"},
    "mnist": {"n_train": 1000, "n_val": 1000, "n_test": 10_000, "flatten": True,
              "download": True, "opener": None, "dtype": "float32"},
    "npz": {"path": None, "x": "x", "y": "y", **_SPLIT_OPTIONS},
    "csv": {"path": None, "target": -1, "features": None, "delimiter": ",", **_SPLIT_OPTIONS},
}
_FILE_DATASETS = ("npz", "csv")


def load(name: str, *, key=None, data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """Loads a data set and splits it into train, validation and test.

    Args:
        name: ``"blobs"``, ``"digits"``, ``"mnist"``, ``"npz"`` or ``"csv"``.
        key: a jax PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``) or an integer
            seed, which stands for ``jax.random.key(seed)``. Required by ``digits``, by
            ``mnist`` when ``n_val > 0``, and by ``npz`` and ``csv`` when a split is drawn;
            ``blobs`` is seeded by its ``seed`` option instead.
        data_dir: a folder to search for MNIST before ``$JAXREG_DATA_DIR`` and the cache; for
            ``npz`` and ``csv``, the folder relative paths start from (default: the current one).
            ``blobs`` and ``digits`` read no files and ignore it (a spec refuses it for them).
        **options: per data set (defaults in brackets):
            blobs: ``n_val`` [100], ``n_test`` [1000], ``seed`` [1234]. Train is the notebook's
                100 points; val and test are fresh draws from ``RandomState(seed + 1)`` and
                ``RandomState(seed + 2)``, rescaled with train's min and max.
            digits: ``val_fraction`` [0.2], ``test_fraction`` [0.2] (stratified), ``n_train``
                [None: all the rest; else a random subsample of that size]; ``classes`` [None:
                all ten]: keep these digits only, numbered in the order given (``[5, 6, 7, 8,
                9]`` makes 5 class 0: a transfer target task), the fractions then of what is
                kept; ``per_class`` [None]: keep this many training examples of each class
                (a random, balanced subsample; not with ``n_train``).
            mnist: ``n_train`` [1000]: the first training images in file order; ``n_val``
                [1000]: drawn with ``key`` from the other training images; ``n_test``
                [10000]: the first test images; ``flatten`` [True]: (n, 784) rather than
                (n, 28, 28); ``download`` [True]; ``opener`` [None]: ``opener(url) -> bytes``,
                replacing the HTTP fetch.
            npz: ``path`` (required): a ``.npz`` file; ``x`` ["x"], ``y`` ["y"]: the names of
                its feature and target arrays (features of shape (n, ...), 3 or 4 dimensions
                for images (n, H, W[, C])), and the split options below.
            csv: ``path`` (required): a CSV file of numbers, one example per row, with or
                without a header row (a first row with any non-number is a header);
                ``target`` [-1, the last column]: the target column, by name or 0-based index;
                ``features`` [None: every other column]: a list of column names or indices;
                ``delimiter`` [","]; and the split options below. Text in the target column
                is a class name (classes are numbered in sorted order, ``info["classes"]``).
            npz and csv, the split options: ``val_path``, ``test_path`` [None]: files (of the
                same layout) holding those splits; otherwise ``val_fraction`` [None: 0.2] and
                ``test_fraction`` [None: 0.2] of ``path`` are drawn with ``key`` (stratified by class
                for class targets); ``n_train`` [None: all the rest; else a random subsample];
                ``standardize`` ["auto": true for rows of features, false for images]:
                subtract the training split's mean and divide by its standard deviation, per
                feature (``info["standardize"]`` keeps both);
                ``targets`` ["auto"]: ``"classes"`` (integer class ids), ``"values"``
                (float regression targets), or ``"auto"``: classes when every target is an
                integer (or text), values otherwise. See :func:`from_arrays`.
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
    loader = {"blobs": _load_blobs, "digits": _load_digits, "mnist": _load_mnist,
              "npz": _load_file, "csv": _load_file}[name]
    if name in _FILE_DATASETS:
        return _load_file(name, opts, key_data, data_dir)
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
            "options": {k: v for k, v in opts.items() if k != "opener"},
            "dtype": str(np.dtype(opts.get("dtype", "float32"))), "scale": None, "standardize": None}


def preprocess(x, info: dict) -> np.ndarray:
    """Raw features as a data set's splits hold them: the one transform ``load`` applies.

    ``load`` makes its splits with this function, and :meth:`jaxreg.Best.predict` applies it to
    new rows with the numbers the data set stored, so both give the same bits.

    Args:
        x: an array or a list of rows of shape ``(n, *input_shape)``, or ``(n, *image_shape)``
            for images kept flat (MNIST's raw ``(n, 28, 28)`` uint8 pixels).
        info: a ``Dataset.info`` (or a best model's ``info["data"]``): ``input_shape``,
            ``image_shape``, ``dtype``, ``scale`` (pixels are divided by it: 16 for ``digits``'
            counts, 255 for MNIST's bytes; None for others) and ``standardize`` (None, or the
            training split's ``mean`` and ``std``: subtracted and divided, in float64).
            ``blobs`` stores none: its points are generated already rescaled.

    Returns:
        ``x`` of shape ``(n, *input_shape)`` and the data set's dtype.

    Raises:
        InputError: ``x`` of another shape, or not numbers.
    """
    input_shape = tuple(info["input_shape"])
    shapes = [input_shape]
    image_shape = tuple(info.get("image_shape") or ())
    if image_shape and image_shape != input_shape and np.prod(image_shape) == np.prod(input_shape):
        shapes.append(image_shape)
    try:
        array = np.asarray(x)
    except ValueError:  # rows of different lengths
        array = None
    if array is None or array.dtype.kind not in "biuf" or array.ndim < 1 or array.shape[1:] not in shapes:
        got = ("rows of different lengths" if array is None else
               f"dtype {array.dtype}" if array.dtype.kind not in "biuf" else f"shape {array.shape}")
        wanted = " or ".join("(n, " + ", ".join(map(str, shape)) + ")" for shape in shapes)
        raise InputError(f"x: expected numbers of shape {wanted}, got {got}")
    dtype = np.dtype(info.get("dtype") or "float32")
    array = array.reshape(len(array), *input_shape)
    if info.get("scale") is not None:
        array = array.astype(dtype) / float(info["scale"])
    scaling = info.get("standardize")
    if scaling is not None:
        array = (array.astype(np.float64) - np.asarray(scaling["mean"], np.float64)) / np.asarray(scaling["std"], np.float64)
    return array.astype(dtype)


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
    classes, per_class = opts["classes"], opts["per_class"]
    if classes is not None:
        ok = (isinstance(classes, (list, tuple)) and classes and len(set(classes)) == len(classes)
              and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 9 for c in classes))
        if not ok:
            raise ValueError(f"classes: expected a list of distinct digits in [0, 9], got {classes!r}")
        size = int(sum(np.bincount(_digits_labels(), minlength=10)[list(classes)]))
        n_val, n_test = round(val_fraction * size), round(test_fraction * size)
        n_rest = size - n_val - n_test
        if n_rest < 1:
            raise ValueError(f"test_fraction: expected a number that leaves training examples of classes "
                             f"{list(classes)}, got {test_fraction!r}")
    n_train = opts["n_train"]
    if n_train is not None:
        n_train = _check_int("n_train", n_train, 1, n_rest)
    if per_class is not None:
        if n_train is not None:
            raise ValueError(f"per_class: expected None when n_train is given ({n_train}), got {per_class!r}")
        if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
            raise ValueError(f"per_class: expected an integer >= 1, got {per_class!r}")
    dtype = _check_dtype(opts["dtype"])
    rng = _rng(key_data, "digits", "splits at random")

    pixels, labels = _digits_arrays()
    info = _info("digits", 10, (64,), (8, 8), "scikit-learn", opts, key_data)
    info["scale"] = 16.0  # pixels are counts 0..16
    x = preprocess(pixels, info)
    y = labels.astype(np.int32)
    num_classes = 10
    if classes is not None:
        kept = np.isin(y, classes)
        relabel = np.full(10, -1, np.int32)
        relabel[list(classes)] = np.arange(len(classes), dtype=np.int32)
        x, y, num_classes = x[kept], relabel[y[kept]], len(classes)

    order = _stratified_order(y, rng)  # every contiguous block is stratified
    test_idx, val_idx, train_idx = np.split(order, [n_test, n_test + n_val])
    train_idx = rng.permutation(train_idx)[:n_train]
    if per_class is not None:
        fewest = np.bincount(y[train_idx], minlength=num_classes).min()
        if per_class > fewest:
            raise ValueError(f"per_class: expected at most {fewest} (the smallest class's training "
                             f"examples), got {per_class}")
        rank = np.zeros(len(train_idx), np.int64)
        for label in range(num_classes):
            members = y[train_idx] == label
            rank[members] = np.arange(members.sum())
        train_idx = train_idx[rank < per_class]

    info.update(num_classes=num_classes, classes=None if classes is None else [int(c) for c in classes])
    return Dataset(*(Split(x[i], y[i]) for i in (train_idx, val_idx, test_idx)), info)


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``load_digits`` returns them, ``(data, target)``, read from the file
    it ships without importing scikit-learn (about a second: most of a ``plan``'s time)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running its __init__
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():  # another layout: ask scikit-learn itself
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    with gzip.open(path, mode="rt", encoding="utf-8") as file:  # as load_digits reads it
        data = np.loadtxt(file, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def _digits_labels() -> np.ndarray:
    return _digits_arrays()[1]


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

    train_x, train_y = arrays[_TRAIN_IMAGES], arrays[_TRAIN_LABELS]
    info = _info("mnist", 10, (784,) if flatten else (28, 28), (28, 28),
                 str(paths[_TRAIN_IMAGES].parent), opts, key_data if n_val else None)
    info["scale"] = 255.0  # in float64, the book's own x / 255

    def split(images: np.ndarray, labels: np.ndarray, idx) -> Split:
        return Split(preprocess(images[idx], info), labels[idx].astype(np.int32))
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


# ---------------------------------------------------------------------------------------------
# a user's own data: arrays, .npz and .csv files


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order in which every contiguous block is stratified by class.

    Sorting a random permutation by each example's rank within its class, as a fraction of
    the class size, interleaves the classes.
    """
    perm = rng.permutation(len(y))
    rank = np.empty(len(y))
    for label in np.unique(y):
        members = y[perm] == label
        rank[members] = (np.arange(members.sum()) + 0.5) / members.sum()
    return perm[np.argsort(rank, kind="stable")]


def _as_pair(name: str, pair) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"{name}: expected a pair (x, y) of arrays, got {type(pair).__name__}")
    x, y = np.asarray(pair[0]), np.asarray(pair[1])
    if x.ndim < 2 or x.dtype.kind not in "biuf":
        raise ValueError(f"{name}.x: expected a numeric array of shape (examples, features...), got "
                         f"shape {x.shape} of dtype {x.dtype}")
    if y.ndim not in (1, 2) or y.dtype.kind not in "biufUSO":
        raise ValueError(f"{name}.y: expected targets of shape (examples,) or (examples, outputs), got "
                         f"shape {y.shape} of dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"{name}.y: expected one target per example ({len(x)} in {name}.x), got {len(y)}")
    return x, y


def _targets(pairs: dict, mode: str, dtype: np.dtype):
    """The splits' targets as class ids (int32) or values (``dtype``), and how many classes."""
    ys = [y for _, y in pairs.values()]
    text = any(y.dtype.kind in "USO" for y in ys)
    every = np.concatenate([y.reshape(len(y), -1) for y in ys]) if ys else np.zeros((0, 1))
    if mode == "auto":
        integral = not text and (every.dtype.kind in "biu" or bool(np.all(np.isfinite(every)) and np.all(every == np.round(every))))
        mode = "classes" if text or (integral and every.size and every.shape[1] == 1) else "values"
    if mode == "values":
        if text:
            raise ValueError("targets: expected 'classes' for text targets (class names), got 'values'")
        return {k: (x, y.astype(dtype)) for k, (x, y) in pairs.items()}, None, (every.shape[1] if ys else 1), None
    if any(y.ndim != 1 for y in ys):
        raise ValueError(f"targets: expected one class per example (targets of shape (examples,)), got "
                         f"shape {next(y.shape for y in ys if y.ndim != 1)}")
    if text:
        names = sorted({str(v) for y in ys for v in y.tolist()})
        ids = {n: i for i, n in enumerate(names)}
        return ({k: (x, np.array([ids[str(v)] for v in y.tolist()], np.int32)) for k, (x, y) in pairs.items()},
                len(names), None, names)
    if not (np.all(np.isfinite(every)) and np.all(every == np.round(every))):
        bad = every[~(np.isfinite(every) & (every == np.round(every)))][0]
        raise ValueError(f"targets: expected class labels (integers or text) with targets = 'classes', got {bad}")
    if every.size and every.min() < 0:  # labels such as -1 and 1: classes named by their values, in order
        names = sorted({int(v) for v in every.ravel().tolist()})
        ids = {n: i for i, n in enumerate(names)}
        return ({k: (x, np.array([ids[int(v)] for v in y.tolist()], np.int32)) for k, (x, y) in pairs.items()},
                len(names), None, names)
    return ({k: (x, y.astype(np.int32)) for k, (x, y) in pairs.items()},
            int(every.max()) + 1 if every.size else 0, None, None)


def from_arrays(x, y, *, key=None, val=None, test=None, val_fraction=None, test_fraction=None,
                n_train=None, standardize=False, targets="auto", dtype="float32",
                name="arrays", source="arrays", options=None) -> Dataset:
    """A ``Dataset`` from a user's arrays: split with ``key``, or with splits given.

    Args:
        x, y: features of shape ``(n, ...)`` (images ``(n, H, W)`` or ``(n, H, W, C)``) and
            targets of shape ``(n,)`` (class ids, class names, or regression values) or
            ``(n, outputs)`` (regression).
        key: a jax PRNG key or integer seed; required when a split is drawn.
        val, test: ``(x, y)`` pairs to use as those splits instead of drawing them.
        val_fraction, test_fraction: the share of ``x`` drawn for a split that is not given
            (default 0.2 each; 0 for a given one). Class targets are drawn stratified.
        n_train: keep a random subsample of this size of the training split (default: all).
        standardize: subtract the training split's per-feature mean and divide by its standard
            deviation (1 where it is 0), on every split; ``info["standardize"]`` keeps both
            (float64, the numbers :func:`preprocess` applies).
            ``"auto"``: for rows of features (``x`` of shape ``(n, features)``), not for images.
            ``info["feature_std"]`` keeps the smallest and largest non-zero standard deviation of
            the raw training features (rows of features only): their ratio says how unequal the
            features' scales are.
        targets: ``"classes"``, ``"values"`` or ``"auto"`` (classes when every target is an
            integer or a text, one per example; values otherwise). Class ids are the integers
            themselves when none is negative; text, or integers with a negative one (-1/1
            labels), are named in ``info["classes"]`` in sorted order and numbered so.
        dtype: ``"float32"`` or ``"float64"``: features and regression targets.
        name, source, options: recorded in ``info``.

    Returns:
        A ``Dataset``. ``info["num_classes"]`` is None for regression and ``info["num_outputs"]``
        the number of target values per example; ``info["classes"]`` the class names of text
        targets, in id order.

    Raises:
        ValueError: naming the argument, before anything is split.
    """
    dtype = _check_dtype(dtype)
    if targets not in TARGETS:
        raise ValueError(f"targets: expected one of {_quoted(TARGETS)}, got {targets!r}")
    if not (isinstance(standardize, (bool, np.bool_)) or (isinstance(standardize, str) and standardize == "auto")):
        raise ValueError(f"standardize: expected True, False or 'auto', got {standardize!r}")
    pairs = {"data": _as_pair("data", (x, y))}
    for split, given in (("val", val), ("test", test)):
        if given is not None:
            pairs[split] = _as_pair(split, given)
    shape = pairs["data"][0].shape[1:]
    for split, (xs, _) in pairs.items():
        if xs.shape[1:] != shape:
            raise ValueError(f"{split}.x: expected examples of shape {shape} (as in the data), got {xs.shape[1:]}")
    fractions = {}
    for split, fraction in (("val", val_fraction), ("test", test_fraction)):
        if split in pairs and fraction not in (None, 0, 0.0):
            raise ValueError(f"{split}_fraction: expected none when the {split} split is given, got {fraction!r}")
        fractions[split] = 0.0 if split in pairs else (0.2 if fraction is None else
                                                        _check_fraction(f"{split}_fraction", fraction, 1.0, None))
    n = len(pairs["data"][0])
    n_val, n_test = round(fractions["val"] * n), round(fractions["test"] * n)
    if n - n_val - n_test < 1:
        raise ValueError(f"val_fraction: expected fractions that leave training examples (val_fraction + "
                         f"test_fraction < 1 of {n} examples), got {fractions['val']} and {fractions['test']}")
    if n_train is not None:
        n_train = _check_int("n_train", n_train, 1, n - n_val - n_test)
    pairs, num_classes, num_outputs, class_names = _targets(pairs, targets, dtype)
    data_x, data_y = pairs["data"]

    drawn = n_val or n_test or n_train is not None
    rng = _rng(_key_data(key), name, "draws the splits at random") if drawn else None
    if rng is None:
        order = np.arange(n)
    elif num_classes is not None:
        order = _stratified_order(data_y, rng)
    else:
        order = rng.permutation(n)
    test_idx, val_idx, train_idx = np.split(order, [n_test, n_test + n_val])
    if n_train is not None:
        train_idx = rng.permutation(train_idx)[:n_train]
    splits = {"train": (data_x[train_idx], data_y[train_idx]),
              "val": pairs.get("val", (data_x[val_idx], data_y[val_idx])),
              "test": pairs.get("test", (data_x[test_idx], data_y[test_idx]))}
    if len(splits["test"][1]) == 0:
        raise ValueError(f"test_fraction: expected a test split of at least one example, got {fractions['test']} "
                         f"of {n} examples")
    if num_classes is not None:
        for split, (_, ys) in splits.items():
            if split != "train" and ys.size and ys.max() >= num_classes:
                raise ValueError(f"{split}.y: expected class ids seen in the data, got {ys.max()}")

    scaling = feature_std = None
    if standardize == "auto":
        standardize = len(shape) == 1
    if len(shape) == 1 and len(splits["train"][0]):
        spread = splits["train"][0].astype(np.float64).std(axis=0)
        spread = spread[np.isfinite(spread) & (spread > 0)]
        feature_std = [float(spread.min()), float(spread.max())] if spread.size else None
    if standardize:
        train_x = splits["train"][0].astype(np.float64)
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        scaling = {"mean": mean, "std": np.where(std > 0, std, 1.0)}  # float64: the numbers applied
    info = _info(name, num_classes, shape, tuple(shape) if len(shape) >= 2 else None, source,
                 dict(options or {}), _key_data(key) if drawn else None)
    info.update(num_outputs=num_outputs if num_classes is None else num_classes,
                targets="values" if num_classes is None else "classes",
                classes=class_names, standardize=scaling, feature_std=feature_std, dtype=str(dtype))
    splits = {k: Split(preprocess(xs, info), ys) for k, (xs, ys) in splits.items()}
    return Dataset(splits["train"], splits["val"], splits["test"], info)


def _resolve(field: str, path, data_dir, suffix: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{field}: expected the path of a {suffix} file, got {path!r}")
    path = Path(path).expanduser()
    if not path.is_absolute() and data_dir is not None:
        path = Path(data_dir).expanduser() / path
    if not path.is_file():
        why = "not found" if not path.exists() else "not a regular file"
        where = "" if path.is_absolute() else f" at {os.path.abspath(path)}"  # where it was looked for
        raise DatasetError(f"{field}: expected a readable {suffix} file, got {str(path)!r} ({why}{where})")
    return path


def _check_npz_member(path: Path, archive: zipfile.ZipFile, name: str) -> None:
    """Refuses an array whose header claims more data than its member of the zip holds, before
    NumPy allocates what the header claims (a 200-byte file claiming shape (1e12, 4))."""
    info = archive.getinfo(name + ".npy" if name + ".npy" in archive.namelist() else name)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
        claimed = math.prod(shape) * dtype.itemsize
        if member.tell() + claimed > info.file_size:
            raise ValueError(f"path: expected a .npz file whose arrays hold the data their headers claim, got "
                             f"{str(path)!r} with array {name!r} of shape {shape} ({dtype}, {claimed} bytes) "
                             f"in {info.file_size} bytes")


def _read_npz(path: Path, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as file:
            names = list(file.files)
            for field, wanted in (("x", x_name), ("y", y_name)):
                if wanted not in names:
                    raise ValueError(f"{field}: expected the name of an array in {path} (it holds "
                                     f"{_quoted(names) or 'none'}), got {wanted!r}")
                _check_npz_member(path, file.zip, wanted)
            return file[x_name], file[y_name]
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(f"path: expected a .npz file written by numpy.savez, got {str(path)!r} "
                           f"({type(error).__name__}: {error})") from None
    except ValueError as error:
        if str(error).startswith(("x:", "y:", "path:")):
            raise
        raise DatasetError(f"path: expected a .npz file of plain arrays, got {str(path)!r} ({error})") from None


def _column(field: str, wanted, header: list[str] | None, width: int, path: Path) -> int:
    if isinstance(wanted, str) and not isinstance(wanted, bool):
        if header is None or wanted not in header:
            have = f"its header names {_quoted(header)}" if header else "it has no header row"
            raise ValueError(f"{field}: expected a column of {path} ({have}), got {wanted!r}")
        return header.index(wanted)
    if isinstance(wanted, (int, np.integer)) and not isinstance(wanted, bool) and -width <= wanted < width:
        return int(wanted) % width
    raise ValueError(f"{field}: expected a column name or an index in [{-width}, {width - 1}] of {path}, "
                     f"got {wanted!r}")


def _csv_table(path: Path, delimiter: str) -> tuple[list[str] | None, list[list[str]], list[int]]:
    """A CSV file's header (a first row with any non-number; None if there is none), its rows of
    data, and the file's line each row ends on (blank lines are skipped: errors name the line)."""
    import csv

    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter: expected one character, got {delimiter!r}")
    try:
        with open(path, newline="") as file:
            reader = csv.reader(file, delimiter=delimiter)
            numbered = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"path: expected a readable CSV file, got {str(path)!r} ({error})") from None
    header = None
    if numbered and any(_number(cell) is None for cell in numbered[0][1]):
        header = [cell.strip() for cell in numbered[0][1]]
        numbered = numbered[1:]
    if not numbered:
        raise DatasetError(f"path: expected a CSV file with at least one row of data, got {str(path)!r}")
    rows, lines = [row for _, row in numbered], [line for line, _ in numbered]
    width = len(header) if header is not None else len(rows[0])
    for line, row in numbered:
        if len(row) != width:
            raise DatasetError(f"path: expected {width} columns in every row of {path}, got {len(row)} "
                               f"in line {line}")
    return header, rows, lines


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _csv_features(rows: list[list[str]], header: list[str] | None, columns: list[int], path: Path,
                  lines: list[int]) -> np.ndarray:
    x = np.empty((len(rows), len(columns)))
    for i, (line, row) in enumerate(zip(lines, rows)):
        for j, c in enumerate(columns):
            value = _number(row[c])
            if value is None or not math.isfinite(value):  # nan, inf: refused here, where the line is known
                name = header[c] if header else c
                raise DatasetError(f"path: expected finite numbers in the feature columns of {path}, got "
                                   f"{row[c]!r} in line {line}, column {name!r}")
            x[i, j] = value
    return x


def _read_csv(path: Path, target, features, delimiter: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The features and targets of a CSV file, and how its columns were read (``info["reader"]``)."""
    header, rows, lines = _csv_table(path, delimiter)
    width = len(header) if header is not None else len(rows[0])
    t = _column("target", target, header, width, path)
    if features is None:
        columns = [c for c in range(width) if c != t]
    elif isinstance(features, (list, tuple)) and features:
        columns = [_column("features", f, header, width, path) for f in features]
    else:
        raise ValueError(f"features: expected a non-empty list of column names or indices, got {features!r}")
    if t in columns:
        raise ValueError(f"features: expected columns other than the target, got the target column {target!r}")
    x = _csv_features(rows, header, columns, path, lines)
    cells = [row[t].strip() for row in rows]
    values = [_number(cell) for cell in cells]
    if all(v is not None for v in values):
        for line, value, cell in zip(lines, values, cells):
            if not math.isfinite(value):
                raise DatasetError(f"path: expected finite targets in the target column of {path}, got {cell!r} "
                                   f"in line {line}")
    y = np.array(values, np.float64) if all(v is not None for v in values) else np.array(cells)
    reader = {"format": "csv", "delimiter": delimiter, "width": width, "target": t, "features": columns,
              "names": None if header is None else [header[c] for c in columns],
              "target_name": None if header is None else header[t]}
    return x, y, reader


def read_features(path: str | os.PathLike, info: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The raw features of new examples in a ``.csv`` or ``.npz`` file, read as the data set read
    its own (``info["reader"]``), and their targets where the file has them.

    A CSV with a header row gives the training file's feature columns by name; without one,
    its rows are the features alone, in order, or rows as wide as the training file's (whose
    target column is then read as targets). An ``.npz`` gives the array named as in training
    (``"x"`` by default), and its ``y`` if there.

    Returns:
        ``(x, y)``: ``x`` as :func:`preprocess` takes it; ``y`` the targets (float or text) or None.

    Raises:
        InputError: not a .csv or .npz file, or not laid out like the training data.
        DatasetError: the file is unreadable.
    """
    path = Path(path)
    reader = info.get("reader") or {}
    if path.suffix.lower() == ".npz":
        wanted = reader.get("x", "x")
        try:
            with np.load(path, allow_pickle=False) as file:
                arrays = {name: file[name] for name in file.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
            raise DatasetError(f"path: expected a .npz file written by numpy.savez, got {str(path)!r} "
                               f"({type(error).__name__})") from None
        if wanted not in arrays and len(arrays) != 1:
            raise InputError(f"path: expected an array named {wanted!r} in {path} (as in training), got "
                             f"{_quoted(arrays) or 'none'}")
        x = arrays[wanted] if wanted in arrays else next(iter(arrays.values()))
        return x, arrays.get(reader.get("y", "y")) if wanted in arrays else None
    if path.suffix.lower() != ".csv":
        raise InputError(f"path: expected a .csv or .npz file, got {str(path)!r}")
    header, rows, lines = _csv_table(path, reader.get("delimiter", ","))
    width = len(rows[0])
    n_features = int(np.prod(info["input_shape"]))
    target = None
    if header is not None and reader.get("names"):
        missing = [name for name in reader["names"] if name not in header]
        if missing:
            raise InputError(f"path: expected the feature columns {_quoted(reader['names'])} in {path}'s header, "
                             f"got none named {missing[0]!r}")
        columns = [header.index(name) for name in reader["names"]]
        if reader.get("target_name") in header:
            target = header.index(reader["target_name"])
    elif width == n_features:
        columns = list(range(width))
    elif reader.get("format") == "csv" and width == reader["width"]:
        columns, target = reader["features"], reader["target"]
    else:
        also = f" (or the training file's {reader['width']})" if reader.get("format") == "csv" else ""
        raise InputError(f"path: expected rows of {n_features} feature columns{also} in {path}, got {width}")
    x = _csv_features(rows, header, columns, path, lines)
    if target is None:
        return x, None
    cells = [row[target].strip() for row in rows]
    values = [_number(cell) for cell in cells]
    return x, (np.array(values, np.float64) if all(v is not None for v in values) else np.array(cells))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_file(name: str, opts: dict, key_data, data_dir) -> Dataset:
    """``npz`` and ``csv``: the file(s) read, then split by :func:`from_arrays`."""
    suffix = f".{name}"
    if opts["path"] is None:
        raise ValueError(f"path: expected the path of a {suffix} file for dataset {name!r}, got nothing")
    if opts["targets"] not in TARGETS:
        raise ValueError(f"targets: expected one of {_quoted(TARGETS)}, got {opts['targets']!r}")
    _check_dtype(opts["dtype"])
    paths = {"path": _resolve("path", opts["path"], data_dir, suffix)}
    for split in ("val", "test"):
        if opts[f"{split}_path"] is not None:
            paths[f"{split}_path"] = _resolve(f"{split}_path", opts[f"{split}_path"], data_dir, suffix)

    def read(path: Path):
        if name == "npz":
            for field in ("x", "y"):
                if not isinstance(opts[field], str):
                    raise ValueError(f"{field}: expected the name of an array in the .npz file, got {opts[field]!r}")
            return _read_npz(path, opts["x"], opts["y"])
        return _read_csv(path, opts["target"], opts["features"], opts["delimiter"])

    arrays = {field: read(path) for field, path in paths.items()}
    reader = {"format": "npz", "x": opts["x"], "y": opts["y"]} if name == "npz" else arrays["path"][2]
    arrays = {field: pair[:2] for field, pair in arrays.items()}
    try:
        dataset = from_arrays(*arrays["path"], key=key_data and _key_from_data(key_data),
                              val=arrays.get("val_path"), test=arrays.get("test_path"),
                              val_fraction=opts["val_fraction"], test_fraction=opts["test_fraction"],
                              n_train=opts["n_train"], standardize=opts["standardize"], targets=opts["targets"],
                              dtype=opts["dtype"], name=name, source=str(paths["path"].parent), options=opts)
    except ValueError as error:
        text = str(error)
        for split in ("val", "test"):  # name the file a split came from, as the spec gives it
            text = text.replace(f"{split}.x:", f"{split}_path:", 1).replace(f"{split}.y:", f"{split}_path:", 1)
        raise ValueError(text.replace("data.x:", "path:", 1).replace("data.y:", "path:", 1)) from None
    dataset.info["files"] = {field: str(path) for field, path in paths.items()}
    dataset.info["reader"] = reader
    dataset.info["sha256"] = {field: _sha256_file(path) for field, path in paths.items()}
    return dataset


def _key_from_data(key_data: list[int]):
    import jax

    return jax.random.wrap_key_data(np.asarray(key_data, np.uint32))
