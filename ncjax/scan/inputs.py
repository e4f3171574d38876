"""Checks of what a user hands a scan, made before anything is compiled: each failure is a ScanInputError
that says what was wrong and how to fix it."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.errors import ScanInputError
from ncjax.search.config import ScanConfig


def check_model(model: Any) -> tuple[int, int, int]:
    """The model's (H, W, C), once it has what a scan needs."""
    for attr in ("apply", "params", "input_shape", "num_classes"):
        if not hasattr(model, attr):
            raise ScanInputError(
                f"model has no '{attr}': pass a Classifier from ncjax.load_model (or an object with apply, "
                "params, input_shape and num_classes)."
            )
    shape = tuple(model.input_shape)
    if len(shape) != 3:
        raise ScanInputError(f"model.input_shape must be (H, W, C), got {shape}.")
    h, w, c = shape
    if not isinstance(model.num_classes, (int, np.integer)) or model.num_classes < 1:
        raise ScanInputError(f"model.num_classes must be a positive int, got {model.num_classes!r}.")
    return h, w, c


def check_images(images: Any, image_shape: tuple[int, int, int], config: ScanConfig) -> np.ndarray:
    """The clean images as float32 (N, H, W, C), at least one batch of them, all finite."""
    array = np.asarray(images)
    if array.ndim != 4 or tuple(array.shape[1:]) != image_shape:
        raise ScanInputError(
            f"images have shape {array.shape}; the model takes (N, {', '.join(map(str, image_shape))}). "
            "Resize them to the model's input first."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ScanInputError(f"images must be numeric, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ScanInputError("images contain NaN or infinite values.")
    if len(array) < config.batch_size:
        raise ScanInputError(
            f"{len(array)} clean images are fewer than one batch ({config.batch_size}); give more images "
            "or a smaller batch size (ScanConfig.batch_size, --batch-size)."
        )
    return array


def check_labels(labels: Sequence[int] | None, num_classes: int) -> np.ndarray:
    """The labels to scan (all by default): distinct ints in range."""
    if labels is None:
        return np.arange(num_classes)
    values = np.asarray(list(labels))
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ScanInputError(f"labels must be a non-empty list of ints, got {labels!r}.")
    bad = [int(v) for v in values if not 0 <= v < num_classes]
    if bad:
        raise ScanInputError(f"labels {bad} are out of range: the model has {num_classes} classes "
                             f"(0..{num_classes - 1}).")
    if len(set(values.tolist())) != len(values):
        raise ScanInputError(f"labels contain duplicates: {values.tolist()}.")
    return values.astype(np.int64)


def check_key(key: Any) -> jax.Array:
    """A JAX PRNG key (typed, or the legacy uint32 pair)."""
    try:
        key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.shape == (2,) and key.dtype == jnp.uint32):
            return key
    except TypeError:
        pass
    raise ScanInputError("key must be a JAX PRNG key, e.g. jax.random.key(0).")


def check_config_fits(config: ScanConfig, image_shape: tuple[int, int, int]) -> None:
    """Settings that depend on the image size."""
    if config.upsample > max(image_shape[:2]):
        raise ScanInputError(f"the upsample setting ({config.upsample}; --upsample) is larger than the images "
                             f"({image_shape[0]}x{image_shape[1]}): the mask would be one super-pixel. Use at most "
                             f"{max(image_shape[:2])}.")
