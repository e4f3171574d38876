"""TriggerSet: the exact float triggers a scan found (or a known trigger), written beside report.json.

The scan's PNGs are 8-bit and its report holds norms only; mitigation stamps images with the very masks and
patterns the search returned, so `python -m ncjax.run` also writes them to OUT/triggers.npz.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ncjax.core.printable import printable
from ncjax.data.preprocess import Preprocessing
from ncjax.errors import MitigationError
from ncjax.models.safe_files import open_npz, write_npz_atomic
from ncjax.search.trigger import stamp

TRIGGERS_FILE = "triggers.npz"
FORMAT = "ncjax-triggers-1"
MAX_TRIGGER_BYTES = 1 << 31  # thousands of labels' triggers of large images; far beyond, a hostile header


@dataclass(frozen=True, eq=False)
class TriggerSet:
    """Triggers (mask (H, W) in [0, 1], raw pattern (H, W, C) in [0, 255]) and the label each sends images to.

    `named` are the labels the scan's verdict named (empty for a clean verdict or a trigger given by hand).
    """

    labels: np.ndarray  # (K,) int
    masks: np.ndarray  # (K, H, W)
    patterns: np.ndarray  # (K, H, W, C)
    named: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, np.int64).reshape(-1)
        masks, patterns = np.asarray(self.masks, np.float32), np.asarray(self.patterns, np.float32)
        if masks.ndim != 3 or patterns.ndim != 4 or masks.shape != patterns.shape[:3] or len(labels) != len(masks):
            raise MitigationError(f"triggers: need labels (K,), masks (K, H, W) and patterns (K, H, W, C); got "
                                  f"{labels.shape}, {masks.shape} and {patterns.shape}.")
        slack = 1e-3  # float32 rounding at the ends of the tanh parametrization
        if not (np.all(np.isfinite(masks)) and np.all(np.isfinite(patterns)) and masks.min(initial=0) >= -slack
                and masks.max(initial=0) <= 1 + slack and patterns.min(initial=0) >= -slack
                and patterns.max(initial=0) <= 255 + slack):
            raise MitigationError("triggers: masks must lie in [0, 1] and patterns in [0, 255] (raw pixels).")
        masks, patterns = np.clip(masks, 0, 1), np.clip(patterns, 0, 255)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "named", tuple(int(v) for v in self.named))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def norms(self) -> np.ndarray:
        return self.masks.sum(axis=(1, 2))

    def select(self, labels: Sequence[int]) -> TriggerSet:
        """The triggers of `labels`, in that order."""
        have = [int(v) for v in self.labels]
        missing = [v for v in labels if v not in have]
        if missing:
            raise MitigationError(f"no trigger for label(s) {missing}; the triggers are for labels {have}.")
        index = [have.index(v) for v in labels]
        return TriggerSet(self.labels[index], self.masks[index], self.patterns[index],
                          tuple(v for v in self.named if v in labels))

    def stamp(self, images: np.ndarray, which: int, preprocessing: Preprocessing) -> np.ndarray:
        """Images in the model's input scale with trigger `which` blended in, in raw pixels as the scan does."""
        raw = preprocessing.to_raw(jnp.asarray(images, jnp.float32))
        stamped = stamp(raw, jnp.asarray(self.masks[which]), jnp.asarray(self.patterns[which]))
        return np.asarray(preprocessing.to_model(stamped))

    def save(self, path: str | os.PathLike, *, preprocessing: Preprocessing | None = None,
             verdict: str | None = None) -> None:
        """Write the triggers as an .npz file (written whole, then renamed into place), with the preprocessing
        and the verdict status of the scan that found them."""
        meta = {"format": FORMAT, "named": list(self.named), "verdict": verdict,
                "preprocessing": None if preprocessing is None else vars(preprocessing)}
        write_npz_atomic(path, labels=self.labels, masks=self.masks, patterns=self.patterns,
                         meta=np.asarray(json.dumps(meta)))


@dataclass(frozen=True)
class LoadedTriggers:
    """A triggers file's content: the triggers, the preprocessing and verdict of the scan (None if not recorded)."""

    triggers: TriggerSet
    preprocessing: Preprocessing | None
    verdict: str | None


def load_triggers(path: str | os.PathLike) -> LoadedTriggers:
    """Read a triggers.npz (or the triggers.npz inside a scan's output folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / TRIGGERS_FILE
    if not path.exists():
        raise MitigationError(f"no triggers file at {str(path)!r}: give the output folder of a finished scan "
                              "(python -m ncjax.run writes OUT/triggers.npz) or the file itself.")
    try:
        with open_npz(os.fspath(path), error=MitigationError, what="triggers file",
                      max_bytes=MAX_TRIGGER_BYTES) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, MitigationError):
            raise
        raise MitigationError(f"cannot read the triggers file {str(path)!r} ({type(e).__name__}: {e}).") from None
    missing = {"labels", "masks", "patterns", "meta"} - set(arrays)
    if missing:
        raise MitigationError(f"{str(path)!r} is not an ncjax triggers file (it lacks {sorted(missing)}).")
    try:
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(meta.get("format"))
        settings = meta.get("preprocessing")
        preprocessing = None if settings is None else Preprocessing(**settings)
    except (ValueError, TypeError, AttributeError) as e:
        raise MitigationError(f"{str(path)!r}: its metadata is not an ncjax triggers file's "
                              f"({type(e).__name__}: {printable(e)}).") from None
    triggers = TriggerSet(arrays["labels"], arrays["masks"], arrays["patterns"], tuple(meta.get("named", ())))
    verdict = meta.get("verdict")
    return LoadedTriggers(triggers, preprocessing, verdict if isinstance(verdict, str) else None)
