"""Trigger pictures as the reference writes them, so its own MAD script can read them back."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ncjax.models.safe_files import save_png_atomic
from ncjax.scan.pairs import PairNorms
from ncjax.scan.result import ScanResult
from ncjax.verdict.pairs import PairFinding

DEFAULT_PREFIX = "gtsrb"


def picture_paths(out: str | os.PathLike, label: int, prefix: str = DEFAULT_PREFIX) -> dict[str, Path]:
    """`<prefix>_visualize_{mask,pattern,fusion}_label_<k>.png`, the reference's names."""
    return {kind: Path(out) / f"{prefix}_visualize_{kind}_label_{label}.png" for kind in ("mask", "pattern", "fusion")}


def _uint8(x: np.ndarray) -> np.ndarray:
    # Keras' array_to_img(scale=False) casts with astype('uint8'): truncation, which is what the reference's
    # MAD stage reads back.
    return np.clip(x, 0, 255).astype(np.uint8)


def to_image(pixels: np.ndarray) -> Image.Image:
    """An (H, W, C) raw-pixel array as a picture, as Keras' array_to_img makes it: one channel "L", three "RGB",
    four "RGBA"; other channel counts (no picture format holds them) as the channels' mean in "L"."""
    channels = pixels.shape[-1]
    if channels in (3, 4):
        return Image.fromarray(_uint8(pixels), "RGB" if channels == 3 else "RGBA")
    return Image.fromarray(_uint8(pixels[..., 0] if channels == 1 else pixels.mean(axis=-1)), "L")


def save_trigger_pictures(result: ScanResult, out: str | os.PathLike, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Mask (grayscale x255), pattern (raw pixels) and fusion (mask x pattern) PNGs for every scanned label, in
    the image's own channels (grayscale models get grayscale pictures)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for i, label in enumerate(result.labels):
        written += _save_trigger(result.masks[i], result.patterns[i], picture_paths(out, int(label), prefix))
    return written


def _save_trigger(mask: np.ndarray, pattern: np.ndarray, paths: dict[str, Path]) -> list[Path]:
    save_png_atomic(Image.fromarray(_uint8(mask * 255), "L"), paths["mask"])
    save_png_atomic(to_image(pattern), paths["pattern"])
    save_png_atomic(to_image(pattern * mask[..., None]), paths["fusion"])
    return list(paths.values())


def save_pair_pictures(pairs: PairNorms, findings: Sequence[PairFinding], out: str | os.PathLike,
                       prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Mask, pattern and fusion PNGs of the pairs in `findings` (the flagged ones), named
    <prefix>_pair_<source>_to_<target>_<kind>.png, so a person can look at what the pair scan found."""
    index = {int(c): i for i, c in enumerate(pairs.classes)}
    written = []
    for finding in findings:
        row, col = index[finding.source], index[finding.target]
        stem = Path(out) / f"{prefix}_pair_{finding.source}_to_{finding.target}"
        paths = {kind: Path(f"{stem}_{kind}.png") for kind in ("mask", "pattern", "fusion")}
        written += _save_trigger(pairs.masks[row, col], pairs.patterns[row, col], paths)
    return written
