"""The source-specific check: for a candidate label, one trigger search per source class.

An injected all-to-one trigger carries every class to its target at about the same small norm, the norm of
the label's own trigger; a natural shortcut (a feature the target shares with a few similar classes) is
small only from those classes, so the label's trigger, which must carry every class, is much larger than
most of its source-specific ones. The Neural Cleanse paper notes that partial backdoors need such a
per-source analysis; K-Arm inverts source -> target pairs for the same reason. All pairs of all candidates
run as source slots (ncjax.scan.slots.source_slots) in one vmapped scan.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ncjax.errors import ScanInputError
from ncjax.scan.engine import scan_slots
from ncjax.scan.slots import source_slots
from ncjax.search.config import ScanConfig
from ncjax.verdict.outlier import l1_norms
from ncjax.verdict.score import ScoreResult
from ncjax.verdict.source_check import CHECKED_CANDIDATES, SourceCheck


def pick_sources(label: int, classes: Sequence[int], limit: int | None) -> tuple[int, ...]:
    """The classes other than `label`, or `limit` of them spread evenly over the class ids."""
    others = sorted(int(c) for c in set(classes) if int(c) != label)
    if limit is None or len(others) <= limit:
        return tuple(others)
    return tuple(others[int(i)] for i in np.linspace(0, len(others) - 1, limit).round())


def check_sources(model: Any, images: Any, image_labels: Any, label_norms: dict[int, float], *,
                  config: ScanConfig, key: jax.Array, sources_per_label: int | None = 8, quantize: bool = True,
                  callback=None, checkpoint: str | os.PathLike | None = None,
                  resume: bool = False) -> tuple[SourceCheck, ...]:
    """Run the source-specific searches of every label in `label_norms` ({label: its trigger's norm}) and
    return one SourceCheck each, in that order. config.restarts applies per pair; callback, checkpoint and
    resume are scan_slots'."""
    if not label_norms:
        return ()
    if image_labels is None:
        raise ScanInputError("the source-specific check needs the clean images' labels (image_labels).")
    if sources_per_label is not None and (not isinstance(sources_per_label, int) or sources_per_label < 1):
        raise ScanInputError(f"sources_per_label must be a positive int or None, got {sources_per_label!r}.")
    classes = sorted({int(v) for v in np.asarray(image_labels)})
    pairs = [(source, label) for label in label_norms for source in pick_sources(label, classes, sources_per_label)]
    if not pairs:
        raise ScanInputError("the clean images hold no class other than the candidates: nothing to check.")
    result = scan_slots(model, images, source_slots(pairs, restarts=config.restarts), image_labels=image_labels,
                        config=config, key=key, callback=callback, checkpoint=checkpoint, resume=resume)
    norms = l1_norms(result.masks, quantize=quantize)
    best = {pair: np.nan for pair in pairs}
    for slot, norm, reached in zip(result.slots, norms, result.reached_threshold):
        assert slot.source is not None  # every slot here is a source-specific one
        pair = (int(slot.source), int(slot.target))
        if reached:
            best[pair] = float(norm) if np.isnan(best[pair]) else min(best[pair], float(norm))
    return tuple(SourceCheck(label=int(label), label_norm=float(norm),
                             sources=tuple(s for s, t in pairs if t == label),
                             norms=tuple(best[(s, t)] for s, t in pairs if t == label))
                 for label, norm in label_norms.items())


def check_candidates(model: Any, images: Any, image_labels: Any, score: ScoreResult | None, *, config: ScanConfig,
                     key: jax.Array, sources_per_label: int | None = 8, quantize: bool = True, callback=None,
                     checkpoint: str | os.PathLike | None = None, resume: bool = False) -> tuple[SourceCheck, ...]:
    """The check the verdict reads: the score's CHECKED_CANDIDATES largest candidates, one unfocused search per
    pair of at most config.check_epochs epochs (config.source_check(): it keeps the check's cost bounded). Empty
    when the score names none, and for a verdict without a score (`Verdict.score` is None when the verdict is
    inconclusive or another rule's)."""
    if score is None:
        return ()
    norms = dict(zip(score.labels.tolist(), score.norms.tolist()))
    candidates = {label: norms[label] for label in score.candidates[:CHECKED_CANDIDATES]}
    return check_sources(model, images, image_labels, candidates, config=config.source_check(), key=key,
                         sources_per_label=sources_per_label, quantize=quantize, callback=callback,
                         checkpoint=checkpoint, resume=resume)
