"""Tests for jaxreg.data: the notebook's blobs, digits offline, MNIST from disk or a local mirror.

No test touches the internet: downloads go to an HTTP server on 127.0.0.1 started here, and a
guard fails any other URL. Real MNIST comes from ``$JAXREG_DATA_DIR``, else ``../shared/data``
(the ``mnist_dir`` fixture of conftest.py; the tests skip, naming where they looked, without
it), and the rest from full-size fake IDX files whose hashes are patched into ``MNIST_SHA256``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import threading
import urllib.error
from pathlib import Path

import jax
import numpy as np
import pytest
from sklearn.datasets import load_digits

import jaxreg.data
from jaxreg import data

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no JAXREG_DATA_DIR, no mirrors, and no URL beyond 127.0.0.1."""
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXREG_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "MNIST_MIRRORS", [])
    real_urlopen = data._urlopen

    def local_only(url):
        assert url.startswith("http://127.0.0.1:"), f"test tried to reach {url}"
        return real_urlopen(url)

    monkeypatch.setattr(data, "_urlopen", local_only)


@pytest.fixture
def real_data(mnist_dir):
    """The folder holding real MNIST (read before ``isolated`` removes $JAXREG_DATA_DIR)."""
    return mnist_dir


def idx_bytes(name: str) -> bytes:
    """A full-size IDX file whose image i stores i in its first two pixels, label (i + 1) % 10."""
    count = 60_000 if name.startswith("train") else 10_000
    index = np.arange(count)
    if "images" in name:
        pixels = np.zeros((count, 28, 28), np.uint8)
        pixels[:, 0, 0], pixels[:, 0, 1] = index % 256, index // 256
        return np.array([2051, count, 28, 28], ">u4").tobytes() + pixels.tobytes()
    return np.array([2049, count], ">u4").tobytes() + ((index + 1) % 10).astype(np.uint8).tobytes()


@pytest.fixture(scope="session")
def fake_files(tmp_path_factory):
    """Folder of the four fake files, gzipped, and their SHA-256 hashes."""
    folder = tmp_path_factory.mktemp("fake_mnist")
    hashes = {}
    for name in NAMES:
        content = idx_bytes(name)
        hashes[name] = hashlib.sha256(content).hexdigest()
        (folder / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
    return folder, hashes


@pytest.fixture
def fake(fake_files, monkeypatch):
    folder, hashes = fake_files
    for name, digest in hashes.items():
        monkeypatch.setitem(data.MNIST_SHA256, name, digest)
    return folder


def index_of(x: np.ndarray) -> np.ndarray:
    """Recovers each fake image's position in its file from its first two pixels."""
    pixels = np.rint(x.reshape(len(x), -1)[:, :2] * 255).astype(int)
    return pixels[:, 0] + 256 * pixels[:, 1]


@pytest.fixture
def server(tmp_path, fake_files):
    """An HTTP server on 127.0.0.1 with good/ (fake files) and bad/ (content altered) mirrors."""
    root = tmp_path / "www"
    shutil.copytree(fake_files[0], root / "good")
    (root / "bad").mkdir()
    for name in NAMES:
        content = bytearray(gzip.decompress((root / "good" / f"{name}.gz").read_bytes()))
        content[-1] ^= 0xFF
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(bytes(content), compresslevel=1))
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


# --- errors for bad arguments --------------------------------------------------------------


def test_unknown_dataset():
    with pytest.raises(ValueError) as err:
        data.load("foo")
    assert str(err.value) == "dataset: expected one of 'blobs', 'digits', 'mnist', 'npz', 'csv', got 'foo'"


@pytest.mark.parametrize("name, options, message", [
    ("mnist", {"n_train": 0}, "n_train: expected an integer in [1, 60000], got 0"),
    ("mnist", {"n_train": 1.5}, "n_train: expected an integer in [1, 60000], got 1.5"),
    ("mnist", {"n_train": 59_000, "n_val": 1001},
     "n_val: expected an integer in [0, 1000], got 1001"),
    ("mnist", {"n_test": 10_001}, "n_test: expected an integer in [1, 10000], got 10001"),
    ("mnist", {"flatten": "yes"}, "flatten: expected True or False, got 'yes'"),
    ("mnist", {"opener": 3}, "opener: expected None or a callable opener(url) -> bytes, got 3"),
    ("mnist", {"nval": 3}, "option: expected one of 'download', 'dtype', 'flatten', 'n_test', 'n_train',"
                           " 'n_val', 'opener' for dataset 'mnist', got 'nval'"),
    ("digits", {"dtype": "float16"}, "dtype: expected 'float32' or 'float64', got 'float16'"),
    ("digits", {"val_fraction": 1.0}, "val_fraction: expected a number in [0, 1), got 1.0"),
    ("digits", {"test_fraction": 0.8},
     "test_fraction: expected a number in [0, 1 - val_fraction = 0.8), got 0.8"),
    ("digits", {"n_train": 2000}, "n_train: expected an integer in [1, 1079], got 2000"),
    ("blobs", {"n_val": -1}, "n_val: expected an integer in [0, 1000000], got -1"),
    ("blobs", {"seed": True}, "seed: expected an integer in [0, 4294967293], got True"),
])
def test_bad_option_messages(tmp_path, name, options, message):
    # data_dir is empty and there are no mirrors: only a check made before any I/O passes here.
    with pytest.raises(ValueError) as err:
        data.load(name, key=0, data_dir=tmp_path, **options)
    assert str(err.value) == message


@pytest.mark.parametrize("key, given", [
    (-1, "-1"), (1.5, "1.5"),
    (jax.random.split(jax.random.key(0)), "an array of shape (2,), dtype key<fry>"),
])
def test_bad_key(key, given):
    with pytest.raises(ValueError) as err:
        data.load("digits", key=key)
    assert str(err.value) == ("key: expected a single jax PRNG key or an integer seed in"
                              f" [0, 4294967295], got {given}")


@pytest.mark.parametrize("name, options", [("digits", {}), ("mnist", {"n_val": 5})])
def test_missing_key_is_an_error(tmp_path, name, options):
    with pytest.raises(ValueError, match=r"^key: expected a jax PRNG key .* got None$"):
        data.load(name, data_dir=tmp_path, **options)


# --- blobs ---------------------------------------------------------------------------------


def notebook_blobs():
    """The notebook's cell, verbatim, with the global NumPy state restored afterwards."""
    state = np.random.get_state()
    try:
        n_samples = 100
        np.random.seed(1234)
        X0 = np.random.normal(loc=[0, 0], scale=[2, 0.5], size=(int(n_samples / 2), 2))
        X11 = np.random.normal(loc=[1, 2], scale=[0.5, 1], size=(int(n_samples / 4), 2))
        X12 = np.random.normal(loc=[0, -2], scale=[0.5, 1], size=(int(n_samples / 4), 2))
        X1 = np.vstack([X11, X12])
        X = np.vstack([X0, X1])
        # rescale between -1 and 1
        X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
        X = 2*X - 1
        y0 = np.zeros(shape=(int(n_samples / 2), 1))
        y1 = np.ones(shape=(int(n_samples / 2), 1))
        yhat = np.vstack([y0, y1])
        # shuffle the data
        inds = np.random.permutation(np.arange(n_samples))
        X = X[inds]
        yhat = yhat[inds]
    finally:
        np.random.set_state(state)
    return X, yhat


def test_blobs_train_is_the_notebooks():
    X, yhat = notebook_blobs()
    ds = data.load("blobs")
    assert ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int32
    np.testing.assert_array_equal(ds.train.x, X.astype(np.float32))
    np.testing.assert_array_equal(ds.train.y, yhat.reshape(-1).astype(np.int32))
    assert ds.info["input_shape"] == (2,) and ds.info["image_shape"] is None
    assert ds.info["num_classes"] == 2 and ds.info["source"] == "generated"


def test_blobs_val_and_test():
    ds = data.load("blobs", n_val=40, n_test=200)
    assert ds.val.x.shape == (40, 2) and ds.test.x.shape == (200, 2)
    assert ds.val.y.sum() == 20 and ds.test.y.sum() == 100  # balanced classes
    # Same coordinates as train: near [-1, 1], but not rescaled to fill it exactly.
    assert np.abs(ds.test.x).max() < 2 and not np.array_equal(ds.test.x.min(0), [-1, -1])
    # Class 1 is the two vertical modes, class 0 the flat horizontal one.
    assert ds.test.x[ds.test.y == 1, 1].std() > 2 * ds.test.x[ds.test.y == 0, 1].std()
    assert not np.array_equal(ds.val.x[:40], ds.test.x[:40])
    assert data.load("blobs", n_val=0).val.x.shape == (0, 2)


def test_blobs_is_seeded_by_seed_not_key():
    a, b = data.load("blobs", key=0), data.load("blobs", key=jax.random.key(7))
    other = data.load("blobs", seed=99)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split).x, getattr(b, split).x)
        assert not np.array_equal(getattr(a, split).x, getattr(other, split).x)


# --- digits --------------------------------------------------------------------------------


def test_digits_needs_no_network(monkeypatch):
    def no_sockets(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "socket", no_sockets)
    ds = data.load("digits", key=jax.random.key(0))
    assert [len(s.y) for s in ds[:3]] == [1079, 359, 359]
    assert ds.train.x.shape[1:] == (64,) and ds.train.x.dtype == np.float32
    assert ds.train.y.dtype == np.int32 and ds.info["image_shape"] == (8, 8)
    assert ds.info["source"] == "scikit-learn" and ds.info["num_classes"] == 10

    # The three splits partition the data set exactly.
    digits = load_digits()
    rows = lambda x, y: np.sort(np.column_stack([x, y]).view(np.dtype((np.void, 65 * 8))), 0)
    ours = np.concatenate([np.column_stack([s.x.astype(np.float64) * 16, s.y]) for s in ds[:3]])
    np.testing.assert_array_equal(rows(ours[:, :64], ours[:, 64]),
                                  rows(digits.data, digits.target))

    # Stratified: each class's share of test is within one example of its share overall.
    overall = np.bincount(digits.target) * 359 / 1797
    assert np.all(np.abs(np.bincount(ds.test.y, minlength=10) - overall) <= 1)


def test_digits_n_train_subsamples_without_moving_the_split():
    full = data.load("digits", key=3)
    small = data.load("digits", key=3, n_train=100, val_fraction=0.2)
    assert small.train.x.shape == (100, 64)
    np.testing.assert_array_equal(small.test.x, full.test.x)
    np.testing.assert_array_equal(small.val.x, full.val.x)
    assert data.load("digits", key=3, val_fraction=0).val.x.shape == (0, 64)


# --- determinism given the key --------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_same_key_same_arrays_other_key_other_split(name, fake):
    load = functools.partial(data.load, name, data_dir=fake)
    a, b = load(key=jax.random.key(5)), load(key=jax.random.key(5))
    for split_a, split_b in zip(a[:3], b[:3]):
        assert split_a.x.dtype == split_b.x.dtype
        np.testing.assert_array_equal(split_a.x, split_b.x)
        np.testing.assert_array_equal(split_a.y, split_b.y)
    # An int seed stands for jax.random.key(seed); a raw PRNGKey holds the same bits.
    for same in (load(key=5), load(key=jax.random.PRNGKey(5))):
        np.testing.assert_array_equal(same.val.x, a.val.x)
        np.testing.assert_array_equal(same.train.x, a.train.x)
    assert not np.array_equal(load(key=6).val.x, a.val.x)


# --- mnist -----------------------------------------------------------------------------------


def test_mnist_real_files(real_data):
    ds = data.load("mnist", key=0, data_dir=real_data)
    assert [s.x.shape for s in ds[:3]] == [(1000, 784), (1000, 784), (10000, 784)]
    assert all(s.x.dtype == np.float32 and s.y.dtype == np.int32 for s in ds[:3])
    assert ds.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test.y[:3].tolist() == [7, 2, 1]
    assert ds.train.x.min() == 0 and ds.train.x.max() == 1
    assert ds.info["image_shape"] == (28, 28) and ds.info["input_shape"] == (784,)
    assert ds.info["source"] == str(real_data.resolve())
    images = data.load("mnist", data_dir=real_data, n_train=10, n_val=0, n_test=5, flatten=False)
    assert images.train.x.shape == (10, 28, 28) and images.val.x.shape == (0, 28, 28)
    np.testing.assert_array_equal(images.train.x.reshape(10, -1), ds.train.x[:10])


def test_mnist_real_hash_is_checked(real_data, monkeypatch):
    name = "train-labels-idx1-ubyte"
    monkeypatch.setitem(data.MNIST_SHA256, name, "0" * 64)
    # The loader takes the raw file before the gzipped one, as the search in conftest.py does.
    path = next(p for p in (real_data / name, real_data / f"{name}.gz") if p.is_file()).resolve()
    with pytest.raises(data.DatasetError) as err:
        data.load("mnist", data_dir=real_data, n_val=0)
    assert str(err.value).startswith(
        f"SHA-256 mismatch for {path}: expected {'0' * 64}, got "
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5")


def test_mnist_splits(fake):
    ds = data.load("mnist", key=1, data_dir=fake, n_train=300, n_val=500, n_test=20)
    assert index_of(ds.train.x).tolist() == list(range(300))  # the first images, in order
    val = index_of(ds.val.x)
    assert len(set(val.tolist())) == 500 and val.min() >= 300  # never overlapping train
    assert index_of(ds.test.x).tolist() == list(range(20))
    np.testing.assert_array_equal(ds.val.y, (val + 1) % 10)
    np.testing.assert_array_equal(ds.test.y, (np.arange(20) + 1) % 10)


def test_mnist_raw_files_and_search_order(fake, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in NAMES:
        (raw / name).write_bytes(gzip.decompress((fake / f"{name}.gz").read_bytes()))
    monkeypatch.setenv("JAXREG_DATA_DIR", str(raw))
    from_env = data.load("mnist", n_val=0, n_test=50)
    assert from_env.info["files"][NAMES[0]] == str(raw / NAMES[0])
    # data_dir comes before the environment variable, and DIR/mnist/ before DIR/.
    nested = tmp_path / "nested"
    shutil.copytree(fake, nested / "mnist")
    shutil.copytree(fake, nested, dirs_exist_ok=True)
    from_arg = data.load("mnist", n_val=0, n_test=50, data_dir=nested)
    assert from_arg.info["files"][NAMES[0]] == str(nested / "mnist" / f"{NAMES[0]}.gz")
    np.testing.assert_array_equal(from_env.train.x, from_arg.train.x)
    np.testing.assert_array_equal(from_env.test.y, from_arg.test.y)


def corrupt_copy(fake: Path, folder: Path, content: bytes | None, packed: bytes | None) -> Path:
    """The fake files in ``folder``, train images replaced by raw ``content`` or gz ``packed``."""
    folder.mkdir()
    for name in NAMES[1:]:
        (folder / f"{name}.gz").symlink_to(fake / f"{name}.gz")
    if content is not None:
        (folder / NAMES[0]).write_bytes(content)
        return folder / NAMES[0]
    (folder / f"{NAMES[0]}.gz").write_bytes(packed)
    return folder / f"{NAMES[0]}.gz"


@pytest.mark.parametrize("damage, expected", [
    ("truncated gz", "not a valid gzip file"),
    ("flipped gz bytes", "not a valid gzip file"),
    ("bad magic", "bad magic number 2049, expected 2051 for IDX images"),
    ("short payload", "payload is 47039999 bytes, but dimensions (60000, 28, 28) need 47040000"),
    ("bad dimensions", "header gives dimensions (60000, 28, 29), expected (60000, 28, 28)"),
    ("no header", "3 bytes is too short for the 16-byte IDX header"),
])
def test_mnist_corrupt_file_errors(fake, tmp_path, monkeypatch, damage, expected):
    packed = (fake / f"{NAMES[0]}.gz").read_bytes()
    good = idx_bytes(NAMES[0])
    if damage == "truncated gz":
        path = corrupt_copy(fake, tmp_path / "d", None, packed[: len(packed) // 2])
    elif damage == "flipped gz bytes":
        flipped = bytearray(packed)
        flipped[len(packed) // 2: len(packed) // 2 + 8] = bytes(8)
        path = corrupt_copy(fake, tmp_path / "d", None, bytes(flipped))
    else:
        content = {"bad magic": np.array([2049], ">u4").tobytes() + good[4:],
                   "short payload": good[:-1],
                   "bad dimensions": good[:12] + np.array([29], ">u4").tobytes() + good[16:],
                   "no header": b"abc"}[damage]
        # Hash patched to match, so the check that follows it (parsing) is what fails.
        monkeypatch.setitem(data.MNIST_SHA256, NAMES[0], hashlib.sha256(content).hexdigest())
        path = corrupt_copy(fake, tmp_path / "d", content, None)
    with pytest.raises(data.DatasetError) as err:
        data.load("mnist", data_dir=tmp_path / "d", n_val=0)
    assert str(err.value).startswith(f"{path.resolve()}: {expected}")
    # No gzip or NumPy traceback chained underneath: the message says it all.
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_mnist_offline_error_names_every_place(fake, tmp_path, monkeypatch, server):
    base, _ = server
    monkeypatch.setattr(data, "MNIST_MIRRORS", [base + "missing/", "http://127.0.0.1:1/"])
    monkeypatch.setenv("JAXREG_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(data.DatasetError) as err:
        data.load("mnist", data_dir=tmp_path / "arg", n_val=0)
    assert isinstance(err.value, OSError)
    message = str(err.value)
    for folder in ("arg/mnist", "arg", "env/mnist", "env", "cache/mnist"):
        for file in (NAMES[0], NAMES[0] + ".gz"):
            assert f"  {tmp_path / folder / file}\n" in message
    assert f"{base}missing/{NAMES[0]}.gz: HTTP Error 404" in message
    assert f"http://127.0.0.1:1/{NAMES[0]}.gz: <urlopen error" in message
    assert "JAXREG_DATA_DIR" in message and "data_dir=" in message
    with pytest.raises(data.DatasetError, match="download=False, so it was not downloaded"):
        data.load("mnist", data_dir=tmp_path / "arg", n_val=0, download=False)


def test_mnist_download_into_cache_once(fake, tmp_path, monkeypatch, server):
    base, requests = server
    monkeypatch.setattr(data, "MNIST_MIRRORS", [base + "good/"])
    first = data.load("mnist", key=0, n_val=10)
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    assert len(requests) == 4 and first.info["source"] == str(cache.resolve())
    second = data.load("mnist", key=0, n_val=10)
    assert len(requests) == 4  # served from the cache
    np.testing.assert_array_equal(first.val.x, second.val.x)


def test_mnist_download_falls_back_to_the_next_mirror(fake, tmp_path, monkeypatch, server):
    base, requests = server
    monkeypatch.setattr(data, "MNIST_MIRRORS", [base + "missing/", base + "good"])
    ds = data.load("mnist", n_val=0, n_test=10)
    assert index_of(ds.test.x).tolist() == list(range(10))
    assert requests == [f"/{mirror}/{n}.gz" for n in NAMES for mirror in ("missing", "good")]


def test_mnist_download_hash_mismatch_leaves_nothing(fake, tmp_path, monkeypatch, server):
    base, _ = server
    monkeypatch.setattr(data, "MNIST_MIRRORS", [base + "bad/"])
    expected = data.MNIST_SHA256[NAMES[0]]
    content = bytearray(idx_bytes(NAMES[0]))
    content[-1] ^= 0xFF
    got = hashlib.sha256(content).hexdigest()
    with pytest.raises(data.DatasetError) as err:
        data.load("mnist", n_val=0)
    assert (f"{base}bad/{NAMES[0]}.gz: SHA-256 mismatch for {base}bad/{NAMES[0]}.gz:"
            f" expected {expected}, got {got}") in str(err.value)
    cache = tmp_path / "cache" / "mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_mnist_opener_is_injectable(fake, monkeypatch):
    monkeypatch.setattr(data, "MNIST_MIRRORS", ["https://mirror.invalid/mnist"])
    fetched = []

    def opener(url: str) -> bytes:
        fetched.append(url)
        if "train-images" in url:
            raise urllib.error.URLError("pretend offline")
        return (fake / url.rsplit("/", 1)[1]).read_bytes()

    with pytest.raises(data.DatasetError, match="mirror.invalid/mnist/train-images"):
        data.load("mnist", n_val=0, opener=opener)
    assert fetched == [f"https://mirror.invalid/mnist/{NAMES[0]}.gz"]


def test_module_imports_both_ways():
    assert jaxreg.data is data


def test_float64_features_are_computed_in_float64():
    low, high = data.load("blobs"), data.load("blobs", dtype="float64")
    assert low.train.x.dtype == np.float32 and high.train.x.dtype == np.float64
    np.testing.assert_array_equal(high.train.y, low.train.y)
    np.testing.assert_array_equal(high.train.x.astype(np.float32), low.train.x)
    assert np.any(high.train.x != low.train.x.astype(np.float64))  # float32 would have rounded
