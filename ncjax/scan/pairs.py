"""The pair scan: one trigger search per (source, target) pair of classes, all in one vmapped scan.

A source-specific backdoor (only images of a few classes, stamped, go to the target) leaves the target's own
trigger, which must carry every class, ordinary; only the searches from its sources find the small planted one.
Where labels are few (PAIR_SCAN_LIMIT or fewer: K (K - 1) searches, 90 for 10 labels) every pair is searched;
ncjax.verdict.pairs reads the matrix of their norms.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ncjax.errors import ScanInputError
from ncjax.scan.engine import scan_slots
from ncjax.scan.slots import source_slots
from ncjax.search.config import ScanConfig
from ncjax.verdict.outlier import l1_norms

PAIR_SCAN_LIMIT = 20  # at most this many classes with clean images: 380 pair searches


@dataclass(frozen=True, eq=False)
class PairNorms:
    """The pair scan's outcome: row = source class, column = target class."""

    classes: np.ndarray  # (K,) the class ids of the rows and columns
    norms: np.ndarray  # (K, K) each pair's trigger norm; NaN on the diagonal and where it never reached the threshold
    epochs: np.ndarray  # (K, K) epochs each pair's search ran (0 on the diagonal)
    masks: np.ndarray  # (K, K, H, W) each pair's kept mask (zeros on the diagonal)
    patterns: np.ndarray  # (K, K, H, W, C) its pattern, raw pixels
    wall_time_s: float

    @property
    def pairs(self) -> int:
        return len(self.classes) * (len(self.classes) - 1)


def pair_classes(image_labels: Any) -> tuple[int, ...]:
    """The classes the clean images hold: the rows and columns of a pair scan."""
    if image_labels is None:
        raise ScanInputError("the pair scan needs the clean images' labels (image_labels).")
    return tuple(sorted({int(v) for v in np.asarray(image_labels)}))


def scan_pairs(model: Any, images: Any, image_labels: Any, *, config: ScanConfig, key: jax.Array,
               quantize: bool = True, callback=None, checkpoint: str | os.PathLike | None = None,
               resume: bool = False) -> PairNorms:
    """Search a trigger for every ordered pair of the classes in `image_labels` (each search draws only images of
    its source) and return their norms. `config` as given (ScanConfig.pair_search() for the pipeline's); callback,
    checkpoint and resume are scan_slots'."""
    classes = pair_classes(image_labels)
    if len(classes) < 2:
        raise ScanInputError(f"the clean images hold {len(classes)} class(es); a pair scan needs at least two.")
    if len(classes) > PAIR_SCAN_LIMIT:
        raise ScanInputError(f"the clean images hold {len(classes)} classes: {len(classes) * (len(classes) - 1)} "
                             f"pairs, more than a pair scan takes (at most {PAIR_SCAN_LIMIT} classes). Use the "
                             "source check of the score's candidates (ncjax.scan.check_candidates) instead.")
    pairs = [(source, target) for target in classes for source in classes if source != target]
    result = scan_slots(model, images, source_slots(pairs, restarts=config.restarts), image_labels=image_labels,
                        config=config, key=key, callback=callback, checkpoint=checkpoint, resume=resume)
    found = l1_norms(result.masks, quantize=quantize)
    index = {c: i for i, c in enumerate(classes)}
    norms = np.full((len(classes),) * 2, np.nan)
    epochs = np.zeros((len(classes),) * 2, np.int64)
    masks = np.zeros((len(classes),) * 2 + result.masks.shape[1:], np.float32)
    patterns = np.zeros((len(classes),) * 2 + result.patterns.shape[1:], np.float32)
    for i, (slot, norm, reached) in enumerate(zip(result.slots, found, result.reached_threshold)):
        assert slot.source is not None  # every slot here is a pair
        row, col = index[int(slot.source)], index[int(slot.target)]
        epochs[row, col] = max(epochs[row, col], int(result.epochs[i]))
        smaller = reached and not norm >= norms[row, col]  # the smallest over restarts; NaN (none yet) compares False
        if smaller:
            norms[row, col] = float(norm)
        if smaller or slot.restart == 0:  # a pair no start reached keeps its first start's trigger
            masks[row, col], patterns[row, col] = result.masks[i], result.patterns[i]
    return PairNorms(np.asarray(classes), norms, epochs, masks, patterns, result.wall_time_s)
