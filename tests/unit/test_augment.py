"""Data augmentation: each transform against scipy.ndimage or a NumPy formula, identity at
strength zero, determinism per key, jit and vmap with per-member strengths, and in the engine."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndimage

from jaxreg import TrainConfig, make_hparams, stack_hparams, train_batch
from jaxreg.augment import AUGMENTATIONS, affine_matrix, augment, augment_image, warp
from jaxreg.data import Dataset, Split
from jaxreg.errors import InputError
from jaxreg.models import mlp

NET = mlp((64, 10))
RNG = np.random.default_rng(0)
IMAGE = RNG.random((9, 7, 1))  # odd, non-square: centre and axis mistakes show
COLOUR = RNG.random((6, 6, 3))


def strengths(**values):
    return make_hparams(NET, **values)


def pulled(**kw):
    matrix, offset = affine_matrix(*IMAGE.shape[:2], **kw)
    return np.asarray(warp(jnp.asarray(IMAGE), matrix, offset))


# --- the warp against scipy.ndimage, one geometric transform at a time -------------------------

@pytest.mark.parametrize("degrees", [7.0, -30.0, 90.0])
def test_rotation_is_scipy_rotate(x64, degrees):
    expected = ndimage.rotate(IMAGE, degrees, reshape=False, order=1, mode="constant", cval=0.0)
    np.testing.assert_allclose(pulled(angle=math.radians(degrees)), expected, atol=1e-12)


def test_shift_is_scipy_shift(x64):
    expected = ndimage.shift(IMAGE, (2.0, -1.0, 0.0), order=1, mode="constant", cval=0.0)
    np.testing.assert_array_equal(pulled(shift=(2.0, -1.0)), expected)


def test_zoom_and_shear_are_scipy_affine_transform(x64):
    centre = np.array([4.0, 3.0, 0.0])
    for kw, forward in ((dict(scale=1.25), np.diag([1.25, 1.25, 1.0])),
                        (dict(shear=math.radians(20)), np.array([[1, 0, 0], [math.tan(math.radians(20)), 1, 0],
                                                                 [0, 0, 1.0]]))):
        pull = np.linalg.inv(forward)
        expected = ndimage.affine_transform(IMAGE, pull, offset=centre - pull @ centre, order=1,
                                            mode="constant", cval=0.0)
        np.testing.assert_allclose(pulled(**kw), expected, atol=1e-12)


def test_flip_mirrors_left_right(x64):
    np.testing.assert_array_equal(pulled(flip=1.0), IMAGE[:, ::-1])


def test_blur_is_scipy_gaussian_filter(x64):
    sigma, size = 0.8, 5
    expected = ndimage.gaussian_filter(IMAGE[..., 0], sigma, mode="constant", cval=0.0,
                                       truncate=(size // 2) / sigma)
    ours = augment_image(jax.random.key(0), jnp.asarray(IMAGE), strengths(blur=sigma), enabled=("blur",),
                         blur_size=size)
    # sigma is drawn in [0, blur]: find it from the key as augment_image does
    u = float(jax.random.uniform(jax.random.split(jax.random.key(0), len(AUGMENTATIONS))[5], (), jnp.float64))
    expected = ndimage.gaussian_filter(IMAGE[..., 0], u * sigma, mode="constant", cval=0.0,
                                       truncate=(size // 2) / (u * sigma))
    np.testing.assert_allclose(np.asarray(ours)[..., 0], np.clip(expected, 0, 1), atol=1e-12)


# --- the drawn transforms --------------------------------------------------------------------

def test_zero_strength_is_the_identity_bitwise():
    images = jnp.asarray(RNG.random((5, 8, 8, 1)), jnp.float32)
    out = jax.jit(lambda k, x: augment(k, x, strengths(), enabled=AUGMENTATIONS))(jax.random.key(3), images)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(images))
    colour = jnp.asarray(COLOUR[None], jnp.float32)
    out = jax.jit(lambda k, x: augment(k, x, strengths()))(jax.random.key(3), colour)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(colour))


def test_shift_draws_whole_pixel_translations_within_range():
    image = np.zeros((8, 8, 1), np.float32)
    image[3:5, 3:5] = 1.0
    seen = set()
    for k in range(40):
        out = np.asarray(augment_image(jax.random.key(k), jnp.asarray(image), strengths(shift=1), enabled=("shift",)))
        matches = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                   if np.array_equal(out, ndimage.shift(image, (dr, dc, 0), order=0, mode="constant"))]
        assert len(matches) == 1, out[..., 0]
        seen.add(matches[0])
    assert len(seen) == 9  # every shift in [-1, 1]^2 is drawn


def test_photometric_transforms_follow_their_formulas():
    image = jnp.asarray(0.3 + 0.4 * RNG.random((6, 6, 1)), jnp.float32)  # no clipping for these deltas
    for k in range(5):
        out = np.asarray(augment_image(jax.random.key(k), image, strengths(brightness=0.2), enabled=("brightness",)))
        delta = out - np.asarray(image)
        assert np.ptp(delta) < 1e-6 and abs(delta.mean()) <= 0.2
        out = np.asarray(augment_image(jax.random.key(k), image, strengths(contrast=0.3), enabled=("contrast",)))
        mean = np.asarray(image).mean()
        factor = (out - mean) / (np.asarray(image) - mean)
        assert np.ptp(factor) < 1e-3 and 0.7 <= factor.mean() <= 1.3
    noisy = augment_image(jax.random.key(0), jnp.full((64, 64, 1), 0.5), strengths(noise=0.05), enabled=("noise",))
    assert abs(float(jnp.std(noisy)) - 0.05) < 0.005


def test_every_transform_keeps_shape_range_and_dtype_and_depends_on_the_key():
    images = jnp.asarray(RNG.random((4, 6, 6, 3)), jnp.float32)
    full = strengths(flip=0.5, shift=1, rotate=20, zoom=0.2, shear=10, blur=1.0, brightness=0.3, contrast=0.3,
                     saturation=0.5, noise=0.1)
    for name in AUGMENTATIONS:
        one = augment(jax.random.key(1), images, full, enabled=(name,))
        again = augment(jax.random.key(1), images, full, enabled=(name,))
        other = augment(jax.random.key(2), images, full, enabled=(name,))
        assert one.shape == images.shape and one.dtype == images.dtype, name
        assert float(one.min()) >= 0.0 and float(one.max()) <= 1.0, name
        np.testing.assert_array_equal(np.asarray(one), np.asarray(again), err_msg=name)
        assert not np.array_equal(np.asarray(one), np.asarray(other)), name


def test_jit_and_vmap_over_member_strengths_equal_separate_calls():
    images = jnp.asarray(RNG.random((3, 8, 8, 1)), jnp.float32)
    members = stack_hparams([strengths(rotate=r, zoom=z, blur=b) for r, z, b in ((0, 0, 0), (15, 0.1, 0.5),
                                                                                 (30, 0.2, 1.0))])
    enabled = ("rotate", "zoom", "blur")
    batched = jax.jit(jax.vmap(lambda hp: augment(jax.random.key(7), images, hp, enabled=enabled)))(
        jax.tree_util.tree_map(jnp.asarray, members))
    for i in range(3):
        alone = augment(jax.random.key(7), images, jax.tree_util.tree_map(lambda a: a[i], members), enabled=enabled)
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(alone), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(batched[0]), np.asarray(images))  # strength 0: untouched


def test_augment_refuses_bad_input():
    with pytest.raises(InputError, match=r"^images: expected a batch of shape \(n, height, width, channels\), "
                                         r"got \(8, 8\)$"):
        augment(jax.random.key(0), jnp.zeros((8, 8)), strengths())
    with pytest.raises(InputError, match="^augment: expected names among flip, shift, .*, got 'mirror'$"):
        augment(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), strengths(), enabled=("mirror",))


# --- in the engine ---------------------------------------------------------------------------

def _digits_like(n=40):
    rng = np.random.default_rng(1)
    x = rng.random((n, 64)).astype(np.float32)
    y = (x[:, :32].sum(1) > x[:, 32:].sum(1)).astype(np.int32)
    return Dataset(Split(x, y), Split(x[:10], y[:10]), Split(x[:0], y[:0]), {})


def test_engine_augments_training_batches_only_and_zero_strength_changes_nothing():
    data = _digits_like()
    net = mlp((64, 8, 2))
    plain = TrainConfig(model=net, epochs=2, batch_size=10)
    augmented = TrainConfig(model=net, epochs=2, batch_size=10, augment=("rotate", "shift", "noise"), image_shape=(8, 8))
    hp = stack_hparams([make_hparams(net, learning_rate=0.1)] * 2)
    base = train_batch(plain, data)(np.arange(2), hp)
    same = train_batch(augmented, data)(np.arange(2), hp)
    np.testing.assert_array_equal(base.curves["val_loss"], same.curves["val_loss"])
    strong = stack_hparams([make_hparams(net, learning_rate=0.1, rotate=20, shift=1, noise=0.1)] * 2)
    moved = train_batch(augmented, data)(np.arange(2), strong)
    assert not np.array_equal(base.curves["val_loss"], moved.curves["val_loss"])


def test_engine_member_strengths_are_independent_in_one_batch():
    data = _digits_like()
    net = mlp((64, 8, 2))
    config = TrainConfig(model=net, epochs=2, batch_size=10, augment=("rotate", "zoom"), image_shape=(8, 8))
    members = [make_hparams(net, learning_rate=0.1, rotate=r, zoom=z) for r, z in ((0, 0), (20, 0.2), (10, 0.1))]
    together = train_batch(config, data)(np.zeros(3, int), stack_hparams(members))
    for i, hp in enumerate(members):
        alone = train_batch(config, data, chunk_size=3)(np.zeros(3, int), stack_hparams([hp] * 3))
        np.testing.assert_array_equal(together.curves["val_loss"][i], alone.curves["val_loss"][0])


def test_engine_refuses_what_it_cannot_augment():
    net = mlp((64, 8, 2))
    with pytest.raises(InputError, match=r"^image_shape: expected the images' \(height, width\[, channels\]\) to "
                                         r"augment 'rotate' for a model whose input is \(64,\), got None$"):
        TrainConfig(model=net, augment=("rotate",))
    with pytest.raises(InputError, match=r"^image_shape: expected 64 values per image \(the model's input\), "
                                         r"got \(9, 9, 1\)$"):
        TrainConfig(model=net, augment=("rotate",), image_shape=(9, 9))
    with pytest.raises(InputError, match=r"^augment: expected 'saturation' only for colour images \(3 channels\), "
                                         r"got images of shape \(8, 8, 1\)$"):
        TrainConfig(model=net, augment=("saturation",), image_shape=(8, 8))
    data = _digits_like()
    with pytest.raises(InputError, match=r"^hparams.rotate: expected 0 when TrainConfig.augment does not name "
                                         r"'rotate' \(augment = \['zoom'\]\), got 15.0$"):
        config = TrainConfig(model=net, epochs=1, augment=("zoom",), image_shape=(8, 8))
        train_batch(config, data)(np.arange(2), stack_hparams([make_hparams(net, rotate=15)] * 2))
    scaled = data._replace(train=Split(data.train.x * 255, data.train.y))
    with pytest.raises(InputError, match=r"^data.train.x: expected image values in \[0, 1\] to augment \(zoom\), "
                                         r"got values in \[0.\d+, 25\d.\d+\]$"):
        config = TrainConfig(model=net, epochs=1, augment=("zoom",), image_shape=(8, 8))
        train_batch(config, scaled)(np.arange(2), stack_hparams([make_hparams(net, zoom=0.1)] * 2))


def test_a_sweep_that_augments_draws_its_augmentations(tmp_path):
    import jaxreg

    spec = {"name": "aug", "data": {"dataset": "digits", "per_class": 2},
            "model": {"kind": "cnn", "channels": [4], "hidden": [8]},
            "train": {"epochs": 2, "batch_size": 10},
            "hparams": {"learning_rate": 0.05, "rotate": {"values": [0.0, 15.0]}, "noise": 0.1},
            "search": {"seeds": 1}}
    result = jaxreg.sweep(spec, out=tmp_path / "aug", progress=False)
    assert (tmp_path / "aug" / "augmentation.png") in result.written
    assert (tmp_path / "aug" / "augmentation.png").stat().st_size > 5000
    records = [json.loads(line) for line in (tmp_path / "aug" / "trials.jsonl").read_text().splitlines()]
    assert sorted(r["hparams"].get("rotate", 0.0) for r in records) == [0.0, 15.0]
    assert all(r["hparams"]["noise"] == 0.1 and "zoom" not in r["hparams"] for r in records)
