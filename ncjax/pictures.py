"""Trigger pictures as the reference writes them, so its own MAD script can read them back."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ncjax.result import ScanResult

DEFAULT_PREFIX = "gtsrb"


def picture_paths(out: str | os.PathLike, label: int, prefix: str = DEFAULT_PREFIX) -> dict[str, Path]:
    """`<prefix>_visualize_{mask,pattern,fusion}_label_<k>.png`, the reference's names."""
    return {kind: Path(out) / f"{prefix}_visualize_{kind}_label_{label}.png" for kind in ("mask", "pattern", "fusion")}


def _uint8(x: np.ndarray) -> np.ndarray:
    # Keras' array_to_img(scale=False) casts with astype('uint8'): truncation, which is what the reference's
    # MAD stage reads back.
    return np.clip(x, 0, 255).astype(np.uint8)


def save_trigger_pictures(result: ScanResult, out: str | os.PathLike, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Mask (grayscale x255), pattern (raw RGB) and fusion (mask x pattern) PNGs for every scanned label."""
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for i, label in enumerate(result.labels):
        paths = picture_paths(out, int(label), prefix)
        mask, pattern = result.masks[i], result.patterns[i]
        Image.fromarray(_uint8(mask * 255), "L").save(paths["mask"])
        Image.fromarray(_uint8(pattern), "RGB" if pattern.shape[-1] == 3 else "L").save(paths["pattern"])
        Image.fromarray(_uint8(pattern * mask[..., None]), "RGB" if pattern.shape[-1] == 3 else "L").save(paths["fusion"])
        written += list(paths.values())
    return written
