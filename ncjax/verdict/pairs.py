"""The pair statistic: which (source, target) pairs of a pair scan (ncjax.scan.pairs) have abnormally small
triggers for themselves, in numpy only.

Pair norms vary by row (some classes are easy to move anywhere) and by column (some labels are easy to reach).
The log norms are split by median polish into a row effect, a column effect and a residual per pair. Similar
classes (a 30 and a 50 speed-limit sign) leave small residuals both ways; a source-specific backdoor leaves one
small residual, from its source to its target, while the way back stays ordinary. A pair's asymmetry is
exp(residual of the way back - its residual): how many times smaller its trigger is than the reverse pair's,
once rows and columns are accounted for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ncjax.errors import ConfigError

# A pair whose asymmetry reaches this flags its target: the smallest value on a 0.1 grid above every development
# clean model's largest asymmetry (2.07; experiments/pair_benchmark.md).
DEFAULT_MIN_ASYMMETRY = 2.1
_POLISH_ROUNDS = 10


@dataclass(frozen=True)
class PairFinding:
    """One pair whose trigger is abnormally small for itself."""

    source: int
    target: int
    norm: float
    asymmetry: float


@dataclass(frozen=True, eq=False)
class PairScore:
    """Every pair's asymmetry and the pairs at min_asymmetry or above, largest first."""

    classes: np.ndarray  # (K,)
    norms: np.ndarray  # (K, K) source x target; NaN on the diagonal and where no trigger reached the threshold
    asymmetry: np.ndarray  # (K, K); NaN on the diagonal and for pairs that never reached the threshold
    min_asymmetry: float
    flagged: tuple[PairFinding, ...]

    @property
    def top(self) -> PairFinding:
        """The pair with the largest asymmetry (flagged or not)."""
        row, col = np.unravel_index(np.nanargmax(self.asymmetry), self.asymmetry.shape)
        return _finding(self.classes, self.norms, self.asymmetry, int(row), int(col))

    @property
    def targets(self) -> tuple[int, ...]:
        """The flagged pairs' targets, each once, in the order of their largest asymmetry."""
        return tuple(dict.fromkeys(f.target for f in self.flagged))

    def as_dict(self) -> dict:
        def cells(values):
            return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in values]

        return {"classes": self.classes.tolist(), "norms": cells(self.norms), "asymmetry": cells(self.asymmetry),
                "min_asymmetry": self.min_asymmetry,
                "flagged": [{"source": f.source, "target": f.target, "norm": round(f.norm, 4),
                             "asymmetry": round(f.asymmetry, 4)} for f in self.flagged]}


def pair_residuals(norms) -> np.ndarray:
    """The log norms less their row and column effects (median polish); a pair that never reached the threshold
    counts as the largest norm reached, the diagonal is NaN."""
    values = np.asarray(norms, np.float64)
    off_diagonal = ~np.eye(len(values), dtype=bool)
    reached = off_diagonal & np.isfinite(values) & (values > 0)
    if not reached.any():
        return np.full(values.shape, np.nan)
    filled = np.where(reached, values, values[reached].max())
    residual = np.where(off_diagonal, np.log(filled), np.nan)
    for _ in range(_POLISH_ROUNDS):
        residual = residual - np.nanmedian(residual, axis=1, keepdims=True)
        residual = residual - np.nanmedian(residual, axis=0, keepdims=True)
    return residual


def pair_score(norms, classes=None, *, min_asymmetry: float = DEFAULT_MIN_ASYMMETRY) -> PairScore:
    """Each pair's asymmetry (see the module's doc) and the pairs at `min_asymmetry` or above."""
    values = np.asarray(norms, np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or len(values) < 3:
        raise ConfigError(f"pair norms must be a square matrix of at least 3 classes, got shape {values.shape}.")
    if not (isinstance(min_asymmetry, (int, float)) and not isinstance(min_asymmetry, bool)
            and math.isfinite(min_asymmetry) and min_asymmetry > 1):
        raise ConfigError(f"min_asymmetry must be a finite number above 1, got {min_asymmetry!r}.")
    classes = np.arange(len(values)) if classes is None else np.asarray(classes)
    if classes.shape != (len(values),):
        raise ConfigError(f"classes must name the {len(values)} rows, got shape {classes.shape}.")
    residual = pair_residuals(values)
    asymmetry = np.exp(residual.T - residual)
    asymmetry[~np.isfinite(values)] = np.nan
    rows, cols = np.nonzero(np.nan_to_num(asymmetry, nan=0.0) >= min_asymmetry)
    flagged = sorted((_finding(classes, values, asymmetry, int(r), int(c)) for r, c in zip(rows, cols)),
                     key=lambda f: -f.asymmetry)
    return PairScore(classes, values, asymmetry, float(min_asymmetry), tuple(flagged))


def _finding(classes: np.ndarray, norms: np.ndarray, asymmetry: np.ndarray, row: int, col: int) -> PairFinding:
    return PairFinding(int(classes[row]), int(classes[col]), float(norms[row, col]), float(asymmetry[row, col]))
