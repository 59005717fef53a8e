"""Data augmentation: keyed, jittable, per-example image transforms whose strengths may be traced.

Images are ``(height, width, channels)`` with values in ``[0, 1]``; a batch is ``(n, H, W, C)``.
Every strength is an argument (a field of :class:`jaxreg.HParams` in training), so one compiled
program sweeps it: ``augment(key, images, hparams)`` draws each example's transform from its
own key, at the member's strengths. A strength of 0 leaves an image exactly as it was.

The transforms, in the order they are applied:

* geometric, as ONE affine warp per example (bilinear, empty pixels 0): a left-right mirror
  with probability ``flip``; a rotation uniform in ``[-rotate, rotate]`` degrees; a shear
  uniform in ``[-shear, shear]`` degrees; a zoom, scale uniform in ``[1 - zoom, 1 + zoom]``; a
  translation of a whole number of pixels uniform in ``[-shift, shift]`` on each axis (a
  random crop of the image padded by ``shift``);
* a Gaussian blur of sigma uniform in ``[0, blur]`` (a static ``blur_size`` kernel);
* brightness (``+ U(-brightness, brightness)``), contrast (``(x - mean) * U(1 - c, 1 + c) +
  mean``), saturation (colour images, ``U(1 - s, 1 + s)``), Gaussian noise of std ``noise``;
  then clipped to ``[0, 1]``.

Digits are not mirror symmetric (a mirrored 2 is no digit, a mirrored 3 looks like an E):
``flip`` is 0 by default and should stay 0 for them. The image maths is dm-pix's
(``affine_transform``, ``gaussian_blur``, ``adjust_*``); jaxreg draws the strengths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dm_pix
import jax
import jax.numpy as jnp

from jaxreg.errors import InputError
from jaxreg.hparams import AUGMENTATIONS

Array = jax.Array

__all__ = ["AUGMENTATIONS", "affine_matrix", "augment", "augment_image", "warp"]

_GEOMETRIC = ("flip", "shift", "rotate", "zoom", "shear")


def affine_matrix(height: int, width: int, *, flip=0.0, angle=0.0, shear=0.0, scale=1.0, shift=(0.0, 0.0)):
    """The pull matrix and offset of a warp about the image centre (scipy.ndimage's convention).

    An output pixel ``o = (row, col)`` takes the input at ``matrix @ o + offset``. The forward
    transform mirrors left-right if ``flip``, then shears by ``shear`` and rotates by ``angle``
    (radians, counter-clockwise as displayed), scales by ``scale``, and translates by ``shift``
    (rows, cols).

    Returns:
        ``(matrix, offset)``: a ``(2, 2)`` array and a ``(2,)`` array.
    """
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2])
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Forward map on (row, col) about the centre: rotation (rows grow downwards), shear, zoom.
    rotation = jnp.array([[cos, -sin], [sin, cos]])
    shearing = jnp.array([[1.0, 0.0], [jnp.tan(shear), 1.0]])
    mirror = jnp.array([[1.0, 0.0], [0.0, 1.0 - 2.0 * jnp.asarray(flip, jnp.float32)]])
    forward = scale * rotation @ shearing @ mirror
    matrix = jnp.linalg.inv(forward)
    offset = centre - matrix @ (centre + jnp.asarray(shift, matrix.dtype))
    return matrix, offset


def warp(image: Array, matrix: Array, offset: Array) -> Array:
    """``image`` resampled at ``matrix @ o + offset`` (bilinear, 0 outside): one affine warp."""
    full = jnp.eye(3, dtype=matrix.dtype).at[:2, :2].set(matrix)
    return dm_pix.affine_transform(image, full, offset=jnp.append(offset, 0.0), order=1,
                                   mode="constant", cval=0.0).astype(image.dtype)


def _uniform(key, half_width, dtype):
    return jax.random.uniform(key, (), dtype, -1.0, 1.0) * half_width


def augment_image(key: Array, image: Array, strengths: Any, *, enabled: Sequence[str] = AUGMENTATIONS,
                  blur_size: int = 5) -> Array:
    """One image, augmented at ``strengths`` (anything with the fields of ``AUGMENTATIONS``).

    Args:
        key: this example's key.
        image: ``(H, W, C)``, values in ``[0, 1]``.
        strengths: e.g. a :class:`jaxreg.HParams`; fields may be traced scalars.
        enabled: the transforms to compile; the others are skipped (their strengths ignored).
        blur_size: the Gaussian kernel's size in pixels (static).

    Returns:
        The augmented image, same shape and dtype, clipped to ``[0, 1]``.
    """
    dtype = image.dtype
    height, width, channels = image.shape
    keys = dict(zip(AUGMENTATIONS, jax.random.split(key, len(AUGMENTATIONS))))
    strength = {name: jnp.asarray(getattr(strengths, name), dtype) for name in enabled}
    out = image
    if any(name in enabled for name in _GEOMETRIC):
        flip = (jax.random.uniform(keys["flip"], (), dtype) < strength["flip"]) if "flip" in enabled else 0.0
        angle = _uniform(keys["rotate"], strength["rotate"], dtype) * (math.pi / 180) if "rotate" in enabled else 0.0
        shear = _uniform(keys["shear"], strength["shear"], dtype) * (math.pi / 180) if "shear" in enabled else 0.0
        scale = 1.0 + _uniform(keys["zoom"], strength["zoom"], dtype) if "zoom" in enabled else 1.0
        shift = (0.0, 0.0)
        if "shift" in enabled:
            # A whole number of pixels, each uniform in [-shift, shift]: floor(U(0, 2s+1)) - s.
            drawn = jax.random.uniform(keys["shift"], (2,), dtype, 0.0, 1.0) * (2 * strength["shift"] + 1)
            shift = jnp.minimum(jnp.floor(drawn), 2 * strength["shift"]) - strength["shift"]
        matrix, offset = affine_matrix(height, width, flip=flip, angle=angle, shear=shear, scale=scale,
                                       shift=shift)
        moves = sum(strength[name] for name in _GEOMETRIC if name in enabled) > 0
        out = jnp.where(moves, warp(out, matrix.astype(dtype), offset.astype(dtype)), out)
    if "blur" in enabled:
        sigma = jax.random.uniform(keys["blur"], (), dtype) * strength["blur"]
        blurred = dm_pix.gaussian_blur(out, jnp.maximum(sigma, 1e-3), blur_size)
        out = jnp.where(sigma > 0, blurred, out)  # sigma 0 is the identity, not a 1e-3 blur
    if "brightness" in enabled:
        out = out + _uniform(keys["brightness"], strength["brightness"], dtype)
    if "contrast" in enabled:
        contrasted = dm_pix.adjust_contrast(out, 1.0 + _uniform(keys["contrast"], strength["contrast"], dtype))
        out = jnp.where(strength["contrast"] > 0, contrasted, out)  # bitwise the identity at 0
    if "saturation" in enabled and channels == 3:
        saturated = dm_pix.adjust_saturation(jnp.clip(out, 0.0, 1.0),
                                             1.0 + _uniform(keys["saturation"], strength["saturation"], dtype))
        out = jnp.where(strength["saturation"] > 0, saturated, out)
    if "noise" in enabled:
        out = out + strength["noise"] * jax.random.normal(keys["noise"], out.shape, dtype)
    return jnp.clip(out, 0.0, 1.0).astype(dtype)


def augment(key: Array, images: Array, strengths: Any, *, enabled: Sequence[str] = AUGMENTATIONS,
            blur_size: int = 5) -> Array:
    """A batch of images ``(n, H, W, C)``, each augmented with its own key (split from ``key``).

    Example ``i`` uses ``jax.random.fold_in(key, i)``, so an example's transform depends on
    its position in the batch and the key, not on the batch size.

    >>> import jax, jax.numpy as jnp
    >>> from jaxreg.hparams import make_hparams
    >>> from jaxreg.models import mlp
    >>> hp = make_hparams(mlp((64, 10)), rotate=15.0, shift=1)
    >>> augment(jax.random.key(0), jnp.zeros((4, 8, 8, 1)), hp).shape
    (4, 8, 8, 1)
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise InputError(f"images: expected a batch of shape (n, height, width, channels), got {images.shape}")
    unknown = [name for name in enabled if name not in AUGMENTATIONS]
    if unknown:
        raise InputError(f"augment: expected names among {', '.join(AUGMENTATIONS)}, got {unknown[0]!r}")
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(images.shape[0]))
    return jax.vmap(lambda k, image: augment_image(k, image, strengths, enabled=tuple(enabled),
                                                   blur_size=blur_size))(keys, images)
