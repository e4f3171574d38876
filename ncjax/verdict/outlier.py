"""The MAD outlier test of the reference's mad_outlier_detection.py, in plain numpy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ncjax.errors import ConfigError
from ncjax.verdict.per_label import per_label


@dataclass(frozen=True)
class OutlierResult:
    labels: np.ndarray  # (L,)
    norms: np.ndarray  # (L,) the L1 norms compared
    median: float
    mad: float  # consistency * median(|norm - median|)
    anomaly_index: float  # |min(norm) - median| / MAD: the reference's verdict statistic
    indices: np.ndarray  # (L,) |norm - median| / MAD per label
    flagged: tuple[int, ...]  # labels below the median whose index exceeds the threshold, smallest norm first
    flagged_norms: tuple[float, ...]
    threshold: float
    note: str | None = None  # why the test cannot be read the usual way (MAD = 0, too few labels)

    def lines(self) -> list[str]:
        """The reference's three printed lines."""
        return [
            f"median: {self.median:f}, MAD: {self.mad:f}",
            f"anomaly index: {self.anomaly_index:f}",
            "flagged label list: " + ", ".join(f"{label:d}: {norm:2f}"
                                               for label, norm in zip(self.flagged, self.flagged_norms)),
        ]


def l1_norms(masks: np.ndarray, *, quantize: bool = False) -> np.ndarray:
    """Sum of each mask (L, H, W); `quantize` first truncates to k/255 as the reference's PNGs do (Keras'
    array_to_img casts mask * 255 with astype('uint8')) before its MAD script reads them back."""
    masks = np.asarray(masks, np.float64)
    if quantize:
        masks = np.floor(np.clip(masks, 0, 1) * 255) / 255
    return np.abs(masks).sum(axis=tuple(range(1, masks.ndim)))


def mad_outliers(norms, labels=None, *, threshold: float = 2.0, consistency: float = 1.4826) -> OutlierResult:
    """Median absolute deviation test over the labels' trigger norms."""
    norms, labels = per_label(norms, labels, what="norms")
    median = float(np.median(norms))
    deviation = np.abs(norms - median)
    mad = float(consistency * np.median(deviation))
    note = None
    if len(norms) < 3:
        note = f"only {len(norms)} label(s): the MAD test needs at least 3 to say anything; nothing flagged."
        indices = np.full(len(norms), np.nan)
    elif mad == 0:
        note = "MAD is 0 (more than half the norms are equal): labels off the median have an infinite index."
        indices = np.where(deviation > 0, np.inf, 0.0)
    else:
        indices = deviation / mad
    anomaly = float(indices[np.argmin(norms)])
    candidates = [i for i in range(len(norms)) if norms[i] <= median and indices[i] > threshold]
    candidates.sort(key=lambda i: norms[i])
    return OutlierResult(labels, norms, median, mad, anomaly, indices, tuple(int(labels[i]) for i in candidates),
                         tuple(float(norms[i]) for i in candidates), threshold, note)


@dataclass(frozen=True)
class GapResult:
    """The labels the MAD test flags, kept only where their norms stand apart from the rest by a clear gap."""

    flagged: tuple[int, ...]  # smallest norm first; a subset of mad.flagged
    flagged_norms: tuple[float, ...]
    gap: float  # ratio of the next label's norm to the last kept one at the chosen cut (NaN: nothing to cut)
    min_gap: float
    mad: OutlierResult


def gap_outliers(outliers: OutlierResult, *, min_gap: float = 1.5) -> GapResult:
    """Keep the smallest k of the MAD-flagged labels whose norms are separated from the next label's by the
    largest ratio, when that ratio is at least `min_gap`; otherwise keep none.

    A reverse-engineered backdoor trigger is several times smaller than any natural feature; a clean label
    that merely sits at the low end of the distribution is followed closely by others. The MAD-flagged labels
    are always the smallest norms (the index grows as a norm falls below the median), so the cut is a prefix.
    """
    if not min_gap >= 1:
        raise ConfigError(f"min_gap must be >= 1 (a ratio of norms), got {min_gap!r}.")
    candidates = len(outliers.flagged)
    if candidates == 0:
        return GapResult((), (), float("nan"), min_gap, outliers)
    norms = np.sort(outliers.norms)
    below, above = norms[:candidates], norms[1:candidates + 1]
    gaps = np.where(below > 0, above / np.where(below > 0, below, 1), np.inf)  # an empty mask: an infinite gap
    k = int(np.argmax(gaps)) + 1
    gap = float(gaps[k - 1])
    keep = k if gap >= min_gap else 0
    return GapResult(outliers.flagged[:keep], outliers.flagged_norms[:keep], gap, min_gap, outliers)
