"""The Neural Cleanse trigger of one label: tanh-parametrized mask and pattern, and the raw-domain blend.

mask = tanh(mask_tanh) / (2 - eps) + 0.5 in [0, 1], one value per (super-)pixel shared by all channels;
pattern = (tanh(pattern_tanh) / (2 - eps) + 0.5) * 255. eps = 1e-7, Keras' epsilon, keeps arctanh finite at
initialization.
"""
from __future__ import annotations

import math
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

TANH_EPSILON = 1e-7


class Trigger(NamedTuple):
    """Free parameters of one label's trigger."""

    mask_tanh: jax.Array  # (H', W', 1), H' = ceil(H / upsample)
    pattern_tanh: jax.Array  # (H, W, C)


def mask_shape(image_shape: tuple[int, int, int], upsample: int) -> tuple[int, int, int]:
    h, w, _ = image_shape
    return (math.ceil(h / upsample), math.ceil(w / upsample), 1)


def _to_tanh(value: jax.Array) -> jax.Array:
    return jnp.arctanh((value - 0.5) * (2 - TANH_EPSILON))


def init_trigger(key: jax.Array, image_shape: tuple[int, int, int], upsample: int) -> Trigger:
    """The reference's random start: mask ~ U[0, 1), pattern ~ U[0, 1) * 255, mapped into tanh space."""
    mask_key, pattern_key = jax.random.split(key)
    mask = jnp.clip(jax.random.uniform(mask_key, mask_shape(image_shape, upsample)), 0.0, 1.0)
    pattern = jnp.clip(jax.random.uniform(pattern_key, image_shape) * 255.0, 0.0, 255.0)
    return Trigger(_to_tanh(mask), _to_tanh(pattern / 255.0))


def trigger_mask(trigger: Trigger, image_shape: tuple[int, int, int], upsample: int) -> jax.Array:
    """The (H, W) mask in [0, 1], super-pixels upsampled and cropped to the image."""
    h, w, _ = image_shape
    mask = jnp.tanh(trigger.mask_tanh[..., 0]) / (2 - TANH_EPSILON) + 0.5
    if upsample > 1:
        mask = jnp.repeat(jnp.repeat(mask, upsample, axis=0), upsample, axis=1)
    return mask[:h, :w]


def trigger_pattern(trigger: Trigger) -> jax.Array:
    """The (H, W, C) pattern in raw pixels [0, 255]."""
    return (jnp.tanh(trigger.pattern_tanh) / (2 - TANH_EPSILON) + 0.5) * 255.0


ArrayT = TypeVar("ArrayT", jax.Array, np.ndarray)


def stamp(raw_images: ArrayT, mask: ArrayT, pattern: ArrayT) -> ArrayT:
    """(1 - mask) * x + mask * pattern, in raw pixels; mask (H, W) broadcasts over channels. Plain arithmetic,
    so numpy arrays in give numpy out (ncjax.lab.inject stamps training images with it)."""
    m = mask[..., None]
    return (1.0 - m) * raw_images + m * pattern
