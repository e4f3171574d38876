"""A known (true) trigger, given as two pictures or an .npz, to measure a repair against the real attack."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ncjax.errors import MitigationError
from ncjax.models.safe_files import check_regular_file, open_npz
from ncjax.pipeline.triggers import TriggerSet


def read_true_trigger(text: str | None, target: int | None, removed: TriggerSet,
                      image_shape: tuple[int, int, int]) -> TriggerSet | None:
    """--true-trigger MASK.png,PATTERN.png or FILE.npz (mask, pattern) and --true-target as a one-trigger set."""
    if text is None:
        if target is not None:
            raise MitigationError("--true-target goes with --true-trigger.")
        return None
    if target is None:
        if len(removed) != 1:
            raise MitigationError("--true-trigger: say which label it sends images to with --true-target "
                                  f"(the triggers removed are for labels {list(removed.labels)}).")
        target = int(removed.labels[0])
    parts = text.split(",")
    if len(parts) == 1 and parts[0].lower().endswith(".npz"):
        mask, pattern = _npz(parts[0])
    elif len(parts) == 2:
        mask, pattern = _picture(parts[0], 1)[..., 0] / 255.0, _picture(parts[1], image_shape[2])
    else:
        raise MitigationError(f"--true-trigger {text!r}: give MASK.png,PATTERN.png or one .npz with mask and pattern.")
    if mask.shape != tuple(image_shape[:2]) or pattern.shape != tuple(image_shape):
        raise MitigationError(f"--true-trigger: the mask is {mask.shape} and the pattern {pattern.shape}; the model's "
                              f"images are {tuple(image_shape)}.")
    return TriggerSet(np.asarray([target]), mask[None], pattern[None])


def _picture(path: str, channels: int) -> np.ndarray:
    check_regular_file(path, error=MitigationError, what="trigger picture")
    try:
        with Image.open(path) as image:
            picture = image.convert("L" if channels == 1 else "RGB")
            return np.asarray(picture, np.float32).reshape(picture.height, picture.width, -1)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise MitigationError(f"cannot read the trigger picture {path!r} ({type(e).__name__}: {e}).") from None


def _npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open_npz(os.fspath(Path(path)), error=MitigationError, what="trigger file", max_bytes=1 << 28) as data:
            mask, pattern = np.asarray(data["mask"], np.float32), np.asarray(data["pattern"], np.float32)
    except MitigationError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise MitigationError(f"cannot read the trigger file {path!r} ({type(e).__name__}: {e}); it must hold "
                              "arrays 'mask' (H, W) in [0, 1] and 'pattern' (H, W, C) in raw pixels.") from None
    return mask, pattern
