"""What a source-specific check found for a candidate label, and the numbers the verdict reads from it (numpy
only: the verdict imports this, never the scan that runs the check, which is ncjax.scan.sources)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A checked candidate whose source spread exceeds this is set aside as a natural feature (never the one with the
# smallest spread): the smallest value, on a 0.05 grid, that keeps every planted or real target among the
# development scans' candidates, the embedded demo's 33 (2.26) among them (experiments/score.md).
DEFAULT_MAX_SPREAD = 2.3
CHECKED_CANDIDATES = 3  # the score's candidates given the check, largest ratio first


@dataclass(frozen=True)
class SourceCheck:
    """One candidate label's source-specific triggers."""

    label: int
    label_norm: float  # the norm of the label's own trigger (all classes), as the verdict reads it
    sources: tuple[int, ...]
    norms: tuple[float, ...]  # per source: its smallest trigger's norm (NaN where it never reached the threshold)

    @property
    def reached_share(self) -> float:
        """Share of the sources whose search reached the attack-success threshold."""
        return float(np.mean(np.isfinite(self.norms))) if self.norms else float("nan")

    @property
    def spread(self) -> float:
        """Upper over lower quartile of the source-specific norms (unreached sources count as infinitely
        large): near 1 when every class reaches the label through the same trigger, as through an injected
        one; large when a few similar classes reach it cheaply and the rest do not, as through a natural
        feature."""
        if not self.norms:
            return float("nan")
        unreached = 1e30  # a finite stand-in, so quantiles interpolate without inf - inf
        norms = np.nan_to_num(np.asarray(self.norms, np.float64), nan=unreached)
        low, high = np.quantile(norms, 0.25), np.quantile(norms, 0.75)
        if high >= unreached / 2:
            return float("inf")
        return float(high / low) if low > 0 else float("inf")

    @property
    def median_ratio(self) -> float:
        """Median source-specific norm over the label's norm (unreached sources count as infinitely large):
        near 1 when one trigger serves every class, as an injected one does; well below 1 when most classes
        reach the label through smaller, class-specific features."""
        if not self.norms or self.label_norm <= 0:
            return float("nan")
        return float(np.median(np.nan_to_num(np.asarray(self.norms), nan=np.inf)) / self.label_norm)
