"""The score: how many times smaller than a typical label's trigger a label's trigger is.

ratio(label) = median of all labels' norms / the label's norm; the scan's score is the largest ratio. Unlike
the reference's anomaly index, it does not divide by the spread of the norms: with few labels (10 on MNIST),
two small triggers, or a long search that shrinks every trigger, the MAD grows or shrinks with the bulk and
the index stops meaning "abnormally small". It separates infected from clean scans with ROC-AUC 0.965
on the development scans and 0.944 on the held-out ones (the anomaly index: 0.806 and 0.935; experiments/score.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncjax.errors import ConfigError
from ncjax.verdict.per_label import per_label

# Chosen on the development scans (experiments/score.md): the smallest ratio, on a 0.1 grid, that called at most
# 5 % of the clean development scans infected (1 of 36).
DEFAULT_MIN_RATIO = 2.8
# A scan whose score reaches this but not min_ratio is SUSPICIOUS: the smallest ratio, on a 0.1 grid, that calls at
# most 10 % of the clean development scans suspicious (3 of 36, where the reference's MAD rule called 11 so; it
# names 5 of the 8 dev backdoors the score misses; experiments/score.md).
DEFAULT_SUSPICIOUS_RATIO = 2.4


@dataclass(frozen=True)
class ScoreResult:
    labels: np.ndarray  # (L,)
    norms: np.ndarray  # (L,) the norms compared
    ratios: np.ndarray  # (L,) median norm / the label's norm (inf for an empty mask)
    median: float
    score: float  # the largest ratio
    top_label: int  # the label with the largest ratio
    min_ratio: float  # a label is a candidate at this ratio or above
    candidates: tuple[int, ...]  # labels at or above min_ratio, largest ratio first
    note: str | None = None  # why the score cannot be read (too few labels)


def ratio_score(norms, labels=None, *, min_ratio: float = DEFAULT_MIN_RATIO) -> ScoreResult:
    """The ratio of each label and the labels whose ratio reaches `min_ratio`."""
    if not (isinstance(min_ratio, (int, float)) and not isinstance(min_ratio, bool) and np.isfinite(min_ratio)
            and min_ratio > 1):
        raise ConfigError(f"min_ratio must be a finite number > 1 (a ratio of norms), got {min_ratio!r}.")
    norms, labels = per_label(norms, labels, what="norms", nonnegative=True)
    median = float(np.median(norms))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(norms > 0, median / np.where(norms > 0, norms, 1), np.inf)
    top = int(np.argmax(ratios))
    if len(norms) < 3:
        note = f"only {len(norms)} label(s): a median needs at least 3 to stand for a typical label; nothing flagged."
        return ScoreResult(labels, norms, ratios, median, float(ratios[top]), int(labels[top]), float(min_ratio), (),
                           note)
    order = np.argsort(-ratios, kind="stable")
    candidates = tuple(int(labels[i]) for i in order if ratios[i] >= min_ratio)
    return ScoreResult(labels, norms, ratios, median, float(ratios[top]), int(labels[top]), float(min_ratio),
                       candidates)
